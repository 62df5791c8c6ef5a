/* SPDX-License-Identifier: MIT */
/*
 * pread/pwrite on a small pool of threads: works on any filesystem and is
 * the last resort of "auto". The same pool serves the aio engine for the
 * requests that Linux AIO would run synchronously inside io_submit().
 *
 * Requests are handed over in batches under one lock, and finished ones
 * come back the same way, so the worker takes the lock once per batch,
 * not once per request. The engine table at the end is the smallest one
 * there is, and the template for a new engine.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"

#define POOL_MAX	32

/*
 * Per-request state, kept in swapio_req.priv. The transfer is copied here
 * at queue time, as the other engines copy it into an SQE or an iocb:
 * pool threads read only this, never the request the core owns.
 */
struct thr_req {
	struct swapio_req	*next;
	ssize_t			res;
	struct iovec		iov[2];
	uint64_t		off;
	int			fd;
	unsigned char		iovcnt;	/* 2: a prefix and its data */
	bool			write;
};

_Static_assert(sizeof(struct thr_req) <= sizeof(((struct swapio_req *)0)->priv),
	       "struct thr_req must fit in swapio_req.priv");

struct swapio_tpool {
	pthread_mutex_t		lock;
	pthread_cond_t		work_cv;	/* todo became non-empty */
	pthread_cond_t		done_cv;	/* a request done, or wake */
	struct swapio_req	*todo_head, *todo_tail;	/* under lock */
	struct swapio_req	*done;			/* under lock */
	unsigned int		nr_done;		/* under lock */
	bool			woken;			/* under lock */
	bool			stop;			/* under lock */
	struct swapio_req	*staged_head, *staged_tail; /* owner only */
	void			(*notify)(void *);
	void			*arg;
	unsigned int		nr_threads;
	pthread_t		threads[POOL_MAX];
};

static struct thr_req *tr(struct swapio_req *rq)
{
	return (struct thr_req *)rq->priv;
}

static ssize_t thr_transfer(const struct thr_req *t)
{
	const struct iovec *v = t->iov;
	ssize_t res;

	if (t->iovcnt > 1)
		res = t->write ? pwritev(t->fd, v, t->iovcnt, (off_t)t->off) :
				 preadv(t->fd, v, t->iovcnt, (off_t)t->off);
	else
		res = t->write ? pwrite(t->fd, v->iov_base, v->iov_len,
					(off_t)t->off) :
				 pread(t->fd, v->iov_base, v->iov_len,
				       (off_t)t->off);
	return res < 0 ? -errno : res;
}

static void *thr_main(void *arg)
{
	struct swapio_tpool *t = arg;
	struct swapio_req *rq;
	ssize_t res;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->todo_head && !t->stop)
			pthread_cond_wait(&t->work_cv, &t->lock);
		if (t->stop)
			break;
		rq = t->todo_head;
		t->todo_head = tr(rq)->next;
		if (!t->todo_head)
			t->todo_tail = NULL;
		pthread_mutex_unlock(&t->lock);

		res = thr_transfer(tr(rq));

		pthread_mutex_lock(&t->lock);
		tr(rq)->res = res;
		tr(rq)->next = t->done;
		t->done = rq;
		t->nr_done++;
		pthread_cond_signal(&t->done_cv);
		if (t->notify)
			t->notify(t->arg);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/*
 * Stop the pool: running transfers finish, queued ones never start (the
 * caller tears down; their requests are no longer anyone's concern).
 */
void swapio__tpool_stop(struct swapio_tpool *t)
{
	if (!t)
		return;
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

static int tpool_sync_init(struct swapio_tpool *t)
{
	int ret = pthread_mutex_init(&t->lock, NULL);

	if (ret)
		return -ret;
	ret = pthread_cond_init(&t->work_cv, NULL);
	if (ret)
		goto err_lock;
	ret = pthread_cond_init(&t->done_cv, NULL);
	if (ret)
		goto err_work_cv;
	return 0;

err_work_cv:
	pthread_cond_destroy(&t->work_cv);
err_lock:
	pthread_mutex_destroy(&t->lock);
	return -ret;
}

/* The caller's signal mask (the workers': all blocked) is inherited. */
int swapio__tpool_start(unsigned int nr_threads, void (*notify)(void *),
			void *arg, struct swapio_tpool **out)
{
	struct swapio_tpool *t = calloc(1, sizeof(*t));
	const unsigned int n = SWAPIO_MAX(SWAPIO_MIN(nr_threads, POOL_MAX),
					  1u);
	int ret;

	if (!t)
		return -ENOMEM;
	ret = tpool_sync_init(t);
	if (ret) {
		free(t);
		return ret;
	}
	t->notify = notify;
	t->arg = arg;
	for (t->nr_threads = 0; t->nr_threads < n; t->nr_threads++) {
		ret = pthread_create(&t->threads[t->nr_threads], NULL,
				     thr_main, t);
		if (ret) {
			swapio__tpool_stop(t);
			return -ret;
		}
	}
	*out = t;
	return 0;
}

/* Stage: owner-private list, no lock. */
void swapio__tpool_queue(struct swapio_tpool *t, struct swapio_req *rq)
{
	struct thr_req *r = tr(rq);

	*r = (struct thr_req){
		.off = swapio__req_off(rq),
		.fd = rq->fd,
		.write = rq->write,
	};
	r->iovcnt = (unsigned char)swapio__req_iov(rq, r->iov);
	if (t->staged_tail)
		tr(t->staged_tail)->next = rq;
	else
		t->staged_head = rq;
	t->staged_tail = rq;
}

/* Hand the staged batch to the pool in one locked splice. */
void swapio__tpool_submit(struct swapio_tpool *t)
{
	if (!t->staged_head)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->todo_tail)
		tr(t->todo_tail)->next = t->staged_head;
	else
		t->todo_head = t->staged_head;
	t->todo_tail = t->staged_tail;
	pthread_cond_broadcast(&t->work_cv);
	pthread_mutex_unlock(&t->lock);
	t->staged_head = t->staged_tail = NULL;
}

unsigned int swapio__tpool_reap(struct swapio_tpool *t, unsigned int min,
				struct swapio_event *ev, unsigned int max)
{
	struct swapio_req *rq;
	unsigned int n = 0;

	swapio__tpool_submit(t);
	pthread_mutex_lock(&t->lock);
	while (t->nr_done < min && !t->woken)
		pthread_cond_wait(&t->done_cv, &t->lock);
	t->woken = false;
	while (n < max && (rq = t->done)) {
		t->done = tr(rq)->next;
		t->nr_done--;
		ev[n++] = (struct swapio_event){ rq, tr(rq)->res };
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

void swapio__tpool_wake(struct swapio_tpool *t)
{
	pthread_mutex_lock(&t->lock);
	t->woken = true;
	pthread_cond_signal(&t->done_cv);
	pthread_mutex_unlock(&t->lock);
}

/* ------------------------------------------------------------------ */
/* The engine: one pool per worker                                     */
/* ------------------------------------------------------------------ */

/* Always usable: plain system calls. */
static int thr_probe(void)
{
	return 0;
}

/* min(queue_depth, 32) threads, so that queue_depth means parallelism. */
static int thr_init(struct swapio_ectx *ctx)
{
	return swapio__tpool_start(ctx->queue_depth, NULL, NULL,
				   (struct swapio_tpool **)&ctx->data);
}

static void thr_exit(struct swapio_ectx *ctx)
{
	swapio__tpool_stop(ctx->data);
	ctx->data = NULL;
}

static void thr_queue(struct swapio_ectx *ctx, struct swapio_req *rq)
{
	swapio__tpool_queue(ctx->data, rq);
}

static int thr_submit(struct swapio_ectx *ctx)
{
	swapio__tpool_submit(ctx->data);
	return 0;
}

/* Each finished request was one pread or pwrite. */
static int thr_reap(struct swapio_ectx *ctx, unsigned int min,
		    struct swapio_event *ev, unsigned int max)
{
	unsigned int n = swapio__tpool_reap(ctx->data, min, ev, max);

	ctx->syscalls += n;
	return (int)n;
}

static void thr_wake(struct swapio_ectx *ctx)
{
	swapio__tpool_wake(ctx->data);
}

const struct swapio_engine_ops swapio__engine_threads = {
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.probe		= thr_probe,
	.init		= thr_init,
	.exit		= thr_exit,
	.queue		= thr_queue,
	.submit		= thr_submit,
	.reap		= thr_reap,
	.wake		= thr_wake,
};
