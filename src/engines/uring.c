/* SPDX-License-Identifier: MIT */
/*
 * io_uring through liburing: one ring per worker, owned by its thread.
 *
 * Staged requests are flushed by the same io_uring_enter() that waits for
 * completions (io_uring_submit_and_wait), so a steady stream costs one
 * system call per reap. Rings are made single-issuer with deferred task
 * work where the kernel allows it: completions are then processed only
 * when the worker asks, on its own CPU time, without interrupts.
 *
 * Wake-ups: the ring always holds one read of an eventfd, whose CQE
 * carries no request. ->wake() writes the eventfd, so a worker waiting
 * for a long request returns to take new work; the read is then re-armed.
 *
 * A request larger than URING_PUNT_BYTES is marked IOSQE_ASYNC, so that
 * an io-wq thread issues it: issued inline, a 512 MiB buffered read that
 * the page cache serves (a sparse file) is copied inside io_uring_enter(),
 * and a 64 MiB direct read spends 200-300 ms there pinning and faulting
 * in its pages, while the worker cannot take new work. Smaller requests
 * stay inline: io-wq runs the forced-async requests of a ring one after
 * another, so a punted 4 KiB read would wait behind the large one.
 *
 * Registered buffers: each ring keeps a sparse table of SWAPIO_REG_SLOTS
 * fixed buffers mirroring swapio's locked buffers (buffers.c), so that a
 * request from swapio_buf_alloc(SWAPIO_BUF_LOCKED) memory, the pool, the
 * pipeline or Python's pinned arrays goes as READ_FIXED/WRITE_FIXED and
 * the kernel pins no pages for it. The table is brought up to date, on the
 * worker's thread (the ring's single issuer), before a request is queued
 * whenever the registry's generation moved; a slot that fails to register
 * is left empty, and its requests go the ordinary way. The caller's own
 * memory is never registered (see docs/ARCHITECTURE.md). Registered files
 * are not used: every op brings its own file.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"

#define URING_PUNT_BYTES	(1u << 20)

struct uring_ctx {
	struct io_uring	ring;
	unsigned int	staged;		/* SQEs not yet submitted */
	unsigned int	lent;		/* requests queued, not yet reaped */
	int		wake_fd;
	bool		wake_armed;
	uint64_t	wake_buf;
	bool		reg_ok;		/* the sparse buffer table exists */
	uint64_t	reg_gen;	/* generation of reg[] */
	unsigned int	reg_top;	/* slots past the last used one: empty */
	struct swapio_reg_slot reg[SWAPIO_REG_SLOTS];
};

static int uring_setup(struct io_uring *ring, unsigned int entries)
{
	static const unsigned int tries[] = {
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int ret = -EINVAL;

	/* Older kernels refuse newer flags with EINVAL: try plainer ones. */
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(tries); i++) {
		ret = io_uring_queue_init(entries, ring, tries[i]);
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

static int uring_probe(void)
{
	struct io_uring ring;
	int ret;

	/* kernel.io_uring_disabled and seccomp filters show up here. */
	ret = io_uring_queue_init(2, &ring, 0);
	if (ret)
		return ret;
	io_uring_queue_exit(&ring);
	return 0;
}

/* The eventfd read stands in the ring while the worker may wait. */
static void uring_arm_wake(struct uring_ctx *c)
{
	struct io_uring_sqe *sqe;

	if (c->wake_armed)
		return;
	sqe = io_uring_get_sqe(&c->ring);	/* one entry is kept for it */
	io_uring_prep_read(sqe, c->wake_fd, &c->wake_buf,
			   sizeof(c->wake_buf), 0);
	io_uring_sqe_set_data(sqe, NULL);
	c->staged++;
	c->wake_armed = true;
}

static int uring_init(struct swapio_ectx *ctx)
{
	struct uring_ctx *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	/* Blocking: io_uring would fail a read of a non-blocking one. */
	c->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (c->wake_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	ret = uring_setup(&c->ring, ctx->queue_depth + 1);
	if (ret)
		goto err_close;
	/* Without it (old kernel, memlock limit) no request is fixed. */
	c->reg_ok = !ctx->no_register &&
		    io_uring_register_buffers_sparse(&c->ring,
						     SWAPIO_REG_SLOTS) == 0;
	ctx->data = c;
	return 0;

err_close:
	close(c->wake_fd);
err_free:
	free(c);
	return ret;
}

/* Wait out what the kernel still holds, then close the ring. */
static void uring_exit(struct swapio_ectx *ctx)
{
	struct uring_ctx *c = ctx->data;
	struct io_uring_cqe *cqe;
	unsigned int head, n;

	if (c->wake_armed)
		(void)!write(c->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
	while (c->lent || c->wake_armed) {
		if (io_uring_submit_and_wait(&c->ring, 1) < 0)
			break;	/* the ring is gone: queue_exit waits */
		n = 0;
		io_uring_for_each_cqe(&c->ring, head, cqe) {
			if (io_uring_cqe_get_data(cqe))
				c->lent--;
			else
				c->wake_armed = false;
			n++;
		}
		io_uring_cq_advance(&c->ring, n);
	}
	io_uring_queue_exit(&c->ring);
	close(c->wake_fd);
	free(c);
	ctx->data = NULL;
}

/*
 * Bring the ring's fixed buffers level with the registry. A slot whose new
 * region cannot be registered (RLIMIT_MEMLOCK, say) is cleared instead and
 * stays empty here: nothing ever uses a slot that may hold old pages.
 */
static void uring_reg_sync(struct swapio_ectx *ctx, struct uring_ctx *c)
{
	struct swapio_reg_slot now[SWAPIO_REG_SLOTS];
	uint64_t gen = swapio__reg_copy(now);

	for (unsigned int i = 0; i < SWAPIO_REG_SLOTS; i++) {
		struct iovec iov = { (void *)now[i].start, now[i].len };

		if (now[i].id == c->reg[i].id)
			continue;
		c->reg[i] = (struct swapio_reg_slot){ 0 };
		ctx->syscalls++;
		if (io_uring_register_buffers_update_tag(&c->ring, i, &iov,
							 NULL, 1) == 1) {
			c->reg[i] = now[i];
			continue;
		}
		iov = (struct iovec){ NULL, 0 };
		ctx->syscalls++;
		(void)io_uring_register_buffers_update_tag(&c->ring, i, &iov,
							   NULL, 1);
	}
	c->reg_top = 0;
	for (unsigned int i = 0; i < SWAPIO_REG_SLOTS; i++)
		if (c->reg[i].len)
			c->reg_top = i + 1;
	c->reg_gen = gen;
}

/* The fixed buffer holding [buf, buf + len), or -1. */
static int uring_reg_find(struct swapio_ectx *ctx, struct uring_ctx *c,
			  const void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)buf;

	if (!c->reg_ok)
		return -1;
	if (swapio__reg_gen() != c->reg_gen)
		uring_reg_sync(ctx, c);
	for (unsigned int i = 0; i < c->reg_top; i++)
		if (c->reg[i].len && a >= c->reg[i].start &&
		    a - c->reg[i].start <= c->reg[i].len - len &&
		    len <= c->reg[i].len)
			return (int)i;
	return -1;
}

static void uring_queue(struct swapio_ectx *ctx, struct swapio_req *rq)
{
	struct uring_ctx *c = ctx->data;
	/* queue_depth + 1 entries: the core never stages more than qd. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	unsigned int len = (unsigned int)swapio__req_len(rq);
	void *buf = swapio__req_buf(rq);
	int fixed = -1;

	if (swapio__req_split(rq)) {
		/* Two segments: the vector lives in the request until the
		 * CQE, however late the kernel imports it. */
		swapio__req_iov(rq, rq->vec);
		if (rq->write)
			io_uring_prep_writev(sqe, rq->fd, rq->vec, 2,
					     swapio__req_off(rq));
		else
			io_uring_prep_readv(sqe, rq->fd, rq->vec, 2,
					    swapio__req_off(rq));
	} else if ((fixed = uring_reg_find(ctx, c, buf, len)) >= 0) {
		if (rq->write)
			io_uring_prep_write_fixed(sqe, rq->fd, buf, len,
						  swapio__req_off(rq), fixed);
		else
			io_uring_prep_read_fixed(sqe, rq->fd, buf, len,
						 swapio__req_off(rq), fixed);
		ctx->registered++;
	} else if (rq->write) {
		io_uring_prep_write(sqe, rq->fd, buf, len,
				    swapio__req_off(rq));
	} else {
		io_uring_prep_read(sqe, rq->fd, buf, len,
				   swapio__req_off(rq));
	}
	if (len > URING_PUNT_BYTES)
		sqe->flags |= IOSQE_ASYNC;
	io_uring_sqe_set_data(sqe, rq);
	c->staged++;
	c->lent++;
}

/* Enter the kernel: submit what is staged and wait for @wait_nr CQEs. */
static int uring_enter(struct swapio_ectx *ctx, unsigned int wait_nr)
{
	struct uring_ctx *c = ctx->data;
	int ret;

	for (;;) {
		ctx->syscalls++;
		ret = io_uring_submit_and_wait(&c->ring, wait_nr);
		if (ret >= 0)
			break;
		if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
	}
	/* SUBMIT_ALL: a bad SQE completes with an error, never stays. */
	c->staged -= SWAPIO_MIN((unsigned int)ret, c->staged);
	return 0;
}

static int uring_submit(struct swapio_ectx *ctx)
{
	struct uring_ctx *c = ctx->data;

	return c->staged ? uring_enter(ctx, 0) : 0;
}

/* Take up to @max CQEs; *woken is set by the eventfd's. */
static unsigned int uring_harvest(struct uring_ctx *c, struct swapio_event *ev,
				  unsigned int max, bool *woken)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0, n = 0;

	io_uring_for_each_cqe(&c->ring, head, cqe) {
		struct swapio_req *rq = io_uring_cqe_get_data(cqe);

		if (!rq) {
			c->wake_armed = false;
			*woken = true;
		} else if (n == max) {
			break;
		} else {
			ev[n++] = (struct swapio_event){ rq, cqe->res };
			c->lent--;
		}
		seen++;
	}
	io_uring_cq_advance(&c->ring, seen);
	return n;
}

static int uring_reap(struct swapio_ectx *ctx, unsigned int min,
		      struct swapio_event *ev, unsigned int max)
{
	struct uring_ctx *c = ctx->data;
	bool woken = false;
	unsigned int got;
	int ret;

	if (min)
		uring_arm_wake(c);
	got = uring_harvest(c, ev, max, &woken);
	while ((got < min && !woken) || c->staged) {
		ret = uring_enter(ctx, got < min && !woken ? min - got : 0);
		if (ret)
			return ret;
		got += uring_harvest(c, ev + got, max - got, &woken);
	}
	return (int)got;
}

static void uring_wake(struct swapio_ectx *ctx)
{
	struct uring_ctx *c = ctx->data;

	(void)!write(c->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
}

/*
 * With deferred task work, the last reference to a finished request (and
 * to its file) may be dropped in task work that runs only when this
 * ring's owner next enters the kernel; a worker with nothing to do does
 * not. A closed file could stay open for writing until then, and the
 * store's reopen waits for it (its read lease) before it gives up.
 */
static void uring_flush(struct swapio_ectx *ctx)
{
	struct uring_ctx *c = ctx->data;

	ctx->syscalls++;
	(void)io_uring_get_events(&c->ring);
}

const struct swapio_engine_ops swapio__engine_uring = {
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.probe		= uring_probe,
	.init		= uring_init,
	.exit		= uring_exit,
	.queue		= uring_queue,
	.submit		= uring_submit,
	.reap		= uring_reap,
	.wake		= uring_wake,
	.flush		= uring_flush,
};
