"""docker-py (docker 6.1.3) building against the engine at DOCKER_HOST.

Run by guest/tests/build_clients.rs as `python docker_py_build.py STEP...`,
with the busybox image in IMAGE and a build context in CONTEXT (a
Dockerfile with `ARG WHO`, copying hello.txt, `CMD cat /hello.txt`). Each
step asserts what Docker answers and prints "ok STEP" at its end; the
images and containers it made are removed in a `finally`.
"""

import io
import os
import sys

import docker

IMAGE = os.environ["IMAGE"]
CONTEXT = os.environ["CONTEXT"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def remove_images(client, names):
    for n in names:
        try:
            client.images.remove(n, force=True)
        except docker.errors.NotFound:
            pass


def run(client, image):
    return client.containers.run(image, remove=True)


def build_path(client):
    try:
        image, logs = client.images.build(
            path=CONTEXT, tag="dpy-build:path", buildargs={"WHO": "path"}, rm=True
        )
        logs = list(logs)
        check(image.tags == ["dpy-build:path"], f"tags {image.tags}")
        check(any("Successfully built" in l.get("stream", "") for l in logs), f"logs {logs}")
        check(any("aux" in l and l["aux"]["ID"] == image.id for l in logs), f"aux in {logs}")
        out = run(client, "dpy-build:path")
        check(out == b"hello\npath\n", f"the built image printed {out!r}")
        # rm=True: no intermediate container is left.
        left = client.containers.list(all=True)
        check(left == [], f"rm=True left {left}")
        # A build arg the Dockerfile does not declare is warned about.
        _, logs = client.images.build(
            path=CONTEXT, tag="dpy-build:path", buildargs={"WHO": "path", "UNUSED": "x"}
        )
        said = "".join(l.get("stream", "") for l in logs)
        check("UNUSED" in said, f"no warning about UNUSED in {said!r}")
    finally:
        remove_images(client, ["dpy-build:path"])


def build_fileobj(client):
    try:
        dockerfile = io.BytesIO(b"FROM " + IMAGE.encode() + b"\nRUN echo fileobj > /f\nCMD [\"cat\", \"/f\"]\n")
        image, _ = client.images.build(fileobj=dockerfile, tag="dpy-build:fileobj", rm=True)
        out = run(client, image.id)
        check(out == b"fileobj\n", f"the fileobj image printed {out!r}")
    finally:
        remove_images(client, ["dpy-build:fileobj"])


def build_stream(client):
    try:
        lines = list(
            client.api.build(path=CONTEXT, tag="dpy-build:stream", buildargs={"WHO": "s"},
                             rm=True, decode=True)
        )
        check(all(isinstance(l, dict) for l in lines), f"lines {lines}")
        streams = "".join(l.get("stream", "") for l in lines)
        check(streams.startswith("Step 1/5 : FROM " + IMAGE), f"stream {streams!r}")
        check("Step 4/5 : RUN echo \"$WHO\" >> /hello.txt" in streams, f"stream {streams!r}")
        check("Successfully tagged dpy-build:stream" in streams, f"stream {streams!r}")
        ids = [l["aux"]["ID"] for l in lines if "aux" in l]
        check(len(ids) == 1 and ids[0].startswith("sha256:"), f"aux {ids}")
        # A failing build: an error line, and images.build raises.
        bad = io.BytesIO(b"FROM " + IMAGE.encode() + b"\nRUN exit 4\n")
        lines = list(client.api.build(fileobj=bad, tag="dpy-build:bad", decode=True))
        errors = [l for l in lines if "error" in l]
        check(len(errors) == 1 and "errorDetail" in errors[0], f"lines {lines}")
        check("4" in errors[0]["error"], f"error {errors[0]}")
        bad.seek(0)
        try:
            client.images.build(fileobj=bad, tag="dpy-build:bad")
            raise AssertionError("a failing build raised nothing")
        except docker.errors.BuildError as e:
            check("exit 4" in str(e), f"BuildError {e}")
    finally:
        remove_images(client, ["dpy-build:stream"])


def build_keep(client):
    """rm=False (docker-py's default) keeps the intermediate containers, as
    Docker does."""
    made = []
    try:
        image, _ = client.images.build(
            path=CONTEXT, tag="dpy-build:keep", buildargs={"WHO": "keep"}, nocache=True
        )
        out = run(client, "dpy-build:keep")
        check(out == b"hello\nkeep\n", f"the kept build printed {out!r}")
        made = client.containers.list(all=True)
        check(len(made) >= 1, "rm=False kept no container")
    finally:
        for c in made:
            c.remove(force=True)
        remove_images(client, ["dpy-build:keep"])


STEPS = {f.__name__: f for f in [build_path, build_fileobj, build_stream, build_keep]}

if __name__ == "__main__":
    client = docker.from_env(timeout=120)
    for step in sys.argv[1:]:
        STEPS[step](client)
        print(f"ok {step}", flush=True)
