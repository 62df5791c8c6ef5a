#!/bin/sh
# SPDX-License-Identifier: MIT
# gpu_abi_check.sh SRC_DIR CACHE_DIR: compiles tests/gpu/gpu_abi_check.c (every
# declaration of src/gpu/gpu_abi.h against the real CUDA runtime and cuFile
# headers) with each C compiler here, for each CUDA include directory
# found (CUDA_HOME, /usr/local/cuda, /usr/local/cuda-*), and checks that
# no header renames a call swapio looks up by name. cufile.h comes from
# SWAPIO_CUFILE_INCLUDE, a CUDA include directory, the project's venv
# ($SWAPIO_VENV, /var/cache/swapio/venv-* or SRC_DIR/.venv: scripts/venv.sh),
# or CACHE_DIR, where PyPI's nvidia-cufile wheel is fetched once if
# nothing else has it. Exit 0 pass, 1 fail, 77 skip (headers absent).
set -u
src=$1 cache=$2
tu=$src/tests/gpu/gpu_abi_check.c

cuda_dirs=
for d in ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include \
	/usr/local/cuda-*/include; do
	[ -f "$d/cuda_runtime_api.h" ] || continue
	r=$(realpath "$d")
	case " $cuda_dirs " in *" $r "*) ;; *) cuda_dirs="$cuda_dirs $r" ;; esac
done
if [ -z "$cuda_dirs" ]; then
	echo "SKIP: no cuda_runtime_api.h (set CUDA_HOME)"
	exit 77
fi

find_cufile() {
	for f in ${SWAPIO_CUFILE_INCLUDE:+$SWAPIO_CUFILE_INCLUDE/cufile.h} \
		$cuda_dirs/cufile.h \
		${SWAPIO_VENV:+"$SWAPIO_VENV"/lib/python3*/site-packages/nvidia/*/include/cufile.h} \
		/var/cache/swapio/venv-*/lib/python3*/site-packages/nvidia/*/include/cufile.h \
		"$src"/.venv/lib/python3*/site-packages/nvidia/*/include/cufile.h \
		"$cache"/whl/nvidia/*/include/cufile.h; do
		[ -f "$f" ] && echo "$f"
	done
}
cufiles=$(find_cufile)
if [ -z "$cufiles" ]; then
	mkdir -p "$cache"
	timeout 300 python3 -m pip download -q --no-deps -d "$cache" \
		nvidia-cufile >"$cache/pip.log" 2>&1 &&
		python3 -m zipfile -e "$cache"/nvidia_cufile-*.whl \
			"$cache/whl" 2>>"$cache/pip.log"
	cufiles=$(find_cufile)
fi
if [ -z "$cufiles" ]; then
	echo "SKIP: no cufile.h here, and nvidia-cufile could not be" \
		"fetched (see $cache/pip.log)"
	exit 77
fi

fail=0
for cc in cc gcc clang; do
	command -v $cc >/dev/null || continue
	for cuda in $cuda_dirs; do
		for cf in $cufiles; do
			inc="-I$cuda -I$(dirname "$cf") -I$src/src/gpu"
			flags="-std=gnu11 -Wall -Wextra -Werror"
			flags="$flags -Werror=incompatible-pointer-types"
			what="$cc, $cuda, $cf"
			# shellcheck disable=SC2086
			if ! $cc $flags $inc -c -o /dev/null "$tu"; then
				echo "FAIL: $what"
				fail=1
				continue
			fi
			# Each name swapio looks up is the one declared.
			# shellcheck disable=SC2086
			bad=$($cc -E -DSWAPIO_ABI_NAMES $inc "$tu" |
				tr ' ' '\n' | awk '
				/^swapio_name$/ { n = 1; next }
				n == 1 { gsub(/"/, ""); want = $0; n = 2; next }
				n == 2 { gsub(/"/, ""); want = want $0; n = 3; next }
				n == 3 { if ($0 != want) print want " -> " $0; n = 0 }')
			if [ -n "$bad" ]; then
				echo "FAIL: $what: renamed by the header: $bad"
				fail=1
				continue
			fi
			echo "ok: $what"
		done
	done
done
exit $fail
