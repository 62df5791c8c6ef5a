/* SPDX-License-Identifier: MIT */
/*
 * The engine contract (src/engine.h), tested on each engine directly with
 * requests made by hand, no handle in between: every request lent comes
 * back exactly once with what the kernel did; data written is read back
 * byte for byte, direct and buffered; a request the kernel refuses comes
 * back with its error; ->wake() ends a reap that would wait, before or
 * during it; queue_depth requests may be lent at once. Each case runs on
 * the bare engine and again through the fault filter, which must keep the
 * same contract while it rewrites what flows through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "testing.h"
#include "internal.h"

#define QD		8
#define BLOCK		(64u * 1024u)

struct eng_env {
	struct t_env	*t;
	int		dfd;		/* O_DIRECT */
	int		bfd;		/* buffered */
	const struct swapio_engine_ops *ops;
	struct swapio_ectx ctx;
	struct swapio_req reqs[QD];
	struct swapio_event ev[QD];
	unsigned char	*mem;		/* QD blocks, page-aligned */
};

/* The engine under test, bare or wrapped by SWAPIO_FAULT=@spec. */
static void eng_start(struct eng_env *e, const char *spec)
{
	unsigned int id = t_engine();
	int ret;

	if (id == SWAPIO_ENGINE_AUTO)
		id = SWAPIO_ENGINE_THREADS;
	e->ops = swapio__engine_get(id);
	assert_non_null(e->ops);
	assert_int_equal(swapio__engine_check(e->ops), 0);
	if (spec) {
		setenv("SWAPIO_FAULT", spec, 1);
		ret = swapio__fault_wrap(id, 1, &e->ops);
		unsetenv("SWAPIO_FAULT");
		assert_int_equal(ret, 0);
		assert_true(swapio__fault_count(e->ops) >= 0);
	}
	e->ctx = (struct swapio_ectx){ .ops = e->ops, .queue_depth = QD };
	assert_int_equal(e->ops->init(&e->ctx), 0);
}

static void eng_stop(struct eng_env *e)
{
	e->ops->exit(&e->ctx);
	swapio__fault_unwrap(e->ops);	/* the context held its own ref */
}

static int setup(void **state)
{
	struct eng_env *e = t_zalloc(sizeof(*e));

	t_env_setup((void **)&e->t);
	e->bfd = open(e->t->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	e->dfd = open(e->t->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (e->bfd < 0 || e->dfd < 0)
		t_die("open %s: %s", e->t->path, strerror(errno));
	if (ftruncate(e->bfd, (off_t)QD * BLOCK))
		t_die("ftruncate: %s", strerror(errno));
	e->mem = t_page_alloc((size_t)QD * BLOCK, 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct eng_env *e = *state;

	close(e->dfd);
	close(e->bfd);
	free(e->mem);
	t_env_teardown((void **)&e->t);
	free(e);
	return 0;
}

/* Request @i: block @i of the file and of e->mem, @len bytes of it. */
static struct swapio_req *eng_req(struct eng_env *e, unsigned int i,
				  bool write, bool direct, size_t len)
{
	struct swapio_req *rq = &e->reqs[i];

	*rq = (struct swapio_req){
		.buf = e->mem + (size_t)i * BLOCK,
		.off = (uint64_t)i * BLOCK,
		.len = len,
		.fd = direct ? e->dfd : e->bfd,
		.write = write,
		.direct = direct,
	};
	return rq;
}

/*
 * Reap until @nr lent requests are back, checking that each comes back
 * once. res[i] gets request i's result. A lost request shows as a reap
 * that never returns, which ctest's timeout reports.
 */
static void eng_collect(struct eng_env *e, unsigned int nr, ssize_t *res)
{
	bool back[QD] = { false };
	unsigned int got = 0;

	while (got < nr) {
		int n = e->ops->reap(&e->ctx, 1, e->ev, QD);

		assert_true(n >= 0 && n <= QD);
		for (int k = 0; k < n; k++) {
			size_t i = (size_t)(e->ev[k].rq - e->reqs);

			assert_true(i < nr);
			assert_false(back[i]);
			back[i] = true;
			res[i] = e->ev[k].res;
			got++;
		}
	}
}

/* Lend requests 0..nr-1 as made by eng_req() and wait for all of them. */
static void eng_run(struct eng_env *e, unsigned int nr, bool write,
		    bool direct, size_t len, ssize_t *res)
{
	for (unsigned int i = 0; i < nr; i++)
		e->ops->queue(&e->ctx, eng_req(e, i, write, direct, len));
	assert_int_equal(e->ops->submit(&e->ctx), 0);
	eng_collect(e, nr, res);
}

/* Full transfers: every block written, then read back, byte for byte. */
static void roundtrip(struct eng_env *e, bool direct)
{
	unsigned char *src = t_random_buf((size_t)QD * BLOCK, direct ? 1 : 2);
	ssize_t res[QD];

	memcpy(e->mem, src, (size_t)QD * BLOCK);
	eng_run(e, QD, true, direct, BLOCK, res);
	for (unsigned int i = 0; i < QD; i++)
		assert_int_equal(res[i], BLOCK);
	memset(e->mem, 0, (size_t)QD * BLOCK);
	eng_run(e, QD, false, direct, BLOCK, res);
	for (unsigned int i = 0; i < QD; i++)
		assert_int_equal(res[i], BLOCK);
	assert_memory_equal(e->mem, src, (size_t)QD * BLOCK);
	free(src);
}

static void roundtrip_direct(void **state)
{
	struct eng_env *e = *state;

	eng_start(e, NULL);
	roundtrip(e, true);
	eng_stop(e);
}

static void roundtrip_buffered(void **state)
{
	struct eng_env *e = *state;

	eng_start(e, NULL);
	roundtrip(e, false);
	eng_stop(e);
}

/* A read past the end of the file is a result of 0, once. */
static void end_of_file(void **state)
{
	struct eng_env *e = *state;
	struct swapio_req *rq;
	ssize_t res;

	eng_start(e, NULL);
	rq = eng_req(e, 0, false, false, 100);
	rq->off = (uint64_t)QD * BLOCK;
	e->ops->queue(&e->ctx, rq);
	eng_collect(e, 1, &res);
	assert_int_equal(res, 0);
	eng_stop(e);
}

/* A closed descriptor: the request comes back with -EBADF, the next
 * one works. Direct, so that aio hands it to io_submit() itself. */
static void refused_request(void **state)
{
	struct eng_env *e = *state;
	int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ssize_t res[2];

	eng_start(e, NULL);
	assert_true(bad >= 0);
	close(bad);
	eng_req(e, 0, false, true, BLOCK)->fd = bad;
	e->ops->queue(&e->ctx, &e->reqs[0]);
	eng_collect(e, 1, res);
	assert_int_equal(res[0], -EBADF);
	eng_run(e, 2, true, true, BLOCK, res);
	assert_int_equal(res[0], BLOCK);
	assert_int_equal(res[1], BLOCK);
	eng_stop(e);
}

/* A wake-up given before the reap ends it at once, with nothing lent. */
static void wake_before_reap(void **state)
{
	struct eng_env *e = *state;

	eng_start(e, NULL);
	e->ops->wake(&e->ctx);
	assert_int_equal(e->ops->reap(&e->ctx, 1, e->ev, QD), 0);
	eng_stop(e);
}

struct waker {
	struct eng_env	*e;
	atomic_bool	woke;
};

static void *waker_main(void *arg)
{
	struct waker *w = arg;

	usleep(50 * 1000);	/* let the reap block first, most likely */
	atomic_store(&w->woke, true);
	w->e->ops->wake(&w->e->ctx);
	return NULL;
}

/* A reap blocked with nothing to wait for returns after a wake-up from
 * another thread, and only then. */
static void wake_during_reap(void **state)
{
	struct eng_env *e = *state;
	struct waker w = { .e = e };
	pthread_t th;

	eng_start(e, NULL);
	for (int round = 0; round < 3; round++) {
		atomic_store(&w.woke, false);
		assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
		assert_int_equal(e->ops->reap(&e->ctx, 1, e->ev, QD), 0);
		assert_true(atomic_load(&w.woke));
		pthread_join(th, NULL);
	}
	/* Still an engine: requests after the wake-ups complete. */
	roundtrip(e, true);
	eng_stop(e);
}

/* The fault filter: one request of four fails with the injected errno
 * and moves nothing; the others are whole. */
static void filter_errno(void **state)
{
	struct eng_env *e = *state;
	unsigned char *old = t_random_buf(4 * BLOCK, 5);
	unsigned char *check = t_zalloc(4 * BLOCK);
	ssize_t res[4];
	int failed = -1;

	assert_int_equal(pwrite(e->bfd, old, 4 * BLOCK, 0), 4 * BLOCK);
	fsync(e->bfd);
	eng_start(e, "errno=EIO,nth=2");
	t_fill_random(e->mem, 4 * BLOCK, 6);
	eng_run(e, 4, true, true, BLOCK, res);
	for (int i = 0; i < 4; i++) {
		if (res[i] == -EIO) {
			assert_int_equal(failed, -1);
			failed = i;
		} else {
			assert_int_equal(res[i], BLOCK);
		}
	}
	assert_true(failed >= 0);
	assert_int_equal(swapio__fault_count(e->ops), 1);
	/* The failed block still holds the old data. */
	assert_int_equal(pread(e->bfd, check, 4 * BLOCK, 0), 4 * BLOCK);
	assert_memory_equal(check + failed * BLOCK, old + failed * BLOCK,
			    BLOCK);
	eng_stop(e);
	free(old), free(check);
}

/* short=1: each request moves only its first half, on 4 KiB. */
static void filter_short(void **state)
{
	struct eng_env *e = *state;
	ssize_t res[QD];

	eng_start(e, "short=1");
	eng_run(e, QD, true, true, BLOCK, res);
	for (int i = 0; i < QD; i++)
		assert_int_equal(res[i], BLOCK / 2);
	eng_run(e, 1, true, false, 4097, res);
	assert_int_equal(res[0], 2048);
	eng_stop(e);
}

/* fatal=: the reap fails as a broken ring would; ->exit() then waits
 * for what the kernel holds and returns. */
static void filter_fatal(void **state)
{
	struct eng_env *e = *state;

	eng_start(e, "fatal=EBADR");
	for (unsigned int i = 0; i < QD; i++)
		e->ops->queue(&e->ctx, eng_req(e, i, true, true, BLOCK));
	assert_int_equal(e->ops->reap(&e->ctx, 1, e->ev, QD), -EBADR);
	eng_stop(e);
}

/* The filter keeps the whole contract on clean requests too. */
static void filter_clean(void **state)
{
	struct eng_env *e = *state;
	ssize_t res;

	eng_start(e, "errno=EIO,nth=1000000");
	roundtrip(e, true);
	roundtrip(e, false);
	e->ops->wake(&e->ctx);
	assert_int_equal(e->ops->reap(&e->ctx, 1, e->ev, QD), 0);
	eng_run(e, 1, false, false, 10, &res);
	assert_int_equal(res, 10);
	eng_stop(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roundtrip_direct, setup,
						teardown),
		cmocka_unit_test_setup_teardown(roundtrip_buffered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(end_of_file, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(wake_before_reap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(wake_during_reap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(filter_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(filter_short, setup, teardown),
		cmocka_unit_test_setup_teardown(filter_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(filter_clean, setup, teardown),
	};

	t_engine();	/* skip here if the engine cannot run */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
