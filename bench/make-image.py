#!/usr/bin/env python3
"""Writes an OCI image layout with LAYERS gzip layers of about MB megabytes
each (incompressible data plus some text), for the pull benchmark.

Usage: make-image.py DIR [LAYERS] [MB]
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 5
mb = int(sys.argv[3]) if len(sys.argv) > 3 else 20
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


diff_ids, descriptors = [], []
for n in range(layers):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo(f"layer{n}")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for i in range(mb):
            blob = os.urandom(1 << 20)
            info = tarfile.TarInfo(f"layer{n}/data{i}.bin")
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))
        text = ("line of configuration text %d\n" * 4000).encode()
        for i in range(50):
            info = tarfile.TarInfo(f"layer{n}/etc/conf{i}.txt")
            info.size, info.mode = len(text), 0o644
            tar.addfile(info, io.BytesIO(text))
    tar_bytes = raw.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
    digest, size = put(gzip.compress(tar_bytes, compresslevel=1))
    descriptors.append({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest,
        "size": size,
    })

config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
}
cdigest, csize = put(json.dumps(config).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
    "layers": descriptors,
}
mdigest, msize = put(json.dumps(manifest).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdigest, "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": "bench"},
    }]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
print(sum(d["size"] for d in descriptors) // (1 << 20), "MiB compressed in", layers, "layers")
