/* SPDX-License-Identifier: MIT */
/*
 * Engine fallbacks. An engine refused at set-up (SWAPIO_FAULT setup=...,
 * or for real: an exhausted fs.aio-max-nr) makes "auto" fall through to
 * the next one, and swapio_handle_engine_note() says which was refused
 * and why; an engine named in the config fails with the errno its set-up
 * met. Runs once per engine: each run refuses the engine under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_fault.h"

static const unsigned int order[] = {
	SWAPIO_ENGINE_URING, SWAPIO_ENGINE_AIO, SWAPIO_ENGINE_THREADS,
};

static int create_with(const char *spec, unsigned int engine,
		       uint32_t threads, swapio_handle **h)
{
	struct swapio_config cfg = { .engine = engine, .threads = threads };
	int ret;

	setenv("SWAPIO_FAULT", spec, 1);
	ret = swapio_handle_create(&cfg, h);
	unsetenv("SWAPIO_FAULT");
	return ret;
}

/* The handle moves data correctly, whatever engine it ended up on. */
static void check_works(swapio_handle *h)
{
	char *dir = t_tmpdir(), *path = t_path(dir, "f");
	swapio_file *f = tf_open(h, path);
	unsigned char *src = t_random_buf(300000, 1), *dst = t_zalloc(300000);

	assert_int_equal(tf_pwrite(h, f, src, 300000, 4097), 300000);
	assert_int_equal(tf_pread(h, f, dst, 300000, 4097), 300000);
	assert_memory_equal(src, dst, 300000);
	swapio_file_close(f);
	free(src), free(dst), free(path);
	t_rmdir(dir);
}

/* A named engine that cannot set up fails the handle with its errno,
 * also when only one of several workers fails (the others are torn
 * down: no leak, no stuck thread). */
static void named_engine_fails(void **state)
{
	static const char *const errs[] = { "EPERM", "ENOSYS", "EAGAIN" };
	static const int codes[] = { -EPERM, -ENOSYS, -EAGAIN };
	unsigned int e = t_engine();
	swapio_handle *h = (swapio_handle *)1;
	char spec[64];

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(errs); i++) {
		snprintf(spec, sizeof(spec), "setup=%s:%s",
			 swapio_engine_name(e), errs[i]);
		assert_int_equal(create_with(spec, e, 1, &h), codes[i]);
		assert_null(h);
		assert_int_equal(create_with(spec, e, 4, &h), codes[i]);
		assert_null(h);
	}
}

/*
 * Auto with every engine up to the one under test refused: the next one
 * that runs here is chosen, and the note names each refusal with its
 * reason. With all three refused the handle fails with the last errno.
 */
static void auto_falls_through(void **state)
{
	unsigned int e = t_engine(), want = 0;
	char spec[128] = "setup=", expect[96];
	swapio_handle *h;
	const char *note;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < T_ARRAY_SIZE(order) && order[i] != e; i++)
		;
	for (size_t j = 0; j <= i; j++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec),
			 "%s%s:%s", j ? "," : "", swapio_engine_name(order[j]),
			 j == i ? "ENOSYS" : "EPERM");
	for (size_t j = i + 1; j < T_ARRAY_SIZE(order) && !want; j++)
		if (!swapio_engine_probe(order[j]))
			want = order[j];
	ret = create_with(spec, SWAPIO_ENGINE_AUTO, 2, &h);
	if (!want) {
		assert_int_equal(ret, -ENOSYS);	/* threads refused too */
		return;
	}
	assert_int_equal(ret, 0);
	note = swapio_handle_engine_note(h);
	print_message("%s -> %s\n", spec, note);
	assert_string_equal(swapio_handle_engine(h), swapio_engine_name(want));
	snprintf(expect, sizeof(expect), "%s unavailable (%s)",
		 swapio_engine_name(e), strerror(ENOSYS));
	assert_non_null(strstr(note, expect));
	snprintf(expect, sizeof(expect), "chose %s", swapio_engine_name(want));
	assert_non_null(strstr(note, expect));
	check_works(h);
	swapio_handle_destroy(h);
}

static int sysctl_read(const char *path, unsigned long *v)
{
	FILE *fp = fopen(path, "re");
	int n;

	if (!fp)
		return -1;
	n = fscanf(fp, "%lu", v);
	fclose(fp);
	return n == 1 ? 0 : -1;
}

static int sysctl_write(const char *path, unsigned long v)
{
	FILE *fp = fopen(path, "we");
	int ret;

	if (!fp)
		return -1;
	ret = fprintf(fp, "%lu\n", v) < 0;
	return fclose(fp) || ret ? -1 : 0;
}

/* In a child, while fs.aio-max-nr is 0: aio named fails, auto skips it. */
static int __attribute__((noreturn)) aio_limit_child(void)
{
	struct swapio_config cfg = { .engine = SWAPIO_ENGINE_AIO };
	swapio_handle *h;
	int ret;

	alarm(20);
	ret = swapio_handle_create(&cfg, &h);
	if (ret != -EAGAIN) {
		fprintf(stderr, "aio forced: got %d, want -EAGAIN\n", ret);
		_exit(1);
	}
	/* uring refused by injection so that auto reaches aio at all. */
	ret = create_with("setup=uring:EPERM", SWAPIO_ENGINE_AUTO, 1, &h);
	if (ret || strcmp(swapio_handle_engine(h), "threads") ||
	    !strstr(swapio_handle_engine_note(h),
		    "aio unavailable (Resource temporarily unavailable)")) {
		fprintf(stderr, "auto: %d %s\n", ret,
			ret ? "" : swapio_handle_engine_note(h));
		_exit(1);
	}
	swapio_handle_destroy(h);
	_exit(0);
}

/*
 * The real thing: fs.aio-max-nr lowered to 0 makes io_setup() fail with
 * EAGAIN. The limit is system-wide, so it is lowered only for the few
 * milliseconds a child needs to create two handles, and the parent puts
 * it back whatever the child does.
 */
static void aio_max_nr_exhausted(void **state)
{
	static const char knob[] = "/proc/sys/fs/aio-max-nr";
	unsigned long orig;
	int status = -1;
	pid_t pid;

	(void)state;
	if (t_engine() != SWAPIO_ENGINE_AIO) {
		print_message("skip: the aio run covers this\n");
		skip();
	}
	if (geteuid() != 0 || getenv("SWAPIO_TEST_NO_SYSCTL") ||
	    sysctl_read(knob, &orig) || access(knob, W_OK)) {
		print_message("skip: needs root to lower %s\n", knob);
		skip();
	}
	if (sysctl_write(knob, 0))
		t_die("writing %s: %s", knob, strerror(errno));
	pid = fork();
	if (pid == 0)
		aio_limit_child();
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (sysctl_write(knob, orig))
		t_die("could not restore %s to %lu", knob, orig);
	assert_true(pid > 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(named_engine_fails),
		cmocka_unit_test(auto_falls_through),
		cmocka_unit_test(aio_max_nr_exhausted),
	};

	if (t_engine() == SWAPIO_ENGINE_AUTO)
		t_skip("set SWAPIO_TEST_ENGINE: each run refuses that engine");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
