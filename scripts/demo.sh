#!/usr/bin/env bash
# The main job: builds swapio, then runs a real swap workload in a fresh
# temporary directory: what this machine offers (info), a verified 1 GiB
# write+read benchmark, and the Adam optimizer demo whose states live on
# disk. Installs missing Debian packages first. Extra arguments go to the
# demo (e.g. --params 256M --json).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

swapio=build/tools/swapio
dir=$(mktemp -d "${TMPDIR:-/tmp}/swapio-demo-XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$swapio" info "$dir"
echo
"$swapio" bench --file "$dir/bench.bin" --size 1G --verify
echo
"$swapio" demo adam --dir "$dir/store" "$@"
