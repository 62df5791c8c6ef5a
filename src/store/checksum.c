/* SPDX-License-Identifier: MIT */
/*
 * The payload checksum, XXH3-64, at the CPU's speed. libxxhash as Debian
 * builds it runs its SSE2 kernel, about 18 GB/s on one core here: for a
 * store moving 1.5 GB/s that is 0.05 s of CPU per GB on each put and
 * each get. xxHash's own x86 dispatcher is in the shared library only, not
 * in the static archive that the Python module links, so swapio compiles
 * xxHash's header once more with AVX2 (checksum_avx2.c) and picks that
 * kernel when the CPU has it: about 60 GB/s here. Every kernel gives the same
 * hash, so stores move between machines unchanged.
 */
#include <xxhash.h>

#include "checksum.h"

#ifdef SWAPIO_HAVE_AVX2
static uint64_t (*resolve(void))(const void *, size_t)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") ? swapio__xxh3_avx2 : NULL;
}
#endif

uint64_t swapio__xxh3(const void *buf, size_t len)
{
#ifdef SWAPIO_HAVE_AVX2
	static uint64_t (*_Atomic kernel)(const void *, size_t);
	static _Atomic int resolved;
	uint64_t (*k)(const void *, size_t);

	/* Racing first calls resolve alike: no lock needed. */
	if (!resolved) {
		kernel = resolve();
		resolved = 1;
	}
	k = kernel;
	if (k)
		return k(buf, len);
#endif
	return XXH3_64bits(buf, len);
}
