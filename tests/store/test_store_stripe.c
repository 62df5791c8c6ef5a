/* SPDX-License-Identifier: MIT */
/*
 * A store striped over three drives, each with a handle of its own
 * (swapio_store_open_multi): values split across the drives and read back
 * byte for byte, small values spread evenly, the drive list recorded and
 * enforced, a missing drive named, one failing drive (the fault engine on
 * its handle) failing only the values that touch it, and a slow drive
 * holding up no other. The rest of the store's rules are the store's own
 * tests run striped (name.striped, tests/store/store.cmake).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_fault.h"
#include "test_store_common.h"

#define NR	3
#define UNIT	(32u << 10)
#define KiB	1024u

struct env {
	char		*root;
	char		*dirs[NR];
	swapio_handle	*h[NR];
};

static int each_setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));
	char name[16];

	env->root = t_tmpdir();
	for (unsigned int i = 0; i < NR; i++) {
		snprintf(name, sizeof(name), "drive%u", i);
		env->dirs[i] = t_path(env->root, name);
		env->h[i] = t_handle((struct swapio_config){ .threads = 1 });
	}
	*state = env;
	return 0;
}

static int each_teardown(void **state)
{
	struct env *env = *state;

	for (unsigned int i = 0; i < NR; i++) {
		swapio_handle_destroy(env->h[i]);
		free(env->dirs[i]);
	}
	t_rmdir(env->root);
	free(env);
	return 0;
}

/* Open over env's drives in the order @order (NULL: 0, 1, 2), @n of them. */
static int open_n(struct env *env, const unsigned int *order, unsigned int n,
		  uint64_t unit, swapio_store **s, unsigned int *failed)
{
	struct swapio_store_config cfg = { .stripe_unit = unit,
					   .grow_bytes = 1u << 20 };
	struct swapio_store_drive dv[NR];

	for (unsigned int i = 0; i < n; i++) {
		unsigned int d = order ? order[i] : i;

		dv[i] = (struct swapio_store_drive){ .h = env->h[d],
						     .dir = env->dirs[d] };
	}
	return swapio_store_open_multi(dv, n, &cfg, s, failed);
}

static swapio_store *open_all(struct env *env)
{
	swapio_store *s;
	int ret = open_n(env, NULL, NR, UNIT, &s, NULL);

	if (ret)
		t_die("swapio_store_open_multi: %s", swapio_strerror(ret));
	return s;
}

/* Bytes of drive @i's data file. */
static size_t data_bytes(struct env *env, unsigned int i)
{
	char *p = t_path(env->dirs[i], "data");
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return (size_t)st.st_size;
}

/* The drive whose data file holds @n bytes of @needle, or NR. */
static unsigned int drive_holding(struct env *env, const void *needle,
				  size_t n)
{
	unsigned int found = NR;

	for (unsigned int i = 0; i < NR; i++) {
		char *p = t_path(env->dirs[i], "data");
		size_t size;
		unsigned char *buf = t_read_file(p, &size);

		if (memmem(buf, size, needle, n))
			found = i;
		free(buf);
		free(p);
	}
	return found;
}

/* Odd sizes, up to several rows of units: read back byte for byte. */
static void large_values_split(void **state)
{
	static const size_t sizes[] = { 1, 4095, UNIT - 4096, UNIT,
					UNIT + 1, 3 * UNIT + 17,
					(1u << 20) + 4097, (5u << 20) + 3 };
	struct env *env = *state;
	swapio_store *s = open_all(env);
	struct swapio_store_info info;
	unsigned char *buf, *got;
	size_t big = sizes[T_ARRAY_SIZE(sizes) - 1];
	unsigned int hits = 0;

	for (unsigned int i = 0; i < T_ARRAY_SIZE(sizes); i++)
		assert_int_equal(ts_put(s, i, 1, sizes[i]), 0);
	for (unsigned int i = 0; i < T_ARRAY_SIZE(sizes); i++)
		assert_int_equal(ts_get_check(s, i, 1, sizes[i]), 0);
	swapio_store_info(s, &info);
	assert_int_equal(info.drives, NR);
	assert_int_equal(info.stripe_unit, UNIT);
	/* Every drive holds a third of the data space, and each a piece
	 * of the largest value: a unit-sized run of it found on each. */
	buf = t_malloc(big);
	ts_fill(buf, big, T_ARRAY_SIZE(sizes) - 1, 1);
	for (unsigned int i = 0; i < NR; i++) {
		assert_int_equal(data_bytes(env, i), info.file_bytes / NR);
		for (size_t off = 0; off + 4096 <= big; off += UNIT / 2)
			if (drive_holding(env, buf + off, 4096) == i) {
				hits++;
				break;
			}
	}
	assert_int_equal(hits, NR);
	swapio_store_close(s);
	/* Reopened, the same bytes. */
	s = open_all(env);
	got = t_malloc(big);
	assert_int_equal(swapio_store_get(s, "layer.7/weights", got, big), 0);
	assert_int_equal(t_first_diff(got, buf, big), SIZE_MAX);
	swapio_store_close(s);
	free(got);
	free(buf);
}

/* Many small values: each drive gets about a third of them. */
static void small_values_spread(void **state)
{
	const unsigned int n = 240;
	struct env *env = *state;
	swapio_store *s = open_all(env);
	unsigned int per[NR + 1] = { 0 };
	unsigned char *buf = t_malloc(4096);

	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(ts_put(s, i, 1, 4096), 0);
	swapio_store_close(s);
	for (unsigned int i = 0; i < n; i++) {
		ts_fill(buf, 4096, i, 1);
		per[drive_holding(env, buf, 4096)]++;
	}
	assert_int_equal(per[NR], 0);
	for (unsigned int i = 0; i < NR; i++) {
		print_message("drive %u: %u of %u values\n", i, per[i], n);
		assert_true(per[i] >= n / NR - UNIT / 8192 &&
			    per[i] <= n / NR + UNIT / 8192);
	}
	free(buf);
}

/* The list is recorded: another count, order or unit is refused. */
static void drive_list_enforced(void **state)
{
	static const unsigned int swapped[NR] = { 0, 2, 1 };
	struct env *env = *state;
	swapio_store *s = open_all(env);
	unsigned int failed = 99;

	assert_int_equal(ts_put(s, 1, 1, 100 * KiB), 0);
	swapio_store_close(s);

	assert_int_equal(open_n(env, NULL, 2, UNIT, &s, &failed),
			 SWAPIO_EDRIVES);
	assert_null(s);
	assert_int_equal(failed, 0);
	assert_int_equal(open_n(env, swapped, NR, UNIT, &s, &failed),
			 SWAPIO_EDRIVES);
	assert_int_equal(failed, 1);
	assert_int_equal(open_n(env, NULL, NR, 2 * UNIT, &s, &failed),
			 SWAPIO_EDRIVES);
	/* Drive 0 alone, as a plain store: refused too. */
	assert_int_equal(swapio_store_open(env->h[0], env->dirs[0], NULL, &s),
			 SWAPIO_EDRIVES);
	/* A unit of 0 takes the recorded one. */
	assert_int_equal(open_n(env, NULL, NR, 0, &s, &failed), 0);
	assert_int_equal(failed, NR);
	assert_int_equal(ts_get_check(s, 1, 1, 100 * KiB), 0);
	swapio_store_close(s);
	/* Nothing was created or changed by the refused opens. */
	s = open_all(env);
	assert_int_equal(ts_get_check(s, 1, 1, 100 * KiB), 0);
	swapio_store_close(s);
}

/* A drive that is gone is named, never created empty. */
static void missing_drive_named(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_all(env);
	char *moved = t_path(env->root, "elsewhere");
	unsigned int failed = 99;

	assert_int_equal(ts_put(s, 1, 1, 200 * KiB), 0);
	swapio_store_close(s);
	assert_int_equal(rename(env->dirs[2], moved), 0);
	assert_int_equal(open_n(env, NULL, NR, UNIT, &s, &failed), -ENOENT);
	assert_int_equal(failed, 2);
	assert_int_equal(access(env->dirs[2], F_OK), -1);	/* not made */
	/* An empty directory in its place is not the drive either. */
	assert_int_equal(mkdir(env->dirs[2], 0755), 0);
	assert_int_equal(open_n(env, NULL, NR, UNIT, &s, &failed),
			 SWAPIO_EDRIVES);
	assert_int_equal(failed, 2);
	t_rmdir(strdup(env->dirs[2]));
	assert_int_equal(rename(moved, env->dirs[2]), 0);
	s = open_all(env);
	assert_int_equal(ts_get_check(s, 1, 1, 200 * KiB), 0);
	swapio_store_close(s);
	free(moved);
}

/* A new store over a drive that holds another store's data: refused. */
static void foreign_drive_refused(void **state)
{
	struct env *env = *state;
	swapio_store *s;
	unsigned int failed = 99;

	s = ts_open(env->h[1], env->dirs[1], NULL);	/* a plain store */
	assert_int_equal(ts_put(s, 1, 1, 5000), 0);
	swapio_store_close(s);
	assert_int_equal(open_n(env, NULL, NR, UNIT, &s, &failed),
			 SWAPIO_EDRIVES);
	assert_int_equal(failed, 1);
	s = ts_open(env->h[1], env->dirs[1], NULL);	/* still intact */
	assert_int_equal(ts_get_check(s, 1, 1, 5000), 0);
	swapio_store_close(s);
	/* And the failed creation left no store on drive 0. */
	assert_int_equal(swapio_store_open(env->h[0], env->dirs[0],
		&(struct swapio_store_config){
			.flags = SWAPIO_STORE_NO_CREATE }, &s), -ENOENT);
}

/*
 * Drive 1 fails every write (@err) or every read: only the values that
 * touch it fail, with that error; everything else works, and after a
 * reopen on healthy handles every value that was stored reads back.
 */
/* Odd values: every other one fits in a unit, the rest up to 4 units. */
static size_t len_of(unsigned int i)
{
	return i % 2 ? 1 + i * 977u % (UNIT - 4096) :
		       1 + i * 7919u % (4 * UNIT);
}

static void one_drive_fails(struct env *env, const char *spec, int err,
			    bool reads)
{
	const unsigned int n = 60;
	swapio_store *s = open_all(env);
	unsigned int ok = 0, bad = 0;
	bool stored[60];
	int ret;

	/* Before the fault: values of every size, all stored. */
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(ts_put(s, i, 1, len_of(i)), 0);
	swapio_store_close(s);
	swapio_handle_destroy(env->h[1]);
	env->h[1] = tf_handle(spec, (struct swapio_config){ .threads = 1 });
	s = open_all(env);
	for (unsigned int i = 0; i < n; i++) {
		size_t len = len_of(i);

		ret = reads ? ts_get_check(s, i, 1, len) :
			      ts_put(s, n + i, 1, len);
		stored[i] = !ret;
		if (ret)
			assert_int_equal(ret, err);
		/* A value over a row of units touches every drive. */
		if (len + 4096 > NR * UNIT)
			assert_int_equal(ret, err);
		/* One within a unit is on one drive: a third of them fail. */
		if (len + 4096 <= UNIT)
			ret ? bad++ : ok++;
	}
	print_message("%s: of %u one-unit values %u unharmed, %u failed\n",
		      spec, ok + bad, ok, bad);
	assert_true(ok >= (ok + bad) / 2 && bad >= (ok + bad) / 5);
	if (!reads)	/* the earlier values are still all there */
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(ts_get_check(s, i, 1, len_of(i)), 0);
	swapio_store_close(s);

	swapio_handle_destroy(env->h[1]);
	env->h[1] = t_handle((struct swapio_config){ .threads = 1 });
	s = open_all(env);
	for (unsigned int i = 0; i < n; i++) {
		size_t len = len_of(i);
		char key[64];

		assert_int_equal(ts_get_check(s, i, 1, len), 0);
		if (reads)
			continue;
		ts_key(key, sizeof(key), n + i);
		if (stored[i])
			assert_int_equal(ts_get_check(s, n + i, 1, len), 0);
		else
			assert_int_equal(swapio_store_size(s, key), -ENOENT);
	}
	swapio_store_close(s);
}

static void one_drive_eio_writes(void **state)
{
	one_drive_fails(*state, "errno=EIO,dir=write", -EIO, false);
}

static void one_drive_enospc_writes(void **state)
{
	one_drive_fails(*state, "errno=ENOSPC,dir=write", -ENOSPC, false);
}

static void one_drive_eio_reads(void **state)
{
	one_drive_fails(*state, "errno=EIO,dir=read", -EIO, true);
}

/*
 * Drive 1 answers each request 400 ms late. A large value is in flight
 * across all drives; a get of a small value on drive 0 or 2 finishes
 * long before it, because each drive has its own handle and queue.
 */
static void slow_drive_holds_up_no_other(void **state)
{
	struct env *env = *state;
	const size_t big = 4u << 20;
	unsigned char *buf = t_malloc(big), *small = t_malloc(4096);
	swapio_store_op *op;
	swapio_store *s = open_all(env);
	unsigned int id = UINT32_MAX;
	uint64_t t0, dt;

	for (unsigned int i = 0; i < 12; i++)
		assert_int_equal(ts_put(s, i, 1, 4096), 0);
	swapio_store_close(s);
	for (unsigned int i = 0; i < 12 && id == UINT32_MAX; i++) {
		ts_fill(small, 4096, i, 1);
		if (drive_holding(env, small, 4096) != 1)
			id = i;
	}
	assert_int_not_equal(id, UINT32_MAX);
	swapio_handle_destroy(env->h[1]);
	env->h[1] = tf_handle("delay_ms=400",
			      (struct swapio_config){ .threads = 1 });
	s = open_all(env);
	ts_fill(buf, big, 99, 1);
	assert_int_equal(swapio_store_submit_put(s, "big", buf, big, &op), 0);
	t0 = tf_now_ms();
	assert_int_equal(ts_get_check(s, id, 1, 4096), 0);
	dt = tf_now_ms() - t0;
	print_message("small get %llu ms while drive 1 is slow\n",
		      (unsigned long long)dt);
	/* Below the slow drive's 400 ms: a get that waited behind it
	 * fails, a loaded machine's scheduling does not. */
	assert_true(dt < 350);
	assert_false(swapio_store_op_done(op));
	assert_int_equal(swapio_store_op_wait(op, -1), (int64_t)big);
	assert_true(tf_now_ms() - t0 >= 350);
	swapio_store_op_free(op);
	swapio_store_close(s);
	free(small);
	free(buf);
}

/* Bad arguments, the same directory twice among them: -EINVAL. */
static void bad_arguments(void **state)
{
	struct env *env = *state;
	struct swapio_store_drive dv[2] = {
		{ .h = env->h[0], .dir = env->dirs[0] },
		{ .h = env->h[1], .dir = env->dirs[0] },
	};
	struct swapio_store_config cfg = { .stripe_unit = 4096 + 512 };
	struct swapio_store_info info;
	unsigned int failed = 99;
	swapio_store *s = (swapio_store *)1;

	assert_int_equal(swapio_store_open_multi(dv, 0, NULL, &s, &failed),
			 -EINVAL);
	assert_null(s);
	assert_int_equal(failed, 0);
	assert_int_equal(swapio_store_open_multi(NULL, 2, NULL, &s, NULL),
			 -EINVAL);
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(swapio_store_open_multi(dv, SWAPIO_STORE_DRIVES_MAX +
						 1, NULL, &s, NULL), -EINVAL);
	dv[1].h = NULL;
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, NULL),
			 -EINVAL);
	dv[1].h = env->h[1];
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 -EINVAL);
	assert_int_equal(failed, 1);
	assert_non_null(strstr(swapio_error_detail(), "the same directory"));
	dv[1].dir = env->dirs[1];
	assert_int_equal(swapio_store_open_multi(dv, 2, &cfg, &s, &failed),
			 -EINVAL);	/* not a multiple of the block */
	assert_string_not_equal(swapio_strerror(SWAPIO_EDRIVES),
				"unknown error");
	cfg.stripe_unit = 8192;
	assert_int_equal(swapio_store_open_multi(dv, 2, &cfg, &s, &failed), 0);
	assert_int_equal(ts_put(s, 1, 1, 50000), 0);
	assert_int_equal(ts_get_check(s, 1, 1, 50000), 0);
	swapio_store_close(s);
	/* No unit given for a new store: 1 MiB. */
	dv[0].dir = env->dirs[2];
	dv[1].dir = env->dirs[1];
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 SWAPIO_EDRIVES);	/* dirs[1] is taken */
	assert_int_equal(failed, 1);
	t_rmdir(strdup(env->dirs[1]));
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed), 0);
	swapio_store_info(s, &info);
	assert_int_equal(info.stripe_unit, 1u << 20);
	assert_int_equal(ts_put(s, 1, 1, 3u << 20), 0);
	assert_int_equal(ts_get_check(s, 1, 1, 3u << 20), 0);
	swapio_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
		T(large_values_split),
		T(small_values_spread),
		T(drive_list_enforced),
		T(missing_drive_named),
		T(foreign_drive_refused),
		T(one_drive_eio_writes),
		T(one_drive_enospc_writes),
		T(one_drive_eio_reads),
		T(slow_drive_holds_up_no_other),
		T(bad_arguments),
#undef T
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
