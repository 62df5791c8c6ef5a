/* SPDX-License-Identifier: MIT */
/*
 * The core's side of the engine contract: the wrappers through which
 * workers call engines, where the accounting lives once. The reap wrapper
 * hands its events back in w->events; the worker completes them
 * (handle.c), so no engine-side code calls up into the core. And the
 * fault filter's switch, read here from the environment and handed down.
 */
#include <stdatomic.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* The wrappers workers call                                           */
/* ------------------------------------------------------------------ */

static void take_syscalls(struct swapio_worker *w)
{
	if (w->ectx.syscalls) {
		atomic_fetch_add_explicit(&w->stats.syscalls,
					  w->ectx.syscalls,
					  memory_order_relaxed);
		w->ectx.syscalls = 0;
	}
	if (w->ectx.registered) {
		atomic_fetch_add_explicit(&w->stats.registered,
					  w->ectx.registered,
					  memory_order_relaxed);
		w->ectx.registered = 0;
	}
}

void swapio__engine_queue(struct swapio_worker *w, struct swapio_req *rq)
{
	rq->t_queued = swapio__now_ns();
	rq->queued = true;
	w->inflight++;
	w->ectx.ops->queue(&w->ectx, rq);
}

int swapio__engine_submit(struct swapio_worker *w)
{
	int ret = w->ectx.ops->submit(&w->ectx);

	take_syscalls(w);
	return ret;
}

int swapio__engine_reap(struct swapio_worker *w, unsigned int min)
{
	struct swapio_event *ev = w->events;
	int n;

	n = w->ectx.ops->reap(&w->ectx, min, ev, w->ectx.queue_depth);
	take_syscalls(w);
	return n;
}

void swapio__engine_wake(struct swapio_worker *w)
{
	w->ectx.ops->wake(&w->ectx);
}

int swapio__fault_wrap(unsigned int id, unsigned int nr_workers,
		       const struct swapio_engine_ops **e)
{
	return swapio__fault_filter(swapio__env("SWAPIO_FAULT"), id,
				    nr_workers, e);
}
