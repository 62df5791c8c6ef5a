/* SPDX-License-Identifier: MIT */
/*
 * The store's checksum (src/checksum.c) is XXH3-64 whichever kernel the
 * CPU runs: the same hash as libxxhash's for every length and alignment,
 * so a store written on one machine verifies on another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <xxhash.h>

#include "testing.h"
#include "checksum.h"

#define SPAN	(3u << 20)

static void same_as_libxxhash(void **state)
{
	unsigned char *buf = t_random_buf(SPAN + 64, 11);
	uint64_t rng = 5;

	(void)state;
	/* Every short length (XXH3 has paths for 0-16, -128, -240 and
	 * longer inputs), at every alignment within a vector. */
	for (size_t len = 0; len <= 2048; len++)
		for (size_t at = 0; at < 64; at += 9)
			assert_int_equal(swapio__xxh3(buf + at, len),
					 XXH3_64bits(buf + at, len));
	/* Long inputs around the stripe boundaries and a few at random. */
	for (size_t len = 1024; len <= SPAN; len *= 2)
		for (int d = -1; d <= 1; d++)
			assert_int_equal(swapio__xxh3(buf + 1, len + d),
					 XXH3_64bits(buf + 1, len + d));
	for (int i = 0; i < 64; i++) {
		size_t len = t_rand64(&rng) % SPAN, at = t_rand64(&rng) % 64;

		assert_int_equal(swapio__xxh3(buf + at, len),
				 XXH3_64bits(buf + at, len));
	}
	assert_int_equal(swapio_store_checksum(buf, SPAN),
			 XXH3_64bits(buf, SPAN));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_as_libxxhash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
