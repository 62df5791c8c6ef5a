/* SPDX-License-Identifier: MIT */
/*
 * Linux AIO through libaio, DeepSpeed's engine: one context per worker.
 *
 * Linux AIO is asynchronous only with O_DIRECT: on any other descriptor
 * io_submit() does the whole transfer before it returns. So requests on a
 * buffered descriptor (unaligned heads and tails, buffered handles, files
 * that fell back) go to a small pread/pwrite pool instead (engine.h), made
 * at the first such request, and only direct ones reach io_submit().
 *
 * io_submit() may take fewer iocbs than offered, or refuse the first one
 * with an error; both are handled here so that every request queued
 * comes back exactly once. Results are read from io_event.res, the byte
 * count or a negative errno.
 *
 * Wake-ups: while the worker may wait, the context holds a poll iocb on an
 * eventfd, whose event carries no request. ->wake() and the pool (when a
 * request finishes) write the eventfd.
 */
#include <errno.h>
#include <libaio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"

#define AIO_POOL_THREADS	4	/* buffered edges: short, few at once */

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
	io_context_t		ctx;
	unsigned int		staged;		/* iocbs in pending[] */
	unsigned int		in_kernel;	/* request iocbs submitted */
	unsigned int		nr_refused;	/* events in refused[] */
	struct iocb		**pending;	/* queue_depth + 1 */
	struct io_event		*events;	/* queue_depth + 1 */
	struct swapio_event	*refused;	/* queue_depth */
	struct swapio_tpool	*pool;		/* buffered requests; lazy */
	int			wake_fd;
	bool			wake_staged;	/* wake_cb in pending[] */
	bool			wake_armed;	/* wake_cb in the kernel */
	struct iocb		wake_cb;
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

static void aio_free(struct aio_ctx *a)
{
	if (a->wake_fd >= 0)
		close(a->wake_fd);
	free(a->refused);
	free(a->events);
	free(a->pending);
	free(a);
}

static int aio_init(struct swapio_ectx *ctx)
{
	const unsigned int qd = ctx->queue_depth;
	struct aio_ctx *a = calloc(1, sizeof(*a));
	int ret = -ENOMEM;

	if (!a)
		return -ENOMEM;
	a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->pending = calloc(qd + 1, sizeof(*a->pending));
	a->events = calloc(qd + 1, sizeof(*a->events));
	a->refused = calloc(qd, sizeof(*a->refused));
	if (a->wake_fd < 0)
		ret = -errno;
	if (a->wake_fd < 0 || !a->pending || !a->events || !a->refused)
		goto err_free;
	ret = io_setup((int)qd + 1, &a->ctx);	/* libaio returns -errno */
	if (ret)
		goto err_free;
	ctx->data = a;
	return 0;

err_free:
	aio_free(a);
	return ret;
}

/* io_destroy() waits for every iocb still in the kernel. */
static void aio_exit(struct swapio_ectx *ctx)
{
	struct aio_ctx *a = ctx->data;

	swapio__tpool_stop(a->pool);
	io_destroy(a->ctx);
	aio_free(a);
	ctx->data = NULL;
}

static void aio_refuse(struct aio_ctx *a, struct swapio_req *rq, int err)
{
	a->refused[a->nr_refused++] = (struct swapio_event){ rq, err };
}

static void aio_pool_notify(void *arg)
{
	struct aio_ctx *a = arg;

	(void)!write(a->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
}

static void aio_queue_buffered(struct aio_ctx *a, struct swapio_req *rq)
{
	int ret = 0;

	if (!a->pool)
		ret = swapio__tpool_start(AIO_POOL_THREADS, aio_pool_notify, a,
					  &a->pool);
	if (ret)
		aio_refuse(a, rq, ret);
	else
		swapio__tpool_queue(a->pool, rq);
}

static void aio_queue(struct swapio_ectx *ctx, struct swapio_req *rq)
{
	struct aio_ctx *a = ctx->data;
	struct iocb *cb = (struct iocb *)rq->priv;

	if (!rq->direct) {
		aio_queue_buffered(a, rq);
		return;
	}
	if (swapio__req_split(rq)) {
		/* io_submit() copies the vector: rq->vec just holds it. */
		swapio__req_iov(rq, rq->vec);
		if (rq->write)
			io_prep_pwritev(cb, rq->fd, rq->vec, 2,
					(long long)swapio__req_off(rq));
		else
			io_prep_preadv(cb, rq->fd, rq->vec, 2,
				       (long long)swapio__req_off(rq));
	} else if (rq->write) {
		io_prep_pwrite(cb, rq->fd, swapio__req_buf(rq),
			       swapio__req_len(rq),
			       (long long)swapio__req_off(rq));
	} else {
		io_prep_pread(cb, rq->fd, swapio__req_buf(rq),
			      swapio__req_len(rq),
			      (long long)swapio__req_off(rq));
	}
	cb->data = rq;
	a->pending[a->staged++] = cb;
}

static void aio_drop_front(struct aio_ctx *a, unsigned int n)
{
	a->staged -= n;
	memmove(a->pending, a->pending + n, a->staged * sizeof(*a->pending));
}

/* Count what the kernel took; a refused first iocb gets its error. */
static void aio_took(struct aio_ctx *a, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (a->pending[i] == &a->wake_cb) {
			a->wake_staged = false;
			a->wake_armed = true;
		} else {
			a->in_kernel++;
		}
	}
	aio_drop_front(a, n);
}

static int aio_submit(struct swapio_ectx *ctx)
{
	struct aio_ctx *a = ctx->data;
	int ret;

	if (a->pool)
		swapio__tpool_submit(a->pool);
	while (a->staged) {
		ctx->syscalls++;
		ret = io_submit(a->ctx, (long)a->staged, a->pending);
		if (ret > 0) {
			aio_took(a, (unsigned int)ret);
		} else if (ret == -EINTR) {
			continue;
		} else if (ret == -EAGAIN && (a->in_kernel || a->wake_armed)) {
			break;		/* out of resources: reap first */
		} else if (a->pending[0] == &a->wake_cb) {
			/* No wake-up this time: reaps still end at @min. */
			a->wake_staged = false;
			aio_drop_front(a, 1);
		} else {
			/* The first iocb was refused: that is its result. */
			aio_refuse(a, a->pending[0]->data, ret ? ret : -EIO);
			aio_drop_front(a, 1);
		}
	}
	return 0;
}

/* Stage the poll on the wake-up eventfd, unless it stands already. */
static void aio_arm_wake(struct aio_ctx *a)
{
	if (a->wake_staged || a->wake_armed)
		return;
	io_prep_poll(&a->wake_cb, a->wake_fd, POLLIN);
	a->wake_cb.data = NULL;
	a->pending[a->staged++] = &a->wake_cb;
	a->wake_staged = true;
}

/* One kernel event into @ev; false for the wake-up's. */
static bool aio_event(struct aio_ctx *a, const struct io_event *e,
		      struct swapio_event *ev)
{
	uint64_t v;

	if (!e->data) {
		a->wake_armed = false;
		(void)!read(a->wake_fd, &v, sizeof(v));
		return false;
	}
	a->in_kernel--;
	*ev = (struct swapio_event){ e->data, (ssize_t)(long)e->res };
	return true;
}

/*
 * Take what the kernel has already posted, without a system call. Only
 * this worker reaps its context, so head is ours to move; it is published
 * after the events are read so the kernel cannot reuse their slots
 * earlier. Returns the events stored; 0 for an unknown ring layout.
 */
static unsigned int aio_ring_reap(struct aio_ctx *a, struct swapio_event *ev,
				  unsigned int max, bool *woken)
{
	struct aio_ring *r = (struct aio_ring *)a->ctx;
	unsigned int head, tail, n = 0;

	if (r->magic != AIO_RING_MAGIC || r->incompat_features || !r->nr)
		return 0;
	head = r->head;
	tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	while (head != tail && n < max) {
		if (aio_event(a, &r->events[head], &ev[n]))
			n++;
		else
			*woken = true;
		head = (head + 1) % r->nr;
	}
	__atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
	return n;
}

/* What finished without the kernel's ring: refusals and the pool's. */
static unsigned int aio_take_local(struct aio_ctx *a, struct swapio_event *ev,
				   unsigned int max)
{
	unsigned int n = SWAPIO_MIN(a->nr_refused, max);

	memcpy(ev, a->refused, n * sizeof(*ev));
	a->nr_refused -= n;
	memmove(a->refused, a->refused + n, a->nr_refused * sizeof(*ev));
	if (a->pool && n < max)
		n += swapio__tpool_reap(a->pool, 0, ev + n, max - n);
	return n;
}

static int aio_wait(struct swapio_ectx *ctx, unsigned int want,
		    struct swapio_event *ev, unsigned int max, bool *woken)
{
	struct aio_ctx *a = ctx->data;
	const unsigned int held = a->in_kernel + a->wake_armed;
	unsigned int n = 0;
	int ret;

	do {
		ctx->syscalls++;
		ret = io_getevents(a->ctx, SWAPIO_MIN(want, held),
				   SWAPIO_MIN(max, held), a->events, NULL);
	} while (ret == -EINTR);
	if (ret < 0)
		return ret;
	for (int i = 0; i < ret; i++) {
		if (aio_event(a, &a->events[i], &ev[n]))
			n++;
		else
			*woken = true;
	}
	return (int)n;
}

static int aio_reap(struct swapio_ectx *ctx, unsigned int min,
		    struct swapio_event *ev, unsigned int max)
{
	struct aio_ctx *a = ctx->data;
	unsigned int got = 0;
	bool woken = false;
	int ret;

	if (min)
		aio_arm_wake(a);
	for (;;) {
		aio_submit(ctx);	/* refused iocbs complete in there */
		got += aio_take_local(a, ev + got, max - got);
		if (got < min && a->in_kernel)
			got += aio_ring_reap(a, ev + got, max - got, &woken);
		if (got >= min || woken)
			break;
		if (!a->in_kernel && !a->wake_armed) {
			/* No poll (refused): only the pool can finish more. */
			if (a->pool)
				got += swapio__tpool_reap(a->pool, min - got,
							  ev + got, max - got);
			break;
		}
		ret = aio_wait(ctx, min - got, ev + got, max - got, &woken);
		if (ret < 0)
			return ret;
		got += (unsigned int)ret;
		if (woken)	/* the pool's requests may be why */
			got += aio_take_local(a, ev + got, max - got);
	}
	return (int)got;
}

static void aio_wake(struct swapio_ectx *ctx)
{
	struct aio_ctx *a = ctx->data;

	(void)!write(a->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
}

const struct swapio_engine_ops swapio__engine_aio = {
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.probe		= aio_probe,
	.init		= aio_init,
	.exit		= aio_exit,
	.queue		= aio_queue,
	.submit		= aio_submit,
	.reap		= aio_reap,
	.wake		= aio_wake,
};
