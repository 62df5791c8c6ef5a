/* SPDX-License-Identifier: MIT */
/*
 * The buffered twin names the inode the file was opened on. This program
 * defines openat(2) itself, so that the library's calls reach it: right
 * after the library opens "data", another file is renamed onto that path
 * (the race of a second open by path, made certain). Heads and tails
 * must still go to the file that was opened, reached here through a hard
 * link made beforehand, and the newcomer must stay untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "internal.h"
#include "testing.h"

#define SIZE	(256u << 10)

static const char *race_path;	/* rename onto it once, after it opens */
static const char *race_from;

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;
	long fd;

	if (flags & (O_CREAT | __O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	fd = syscall(SYS_openat, dirfd, path, flags, mode);
	if (fd >= 0 && race_path && !strcmp(path, race_path)) {
		race_path = NULL;
		if (rename(race_from, path))
			t_die("rename %s: %s", race_from, strerror(errno));
	}
	return (int)fd;
}

struct tw_env {
	char		*dir;
	char		*path;		/* "data", replaced during the open */
	char		*link;		/* hard link to the original "data" */
	char		*other;		/* what is renamed onto "data" */
	unsigned char	*orig;		/* contents of the original */
	unsigned char	*newc;		/* contents of the newcomer */
};

static int tw_setup(void **state)
{
	struct tw_env *env = t_zalloc(sizeof(*env));

	t_engine();
	env->dir = t_tmpdir();
	env->path = t_path(env->dir, "data");
	env->link = t_path(env->dir, "data.link");
	env->other = t_path(env->dir, "other");
	env->orig = t_random_buf(SIZE, 1);
	env->newc = t_random_buf(SIZE, 2);
	*state = env;
	return 0;
}

static int tw_teardown(void **state)
{
	struct tw_env *env = *state;

	free(env->orig);
	free(env->newc);
	free(env->path);
	free(env->link);
	free(env->other);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static void check_file(const char *path, const unsigned char *want)
{
	unsigned char *got;
	size_t n, diff;

	got = t_read_file(path, &n);
	assert_int_equal(n, SIZE);
	diff = t_first_diff(got, want, SIZE);
	if (diff != SIZE_MAX)
		fail_msg("%s: byte %zu differs", path, diff);
	free(got);
}

/* Both descriptors of @f name one inode. */
static void check_same_inode(const swapio_file *f)
{
	struct stat a, b;

	assert_int_equal(fstat(f->fd, &a), 0);
	assert_int_equal(fstat(f->bfd, &b), 0);
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(a.st_ino, b.st_ino);
}

static void replaced_during_open(void **state)
{
	static const struct { uint64_t off; size_t len; } w[] = {
		{ 1, 1 }, { 511, 4097 }, { 4095, (64u << 10) + 3 },
		{ SIZE - 3, 3 },
	};
	struct tw_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	swapio_file *f;

	t_write_file(env->path, env->orig, SIZE);
	t_write_file(env->other, env->newc, SIZE);
	assert_int_equal(link(env->path, env->link), 0);
	race_from = env->other;
	race_path = env->path;
	assert_int_equal(swapio_file_open(h, env->path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE, &f), 0);
	assert_null(race_path);	/* the rename happened */
	if (!swapio_file_direct(f))
		t_skip("no O_DIRECT under %s: there is no twin", env->dir);
	check_same_inode(f);
	for (size_t i = 0; i < T_ARRAY_SIZE(w); i++) {
		unsigned char *src = t_random_buf(w[i].len, 10 + i);

		assert_int_equal(swapio_pwrite(h, f, src, w[i].len, w[i].off),
				 w[i].len);
		memcpy(env->orig + w[i].off, src, w[i].len);
		free(src);
	}
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	check_file(env->link, env->orig);
	check_file(env->path, env->newc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replaced_during_open),
	};

	return cmocka_run_group_tests(tests, tw_setup, tw_teardown);
}
