#!/usr/bin/env bash
# The main job on a fresh Debian machine: install the prerequisites, build
# servin, install it, and check an example project with it.
set -euo pipefail
cd "$(dirname "$0")"

bash .ci/install-packages
cargo build --release --locked
install -m 0755 target/release/servin /usr/local/bin/servin
echo "installed $(servin version)"

cd examples/web-db-cache
servin validate
servin config --format json > /dev/null
echo "setup done: try \`cd examples/web-db-cache && servin config\`"
