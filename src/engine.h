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
	/* Stage one request; the core never stages more than queue_depth.
	 * Reads the request's fd, buffer, offset and length now, not later:
	 * the fault engine trims a request around this call. */
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

/*
 * engine_fault.c: fault injection for tests, switched on per handle by the
 * environment variable SWAPIO_FAULT (grammar in docs/RELIABILITY.md).
 *
 * swapio__fault_wrap() is called once per engine tried, before its
 * workers start. With SWAPIO_FAULT unset or empty it leaves *@e alone and
 * the handle runs the real table, so the hot path never sees this file.
 * Otherwise *@e becomes a table that forwards to the real one and injects
 * the faults asked for. Returns 0, or -EINVAL for a bad spec, -ENOMEM.
 * swapio__fault_unwrap() drops the reference the wrap itself held; each
 * worker that set up holds its own until ->exit(). It accepts any table.
 */
int swapio__fault_wrap(const swapio_handle *h,
		       const struct swapio_engine_ops **e);
void swapio__fault_unwrap(const struct swapio_engine_ops *e);

/* Parse @spec into nothing: 0 if valid, else -EINVAL. For tests. */
int swapio__fault_check(const char *spec);

/* Faults injected so far on @h, or -1 if it runs without the wrapper. */
int64_t swapio__fault_injected(const swapio_handle *h);

/* Count one system call made for I/O. */
static inline void swapio__count_syscall(struct swapio_worker *w)
{
	atomic_fetch_add_explicit(&w->stats.syscalls, 1, memory_order_relaxed);
}

#endif /* SWAPIO_ENGINE_H */
