"""docker-py (docker 6.1.3) against the engine at DOCKER_HOST.

Run by guest/tests/python_clients.rs as `python docker_py.py STEP`, with the
busybox image in IMAGE and a prefix for names in PREFIX. Each step asserts
what Docker answers and prints "ok STEP" at its end; whatever it made is
removed in a `finally`, so a failing step leaves nothing behind.
"""

import io
import os
import sys
import tarfile
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


def tar_of(files):
    """A tar archive (bytes) of {name: (bytes, mode)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archive(client):
    made = []
    try:
        c = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name=f"{PREFIX}-arc")
        made.append(c)
        ok = c.put_archive("/tmp", tar_of({"hello.txt": (b"hello\n", 0o640),
                                          "sub/run.sh": (b"#!/bin/sh\necho ran\n", 0o755)}))
        check(ok is True, f"put_archive answered {ok!r}")
        code, out = c.exec_run(["cat", "/tmp/hello.txt"])
        check(code == 0 and out == b"hello\n", f"cat after put_archive: {code} {out!r}")
        code, out = c.exec_run(["/tmp/sub/run.sh"])
        check(code == 0 and out == b"ran\n", f"the executable bit was kept: {code} {out!r}")
        stream, stat = c.get_archive("/tmp/hello.txt")
        check(stat["name"] == "hello.txt" and stat["size"] == 6, f"stat {stat}")
        check(stat["mode"] & 0o777 == 0o640, f"mode {oct(stat['mode'])}")
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            names = t.getnames()
            check(names == ["hello.txt"], f"get_archive of a file holds {names}")
            check(t.extractfile("hello.txt").read() == b"hello\n", "content read back")
        stream, stat = c.get_archive("/tmp/sub")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            names = sorted(t.getnames())
            check(names == ["sub", "sub/run.sh"], f"get_archive of a folder holds {names}")
        try:
            c.get_archive("/no/such/path")
            raise AssertionError("get_archive of a missing path succeeded")
        except docker.errors.NotFound:
            pass
        try:
            c.put_archive("/no/such/dir", tar_of({"x": (b"x", 0o644)}))
            raise AssertionError("put_archive into a missing folder succeeded")
        except docker.errors.NotFound:
            pass
    finally:
        remove_containers(client, made)


def stats(client):
    made = []
    try:
        c = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name=f"{PREFIX}-st")
        made.append(c)
        s = c.stats(stream=False)
        check(s["id"] == c.id and s["name"] == f"/{PREFIX}-st", f"stats of {s.get('id')} {s.get('name')}")
        check(s["memory_stats"]["usage"] > 0, f"memory {s['memory_stats']}")
        check(s["pids_stats"]["current"] >= 1, f"pids {s['pids_stats']}")
        check(s["cpu_stats"]["cpu_usage"]["total_usage"] > 0, f"cpu {s['cpu_stats']}")
        check("precpu_stats" in s and "read" in s and "preread" in s, f"keys {sorted(s)}")
        check("eth0" in s["networks"], f"networks {s.get('networks')}")
        stream = c.stats(decode=True)
        first = next(stream)
        second = next(stream)
        check(first["id"] == c.id and second["id"] == c.id, "streamed stats")
        check(second["precpu_stats"]["cpu_usage"]["total_usage"]
              == first["cpu_stats"]["cpu_usage"]["total_usage"], "precpu is the previous sample")
        stream.close()
    finally:
        remove_containers(client, made)


def top(client):
    made = []
    try:
        c = client.containers.run(IMAGE, ["sleep", "301"], detach=True, name=f"{PREFIX}-top")
        made.append(c)
        t = c.top()
        check("PID" in t["Titles"] and "CMD" in t["Titles"], f"titles {t['Titles']}")
        cmd = t["Titles"].index("CMD")
        check(any("sleep 301" in p[cmd] for p in t["Processes"]), f"processes {t['Processes']}")
        t = c.top(ps_args="-o pid,comm")
        check(t["Titles"] == ["PID", "COMMAND"], f"ps_args titles {t['Titles']}")
        c.stop(timeout=1)
        try:
            c.top()
            raise AssertionError("top of a stopped container succeeded")
        except docker.errors.APIError as e:
            check(e.status_code == 409, f"top of a stopped container: {e}")
    finally:
        remove_containers(client, made)


def pause(client):
    made = []
    try:
        c = client.containers.run(
            IMAGE, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/t; sleep 0.05; done"],
            detach=True, name=f"{PREFIX}-pause")
        made.append(c)

        def stamp():
            try:
                stream, _ = c.get_archive("/tmp/t")
                return b"".join(stream)
            except docker.errors.NotFound:
                return None

        # The loop has written once (a loaded machine may take a while).
        deadline = time.time() + 20
        while stamp() is None and time.time() < deadline:
            time.sleep(0.05)
        c.pause()
        c.reload()
        check(c.status == "paused" and c.attrs["State"]["Paused"], f"after pause {c.status}")
        # Frozen: the file no longer changes.
        before = stamp()
        check(before is not None, "the loop never wrote /tmp/t")
        time.sleep(0.4)
        check(stamp() == before, "a paused container kept running")
        try:
            c.pause()
            raise AssertionError("pausing a paused container succeeded")
        except docker.errors.APIError as e:
            check(e.status_code == 409, f"second pause: {e}")
        found = client.containers.list(filters={"status": "paused"})
        check([x.id for x in found] == [c.id], f"status=paused lists {found}")
        c.unpause()
        c.reload()
        check(c.status == "running", f"after unpause {c.status}")
        # A counter, not a clock: every write differs from the frozen one, so
        # the first changed read is the proof (a second read could race the
        # loop's truncating write).
        deadline = time.time() + 20
        now = stamp()
        while now == before and time.time() < deadline:
            time.sleep(0.05)
            now = stamp()
        check(now != before, "an unpaused container does not run")
    finally:
        remove_containers(client, made)


def update(client):
    made = []
    try:
        c = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name=f"{PREFIX}-upd")
        made.append(c)
        c.update(mem_limit="64m", cpu_shares=512, restart_policy={"Name": "on-failure",
                                                                   "MaximumRetryCount": 2})
        c.reload()
        hc = c.attrs["HostConfig"]
        check(hc["Memory"] == 64 * 1024 * 1024, f"Memory {hc['Memory']}")
        check(hc["CpuShares"] == 512, f"CpuShares {hc['CpuShares']}")
        check(hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2},
              f"RestartPolicy {hc['RestartPolicy']}")
        # Applied to the running container: its cgroup's limit changed.
        s = c.stats(stream=False)
        check(s["memory_stats"]["limit"] == 64 * 1024 * 1024, f"limit {s['memory_stats']}")
        try:
            c.update(mem_limit="1k")
            raise AssertionError("a 1 kB memory limit was accepted")
        except docker.errors.APIError as e:
            check(e.status_code == 400, f"a too small limit: {e}")
    finally:
        remove_containers(client, made)


STEPS = {
    f.__name__: f
    for f in [run_foreground, run_detached, rename, label_filters, events, images, volumes, networks,
              archive, stats, top, pause, update]
}

if __name__ == "__main__":
    client = docker.from_env(timeout=60)
    for step in sys.argv[1:]:
        STEPS[step](client)
        print(f"ok {step}", flush=True)
