/* SPDX-License-Identifier: MIT */
/*
 * Internal types of the core (src/core/: handle.c, plan.c, file.c,
 * engine_calls.c, fork.c, ...). Engines see only engine.h, the store and
 * the device layer only ext.h; the build's include paths hold them to it
 * (docs/ARCHITECTURE.md). Nothing here is installed.
 *
 * The execution model: a handle owns cfg.threads workers. A transfer (an
 * op) is cut into at most that many contiguous parts, one per worker. Each
 * worker owns one engine context (a ring, an AIO context or a small thread
 * pool) and keeps up to queue_depth block requests in flight, drawn from
 * the parts it was given in turn, one request from each part, so that a
 * small op never waits behind the whole of a large one.
 */
#ifndef SWAPIO_INTERNAL_H
#define SWAPIO_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "engine.h"
#include "ext.h"
#include "swapio.h"

#define SWAPIO_DEF_BLOCK	(1u << 20)
#define SWAPIO_DEF_QD		32
#define SWAPIO_MAX_BLOCK	(1ull << 30)
#define SWAPIO_MAX_QD		4096
#define SWAPIO_MAX_THREADS	64
#define SWAPIO_LAT_BUCKETS	256	/* 4 linear steps per power of two */

struct swapio_file {
	swapio_handle	*h;
	unsigned int	gen;		/* fork generation it was opened in */
	int		fd;		/* O_DIRECT when direct */
	int		bfd;		/* buffered twin for edges; fd if !direct */
	bool		direct;
	bool		blkdev;		/* a block device: its size is fixed */
	bool		readable;
	bool		writable;
	uint32_t	mem_align;	/* direct I/O: buffer address */
	uint32_t	off_align;	/* direct I/O: offset and length */
	uint32_t	edge_align;	/* max(off_align, page): see plan.c */
	uint32_t	unsplit;	/* largest unsplit direct request, from
					 * 4 KiB pages; 0: unknown (file.c) */
	atomic_uint_least64_t size_hint; /* allocated up to here, at least */
	struct swapio_ext_file ext;	/* an extension's (ext.h) */
	struct swapio_file *prev, *next; /* every open file (fork.c) */
};

/* A contiguous slice of one op, handled by one worker. */
struct swapio_part {
	struct swapio_op	*op;
	struct swapio_part	*next;		/* worker queue link */
	uint64_t		pos;		/* next byte to plan */
	uint64_t		body;		/* [body, tail) may go direct */
	uint64_t		tail;
	uint64_t		end;
	unsigned char		*mem;		/* user memory for pos */
	bool			bounce_all;	/* SWAPIO_CFG_BOUNCE applies */
	unsigned char		*pre;		/* part 0: the op's prefix, */
	size_t			pre_len;	/* 0 once it is planned */
	unsigned int		reqs_out;	/* requests not yet finished */
};

struct swapio_op {
	swapio_handle		*h;
	swapio_file		*f;
	swapio_file		*owned;		/* path ops: closed at the end */
	struct swapio_op	*prev, *next;	/* live list: not yet freed */
	struct swapio_op	*run_prev, *run_next; /* running, by seq */
	uint64_t		seq;		/* submission order */
	bool			write;
	bool			spin;		/* see op_link() */
	unsigned int		waiters;	/* asleep in swapio_op_wait()
						 * on it; under h->lock */
	atomic_bool		done;
	atomic_uint		parts_left;
	atomic_uint_least64_t	bytes;
	atomic_int		error;		/* first error, 0 if none */
	ssize_t			result;		/* valid once done */
	unsigned int		nr_parts;
	struct swapio_part	parts[];	/* nr_workers of them */
};

struct swapio_worker_stats {
	atomic_uint_least64_t	bytes_read;
	atomic_uint_least64_t	bytes_written;
	atomic_uint_least64_t	requests;
	atomic_uint_least64_t	syscalls;
	atomic_uint_least64_t	registered;
	atomic_uint_least64_t	retries;
	atomic_uint_least64_t	bounced;
	atomic_uint_least64_t	lat[SWAPIO_LAT_BUCKETS];
};

struct swapio_worker {
	swapio_handle		*h;
	pthread_t		thread;
	bool			started;

	/* Shared with submitters, under lock. */
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	struct swapio_part	*in_head, *in_tail;
	atomic_uint		enqueued;	/* parts ever queued; also read
						 * unlocked by the idle spin */
	bool			flush;		/* swapio__handle_flush() asked */
	bool			stop;
	bool			reaping;	/* may sleep in ->reap() */

	/* Owned by the worker thread. */
	struct swapio_part	*cur_head, *cur_tail;
	struct swapio_req	*reqs;		/* queue_depth slots */
	struct swapio_req	*free_reqs;
	struct swapio_req	*retry;
	unsigned int		inflight;	/* lent to the engine */
	unsigned int		taken;		/* enqueued when last looked */
	bool			flush_now;	/* run ->flush() next */
	bool			spin;		/* last part taken: a lone small
						 * op's (op_link()) */
	int			dead;		/* engine failed: -errno */
	struct swapio_ectx	ectx;
	struct swapio_event	*events;	/* queue_depth of them */
	unsigned char		*bounce;	/* queue_depth bounce blocks */
	size_t			bounce_size;	/* bytes of each; 0: none yet */
	int			init_result;

	struct swapio_worker_stats stats;
};

struct swapio_handle {
	struct swapio_config		cfg;
	const struct swapio_engine_ops	*engine;
	unsigned int			gen;	/* fork generation */
	char				engine_note[192];
	struct swapio_worker		*workers;
	atomic_uint			rotor;		/* spreads small ops */
	atomic_int			efd;		/* -1 until asked for */
	size_t				op_size;

	pthread_mutex_t			lock;
	pthread_cond_t			done_cv;	/* an op completed */
	unsigned int			any_waiters;	/* asleep in wait_any or
							 * wait_all; h->lock */
	unsigned int			nr_started;	/* worker start-up */
	unsigned long			inflight_ops;
	uint64_t			next_seq;
	struct swapio_op		*run_head, *run_tail; /* by seq */
	struct swapio_op		*live;		/* ops not yet freed */
	struct swapio_op		*free_ops;
	uint64_t			busy_since_ns;
	uint64_t			busy_ns;
	uint64_t			ops_done;
	void				*ext;	/* an extension's state (ext.h) */
	void				(*ext_destroy)(void *ext);
};

#define HPAGE_SIZE	(2u << 20)	/* a huge page over 4 KiB base pages */

/* buffers.c */
void *swapio__map_huge(size_t len);

/* plan.c */
unsigned int swapio__split(const swapio_handle *h, struct swapio_op *op,
			   unsigned char *mem, size_t len, uint64_t off);
int swapio__plan_next(struct swapio_worker *w, struct swapio_part *p,
		      struct swapio_req *rq);
void swapio__bounce_free(struct swapio_worker *w);

/* handle.c: the one place that decides what a request's result means. */
void swapio__complete(struct swapio_worker *w, struct swapio_req *rq,
		      ssize_t res);

/*
 * engine_calls.c: how workers call their engine (accounting lives there).
 * swapio__engine_reap() leaves its events in w->events and returns how
 * many (or a negative errno); the worker completes them.
 */
void swapio__engine_queue(struct swapio_worker *w, struct swapio_req *rq);
int swapio__engine_submit(struct swapio_worker *w);
int swapio__engine_reap(struct swapio_worker *w, unsigned int min);
void swapio__engine_wake(struct swapio_worker *w);

/* engine_calls.c: SWAPIO_FAULT's filter over @e, where it is set (see
 * swapio__fault_filter() in engine.h). */
int swapio__fault_wrap(unsigned int id, unsigned int nr_workers,
		       const struct swapio_engine_ops **e);

/* Faults injected so far on @h, or -1 if it runs without the filter. */
int64_t swapio__fault_injected(const swapio_handle *h);

/* fork.c: the list of open files whose descriptors a child closes. */
void swapio__file_register(swapio_file *f);
void swapio__file_unregister(swapio_file *f);

/* file.c */
int swapio__file_openat(swapio_handle *h, int dirfd, const char *path,
			unsigned int flags, swapio_file **out);
int swapio__file_open(swapio_handle *h, const char *path, unsigned int flags,
		      swapio_file **out);
int swapio__file_prepare_write(swapio_file *f, uint64_t off, size_t len);

#endif /* SWAPIO_INTERNAL_H */
