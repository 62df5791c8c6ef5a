/* SPDX-License-Identifier: MIT */
/*
 * xxHash's XXH3-64 from its header, compiled with -mavx2 (CMakeLists.txt)
 * so that its AVX2 kernel is the one built. Only checksum.c calls it, and
 * only on a CPU with AVX2.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checksum.h"

uint64_t swapio__xxh3_avx2(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}
