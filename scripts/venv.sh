# Sourced by scripts/test.sh and scripts/demo.sh: the project's Python
# environment. SWAPIO_VENV_REQS is the one list of requirements; the venv
# (.venv) is made once and reused while its .complete marker holds exactly
# that list. torch stays pinned: never let pip resolve an unpinned torch.
SWAPIO_VENV=.venv
SWAPIO_VENV_REQS="pytest numpy torch==2.13.0"

# swapio_venv LOG: makes or reuses $SWAPIO_VENV; output goes to LOG.
# Returns non-zero if the set-up failed.
swapio_venv() {
	local log=$1
	if [ "$(cat "$SWAPIO_VENV/.complete" 2>/dev/null)" = "$SWAPIO_VENV_REQS" ]; then
		return 0
	fi
	rm -rf "$SWAPIO_VENV"
	# shellcheck disable=SC2086
	python3 -m venv "$SWAPIO_VENV" >"$log" 2>&1 &&
		"$SWAPIO_VENV/bin/pip" install -q $SWAPIO_VENV_REQS >>"$log" 2>&1 &&
		echo "$SWAPIO_VENV_REQS" >"$SWAPIO_VENV/.complete"
}
