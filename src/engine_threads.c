/* SPDX-License-Identifier: MIT */
/*
 * pread/pwrite on a small pool of threads per worker: works on any
 * filesystem and is the last resort of "auto". It also serves as the
 * template for a new engine, so every hook says what the core expects.
 *
 * The pool has min(queue_depth, 32) threads. Requests are handed over in
 * batches under one lock, and completions come back the same way, so the
 * worker takes the lock once per batch, not once per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"

#define POOL_MAX	32

/*
 * Per-request engine state, kept in swapio_req.priv. The transfer is
 * copied here at ->queue(), as the other engines copy it into an SQE or an
 * iocb: the pool must not read the request while the core owns it.
 */
struct thr_req {
	struct swapio_req	*next;
	ssize_t			res;
	void			*buf;
	size_t			len;
	uint64_t		off;
};

_Static_assert(sizeof(struct thr_req) <= sizeof(((struct swapio_req *)0)->priv),
	       "struct thr_req must fit in swapio_req.priv");

struct thr_ctx {
	struct swapio_worker	*w;
	pthread_mutex_t		lock;
	pthread_cond_t		work_cv;	/* todo became non-empty */
	pthread_cond_t		done_cv;	/* a request finished */
	struct swapio_req	*todo_head, *todo_tail;	/* under lock */
	struct swapio_req	*done;			/* under lock */
	unsigned int		nr_done;		/* under lock */
	bool			stop;			/* under lock */
	struct swapio_req	*staged_head, *staged_tail; /* worker only */
	unsigned int		nr_threads;
	pthread_t		threads[POOL_MAX];
};

static struct thr_req *tr(struct swapio_req *rq)
{
	return (struct thr_req *)rq->priv;
}

/* Always usable: plain system calls. */
static int thr_probe(void)
{
	return 0;
}

static void *thr_main(void *arg)
{
	struct thr_ctx *t = arg;
	struct swapio_req *rq;
	ssize_t res;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->todo_head && !t->stop)
			pthread_cond_wait(&t->work_cv, &t->lock);
		if (!t->todo_head)
			break;
		rq = t->todo_head;
		t->todo_head = tr(rq)->next;
		if (!t->todo_head)
			t->todo_tail = NULL;
		pthread_mutex_unlock(&t->lock);

		swapio__count_syscall(t->w);
		res = rq->write ?
			pwrite(rq->fd, tr(rq)->buf, tr(rq)->len,
			       (off_t)tr(rq)->off) :
			pread(rq->fd, tr(rq)->buf, tr(rq)->len,
			      (off_t)tr(rq)->off);
		tr(rq)->res = res < 0 ? -errno : res;

		pthread_mutex_lock(&t->lock);
		tr(rq)->next = t->done;
		t->done = rq;
		t->nr_done++;
		pthread_cond_signal(&t->done_cv);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void thr_stop(struct thr_ctx *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->work_cv);
	pthread_mutex_unlock(&t->lock);
	for (unsigned int i = 0; i < t->nr_threads; i++)
		pthread_join(t->threads[i], NULL);
	pthread_cond_destroy(&t->done_cv);
	pthread_cond_destroy(&t->work_cv);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Start the pool. The worker's signal mask (all blocked) is inherited. */
static int thr_init(struct swapio_worker *w)
{
	struct thr_ctx *t = calloc(1, sizeof(*t));
	unsigned int n = SWAPIO_MIN(w->h->cfg.queue_depth, POOL_MAX);
	int ret;

	if (!t)
		return -ENOMEM;
	t->w = w;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->work_cv, NULL);
	pthread_cond_init(&t->done_cv, NULL);
	for (t->nr_threads = 0; t->nr_threads < n; t->nr_threads++) {
		ret = pthread_create(&t->threads[t->nr_threads], NULL,
				     thr_main, t);
		if (ret) {
			thr_stop(t);
			return -ret;
		}
	}
	w->engine_data = t;
	return 0;
}

/* Nothing is in flight when the core calls this. */
static void thr_exit(struct swapio_worker *w)
{
	thr_stop(w->engine_data);
	w->engine_data = NULL;
}

/* Stage: worker-private list, no lock. */
static void thr_queue(struct swapio_worker *w, struct swapio_req *rq)
{
	struct thr_ctx *t = w->engine_data;

	tr(rq)->next = NULL;
	tr(rq)->buf = swapio__req_buf(rq);
	tr(rq)->len = swapio__req_len(rq);
	tr(rq)->off = swapio__req_off(rq);
	if (t->staged_tail)
		tr(t->staged_tail)->next = rq;
	else
		t->staged_head = rq;
	t->staged_tail = rq;
}

/* Hand the staged batch to the pool in one locked splice. */
static int thr_submit(struct swapio_worker *w)
{
	struct thr_ctx *t = w->engine_data;

	if (!t->staged_head)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (t->todo_tail)
		tr(t->todo_tail)->next = t->staged_head;
	else
		t->todo_head = t->staged_head;
	t->todo_tail = t->staged_tail;
	pthread_cond_broadcast(&t->work_cv);
	pthread_mutex_unlock(&t->lock);
	t->staged_head = t->staged_tail = NULL;
	return 0;
}

/* Wait for @min completions, then complete every finished request. */
static int thr_reap(struct swapio_worker *w, unsigned int min)
{
	struct thr_ctx *t = w->engine_data;
	struct swapio_req *rq, *next;
	int n = 0;

	thr_submit(w);
	pthread_mutex_lock(&t->lock);
	while (t->nr_done < min)
		pthread_cond_wait(&t->done_cv, &t->lock);
	rq = t->done;
	t->done = NULL;
	t->nr_done = 0;
	pthread_mutex_unlock(&t->lock);

	for (; rq; rq = next, n++) {
		next = tr(rq)->next;	/* complete() may reuse rq */
		swapio__complete(w, rq, tr(rq)->res);
	}
	return n;
}

const struct swapio_engine_ops swapio__engine_threads = {
	.name		= "threads",
	.id		= SWAPIO_ENGINE_THREADS,
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.caps		= SWAPIO_CAP_ASYNC,
	.probe		= thr_probe,
	.init		= thr_init,
	.exit		= thr_exit,
	.queue		= thr_queue,
	.submit		= thr_submit,
	.reap		= thr_reap,
};
