/* SPDX-License-Identifier: MIT */
/*
 * No public call changes errno (swapio.h, "Conventions"). Every public
 * function is called, where it can fail both on success and on failure,
 * with errno preset to a sentinel that must still be there afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "testing.h"

#define SENTINEL	4242

static unsigned int nr_leaks;

static void after(const char *call, int line)
{
	const int e = errno;

	if (e == SENTINEL)
		return;
	fprintf(stderr, "line %d: %s left errno %d (%s)\n", line, call, e,
		strerror(e));
	nr_leaks++;
}

/* E: a call whose result is used; V: a void call. */
#define E(call) ({							\
	__typeof__(call) r_;						\
	errno = SENTINEL;						\
	r_ = (call);							\
	after(#call, __LINE__);						\
	r_; })
#define V(call) do {							\
	errno = SENTINEL;						\
	call;								\
	after(#call, __LINE__);						\
} while (0)

/* Each test ends here: every leak was printed above. */
#define CHECK_NO_LEAKS() do {						\
	unsigned int n_ = nr_leaks;					\
	nr_leaks = 0;							\
	assert_int_equal(n_, 0);					\
} while (0)

static swapio_handle *mk_handle(uint32_t flags)
{
	struct swapio_config cfg = { .flags = flags, .engine = t_engine() };
	swapio_handle *h = NULL;

	assert_int_equal(E(swapio_handle_create(&cfg, &h)), 0);
	return h;
}

static void config_calls(void **state)
{
	static const char good[] = "queue_depth = 8\n";
	struct t_env *env = *state;
	struct swapio_config cfg = { .queue_depth = 8 }, got;
	char *missing = t_path(env->dir, "missing.conf");
	char *nodir = t_path(env->dir, "no/such/dir.conf");

	assert_int_equal(E(swapio_config_parse(good, sizeof(good) - 1, &got)),
			 0);
	assert_int_equal(E(swapio_config_parse("bogus", 5, &got)), -EINVAL);
	assert_int_equal(E(swapio_config_save(env->path, &cfg)), 0);
	assert_int_equal(E(swapio_config_save(nodir, &cfg)), -ENOENT);
	assert_int_equal(E(swapio_config_load(env->path, &got)), 0);
	assert_int_equal(E(swapio_config_load(missing, &got)), -ENOENT);
	assert_int_equal(E(swapio_config_load(env->dir, &got)), -EISDIR);
	free(missing);
	free(nodir);
	CHECK_NO_LEAKS();
}

static void handle_calls(void **state)
{
	struct swapio_config bad = { .block_size = 4095 }, cfg;
	struct swapio_stats st;
	swapio_handle *h = NULL;

	(void)state;
	assert_int_equal(E(swapio_handle_create(&bad, &h)), -EINVAL);
	assert_int_equal(E(swapio_handle_create(NULL, NULL)), -EINVAL);
	setenv("SWAPIO_ENGINE", "bogus", 1);
	bad = (struct swapio_config){ 0 };
	assert_int_equal(E(swapio_handle_create(&bad, &h)), -EINVAL);
	unsetenv("SWAPIO_ENGINE");
	h = mk_handle(0);
	V(swapio_handle_config(h, &cfg));
	assert_non_null(E(swapio_handle_engine(h)));
	assert_non_null(E(swapio_handle_engine_note(h)));
	assert_true(E(swapio_handle_eventfd(h)) >= 0);
	assert_int_equal(E(swapio_handle_eventfd(NULL)), -EINVAL);
	V(swapio_handle_stats(h, &st));
	V(swapio_handle_stats_reset(h));
	V(swapio_handle_destroy(h));
	V(swapio_handle_destroy(NULL));
	assert_non_null(E(swapio_strerror(-ENOENT)));
	assert_non_null(E(swapio_strerror(SWAPIO_EBADSTORE)));
	assert_non_null(E(swapio_strerror(-123456)));
	assert_int_equal(E(swapio_version()), SWAPIO_VERSION_NUMBER);
	assert_non_null(E(swapio_engine_name(SWAPIO_ENGINE_THREADS)));
	assert_true(E(swapio_engine_parse("threads")) >= 0);
	assert_true(E(swapio_engine_parse("bogus")) < 0);
	for (unsigned int e = 0; e <= SWAPIO_ENGINE_THREADS + 1; e++)
		(void)E(swapio_engine_probe(e));
	CHECK_NO_LEAKS();
}

static void file_calls(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = mk_handle(0);
	char *missing = t_path(env->dir, "missing");
	char *fifo = t_path(env->dir, "fifo");
	char *fresh = t_path(env->dir, "fresh");
	swapio_file *f = NULL;
	uint32_t ma, oa;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(E(swapio_file_open(h, missing, SWAPIO_O_READ, &f)),
			 -ENOENT);
	assert_int_equal(E(swapio_file_open(h, env->dir, SWAPIO_O_READ, &f)),
			 -EISDIR);
	assert_int_equal(E(swapio_file_open(h, fifo, SWAPIO_O_READ, &f)),
			 -ESPIPE);
	assert_int_equal(E(swapio_file_open(h, fresh, SWAPIO_O_READ |
					    SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					    &f)), 0);
	(void)E(swapio_file_direct(f));
	V(swapio_file_alignment(f, &ma, &oa));
	assert_int_equal(E(swapio_file_size(f)), 0);
	assert_int_equal(E(swapio_file_size(NULL)), -EINVAL);
	assert_int_equal(E(swapio_path_size(fresh)), 0);
	assert_int_equal(E(swapio_path_size(missing)), -ENOENT);
	assert_int_equal(E(swapio_path_size(env->dir)), -EISDIR);
	assert_int_equal(E(swapio_file_close(f)), 0);
	assert_int_equal(E(swapio_file_close(NULL)), 0);
	swapio_handle_destroy(h);
	free(missing);
	free(fifo);
	free(fresh);
	CHECK_NO_LEAKS();
}

/* Synchronous and asynchronous transfers, and their failures. */
static void io_calls(void **state)
{
	const size_t n = 65536 + 3;
	struct t_env *env = *state;
	swapio_handle *h = mk_handle(0);
	unsigned char *src = t_random_buf(n, 1), *dst = t_zalloc(n);
	char *missing = t_path(env->dir, "missing");
	swapio_op *ops[2] = { NULL, NULL };
	swapio_file *f, *wo;

	assert_int_equal(swapio_file_open(h, env->path, SWAPIO_O_READ |
		SWAPIO_O_WRITE | SWAPIO_O_CREATE | SWAPIO_O_TRUNC, &f), 0);
	assert_int_equal(swapio_file_open(h, env->path, SWAPIO_O_WRITE, &wo),
			 0);
	assert_int_equal(E(swapio_pwrite(h, f, src, n, 1)), n);
	assert_int_equal(E(swapio_pread(h, f, dst, n, 1)), n);
	assert_memory_equal(src, dst, n);
	assert_true(E(swapio_pread(h, wo, dst, n, 0)) < 0);
	assert_true(E(swapio_pwrite(h, f, src, n, UINT64_MAX - 1)) < 0);
	assert_int_equal(E(swapio_pwrite_path(h, env->path, src, n, 7)), n);
	assert_int_equal(E(swapio_pread_path(h, env->path, dst, n, 7)), n);
	assert_int_equal(E(swapio_pread_path(h, missing, dst, n, 0)),
			 -ENOENT);
	assert_int_equal(E(swapio_pwrite_path(h, env->dir, src, n, 0)),
			 -EISDIR);

	assert_int_equal(E(swapio_submit_write(h, f, src, n, 3, &ops[0])), 0);
	assert_int_equal(E(swapio_op_wait(ops[0], -1)), n);
	assert_int_equal(E(swapio_op_done(ops[0])), 1);
	V(swapio_op_free(ops[0]));
	assert_int_equal(E(swapio_submit_read(h, wo, dst, n, 0, &ops[0])),
			 -EBADF);
	assert_int_equal(E(swapio_submit_read(h, f, dst, n, 3, &ops[0])), 0);
	assert_int_equal(E(swapio_submit_write_path(h, env->path, src, n,
						    n + 9, &ops[1])), 0);
	assert_true(E(swapio_wait_any(ops, 2, -1)) >= 0);
	assert_int_equal(E(swapio_wait_all(h, -1)), 0);
	V(swapio_op_free(ops[0]));
	V(swapio_op_free(ops[1]));
	assert_int_equal(E(swapio_submit_read_path(h, env->path, dst, n, 9,
						   &ops[0])), 0);
	assert_int_equal(E(swapio_op_wait(ops[0], -1)), n);
	V(swapio_op_free(ops[0]));
	assert_int_equal(E(swapio_submit_read_path(h, missing, dst, n, 0,
						   &ops[0])), -ENOENT);
	assert_int_equal(E(swapio_submit_read(h, NULL, dst, n, 0, &ops[0])),
			 -EINVAL);
	assert_int_equal(E(swapio_op_wait(NULL, 0)), -EINVAL);
	assert_int_equal(E(swapio_wait_any(NULL, 1, 0)), -EINVAL);
	assert_int_equal(E(swapio_wait_all(NULL, 0)), -EINVAL);
	V(swapio_op_free(NULL));
	swapio_file_close(wo);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src);
	free(dst);
	free(missing);
	CHECK_NO_LEAKS();
}

static void buffer_and_pool_calls(void **state)
{
	unsigned char local[16];
	swapio_pool *p = NULL;
	void *b = NULL, *b2;

	(void)state;
	assert_int_equal(E(swapio_buf_alloc(8192, SWAPIO_BUF_HUGE, &b)), 0);
	V(swapio_buf_free(b, 8192));
	/* mmap itself fails: the size cannot exist. */
	assert_true(E(swapio_buf_alloc(SIZE_MAX & ~4095ull, 0, &b)) < 0);
	assert_int_equal(E(swapio_buf_alloc(0, 0, &b)), -EINVAL);
	(void)E(swapio_buf_alloc(1ull << 40, SWAPIO_BUF_LOCKED, &b));
	if (b)
		swapio_buf_free(b, 1ull << 40);
	V(swapio_buf_free(NULL, 0));

	assert_int_equal(E(swapio_pool_create(1ull << 50, 4, 0, &p)), -ENOMEM);
	assert_int_equal(E(swapio_pool_create(0, 1, 0, &p)), -EINVAL);
	assert_int_equal(E(swapio_pool_create(5000, 1, 0, &p)), 0);
	assert_int_equal(E(swapio_pool_get(p, 0, &b)), 0);
	assert_int_equal(E(swapio_pool_get(p, 0, &b2)), -EAGAIN);
	assert_int_equal(E(swapio_pool_get(p, 20, &b2)), -ETIMEDOUT);
	assert_int_equal(E(swapio_pool_put(p, local)), -EINVAL);
	assert_int_equal(E(swapio_pool_put(p, b)), 0);
	assert_true(E(swapio_pool_buf_size(p)) >= 5000);
	assert_int_equal(E(swapio_pool_count(p)), 1);
	assert_int_equal(E(swapio_pool_available(p)), 1);
	(void)E(swapio_pool_locked(p));
	V(swapio_pool_destroy(p));
	V(swapio_pool_destroy(NULL));
	CHECK_NO_LEAKS();
}

static void store_calls(void **state)
{
	struct t_env *env = *state;
	struct swapio_store_config cfg = { .flags = SWAPIO_STORE_NO_CREATE };
	char *dir = t_path(env->dir, "store"), *none = t_path(env->dir, "no");
	unsigned char *src = t_random_buf(10000, 2), *dst = t_zalloc(10000);
	swapio_handle *h = mk_handle(0);
	struct swapio_store_info info;
	swapio_store_op *op = NULL;
	swapio_store *s = NULL;
	char **keys = NULL;
	size_t nr = 0;

	assert_int_equal(E(swapio_store_open(h, none, &cfg, &s)), -ENOENT);
	t_write_file(none, "x", 1);
	assert_int_equal(E(swapio_store_open(h, none, NULL, &s)), -ENOTDIR);
	assert_int_equal(E(swapio_store_open(h, dir, NULL, &s)), 0);
	assert_int_equal(E(swapio_store_put(s, "a", src, 10000)), 0);
	assert_int_equal(E(swapio_store_get(s, "a", dst, 10000)), 0);
	assert_memory_equal(src, dst, 10000);
	assert_int_equal(E(swapio_store_get(s, "b", dst, 10000)), -ENOENT);
	assert_int_equal(E(swapio_store_get(s, "a", dst, 3)), -EMSGSIZE);
	assert_int_equal(E(swapio_store_submit_put(s, "b", src, 5000, &op)),
			 0);
	assert_int_equal(E(swapio_store_op_wait(op, -1)), 5000);
	(void)E(swapio_store_op_done(op));
	V(swapio_store_op_free(op));
	assert_int_equal(E(swapio_store_submit_get(s, "b", dst, 5000, &op)),
			 0);
	assert_int_equal(E(swapio_store_op_wait(op, -1)), 5000);
	V(swapio_store_op_free(op));
	assert_int_equal(E(swapio_store_submit_get(s, "c", dst, 1, &op)),
			 -ENOENT);
	assert_int_equal(E(swapio_store_size(s, "a")), 10000);
	assert_int_equal(E(swapio_store_size(s, "c")), -ENOENT);
	assert_int_equal(E(swapio_store_list(s, &keys, &nr)), 0);
	free(keys);	/* one block */
	assert_int_equal(E(swapio_store_remove(s, "b")), 0);
	assert_int_equal(E(swapio_store_remove(s, "b")), -ENOENT);
	assert_int_equal(E(swapio_store_sync(s)), 0);
	V(swapio_store_info(s, &info));
	(void)E(swapio_store_checksum(src, 10000));
	V(swapio_store_close(s));
	V(swapio_store_close(NULL));
	swapio_handle_destroy(h);
	free(src);
	free(dst);
	free(dir);
	free(none);
	CHECK_NO_LEAKS();
}

static void pipeline_calls(void **state)
{
	struct t_env *env = *state;
	struct swapio_pipeline_tensor t[2] = {
		{ .key = "t0", .len = 1000 }, { .key = "t1", .len = 3000 },
	};
	struct swapio_pipeline_group g = { t, 2 }, empty = { t, 0 };
	char *dir = t_path(env->dir, "pstore");
	unsigned char *src = t_random_buf(3000, 3);
	swapio_handle *h = mk_handle(0);
	struct swapio_pipeline_stats st;
	struct swapio_pipeline_view v;
	swapio_pipeline *p = NULL;
	swapio_store *s;
	int ret;

	assert_int_equal(swapio_store_open(h, dir, NULL, &s), 0);
	assert_int_equal(swapio_store_put(s, "t0", src, 1000), 0);
	assert_int_equal(swapio_store_put(s, "t1", src, 3000), 0);
	assert_int_equal(E(swapio_pipeline_create(s, &empty, 1, NULL, &p)),
			 -EINVAL);
	assert_int_equal(E(swapio_pipeline_create(s, &g, 1, NULL, &p)), 0);
	assert_int_equal(E(swapio_pipeline_begin(p)), 0);
	while ((ret = E(swapio_pipeline_next(p, &v))) == 1)
		assert_int_equal(E(swapio_pipeline_release(p, v.group, 1)),
				 0);
	assert_int_equal(ret, 0);
	assert_int_equal(E(swapio_pipeline_release(p, 7, 0)), -EINVAL);
	assert_int_equal(E(swapio_pipeline_flush(p)), 0);
	V(swapio_pipeline_stats(p, &st));
	V(swapio_pipeline_destroy(p));
	V(swapio_pipeline_destroy(NULL));
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(src);
	free(dir);
	CHECK_NO_LEAKS();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_calls),
		cmocka_unit_test(handle_calls),
		cmocka_unit_test(file_calls),
		cmocka_unit_test(io_calls),
		cmocka_unit_test(buffer_and_pool_calls),
		cmocka_unit_test(store_calls),
		cmocka_unit_test(pipeline_calls),
	};

	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
