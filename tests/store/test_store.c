/* SPDX-License-Identifier: MIT */
/*
 * The store: round trips over many keys and sizes, replace, remove, list,
 * size, reopen after sync, the errors of bad input (unknown key, wrong
 * size, bad keys, a flipped byte on disk, a damaged index, a second
 * owner), copy-on-write under a reader, compaction and fixed capacity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "test_store_common.h"

#define KiB	1024u
#define MiB	(1024u * 1024u)

struct env {
	swapio_handle	*h;
	char		*dir;
};

static int setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->h = t_handle((struct swapio_config){ .threads = 2 });
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	swapio_handle_destroy(env->h);
	free(env);
	return 0;
}

/* Each test gets a fresh store directory. */
static int each_setup(void **state)
{
	struct env *env = *state;

	env->dir = t_tmpdir();
	return 0;
}

static int each_teardown(void **state)
{
	struct env *env = *state;

	t_rmdir(env->dir);
	env->dir = NULL;
	return 0;
}

static swapio_store *open_store(struct env *env, uint32_t flags)
{
	struct swapio_store_config cfg = { .flags = flags };

	return ts_open(env->h, env->dir, &cfg);
}

static const size_t sizes[] = {
	0, 1, 2, 511, 512, 4095, 4096, 4097, 65536 + 3, MiB - 1, MiB,
	3 * MiB + 17,
};

static void roundtrip_sizes(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);

	for (unsigned int i = 0; i < T_ARRAY_SIZE(sizes); i++)
		assert_int_equal(ts_put(s, i, 1, sizes[i]), 0);
	for (unsigned int i = 0; i < T_ARRAY_SIZE(sizes); i++) {
		char key[64];

		ts_key(key, sizeof(key), i);
		assert_int_equal(swapio_store_size(s, key), sizes[i]);
		assert_int_equal(ts_get_check(s, i, 1, sizes[i]), 0);
	}
	swapio_store_close(s);
}

/* 64 MiB + 3 from an unaligned buffer, into an unaligned buffer. */
static void roundtrip_large_unaligned(void **state)
{
	const size_t n = 64 * MiB + 3;
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	unsigned char *src = t_malloc(n + 1), *dst = t_malloc(n + 5);

	ts_fill(src + 1, n, 7, 3);
	assert_int_equal(swapio_store_put(s, "big", src + 1, n), 0);
	assert_int_equal(swapio_store_get(s, "big", dst + 5, n), 0);
	assert_int_equal(ts_check(dst + 5, n, 7, 3), 0);
	free(src);
	free(dst);
	swapio_store_close(s);
}

/* Hundreds of keys in flight at once, asynchronously. */
static void many_keys_async(void **state)
{
	enum { N = 300 };
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	swapio_store_op *ops[N];
	unsigned char *bufs[N];
	char key[64];

	for (unsigned int i = 0; i < N; i++) {
		size_t len = 1 + (i * 7919u) % (70 * KiB);

		bufs[i] = t_malloc(len);
		ts_fill(bufs[i], len, i, 5);
		ts_key(key, sizeof(key), i);
		assert_int_equal(swapio_store_submit_put(s, key, bufs[i], len,
							 &ops[i]), 0);
	}
	for (unsigned int i = 0; i < N; i++) {
		assert_int_equal(swapio_store_op_wait(ops[i], -1),
				 1 + (i * 7919u) % (70 * KiB));
		swapio_store_op_free(ops[i]);
		memset(bufs[i], 0, 1 + (i * 7919u) % (70 * KiB));
	}
	for (unsigned int i = 0; i < N; i++) {
		size_t len = 1 + (i * 7919u) % (70 * KiB);

		ts_key(key, sizeof(key), i);
		assert_int_equal(swapio_store_submit_get(s, key, bufs[i], len,
							 &ops[i]), 0);
	}
	for (unsigned int i = 0; i < N; i++) {
		size_t len = 1 + (i * 7919u) % (70 * KiB);

		assert_int_equal(swapio_store_op_wait(ops[i], -1), len);
		assert_int_equal(swapio_store_op_wait(ops[i], 0), len);
		swapio_store_op_free(ops[i]);
		assert_int_equal(ts_check(bufs[i], len, i, 5), 0);
		free(bufs[i]);
	}
	swapio_store_close(s);
}

static void replace_and_remove(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	struct swapio_store_info a, b;
	char key[64];

	ts_key(key, sizeof(key), 1);
	assert_int_equal(ts_put(s, 1, 1, 100 * KiB), 0);
	swapio_store_info(s, &a);
	assert_int_equal(ts_put(s, 1, 2, 33), 0);	/* smaller */
	assert_int_equal(swapio_store_size(s, key), 33);
	assert_int_equal(ts_get_check(s, 1, 2, 33), 0);
	assert_int_equal(ts_put(s, 1, 3, 300 * KiB + 1), 0);	/* larger */
	assert_int_equal(ts_get_check(s, 1, 3, 300 * KiB + 1), 0);
	swapio_store_info(s, &b);
	assert_int_equal(b.keys, 1);
	assert_int_equal(b.value_bytes, 300 * KiB + 1);
	assert_int_equal(b.used_bytes + b.free_bytes, b.file_bytes);

	assert_int_equal(swapio_store_remove(s, key), 0);
	assert_int_equal(swapio_store_remove(s, key), -ENOENT);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);
	assert_int_equal(ts_get_check(s, 1, 3, 300 * KiB + 1), -ENOENT);
	swapio_store_info(s, &b);
	assert_int_equal(b.keys, 0);
	assert_int_equal(b.used_bytes, 0);
	assert_int_equal(b.free_bytes, b.file_bytes);
	assert_true(a.used_bytes > 0);
	swapio_store_close(s);
}

static void list_sorted(void **state)
{
	static const char *const want[] = { "a", "a/b", "b", "zz" };
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	char **keys;
	size_t n;

	assert_int_equal(swapio_store_list(s, &keys, &n), 0);
	assert_int_equal(n, 0);
	free(keys);
	for (int i = 3; i >= 0; i--)
		assert_int_equal(swapio_store_put(s, want[i], "x", 1), 0);
	assert_int_equal(swapio_store_put(s, "gone", "x", 1), 0);
	assert_int_equal(swapio_store_remove(s, "gone"), 0);
	assert_int_equal(swapio_store_list(s, &keys, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(keys[i], want[i]);
	assert_null(keys[n]);
	free(keys);
	swapio_store_close(s);
}

/* Replace, remove and add, sync, close: a reopen sees exactly that. */
static void reopen_after_sync(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	char key[64];
	size_t n;
	char **keys;

	for (unsigned int i = 0; i < 40; i++)
		assert_int_equal(ts_put(s, i, 1, 1000 + i * 997), 0);
	for (unsigned int i = 0; i < 40; i += 3)
		assert_int_equal(ts_put(s, i, 2, 5000 + i), 0);
	for (unsigned int i = 1; i < 40; i += 5) {
		ts_key(key, sizeof(key), i);
		assert_int_equal(swapio_store_remove(s, key), 0);
	}
	assert_int_equal(swapio_store_sync(s), 0);
	swapio_store_close(s);

	s = open_store(env, SWAPIO_STORE_NO_CREATE);
	for (unsigned int i = 0; i < 40; i++) {
		if (i % 5 == 1)
			assert_int_equal(ts_get_check(s, i, 1, 1), -ENOENT);
		else if (i % 3 == 0)
			assert_int_equal(ts_get_check(s, i, 2, 5000 + i), 0);
		else
			assert_int_equal(ts_get_check(s, i, 1, 1000 + i * 997),
					 0);
	}
	assert_int_equal(swapio_store_list(s, &keys, &n), 0);
	assert_int_equal(n, 40 - 8);
	free(keys);
	/* New puts after a reopen land in free space, not on live data. */
	for (unsigned int i = 100; i < 110; i++)
		assert_int_equal(ts_put(s, i, 9, 3000), 0);
	for (unsigned int i = 0; i < 40; i += 3)
		if (i % 5 != 1)
			assert_int_equal(ts_get_check(s, i, 2, 5000 + i), 0);
	swapio_store_close(s);
}

static void bad_input(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	char longkey[SWAPIO_STORE_KEY_MAX + 2];
	swapio_store_op *op = (void *)1;
	char buf[16];

	assert_int_equal(swapio_store_put(s, "k", "0123456789", 10), 0);
	assert_int_equal(swapio_store_get(s, "nope", buf, 10), -ENOENT);
	assert_int_equal(swapio_store_get(s, "k", buf, 9), -EMSGSIZE);
	assert_int_equal(swapio_store_get(s, "k", buf, 11), -EMSGSIZE);
	assert_int_equal(swapio_store_put(s, "", buf, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, NULL, buf, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, "k", NULL, 1), -EINVAL);
	assert_int_equal(swapio_store_submit_get(s, "k", buf, 10, NULL),
			 -EINVAL);
	assert_int_equal(swapio_store_submit_get(NULL, "k", buf, 10, &op),
			 -EINVAL);
	assert_null(op);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	assert_int_equal(swapio_store_put(s, longkey, buf, 1), -EINVAL);
	longkey[SWAPIO_STORE_KEY_MAX] = 0;	/* 255 bytes: the longest */
	assert_int_equal(swapio_store_put(s, longkey, "abc", 3), 0);
	assert_int_equal(swapio_store_get(s, longkey, buf, 3), 0);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(swapio_store_remove(s, "nope"), -ENOENT);
	assert_int_equal(swapio_store_op_wait(NULL, 0), -EINVAL);
	swapio_store_op_free(NULL);
	swapio_store_close(NULL);
	swapio_store_close(s);

	assert_int_equal(ts_store_open(env->h, env->dir,
		&(struct swapio_store_config){ .reserved[2] = 1 }, &s),
		-EINVAL);
	assert_null(s);
	assert_int_equal(ts_store_open(NULL, env->dir, NULL, &s), -EINVAL);
}

static void no_create(void **state)
{
	struct env *env = *state;
	struct swapio_store_config cfg = { .flags = SWAPIO_STORE_NO_CREATE };
	char *sub = t_path(env->dir, "missing");
	swapio_store *s;

	assert_int_equal(ts_store_open(env->h, sub, &cfg, &s), -ENOENT);
	assert_int_equal(ts_store_open(env->h, env->dir, &cfg, &s),
			 -ENOENT);
	free(sub);
}

/* Flip one byte of a value's payload on disk: the get says -EBADMSG. */
static void flipped_byte(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	char *data = t_path(env->dir, "data");
	struct swapio_store_info info;
	unsigned char *buf = t_malloc(MiB);
	unsigned char c;
	int fd;

	assert_int_equal(ts_put(s, 1, 1, MiB), 0);	/* at offset 0 */
	swapio_store_info(s, &info);
	fd = open(data, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, info.block + 12345), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, info.block + 12345), 1);
	assert_int_equal(ts_get_check(s, 1, 1, MiB), -EBADMSG);
	swapio_store_close(s);
	close(fd);	/* a writer elsewhere holds up a reopen */

	/* Without checksums the same read "succeeds": documented. */
	s = open_store(env, SWAPIO_STORE_NO_CHECKSUM);
	assert_int_equal(ts_get_check(s, 1, 1, MiB), 1);
	swapio_store_close(s);
	/* Restored, the value reads back intact. */
	fd = open(data, O_RDWR);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, info.block + 12345), 1);
	close(fd);
	s = open_store(env, 0);
	assert_int_equal(ts_get_check(s, 1, 1, MiB), 0);
	swapio_store_close(s);
	free(buf);
	free(data);
}

/* A get started before a replace reads the old value, intact. */
static void reader_pins_old_extent(void **state)
{
	const size_t n = 2 * MiB;
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	unsigned char *buf = t_malloc(n);
	struct swapio_store_info info;
	swapio_store_op *op;
	char key[64];

	ts_key(key, sizeof(key), 3);
	assert_int_equal(ts_put(s, 3, 1, n), 0);
	assert_int_equal(swapio_store_submit_get(s, key, buf, n, &op), 0);
	assert_int_equal(ts_put(s, 3, 2, n), 0);
	assert_int_equal(swapio_store_remove(s, key), 0);
	/* The removed, replaced extent is still reserved for the reader... */
	assert_int_equal(ts_put(s, 4, 1, n), 0);
	assert_int_equal(ts_put(s, 5, 1, n), 0);
	assert_int_equal(swapio_store_op_wait(op, -1), n);
	assert_int_equal(ts_check(buf, n, 3, 1), 0);
	swapio_store_op_free(op);
	/* ...and free once it is done. */
	swapio_store_info(s, &info);
	assert_int_equal(info.keys, 2);
	assert_int_equal(info.used_bytes + info.free_bytes, info.file_bytes);
	assert_true(info.free_bytes >= n);
	free(buf);
	swapio_store_close(s);
}

/* Open twice: in this process (a second open file description) and in a
 * child; both are refused while the first owner holds it. */
static void second_owner_busy(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0), *s2;
	int status;
	pid_t pid;

	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s2),
			 -EBUSY);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		swapio_handle *h;
		int ret;

		/* The parent's workers did not survive fork(): a new handle. */
		if (swapio_handle_create(&(struct swapio_config){ 0 }, &h))
			_exit(3);
		ret = ts_store_open(h, env->dir, NULL, &s2);
		_exit(ret == -EBUSY ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	swapio_store_close(s);
	s = open_store(env, 0);		/* free again once closed */
	swapio_store_close(s);
}

/*
 * A killed owner's writes still in flight hold the data file open for
 * writing; a reopen waits for them. Played here by a child that keeps the
 * file open for 300 ms.
 */
static void reopen_waits_for_writers(void **state)
{
	struct env *env = *state;
	char *data = t_path(env->dir, "data");
	swapio_store *s = open_store(env, 0);
	struct timespec t0, t1;
	int pipefd[2], status;
	pid_t pid;
	char c;

	assert_int_equal(ts_put(s, 1, 1, 5000), 0);
	swapio_store_close(s);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(data, O_RDWR);

		(void)!write(pipefd[1], "x", 1);
		usleep(300 * 1000);
		_exit(fd < 0);
	}
	assert_int_equal(read(pipefd[0], &c, 1), 1);	/* it has it open */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = open_store(env, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 200);
	assert_int_equal(ts_get_check(s, 1, 1, 5000), 0);
	swapio_store_close(s);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(pipefd[0]);
	close(pipefd[1]);
	free(data);
}

static void write_index(struct env *env, const void *buf, size_t n)
{
	char *idx = t_path(env->dir, "index");

	t_write_file(idx, buf, n);
	free(idx);
}

/* Garbage, truncated or missing index: a clear error, or a recovery. */
static void damaged_index(void **state)
{
	struct env *env = *state;
	struct swapio_store_config rcfg = { .flags = SWAPIO_STORE_RECOVER };
	char *idx = t_path(env->dir, "index");
	swapio_store *s = open_store(env, 0);
	unsigned char *orig, *junk;
	size_t n;

	for (unsigned int i = 0; i < 6; i++)
		assert_int_equal(ts_put(s, i, 1, 10000 + i), 0);
	assert_int_equal(ts_put(s, 2, 2, 500), 0);
	/* HEAD, the SYNC ending a new log, 7 PUTs: as a crash leaves it. */
	ts_close_crashed(s, env->dir);
	orig = t_read_file(idx, &n);
	assert_int_equal(n, 9 * 320);

	/* A torn last record is a crash's leftover: dropped, no error. */
	write_index(env, orig, n - 100);
	s = open_store(env, 0);
	assert_int_equal(ts_get_check(s, 2, 1, 10002), 0);
	swapio_store_close(s);

	/*
	 * Garbage in the middle, and no sync ever vouched for it: the log
	 * ends there (a power loss can leave that), later records are lost.
	 */
	junk = t_random_buf(n, 1);
	memcpy(junk, orig, n);
	memset(junk + 3 * 320 + 17, 0xee, 40);
	write_index(env, junk, n);
	s = open_store(env, 0);
	assert_int_equal(ts_get_check(s, 0, 1, 10000), 0);
	assert_int_equal(swapio_store_size(s, "layer.1/weights"), -ENOENT);
	swapio_store_close(s);
	t_write_file(idx, "short", 5);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s),
			 SWAPIO_EBADSTORE);
	t_fill_random(junk, n, 2);
	write_index(env, junk, n);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s),
			 SWAPIO_EBADSTORE);
	assert_int_equal(unlink(idx), 0);
	assert_int_equal(ts_store_open(env->h, env->dir, NULL, &s),
			 SWAPIO_EBADSTORE);

	/* RECOVER rebuilds from the headers: every key, newest value. */
	s = ts_open(env->h, env->dir, &rcfg);
	for (unsigned int i = 0; i < 6; i++)
		assert_int_equal(ts_get_check(s, i, i == 2 ? 2 : 1,
					      i == 2 ? 500 : 10000 + i), 0);
	assert_int_equal(ts_put(s, 9, 1, 777), 0);
	swapio_store_close(s);
	s = open_store(env, 0);		/* and the new index is good */
	assert_int_equal(ts_get_check(s, 9, 1, 777), 0);
	assert_int_equal(ts_get_check(s, 2, 2, 500), 0);
	swapio_store_close(s);
	free(orig);
	free(junk);
	free(idx);
}

/* Thousands of replaces keep the index short; a reopen still agrees. */
static void compaction(void **state)
{
	struct env *env = *state;
	swapio_store *s = open_store(env, 0);
	struct swapio_store_info info;

	for (unsigned int g = 1; g <= 1500; g++)
		assert_int_equal(ts_put(s, g % 3, g, 100 + g % 7), 0);
	swapio_store_info(s, &info);
	assert_true(info.index_bytes < 1100 * 320);
	assert_int_equal(info.keys, 3);
	swapio_store_close(s);
	s = open_store(env, 0);
	for (unsigned int g = 1498; g <= 1500; g++)
		assert_int_equal(ts_get_check(s, g % 3, g, 100 + g % 7), 0);
	swapio_store_close(s);
}

/* A fixed capacity is allocated at once and is a hard limit. */
static void fixed_capacity(void **state)
{
	struct env *env = *state;
	struct swapio_store_config cfg = { .capacity = 4 * MiB };
	swapio_store *s = ts_open(env->h, env->dir, &cfg);
	struct swapio_store_info info;
	unsigned int n = 0;
	uint64_t cap = 4 * MiB, row;
	int ret;

	swapio_store_info(s, &info);
	/* Striped, the capacity is whole rows of stripe units. */
	row = info.drives > 1 ? info.drives * info.stripe_unit : 1;
	cap = (cap + row - 1) / row * row;
	assert_int_equal(info.file_bytes, cap);
	while ((ret = ts_put(s, n, 1, 300 * KiB)) == 0)
		n++;
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(n, cap / (300 * KiB + info.block));
	swapio_store_info(s, &info);
	assert_int_equal(info.file_bytes, cap);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(ts_get_check(s, i, 1, 300 * KiB), 0);
	/* A replace needs room for the new copy before the old one goes. */
	assert_int_equal(ts_put(s, 0, 2, 1000), 0);
	assert_int_equal(ts_get_check(s, 0, 2, 1000), 0);
	swapio_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
		T(roundtrip_sizes),
		T(roundtrip_large_unaligned),
		T(many_keys_async),
		T(replace_and_remove),
		T(list_sorted),
		T(reopen_after_sync),
		T(bad_input),
		T(no_create),
		T(flipped_byte),
		T(reader_pins_old_extent),
		T(second_owner_busy),
		T(reopen_waits_for_writers),
		T(damaged_index),
		T(compaction),
		T(fixed_capacity),
#undef T
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, setup, teardown);
}
