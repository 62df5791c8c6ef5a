/* SPDX-License-Identifier: MIT */
/*
 * The environment: every variable the library reads is in one table
 * (src/env.c) and in man/swapio.3's ENVIRONMENT, and nothing else in
 * src/ calls getenv(). A malformed value fails the call that reads it
 * with -EINVAL and a detail that names the variable and the value. The
 * fault-injection variables are announced on stderr, once per process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <sys/wait.h>

#include "testing.h"
#include "util.h"

/* Every variable, unset: the tests set only what each one is about. */
static void env_clear(void)
{
	for (unsigned int i = 0; swapio__env_nth(i); i++)
		unsetenv(swapio__env_nth(i));
}

/* "NAME='value': " and then what the table says a good value is. */
static void detail_names(const char *name, const char *shown)
{
	const char *d = swapio_error_detail();
	char want[512];

	snprintf(want, sizeof(want), "%s='%s': ", name, shown);
	if (strncmp(d, want, strlen(want)))
		fail_msg("detail \"%s\", wanted it to start \"%s\"", d, want);
	assert_true(strlen(d) > strlen(want));	/* and says why */
}

/* A handle under NAME=value: -EINVAL, no handle, a detail naming both. */
static void handle_refused(const char *name, const char *value,
			   const char *shown)
{
	struct swapio_config cfg = { 0 };
	swapio_handle *h = (swapio_handle *)&cfg;	/* not NULL */

	env_clear();
	assert_int_equal(setenv(name, value, 1), 0);
	assert_int_equal(swapio_handle_create(&cfg, &h), -EINVAL);
	assert_null(h);
	detail_names(name, shown ? shown : value);
	env_clear();
}

static void handle_variables_refused(void **state)
{
	static const struct { const char *name, *value; } bad[] = {
		{ "SWAPIO_ENGINE", "urng" },
		{ "SWAPIO_ENGINE", "URING" },
		{ "SWAPIO_ENGINE", "uring " },
		{ "SWAPIO_SHARE_NODE", "yes" },
		{ "SWAPIO_SHARE_NODE", "2" },
		{ "SWAPIO_FAULT", "errno=EBOGUS" },
		{ "SWAPIO_FAULT", "nth=0" },
		{ "SWAPIO_FAULT", "errno=EIO,errno=EIO" },
		{ "SWAPIO_FAULT", "delay_ms=99999999" },
		{ "SWAPIO_GPU_PATH", "fast" },
		{ "SWAPIO_GPU_PATH", "GDS" },
		{ "SWAPIO_GPU_CHUNK", "4097" },
		{ "SWAPIO_GPU_CHUNK", "0" },
		{ "SWAPIO_GPU_CHUNK", "8M" },
		{ "SWAPIO_GPU_CHUNK", "2147483648" },
		{ "SWAPIO_GPU_CHUNK", "-4096" },
		{ "SWAPIO_GPU_CHUNK", "18446744073709555712" },
	};

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++)
		handle_refused(bad[i].name, bad[i].value, NULL);
	/* Control bytes are shown as '?', and a long value is cut short. */
	handle_refused("SWAPIO_GPU_PATH", "st\x1b[2Jaging", "st?[2Jaging");
}

/* The same values, well formed: the handle opens and leaves no detail. */
static void handle_variables_accepted(void **state)
{
	static const struct { const char *name, *value; } good[] = {
		{ "SWAPIO_SHARE_NODE", "0" },
		{ "SWAPIO_SHARE_NODE", "1" },
		{ "SWAPIO_GPU_PATH", "staging" },
		{ "SWAPIO_GPU_PATH", "auto" },
		{ "SWAPIO_GPU_CHUNK", "4096" },
		{ "SWAPIO_GPU_CHUNK", "1073741824" },
		{ "SWAPIO_ENGINE", "auto" },
		{ "SWAPIO_ENGINE", "threads" },
		{ "SWAPIO_CUFILE_LIBRARY", "none" },
		{ "SWAPIO_GPU_PATH", "" },	/* empty: unset */
	};
	struct swapio_config cfg = { 0 };
	swapio_handle *h;

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(good); i++) {
		env_clear();
		handle_refused("SWAPIO_GPU_PATH", "x", NULL);	/* a detail */
		assert_int_equal(setenv(good[i].name, good[i].value, 1), 0);
		assert_int_equal(swapio_handle_create(&cfg, &h), 0);
		/* The create that succeeded cleared the earlier detail. */
		assert_string_equal(swapio_error_detail(), "");
		swapio_handle_destroy(h);
	}
	env_clear();
}

/* A long value: the detail holds its start and says it was cut. */
static void long_value_cut(void **state)
{
	char value[2000], shown[129];

	(void)state;
	memset(value, 'z', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	memset(shown, 'z', 125);
	strcpy(shown + 125, "...");
	handle_refused("SWAPIO_GPU_PATH", value, shown);
	assert_true(strlen(swapio_error_detail()) < 300);
}

/* SWAPIO_FAULT_FD is the store's: its open fails, no drive at fault. */
static void store_fault_fd_refused(void **state)
{
	static const char *const bad[] = { "call=bogus", "errno=EIO",
					   "call=pwrite,errno=EBOGUS",
					   "call=pwrite" };
	struct swapio_config cfg = { .engine = t_engine() };
	char *dir = t_tmpdir();
	struct swapio_store_drive dv;
	swapio_store *s = (swapio_store *)dir;	/* not NULL */
	swapio_handle *h;
	unsigned int failed = 0;

	(void)state;
	env_clear();
	assert_int_equal(swapio_handle_create(&cfg, &h), 0);
	dv = (struct swapio_store_drive){ .h = h, .dir = dir };
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		assert_int_equal(setenv("SWAPIO_FAULT_FD", bad[i], 1), 0);
		assert_int_equal(swapio_store_open_multi(&dv, 1, NULL, &s,
							 &failed), -EINVAL);
		assert_null(s);
		assert_int_equal(failed, 1);	/* none of the drives */
		detail_names("SWAPIO_FAULT_FD", bad[i]);
	}
	/* Well formed, it opens; the open clears the earlier detail. */
	assert_int_equal(setenv("SWAPIO_FAULT_FD", "call=fdatasync,"
				"file=index,delay_ms=1", 1), 0);
	assert_int_equal(swapio_store_open(h, dir, NULL, &s), 0);
	assert_string_equal(swapio_error_detail(), "");
	swapio_store_close(s);
	env_clear();
	swapio_handle_destroy(h);
	t_rmdir(dir);
}

/* LOCAL_WORLD_SIZE is read only by a handle that shares the node. */
static void local_world_size_when_read(void **state)
{
	struct swapio_config cfg = { .flags = SWAPIO_CFG_SHARE_NODE };
	swapio_handle *h;

	(void)state;
	env_clear();
	assert_int_equal(setenv("LOCAL_WORLD_SIZE", "8x", 1), 0);
	assert_int_equal(swapio_handle_create(&cfg, &h), -EINVAL);
	detail_names("LOCAL_WORLD_SIZE", "8x");
	cfg.flags = 0;
	assert_int_equal(swapio_handle_create(&cfg, &h), 0);
	swapio_handle_destroy(h);
	env_clear();
}

/* ------------------------------------------------------------------ */
/* Stderr: fault injection says so, once per process                   */
/* ------------------------------------------------------------------ */

/*
 * A new process (this program again, exec'd: nothing announced yet), with
 * stderr on a pipe, runs scenario @what over @dir. The parent gets all
 * the child wrote to stderr (malloc'd).
 */
static char *child_stderr(const char *what, const char *dir)
{
	char *out = t_zalloc(65536);
	size_t used = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(fds[0]);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(3);
		execl("/proc/self/exe", "test_env", what, dir, (char *)NULL);
		_exit(4);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + used, 65535 - used)) > 0)
		used += (size_t)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return out;
}

static void make_handles(unsigned int n)
{
	struct swapio_config cfg = { .engine = t_engine() };
	swapio_handle *h;

	for (unsigned int i = 0; i < n; i++) {
		if (swapio_handle_create(&cfg, &h))
			_exit(1);
		swapio_handle_destroy(h);
	}
}

static void faults_on(const char *dir)
{
	struct swapio_config cfg = { .engine = t_engine() };
	swapio_store *s;
	swapio_handle *h;

	env_clear();
	setenv("SWAPIO_FAULT", "delay_ms=1", 1);
	make_handles(3);
	/* A bad value is an error, not an announcement. */
	setenv("SWAPIO_FAULT", "delay_ms=", 1);
	if (swapio_handle_create(&cfg, &h) != -EINVAL)
		_exit(1);
	setenv("SWAPIO_FAULT", "errno=EIO,dir=read", 1);	/* another */
	make_handles(2);
	unsetenv("SWAPIO_FAULT");
	setenv("SWAPIO_FAULT_FD", "call=fdatasync,delay_ms=1", 1);
	if (swapio_handle_create(&cfg, &h))
		_exit(1);
	for (int i = 0; i < 3; i++) {
		if (swapio_store_open(h, dir, NULL, &s))
			_exit(2);
		swapio_store_close(s);
	}
	swapio_handle_destroy(h);
}

static void faults_off(const char *dir)
{
	struct swapio_config cfg = { .engine = t_engine() };
	swapio_store *s;
	swapio_handle *h;

	env_clear();
	make_handles(3);
	if (swapio_handle_create(&cfg, &h) ||
	    swapio_store_open(h, dir, NULL, &s))
		_exit(1);
	swapio_store_close(s);
	swapio_handle_destroy(h);
}

static unsigned int count(const char *hay, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void fault_injection_announced_once(void **state)
{
	char *dir = t_tmpdir();
	char *err;

	(void)state;
	err = child_stderr("faults-on", dir);
	assert_int_equal(count(err, "swapio: SWAPIO_FAULT='delay_ms=1' is "
			       "set: injecting I/O faults (testing only)\n"),
			 1);
	assert_int_equal(count(err, "swapio: SWAPIO_FAULT_FD='call=fdatasync,"
			       "delay_ms=1' is set: injecting I/O faults "
			       "(testing only)\n"), 1);
	/* Those two lines and nothing else: once per process, per variable. */
	assert_int_equal(count(err, "\n"), 2);
	free(err);
	err = child_stderr("faults-off", dir);
	assert_string_equal(err, "");	/* otherwise the library is silent */
	free(err);
	t_rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* The one list                                                        */
/* ------------------------------------------------------------------ */

static char *slurp(const char *path)
{
	size_t n;
	unsigned char *p = t_read_file(path, &n);
	char *s = t_zalloc(n + 1);

	memcpy(s, p, n);
	free(p);
	return s;
}

/* Each variable of the table is a tag of man/swapio.3's ENVIRONMENT. */
static void table_is_documented(void **state)
{
	char *page = slurp(SWAPIO_SRC_DIR "/man/swapio.3"), *env, *end;
	char tag[128];

	(void)state;
	env = strstr(page, "\n.SH ENVIRONMENT\n");
	assert_non_null(env);
	end = strstr(env + 1, "\n.SH ");
	if (end)
		*end = '\0';
	for (unsigned int i = 0; swapio__env_nth(i); i++) {
		snprintf(tag, sizeof(tag), "\n.B %s\n", swapio__env_nth(i));
		if (!strstr(env, tag))
			fail_msg("%s is not in man/swapio.3, ENVIRONMENT",
				 swapio__env_nth(i));
	}
	assert_true(swapio__env_nth(0) && !swapio__env_nth(1000));
	free(page);
}

/* Nothing in src/ reads the environment but src/core/env.c. */
static unsigned int readers_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[8192], *text;
	unsigned int files = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n < 3 || strcmp(de->d_name + n - 2, ".c") ||
		    !strcmp(de->d_name, "env.c"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = slurp(path);
		if (strstr(text, "getenv(") || strstr(text, "secure_getenv("))
			fail_msg("%s reads the environment itself", path);
		free(text);
		files++;
	}
	closedir(d);
	return files;
}

static void one_reader(void **state)
{
	static const char *const layers[] = { "util", "engines", "core",
					      "store", "stream", "gpu" };
	char dir[4096];
	unsigned int files = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/src/%s", SWAPIO_SRC_DIR,
			 layers[i]);
		files += readers_in(dir);
	}
	assert_true(files > 10);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handle_variables_refused),
		cmocka_unit_test(handle_variables_accepted),
		cmocka_unit_test(long_value_cut),
		cmocka_unit_test(store_fault_fd_refused),
		cmocka_unit_test(local_world_size_when_read),
		cmocka_unit_test(fault_injection_announced_once),
		cmocka_unit_test(table_is_documented),
		cmocka_unit_test(one_reader),
	};

	/* The scenarios of fault_injection_announced_once(). */
	if (argc == 3 && !strcmp(argv[1], "faults-on")) {
		faults_on(argv[2]);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "faults-off")) {
		faults_off(argv[2]);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
