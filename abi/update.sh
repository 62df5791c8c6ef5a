#!/bin/sh
# Regenerates abi/libswapio.so.0.abi, the ABI baseline that the test
# abi.abidiff compares libswapio.so against, from a RelWithDebInfo build of
# this tree (in BUILD_DIR, default build-abi). Run it only for a deliberate
# ABI change or a release: docs/ARCHITECTURE.md, "ABI".
set -eu
cd "$(dirname "$0")/.."
b=${1:-build-abi}
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DSWAPIO_BUILD_TESTS=OFF -DSWAPIO_BUILD_TOOLS=OFF >/dev/null
cmake --build "$b" --target swapio >/dev/null
# Types defined outside include/ (the opaque objects' insides) are left
# out, so that only a change to swapio.h's types counts.
abidw --headers-dir include --drop-private-types --no-corpus-path \
	--no-comp-dir-path --out-file abi/libswapio.so.0.abi "$b/libswapio.so"
# Source paths relative to the tree, whichever checkout made the file.
sed -i "s|path='$PWD/|path='|g" abi/libswapio.so.0.abi
echo "abi/libswapio.so.0.abi: $(grep -c '<elf-symbol ' \
	abi/libswapio.so.0.abi) symbols"
