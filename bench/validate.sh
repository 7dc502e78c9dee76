#!/usr/bin/env bash
# Benchmark: `servin validate` on a generated 200-container project.
# Usage: bench/validate.sh [N]   (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
cargo build --release --locked -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 bench/gen-project.py "$dir" "$n"
servin=$PWD/target/release/servin
"$servin" -f "$dir/servin.toml" validate
hyperfine -N --warmup 5 --runs 100 \
  "$servin -f $dir/servin.toml validate --quiet" \
  "$servin -f $dir/servin.toml config --format json"
