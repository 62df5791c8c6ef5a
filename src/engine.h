/* SPDX-License-Identifier: MIT */
/*
 * The engine table. An engine moves block requests between memory and
 * files and reports exactly what the kernel said; retries, statistics and
 * checks live in the core (handle.c). Every hook runs on one worker's own
 * thread, so an engine context needs no locking against the core.
 */
#ifndef SWAPIO_ENGINE_H
#define SWAPIO_ENGINE_H

#include "internal.h"

#define SWAPIO_ENGINE_OPS_VERSION	1

enum {
	SWAPIO_CAP_ASYNC	= 1u << 0,	/* completes after ->submit() */
};

struct swapio_engine_ops {
	const char	*name;		/* "uring", "aio", "threads" */
	unsigned int	id;		/* enum swapio_engine */
	unsigned int	version;	/* SWAPIO_ENGINE_OPS_VERSION */
	unsigned int	caps;		/* SWAPIO_CAP_* */

	/* 0 if usable on this machine, else -errno. Called once, cached. */
	int  (*probe)(void);
	/* Set up w->engine_data for queue_depth requests; cleans up after
	 * itself on failure. Runs on the worker's thread. */
	int  (*init)(struct swapio_worker *w);
	/* Tear down. Nothing is in flight. */
	void (*exit)(struct swapio_worker *w);
	/* Stage one request; the core never stages more than queue_depth. */
	void (*queue)(struct swapio_worker *w, struct swapio_req *rq);
	/* Hand every staged request to the kernel. 0 or -errno. */
	int  (*submit)(struct swapio_worker *w);
	/* Submit what is staged, then wait until at least @min requests have
	 * completed, calling swapio__complete() for each one that has.
	 * Returns the number completed or -errno. */
	int  (*reap)(struct swapio_worker *w, unsigned int min);
};

#ifdef SWAPIO_HAVE_LIBURING
extern const struct swapio_engine_ops swapio__engine_uring;
#endif
#ifdef SWAPIO_HAVE_LIBAIO
extern const struct swapio_engine_ops swapio__engine_aio;
#endif
extern const struct swapio_engine_ops swapio__engine_threads;

/* engine.c */
const struct swapio_engine_ops *swapio__engine_get(unsigned int id);
int swapio__engine_check(const struct swapio_engine_ops *ops);

/* Count one system call made for I/O. */
static inline void swapio__count_syscall(struct swapio_worker *w)
{
	atomic_fetch_add_explicit(&w->stats.syscalls, 1, memory_order_relaxed);
}

#endif /* SWAPIO_ENGINE_H */
