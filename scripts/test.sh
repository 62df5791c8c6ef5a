#!/usr/bin/env bash
# Builds swapio and runs the whole test suite:
#   1. the normal build, every test;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer, every test but the
#      fuzzers (they carry their own sanitizers);
#   3. ThreadSanitizer, the concurrency tests (label "tsan");
#   4. with clang: the libFuzzer targets, briefly;
#   5. builds only (no tests): Release and MinSizeRel with gcc, Release
#      with clang, since optimisers find warnings the others do not.
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
	if ! cmake -S . -B "$dir" -DSWAPIO_WERROR=ON $cargs >"$log" 2>&1 ||
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

run_stage "normal build" build "-DCMAKE_BUILD_TYPE=RelWithDebInfo" ""
run_stage "ASan + UBSan" build-asan \
	"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_SANITIZE=address,undefined" \
	"-LE nosan"
run_stage "TSan (concurrency tests)" build-tsan \
	"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_SANITIZE=thread" "-L tsan"
if command -v clang >/dev/null 2>&1; then
	CC=clang run_stage "fuzzers (clang, libFuzzer)" build-fuzz \
		"-DCMAKE_BUILD_TYPE=Debug -DSWAPIO_FUZZ=ON" "-R fuzz"
fi
CC=gcc build_stage "Release build (gcc)" build-rel-gcc \
	"-DCMAKE_BUILD_TYPE=Release"
CC=gcc build_stage "MinSizeRel build (gcc)" build-minsize-gcc \
	"-DCMAKE_BUILD_TYPE=MinSizeRel"
CC=clang build_stage "Release build (clang)" build-rel-clang \
	"-DCMAKE_BUILD_TYPE=Release"

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
