/* SPDX-License-Identifier: MIT */
/*
 * Bad input to every public function of the core: NULL pointers, zero
 * and huge lengths, offsets beyond INT64_MAX, wrong flags, files of the
 * wrong kind or direction. Each call must return the negative errno its
 * contract in swapio.h names (or be the documented no-op), never crash,
 * hang or leak. Use after free (a freed op, a closed file, a destroyed
 * handle) is undefined and not tried; see docs/RELIABILITY.md.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_fault.h"

struct env {
	char		*dir;
	char		*path;		/* 64 KiB of random bytes */
	swapio_handle	*h;
	swapio_file	*f;		/* path, read and write */
	unsigned char	buf[65536];
};

static int env_setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->dir = t_tmpdir();
	env->path = t_path(env->dir, "data");
	env->h = tf_handle(NULL, (struct swapio_config){ 0 });
	env->f = tf_open(env->h, env->path);
	t_fill_random(env->buf, sizeof(env->buf), 1);
	assert_int_equal(tf_pwrite(env->h, env->f, env->buf, sizeof(env->buf),
				   0), sizeof(env->buf));
	*state = env;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *env = *state;

	assert_int_equal(swapio_file_close(env->f), 0);
	swapio_handle_destroy(env->h);
	free(env->path);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static void handle_config(void **state)
{
	static const struct swapio_config bad[] = {
		{ .block_size = 4095 }, { .block_size = 4097 },
		{ .block_size = (1ull << 30) + 4096 },
		{ .block_size = UINT64_MAX }, { .block_size = 1ull << 63 },
		{ .queue_depth = 4097 }, { .queue_depth = UINT32_MAX },
		{ .threads = 65 }, { .threads = UINT32_MAX },
		{ .engine = 4 }, { .engine = UINT32_MAX },
		{ .flags = 1u << 31 }, { .reserved = { 0, 0, 0, 0, 1 } },
		{ .reserved32 = 1 }, { .gpu_path = 3 },
	};
	struct swapio_config cfg = { 0 };
	swapio_handle *h = (swapio_handle *)1;

	(void)state;
	assert_int_equal(swapio_handle_create(NULL, NULL), -EINVAL);
	assert_int_equal(swapio_handle_create(&cfg, NULL), -EINVAL);
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		h = (swapio_handle *)1;
		assert_int_equal(swapio_handle_create(&bad[i], &h), -EINVAL);
		assert_null(h);
	}
	setenv("SWAPIO_ENGINE", "bogus", 1);
	assert_int_equal(swapio_handle_create(&cfg, &h), -EINVAL);
	unsetenv("SWAPIO_ENGINE");

	/* The NULL no-ops and what the accessors give for NULL. */
	swapio_handle_destroy(NULL);
	swapio_handle_config(NULL, &cfg);
	swapio_handle_stats(NULL, NULL);
	swapio_handle_stats_reset(NULL);
	assert_string_equal(swapio_handle_engine(NULL), "none");
	assert_string_equal(swapio_handle_engine_note(NULL), "");
	assert_int_equal(swapio_handle_eventfd(NULL), -EINVAL);
}

static void handle_accessors(void **state)
{
	struct env *env = *state;
	struct swapio_stats st;
	int efd;

	swapio_handle_config(env->h, NULL);
	swapio_handle_stats(env->h, NULL);
	swapio_handle_stats(env->h, &st);
	efd = swapio_handle_eventfd(env->h);
	assert_true(efd >= 0);
	/* One descriptor per handle. */
	assert_int_equal(swapio_handle_eventfd(env->h), efd);
}

static void file_open(void **state)
{
	struct env *env = *state;
	swapio_file *f = (swapio_file *)1;
	char *missing = t_path(env->dir, "missing");

	assert_int_equal(swapio_file_open(NULL, env->path, SWAPIO_O_READ, &f),
			 -EINVAL);
	assert_null(f);
	assert_int_equal(swapio_file_open(env->h, NULL, SWAPIO_O_READ, &f),
			 -EINVAL);
	assert_int_equal(swapio_file_open(env->h, env->path, SWAPIO_O_READ,
					  NULL), -EINVAL);
	assert_int_equal(swapio_file_open(env->h, env->path, 0, &f), -EINVAL);
	assert_int_equal(swapio_file_open(env->h, env->path, SWAPIO_O_CREATE,
					  &f), -EINVAL);
	assert_int_equal(swapio_file_open(env->h, env->path,
					  SWAPIO_O_READ | (1u << 20), &f),
			 -EINVAL);
	assert_null(f);
	assert_int_equal(swapio_file_open(env->h, "", SWAPIO_O_READ, &f),
			 -ENOENT);
	assert_int_equal(swapio_file_open(env->h, missing, SWAPIO_O_READ, &f),
			 -ENOENT);
	assert_int_equal(swapio_file_open(env->h, env->dir, SWAPIO_O_READ, &f),
			 -EISDIR);
	assert_int_equal(swapio_file_open(env->h, env->dir, SWAPIO_O_WRITE,
					  &f), -EISDIR);
	assert_null(f);
	free(missing);
}

/*
 * What cannot be read at an offset is refused at open, in every
 * direction and by path too: a FIFO (which an io_uring or libaio read
 * would wait on forever), a terminal-like character device.
 */
static void file_not_seekable(void **state)
{
	static const unsigned int dirs[] = {
		SWAPIO_O_READ, SWAPIO_O_READ | SWAPIO_O_WRITE,
	};
	struct env *env = *state;
	char *fifo = t_path(env->dir, "fifo");
	swapio_file *f = (swapio_file *)1;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(20);	/* a hang ends the test with SIGALRM */
	for (size_t i = 0; i < T_ARRAY_SIZE(dirs); i++) {
		assert_int_equal(swapio_file_open(env->h, fifo, dirs[i], &f),
				 -ESPIPE);
		assert_null(f);
		assert_int_equal(swapio_file_open(env->h, "/dev/null",
						  dirs[i], &f), -ESPIPE);
	}
	/* Write-only with no reader: the kernel's ENXIO, not a wait. */
	assert_int_equal(swapio_file_open(env->h, fifo, SWAPIO_O_WRITE, &f),
			 -ENXIO);
	assert_int_equal(swapio_pread_path(env->h, fifo, env->buf, 1, 0),
			 -ESPIPE);
	alarm(0);
	unlink(fifo);
	free(fifo);
}

static void file_accessors(void **state)
{
	struct env *env = *state;
	uint32_t ma = 1, oa = 1;
	char *missing = t_path(env->dir, "missing");

	assert_int_equal(swapio_file_close(NULL), 0);
	assert_int_equal(swapio_file_direct(NULL), 0);
	swapio_file_alignment(NULL, &ma, &oa);
	assert_int_equal(ma, 0);
	assert_int_equal(oa, 0);
	swapio_file_alignment(env->f, NULL, NULL);
	assert_int_equal(swapio_file_size(NULL), -EINVAL);
	assert_int_equal(swapio_file_size(env->f), sizeof(env->buf));
	assert_int_equal(swapio_path_size(NULL), -EINVAL);
	assert_int_equal(swapio_path_size(""), -ENOENT);
	assert_int_equal(swapio_path_size(missing), -ENOENT);
	assert_int_equal(swapio_path_size(env->dir), -EISDIR);
	assert_int_equal(swapio_path_size(env->path), sizeof(env->buf));
	free(missing);
}

/* Offsets and lengths: the checks happen before any op exists. */
static void io_ranges(void **state)
{
	struct env *env = *state;
	swapio_handle *h = env->h;
	swapio_file *f = env->f;
	unsigned char *b = env->buf;

	assert_int_equal(swapio_pread(NULL, f, b, 1, 0), -EINVAL);
	assert_int_equal(swapio_pread(h, NULL, b, 1, 0), -EINVAL);
	assert_int_equal(swapio_pread(h, f, NULL, 1, 0), -EINVAL);
	assert_int_equal(swapio_pwrite(h, f, NULL, 1, 0), -EINVAL);
	assert_int_equal(swapio_pread(h, f, b, 1, (uint64_t)INT64_MAX + 1),
			 -EINVAL);
	assert_int_equal(swapio_pwrite(h, f, b, 1, UINT64_MAX), -EINVAL);
	assert_int_equal(swapio_pread(h, f, b, 1, INT64_MAX), -EINVAL);
	assert_int_equal(swapio_pread(h, f, b, SIZE_MAX, 0), -EINVAL);
	assert_int_equal(swapio_pwrite(h, f, b, (size_t)INT64_MAX + 1, 0),
			 -EINVAL);
	assert_int_equal(swapio_pread(h, f, b, 2, INT64_MAX - 1), -EINVAL);
	/* Zero bytes: nothing to do, even with no buffer or at the limit. */
	assert_int_equal(swapio_pread(h, f, NULL, 0, 0), 0);
	assert_int_equal(swapio_pwrite(h, f, NULL, 0, INT64_MAX), 0);
	assert_int_equal(swapio_pread(h, f, b, 0, INT64_MAX), 0);
	/* Legal but far past the end: a read finds end of file. */
	assert_int_equal(swapio_pread(h, f, b, 1, INT64_MAX - 1), 0);
	assert_int_equal(swapio_pread(h, f, b, 4096, (1ull << 62)), 0);
	assert_int_equal(swapio_file_size(f), sizeof(env->buf));
}

/* A write beyond the filesystem's largest file fails as the kernel says
 * (ext4: -EFBIG). Filesystems that allow it make a sparse file. */
static void io_write_far(void **state)
{
	struct env *env = *state;
	char *path = t_path(env->dir, "far");
	swapio_file *f = tf_open(env->h, path);
	ssize_t res;

	res = swapio_pwrite(env->h, f, env->buf, 1, INT64_MAX - 1);
	print_message("1 byte at INT64_MAX - 1: %zd (%s)\n", res,
		      swapio_strerror((int)res));
	assert_true(res == 1 || res == -EFBIG || res == -EINVAL);
	res = swapio_pwrite(env->h, f, env->buf, 8192, 1ull << 62);
	print_message("8 KiB at 2^62: %zd (%s)\n", res,
		      swapio_strerror((int)res));
	assert_true(res == 8192 || res == -EFBIG || res == -EINVAL);
	assert_int_equal(swapio_file_close(f), 0);
	unlink(path);
	free(path);
}

static void io_direction(void **state)
{
	struct env *env = *state;
	swapio_handle *other = tf_handle(NULL, (struct swapio_config){ 0 });
	swapio_file *ro, *wo;

	assert_int_equal(swapio_file_open(env->h, env->path, SWAPIO_O_READ,
					  &ro), 0);
	assert_int_equal(swapio_file_open(env->h, env->path, SWAPIO_O_WRITE,
					  &wo), 0);
	assert_int_equal(swapio_pwrite(env->h, ro, env->buf, 10, 0), -EBADF);
	assert_int_equal(swapio_pread(env->h, wo, env->buf, 10, 0), -EBADF);
	/* A file belongs to the handle that opened it. */
	assert_int_equal(swapio_pread(other, ro, env->buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_file_close(ro), 0);
	assert_int_equal(swapio_file_close(wo), 0);
	swapio_handle_destroy(other);
	tf_check_file(env->path, env->buf, sizeof(env->buf), 0);
}

static void io_paths(void **state)
{
	struct env *env = *state;
	char *missing = t_path(env->dir, "missing");
	unsigned char *b = env->buf;

	assert_int_equal(swapio_pread_path(NULL, env->path, b, 1, 0), -EINVAL);
	assert_int_equal(swapio_pread_path(env->h, NULL, b, 1, 0), -EINVAL);
	assert_int_equal(swapio_pwrite_path(env->h, NULL, b, 1, 0), -EINVAL);
	assert_int_equal(swapio_pread_path(env->h, missing, b, 1, 0), -ENOENT);
	assert_int_equal(swapio_pread_path(env->h, env->dir, b, 1, 0),
			 -EISDIR);
	assert_int_equal(swapio_pwrite_path(env->h, env->dir, b, 1, 0),
			 -EISDIR);
	assert_int_equal(swapio_pwrite_path(env->h, env->path, b, 1,
					    UINT64_MAX), -EINVAL);
	assert_int_equal(swapio_pwrite_path(env->h, env->path, NULL, 1, 0),
			 -EINVAL);
	assert_int_equal(access(missing, F_OK), -1);	/* not created */
	free(missing);
}

static void submit_args(void **state)
{
	struct env *env = *state;
	swapio_op *op = (swapio_op *)1;
	unsigned char *b = env->buf;

	assert_int_equal(swapio_submit_read(env->h, env->f, b, 1, 0, NULL),
			 -EINVAL);
	assert_int_equal(swapio_submit_write(env->h, env->f, b, 1, 0, NULL),
			 -EINVAL);
	assert_int_equal(swapio_submit_read_path(env->h, env->path, b, 1, 0,
						 NULL), -EINVAL);
	assert_int_equal(swapio_submit_write_path(env->h, env->path, b, 1, 0,
						  NULL), -EINVAL);
	assert_int_equal(swapio_submit_read(NULL, env->f, b, 1, 0, &op),
			 -EINVAL);
	assert_null(op);	/* no op is made on error */
	op = (swapio_op *)1;
	assert_int_equal(swapio_submit_write(env->h, env->f, b, 1, UINT64_MAX,
					     &op), -EINVAL);
	assert_null(op);
	op = (swapio_op *)1;
	assert_int_equal(swapio_submit_read_path(env->h, "", b, 1, 0, &op),
			 -ENOENT);
	assert_null(op);
	op = (swapio_op *)1;
	assert_int_equal(swapio_submit_write_path(NULL, env->path, b, 1, 0,
						  &op), -EINVAL);
	assert_null(op);
	/* A zero-length op is made and completes at once with 0. */
	assert_int_equal(swapio_submit_read(env->h, env->f, NULL, 0, 0, &op),
			 0);
	assert_int_equal(swapio_op_done(op), 1);
	assert_int_equal(swapio_op_wait(op, 0), 0);
	swapio_op_free(op);
}

static void wait_args(void **state)
{
	struct env *env = *state;
	swapio_handle *other = tf_handle(NULL, (struct swapio_config){ 0 });
	swapio_file *of = tf_open(other, env->path);
	swapio_op *ops[3] = { NULL, NULL, NULL };

	assert_int_equal(swapio_op_done(NULL), 0);
	assert_int_equal(swapio_op_wait(NULL, 0), -EINVAL);
	assert_int_equal(swapio_op_wait(NULL, -1), -EINVAL);
	swapio_op_free(NULL);
	assert_int_equal(swapio_wait_all(NULL, 0), -EINVAL);
	assert_int_equal(swapio_wait_any(NULL, 1, 0), -EINVAL);
	assert_int_equal(swapio_submit_read(env->h, env->f, env->buf, 10, 0,
					    &ops[0]), 0);
	assert_int_equal(swapio_wait_any(ops, 0, 0), -EINVAL);
	assert_int_equal(swapio_wait_any(ops, 2, 0), -EINVAL);	/* NULL */
	assert_int_equal(swapio_wait_any(ops, UINT_MAX, 0), -EINVAL);
	assert_int_equal(swapio_submit_read(other, of, env->buf + 10, 10, 0,
					    &ops[1]), 0);
	/* Ops of two handles cannot be waited for together. */
	assert_int_equal(swapio_wait_any(ops, 2, 0), -EINVAL);
	assert_int_equal(swapio_wait_any(ops, 1, TF_WAIT_MS), 0);
	assert_int_equal(swapio_op_wait(ops[0], INT_MAX), 10);
	assert_int_equal(swapio_op_wait(ops[1], -7), 10);  /* < 0: no limit */
	assert_int_equal(swapio_wait_all(env->h, INT_MAX), 0);
	swapio_op_free(ops[0]);
	swapio_op_free(ops[1]);
	swapio_file_close(of);
	swapio_handle_destroy(other);
}

static void buffers(void **state)
{
	void *p = (void *)1;

	(void)state;
	assert_int_equal(swapio_buf_alloc(4096, 0, NULL), -EINVAL);
	assert_int_equal(swapio_buf_alloc(0, 0, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(swapio_buf_alloc(4096, 1u << 7, &p), -EINVAL);
	assert_int_equal(swapio_buf_alloc(SIZE_MAX, 0, &p), -ENOMEM);
	assert_int_equal(swapio_buf_alloc(SIZE_MAX - 4095, SWAPIO_BUF_HUGE,
					  &p), -ENOMEM);
	assert_null(p);
	swapio_buf_free(NULL, 4096);
	swapio_buf_free(NULL, 0);
	/* An odd size is fine: it is rounded to pages inside. */
	assert_int_equal(swapio_buf_alloc(1, 0, &p), 0);
	memset(p, 0xa5, 1);
	swapio_buf_free(p, 1);
}

static void errors_and_names(void **state)
{
	static const int codes[] = {
		0, 1, INT_MAX, -1, -EIO, -4095, -4096, SWAPIO_ERRNO_BASE,
		SWAPIO_EMEMLOCK, SWAPIO_ERRNO_BASE - 100, INT_MIN + 1, INT_MIN,
	};

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(codes); i++) {
		const char *msg = swapio_strerror(codes[i]);

		assert_non_null(msg);
		assert_true(strlen(msg) > 0);
	}
	assert_int_equal(swapio_version(), SWAPIO_VERSION_NUMBER);
	assert_null(swapio_engine_name(4));
	assert_null(swapio_engine_name(UINT_MAX));
	assert_int_equal(swapio_engine_parse(NULL), -EINVAL);
	assert_int_equal(swapio_engine_parse(""), -EINVAL);
	assert_int_equal(swapio_engine_parse("URING"), -EINVAL);
	assert_int_equal(swapio_engine_parse("uring "), -EINVAL);
	assert_int_equal(swapio_engine_probe(4), -EOPNOTSUPP);
	assert_int_equal(swapio_engine_probe(UINT_MAX), -EOPNOTSUPP);
	assert_int_equal(swapio_engine_probe(SWAPIO_ENGINE_AUTO), 0);
}

static void config_files(void **state)
{
	struct env *env = *state;
	struct swapio_config cfg = { .threads = 3 }, bad = { .threads = 65 };
	char *missing = t_path(env->dir, "missing/cfg");
	char *good = t_path(env->dir, "cfg");

	assert_int_equal(swapio_config_parse("threads = 2", 11, NULL), -EINVAL);
	assert_int_equal(swapio_config_parse(NULL, 5, &cfg), -EINVAL);
	assert_int_equal(swapio_config_parse(NULL, 0, &cfg), 0);
	assert_int_equal(swapio_config_parse("threads = 2\0", 12, &cfg),
			 -EINVAL);
	assert_int_equal(swapio_config_load(NULL, &cfg), -EINVAL);
	assert_int_equal(swapio_config_load(env->path, NULL), -EINVAL);
	assert_int_equal(swapio_config_load("", &cfg), -ENOENT);
	assert_int_equal(swapio_config_load(missing, &cfg), -ENOENT);
	assert_int_equal(swapio_config_load(env->dir, &cfg), -EISDIR);
	assert_int_equal(swapio_config_save(NULL, &cfg), -EINVAL);
	assert_int_equal(swapio_config_save(good, NULL), -EINVAL);
	assert_int_equal(swapio_config_save(good, &bad), -EINVAL);
	assert_int_equal(access(good, F_OK), -1);	/* nothing written */
	assert_int_equal(swapio_config_save(missing, &cfg), -ENOENT);
	free(missing), free(good);
}

/* A FIFO with no writer must not block the loader forever. */
static void config_fifo(void **state)
{
	struct env *env = *state;
	char *fifo = t_path(env->dir, "fifo");
	struct swapio_config cfg;
	int status, ret;
	pid_t pid;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	if (pid == 0) {
		alarm(5);	/* a hang ends the child with SIGALRM */
		ret = swapio_config_load(fifo, &cfg);
		_exit(ret < 0 ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("swapio_config_load(fifo) hung (signal %d)",
			 WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	unlink(fifo);
	free(fifo);
}

/* ------------------------------------------------------------------ */
/* Store, pool, pipeline                                               */
/* ------------------------------------------------------------------ */

static void store_open_args(void **state)
{
	struct env *env = *state;
	char *dir = t_path(env->dir, "store"), *missing;
	struct swapio_store_config cfg = { 0 };
	swapio_store *s = (swapio_store *)1;

	missing = t_path(env->dir, "nostore");
	assert_int_equal(swapio_store_open(NULL, dir, NULL, &s), -EINVAL);
	assert_null(s);
	assert_int_equal(swapio_store_open(env->h, NULL, NULL, &s), -EINVAL);
	assert_int_equal(swapio_store_open(env->h, dir, NULL, NULL), -EINVAL);
	cfg.reserved32 = 1;
	assert_int_equal(swapio_store_open(env->h, dir, &cfg, &s), -EINVAL);
	cfg.reserved32 = 0;
	cfg.reserved[4] = 1;
	assert_int_equal(swapio_store_open(env->h, dir, &cfg, &s), -EINVAL);
	cfg.reserved[4] = 0;
	cfg.flags = 1u << 30;
	assert_int_equal(swapio_store_open(env->h, dir, &cfg, &s), -EINVAL);
	cfg.flags = SWAPIO_STORE_NO_CREATE;
	assert_int_equal(swapio_store_open(env->h, missing, &cfg, &s),
			 -ENOENT);
	assert_int_equal(access(missing, F_OK), -1);	/* nothing made */
	/* A regular file where the directory should be. */
	assert_int_equal(swapio_store_open(env->h, env->path, NULL, &s),
			 -ENOTDIR);
	assert_null(s);
	swapio_store_close(NULL);
	free(dir), free(missing);
}

static void store_op_args(void **state)
{
	struct env *env = *state;
	char *dir = t_path(env->dir, "store");
	char key[SWAPIO_STORE_KEY_MAX + 2], **keys;
	swapio_store_op *op = (swapio_store_op *)1;
	struct swapio_store_info info;
	unsigned char *b = env->buf;
	swapio_store *s;
	size_t n;

	assert_int_equal(swapio_store_open(env->h, dir, NULL, &s), 0);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';	/* one byte too long */
	assert_int_equal(swapio_store_put(NULL, "a", b, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, NULL, b, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, "", b, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, key, b, 1), -EINVAL);
	assert_int_equal(swapio_store_put(s, "a", NULL, 1), -EINVAL);
	assert_int_equal(swapio_store_submit_put(s, "a", b, 1, NULL), -EINVAL);
	assert_int_equal(swapio_store_submit_get(s, "a", b, 1, NULL), -EINVAL);
	assert_int_equal(swapio_store_submit_put(NULL, "a", b, 1, &op),
			 -EINVAL);
	assert_null(op);
	key[SWAPIO_STORE_KEY_MAX] = '\0';	/* the longest allowed */
	assert_int_equal(swapio_store_put(s, key, b, 100), 0);
	assert_int_equal(swapio_store_get(s, key, b, 99), -EMSGSIZE);
	assert_int_equal(swapio_store_get(s, key, b, UINT64_MAX), -EMSGSIZE);
	assert_int_equal(swapio_store_get(s, "nokey", b, 1), -ENOENT);
	assert_int_equal(swapio_store_get(s, key, NULL, 100), -EINVAL);
	assert_int_equal(swapio_store_get(NULL, key, b, 100), -EINVAL);
	assert_int_equal(swapio_store_op_wait(NULL, 0), -EINVAL);
	assert_int_equal(swapio_store_op_done(NULL), 0);
	swapio_store_op_free(NULL);
	assert_int_equal(swapio_store_remove(NULL, key), -EINVAL);
	assert_int_equal(swapio_store_remove(s, NULL), -EINVAL);
	assert_int_equal(swapio_store_remove(s, "nokey"), -ENOENT);
	assert_int_equal(swapio_store_size(NULL, key), -EINVAL);
	assert_int_equal(swapio_store_size(s, NULL), -EINVAL);
	assert_int_equal(swapio_store_size(s, "nokey"), -ENOENT);
	assert_int_equal(swapio_store_list(NULL, &keys, &n), -EINVAL);
	assert_int_equal(swapio_store_list(s, NULL, &n), -EINVAL);
	assert_int_equal(swapio_store_list(s, &keys, NULL), -EINVAL);
	assert_int_equal(swapio_store_sync(NULL), -EINVAL);
	swapio_store_info(NULL, &info);
	swapio_store_info(s, NULL);
	(void)swapio_store_checksum(NULL, 0);
	/* The failures changed nothing. */
	assert_int_equal(swapio_store_list(s, &keys, &n), 0);
	assert_int_equal(n, 1);
	free(keys);
	swapio_store_close(s);
	free(dir);
}

/*
 * Lengths no store holds: refused before the buffer is read or anything
 * written. (A length the buffer does not have is the caller's bug: the
 * checksum is computed over it at submission.)
 */
static void store_huge_put(void **state)
{
	struct env *env = *state;
	char *dir = t_path(env->dir, "store");
	struct swapio_store_info a, b;
	swapio_store *s;
	int ret;

	assert_int_equal(swapio_store_open(env->h, dir, NULL, &s), 0);
	swapio_store_info(s, &a);
	ret = swapio_store_put(s, "huge", env->buf, UINT64_MAX);
	assert_int_equal(ret, -EINVAL);
	ret = swapio_store_put(s, "huge", env->buf, 1ull << 57);
	assert_int_equal(ret, -EINVAL);
	swapio_store_info(s, &b);
	assert_int_equal(b.keys, a.keys);
	assert_true(b.file_bytes <= a.file_bytes + (64ull << 20));
	assert_int_equal(swapio_store_size(s, "huge"), -ENOENT);
	swapio_store_close(s);
	free(dir);
}

static void pool_args(void **state)
{
	void *b = (void *)1, *b2;
	swapio_pool *p = (swapio_pool *)1;
	unsigned char local[16];

	(void)state;
	assert_int_equal(swapio_pool_create(0, 1, 0, &p), -EINVAL);
	assert_int_equal(swapio_pool_create(4096, 0, 0, &p), -EINVAL);
	assert_int_equal(swapio_pool_create(4096, 1, 1u << 20, &p), -EINVAL);
	assert_int_equal(swapio_pool_create(4096, 1, 0, NULL), -EINVAL);
	/* A total beyond the address space. */
	assert_int_equal(swapio_pool_create(SIZE_MAX, 2, 0, &p), -EINVAL);
	assert_int_equal(swapio_pool_create(1ull << 40, UINT_MAX, 0, &p),
			 -EINVAL);
	/* Possible in principle, but not here. */
	assert_int_equal(swapio_pool_create(1ull << 50, 4, 0, &p), -ENOMEM);
	assert_null(p);
	swapio_pool_destroy(NULL);
	assert_int_equal(swapio_pool_get(NULL, 0, &b), -EINVAL);
	assert_int_equal(swapio_pool_put(NULL, local), -EINVAL);
	assert_int_equal(swapio_pool_buf_size(NULL), 0);
	assert_int_equal(swapio_pool_count(NULL), 0);
	assert_int_equal(swapio_pool_available(NULL), 0);
	assert_int_equal(swapio_pool_locked(NULL), 0);

	assert_int_equal(swapio_pool_create(5000, 1, 0, &p), 0);
	assert_int_equal(swapio_pool_get(p, 0, NULL), -EINVAL);
	assert_int_equal(swapio_pool_get(p, 0, &b), 0);
	assert_int_equal(swapio_pool_get(p, 0, &b2), -EAGAIN);
	assert_int_equal(swapio_pool_get(p, 20, &b2), -ETIMEDOUT);
	assert_int_equal(swapio_pool_put(p, NULL), -EINVAL);
	assert_int_equal(swapio_pool_put(p, local), -EINVAL);
	assert_int_equal(swapio_pool_put(p, (unsigned char *)b + 1), -EINVAL);
	assert_int_equal(swapio_pool_put(p, b), 0);
	assert_int_equal(swapio_pool_put(p, b), -EINVAL);	/* twice */
	assert_int_equal(swapio_pool_available(p), 1);
	swapio_pool_destroy(p);
}

static void pipeline_args(void **state)
{
	struct env *env = *state;
	char *dir = t_path(env->dir, "pstore");
	struct swapio_pipeline_tensor t[2] = {
		{ .key = "t0", .len = 1000 }, { .key = "t1", .len = 3000 },
	};
	struct swapio_pipeline_tensor zero = { .key = "z", .len = 0 };
	struct swapio_pipeline_tensor nokey = { .key = NULL, .len = 10 };
	struct swapio_pipeline_group g = { t, 2 }, bad[] = {
		{ NULL, 1 }, { t, 0 }, { &zero, 1 }, { &nokey, 1 },
	};
	struct swapio_pipeline_config cfg = { 0 };
	struct swapio_pipeline_stats st;
	struct swapio_pipeline_view v;
	swapio_pipeline *p = (swapio_pipeline *)1;
	swapio_store *s;

	assert_int_equal(swapio_store_open(env->h, dir, NULL, &s), 0);
	assert_int_equal(swapio_pipeline_create(NULL, &g, 1, NULL, &p),
			 -EINVAL);
	assert_null(p);
	assert_int_equal(swapio_pipeline_create(s, NULL, 1, NULL, &p),
			 -EINVAL);
	assert_int_equal(swapio_pipeline_create(s, &g, 0, NULL, &p), -EINVAL);
	assert_int_equal(swapio_pipeline_create(s, &g, 1, NULL, NULL),
			 -EINVAL);
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++)
		assert_int_equal(swapio_pipeline_create(s, &bad[i], 1, NULL,
							&p), -EINVAL);
	cfg.reserved[3] = 1;
	assert_int_equal(swapio_pipeline_create(s, &g, 1, &cfg, &p), -EINVAL);
	cfg.reserved[3] = 0;
	cfg.budget_bytes = 100;		/* below one group */
	assert_int_equal(swapio_pipeline_create(s, &g, 1, &cfg, &p), -EINVAL);
	assert_null(p);
	swapio_pipeline_destroy(NULL);
	assert_int_equal(swapio_pipeline_begin(NULL), -EINVAL);
	assert_int_equal(swapio_pipeline_next(NULL, &v), -EINVAL);
	assert_int_equal(swapio_pipeline_release(NULL, 0, 0), -EINVAL);
	swapio_pipeline_stats(NULL, &st);

	assert_int_equal(swapio_pipeline_create(s, &g, 1, NULL, &p), 0);
	swapio_pipeline_stats(p, NULL);
	assert_int_equal(swapio_pipeline_next(p, NULL), -EINVAL);
	assert_int_equal(swapio_pipeline_release(p, 0, 0), -EINVAL);
	assert_int_equal(swapio_pipeline_release(p, UINT_MAX, 1), -EINVAL);
	swapio_pipeline_destroy(p);
	swapio_store_close(s);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handle_config),
		cmocka_unit_test(handle_accessors),
		cmocka_unit_test(file_open),
		cmocka_unit_test(file_not_seekable),
		cmocka_unit_test(file_accessors),
		cmocka_unit_test(io_ranges),
		cmocka_unit_test(io_write_far),
		cmocka_unit_test(io_direction),
		cmocka_unit_test(io_paths),
		cmocka_unit_test(submit_args),
		cmocka_unit_test(wait_args),
		cmocka_unit_test(buffers),
		cmocka_unit_test(errors_and_names),
		cmocka_unit_test(config_files),
		cmocka_unit_test(config_fifo),
		cmocka_unit_test(store_open_args),
		cmocka_unit_test(store_op_args),
		cmocka_unit_test(store_huge_put),
		cmocka_unit_test(pool_args),
		cmocka_unit_test(pipeline_args),
	};

	t_engine();
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
