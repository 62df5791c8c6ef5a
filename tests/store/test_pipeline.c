/* SPDX-License-Identifier: MIT */
/*
 * The pipeline: groups come in order with the stored bytes, what the
 * caller writes is written back (read-only tensors are not), over several
 * passes and budgets from one buffer (no overlap) to many; errors of a
 * get end the pass cleanly; bad arguments and misuse are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_store_common.h"

#define NG	7	/* groups */
#define NT	3	/* tensors per group: two written back, one read-only */

struct env {
	swapio_handle			*h;
	swapio_store			*s;
	char				*dir;
	char				keys[NG * NT][64];
	struct swapio_pipeline_tensor	t[NG * NT];
	struct swapio_pipeline_group	g[NG];
};

static size_t tlen(unsigned int i)
{
	return 1000 + (size_t)(i * 104729u % 300000);
}

static int setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->h = t_handle((struct swapio_config){ 0 });
	env->dir = t_tmpdir();
	env->s = ts_open(env->h, env->dir, NULL);
	for (unsigned int i = 0; i < NG * NT; i++) {
		ts_key(env->keys[i], sizeof(env->keys[i]), i);
		env->t[i] = (struct swapio_pipeline_tensor){
			.key = env->keys[i], .len = tlen(i),
			.flags = i % NT == NT - 1 ? SWAPIO_PIPELINE_READ_ONLY : 0,
		};
		if (ts_put(env->s, i, 0, tlen(i)))
			t_die("initial put");
	}
	for (unsigned int g = 0; g < NG; g++)
		env->g[g] = (struct swapio_pipeline_group){
			.tensors = &env->t[g * NT], .nr_tensors = NT,
		};
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	swapio_store_close(env->s);
	swapio_handle_destroy(env->h);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static uint64_t group_bytes(unsigned int g)
{
	uint64_t b = 0;

	for (unsigned int i = g * NT; i < g * NT + NT; i++)
		b += (tlen(i) + 4095) / 4096 * 4096;
	return b;
}

static uint64_t biggest_group(void)
{
	uint64_t biggest = 0;

	for (unsigned int g = 0; g < NG; g++)
		if (group_bytes(g) > biggest)
			biggest = group_bytes(g);
	return biggest;
}

/* One pass: check generation @gen, write @gen + 1 to the writable ones. */
static void one_pass(swapio_pipeline *p, uint64_t gen, bool write_back)
{
	struct swapio_pipeline_stats st;
	struct swapio_pipeline_view v;
	unsigned int want = 0;
	uint64_t rd = 0, wr = 0;

	assert_int_equal(swapio_pipeline_begin(p), 0);
	while (swapio_pipeline_next(p, &v) == 1) {
		assert_int_equal(v.group, want++);
		assert_int_equal(v.nr_tensors, NT);
		for (unsigned int j = 0; j < NT; j++) {
			unsigned int i = v.group * NT + j;
			bool ro = v.tensors[j].flags & SWAPIO_PIPELINE_READ_ONLY;

			assert_int_equal((uintptr_t)v.bufs[j] % 4096, 0);
			assert_int_equal(ts_check(v.bufs[j], tlen(i), i,
						  ro ? 0 : gen), 0);
			rd += tlen(i);
			if (!ro) {
				ts_fill(v.bufs[j], tlen(i), i, gen + 1);
				wr += write_back ? tlen(i) : 0;
			}
		}
		assert_int_equal(swapio_pipeline_release(p, v.group,
							 write_back), 0);
	}
	assert_int_equal(want, NG);
	assert_int_equal(swapio_pipeline_next(p, &v), 0);	/* stays over */
	assert_int_equal(swapio_pipeline_flush(p), 0);
	swapio_pipeline_stats(p, &st);
	assert_int_equal(st.bytes_read, rd);
	assert_int_equal(st.bytes_written, wr);
}

/* A pass with no flush at its end. */
static void overlapped_pass(swapio_pipeline *p, uint64_t gen)
{
	struct swapio_pipeline_view v;

	assert_int_equal(swapio_pipeline_begin(p), 0);
	while (swapio_pipeline_next(p, &v) == 1) {
		for (unsigned int j = 0; j < NT; j++) {
			unsigned int i = v.group * NT + j;

			if (v.tensors[j].flags & SWAPIO_PIPELINE_READ_ONLY)
				continue;
			assert_int_equal(ts_check(v.bufs[j], tlen(i), i, gen),
					 0);
			ts_fill(v.bufs[j], tlen(i), i, gen + 1);
		}
		assert_int_equal(swapio_pipeline_release(p, v.group, 1), 0);
	}
}

static void check_store(struct env *env, uint64_t gen)
{
	for (unsigned int i = 0; i < NG * NT; i++)
		assert_int_equal(ts_get_check(env->s, i, i % NT == NT - 1 ?
					      0 : gen, tlen(i)), 0);
}

/* From one buffer (strictly sequential) to one per group. */
static void passes_and_budgets(void **state)
{
	static const unsigned int nbufs[] = { 1, 2, 3, 4, NG, 2 * NG };
	struct env *env = *state;
	const uint64_t biggest = biggest_group();
	uint64_t gen = 0;

	for (unsigned int k = 0; k < T_ARRAY_SIZE(nbufs); k++) {
		struct swapio_pipeline_config cfg = {
			.budget_bytes = nbufs[k] * biggest + 4095,
			.buf_flags = SWAPIO_BUF_LOCKED,
		};
		struct swapio_pipeline_stats st;
		swapio_pipeline *p;

		assert_int_equal(swapio_pipeline_create(env->s, env->g, NG,
							&cfg, &p), 0);
		swapio_pipeline_stats(p, &st);
		assert_int_equal(st.buffers, nbufs[k] < NG ? nbufs[k] : NG);
		for (int pass = 0; pass < 2; pass++, gen++)
			one_pass(p, gen, true);
		check_store(env, gen);
		/* Back to back, without a flush: each pass reads what the
		 * last one wrote, even while its writes are still going. */
		for (int pass = 0; pass < 3; pass++, gen++)
			overlapped_pass(p, gen);
		assert_int_equal(swapio_pipeline_flush(p), 0);
		check_store(env, gen);
		one_pass(p, gen, false);	/* read-only: nothing changes */
		check_store(env, gen);
		swapio_pipeline_destroy(p);
	}
}

/* A corrupt, missing or resized tensor ends the pass with its error. */
static void get_errors_end_the_pass(void **state)
{
	struct env *env = *state;
	struct swapio_pipeline_view v, held;
	swapio_pipeline *p;
	int ret, n = 0;

	assert_int_equal(swapio_pipeline_create(env->s, env->g, NG, NULL, &p),
			 0);
	/* Group 3's first tensor disappears. */
	assert_int_equal(swapio_store_remove(env->s, env->keys[3 * NT]), 0);
	assert_int_equal(swapio_pipeline_begin(p), 0);
	assert_int_equal(swapio_pipeline_next(p, &held), 1);	/* kept */
	while ((ret = swapio_pipeline_next(p, &v)) == 1) {
		assert_int_equal(swapio_pipeline_release(p, v.group, 0), 0);
		n++;
	}
	assert_int_equal(ret, -ENOENT);
	assert_int_equal(n, 2);				/* groups 1 and 2 */
	assert_int_equal(swapio_pipeline_next(p, &v), 0);
	assert_int_equal(swapio_pipeline_begin(p), -EBUSY);	/* held */
	assert_int_equal(swapio_pipeline_release(p, held.group, 1), 0);

	/* Resized: -EMSGSIZE, this time for group 0. */
	assert_int_equal(ts_put(env->s, 3 * NT, 0, 10), 0);
	assert_int_equal(ts_put(env->s, 0, 0, 10), 0);
	assert_int_equal(swapio_pipeline_begin(p), 0);
	assert_int_equal(swapio_pipeline_next(p, &v), -EMSGSIZE);
	assert_int_equal(swapio_pipeline_next(p, &v), 0);
	swapio_pipeline_destroy(p);
}

static void misuse(void **state)
{
	struct env *env = *state;
	struct swapio_pipeline_config tiny = { .budget_bytes = 4096 };
	struct swapio_pipeline_config two = {
		.budget_bytes = 2 * biggest_group(),
	};
	struct swapio_pipeline_tensor bad = { .key = "x", .len = 0 };
	struct swapio_pipeline_group empty = { .tensors = env->t, .nr_tensors = 0 };
	struct swapio_pipeline_group badg = { .tensors = &bad, .nr_tensors = 1 };
	struct swapio_pipeline_view v, w;
	swapio_pipeline *p = (void *)1;

	assert_int_equal(swapio_pipeline_create(env->s, env->g, NG, &tiny, &p),
			 -EINVAL);
	assert_null(p);
	assert_int_equal(swapio_pipeline_create(env->s, &empty, 1, NULL, &p),
			 -EINVAL);
	assert_int_equal(swapio_pipeline_create(env->s, &badg, 1, NULL, &p),
			 -EINVAL);
	assert_int_equal(swapio_pipeline_create(NULL, env->g, NG, NULL, &p),
			 -EINVAL);
	assert_int_equal(swapio_pipeline_create(env->s, env->g, 0, NULL, &p),
			 -EINVAL);

	assert_int_equal(swapio_pipeline_create(env->s, env->g, NG, &two, &p),
			 0);
	assert_int_equal(swapio_pipeline_next(p, &v), 0);	/* not begun */
	assert_int_equal(swapio_pipeline_begin(p), 0);
	assert_int_equal(swapio_pipeline_begin(p), -EBUSY);
	assert_int_equal(swapio_pipeline_release(p, 0, 0), -EINVAL);
	assert_int_equal(swapio_pipeline_next(p, &v), 1);
	assert_int_equal(swapio_pipeline_next(p, &w), 1);
	/* Both buffers held: not an error of the pass. */
	assert_int_equal(swapio_pipeline_next(p, &v), -EDEADLK);
	assert_int_equal(swapio_pipeline_release(p, 0, 0), 0);
	assert_int_equal(swapio_pipeline_release(p, 0, 0), -EINVAL);
	assert_int_equal(swapio_pipeline_release(p, NG, 0), -EINVAL);
	assert_int_equal(swapio_pipeline_next(p, &v), 1);
	assert_int_equal(v.group, 2);
	/* Destroyed mid-pass with groups held: no leak, no hang. */
	swapio_pipeline_destroy(p);
	swapio_pipeline_destroy(NULL);
}

/*
 * A pass begun and then cancelled reads no more than what was in flight,
 * the next pass starts at group 0 with the right bytes, and a pass cannot
 * be cancelled while a group is held.
 */
static void cancel_reads_no_more(void **state)
{
	struct env *env = *state;
	struct swapio_pipeline_config cfg = {
		.budget_bytes = 3 * biggest_group(), .depth = 2,
	};
	struct swapio_pipeline_stats st;
	struct swapio_pipeline_view v;
	swapio_pipeline *p;

	assert_int_equal(swapio_pipeline_create(env->s, env->g, NG, &cfg, &p),
			 0);
	assert_int_equal(swapio_pipeline_cancel(p), 0);	/* none running */
	assert_int_equal(swapio_pipeline_begin(p), 0);
	assert_int_equal(swapio_pipeline_next(p, &v), 1);
	assert_int_equal(v.group, 0);
	assert_int_equal(swapio_pipeline_cancel(p), -EBUSY);	/* held */
	assert_int_equal(swapio_pipeline_release(p, v.group, 0), 0);
	assert_int_equal(swapio_pipeline_cancel(p), 0);
	swapio_pipeline_stats(p, &st);
	/* Group 0, and at most depth groups read ahead of it. */
	assert_true(st.bytes_read <= group_bytes(0) + group_bytes(1) +
				     group_bytes(2));
	assert_int_equal(swapio_pipeline_next(p, &v), 0);	/* over */
	one_pass(p, 0, false);		/* from group 0, the stored bytes */
	assert_int_equal(swapio_pipeline_cancel(NULL), -EINVAL);
	swapio_pipeline_destroy(p);
}

/* A key in two groups is refused at create: its write-back would race. */
static void key_in_two_groups(void **state)
{
	struct env *env = *state;
	struct swapio_pipeline_tensor t[2] = { env->t[0], env->t[3] };
	struct swapio_pipeline_group g[2] = {
		{ .tensors = &t[0], .nr_tensors = 1 },
		{ .tensors = &t[1], .nr_tensors = 1 },
	};
	swapio_pipeline *p = (void *)1;

	assert_int_equal(swapio_pipeline_create(env->s, g, 2, NULL, &p), 0);
	swapio_pipeline_destroy(p);
	t[1].key = env->t[0].key;
	t[1].len = env->t[0].len;
	assert_int_equal(swapio_pipeline_create(env->s, g, 2, NULL, &p),
			 -EINVAL);
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(passes_and_budgets),
		T(get_errors_end_the_pass),
		T(misuse),
		T(key_in_two_groups),
		T(cancel_reads_no_more),
#undef T
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
