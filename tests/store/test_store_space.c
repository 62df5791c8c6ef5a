/* SPDX-License-Identifier: MIT */
/*
 * The store's allocator on its own (src/store_space.c): first fit, merging
 * of neighbours on free, exact claims as replay makes them, refusal of
 * overlaps, and a random model check against a byte map.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testing.h"
#include "store_impl.h"

#define SPAN	4096u

static void first_fit_and_merge(void **state)
{
	struct freelist fl = { 0 };
	uint64_t off;

	(void)state;
	assert_int_equal(swapio__fl_insert(&fl, 0, 10 * SPAN), 0);
	assert_int_equal(swapio__fl_take(&fl, 3 * SPAN, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(swapio__fl_take(&fl, 3 * SPAN, &off), 0);
	assert_int_equal(off, 3 * SPAN);
	assert_int_equal(swapio__fl_take(&fl, 5 * SPAN, &off), -ENOSPC);
	assert_int_equal(swapio__fl_free_bytes(&fl), 4 * SPAN);
	/* Freeing the first extent: two ranges; the second joins all. */
	assert_int_equal(swapio__fl_insert(&fl, 0, 3 * SPAN), 0);
	assert_int_equal(fl.n, 2);
	assert_int_equal(swapio__fl_insert(&fl, 3 * SPAN, 3 * SPAN), 0);
	assert_int_equal(fl.n, 1);
	assert_int_equal(fl.v[0].off, 0);
	assert_int_equal(fl.v[0].len, 10 * SPAN);
	free(fl.v);
}

static void claim_exact(void **state)
{
	struct freelist fl = { 0 };

	(void)state;
	assert_int_equal(swapio__fl_insert(&fl, 0, 10 * SPAN), 0);
	assert_int_equal(swapio__fl_claim(&fl, 4 * SPAN, 2 * SPAN), 0);
	assert_int_equal(fl.n, 2);
	assert_int_equal(swapio__fl_free_bytes(&fl), 8 * SPAN);
	/* Overlaps, zero length and past the end are refused. */
	assert_int_equal(swapio__fl_claim(&fl, 5 * SPAN, SPAN),
			 SWAPIO_EBADSTORE);
	assert_int_equal(swapio__fl_claim(&fl, 3 * SPAN, 2 * SPAN),
			 SWAPIO_EBADSTORE);
	assert_int_equal(swapio__fl_claim(&fl, 0, 0), SWAPIO_EBADSTORE);
	assert_int_equal(swapio__fl_claim(&fl, 9 * SPAN, UINT64_MAX),
			 SWAPIO_EBADSTORE);
	assert_int_equal(swapio__fl_claim(&fl, 0, 4 * SPAN), 0);
	assert_int_equal(swapio__fl_claim(&fl, 6 * SPAN, 4 * SPAN), 0);
	assert_int_equal(fl.n, 0);
	free(fl.v);
}

/* Random takes and frees against a map of which spans are in use. */
static void model(void **state)
{
	enum { N = 256, ROUNDS = 20000 };
	struct { uint64_t off, len; } held[64];
	unsigned char used[N] = { 0 };
	struct freelist fl = { 0 };
	unsigned int nheld = 0;
	uint64_t rnd = 12345, off, in_use = 0;

	(void)state;
	assert_int_equal(swapio__fl_insert(&fl, 0, N * SPAN), 0);
	for (int r = 0; r < ROUNDS; r++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		if (nheld < 64 && (rnd >> 40) % 3) {
			uint64_t len = (1 + (rnd >> 20) % 8) * SPAN;

			if (swapio__fl_take(&fl, len, &off))
				continue;
			for (uint64_t i = off / SPAN; i < (off + len) / SPAN;
			     i++) {
				assert_int_equal(used[i], 0);
				used[i] = 1;
			}
			held[nheld].off = off;
			held[nheld++].len = len;
		} else if (nheld) {
			unsigned int k = (unsigned int)((rnd >> 8) % nheld);

			for (uint64_t i = held[k].off / SPAN;
			     i < (held[k].off + held[k].len) / SPAN; i++)
				used[i] = 0;
			assert_int_equal(swapio__fl_insert(&fl, held[k].off,
							   held[k].len), 0);
			held[k] = held[--nheld];
		}
		/* Ranges sorted, disjoint, never adjacent (always merged). */
		for (size_t i = 1; i < fl.n; i++)
			assert_true(fl.v[i - 1].off + fl.v[i - 1].len <
				    fl.v[i].off);
	}
	for (unsigned int i = 0; i < N; i++)
		in_use += used[i];
	assert_int_equal(swapio__fl_free_bytes(&fl), (N - in_use) * SPAN);
	free(fl.v);
}

/*
 * Striped placement: an extent inside one unit of the drive asked for,
 * the lowest such; a range's cut-short first unit is skipped; a drive
 * with no unit left that fits says -ENOSPC.
 */
static void take_within_unit(void **state)
{
	const uint64_t unit = 4 * SPAN;	/* 3 drives: units 0,3,6.. are d0 */
	struct freelist fl = { 0 };
	uint64_t off;

	(void)state;
	assert_int_equal(swapio__fl_insert(&fl, 0, 12 * unit), 0);
	assert_int_equal(swapio__fl_take_unit(&fl, 3 * SPAN, unit, 3, 1,
					      &off), 0);
	assert_int_equal(off, unit);		/* unit 1 is drive 1's */
	assert_int_equal(swapio__fl_take_unit(&fl, 2 * SPAN, unit, 3, 1,
					      &off), 0);
	assert_int_equal(off, 4 * unit);	/* 1 SPAN left in unit 1 */
	assert_int_equal(swapio__fl_take_unit(&fl, SPAN, unit, 3, 1, &off), 0);
	assert_int_equal(off, unit + 3 * SPAN);	/* the gap fits this one */
	assert_int_equal(swapio__fl_take_unit(&fl, unit, unit, 3, 0, &off), 0);
	assert_int_equal(off, 0);
	/* A range starting mid-unit: [2.5 units, 4 units) holds drive 2's
	 * unit 2 cut short, so a whole unit comes from unit 5. */
	free(fl.v);
	fl = (struct freelist){ 0 };
	assert_int_equal(swapio__fl_insert(&fl, 2 * unit + 2 * SPAN,
					   10 * unit), 0);
	assert_int_equal(swapio__fl_take_unit(&fl, unit, unit, 3, 2, &off), 0);
	assert_int_equal(off, 5 * unit);
	assert_int_equal(swapio__fl_take_unit(&fl, 2 * SPAN, unit, 3, 2,
					      &off), 0);
	assert_int_equal(off, 2 * unit + 2 * SPAN);
	free(fl.v);
	fl = (struct freelist){ 0 };
	assert_int_equal(swapio__fl_insert(&fl, 0, 2 * unit), 0);
	assert_int_equal(swapio__fl_take_unit(&fl, SPAN, unit, 3, 2, &off),
			 -ENOSPC);
	assert_int_equal(swapio__fl_free_bytes(&fl), 2 * unit);
	free(fl.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_fit_and_merge),
		cmocka_unit_test(take_within_unit),
		cmocka_unit_test(claim_exact),
		cmocka_unit_test(model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
