#!/usr/bin/env python3
"""Writes a build context for bench/build.sh: N files of SIZE bytes each,
in 100 folders d0..d99 (file fI goes to folder d(I mod 100)), with content
that differs from file to file.

usage: gen-context.py DIR N SIZE
"""
import os
import sys


def main():
    root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for d in range(100):
        os.makedirs(os.path.join(root, f"d{d}"), exist_ok=True)
    block = os.urandom(size)
    for i in range(n):
        path = os.path.join(root, f"d{i % 100}", f"f{i}")
        head = f"{i}\n".encode()
        with open(path, "wb") as f:
            f.write(head + block[len(head):])


if __name__ == "__main__":
    main()
