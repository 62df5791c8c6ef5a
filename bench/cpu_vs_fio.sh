#!/usr/bin/env bash
# CPU per GB of swapio bench and fio, measured the same way for both:
# perf stat task-clock over the whole process (every thread, start-up
# included), in alternating pairs whose order flips each round (ABBA).
# bench/vs_fio.py takes fio's CPU from its own per-job accounting, which
# leaves out fio's set-up and main thread; this script does not.
#
# usage: bench/cpu_vs_fio.sh [SWAPIO_BINARY] [DIR] [PAIRS] [SIZE]
# (defaults build/tools/swapio, /tmp, 5 pairs, 4G per run)
set -euo pipefail
swapio=${1:-build/tools/swapio}
dir=${2:-/tmp}
pairs=${3:-5}
size=${4:-4G}
gb=$(numfmt --from=iec "$size" | awk '{ print $1 / 1e9 }')

command -v perf >/dev/null || { echo "cpu-vs-fio: needs perf (linux-perf)" >&2; exit 2; }
command -v fio >/dev/null || { echo "cpu-vs-fio: needs fio" >&2; exit 2; }
file=$(mktemp "$dir/swapio-cpu-XXXXXX")
trap 'rm -f "$file"' EXIT
"$swapio" bench --file "$file" --size $size --mode write --keep --no-huge >/dev/null

clock() {	# task-clock in ms of the command
	perf stat -x, -e task-clock -- "$@" 2>&1 >/dev/null |
		awk -F, '/task-clock/ { print $1 }'
}

echo "| point | swapio CPU s/GB | fio CPU s/GB | swapio/fio, median [range] |"
echo "|---|---|---|---|"
for mode in write read; do
for pair in uring:io_uring aio:libaio; do
for qd in 8 32; do
	eng=${pair%%:*}; fioeng=${pair##*:}
	rs=(); s_all=(); f_all=()
	for ((i = 0; i < pairs; i++)); do
		run_s() { clock "$swapio" bench --file "$file" --mode "$mode" \
			--size $size --keep --no-huge --engine "$eng" -q "$qd"; }
		run_f() { clock fio --name=c --filename="$file" --rw="$mode" \
			--bs=1M --iodepth="$qd" --direct=1 --ioengine="$fioeng" \
			--size=$size --randrepeat=0 \
			--buffer_compress_percentage=0 --output=/dev/null; }
		if ((i % 2)); then f=$(run_f); s=$(run_s); else s=$(run_s); f=$(run_f); fi
		s_all+=("$s"); f_all+=("$f")
	done
	python3 - "$mode 1M qd$qd $eng/$fioeng" "$gb" "${s_all[*]}" "${f_all[*]}" <<'PY'
import statistics as st, sys
name, gb = sys.argv[1], float(sys.argv[2])
s = [float(x) for x in sys.argv[3].split()]
f = [float(x) for x in sys.argv[4].split()]
r = [a / b for a, b in zip(s, f)]
print(f"| {name} | {st.median(s) / 1000 / gb:.4f} | {st.median(f) / 1000 / gb:.4f}"
      f" | {st.median(r):.2f} [{min(r):.2f}..{max(r):.2f}] |")
PY
done; done; done
