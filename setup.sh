#!/usr/bin/env bash
# The main job on a fresh Debian machine: install the prerequisites (runc,
# tini, ...), build servin and its engine, install both, check the machine
# with `servin doctor`, check an example project, and run a container.
set -euo pipefail
cd "$(dirname "$0")"

bash .ci/install-packages
cargo build --release --locked -p servin -p servin-guest
install -m 0755 target/release/servin target/release/servin-guest /usr/local/bin/
echo "installed $(servin version)"
servin doctor

(cd examples/web-db-cache && servin validate && servin config --format json > /dev/null)

# No registry is reachable from here: build a busybox image locally, import
# it, and run a container from it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/make-box.py "$work/box.tar" "$work/rootfs" servin/hello:1
servin image import "$work/box.tar"
servin run --rm servin/hello:1 echo "hello from a servin container"
(cd examples/hello && servin up -d)
curl -fsS --retry 20 --retry-delay 1 --retry-all-errors http://127.0.0.1:8080/
echo "setup done: the project in examples/hello is up (http://127.0.0.1:8080/; \`cd examples/hello && servin down --volumes\` removes it)"
echo "try \`servin run --rm -it servin/hello:1 sh\` or \`cd examples/web-db-cache && servin config\`"
