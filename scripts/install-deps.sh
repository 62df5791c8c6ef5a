#!/bin/sh
# Installs the Debian packages swapio needs to build, test and benchmark.
# Does nothing when they are all present. Run as root (or through sudo).
set -eu

# Sanitizer runtimes: gcc's (libasan, libubsan, libtsan) are hard
# dependencies of build-essential's libgcc-N-dev; clang's and libFuzzer
# are in libclang-rt-dev, only a Recommends of clang, which
# --no-install-recommends skips. mount has losetup (the loop-device tests).
# The Python package: python3-dev (headers, for whichever python3 builds
# it), python3-venv (the test venv) and DLPack's header; liburing-dev,
# libaio-dev and libxxhash-dev bring the static archives it links.
# Installing and packaging (tests/install/install.cmake): abigail-tools (abidiff
# against the ABI baseline), mandoc (man page lint), gnuplot-nox (sweep
# --png, bench/vs_fio.py --png), debhelper, dpkg-dev and lintian (the Debian
# packages; they build without root, so no fakeroot). gnuplot-nox also
# draws the figure of bench/stripe.py (docs/SCALING.md).
pkgs="build-essential cmake pkg-config liburing-dev libaio-dev libxxhash-dev
libcmocka-dev fio clang libclang-rt-dev strace python3 util-linux mount
e2fsprogs python3-dev python3-venv libdlpack-dev abigail-tools mandoc
gnuplot-nox debhelper dpkg-dev lintian"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	     grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: need root to install:$missing" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
