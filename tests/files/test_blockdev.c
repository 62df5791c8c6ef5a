/* SPDX-License-Identifier: MIT */
/*
 * O_DIRECT on a block device: a 16 MiB loop device reports its size, and
 * odd sizes, offsets and buffers go through byte for byte, as on a file.
 * Needs root (losetup); skips with 77 otherwise. The device is detached
 * in the group teardown, which cmocka runs even when a test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/types.h>

#include "testing.h"

#define DEV_SIZE	(16u << 20)

struct bd_env {
	char		*dir;
	char		*img;
	char		dev[64];	/* "/dev/loopN" */
	swapio_handle	*h;
	swapio_file	*f;
	unsigned char	*shadow;	/* what the device must hold */
};

/* Attach @img to a free loop device; "" and a message if that fails. */
static void bd_attach(struct bd_env *env)
{
	char *cmd;
	FILE *p;

	if (asprintf(&cmd, "losetup --find --show '%s' 2>&1", env->img) < 0)
		t_die("asprintf failed");
	p = popen(cmd, "r");
	free(cmd);
	if (!p || !fgets(env->dev, sizeof(env->dev), p))
		env->dev[0] = '\0';
	if (p && pclose(p) != 0) {
		fprintf(stderr, "losetup: %s", env->dev);
		env->dev[0] = '\0';
	}
	env->dev[strcspn(env->dev, "\n")] = '\0';
}

static void bd_detach(struct bd_env *env)
{
	char *cmd;

	if (!env->dev[0])
		return;
	if (asprintf(&cmd, "losetup -d '%s'", env->dev) < 0 || system(cmd))
		fprintf(stderr, "warning: could not detach %s\n", env->dev);
	free(cmd);
	env->dev[0] = '\0';
}

static int bd_teardown(void **state)
{
	struct bd_env *env = *state;

	if (env->f)
		assert_int_equal(swapio_file_close(env->f), 0);
	swapio_handle_destroy(env->h);
	bd_detach(env);
	free(env->shadow);
	free(env->img);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static int bd_setup(void **state)
{
	struct bd_env *env = t_zalloc(sizeof(*env));
	int fd;

	if (geteuid() != 0)
		t_skip("needs root to attach a loop device");
	t_engine();	/* skips before anything is made */
	env->dir = t_tmpdir();
	env->img = t_path(env->dir, "disk.img");
	fd = open(env->img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, DEV_SIZE) || close(fd))
		t_die("%s: %s", env->img, strerror(errno));
	bd_attach(env);
	if (!env->dev[0]) {
		t_rmdir(env->dir);
		t_skip("losetup --find --show failed (no loop devices here?)");
	}
	*state = env;
	env->h = t_handle((struct swapio_config){ 0 });
	if (swapio_file_open(env->h, env->dev, SWAPIO_O_READ | SWAPIO_O_WRITE,
			     &env->f) || !swapio_file_direct(env->f)) {
		bd_teardown(state);
		t_die("cannot open %s with O_DIRECT", env->dev);
	}
	env->shadow = t_zalloc(DEV_SIZE);	/* a fresh image reads zero */
	return 0;
}

static void size_is_real(void **state)
{
	struct bd_env *env = *state;

	assert_int_equal(swapio_file_size(env->f), DEV_SIZE);
	assert_int_equal(swapio_path_size(env->dev), DEV_SIZE);
}

/* The whole device through plain pread(2), against the shadow copy. */
static void check_device(const struct bd_env *env)
{
	unsigned char *got = t_malloc(DEV_SIZE);
	size_t diff;
	int fd = open(env->dev, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, DEV_SIZE, 0), DEV_SIZE);
	close(fd);
	diff = t_first_diff(got, env->shadow, DEV_SIZE);
	if (diff != SIZE_MAX)
		fail_msg("device byte %zu differs", diff);
	free(got);
}

static void odd_roundtrip(void **state)
{
	static const struct {
		size_t	len;
		uint64_t off;
		size_t	mem_off;	/* from a page boundary */
	} cases[] = {
		{ 1, 1, 0 }, { 4097, 511, 0 }, { (1u << 20) + 3, 4095, 0 },
		{ 1, 1, 1 }, { 4097, 511, 3 }, { (1u << 20) + 3, 4095, 7 },
		{ 8192, 4096, 1 }, { 3, DEV_SIZE - 3, 5 },
	};
	struct bd_env *env = *state;

	for (size_t i = 0; i < T_ARRAY_SIZE(cases); i++) {
		const size_t n = cases[i].len, mo = cases[i].mem_off;
		const uint64_t off = cases[i].off;
		unsigned char *src = t_page_alloc(n, mo);
		unsigned char *dst = t_page_alloc(n, mo + 1);

		t_fill_random(src + mo, n, i + 1);
		assert_int_equal(swapio_pwrite(env->h, env->f, src + mo, n,
					       off), n);
		memcpy(env->shadow + off, src + mo, n);
		memset(dst, 0, n + mo + 1);
		/* Read back at another misalignment than written. */
		assert_int_equal(swapio_pread(env->h, env->f, dst + mo + 1, n,
					      off), n);
		assert_int_equal(t_first_diff(dst + mo + 1, src + mo, n),
				 SIZE_MAX);
		check_device(env);
		free(src);
		free(dst);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(size_is_real),
		cmocka_unit_test(odd_roundtrip),
	};

	return cmocka_run_group_tests(tests, bd_setup, bd_teardown);
}
