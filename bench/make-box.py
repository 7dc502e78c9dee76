#!/usr/bin/env python3
"""Writes the container benchmark's image: busybox-static with a few applets.

usage: make-box.py OUT.tar ROOTFS_DIR TAG

BOX_APPLETS (comma-separated) adds applets, e.g. httpd.

OUT.tar is a `docker save` archive tagged TAG (for `servin image import` and
`podman load`); ROOTFS_DIR gets the same files unpacked, for a bare runc
bundle.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

APPLETS = ["sh", "true", "echo", "sleep", "cat"] + [
    a for a in os.environ.get("BOX_APPLETS", "").split(",") if a
]


def layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        d = tarfile.TarInfo("bin")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        t.addfile(d)
        t.add("/bin/busybox", arcname="bin/busybox")
        for a in APPLETS:
            ti = tarfile.TarInfo("bin/" + a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            t.addfile(ti)
    return buf.getvalue()


def main():
    out, rootfs, tag = sys.argv[1:4]
    layer = layer_tar()
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
    with tarfile.open(out, mode="w") as t:
        for name, data in [(config_name, config), (layer_name, layer), ("manifest.json", manifest)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    os.makedirs(rootfs, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        t.extractall(rootfs)


if __name__ == "__main__":
    main()
