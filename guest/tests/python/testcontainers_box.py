"""testcontainers-python (4.8.2, reaper off) against the engine at DOCKER_HOST.

Run by guest/tests/python_clients.rs with the busybox image in IMAGE: starts
a container, waits for its log line, reads its logs and exec's in it; the
`with` block removes it, and the script checks that it is gone.
"""

import os

import docker
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

IMAGE = os.environ["IMAGE"]

with DockerContainer(IMAGE).with_command(
    ["sh", "-c", "echo ready; echo to-stderr >&2; exec sleep 300"]
).with_env("GREETING", "hello") as box:
    wait_for_logs(box, "ready", timeout=30)
    out, err = box.get_logs()
    assert out == b"ready\n", f"stdout {out!r}"
    assert err == b"to-stderr\n", f"stderr {err!r}"
    code, said = box.exec(["sh", "-c", "echo $GREETING"])
    assert code == 0 and said == b"hello\n", f"exec {code} {said!r}"
    wrapped = box.get_wrapped_container()
    wrapped.reload()
    assert wrapped.status == "running", wrapped.status
    ident = wrapped.id

try:
    docker.from_env().containers.get(ident)
    raise AssertionError("testcontainers left its container")
except docker.errors.NotFound:
    pass
print("ok testcontainers", flush=True)
