/* SPDX-License-Identifier: MIT */
/*
 * Several processes at once, each with its own handle: they hammer files
 * in one directory (their own files, and their own disjoint ranges of a
 * shared one) and each verifies its data; a store has one owner across
 * processes, and the lock dies with its owner; two processes with stores
 * side by side in one tree do not see each other's keys. Children run
 * under alarm() and the parent waits with a deadline, so a hang fails.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_fault.h"

#define NR_PROCS	4
#define SLICE		(1u << 20)	/* a child's share of a file */
#define CHILD_SECS	2

struct env {
	char	*dir;
};

static int env_setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->dir = t_tmpdir();
	*state = env;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *env = *state;

	t_rmdir(env->dir);
	free(env);
	return 0;
}

/* Fork @fn(@arg, i) for i < @n; every child must exit 0 within @secs. */
static void run_children(int n, int (*fn)(void *, int), void *arg, int secs)
{
	pid_t pids[NR_PROCS];
	uint64_t deadline = tf_now_ms() + (uint64_t)secs * 1000;
	int status, left = n;
	pid_t pid;

	assert_true(n <= NR_PROCS);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			alarm((unsigned int)secs);
			_exit(fn(arg, i));
		}
	}
	while (left) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0 && tf_now_ms() < deadline) {
			usleep(20000);
			continue;
		}
		if (pid <= 0) {
			for (int i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			fail_msg("children still running after %d s", secs);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail_msg("child %d: %s %d", (int)pid,
				 WIFEXITED(status) ? "exit" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) :
				 WTERMSIG(status));
		left--;
	}
}

static swapio_handle *child_handle(int i)
{
	struct swapio_config cfg = {
		.block_size = 64u << 10, .threads = 1 + (uint32_t)i % 2,
		.engine = t_engine(),
	};
	swapio_handle *h;

	if (swapio_handle_create(&cfg, &h))
		_exit(10);
	return h;
}

/* One random op on [base, base + span) of @f, checked against @shadow. */
static int hammer_once(swapio_handle *h, swapio_file *f, unsigned char *shadow,
		       uint64_t base, uint64_t span, uint64_t *s)
{
	size_t len = 1 + (size_t)(t_rand64(s) % (span / 4));
	uint64_t off = t_rand64(s) % (span - len + 1);
	unsigned char *buf = t_malloc(len);
	int ret = 0;

	if (t_rand64(s) % 2) {
		t_fill_random(buf, len, t_rand64(s));
		if (tf_pwrite(h, f, buf, len, base + off) != (ssize_t)len)
			ret = 1;
		else
			memcpy(shadow + off, buf, len);
	} else if (tf_pread(h, f, buf, len, base + off) != (ssize_t)len ||
		   memcmp(buf, shadow + off, len)) {
		ret = 2;
	}
	free(buf);
	return ret;
}

/* Child @i: its own file, and slice @i of the shared one, for a while. */
static int hammer_child(void *arg, int i)
{
	const char *dir = arg;
	swapio_handle *h = child_handle(i);
	char name[32], *own, *shared = t_path(dir, "shared");
	swapio_file *f[2];
	unsigned char *shadow[2];
	uint64_t s = (uint64_t)i + 1, base[2] = { 0, (uint64_t)i * SLICE };
	uint64_t t_end = tf_now_ms() + CHILD_SECS * 1000;
	int ret = 0;

	snprintf(name, sizeof(name), "own%d", i);
	own = t_path(dir, name);
	f[0] = tf_open(h, own);
	f[1] = tf_open(h, shared);
	for (int k = 0; k < 2; k++) {
		shadow[k] = t_random_buf(SLICE, s + 100 * (uint64_t)k);
		if (tf_pwrite(h, f[k], shadow[k], SLICE, base[k]) != SLICE)
			ret = 3;
	}
	while (!ret && tf_now_ms() < t_end) {
		int k = (int)(t_rand64(&s) % 2);

		ret = hammer_once(h, f[k], shadow[k], base[k], SLICE, &s);
	}
	for (int k = 0; k < 2; k++) {
		if (!ret)
			tf_check_file(k ? shared : own, shadow[k], SLICE,
				      base[k]);
		swapio_file_close(f[k]);
		free(shadow[k]);
	}
	swapio_handle_destroy(h);
	free(own), free(shared);
	return ret;
}

static void hammer_one_dir(void **state)
{
	struct env *env = *state;

	run_children(NR_PROCS, hammer_child, env->dir, 30);
}

static swapio_store *store_open_or_die(swapio_handle *h, const char *dir)
{
	swapio_store *s;
	int ret = swapio_store_open(h, dir, NULL, &s);

	if (ret)
		t_die("swapio_store_open(%s): %s", dir, swapio_strerror(ret));
	return s;
}

/* A second owner is refused, in another process as in this one. */
static int lock_refused_child(void *arg, int i)
{
	swapio_handle *h = child_handle(i);
	swapio_store *s = NULL;
	int ret = swapio_store_open(h, arg, NULL, &s);

	swapio_store_close(s);
	swapio_handle_destroy(h);
	return ret == -EBUSY && !s ? 0 : 1;
}

/* Owns the store, puts a key, then dies holding it. */
static int lock_owner_killed_child(void *arg, int i)
{
	swapio_handle *h = child_handle(i);
	swapio_store *s = store_open_or_die(h, arg);
	unsigned char v[100];

	memset(v, 'k', sizeof(v));
	if (swapio_store_put(s, "from-child", v, sizeof(v)))
		_exit(1);
	raise(SIGKILL);
	return 1;
}

static int lock_free_child(void *arg, int i)
{
	swapio_handle *h = child_handle(i);
	swapio_store *s = store_open_or_die(h, arg);

	swapio_store_close(s);
	swapio_handle_destroy(h);
	return 0;
}

static void store_lock_across_processes(void **state)
{
	struct env *env = *state;
	char *dir = t_path(env->dir, "store");
	swapio_handle *h = tf_handle(NULL, (struct swapio_config){ 0 });
	swapio_store *s = store_open_or_die(h, dir), *s2 = NULL;
	unsigned char v[100];
	pid_t pid;
	int status;

	assert_int_equal(swapio_store_open(h, dir, NULL, &s2), -EBUSY);
	run_children(2, lock_refused_child, dir, 30);
	swapio_store_close(s);
	run_children(1, lock_free_child, dir, 30);	/* free again */

	/* The lock dies with its owner, whatever killed it. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30);
		lock_owner_killed_child(dir, 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	s = store_open_or_die(h, dir);
	assert_int_equal(swapio_store_get(s, "from-child", v, sizeof(v)), 0);
	assert_int_equal(v[0], 'k');
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(dir);
}

/* Stores at tree/a and tree/sub/b, one process each, the same keys. */
static int two_stores_child(void *arg, int i)
{
	char *dir = t_path(arg, i ? "sub/b" : "a"), key[32];
	swapio_handle *h = child_handle(i);
	swapio_store *s = store_open_or_die(h, dir);
	unsigned char *buf = t_malloc(70000), *back = t_malloc(70000);
	int ret = 0;

	for (unsigned int round = 0; round < 20 && !ret; round++)
		for (unsigned int k = 0; k < 8 && !ret; k++) {
			snprintf(key, sizeof(key), "k%u", k);
			t_fill_random(buf, 70000, (uint64_t)i * 1000 + k);
			ret = swapio_store_put(s, key, buf, 70000 - k) ||
			      swapio_store_get(s, key, back, 70000 - k) ||
			      memcmp(buf, back, 70000 - k);
		}
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(buf), free(back), free(dir);
	return ret;
}

static void check_store_of(const char *dir, int i)
{
	swapio_handle *h = tf_handle(NULL, (struct swapio_config){ 0 });
	swapio_store *s = store_open_or_die(h, dir);
	unsigned char *want = t_malloc(70000), *got = t_malloc(70000);
	char key[32];

	for (unsigned int k = 0; k < 8; k++) {
		snprintf(key, sizeof(key), "k%u", k);
		t_fill_random(want, 70000, (uint64_t)i * 1000 + k);
		assert_int_equal(swapio_store_get(s, key, got, 70000 - k), 0);
		assert_memory_equal(want, got, 70000 - k);
	}
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(want), free(got);
}

static void two_stores_one_tree(void **state)
{
	struct env *env = *state;
	char *tree = t_path(env->dir, "tree"), *a, *b, *sub;

	assert_int_equal(mkdir(tree, 0755), 0);
	sub = t_path(tree, "sub");
	assert_int_equal(mkdir(sub, 0755), 0);
	run_children(2, two_stores_child, tree, 60);
	a = t_path(tree, "a");
	b = t_path(tree, "sub/b");
	check_store_of(a, 0);
	check_store_of(b, 1);
	free(a), free(b), free(sub), free(tree);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hammer_one_dir),
		cmocka_unit_test(store_lock_across_processes),
		cmocka_unit_test(two_stores_one_tree),
	};

	t_engine();
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
