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
 * Registered files and buffers are not used: every op brings its own
 * file and user memory, and registration would cost a system call per op
 * to save a reference count per 1 MiB request (see docs/ARCHITECTURE.md).
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "engine.h"

struct uring_ctx {
	struct io_uring	ring;
	unsigned int	staged;
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

static int uring_init(struct swapio_worker *w)
{
	struct uring_ctx *ctx = calloc(1, sizeof(*ctx));
	int ret;

	if (!ctx)
		return -ENOMEM;
	ret = uring_setup(&ctx->ring, w->h->cfg.queue_depth);
	if (ret) {
		free(ctx);
		return ret;
	}
	w->engine_data = ctx;
	return 0;
}

static void uring_exit(struct swapio_worker *w)
{
	struct uring_ctx *ctx = w->engine_data;

	io_uring_queue_exit(&ctx->ring);
	free(ctx);
	w->engine_data = NULL;
}

static void uring_queue(struct swapio_worker *w, struct swapio_req *rq)
{
	struct uring_ctx *ctx = w->engine_data;
	/* The ring has queue_depth entries and the core never stages more. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);
	unsigned int len = (unsigned int)swapio__req_len(rq);

	if (rq->write)
		io_uring_prep_write(sqe, rq->fd, swapio__req_buf(rq), len,
				    swapio__req_off(rq));
	else
		io_uring_prep_read(sqe, rq->fd, swapio__req_buf(rq), len,
				   swapio__req_off(rq));
	io_uring_sqe_set_data(sqe, rq);
	ctx->staged++;
}

/* Enter the kernel: submit what is staged and wait for @wait_nr CQEs. */
static int uring_enter(struct swapio_worker *w, unsigned int wait_nr)
{
	struct uring_ctx *ctx = w->engine_data;
	int ret;

	for (;;) {
		swapio__count_syscall(w);
		ret = io_uring_submit_and_wait(&ctx->ring, wait_nr);
		if (ret >= 0)
			break;
		if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
	}
	/* SUBMIT_ALL: a bad SQE completes with an error, never stays. */
	ctx->staged -= SWAPIO_MIN((unsigned int)ret, ctx->staged);
	return 0;
}

static int uring_submit(struct swapio_worker *w)
{
	struct uring_ctx *ctx = w->engine_data;

	return ctx->staged ? uring_enter(w, 0) : 0;
}

static unsigned int uring_harvest(struct swapio_worker *w)
{
	struct uring_ctx *ctx = w->engine_data;
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&ctx->ring, head, cqe) {
		swapio__complete(w, io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&ctx->ring, n);
	return n;
}

static int uring_reap(struct swapio_worker *w, unsigned int min)
{
	struct uring_ctx *ctx = w->engine_data;
	unsigned int got = uring_harvest(w);
	int ret;

	while (got < min || ctx->staged) {
		ret = uring_enter(w, got < min ? min - got : 0);
		if (ret)
			return ret;
		got += uring_harvest(w);
	}
	return (int)got;
}

const struct swapio_engine_ops swapio__engine_uring = {
	.name		= "uring",
	.id		= SWAPIO_ENGINE_URING,
	.version	= SWAPIO_ENGINE_OPS_VERSION,
	.caps		= SWAPIO_CAP_ASYNC,
	.probe		= uring_probe,
	.init		= uring_init,
	.exit		= uring_exit,
	.queue		= uring_queue,
	.submit		= uring_submit,
	.reap		= uring_reap,
};
