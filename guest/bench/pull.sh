#!/usr/bin/env bash
# Pull + unpack figures for servin-guest against skopeo copy + umoci unpack.
#
#   bash guest/bench/pull.sh [path/to/servin-guest]
#
# Starts a throwaway docker-registry on a loopback port, seeds it with a
# 5-layer image of about 100 MB (random data, gzip) built with skopeo from an
# OCI layout made here, then times, in the same run:
#   1. skopeo copy to an OCI layout + umoci unpack (the reference);
#   2. servin-guest pulling and unpacking it (through the docker CLI);
#   3. pulling it again when already present (end to end from the CLI);
#   4. the engine's resident memory when idle.
# Needs: docker-registry, skopeo, umoci, docker (CLI), python3.
set -euo pipefail
ENGINE=${1:-${CARGO_TARGET_DIR:-target}/release/servin-guest}
WORK=$(mktemp -d /tmp/servin-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG_PID= ENG_PID=
cleanup() {
  [ -n "$ENG_PID" ] && kill "$ENG_PID" 2>/dev/null || true
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  umount -R "$WORK"/bundle 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REG_PID=$!

# An OCI layout with 5 layers of 20 MB random data each.
python3 - "$WORK/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
blobs = os.path.join(root, "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d
layers, diffs = [], []
for i in range(5):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(20 * 1024 * 1024)
        info = tarfile.TarInfo(f"layer{i}/data.bin"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    gz = gzip.compress(raw, compresslevel=1)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}, "config": {}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": layers}).encode()
md = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(manifest),
    "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(os.path.join(root, "index.json"), "w"))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.05; done
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:v1" "docker://127.0.0.1:$PORT/bench/img:v1"
IMAGE=127.0.0.1:$PORT/bench/img:v1

now() { date +%s.%N; }
t0=$(now)
skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$WORK/skopeo:v1"
umoci unpack --image "$WORK/skopeo:v1" "$WORK/bundle" >/dev/null
t1=$(now)
REF=$(echo "$t1 - $t0" | bc)

export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
SERVIN_LOG=warn "$ENGINE" > "$WORK/engine.log" 2>&1 &
ENG_PID=$!
for _ in $(seq 100); do [ -S "$WORK/engine.sock" ] && break; sleep 0.02; done
export DOCKER_HOST=unix://$WORK/engine.sock DOCKER_CONFIG=$WORK/docker
t0=$(now)
docker pull -q "$IMAGE" >/dev/null
t1=$(now)
SERVIN=$(echo "$t1 - $t0" | bc)
t0=$(now)
docker pull -q "$IMAGE" >/dev/null
t1=$(now)
AGAIN=$(echo "($t1 - $t0) * 1000" | bc)
sleep 1
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$ENG_PID/status")

printf 'skopeo copy + umoci unpack: %.2f s\n' "$REF"
printf 'servin pull (docker CLI):   %.2f s  (%.2fx)\n' "$SERVIN" "$(echo "$SERVIN / $REF" | bc -l)"
printf 'pull when present:          %.0f ms (docker CLI end to end)\n' "$AGAIN"
printf 'engine idle RSS:            %.1f MB\n' "$(echo "$RSS / 1024" | bc -l)"
