/* SPDX-License-Identifier: MIT */
/*
 * Error paths, each provoked by the real condition: missing files,
 * directories, files opened for the other direction, permissions, a
 * read-only mount, a full filesystem, a filesystem without O_DIRECT,
 * offsets past what the kernel allows, invalid configurations and
 * arguments, a bad SWAPIO_ENGINE, and the messages of swapio_strerror().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testing.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)
#define MAX_MOUNTS	4

struct er_env {
	char		*dir;
	char		*file;		/* 64 KiB + 3 of known data */
	unsigned char	*data;
	size_t		size;
	char		*mounts[MAX_MOUNTS];	/* unmounted by teardown */
};

/* A sentinel that the calls under test must overwrite with NULL. */
#define NOT_NULL	((void *)&not_null_target)
static int not_null_target;

static swapio_handle *er_handle(uint32_t flags)
{
	struct swapio_config cfg = { .flags = flags };

	return t_handle(cfg);
}

static swapio_file *er_open(swapio_handle *h, const char *path,
			    unsigned int flags)
{
	swapio_file *f = NOT_NULL;

	assert_int_equal(swapio_file_open(h, path, flags, &f), 0);
	assert_non_null(f);
	return f;
}

/* The fixture file still holds exactly what setup wrote. */
static void check_fixture(struct er_env *env)
{
	unsigned char *got;
	size_t size;

	got = t_read_file(env->file, &size);
	assert_int_equal(size, env->size);
	assert_int_equal(t_first_diff(got, env->data, size), SIZE_MAX);
	free(got);
}

/*
 * Mount @type at a new directory @name under the test directory. Returns
 * the mount point, or NULL after printing why it could not.
 */
static char *er_mount(struct er_env *env, const char *name, const char *type,
		      const char *src, unsigned long flags, const char *opts)
{
	char *mnt = t_path(env->dir, name);
	unsigned int i;

	if (mkdir(mnt, 0755))
		t_die("mkdir %s: %s", mnt, strerror(errno));
	if (mount(src, mnt, type, flags, opts)) {
		printf("SKIP: cannot mount %s on %s: %s\n",
		       type ? type : "a bind", mnt, strerror(errno));
		rmdir(mnt);
		free(mnt);
		return NULL;
	}
	for (i = 0; i < MAX_MOUNTS && env->mounts[i]; i++)
		;
	assert_true(i < MAX_MOUNTS);
	env->mounts[i] = mnt;
	return mnt;
}

static void er_umount_all(struct er_env *env)
{
	for (unsigned int i = 0; i < MAX_MOUNTS; i++) {
		if (!env->mounts[i])
			continue;
		if (umount2(env->mounts[i], MNT_DETACH))
			fprintf(stderr, "warning: umount %s: %s\n",
				env->mounts[i], strerror(errno));
		rmdir(env->mounts[i]);
		free(env->mounts[i]);
		env->mounts[i] = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Files that cannot be used                                           */
/* ------------------------------------------------------------------ */

static void missing_file(void **state)
{
	struct er_env *env = *state;
	char *missing = t_path(env->dir, "missing");
	char *nodir = t_path(env->dir, "nodir/file");
	swapio_handle *h = er_handle(0);
	unsigned char buf[64];
	swapio_file *f = NOT_NULL;
	swapio_op *op = NOT_NULL;

	assert_int_equal(swapio_file_open(h, missing, SWAPIO_O_READ, &f),
			 -ENOENT);
	assert_null(f);
	f = NOT_NULL;
	assert_int_equal(swapio_file_open(h, missing, SWAPIO_O_WRITE, &f),
			 -ENOENT);
	assert_null(f);
	assert_int_equal(swapio_submit_read_path(h, missing, buf, sizeof(buf),
						 0, &op), -ENOENT);
	assert_null(op);
	assert_int_equal(swapio_pread_path(h, missing, buf, sizeof(buf), 0),
			 -ENOENT);
	assert_int_equal(swapio_path_size(missing), -ENOENT);
	/* A path write creates the file, not the directory it lies in. */
	assert_int_equal(swapio_pwrite_path(h, nodir, buf, sizeof(buf), 0),
			 -ENOENT);
	/* None of that created anything. */
	assert_int_equal(access(missing, F_OK), -1);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	swapio_handle_destroy(h);
	free(nodir);
	free(missing);
}

static void directory(void **state)
{
	static const uint32_t cfgs[] = { 0, SWAPIO_CFG_BUFFERED };
	static const unsigned int modes[] = {
		SWAPIO_O_READ, SWAPIO_O_WRITE, SWAPIO_O_READ | SWAPIO_O_WRITE,
	};
	struct er_env *env = *state;
	unsigned char buf[64] = { 0 };

	for (size_t c = 0; c < T_ARRAY_SIZE(cfgs); c++) {
		swapio_handle *h = er_handle(cfgs[c]);
		swapio_file *f;
		swapio_op *op = NOT_NULL;

		for (size_t m = 0; m < T_ARRAY_SIZE(modes); m++) {
			f = NOT_NULL;
			assert_int_equal(swapio_file_open(h, env->dir,
							  modes[m], &f),
					 -EISDIR);
			assert_null(f);
		}
		assert_int_equal(swapio_pread_path(h, env->dir, buf,
						   sizeof(buf), 0), -EISDIR);
		assert_int_equal(swapio_pwrite_path(h, env->dir, buf,
						    sizeof(buf), 0), -EISDIR);
		assert_int_equal(swapio_submit_read_path(h, env->dir, buf,
							 sizeof(buf), 0, &op),
				 -EISDIR);
		assert_null(op);
		swapio_handle_destroy(h);
	}
	assert_int_equal(swapio_path_size(env->dir), -EISDIR);
}

/* A file opened for one direction refuses the other with -EBADF. */
static void wrong_direction(void **state)
{
	struct er_env *env = *state;
	swapio_handle *h = er_handle(0);
	unsigned char *buf = t_random_buf(env->size, 99);
	swapio_file *f;
	swapio_op *op = NOT_NULL;

	f = er_open(h, env->file, SWAPIO_O_READ);
	assert_int_equal(swapio_pwrite(h, f, buf, env->size, 0), -EBADF);
	assert_int_equal(swapio_pwrite(h, f, buf, 1, 4097), -EBADF);
	assert_int_equal(swapio_submit_write(h, f, buf, 4096, 0, &op), -EBADF);
	assert_null(op);
	/* The file still reads, and nothing was written. */
	assert_int_equal(swapio_pread(h, f, buf, env->size, 0), env->size);
	assert_int_equal(t_first_diff(buf, env->data, env->size), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	check_fixture(env);

	f = er_open(h, env->file, SWAPIO_O_WRITE);
	memset(buf, 0, env->size);
	assert_int_equal(swapio_pread(h, f, buf, env->size, 0), -EBADF);
	op = NOT_NULL;
	assert_int_equal(swapio_submit_read(h, f, buf, 4096, 0, &op), -EBADF);
	assert_null(op);
	assert_int_equal(t_first_nonzero(buf, env->size), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	swapio_handle_destroy(h);
	free(buf);
}

/*
 * Open a 0444 file in a 0755 directory as an unprivileged user (root
 * ignores permissions, so as root a child process drops to nobody first):
 * writing must fail with -EACCES, reading must work. Returns a bitmask of
 * the checks that failed.
 */
static int readonly_file_checks(struct er_env *env, const char *path)
{
	struct swapio_config cfg = { 0 };
	unsigned char *buf = t_zalloc(env->size);
	swapio_handle *h;
	swapio_file *f;
	int bad = 0;

	h = t_handle(cfg);
	if (swapio_file_open(h, path, SWAPIO_O_WRITE, &f) != -EACCES)
		bad |= 1;
	if (swapio_file_open(h, path, SWAPIO_O_READ | SWAPIO_O_WRITE, &f) !=
	    -EACCES)
		bad |= 2;
	if (swapio_pwrite_path(h, path, buf, 10, 0) != -EACCES)
		bad |= 4;
	if (swapio_pread_path(h, path, buf, env->size, 0) !=
	    (ssize_t)env->size || memcmp(buf, env->data, env->size))
		bad |= 8;
	swapio_handle_destroy(h);
	free(buf);
	return bad;
}

static void readonly_file(void **state)
{
	struct er_env *env = *state;
	char *path = t_path(env->dir, "readonly");
	int status;
	pid_t pid;

	t_write_file(path, env->data, env->size);
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(chmod(env->dir, 0755), 0);
	if (geteuid() != 0) {
		assert_int_equal(readonly_file_checks(env, path), 0);
	} else {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(100);
			_exit(readonly_file_checks(env, path));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(chmod(env->dir, 0700), 0);
	free(path);
}

/* On a read-only mount, writes fail with -EROFS and reads still work. */
static void readonly_mount(void **state)
{
	struct er_env *env = *state;
	unsigned char *buf = t_zalloc(env->size);
	char *src = t_path(env->dir, "rw"), *mnt, *file, *fresh;
	swapio_handle *h;
	swapio_file *f = NOT_NULL;

	assert_int_equal(mkdir(src, 0755), 0);
	mnt = er_mount(env, "ro", NULL, src, MS_BIND, NULL);
	if (!mnt) {
		free(src);
		free(buf);
		skip();
	}
	if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)) {
		printf("SKIP: cannot remount %s read-only: %s\n", mnt,
		       strerror(errno));
		er_umount_all(env);
		free(src);
		free(buf);
		skip();
	}
	file = t_path(src, "data");
	t_write_file(file, env->data, env->size);
	free(file);
	file = t_path(mnt, "data");
	fresh = t_path(mnt, "fresh");

	h = er_handle(0);
	assert_int_equal(swapio_file_open(h, file, SWAPIO_O_WRITE, &f),
			 -EROFS);
	assert_null(f);
	assert_int_equal(swapio_pwrite_path(h, file, buf, 100, 0), -EROFS);
	assert_int_equal(swapio_pwrite_path(h, fresh, buf, 100, 0), -EROFS);
	assert_int_equal(swapio_pread_path(h, file, buf, env->size, 0),
			 env->size);
	assert_int_equal(t_first_diff(buf, env->data, env->size), SIZE_MAX);
	swapio_handle_destroy(h);
	er_umount_all(env);
	free(fresh);
	free(file);
	free(src);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Errors the kernel reports at completion                             */
/* ------------------------------------------------------------------ */

/* A full filesystem: the op completes with -ENOSPC, by any path. */
static void no_space(void **state)
{
	const size_t n = 4 * MiB + 1;
	struct er_env *env = *state;
	unsigned char *buf = t_random_buf(n, 7);
	char *mnt, *path;
	swapio_handle *h;
	swapio_file *f;
	swapio_op *op;
	int ret;

	mnt = er_mount(env, "small", "tmpfs", "none", 0, "size=1m");
	if (!mnt) {
		free(buf);
		skip();
	}
	path = t_path(mnt, "f");
	h = er_handle(0);
	f = er_open(h, path, SWAPIO_O_READ | SWAPIO_O_WRITE | SWAPIO_O_CREATE);
	/* What fits is written... */
	assert_int_equal(swapio_pwrite(h, f, buf, 64 * KiB, 0), 64 * KiB);
	/* ...and what does not fails, synchronously or not. */
	assert_int_equal(swapio_pwrite(h, f, buf, n, 0), -ENOSPC);
	/* Found before submission, or reported by the completion. */
	op = NOT_NULL;
	ret = swapio_submit_write(h, f, buf, n, 3, &op);
	if (ret) {
		assert_int_equal(ret, -ENOSPC);
		assert_null(op);
	} else {
		assert_int_equal(swapio_op_wait(op, -1), -ENOSPC);
		swapio_op_free(op);
	}
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(swapio_pwrite_path(h, path, buf, n, 0), -ENOSPC);
	swapio_handle_destroy(h);
	free(path);
	er_umount_all(env);
	free(buf);
}

/* Past the largest file the filesystem allows: -EFBIG from the kernel. */
static void file_too_big(void **state)
{
	struct er_env *env = *state;
	const uint64_t off = 1ull << 62;
	unsigned char *buf = t_page_alloc(8192, 0);
	swapio_handle *h = er_handle(0);
	swapio_file *f;

	memset(buf, 1, 8192);
	f = er_open(h, env->file, SWAPIO_O_READ | SWAPIO_O_WRITE);
	assert_int_equal(swapio_pwrite(h, f, buf, 8192, off), -EFBIG);
	assert_int_equal(swapio_pwrite(h, f, buf + 1, 100, off + 1), -EFBIG);
	/* Reading there is only reading past the end. */
	assert_int_equal(swapio_pread(h, f, buf, 8192, off), 0);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	check_fixture(env);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Filesystems without O_DIRECT                                        */
/* ------------------------------------------------------------------ */

/*
 * ramfs refuses O_DIRECT at open: swapio falls back to buffered I/O for
 * that file and the data still round-trips, unless DIRECT_STRICT.
 */
static void no_direct_fallback(void **state)
{
	const size_t n = 1 * MiB + 17;
	const uint64_t off = 4096 + 7;
	struct er_env *env = *state;
	unsigned char *src = t_random_buf(n + 1, 3), *dst = t_zalloc(n + 1);
	unsigned char *got;
	char *mnt, *path, *path2, *ext4;
	swapio_handle *h, *strict;
	swapio_file *f = NOT_NULL;
	size_t size;

	mnt = er_mount(env, "ram", "ramfs", "none", 0, NULL);
	if (!mnt) {
		free(src);
		free(dst);
		skip();
	}
	path = t_path(mnt, "f");
	path2 = t_path(mnt, "g");

	h = er_handle(0);
	f = er_open(h, path, SWAPIO_O_READ | SWAPIO_O_WRITE | SWAPIO_O_CREATE);
	assert_int_equal(swapio_file_direct(f), 0);
	assert_int_equal(swapio_pwrite(h, f, src + 1, n, off), n);
	assert_int_equal(swapio_file_size(f), off + n);
	assert_int_equal(swapio_pread(h, f, dst + 1, n, off), n);
	assert_int_equal(t_first_diff(dst + 1, src + 1, n), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	got = t_read_file(path, &size);
	assert_int_equal(size, off + n);
	assert_int_equal(t_first_nonzero(got, off), SIZE_MAX);
	assert_int_equal(t_first_diff(got + off, src + 1, n), SIZE_MAX);
	free(got);
	/* Path calls fall back the same way. */
	assert_int_equal(swapio_pwrite_path(h, path2, src, n, 0), n);
	memset(dst, 0, n);
	assert_int_equal(swapio_pread_path(h, path2, dst, n + 1, 0), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	swapio_handle_destroy(h);

	strict = er_handle(SWAPIO_CFG_DIRECT_STRICT);
	f = NOT_NULL;
	assert_int_equal(swapio_file_open(strict, path, SWAPIO_O_READ, &f),
			 -EINVAL);
	assert_null(f);
	assert_int_equal(swapio_pread_path(strict, path, dst, n, 0), -EINVAL);
	assert_int_equal(swapio_pwrite_path(strict, path2, src, n, 0),
			 -EINVAL);
	/* Where O_DIRECT works, strict changes nothing. */
	ext4 = t_path(env->dir, "strict");
	f = er_open(strict, ext4, SWAPIO_O_READ | SWAPIO_O_WRITE |
		    SWAPIO_O_CREATE);
	assert_int_equal(swapio_file_direct(f), 1);
	assert_int_equal(swapio_pwrite(strict, f, src, n, off), n);
	memset(dst, 0, n);
	assert_int_equal(swapio_pread(strict, f, dst, n, off), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(strict);

	er_umount_all(env);
	free(ext4);
	free(path2);
	free(path);
	free(src);
	free(dst);
}

/* ------------------------------------------------------------------ */
/* Bad configurations and arguments                                    */
/* ------------------------------------------------------------------ */

static void invalid_configs(void **state)
{
	static const struct {
		const char		*what;
		struct swapio_config	cfg;
	} bad[] = {
		{ "block_size 2048", { .block_size = 2048 } },
		{ "block_size 4097", { .block_size = 4097 } },
		{ "block_size 1 MiB + 512", { .block_size = MiB + 512 } },
		{ "block_size 1 GiB + 4 KiB",
		  { .block_size = (1ull << 30) + 4096 } },
		{ "block_size 2^63", { .block_size = 1ull << 63 } },
		{ "queue_depth 4097", { .queue_depth = 4097 } },
		{ "queue_depth UINT32_MAX", { .queue_depth = UINT32_MAX } },
		{ "threads 65", { .threads = 65 } },
		{ "threads UINT32_MAX", { .threads = UINT32_MAX } },
		{ "engine 4", { .engine = 4 } },
		{ "engine 99", { .engine = 99 } },
		{ "flags 1 << 8", { .flags = 1u << 8 } },
		{ "flags 1 << 31", { .flags = 1u << 31 } },
		{ "reserved[0]", { .reserved = { 1 } } },
		{ "reserved[3]", { .reserved = { 0, 0, 0, 1ull << 40 } } },
		{ "reserved[4]", { .reserved = { 0, 0, 0, 0, 1 } } },
		{ "reserved32", { .reserved32 = 1 } },
		{ "gpu_path 3", { .gpu_path = 3 } },
	};
	swapio_handle *h;

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		h = NOT_NULL;
		if (swapio_handle_create(&bad[i].cfg, &h) != -EINVAL)
			fail_msg("%s: not refused with -EINVAL", bad[i].what);
		assert_null(h);
	}
}

/* The bounds themselves are accepted, and such handles move data. */
static void config_bounds(void **state)
{
	static const struct swapio_config good[] = {
		{ .block_size = 4096, .queue_depth = 1 },
		{ .block_size = 1ull << 30, .queue_depth = 1 },
		{ .queue_depth = 4096 },
		{ .threads = 64, .queue_depth = 1, .block_size = 4096 },
	};
	struct er_env *env = *state;
	unsigned char *buf = t_page_alloc(env->size, 0);
	struct swapio_config got;

	for (size_t i = 0; i < T_ARRAY_SIZE(good); i++) {
		swapio_handle *h = t_handle(good[i]);

		swapio_handle_config(h, &got);
		assert_int_equal(got.block_size,
				 good[i].block_size ? good[i].block_size :
				 MiB);
		assert_int_equal(got.queue_depth, good[i].queue_depth);
		assert_int_equal(got.threads,
				 good[i].threads ? good[i].threads : 1);
		memset(buf, 0, env->size);
		assert_int_equal(swapio_pread_path(h, env->file, buf,
						   env->size, 0), env->size);
		assert_int_equal(t_first_diff(buf, env->data, env->size),
				 SIZE_MAX);
		swapio_handle_destroy(h);
	}
	free(buf);
}

static void null_arguments(void **state)
{
	struct er_env *env = *state;
	struct swapio_config cfg = { 0 }, got;
	swapio_handle *h = er_handle(0), *hp = NOT_NULL;
	unsigned char buf[4096];
	swapio_file *f, *fp = NOT_NULL;
	swapio_op *op = NOT_NULL, *ops[2] = { NULL, NULL };

	/* A NULL config means the defaults, as for a store or pipeline. */
	assert_int_equal(swapio_handle_create(NULL, &hp), 0);
	swapio_handle_config(hp, &got);
	assert_int_equal(got.block_size, 1u << 20);
	assert_int_equal(got.queue_depth, 32);
	assert_int_equal(got.threads, 1);
	swapio_handle_destroy(hp);
	assert_int_equal(swapio_handle_create(&cfg, NULL), -EINVAL);

	assert_int_equal(swapio_file_open(NULL, env->file, SWAPIO_O_READ,
					  &fp), -EINVAL);
	assert_null(fp);
	fp = NOT_NULL;
	assert_int_equal(swapio_file_open(h, NULL, SWAPIO_O_READ, &fp),
			 -EINVAL);
	assert_null(fp);
	assert_int_equal(swapio_file_open(h, env->file, SWAPIO_O_READ, NULL),
			 -EINVAL);
	/* Neither direction, or an unknown flag. */
	fp = NOT_NULL;
	assert_int_equal(swapio_file_open(h, env->file, 0, &fp), -EINVAL);
	assert_null(fp);
	assert_int_equal(swapio_file_open(h, env->file, SWAPIO_O_READ | 1u << 9,
					  &fp), -EINVAL);

	f = er_open(h, env->file, SWAPIO_O_READ | SWAPIO_O_WRITE);
	assert_int_equal(swapio_pread(NULL, f, buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_pread(h, NULL, buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_pread(h, f, NULL, 10, 0), -EINVAL);
	assert_int_equal(swapio_pwrite(NULL, f, buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_pwrite(h, NULL, buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_pwrite(h, f, NULL, 10, 0), -EINVAL);
	assert_int_equal(swapio_submit_read(h, f, NULL, 10, 0, &op), -EINVAL);
	assert_null(op);
	op = NOT_NULL;
	assert_int_equal(swapio_submit_write(NULL, f, buf, 10, 0, &op),
			 -EINVAL);
	assert_null(op);
	assert_int_equal(swapio_submit_read(h, f, buf, 10, 0, NULL), -EINVAL);
	assert_int_equal(swapio_submit_write(h, f, buf, 10, 0, NULL), -EINVAL);
	assert_int_equal(swapio_pread_path(h, NULL, buf, 10, 0), -EINVAL);
	assert_int_equal(swapio_pwrite_path(NULL, env->file, buf, 10, 0),
			 -EINVAL);
	assert_int_equal(swapio_pwrite_path(h, env->file, NULL, 10, 0),
			 -EINVAL);
	op = NOT_NULL;
	assert_int_equal(swapio_submit_read_path(h, NULL, buf, 10, 0, &op),
			 -EINVAL);
	assert_null(op);
	assert_int_equal(swapio_submit_write_path(h, env->file, buf, 10, 0,
						  NULL), -EINVAL);

	assert_int_equal(swapio_op_wait(NULL, 0), -EINVAL);
	assert_int_equal(swapio_op_done(NULL), 0);
	assert_int_equal(swapio_wait_any(NULL, 1, 0), -EINVAL);
	assert_int_equal(swapio_wait_any(ops, 0, 0), -EINVAL);
	assert_int_equal(swapio_wait_any(ops, 2, 0), -EINVAL);
	assert_int_equal(swapio_wait_all(NULL, 0), -EINVAL);
	assert_int_equal(swapio_handle_eventfd(NULL), -EINVAL);
	assert_int_equal(swapio_file_size(NULL), -EINVAL);
	assert_int_equal(swapio_path_size(NULL), -EINVAL);
	assert_int_equal(swapio_engine_parse(NULL), -EINVAL);
	/* A NULL among real ops. */
	assert_int_equal(swapio_submit_read(h, f, buf, 10, 0, &ops[0]), 0);
	assert_int_equal(swapio_wait_any(ops, 2, -1), -EINVAL);
	assert_int_equal(swapio_op_wait(ops[0], -1), 10);
	swapio_op_free(ops[0]);

	/* The no-ops. */
	swapio_handle_destroy(NULL);
	swapio_op_free(NULL);
	assert_int_equal(swapio_file_close(NULL), 0);
	swapio_buf_free(NULL, 4096);

	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	check_fixture(env);
}

/* A file or op of one handle is refused by another. */
static void foreign_objects(void **state)
{
	struct er_env *env = *state;
	swapio_handle *a = er_handle(0), *b = er_handle(0);
	unsigned char buf[64];
	swapio_op *ops[2], *op = NOT_NULL;
	swapio_file *f;

	f = er_open(a, env->file, SWAPIO_O_READ);
	assert_int_equal(swapio_pread(b, f, buf, sizeof(buf), 0), -EINVAL);
	assert_int_equal(swapio_submit_read(b, f, buf, sizeof(buf), 0, &op),
			 -EINVAL);
	assert_null(op);
	assert_int_equal(swapio_submit_read(a, f, buf, 1, 0, &ops[0]), 0);
	assert_int_equal(swapio_submit_read_path(b, env->file, buf + 1, 1, 1,
						 &ops[1]), 0);
	assert_int_equal(swapio_wait_any(ops, 2, -1), -EINVAL);
	assert_int_equal(swapio_op_wait(ops[0], -1), 1);
	assert_int_equal(swapio_op_wait(ops[1], -1), 1);
	assert_memory_equal(buf, env->data, 2);
	swapio_op_free(ops[0]);
	swapio_op_free(ops[1]);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(a);
	swapio_handle_destroy(b);
}

/* off + len must stay within INT64_MAX, the largest file offset. */
static void offset_overflow(void **state)
{
	static const struct {
		uint64_t	off;
		size_t		len;
	} bad[] = {
		{ INT64_MAX, 1 },
		{ INT64_MAX - 10, 11 },
		{ (uint64_t)INT64_MAX + 1, 0 },
		{ (uint64_t)INT64_MAX + 1, 1 },
		{ UINT64_MAX, 1 },
		{ UINT64_MAX - 4095, 4096 },	/* wraps to 0 */
		{ 0, (size_t)INT64_MAX + 1 },
		{ 4096, SIZE_MAX },
	};
	struct er_env *env = *state;
	swapio_handle *h = er_handle(0);
	unsigned char buf[64];
	swapio_file *f;
	swapio_op *op;

	f = er_open(h, env->file, SWAPIO_O_READ | SWAPIO_O_WRITE);
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		assert_int_equal(swapio_pread(h, f, buf, bad[i].len,
					      bad[i].off), -EINVAL);
		assert_int_equal(swapio_pwrite(h, f, buf, bad[i].len,
					       bad[i].off), -EINVAL);
		op = NOT_NULL;
		assert_int_equal(swapio_submit_read(h, f, buf, bad[i].len,
						    bad[i].off, &op), -EINVAL);
		assert_null(op);
		assert_int_equal(swapio_pread_path(h, env->file, buf,
						   bad[i].len, bad[i].off),
				 -EINVAL);
		assert_int_equal(swapio_pwrite_path(h, env->file, buf,
						    bad[i].len, bad[i].off),
				 -EINVAL);
	}
	/* Right up to INT64_MAX is allowed: reading there finds the end. */
	assert_int_equal(swapio_pread(h, f, buf, 10, INT64_MAX - 10), 0);
	assert_int_equal(swapio_pread(h, f, buf, 0, INT64_MAX), 0);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	swapio_handle_destroy(h);
	check_fixture(env);
}

/* A read across the end returns the bytes up to it; at the end, 0. */
static void short_read(void **state)
{
	struct er_env *env = *state;
	swapio_handle *h = er_handle(0);
	unsigned char *buf = t_zalloc(env->size + 8192);

	assert_int_equal(swapio_pread_path(h, env->file, buf, env->size + 8192,
					   100), env->size - 100);
	assert_int_equal(t_first_diff(buf, env->data + 100, env->size - 100),
			 SIZE_MAX);
	assert_int_equal(swapio_pread_path(h, env->file, buf, 1, env->size),
			 0);
	swapio_handle_destroy(h);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Engines and messages                                                */
/* ------------------------------------------------------------------ */

static void engine_from_environment(void **state)
{
	const unsigned int e = t_engine();
	const char *name = swapio_engine_name(e);
	struct swapio_config cfg = { 0 };
	swapio_handle *h = NOT_NULL;

	(void)state;
	assert_int_equal(setenv("SWAPIO_ENGINE", "nonsense", 1), 0);
	assert_int_equal(swapio_handle_create(&cfg, &h), -EINVAL);
	assert_null(h);
	/* An engine named in the config does not look at the environment. */
	if (e != SWAPIO_ENGINE_AUTO) {
		cfg.engine = e;
		assert_int_equal(swapio_handle_create(&cfg, &h), 0);
		assert_string_equal(swapio_handle_engine(h), name);
		swapio_handle_destroy(h);
		cfg.engine = SWAPIO_ENGINE_AUTO;
		/* Under auto, SWAPIO_ENGINE picks the engine. */
		assert_int_equal(setenv("SWAPIO_ENGINE", name, 1), 0);
		assert_int_equal(swapio_handle_create(&cfg, &h), 0);
		assert_string_equal(swapio_handle_engine(h), name);
		assert_non_null(strstr(swapio_handle_engine_note(h),
				       "SWAPIO_ENGINE"));
		swapio_handle_destroy(h);
	}
	assert_int_equal(unsetenv("SWAPIO_ENGINE"), 0);
	/* Unset, auto chooses an engine and says so. */
	assert_int_equal(swapio_handle_create(&cfg, &h), 0);
	assert_true(swapio_engine_parse(swapio_handle_engine(h)) > 0);
	assert_non_null(strstr(swapio_handle_engine_note(h), "auto"));
	swapio_handle_destroy(h);
}

/*
 * Forbid io_uring_setup() and io_setup() to this process (seccomp, as a
 * container runtime would) so that neither engine can start.
 */
static int forbid_async_engines(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_setup, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = {
		.len = T_ARRAY_SIZE(insns),
		.filter = insns,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * In a child where io_uring and AIO are forbidden: a handle that names
 * either engine fails with the errno its set-up met, and auto falls back
 * to threads, says why, and moves data. Returns a bitmask of failures.
 */
static int unavailable_child(struct er_env *env)
{
	struct swapio_config cfg = { 0 };
	unsigned char *buf = t_zalloc(env->size);
	const char *note;
	swapio_handle *h;
	int bad = 0;

	if (forbid_async_engines())
		return 64;
	unsetenv("SWAPIO_ENGINE");
	cfg.engine = SWAPIO_ENGINE_URING;
	if (swapio_handle_create(&cfg, &h) != -EPERM || h)
		bad |= 1;
	cfg.engine = SWAPIO_ENGINE_AIO;
	if (swapio_handle_create(&cfg, &h) != -EPERM || h)
		bad |= 2;
	cfg.engine = SWAPIO_ENGINE_AUTO;
	if (swapio_handle_create(&cfg, &h))
		return bad | 4;
	note = swapio_handle_engine_note(h);
	if (strcmp(swapio_handle_engine(h), "threads"))
		bad |= 8;
	if (!strstr(note, "uring unavailable") ||
	    !strstr(note, "aio unavailable") || !strstr(note, "threads"))
		bad |= 16;
	if (swapio_pread_path(h, env->file, buf, env->size, 0) !=
	    (ssize_t)env->size || memcmp(buf, env->data, env->size))
		bad |= 32;
	swapio_handle_destroy(h);
	free(buf);
	return bad;
}

static void engine_unavailable(void **state)
{
	int status;
	pid_t pid;

	if (swapio_engine_probe(SWAPIO_ENGINE_URING) ||
	    swapio_engine_probe(SWAPIO_ENGINE_AIO)) {
		printf("SKIP: io_uring or AIO is unavailable to begin with\n");
		skip();
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unavailable_child(*state));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void strerror_messages(void **state)
{
	static const int errs[] = {
		ENOENT, EISDIR, EBADF, EACCES, EROFS, EINVAL, ENOSPC, EFBIG,
		EIO, ENOMEM, ETIMEDOUT, EOPNOTSUPP,
	};
	static const int unknown[] = {
		-2999, SWAPIO_ERRNO_BASE, SWAPIO_ERRNO_BASE - 100, -4095,
		-100000, INT_MIN,
	};
	const char *mem;

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(errs); i++)
		assert_string_equal(swapio_strerror(-errs[i]),
				    strerror(errs[i]));
	mem = swapio_strerror(SWAPIO_EMEMLOCK);
	assert_non_null(mem);
	assert_non_null(strstr(mem, "lock"));
	/* Each of swapio's own codes has its own text. */
	assert_string_not_equal(swapio_strerror(SWAPIO_EBADSTORE), mem);
	assert_string_not_equal(swapio_strerror(SWAPIO_EBADSTORE),
				swapio_strerror(-2999));
	for (size_t i = 0; i < T_ARRAY_SIZE(unknown); i++) {
		const char *msg = swapio_strerror(unknown[i]);

		assert_non_null(msg);
		assert_true(msg[0] != '\0');
		assert_string_not_equal(msg, mem);
	}
	assert_non_null(swapio_strerror(0));
	/* Static text: the same pointer every time. */
	assert_ptr_equal(swapio_strerror(-ENOENT), swapio_strerror(-ENOENT));
}

static int setup(void **state)
{
	struct er_env *env = t_zalloc(sizeof(*env));

	env->dir = t_tmpdir();
	env->file = t_path(env->dir, "fixture");
	env->size = 64 * KiB + 3;
	env->data = t_random_buf(env->size, 1234);
	t_write_file(env->file, env->data, env->size);
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct er_env *env = *state;

	er_umount_all(env);
	free(env->data);
	free(env->file);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missing_file),
		cmocka_unit_test(directory),
		cmocka_unit_test(wrong_direction),
		cmocka_unit_test(readonly_file),
		cmocka_unit_test(readonly_mount),
		cmocka_unit_test(no_space),
		cmocka_unit_test(file_too_big),
		cmocka_unit_test(no_direct_fallback),
		cmocka_unit_test(invalid_configs),
		cmocka_unit_test(config_bounds),
		cmocka_unit_test(null_arguments),
		cmocka_unit_test(foreign_objects),
		cmocka_unit_test(offset_overflow),
		cmocka_unit_test(short_read),
		cmocka_unit_test(engine_from_environment),
		cmocka_unit_test(engine_unavailable),
		cmocka_unit_test(strerror_messages),
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, setup, teardown);
}
