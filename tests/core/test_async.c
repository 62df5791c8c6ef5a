/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous ops: many in flight over several files, waited in random
 * order, with swapio_wait_any() and with swapio_wait_all(); polling with
 * timeout 0 and swapio_op_done(); the eventfd; several waiters on one op;
 * freeing or destroying with ops in flight; and four threads submitting
 * to one handle at once, each checking its own data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>

#include "testing.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)
#define NR_FILES	4
#define NR_OPS		128

struct as_env {
	char		*dir;
	char		*paths[NR_FILES];
};

/* One transfer of the many-ops tests. */
struct xfer {
	unsigned int	file;
	uint64_t	off;
	size_t		len;
	unsigned char	*src;
	unsigned char	*dst;
};

static swapio_handle *as_handle(uint64_t bs, uint32_t qd, uint32_t threads,
				uint32_t flags)
{
	struct swapio_config cfg = {
		.block_size = bs,
		.queue_depth = qd,
		.threads = threads,
		.flags = flags,
	};

	return t_handle(cfg);
}

/*
 * NR_OPS transfers of mixed sizes spread over NR_FILES files, each in its
 * own range of its file (odd offsets and lengths included), with random
 * source data and a zeroed destination.
 */
static struct xfer *xfers_make(uint64_t seed)
{
	static const size_t sizes[] = {
		1, 511, 4096, 4097, 65536 + 3, 300000, 1 * MiB + 17,
	};
	struct xfer *x = t_zalloc(NR_OPS * sizeof(*x));
	uint64_t next[NR_FILES] = { 0 };
	uint64_t s = seed;

	for (unsigned int i = 0; i < NR_OPS; i++) {
		x[i].file = i % NR_FILES;
		x[i].len = sizes[t_rand64(&s) % T_ARRAY_SIZE(sizes)];
		/* Gaps of 0..4 KiB keep offsets odd and ranges disjoint. */
		x[i].off = next[x[i].file] + t_rand64(&s) % 4096;
		next[x[i].file] = x[i].off + x[i].len;
		x[i].src = t_random_buf(x[i].len, seed * 1000 + i);
		x[i].dst = t_zalloc(x[i].len);
	}
	return x;
}

static void xfers_free(struct xfer *x)
{
	for (unsigned int i = 0; i < NR_OPS; i++) {
		free(x[i].src);
		free(x[i].dst);
	}
	free(x);
}

static void files_open(swapio_handle *h, struct as_env *env,
		       swapio_file **f)
{
	for (unsigned int i = 0; i < NR_FILES; i++)
		assert_int_equal(swapio_file_open(h, env->paths[i],
						  SWAPIO_O_READ |
						  SWAPIO_O_WRITE |
						  SWAPIO_O_CREATE |
						  SWAPIO_O_TRUNC, &f[i]), 0);
}

static void files_close(swapio_file **f)
{
	for (unsigned int i = 0; i < NR_FILES; i++)
		assert_int_equal(swapio_file_close(f[i]), 0);
}

static void submit_all(swapio_handle *h, swapio_file **f, struct xfer *x,
		       bool write, swapio_op **ops)
{
	for (unsigned int i = 0; i < NR_OPS; i++) {
		if (write)
			assert_int_equal(swapio_submit_write(h, f[x[i].file],
							     x[i].src, x[i].len,
							     x[i].off, &ops[i]),
					 0);
		else
			assert_int_equal(swapio_submit_read(h, f[x[i].file],
							    x[i].dst, x[i].len,
							    x[i].off, &ops[i]),
					 0);
		assert_non_null(ops[i]);
	}
}

/* What the files hold, read with plain read(2), matches every source. */
static void check_files(struct as_env *env, const struct xfer *x)
{
	unsigned char *data[NR_FILES];
	size_t size[NR_FILES];

	for (unsigned int i = 0; i < NR_FILES; i++)
		data[i] = t_read_file(env->paths[i], &size[i]);
	for (unsigned int i = 0; i < NR_OPS; i++) {
		assert_true(x[i].off + x[i].len <= size[x[i].file]);
		assert_int_equal(t_first_diff(data[x[i].file] + x[i].off,
					      x[i].src, x[i].len), SIZE_MAX);
	}
	for (unsigned int i = 0; i < NR_FILES; i++)
		free(data[i]);
}

static void shuffle(unsigned int *v, unsigned int n, uint64_t seed)
{
	for (unsigned int i = 0; i < n; i++)
		v[i] = i;
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = (unsigned int)(t_rand64(&seed) % (i + 1));
		unsigned int t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/*
 * Writes all in flight, waited for in random order; then reads all in
 * flight, consumed one by one through swapio_wait_any(); then reads again,
 * waited for with swapio_wait_all().
 */
static void many_ops(struct as_env *env, swapio_handle *h, uint64_t seed)
{
	swapio_op *ops[NR_OPS];
	unsigned int order[NR_OPS], idx[NR_OPS];
	swapio_file *f[NR_FILES];
	struct xfer *x = xfers_make(seed);
	unsigned int n, seen = 0;
	int i;

	files_open(h, env, f);

	submit_all(h, f, x, true, ops);
	shuffle(order, NR_OPS, seed);
	for (unsigned int k = 0; k < NR_OPS; k++) {
		swapio_op *op = ops[order[k]];

		assert_int_equal(swapio_op_wait(op, -1), x[order[k]].len);
		assert_int_equal(swapio_op_done(op), 1);
		swapio_op_free(op);
	}
	check_files(env, x);

	submit_all(h, f, x, false, ops);
	for (unsigned int k = 0; k < NR_OPS; k++)
		idx[k] = k;
	for (n = NR_OPS; n > 0; n--) {
		i = swapio_wait_any(ops, n, -1);
		assert_in_range(i, 0, n - 1);
		assert_int_equal(swapio_op_done(ops[i]), 1);
		/* Timeout 0 on a completed op returns its result. */
		assert_int_equal(swapio_op_wait(ops[i], 0), x[idx[i]].len);
		assert_int_equal(t_first_diff(x[idx[i]].dst, x[idx[i]].src,
					      x[idx[i]].len), SIZE_MAX);
		swapio_op_free(ops[i]);
		ops[i] = ops[n - 1];
		idx[i] = idx[n - 1];
		seen++;
	}
	assert_int_equal(seen, NR_OPS);

	for (unsigned int k = 0; k < NR_OPS; k++)
		memset(x[k].dst, 0, x[k].len);
	submit_all(h, f, x, false, ops);
	assert_int_equal(swapio_wait_all(h, -1), 0);
	/* With every op done, wait_any names the lowest index. */
	assert_int_equal(swapio_wait_any(ops, NR_OPS, 0), 0);
	assert_int_equal(swapio_wait_any(ops + 5, NR_OPS - 5, -1), 0);
	for (unsigned int k = 0; k < NR_OPS; k++) {
		assert_int_equal(swapio_op_done(ops[k]), 1);
		assert_int_equal(swapio_op_wait(ops[k], 0), x[k].len);
		assert_int_equal(t_first_diff(x[k].dst, x[k].src, x[k].len),
				 SIZE_MAX);
		swapio_op_free(ops[k]);
	}

	files_close(f);
	xfers_free(x);
}

static void many_ops_direct(void **state)
{
	swapio_handle *h = as_handle(64 * KiB, 16, 2, 0);

	many_ops(*state, h, 1);
	swapio_handle_destroy(h);
}

static void many_ops_threads4_qd64(void **state)
{
	swapio_handle *h = as_handle(1 * MiB, 64, 4, 0);

	many_ops(*state, h, 2);
	swapio_handle_destroy(h);
}

static void many_ops_buffered_batches(void **state)
{
	swapio_handle *h = as_handle(4 * KiB, 4, 1, SWAPIO_CFG_BUFFERED |
				     SWAPIO_CFG_NO_OVERLAP |
				     SWAPIO_CFG_SINGLE_SUBMIT);

	many_ops(*state, h, 3);
	swapio_handle_destroy(h);
}

/*
 * Timeout 0 polls: on a running op it may say -ETIMEDOUT (or the result,
 * if the op was quick); on a finished op it gives the result every time.
 */
static void poll_with_timeout_zero(void **state)
{
	const size_t n = 8 * MiB + 5;
	struct as_env *env = *state;
	swapio_handle *h = as_handle(4 * KiB, 1, 1, SWAPIO_CFG_NO_OVERLAP);
	unsigned char *src = t_random_buf(n, 11);
	swapio_file *f;
	swapio_op *op;
	ssize_t res;
	int idx;

	/* Nothing in flight: wait_all returns at once, even with 0. */
	assert_int_equal(swapio_wait_all(h, 0), 0);
	assert_int_equal(swapio_file_open(h, env->paths[0], SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_TRUNC,
					  &f), 0);
	assert_int_equal(swapio_submit_write(h, f, src, n, 3, &op), 0);
	res = swapio_op_wait(op, 0);
	assert_true(res == -ETIMEDOUT || res == (ssize_t)n);
	idx = swapio_wait_any(&op, 1, 0);
	assert_true(idx == -ETIMEDOUT || idx == 0);
	res = swapio_op_wait(op, 1);
	assert_true(res == -ETIMEDOUT || res == (ssize_t)n);
	if (res == -ETIMEDOUT)
		assert_int_equal(swapio_op_done(op), 0);

	assert_int_equal(swapio_op_wait(op, 60000), n);
	assert_int_equal(swapio_op_done(op), 1);
	assert_int_equal(swapio_op_wait(op, 0), n);
	assert_int_equal(swapio_op_wait(op, -1), n);
	assert_int_equal(swapio_wait_any(&op, 1, 0), 0);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	swapio_op_free(op);
	assert_int_equal(swapio_file_size(f), n + 3);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(src);
}

/* A zero-length op completes at once with 0, and is waited like any. */
static void zero_length_op(void **state)
{
	struct as_env *env = *state;
	swapio_handle *h = as_handle(0, 0, 2, 0);
	unsigned char byte = 0;
	swapio_file *f;
	swapio_op *op;

	assert_int_equal(swapio_file_open(h, env->paths[0], SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE |
					  SWAPIO_O_TRUNC, &f), 0);
	assert_int_equal(swapio_submit_write(h, f, &byte, 0, 4096, &op), 0);
	assert_int_equal(swapio_op_wait(op, -1), 0);
	swapio_op_free(op);
	assert_int_equal(swapio_submit_read(h, f, &byte, 0, 0, &op), 0);
	assert_int_equal(swapio_wait_any(&op, 1, -1), 0);
	assert_int_equal(swapio_op_wait(op, 0), 0);
	swapio_op_free(op);
	assert_int_equal(swapio_file_size(f), 0);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
}

/* ------------------------------------------------------------------ */
/* The eventfd                                                         */
/* ------------------------------------------------------------------ */

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int ret;

	do
		ret = poll(&p, 1, timeout_ms);
	while (ret < 0 && errno == EINTR);
	assert_true(ret >= 0);
	return ret == 1 && (p.revents & POLLIN);
}

static uint64_t drain(int fd)
{
	uint64_t v = 0;

	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	return v;
}

static void eventfd_signals_completions(void **state)
{
	const size_t n = 1 * MiB + 17;
	const int fds_before = t_count_fds();
	struct as_env *env = *state;
	swapio_handle *h = as_handle(64 * KiB, 8, 2, 0);
	unsigned char *src = t_random_buf(n, 21);
	const size_t small = 64 * KiB + 3;
	unsigned char *dst[10];
	swapio_op *ops[10];
	uint64_t total = 0;
	swapio_file *f;
	int efd;

	efd = swapio_handle_eventfd(h);
	assert_true(efd >= 0);
	assert_int_equal(swapio_handle_eventfd(h), efd);
	assert_int_equal(readable(efd, 0), 0);

	assert_int_equal(swapio_file_open(h, env->paths[0], SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE |
					  SWAPIO_O_TRUNC, &f), 0);
	/* One op: readable after it, and the op is done by then. */
	assert_int_equal(swapio_submit_write(h, f, src, n, 0, &ops[0]), 0);
	assert_int_equal(readable(efd, 30000), 1);
	assert_int_equal(swapio_op_done(ops[0]), 1);
	assert_int_equal(drain(efd), 1);
	assert_int_equal(readable(efd, 0), 0);
	assert_int_equal(swapio_op_wait(ops[0], 0), n);
	swapio_op_free(ops[0]);

	/* Ten ops: the counts read add up to ten, one per completion. */
	for (unsigned int i = 0; i < 10; i++) {
		dst[i] = t_zalloc(small);
		assert_int_equal(swapio_submit_read(h, f, dst[i], small,
						    i * 4099, &ops[i]), 0);
	}
	while (total < 10) {
		assert_int_equal(readable(efd, 30000), 1);
		total += drain(efd);
	}
	assert_int_equal(total, 10);
	for (unsigned int i = 0; i < 10; i++) {
		assert_int_equal(swapio_op_done(ops[i]), 1);
		assert_int_equal(swapio_op_wait(ops[i], 0), small);
		assert_int_equal(t_first_diff(dst[i], src + i * 4099, small),
				 SIZE_MAX);
		swapio_op_free(ops[i]);
		free(dst[i]);
	}
	assert_int_equal(readable(efd, 0), 0);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	/* The eventfd, like every descriptor of the handle, is gone. */
	assert_int_equal(t_count_fds(), fds_before);
	free(src);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

static pthread_t main_thread;
static atomic_uint alarms_here, alarms_elsewhere;

static void on_alarm(int sig)
{
	(void)sig;
	if (pthread_equal(pthread_self(), main_thread))
		atomic_fetch_add(&alarms_here, 1);
	else
		atomic_fetch_add(&alarms_elsewhere, 1);
}

/*
 * Under a storm of process-directed signals, none lands on a library
 * thread (they block them all), and no transfer sees EINTR or comes up
 * short. While the caller blocks the signal too, the kernel must hold it
 * for the caller, unless some library thread would take it.
 */
static void signals_stay_with_caller(void **state)
{
	const struct itimerval on = {
		.it_interval = { 0, 500 }, .it_value = { 0, 500 },
	};
	const struct itimerval off = { 0 };
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	sigset_t alrm;
	swapio_handle *h;

	main_thread = pthread_self();
	atomic_store(&alarms_here, 0);
	atomic_store(&alarms_elsewhere, 0);
	sigemptyset(&sa.sa_mask);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);

	/* Blocked here: any delivery before the unblock is elsewhere. */
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &alrm, NULL), 0);
	h = as_handle(4 * KiB, 8, 2, 0);
	assert_int_equal(setitimer(ITIMER_REAL, &on, NULL), 0);
	many_ops(*state, h, 4);
	assert_int_equal(atomic_load(&alarms_elsewhere), 0);
	assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &alrm, NULL), 0);
	assert_true(atomic_load(&alarms_here) > 0);

	/* Unblocked: the caller's own waits are interrupted, and go on. */
	many_ops(*state, h, 5);
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	swapio_handle_destroy(h);
	assert_int_equal(atomic_load(&alarms_elsewhere), 0);
}

struct waiter {
	pthread_t	thread;
	swapio_op	*op;
	ssize_t		res;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->res = swapio_op_wait(w->op, -1);
	return NULL;
}

/* Several threads may wait on one op; each gets its result. */
static void several_waiters(void **state)
{
	const size_t n = 8 * MiB + 1;
	struct as_env *env = *state;
	swapio_handle *h = as_handle(64 * KiB, 4, 1, 0);
	unsigned char *src = t_random_buf(n, 31);
	struct waiter w[3];
	swapio_file *f;
	swapio_op *op;

	assert_int_equal(swapio_file_open(h, env->paths[1], SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_TRUNC,
					  &f), 0);
	assert_int_equal(swapio_submit_write(h, f, src, n, 0, &op), 0);
	for (unsigned int i = 0; i < 3; i++) {
		w[i].op = op;
		w[i].res = 0;
		assert_int_equal(pthread_create(&w[i].thread, NULL,
						waiter_main, &w[i]), 0);
	}
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(w[i].thread, NULL), 0);
		assert_int_equal(w[i].res, n);
	}
	swapio_op_free(op);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(src);
}

/* Freeing an op in flight waits for it: the data is there afterwards. */
static void free_waits_for_op(void **state)
{
	const size_t n = 4 * MiB + 3;
	struct as_env *env = *state;
	swapio_handle *h = as_handle(64 * KiB, 2, 2, 0);
	unsigned char *src = t_random_buf(n, 41), *got;
	swapio_file *f;
	swapio_op *op;
	size_t size;

	assert_int_equal(swapio_file_open(h, env->paths[2], SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_TRUNC,
					  &f), 0);
	assert_int_equal(swapio_submit_write(h, f, src, n, 0, &op), 0);
	swapio_op_free(op);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	got = t_read_file(env->paths[2], &size);
	assert_int_equal(size, n);
	assert_int_equal(t_first_diff(got, src, n), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(got);
	free(src);
}

#define STREAM_OPS	8

/* A thread that keeps STREAM_OPS writes in flight until told to stop. */
struct streamer {
	swapio_handle	*h;
	swapio_file	*f;
	unsigned char	*buf;
	atomic_bool	stop;
	atomic_uint	done;		/* ops completed */
	pthread_t	thread;
};

static void *streamer_main(void *arg)
{
	struct streamer *s = arg;
	swapio_op *ring[STREAM_OPS] = { NULL };

	for (unsigned int i = 0; !atomic_load(&s->stop); i++) {
		swapio_op **slot = &ring[i % STREAM_OPS];

		/* Wait for the oldest only when its successor is in. */
		if (*slot) {
			swapio_op_wait(*slot, -1);
			swapio_op_free(*slot);
			atomic_fetch_add(&s->done, 1);
		}
		if (swapio_submit_write(s->h, s->f, s->buf, 64 * KiB,
					(i % STREAM_OPS) * 64 * KiB, slot))
			break;
	}
	for (unsigned int i = 0; i < STREAM_OPS; i++)
		swapio_op_free(ring[i]);
	return NULL;
}

/*
 * wait_all() waits for the ops submitted before it, not for the handle to
 * go quiet: it returns while another thread never lets the handle idle.
 * (Its 20 s bound is a hang detector, far above the few ms needed.)
 */
static void wait_all_is_a_barrier(void **state)
{
	struct as_env *env = *state;
	swapio_handle *h;
	struct streamer s = { .buf = t_random_buf(64 * KiB, 51) };
	unsigned char *src = t_random_buf(4 * KiB, 52);
	swapio_file *f;
	swapio_op *op;

	/* Each write takes at least 2 ms: the stream never lets the handle
	 * go idle, while the barrier's own op is quick to finish. */
	setenv("SWAPIO_FAULT", "delay_ms=2,dir=write", 1);
	h = as_handle(64 * KiB, 16, 2, 0);
	unsetenv("SWAPIO_FAULT");
	s.h = h;
	assert_int_equal(swapio_file_open(h, env->paths[3], SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_TRUNC,
					  &s.f), 0);
	assert_int_equal(swapio_file_open(h, env->paths[2], SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_TRUNC,
					  &f), 0);
	assert_int_equal(pthread_create(&s.thread, NULL, streamer_main, &s),
			 0);
	while (atomic_load(&s.done) < 2)	/* the stream is running */
		usleep(1000);
	for (int round = 0; round < 20; round++) {
		assert_int_equal(swapio_submit_write(h, f, src, 4 * KiB, 0,
						     &op), 0);
		assert_int_equal(swapio_wait_all(h, 20000), 0);
		assert_true(swapio_op_done(op));
		assert_int_equal(swapio_op_wait(op, 0), 4 * KiB);
		swapio_op_free(op);
	}
	atomic_store(&s.stop, true);
	pthread_join(s.thread, NULL);
	assert_int_equal(swapio_wait_all(h, 0), 0);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(swapio_file_close(s.f), 0);
	swapio_handle_destroy(h);
	free(s.buf);
	free(src);
}

/*
 * Destroying a handle waits for the ops in flight and frees the ones never
 * freed (path ops, which own their files; LeakSanitizer checks the rest).
 */
static void destroy_waits_for_ops(void **state)
{
	const size_t n = 1 * MiB + 17;
	struct as_env *env = *state;
	swapio_handle *h = as_handle(64 * KiB, 8, 2, 0);
	unsigned char *src[NR_FILES], *got;
	swapio_op *op;
	size_t size;

	for (unsigned int i = 0; i < NR_FILES; i++) {
		unlink(env->paths[i]);
		src[i] = t_random_buf(n, 50 + i);
		assert_int_equal(swapio_submit_write_path(h, env->paths[i],
							  src[i], n, 7, &op),
				 0);
	}
	swapio_handle_destroy(h);
	for (unsigned int i = 0; i < NR_FILES; i++) {
		got = t_read_file(env->paths[i], &size);
		assert_int_equal(size, n + 7);
		assert_int_equal(t_first_diff(got + 7, src[i], n), SIZE_MAX);
		free(got);
		free(src[i]);
	}
}

#define SUBMITTERS	4
#define ROUNDS		24
#define REGION		(4 * MiB)	/* per submitter in the shared file */

struct submitter {
	pthread_t		thread;
	unsigned int		id;
	swapio_handle		*h;
	swapio_file		*f;	/* shared by all submitters */
	const char		*own_path;
	pthread_barrier_t	*start;
	const char		*fail;	/* NULL: every check passed */
	ssize_t			fail_res;
	unsigned int		fail_round;
};

static bool sub_check(struct submitter *s, bool ok, const char *what,
		      ssize_t res, unsigned int round)
{
	if (!ok && !s->fail) {
		s->fail = what;
		s->fail_res = res;
		s->fail_round = round;
	}
	return ok;
}

/*
 * Each round: write random data to this submitter's own range of the
 * shared file and to its own file by path, read both back, compare.
 * Alternates async submission and the synchronous calls.
 */
static void *submitter_main(void *arg)
{
	struct submitter *s = arg;
	const size_t max = 300 * KiB;
	unsigned char *src = t_malloc(max), *dst = t_malloc(max + 1);
	uint64_t rng = s->id + 1;
	swapio_op *op;
	ssize_t res;

	pthread_barrier_wait(s->start);
	for (unsigned int r = 0; r < ROUNDS && !s->fail; r++) {
		size_t len = 1 + t_rand64(&rng) % max;
		uint64_t off = s->id * REGION + t_rand64(&rng) % (REGION - max);

		t_fill_random(src, len, s->id * 1000 + r);
		memset(dst, 0, len + 1);
		if (r & 1) {
			res = swapio_pwrite(s->h, s->f, src, len, off);
			sub_check(s, res == (ssize_t)len, "pwrite", res, r);
			res = swapio_pread(s->h, s->f, dst + 1, len, off);
			sub_check(s, res == (ssize_t)len, "pread", res, r);
		} else {
			res = swapio_submit_write(s->h, s->f, src, len, off,
						  &op);
			if (sub_check(s, !res, "submit_write", res, r)) {
				res = swapio_op_wait(op, -1);
				sub_check(s, res == (ssize_t)len, "write op",
					  res, r);
				swapio_op_free(op);
			}
			res = swapio_submit_read(s->h, s->f, dst + 1, len, off,
						 &op);
			if (sub_check(s, !res, "submit_read", res, r)) {
				res = swapio_op_wait(op, -1);
				sub_check(s, res == (ssize_t)len, "read op",
					  res, r);
				swapio_op_free(op);
			}
		}
		sub_check(s, !memcmp(dst + 1, src, len), "shared data", 0, r);

		res = swapio_pwrite_path(s->h, s->own_path, src, len, r);
		sub_check(s, res == (ssize_t)len, "pwrite_path", res, r);
		memset(dst, 0, len);
		res = swapio_pread_path(s->h, s->own_path, dst, len, r);
		sub_check(s, res == (ssize_t)len, "pread_path", res, r);
		sub_check(s, !memcmp(dst, src, len), "own data", 0, r);
	}
	free(src);
	free(dst);
	return NULL;
}

struct observer {
	pthread_t	thread;
	swapio_handle	*h;
	atomic_bool	stop;
	uint64_t	max_written;
};

/* Reads statistics and waits with timeouts while the others submit. */
static void *observer_main(void *arg)
{
	struct observer *o = arg;
	struct swapio_stats st;

	while (!atomic_load(&o->stop)) {
		swapio_handle_stats(o->h, &st);
		if (st.bytes_written > o->max_written)
			o->max_written = st.bytes_written;
		(void)swapio_wait_all(o->h, 1);
	}
	return NULL;
}

static void four_submitters(swapio_handle *h, struct as_env *env)
{
	struct submitter s[SUBMITTERS];
	struct observer o = { .h = h };
	char *own[SUBMITTERS], name[16];
	pthread_barrier_t start;
	struct swapio_stats st;
	swapio_file *f;

	assert_int_equal(swapio_file_open(h, env->paths[0], SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE |
					  SWAPIO_O_TRUNC, &f), 0);
	atomic_init(&o.stop, false);
	assert_int_equal(pthread_barrier_init(&start, NULL, SUBMITTERS), 0);
	assert_int_equal(pthread_create(&o.thread, NULL, observer_main, &o),
			 0);
	for (unsigned int i = 0; i < SUBMITTERS; i++) {
		snprintf(name, sizeof(name), "own%u", i);
		own[i] = t_path(env->dir, name);
		s[i] = (struct submitter){
			.id = i, .h = h, .f = f, .start = &start,
			.own_path = own[i],
		};
		assert_int_equal(pthread_create(&s[i].thread, NULL,
						submitter_main, &s[i]), 0);
	}
	for (unsigned int i = 0; i < SUBMITTERS; i++) {
		assert_int_equal(pthread_join(s[i].thread, NULL), 0);
		if (s[i].fail)
			fail_msg("submitter %u, round %u: %s (%zd)", i,
				 s[i].fail_round, s[i].fail, s[i].fail_res);
	}
	atomic_store(&o.stop, true);
	assert_int_equal(pthread_join(o.thread, NULL), 0);
	for (unsigned int i = 0; i < SUBMITTERS; i++)
		free(own[i]);
	pthread_barrier_destroy(&start);
	swapio_handle_stats(h, &st);
	assert_true(st.bytes_written >= o.max_written);
	assert_true(st.bytes_written > 0);
	assert_int_equal(swapio_file_close(f), 0);
}

static void four_submitters_direct(void **state)
{
	swapio_handle *h = as_handle(64 * KiB, 8, 2, 0);

	four_submitters(h, *state);
	swapio_handle_destroy(h);
}

static void four_submitters_buffered(void **state)
{
	swapio_handle *h = as_handle(4 * KiB, 2, 3, SWAPIO_CFG_BUFFERED |
				     SWAPIO_CFG_SINGLE_SUBMIT);

	four_submitters(h, *state);
	swapio_handle_destroy(h);
}

static int setup(void **state)
{
	struct as_env *env = t_zalloc(sizeof(*env));
	char name[16];

	env->dir = t_tmpdir();
	for (unsigned int i = 0; i < NR_FILES; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		env->paths[i] = t_path(env->dir, name);
	}
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct as_env *env = *state;

	for (unsigned int i = 0; i < NR_FILES; i++)
		free(env->paths[i]);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_ops_direct),
		cmocka_unit_test(many_ops_threads4_qd64),
		cmocka_unit_test(many_ops_buffered_batches),
		cmocka_unit_test(poll_with_timeout_zero),
		cmocka_unit_test(zero_length_op),
		cmocka_unit_test(signals_stay_with_caller),
		cmocka_unit_test(eventfd_signals_completions),
		cmocka_unit_test(several_waiters),
		cmocka_unit_test(free_waits_for_op),
		cmocka_unit_test(wait_all_is_a_barrier),
		cmocka_unit_test(destroy_waits_for_ops),
		cmocka_unit_test(four_submitters_direct),
		cmocka_unit_test(four_submitters_buffered),
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, setup, teardown);
}
