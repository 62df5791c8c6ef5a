/* SPDX-License-Identifier: MIT */
/*
 * A generation is never handed out twice across a crash. A child opens
 * the store and submits a put of k = v2 whose data lands; it is killed
 * (SIGKILL) before the put commits, so the data file holds v2's header
 * and payload but the index has no PUT record for it. The parent
 * reopens (k is still v1), puts k = v3 elsewhere in the file, and
 * damages the index, so that RECOVER must rebuild the map from the
 * extents' headers alone. k must read v3: had the reopened store handed
 * v3 the generation v2 already took (a counter rebuilt from the records
 * only, without the GEN reservations), the two headers would tie and the
 * one later in the file, v2, would win the scan.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_store_common.h"

/* A small growth step keeps the data file small enough to search. */
static const struct swapio_store_config cfg = { .grow_bytes = 1u << 20 };

/*
 * The child's side: submit the put of @v2, wait until both its writes
 * have completed, tell the parent, then wait to be killed without ever
 * waiting on the op, which is what would append its PUT record.
 */
static int child_put_uncommitted(const char *dir, const void *v2, size_t len,
				 int fd_ready, int fd_hold)
{
	swapio_handle *h;
	swapio_store *s;
	swapio_store_op *op;
	char c;

	alarm(60);	/* a hang fails the test instead of stalling it */
	if (swapio_handle_create(&(struct swapio_config){
					.engine = t_engine() }, &h) ||
	    ts_store_open(h, dir, &cfg, &s) ||
	    swapio_store_submit_put(s, "k", v2, len, &op))
		return 2;
	while (!swapio_store_op_done(op))
		usleep(1000);
	if (write(fd_ready, "x", 1) != 1)
		return 3;
	(void)!read(fd_hold, &c, 1);	/* EOF only if the parent died */
	return 4;
}

/* Is @needle (@n bytes) anywhere in the store's data file? */
static bool data_holds(const char *dir, const void *needle, size_t n)
{
	unsigned char *buf;
	size_t size;
	bool found;

	buf = ts_read_data(dir, &size);
	found = memmem(buf, size, needle, n) != NULL;
	free(buf);
	return found;
}

static void check_value(swapio_store *s, const char *key,
			const unsigned char *want, size_t len)
{
	unsigned char *got = t_malloc(len);

	assert_int_equal(swapio_store_size(s, key), (int64_t)len);
	assert_int_equal(swapio_store_get(s, key, got, len), 0);
	assert_int_equal(t_first_diff(got, want, len), SIZE_MAX);
	free(got);
}

/* Zero the head of the index: open says SWAPIO_EBADSTORE from now on. */
static void damage_index(const char *dir)
{
	char *path = t_path(dir, "index");
	char zero[64] = { 0 };
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zero, sizeof(zero), 0), sizeof(zero));
	assert_int_equal(close(fd), 0);
	free(path);
}

/*
 * The layout, in blocks B from the data file's start: "hole" (9 B, then
 * removed), v1 (2 B), v2 (11 B: too large for the hole, so it goes after
 * v1), and v3 (3 B) back in the hole. v3's header comes before v2's in
 * the file and v2's extent is never overwritten. Striped, each extent is
 * a stripe unit U longer (9 B + U, ...): extents over a unit are placed
 * first fit, as in a plain store, while smaller ones go to the drives in
 * turn and would not keep this layout.
 */
static void gen_not_reused_after_crash(void **state)
{
	struct t_env *env = *state;
	const struct swapio_store_config rcfg = {
		.grow_bytes = cfg.grow_bytes, .flags = SWAPIO_STORE_RECOVER,
	};
	struct swapio_store_info info;
	unsigned char *hole, *v1, *v2, *v3;
	size_t b, u, hole_len, v1_len, v2_len, v3_len;
	int ready[2], hold[2], status;
	swapio_handle *h;
	swapio_store *s;
	pid_t pid;
	char c;

	h = t_handle((struct swapio_config){ 0 });
	s = ts_open(h, env->dir, &cfg);
	swapio_store_info(s, &info);
	b = info.block;
	u = info.stripe_unit;
	hole_len = 8 * b + u;
	v1_len = b - 5 + u;
	v2_len = 9 * b + 7 + u;
	v3_len = b + 123 + u;
	hole = t_random_buf(hole_len, 10);
	v1 = t_random_buf(v1_len, 11);
	v2 = t_random_buf(v2_len, 12);
	v3 = t_random_buf(v3_len, 13);
	assert_int_equal(swapio_store_put(s, "hole", hole, hole_len), 0);
	assert_int_equal(swapio_store_put(s, "k", v1, v1_len), 0);
	assert_int_equal(swapio_store_remove(s, "hole"), 0);
	/* The child must open a closed store; no worker threads at fork. */
	swapio_store_close(s);
	swapio_handle_destroy(h);

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		_exit(child_put_uncommitted(env->dir, v2, v2_len, ready[1],
					    hold[0]));
	}
	close(ready[1]);
	close(hold[0]);
	if (read(ready[0], &c, 1) != 1) {
		assert_int_equal(waitpid(pid, &status, 0), pid);
		fail_msg("child failed before its put's data landed "
			 "(status %#x)", status);
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(ready[0]);
	close(hold[1]);
	assert_true(data_holds(env->dir, v2, v2_len));	/* v2's data landed */

	h = t_handle((struct swapio_config){ 0 });
	s = ts_open(h, env->dir, &cfg);
	check_value(s, "k", v1, v1_len);	/* v2 never committed */
	assert_int_equal(swapio_store_put(s, "k", v3, v3_len), 0);
	check_value(s, "k", v3, v3_len);
	swapio_store_close(s);
	/* Both headers are in the file: only generations tell them apart. */
	assert_true(data_holds(env->dir, v2, v2_len));
	assert_true(data_holds(env->dir, v3, v3_len));

	damage_index(env->dir);
	assert_int_equal(ts_store_open(h, env->dir, &cfg, &s),
			 SWAPIO_EBADSTORE);
	s = ts_open(h, env->dir, &rcfg);
	check_value(s, "k", v3, v3_len);
	swapio_store_close(s);
	s = ts_open(h, env->dir, &cfg);		/* the rebuilt index agrees */
	check_value(s, "k", v3, v3_len);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(hole);
	free(v1);
	free(v2);
	free(v3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(gen_not_reused_after_crash,
						t_env_setup, t_env_teardown),
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
