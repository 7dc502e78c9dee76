#!/usr/bin/env bash
# Benchmark: `servin kube generate` on a generated 200-container project
# (target, issue 18: under 100 ms).
# Usage: bench/kube-generate.sh [N]   (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
cargo build --release --locked -q -p servin --bin servin
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 bench/gen-project.py "$dir" "$n"
servin=${CARGO_TARGET_DIR:-$PWD/target}/release/servin
objects=$("$servin" -f "$dir/servin.toml" kube generate 2>/dev/null | grep -c '^kind:')
warnings=$("$servin" -f "$dir/servin.toml" kube generate 2>&1 >/dev/null | grep -c '^warning:')
echo "$n containers: $objects objects, $warnings warnings"
hyperfine -N --warmup 5 --runs 100 \
  "$servin -f $dir/servin.toml kube generate -o -" \
  "$servin -f $dir/servin.toml kube generate -o $dir/k8s --expose loadbalancer"
