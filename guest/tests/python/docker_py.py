"""docker-py (docker 6.1.3) against the engine at DOCKER_HOST.

Run by guest/tests/python_clients.rs as `python docker_py.py STEP`, with the
busybox image in IMAGE and a prefix for names in PREFIX. Each step asserts
what Docker answers and prints "ok STEP" at its end; whatever it made is
removed in a `finally`, so a failing step leaves nothing behind.
"""

import os
import sys
import time

import docker

IMAGE = os.environ["IMAGE"]
PREFIX = os.environ["PREFIX"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def remove_containers(client, containers):
    for c in containers:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


def run_foreground(client):
    out = client.containers.run(IMAGE, "echo hi", remove=True)
    check(out == b"hi\n", f"foreground run printed {out!r}")
    # stderr is kept apart unless asked for.
    out = client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"], remove=True)
    check(out == b"out\n", f"foreground run with stderr printed {out!r}")
    left = client.containers.list(all=True)
    check(left == [], f"remove=True left {left}")


def run_detached(client):
    made = []
    try:
        c = client.containers.run(
            IMAGE, ["sh", "-c", "echo one; echo two; exit 3"], detach=True, name=f"{PREFIX}-det"
        )
        made.append(c)
        result = c.wait(timeout=30)
        check(result["StatusCode"] == 3, f"wait answered {result}")
        logs = c.logs()
        check(logs == b"one\ntwo\n", f"logs {logs!r}")
        c.reload()
        check(c.status == "exited", f"status {c.status}")
        check(c.attrs["State"]["ExitCode"] == 3, f"state {c.attrs['State']}")
        check(c.name == f"{PREFIX}-det", f"name {c.name}")
        c.remove()
        made.clear()
        try:
            client.containers.get(f"{PREFIX}-det")
            raise AssertionError("the removed container is still there")
        except docker.errors.NotFound:
            pass
    finally:
        remove_containers(client, made)


def rename(client):
    made = []
    try:
        c = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name=f"{PREFIX}-old")
        made.append(c)
        c.rename(f"{PREFIX}-new")
        c.reload()
        check(c.name == f"{PREFIX}-new" and c.status == "running", f"{c.name} {c.status}")
        check(client.containers.get(f"{PREFIX}-new").id == c.id, "get by the new name")
        try:
            client.containers.get(f"{PREFIX}-old")
            raise AssertionError("the old name still finds the container")
        except docker.errors.NotFound:
            pass
        other = client.containers.create(IMAGE, "true", name=f"{PREFIX}-old")
        made.append(other)
        try:
            other.rename(f"{PREFIX}-new")
            raise AssertionError("renamed to a name in use")
        except docker.errors.APIError as e:
            check(e.status_code == 409, f"rename to a name in use: {e}")
    finally:
        remove_containers(client, made)


def label_filters(client):
    made = []
    try:
        def mk(name, labels):
            c = client.containers.create(IMAGE, "true", name=f"{PREFIX}-{name}", labels=labels)
            made.append(c)
            return c

        both = mk("both", {"app": "shop", "tier": "web"})
        mk("app", {"app": "shop", "tier": "db"})
        mk("tier", {"app": "blog", "tier": "web"})
        found = client.containers.list(all=True, filters={"label": ["app=shop", "tier=web"]})
        check([c.id for c in found] == [both.id], f"two labels ANDed found {[c.name for c in found]}")
        found = client.containers.list(all=True, filters={"label": "app=shop"})
        check(len(found) == 2, f"one label found {[c.name for c in found]}")
        found = client.containers.list(all=True, filters={"label": ["app", "tier=db"]})
        check([c.name for c in found] == [f"{PREFIX}-app"], f"key and key=value found {found}")
        # Not running: hidden without all=True.
        check(client.containers.list(filters={"label": "app=shop"}) == [], "list shows created containers")
    finally:
        remove_containers(client, made)


def events(client):
    made = []
    try:
        since = time.time() - 1
        c = client.containers.run(IMAGE, "true", detach=True, name=f"{PREFIX}-ev")
        made.append(c)
        c.wait(timeout=30)
        until = time.time() + 1
        seen = []
        for ev in client.events(decode=True, since=since, until=until,
                                filters={"container": c.id}):
            check(ev["Type"] == "container", f"event {ev}")
            check(ev["Actor"]["ID"] == c.id, f"event of another container {ev}")
            check(ev["id"] == c.id, f"event without id {ev}")
            check(ev["Actor"]["Attributes"]["name"] == f"{PREFIX}-ev", f"attributes {ev}")
            check(isinstance(ev["timeNano"], int), f"timeNano {ev}")
            seen.append(ev["Action"])
        check(time.time() >= until - 0.5, "the event stream ended before its until")
        for action in ["create", "start", "die"]:
            check(action in seen, f"no {action} event in {seen}")
        check(seen.index("create") < seen.index("start") < seen.index("die"), f"order {seen}")
    finally:
        remove_containers(client, made)


def images(client):
    imgs = client.images.list()
    tagged = [i for i in imgs if IMAGE in i.tags]
    check(len(tagged) == 1, f"images.list: {[i.tags for i in imgs]}")
    img = client.images.get(IMAGE)
    check(img.id == tagged[0].id, f"get {img.id} list {tagged[0].id}")
    check(img.id.startswith("sha256:"), f"image id {img.id}")
    check(client.images.list(name=IMAGE)[0].id == img.id, "list by name")
    check(client.images.list(name="nothing/here") == [], "list by a missing name")
    check(img.attrs["Os"] == "linux", f"Os {img.attrs.get('Os')}")


def volumes(client):
    name = f"{PREFIX}-vol"
    made = []
    try:
        v = client.volumes.create(name=name, labels={"k": "v"})
        made.append(v)
        check(v.name == name, f"created {v.name}")
        check(v.attrs["Driver"] == "local", f"driver {v.attrs}")
        names = [x.name for x in client.volumes.list()]
        check(name in names, f"list {names}")
        names = [x.name for x in client.volumes.list(filters={"label": "k=v"})]
        check(names == [name], f"list by label {names}")
        check(client.volumes.get(name).attrs["Labels"] == {"k": "v"}, "labels")
        v.remove()
        made.clear()
        check(name not in [x.name for x in client.volumes.list()], "removed volume listed")
        try:
            client.volumes.get(name)
            raise AssertionError("the removed volume is still there")
        except docker.errors.NotFound:
            pass
    finally:
        for v in made:
            v.remove(force=True)


def networks(client):
    name = f"{PREFIX}-net"
    made = []
    try:
        n = client.networks.create(name, driver="bridge", labels={"k": "v"})
        made.append(n)
        n.reload()
        check(n.name == name, f"created {n.name}")
        check(n.attrs["Driver"] == "bridge", f"driver {n.attrs}")
        names = [x.name for x in client.networks.list()]
        check(name in names, f"list {names}")
        check([x.name for x in client.networks.list(names=[name])] == [name], "list by name")
        check([x.id for x in client.networks.list(filters={"label": "k=v"})] == [n.id], "by label")
        n.remove()
        made.clear()
        check(name not in [x.name for x in client.networks.list()], "removed network listed")
    finally:
        for n in made:
            n.remove()


STEPS = {
    f.__name__: f
    for f in [run_foreground, run_detached, rename, label_filters, events, images, volumes, networks]
}

if __name__ == "__main__":
    client = docker.from_env(timeout=60)
    for step in sys.argv[1:]:
        STEPS[step](client)
        print(f"ok {step}", flush=True)
