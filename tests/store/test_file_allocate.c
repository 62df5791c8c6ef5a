/* SPDX-License-Identifier: MIT */
/*
 * swapio_file_allocate(), the call the store grows its data file with: on
 * a filesystem with fallocate it allocates the range and grows the file
 * to cover it, never shrinks it, and later writes there land byte for
 * byte; on ramfs, which has no fallocate, it only grows the file (root
 * only: ramfs is mounted in a private mount namespace); a bad range is
 * -EINVAL and changes nothing; in a forked child it is SWAPIO_EFORKED and
 * touches nothing.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "testing.h"

#define KiB	1024u
#define MiB	(1024u * KiB)

struct env {
	swapio_handle	*h;
	char		*dir;
	char		*mnt;	/* ramfs mounted here; NULL: none */
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

	if (env->mnt && umount2(env->mnt, MNT_DETACH))
		fprintf(stderr, "warning: umount %s: %s\n", env->mnt,
			strerror(errno));
	free(env->mnt);
	swapio_handle_destroy(env->h);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static swapio_file *open_rw(struct env *env, const char *path)
{
	swapio_file *f;

	assert_int_equal(swapio_file_open(env->h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	return f;
}

static struct stat stat_of(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		t_die("stat %s: %s", path, strerror(errno));
	return st;
}

/* Does plain fallocate(2) work on the filesystem holding @dir? */
static bool fs_has_fallocate(const char *dir)
{
	char *path = t_path(dir, "probe");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	bool ok;

	if (fd < 0)
		t_die("%s: %s", path, strerror(errno));
	ok = !fallocate(fd, 0, 0, 4096);
	close(fd);
	unlink(path);
	free(path);
	return ok;
}

/*
 * Write two odd pieces inside [0, @size) through @f, then check the whole
 * file through read(2): the pieces where they were written, zeros
 * elsewhere, and the size unchanged.
 */
static void writes_land(swapio_handle *h, swapio_file *f, const char *path,
			uint64_t size)
{
	static const struct { uint64_t off; size_t len; } w[] = {
		{ 4096 + 7, 200000 }, { MiB + 11, 60000 },
	};
	unsigned char *want = t_zalloc((size_t)size), *got;
	size_t n;

	for (size_t i = 0; i < T_ARRAY_SIZE(w); i++) {
		assert_true(w[i].off + w[i].len <= size);
		t_fill_random(want + w[i].off, w[i].len, i + 1);
		assert_int_equal(swapio_pwrite(h, f, want + w[i].off, w[i].len,
					       w[i].off), (ssize_t)w[i].len);
	}
	assert_int_equal(swapio_file_size(f), (int64_t)size);
	got = t_read_file(path, &n);
	assert_int_equal(n, size);
	assert_int_equal(t_first_diff(got, want, n), SIZE_MAX);
	free(got);
	/* And through the handle, at an odd offset. */
	got = t_malloc(w[0].len);
	assert_int_equal(swapio_pread(h, f, got, w[0].len, w[0].off),
			 (ssize_t)w[0].len);
	assert_int_equal(t_first_diff(got, want + w[0].off, w[0].len),
			 SIZE_MAX);
	free(got);
	free(want);
}

/* Allocated and covered by the size; an inner range shrinks nothing. */
static void allocate_grows_file(void **state)
{
	struct env *env = *state;
	char *path = t_path(env->dir, "data");
	const uint64_t end = MiB + 64 * KiB + 3;
	swapio_file *f;
	struct stat st;

	if (!fs_has_fallocate(env->dir)) {
		printf("SKIP: no fallocate on %s\n", env->dir);
		free(path);
		skip();
	}
	f = open_rw(env, path);
	assert_int_equal(swapio_file_allocate(f, 0, 256 * KiB), 0);
	st = stat_of(path);
	assert_int_equal(st.st_size, 256 * KiB);
	assert_true((uint64_t)st.st_blocks * 512 >= 256 * KiB);

	/* Past the end, with a hole between. */
	assert_int_equal(swapio_file_allocate(f, MiB, end - MiB), 0);
	st = stat_of(path);
	assert_int_equal(st.st_size, end);
	assert_true((uint64_t)st.st_blocks * 512 >= 256 * KiB + (end - MiB));
	assert_int_equal(swapio_file_size(f), (int64_t)end);

	/* Inside the file: the size stays. */
	assert_int_equal(swapio_file_allocate(f, 4096, 4096), 0);
	assert_int_equal(stat_of(path).st_size, end);

	writes_land(env->h, f, path, end);
	assert_int_equal(swapio_file_close(f), 0);
	free(path);
}

/* ramfs has no fallocate: the file is made large enough, nothing more. */
static void allocate_on_ramfs(void **state)
{
	struct env *env = *state;
	const uint64_t end = MiB + 64 * KiB + 3;
	char *path;
	swapio_file *f;

	if (geteuid() != 0) {
		printf("SKIP: mounting ramfs needs root\n");
		skip();
	}
	/* A private namespace: the mount cannot outlive this process. */
	if (unshare(CLONE_NEWNS)) {
		printf("SKIP: unshare(CLONE_NEWNS): %s\n", strerror(errno));
		skip();
	}
	(void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	env->mnt = t_path(env->dir, "ramfs");
	assert_int_equal(mkdir(env->mnt, 0755), 0);
	if (mount("none", env->mnt, "ramfs", 0, NULL)) {
		printf("SKIP: mount -t ramfs: %s\n", strerror(errno));
		free(env->mnt);
		env->mnt = NULL;
		skip();
	}
	if (fs_has_fallocate(env->mnt)) {
		printf("SKIP: this kernel's ramfs has fallocate\n");
		skip();
	}
	path = t_path(env->mnt, "data");
	f = open_rw(env, path);
	assert_int_equal(swapio_file_allocate(f, 0, 256 * KiB), 0);
	assert_int_equal(stat_of(path).st_size, 256 * KiB);
	assert_int_equal(swapio_file_allocate(f, MiB, end - MiB), 0);
	assert_int_equal(stat_of(path).st_size, end);
	assert_int_equal(swapio_file_allocate(f, 4096, 4096), 0);
	assert_int_equal(swapio_file_size(f), (int64_t)end);
	writes_land(env->h, f, path, end);
	assert_int_equal(swapio_file_close(f), 0);
	free(path);
}

/* -EINVAL, and the file as it was. */
static void allocate_bad_range(void **state)
{
	struct env *env = *state;
	char *path = t_path(env->dir, "data");
	swapio_file *f = open_rw(env, path), *ro;

	assert_int_equal(swapio_file_allocate(f, 0, 4096), 0);
	assert_int_equal(swapio_file_allocate(NULL, 0, 4096), -EINVAL);
	assert_int_equal(swapio_file_allocate(f, 0, 0), -EINVAL);
	assert_int_equal(swapio_file_allocate(f, (uint64_t)INT64_MAX + 1,
					      4096), -EINVAL);
	assert_int_equal(swapio_file_allocate(f, UINT64_MAX, 1), -EINVAL);
	assert_int_equal(swapio_file_allocate(f, (uint64_t)INT64_MAX - 10,
					      11), -EINVAL);
	assert_int_equal(swapio_file_allocate(f, 4096, UINT64_MAX), -EINVAL);
	assert_int_equal(swapio_file_open(env->h, path, SWAPIO_O_READ, &ro),
			 0);
	assert_int_equal(swapio_file_allocate(ro, 0, 8192), -EINVAL);
	assert_int_equal(swapio_file_close(ro), 0);
	assert_int_equal(stat_of(path).st_size, 4096);
	assert_int_equal(swapio_file_close(f), 0);
	free(path);
}

/* A child's inherited file: SWAPIO_EFORKED, and the file untouched. */
static void allocate_in_child(void **state)
{
	struct env *env = *state;
	char *path = t_path(env->dir, "data");
	swapio_file *f = open_rw(env, path);
	int status;
	pid_t pid;

	assert_int_equal(swapio_file_allocate(f, 0, 4096), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(swapio_file_allocate(f, 0, MiB) == SWAPIO_EFORKED ? 0 :
		      2);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat_of(path).st_size, 4096);
	/* The parent's file is still its own. */
	assert_int_equal(swapio_file_allocate(f, 0, 8192), 0);
	assert_int_equal(stat_of(path).st_size, 8192);
	assert_int_equal(swapio_file_close(f), 0);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(allocate_grows_file),
		T(allocate_on_ramfs),
		T(allocate_bad_range),
		T(allocate_in_child),
#undef T
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
