#!/usr/bin/env bash
# The main job: builds swapio, then runs a real swap workload in a fresh
# temporary directory: what this machine offers (info), a verified 1 GiB
# write+read benchmark, the C Adam optimizer demo whose states live on
# disk, and then the training job: a 59 M-parameter GPT trained on this
# CPU for about 100 s with its AdamW state on disk through
# swapio.torch.AdamW, against torch.optim.AdamW in memory (python -m
# swapio._train). Installs missing Debian packages first, makes or reuses
# the project's venv ($SWAPIO_VENV, by default /var/cache/swapio/venv-KEY:
# scripts/venv.sh), and installs the wheel there.
# Extra arguments go to the training job (e.g. --time 300 --layers 16
# --json; --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

swapio=build/tools/swapio
dir=$(mktemp -d "${TMPDIR:-/tmp}/swapio-demo-XXXXXX")
trap 'rm -rf "$dir"' EXIT

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
echo "Python environment ($SWAPIO_VENV) and the swapio wheel..." >&2
if ! swapio_venv "$dir/venv.log" ||
   ! CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
	"$SWAPIO_VENV/bin/pip" install -q --no-deps --force-reinstall . \
	>"$dir/pip.log" 2>&1; then
	cat "$dir"/*.log >&2
	echo "demo: Python set-up failed" >&2
	exit 1
fi

"$swapio" info "$dir"
echo
"$swapio" bench --file "$dir/bench.bin" --size 1G --verify
echo
"$swapio" demo adam --dir "$dir/store"
echo
# From $dir, so that "import swapio" is the installed package; the corpus
# is this repository's own text files.
root=$PWD
(cd "$dir" && "$SWAPIO_VENV/bin/python" -m swapio._train \
	--corpus "$root" --store "$dir/adamw" --checkpoint "$dir/ckpt" "$@")
