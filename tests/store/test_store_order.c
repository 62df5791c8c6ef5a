/* SPDX-License-Identifier: MIT */
/*
 * The store's ordering promises, checked by order of events, never by
 * timing: a remove submitted after a put wins, now and after a reopen;
 * each waiter on one op keeps its own timeout; a get and a put complete
 * while a sync is held up in fdatasync, and while a compaction is held
 * up in its new log's fdatasync; a forked child gets SWAPIO_EFORKED from
 * the parent's store while the parent closes and reopens it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_fault.h"
#include "test_store_common.h"

#define LEN	8192

static int teardown(void **state)
{
	unsetenv("SWAPIO_FAULT_FD");
	return t_env_teardown(state);
}

/* put k; submit put k (held back); remove k: k stays removed. */
static void remove_after_put_wins(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = tf_handle("delay_ms=400,dir=write",
				     (struct swapio_config){ 0 });
	unsigned char *buf = t_malloc(LEN);
	swapio_store *s = ts_open(h, env->dir, NULL);
	swapio_store_op *op;
	char key[64];

	ts_key(key, sizeof(key), 1);
	assert_int_equal(ts_put(s, 1, 1, LEN), 0);
	ts_fill(buf, LEN, 1, 2);
	assert_int_equal(swapio_store_submit_put(s, key, buf, LEN, &op), 0);
	assert_int_equal(swapio_store_remove(s, key), 0);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);
	assert_int_equal(swapio_store_op_wait(op, TF_WAIT_MS), LEN);
	swapio_store_op_free(op);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);

	/* A key never committed: the remove still wins over its put. */
	ts_key(key, sizeof(key), 2);
	assert_int_equal(swapio_store_submit_put(s, key, buf, LEN, &op), 0);
	assert_int_equal(swapio_store_remove(s, key), 0);
	swapio_store_op_free(op);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);
	assert_int_equal(swapio_store_remove(s, key), -ENOENT);
	swapio_store_close(s);

	s = ts_open(h, env->dir, NULL);		/* replay agrees */
	ts_key(key, sizeof(key), 1);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);
	ts_key(key, sizeof(key), 2);
	assert_int_equal(swapio_store_size(s, key), -ENOENT);
	/* And a later put of the key is a put like any other. */
	assert_int_equal(ts_put(s, 1, 3, LEN), 0);
	swapio_store_close(s);
	s = ts_open(h, env->dir, NULL);
	assert_int_equal(ts_get_check(s, 1, 3, LEN), 0);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(buf);
}

struct waiter {
	swapio_store_op	*op;
	int64_t		res;
	atomic_bool	started;
};

static void *wait_forever(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->started, true);
	w->res = swapio_store_op_wait(w->op, -1);
	return NULL;
}

/* While one thread waits without limit, another's 50 ms wait times out. */
static void waiters_keep_their_timeouts(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = tf_handle("delay_ms=1500,dir=write",
				     (struct swapio_config){ 0 });
	unsigned char *buf = t_malloc(LEN);
	swapio_store *s = ts_open(h, env->dir, NULL);
	struct waiter w = { .res = 0 };
	pthread_t t;
	char key[64];

	ts_key(key, sizeof(key), 1);
	ts_fill(buf, LEN, 1, 1);
	assert_int_equal(swapio_store_submit_put(s, key, buf, LEN, &w.op), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_forever, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	usleep(50 * 1000);	/* let it block inside the wait */
	assert_int_equal(swapio_store_op_wait(w.op, 50), -ETIMEDOUT);
	assert_int_equal(swapio_store_op_wait(w.op, 0), -ETIMEDOUT);
	/* The other waiter has not been answered either: still running. */
	assert_int_equal(swapio_store_op_done(w.op), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.res, LEN);
	assert_int_equal(swapio_store_op_done(w.op), 1);
	assert_int_equal(swapio_store_op_wait(w.op, 0), LEN);
	swapio_store_op_free(w.op);
	assert_int_equal(ts_get_check(s, 1, 1, LEN), 0);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(buf);
}

struct syncer {
	swapio_store	*s;
	int		ret;
	atomic_bool	started, done;
};

static void *do_sync(void *arg)
{
	struct syncer *y = arg;

	atomic_store(&y->started, true);
	y->ret = swapio_store_sync(y->s);
	atomic_store(&y->done, true);
	return NULL;
}

/* The index's fdatasync held up 3 s: gets and puts go on meanwhile. */
static void sync_does_not_block(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	struct syncer y = { .ret = 1 };
	pthread_t t;

	setenv("SWAPIO_FAULT_FD", "call=fdatasync,file=index,delay_ms=3000",
	       1);
	y.s = ts_open(h, env->dir, NULL);
	unsetenv("SWAPIO_FAULT_FD");
	assert_int_equal(ts_put(y.s, 1, 1, LEN), 0);
	assert_int_equal(pthread_create(&t, NULL, do_sync, &y), 0);
	while (!atomic_load(&y.started))
		sched_yield();
	usleep(100 * 1000);	/* let it reach the fdatasync */
	assert_int_equal(ts_put(y.s, 2, 1, LEN), 0);
	assert_int_equal(ts_get_check(y.s, 1, 1, LEN), 0);
	assert_int_equal(ts_get_check(y.s, 2, 1, LEN), 0);
	assert_int_equal(swapio_store_remove(y.s, "layer.1/weights"), 0);
	assert_false(atomic_load(&y.done));	/* all of it before the sync */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(y.ret, 0);
	swapio_store_close(y.s);
	swapio_handle_destroy(h);
}

/* Keys 0..NK-1 live through the compaction; key CHURN fills the log. */
#define NK	16
#define CHURN	100

struct churner {
	swapio_store	*s;
	atomic_uint	*seq;
	unsigned int	last;	/* CHURN's value: the last put done */
	unsigned int	done_seq;	/* the compacting put returned; 0: no */
	int		ret;
	atomic_bool	done;
};

/* Replace CHURN until a put returns with the log shorter: it compacted. */
static void *churn(void *arg)
{
	struct churner *c = arg;
	struct swapio_store_info a, b;

	for (unsigned int i = 1; i <= 4000; i++) {
		swapio_store_info(c->s, &a);
		c->ret = ts_put(c->s, CHURN, i, LEN);
		if (c->ret)
			break;
		c->last = i;
		swapio_store_info(c->s, &b);
		if (b.index_bytes < a.index_bytes) {
			c->done_seq = atomic_fetch_add(c->seq, 1);
			break;
		}
	}
	atomic_store(&c->done, true);
	return NULL;
}

/* Key @id holds value @gen, or @id is CHURN and holds its last one. */
static void check_all(swapio_store *s, unsigned int last)
{
	for (unsigned int i = 0; i <= NK; i++)
		assert_int_equal(ts_get_check(s, i, i == 5 ? 2 : 1, LEN), 0);
	assert_int_equal(ts_get_check(s, CHURN, last, LEN), 0);
}

/*
 * A compaction held up 2 s in each fdatasync of its new log: a get and a
 * put submitted from another thread meanwhile complete while the new log
 * is still index.tmp, and the put, appended to the old log after the
 * snapshot, is carried into the new one.
 */
static void compaction_does_not_block(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	unsigned char *got = t_malloc(LEN), *b5 = t_malloc(LEN);
	unsigned char *bn = t_malloc(LEN);
	char *tmp = t_path(env->dir, "index.tmp");
	struct churner c = { .ret = 0 };
	swapio_store_op *get, *put_new, *put_old;
	atomic_uint seq = 1;
	unsigned int mine;
	char key[64];
	pthread_t t;
	swapio_store *s = ts_open(h, env->dir, NULL);

	for (unsigned int i = 0; i < NK; i++)
		assert_int_equal(ts_put(s, i, 1, LEN), 0);
	swapio_store_close(s);
	/* Reopened: the open itself has nothing to compact. */
	setenv("SWAPIO_FAULT_FD", "call=fdatasync,file=tmp,delay_ms=2000", 1);
	c.s = s = ts_open(h, env->dir, NULL);
	unsetenv("SWAPIO_FAULT_FD");
	c.seq = &seq;
	assert_int_equal(pthread_create(&t, NULL, churn, &c), 0);
	while (access(tmp, F_OK) && !atomic_load(&c.done))
		usleep(100);
	assert_false(atomic_load(&c.done));	/* a compaction under way */

	ts_key(key, sizeof(key), 3);
	assert_int_equal(swapio_store_submit_get(s, key, got, LEN, &get), 0);
	ts_key(key, sizeof(key), NK);
	ts_fill(bn, LEN, NK, 1);
	assert_int_equal(swapio_store_submit_put(s, key, bn, LEN, &put_new),
			 0);
	ts_key(key, sizeof(key), 5);
	ts_fill(b5, LEN, 5, 2);
	assert_int_equal(swapio_store_submit_put(s, key, b5, LEN, &put_old),
			 0);
	assert_int_equal(swapio_store_op_wait(get, -1), LEN);
	assert_int_equal(swapio_store_op_wait(put_new, -1), LEN);
	assert_int_equal(swapio_store_op_wait(put_old, -1), LEN);
	swapio_store_op_free(get);
	swapio_store_op_free(put_new);
	swapio_store_op_free(put_old);
	mine = atomic_fetch_add(&seq, 1);
	/* All of it before the compaction's rename. */
	assert_int_equal(access(tmp, F_OK), 0);
	assert_false(atomic_load(&c.done));
	assert_int_equal(ts_check(got, LEN, 3, 1), 0);

	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c.ret, 0);
	assert_true(c.done_seq > mine);		/* 0: it never compacted */
	assert_int_equal(access(tmp, F_OK), -1);
	check_all(s, c.last);
	swapio_store_close(s);
	s = ts_open(h, env->dir, NULL);		/* from the compacted log */
	check_all(s, c.last);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	free(tmp);
	free(got);
	free(b5);
	free(bn);
}

/* The child's side: every call on the inherited store is refused. */
static int child_calls(swapio_store *s, int fd_go)
{
	unsigned char buf[16] = { 0 };
	swapio_store_op *op;
	char c;

	alarm(20);	/* a hang fails the test instead of stalling it */
	if (swapio_store_put(s, "k", buf, sizeof(buf)) != SWAPIO_EFORKED ||
	    swapio_store_get(s, "layer.1/weights", buf, 16) !=
	    SWAPIO_EFORKED ||
	    swapio_store_submit_get(s, "k", buf, 16, &op) != SWAPIO_EFORKED ||
	    swapio_store_remove(s, "k") != SWAPIO_EFORKED ||
	    swapio_store_size(s, "k") != SWAPIO_EFORKED ||
	    swapio_store_sync(s) != SWAPIO_EFORKED)
		return 2;
	swapio_store_close(s);		/* returns; frees nothing */
	return read(fd_go, &c, 1) == 1 ? 0 : 3;
}

/* The parent closes and reopens its store while a child lives. */
static void fork_child_refused(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	swapio_store *s = ts_open(h, env->dir, NULL);
	int go[2], status;
	pid_t pid;

	assert_int_equal(ts_put(s, 1, 1, LEN), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_calls(s, go[0]));
	swapio_store_close(s);
	s = ts_open(h, env->dir, NULL);		/* -EBUSY before */
	assert_int_equal(ts_get_check(s, 1, 1, LEN), 0);
	assert_int_equal(ts_put(s, 2, 1, LEN), 0);
	assert_int_equal(write(go[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	swapio_store_close(s);
	close(go[0]);
	close(go[1]);
	swapio_handle_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, t_env_setup, teardown)
		T(remove_after_put_wins),
		T(waiters_keep_their_timeouts),
		T(sync_does_not_block),
		T(compaction_does_not_block),
		T(fork_child_refused),
#undef T
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
