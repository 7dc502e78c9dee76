#!/usr/bin/env python3
"""Workspace sync figures, driven by bench/sync.sh.

    sync.py gen DIR FILES BYTES_EACH FILES_PER_DIR   make a tree
    sync.py latency SRC COPY N                       host write -> copy
    sync.py checkout SRC COPY N                      N files changed at once
    sync.py idle PID SECONDS                          CPU and memory of PID

The copy is the workspace volume's data folder on the host: the inode the
container sees through its mount, so a change is visible in the container
when it is visible there.
"""
import hashlib
import os
import statistics
import sys
import time


def gen(root, files, size, per_dir):
    data = os.urandom(size)
    for i in range(files):
        d = os.path.join(root, f"d{i // per_dir:05}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06}.txt"), "wb") as f:
            f.write(i.to_bytes(4, "big") + data[4:])


def wait_for(path, want, limit=5.0):
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        try:
            with open(path, "rb") as f:
                if f.read() == want:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.0002)
    raise SystemExit(f"{path} did not get its content within {limit}s")


def latency(src, copy, n):
    out = []
    name = "edit.txt"
    for i in range(n):
        want = f"edit {i} {time.time()}\n".encode()
        start = time.perf_counter()
        with open(os.path.join(src, name), "wb") as f:
            f.write(want)
        seen = wait_for(os.path.join(copy, name), want)
        out.append((seen - start) * 1000)
        time.sleep(0.03)
    out.sort()
    p99 = out[int(len(out) * 0.99) - 1]
    print(f"latency over {n} edits: median {statistics.median(out):.1f} ms, "
          f"p99 {p99:.1f} ms, max {out[-1]:.1f} ms")


def tree_digest(root):
    h = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.startswith(".servin-sync-"):
                continue  # a file being written, renamed into place next
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    h[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
            except FileNotFoundError:
                h[os.path.relpath(p, root)] = None
    return h


def checkout(src, copy, n):
    files = []
    for d, _, names in sorted(os.walk(src)):
        files += [os.path.join(d, x) for x in sorted(names)]
    files = [f for f in files if not os.path.basename(f).startswith(".")][:n]
    stamp = str(time.time()).encode()
    want = {}
    start = time.perf_counter()
    for f in files:
        with open(f, "ab") as fh:
            fh.write(stamp)
    written = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            want[os.path.join(copy, os.path.relpath(f, src))] = fh.read()
    # Poll the changed files until every one has its new content.
    todo = dict(want)
    while todo:
        for p, data in list(todo.items()):
            try:
                with open(p, "rb") as fh:
                    if fh.read() == data:
                        del todo[p]
            except FileNotFoundError:
                pass
        if time.perf_counter() - start > 30:
            raise SystemExit("the copy did not converge within 30 s")
    done = time.perf_counter()
    same = tree_digest(copy) == tree_digest(src)
    print(f"checkout of {len(files)} files: written in {(written - start) * 1000:.0f} ms, "
          f"every changed file in the copy after {(done - start) * 1000:.0f} ms; "
          f"whole trees' hashes equal: {same}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle(pid, seconds):
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.time(), cpu_ticks(pid)
    time.sleep(seconds)
    t1, c1 = time.time(), cpu_ticks(pid)
    cpu = (c1 - c0) / hz / (t1 - t0) * 100
    print(f"idle watcher over {seconds} s: {cpu:.2f}% of one core, "
          f"{rss_kb(pid) / 1024:.1f} MB resident")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "latency":
        latency(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "checkout":
        checkout(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "idle":
        idle(int(sys.argv[2]), float(sys.argv[3]))
