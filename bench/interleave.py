#!/usr/bin/env python3
"""Times commands interleaved: each round runs every command once, in turn,
so that drift in the machine's speed (other tenants, frequency) falls on all
of them alike, unlike timing one command's runs in a block and then the next;
and rests between commands, so that each is timed as a user running it once
meets it, not paying for what the previous command left to the kernel.

    bench/interleave.py [--rounds N] [--warmup N] [--settle MS] NAME=COMMAND ...

Prints, for each command, the mean, median and standard deviation of its wall
time in milliseconds, and the ratio of each command's mean and median to the
first command's. A command that fails stops the benchmark with its output.
"""
import argparse
import shlex
import statistics
import subprocess
import sys
import time


def run(argv, settle):
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    time.sleep(settle / 1000)
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--settle", type=float, default=100,
                   help="milliseconds of rest after each command, untimed, so that work a "
                   "command leaves behind (freeing namespaces, deleting files) does not land "
                   "on the next one (default 100)")
    p.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    a = p.parse_args()
    cmds = []
    for c in a.commands:
        name, sep, cmd = c.partition("=")
        if not sep:
            sys.exit(f"expected NAME=COMMAND, got {c!r}")
        cmds.append((name, shlex.split(cmd)))
    for _ in range(a.warmup):
        for _, argv in cmds:
            run(argv, a.settle)
    times = {name: [] for name, _ in cmds}
    for _ in range(a.rounds):
        for name, argv in cmds:
            times[name].append(run(argv, a.settle))
    base = cmds[0][0]
    bmean = statistics.mean(times[base])
    bmed = statistics.median(times[base])
    width = max(len(n) for n, _ in cmds)
    print(f"{'':{width}}  {'mean':>8} {'median':>8} {'sd':>6}   {'mean ratio':>10} {'median ratio':>12}   ({a.rounds} interleaved rounds)")
    for name, _ in cmds:
        t = times[name]
        mean, med, sd = statistics.mean(t), statistics.median(t), statistics.stdev(t)
        print(f"{name:{width}}  {mean:7.1f}ms {med:7.1f}ms {sd:5.1f}   {mean / bmean:9.2f}x {med / bmed:11.2f}x")


if __name__ == "__main__":
    main()
