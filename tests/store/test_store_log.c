/* SPDX-License-Identifier: MIT */
/*
 * The store's log. A torn or never-written page in the middle of the
 * index ends the log (later records lost, the store opens) unless a sync
 * vouched for it (SWAPIO_EBADSTORE, and RECOVER brings every key back).
 * Through the fd-level hook (SWAPIO_FAULT_FD): a failed index append
 * changes nothing and keeps the index's reserve; a failed fallocate of
 * the data file is a clean -ENOSPC; a failed fdatasync is what sync
 * reports; a misspelt spec is refused.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "test_store_common.h"

#define NKEYS	40
#define LEN	5000

struct env {
	swapio_handle	*h;
	char		*dir;
};

static int setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->h = t_handle((struct swapio_config){ 0 });
	env->dir = t_tmpdir();
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	unsetenv("SWAPIO_FAULT_FD");
	swapio_handle_destroy(env->h);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static swapio_store *open_with(struct env *env, const char *spec)
{
	swapio_store *s;

	if (spec)
		setenv("SWAPIO_FAULT_FD", spec, 1);
	s = ts_open(env->h, env->dir, NULL);
	unsetenv("SWAPIO_FAULT_FD");
	return s;
}

/*
 * 40 puts (one record each after HEAD and the SYNC record that ends a new
 * log), the process gone without a close (the log as a crash leaves it);
 * then zero bytes 4096..8191.
 */
static void fill_and_tear(struct env *env, bool sync)
{
	swapio_store *s = open_with(env, NULL);
	char *idx = t_path(env->dir, "index");
	char zero[4096] = { 0 };
	int fd;

	for (unsigned int i = 0; i < NKEYS; i++)
		assert_int_equal(ts_put(s, i, 1, LEN + i), 0);
	if (sync)
		assert_int_equal(swapio_store_sync(s), 0);
	ts_close_crashed(s, env->dir);
	fd = open(idx, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zero, sizeof(zero), 4096), 4096);
	close(fd);
	free(idx);
}

/* A page that never reached the disk, without a sync: the log ends. */
static void torn_page_without_sync(void **state)
{
	struct env *env = *state;
	struct swapio_store_info in;
	swapio_store *s;
	unsigned int i;

	fill_and_tear(env, false);
	s = open_with(env, NULL);
	/* Records 2..11 end before byte 4096: keys 0..9 are intact. */
	for (i = 0; i < 10; i++)
		assert_int_equal(ts_get_check(s, i, 1, LEN + i), 0);
	for (; i < NKEYS; i++)
		assert_int_equal(ts_get_check(s, i, 1, LEN + i), -ENOENT);
	/* Said so: records 12..41 dropped (zeros, then whole records). */
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 42 - 12);
	assert_int_equal(ts_put(s, 20, 2, 777), 0);	/* the log goes on */
	swapio_store_close(s);
	s = open_with(env, NULL);
	/* The tail this open zeroed is not counted again. */
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 0);
	assert_int_equal(ts_get_check(s, 20, 2, 777), 0);
	assert_int_equal(ts_get_check(s, 3, 1, LEN + 3), 0);
	swapio_store_close(s);
}

/* The same page after a sync vouched for it: damage, and said so. */
static void torn_page_after_sync(void **state)
{
	struct env *env = *state;
	struct swapio_store_config rcfg = { .flags = SWAPIO_STORE_RECOVER };
	swapio_store *s;

	fill_and_tear(env, true);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s),
			 SWAPIO_EBADSTORE);
	s = ts_open(env->h, env->dir, &rcfg);
	for (unsigned int i = 0; i < NKEYS; i++)
		assert_int_equal(ts_get_check(s, i, 1, LEN + i), 0);
	swapio_store_close(s);
}

static uint64_t allocated(const char *dir, const char *name)
{
	char *p = t_path(dir, name);
	struct stat st;

	if (stat(p, &st))
		t_die("stat %s: %s", p, strerror(errno));
	free(p);
	return (uint64_t)st.st_blocks * 512;
}

/* The 2nd index write fails half way with ENOSPC: nothing lost. */
static void failed_append_keeps_reserve(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_with(env, NULL);

	swapio_store_close(s);		/* created; the next open appends */
	s = open_with(env, "call=pwrite,file=index,errno=ENOSPC,nth=3");
	assert_int_equal(ts_put(s, 1, 1, LEN), 0);	/* GEN, PUT */
	assert_int_equal(ts_put(s, 2, 1, LEN), -ENOSPC);
	assert_int_equal(ts_get_check(s, 2, 1, LEN), -ENOENT);
	/* The reserve past the end is still allocated. */
	assert_true(allocated(env->dir, "index") >= (256u << 10));
	assert_int_equal(ts_put(s, 3, 1, LEN), 0);
	assert_int_equal(swapio_store_remove(s, "layer.1/weights"), 0);
	swapio_store_close(s);
	s = open_with(env, NULL);
	assert_int_equal(ts_get_check(s, 1, 1, LEN), -ENOENT);
	assert_int_equal(ts_get_check(s, 2, 1, LEN), -ENOENT);
	assert_int_equal(ts_get_check(s, 3, 1, LEN), 0);
	swapio_store_close(s);
}

/* The data file cannot grow: a clean -ENOSPC, the store as it was. */
static void failed_fallocate(void **state)
{
	struct env *env = *state;
	struct swapio_store_info a, b;
	swapio_store *s = open_with(env, NULL);

	assert_int_equal(ts_put(s, 1, 1, LEN), 0);
	swapio_store_close(s);
	s = open_with(env, "call=fallocate,file=data,errno=ENOSPC");
	swapio_store_info(s, &a);
	assert_int_equal(ts_put(s, 2, 1, a.free_bytes + 1), -ENOSPC);
	swapio_store_info(s, &b);
	assert_int_equal(a.file_bytes, b.file_bytes);
	assert_int_equal(a.free_bytes, b.free_bytes);
	assert_int_equal(ts_get_check(s, 1, 1, LEN), 0);
	swapio_store_close(s);
}

/* A failed fdatasync (of the data, of the index) is sync's answer. */
static void failed_fdatasync(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_with(env, "call=fdatasync,file=index,"
					 "errno=EIO,nth=1");

	assert_int_equal(ts_put(s, 1, 1, LEN), 0);
	assert_int_equal(swapio_store_sync(s), -EIO);
	assert_int_equal(swapio_store_sync(s), 0);	/* nth=1 only */
	swapio_store_close(s);
	s = open_with(env, "call=fdatasync,file=data,errno=EIO");
	assert_int_equal(swapio_store_sync(s), -EIO);
	assert_int_equal(ts_get_check(s, 1, 1, LEN), 0);
	swapio_store_close(s);
}

static void spec_typo_refused(void **state)
{
	static const char *const bad[] = {
		"call=pwrit,errno=EIO", "call=pwrite", "call=pwrite,errno=EIOX",
		"call=pwrite,errno=EIO,nth=0", "call=pwrite,file=idx,errno=EIO",
		"call=pwrite,errno=EIO,errno=EIO", "errno=EIO",
		"call=fdatasync,delay_ms=99999999",
	};
	struct env *env = *state;
	swapio_store *s;

	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		setenv("SWAPIO_FAULT_FD", bad[i], 1);
		assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s),
				 -EINVAL);
	}
	unsetenv("SWAPIO_FAULT_FD");
}

/*
 * SWAPIO_FAULT_FD reads its list with SWAPIO_FAULT's parser (kv.c): every
 * errno name SWAPIO_FAULT takes is taken here too, and the same shapes are
 * refused (a repeated key, a sign, too long a spec, an item without '=').
 * The faults are set never to fire (nth far beyond this test's calls).
 */
static void spec_shares_fault_grammar(void **state)
{
	static const char *const names[] = {
		"EIO", "ENOSPC", "EINTR", "EAGAIN", "EDQUOT", "EROFS",
		"ENOMEM", "EPERM", "ENOSYS", "EBADF", "EOPNOTSUPP", "EBADR",
	};
	static const char *const bad[] = {
		"call=pwrite,errno=EIO,nth=+5", "call=pwrite,errno=EIO,nth= 5",
		"call=pwrite,call=pwrite,errno=EIO", "call=pwrite,EIO",
		"call=pwrite,errno=eio", "call=pwrite,errno=EIO,nth=5x",
	};
	struct env *env = *state;
	char spec[400];
	swapio_store *s;

	for (size_t i = 0; i < T_ARRAY_SIZE(names); i++) {
		snprintf(spec, sizeof(spec),
			 "call=fallocate,errno=%s,nth=1000000000", names[i]);
		setenv("SWAPIO_FAULT_FD", spec, 1);
		if (ts_store_open(env->h, env->dir, NULL, &s))
			fail_msg("refused: \"%s\"", spec);
		swapio_store_close(s);
	}
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		setenv("SWAPIO_FAULT_FD", bad[i], 1);
		if (ts_store_open(env->h, env->dir, NULL, &s) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
	/* Longer than any real spec: refused, not truncated. */
	strcpy(spec, "call=pwrite,errno=EIO,nth=");
	memset(spec + strlen(spec), '0', 300);
	strcpy(spec + 326, "1");
	setenv("SWAPIO_FAULT_FD", spec, 1);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s), -EINVAL);
	setenv("SWAPIO_FAULT_FD", "call=pwrite,errno=EIO,nth=0001", 1);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s), 0);
	swapio_store_close(s);
	unsetenv("SWAPIO_FAULT_FD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(spec_shares_fault_grammar),
		T(torn_page_without_sync),
		T(torn_page_after_sync),
		T(failed_append_keeps_reserve),
		T(failed_fallocate),
		T(failed_fdatasync),
		T(spec_typo_refused),
#undef T
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
