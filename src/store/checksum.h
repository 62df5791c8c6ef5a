/* SPDX-License-Identifier: MIT */
/*
 * XXH3-64 of a payload, the store's checksum, on the widest vectors the
 * CPU has. Private; see checksum.c.
 */
#ifndef SWAPIO_CHECKSUM_H
#define SWAPIO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint64_t swapio__xxh3(const void *buf, size_t len);

/* checksum_avx2.c: the same hash through xxHash's AVX2 kernel; call only
 * where the CPU has AVX2. */
uint64_t swapio__xxh3_avx2(const void *buf, size_t len);

#endif
