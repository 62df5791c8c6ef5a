/* SPDX-License-Identifier: MIT */
/*
 * Linux AIO through libaio, DeepSpeed's engine: one context per worker.
 * io_submit() may take fewer iocbs than offered, or refuse the first one
 * with an error; both are handled here so that every request the core
 * queued completes exactly once. Completion results are read from
 * io_event.res, which is the byte count or a negative errno.
 */
#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

_Static_assert(sizeof(struct iocb) <= sizeof(((struct swapio_req *)0)->priv),
	       "struct iocb must fit in swapio_req.priv");

/*
 * The completion ring the kernel maps at the context's address (fs/aio.c,
 * struct aio_ring): completed events sit between head and tail. With one
 * consumer they can be taken without io_getevents(), as fio does.
 */
#define AIO_RING_MAGIC	0xa10a10a1u

struct aio_ring {
	unsigned int	id;
	unsigned int	nr;
	unsigned int	head;
	unsigned int	tail;
	unsigned int	magic;
	unsigned int	compat_features;
	unsigned int	incompat_features;
	unsigned int	header_length;
	struct io_event	events[];
};

struct aio_ctx {
	io_context_t	ctx;
	unsigned int	staged;		/* iocbs in pending[] */
	unsigned int	in_kernel;	/* submitted, not yet reaped */
	struct iocb	**pending;
	struct io_event	*events;
};

static int aio_probe(void)
{
	io_context_t ctx = 0;
	int ret;

	/* fs.aio-max-nr exhausted shows up here as -EAGAIN. */
	ret = io_setup(1, &ctx);
	if (ret)
		return ret;
	io_destroy(ctx);
	return 0;
}

static int aio_init(struct swapio_worker *w)
{
	const unsigned int qd = w->h->cfg.queue_depth;
	struct aio_ctx *a = calloc(1, sizeof(*a));
	int ret = -ENOMEM;

	if (!a)
		return -ENOMEM;
	a->pending = calloc(qd, sizeof(*a->pending));
	a->events = calloc(qd, sizeof(*a->events));
	if (!a->pending || !a->events)
		goto err_free;
	ret = io_setup((int)qd, &a->ctx);	/* libaio returns -errno */
	if (ret)
		goto err_free;
	w->engine_data = a;
	return 0;

err_free:
	free(a->events);
	free(a->pending);
	free(a);
	return ret;
}

static void aio_exit(struct swapio_worker *w)
{
	struct aio_ctx *a = w->engine_data;

	io_destroy(a->ctx);
	free(a->events);
	free(a->pending);
	free(a);
	w->engine_data = NULL;
}

static void aio_queue(struct swapio_worker *w, struct swapio_req *rq)
{
	struct aio_ctx *a = w->engine_data;
	struct iocb *cb = (struct iocb *)rq->priv;

	if (rq->write)
		io_prep_pwrite(cb, rq->fd, swapio__req_buf(rq),
			       swapio__req_len(rq),
			       (long long)swapio__req_off(rq));
	else
		io_prep_pread(cb, rq->fd, swapio__req_buf(rq),
			      swapio__req_len(rq),
			      (long long)swapio__req_off(rq));
	cb->data = rq;
	a->pending[a->staged++] = cb;
}

static void aio_drop_front(struct aio_ctx *a, unsigned int n)
{
	a->staged -= n;
	memmove(a->pending, a->pending + n, a->staged * sizeof(*a->pending));
}

static int aio_submit(struct swapio_worker *w)
{
	struct aio_ctx *a = w->engine_data;
	int ret;

	while (a->staged) {
		swapio__count_syscall(w);
		ret = io_submit(a->ctx, (long)a->staged, a->pending);
		if (ret > 0) {
			a->in_kernel += (unsigned int)ret;
			aio_drop_front(a, (unsigned int)ret);
		} else if (ret == -EINTR) {
			continue;
		} else if (ret == -EAGAIN && a->in_kernel) {
			break;		/* out of resources: reap first */
		} else {
			/* The first iocb was refused: that is its result. */
			struct swapio_req *rq = a->pending[0]->data;

			aio_drop_front(a, 1);
			swapio__complete(w, rq, ret ? ret : -EIO);
		}
	}
	return 0;
}

/*
 * Complete what the kernel has already posted, without a system call.
 * Only this worker reaps its context, so head is ours to move; it is
 * published after the events are read so the kernel cannot reuse their
 * slots earlier. Returns the number completed; 0 for an unknown layout.
 */
static unsigned int aio_ring_reap(struct swapio_worker *w)
{
	struct aio_ctx *a = w->engine_data;
	struct aio_ring *r = (struct aio_ring *)a->ctx;
	unsigned int head, tail, n = 0;

	if (r->magic != AIO_RING_MAGIC || r->incompat_features || !r->nr)
		return 0;
	head = r->head;
	tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	while (head != tail) {
		struct io_event *ev = &r->events[head];

		head = (head + 1) % r->nr;
		a->in_kernel--;
		swapio__complete(w, ev->data, (ssize_t)(long)ev->res);
		n++;
	}
	__atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
	return n;
}

static int aio_reap(struct swapio_worker *w, unsigned int min)
{
	struct aio_ctx *a = w->engine_data;
	const unsigned int start = w->inflight;	/* only falls while here */
	unsigned int got;
	int ret;

	for (;;) {
		aio_submit(w);	/* refused iocbs complete in there */
		got = start - w->inflight;
		if (got < min && a->in_kernel) {
			aio_ring_reap(w);
			got = start - w->inflight;
		}
		if (got >= min || !a->in_kernel)
			break;
		swapio__count_syscall(w);
		ret = io_getevents(a->ctx, SWAPIO_MIN(min - got, a->in_kernel),
				   (long)a->in_kernel, a->events, NULL);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		a->in_kernel -= (unsigned int)ret;
		for (int i = 0; i < ret; i++)
			swapio__complete(w, a->events[i].data,
					 (ssize_t)(long)a->events[i].res);
	}
	return (int)got;
}

const struct swapio_engine_ops swapio__engine_aio = {
	.name		= "aio",
	.id		= SWAPIO_ENGINE_AIO,
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.caps		= SWAPIO_CAP_ASYNC,
	.probe		= aio_probe,
	.init		= aio_init,
	.exit		= aio_exit,
	.queue		= aio_queue,
	.submit		= aio_submit,
	.reap		= aio_reap,
};
