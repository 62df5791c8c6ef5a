/* SPDX-License-Identifier: MIT */
/*
 * Internal types shared by the core (handle.c, plan.c, file.c) and the
 * engines. Nothing here is installed.
 *
 * The execution model: a handle owns cfg.threads workers. A transfer (an
 * op) is cut into at most that many contiguous parts, one per worker. Each
 * worker owns one engine context (a ring, an AIO context or a small thread
 * pool) and keeps up to queue_depth block requests in flight, drawn from
 * the parts it was given, in order.
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

#include "swapio.h"
#include "util.h"

#define SWAPIO_MAX_RETRIES	8	/* EINTR/EAGAIN per request */
#define SWAPIO_DEF_BLOCK	(1u << 20)
#define SWAPIO_DEF_QD		32
#define SWAPIO_MAX_BLOCK	(1ull << 30)
#define SWAPIO_MAX_QD		4096
#define SWAPIO_MAX_THREADS	64
#define SWAPIO_LAT_BUCKETS	256	/* 4 linear steps per power of two */

struct swapio_engine_ops;

struct swapio_file {
	swapio_handle	*h;
	int		fd;		/* O_DIRECT when direct */
	int		bfd;		/* buffered twin for edges; fd if !direct */
	bool		direct;
	bool		blkdev;		/* a block device: its size is fixed */
	bool		readable;
	bool		writable;
	uint32_t	mem_align;	/* direct I/O: buffer address */
	uint32_t	off_align;	/* direct I/O: offset and length */
	uint32_t	edge_align;	/* max(off_align, page): see plan.c */
	atomic_uint_least64_t size_hint; /* allocated up to here, at least */
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
	unsigned int		reqs_out;	/* requests not yet finished */
};

struct swapio_op {
	swapio_handle		*h;
	swapio_file		*f;
	swapio_file		*owned;		/* path ops: closed at the end */
	struct swapio_op	*prev, *next;	/* handle's live list */
	bool			write;
	atomic_bool		done;
	atomic_uint		parts_left;
	atomic_uint_least64_t	bytes;
	atomic_int		error;		/* first error, 0 if none */
	ssize_t			result;		/* valid once done */
	unsigned int		nr_parts;
	struct swapio_part	parts[];	/* nr_workers of them */
};

/* One block-sized request. Owned by a worker; lent to the engine. */
struct swapio_req {
	struct swapio_part	*part;
	struct swapio_req	*next;		/* free and retry lists */
	unsigned char		*buf;		/* I/O memory: user or bounce */
	unsigned char		*user;		/* bounced: the user's memory */
	unsigned char		*bounce;	/* this slot's block, lazily made */
	size_t			bounce_len;	/* its size */
	uint64_t		off;
	size_t			len;
	size_t			done;
	uint64_t		t_queued;	/* ns, for latency */
	int			fd;
	bool			write;
	unsigned int		retries;
	/* Engine's own per-request space (a struct iocb fits). */
	unsigned char		priv[64] __attribute__((aligned(16)));
};

/* What an engine should transfer now: the part of @rq not yet done. */
static inline void *swapio__req_buf(const struct swapio_req *rq)
{
	return rq->buf + rq->done;
}

static inline size_t swapio__req_len(const struct swapio_req *rq)
{
	return rq->len - rq->done;
}

static inline uint64_t swapio__req_off(const struct swapio_req *rq)
{
	return rq->off + rq->done;
}

struct swapio_worker_stats {
	atomic_uint_least64_t	bytes_read;
	atomic_uint_least64_t	bytes_written;
	atomic_uint_least64_t	requests;
	atomic_uint_least64_t	syscalls;
	atomic_uint_least64_t	retries;
	atomic_uint_least64_t	bounced;
	atomic_uint_least64_t	lat[SWAPIO_LAT_BUCKETS];
};

struct swapio_worker {
	swapio_handle		*h;
	unsigned int		id;
	pthread_t		thread;
	bool			started;

	/* Shared with submitters, under lock. */
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	struct swapio_part	*in_head, *in_tail;
	bool			stop;

	/* Owned by the worker thread. */
	struct swapio_part	*cur_head, *cur_tail;
	struct swapio_req	*reqs;		/* queue_depth slots */
	struct swapio_req	*free_reqs;
	struct swapio_req	*retry;
	unsigned int		inflight;	/* queued, not yet completed */
	void			*engine_data;
	int			init_result;

	struct swapio_worker_stats stats;
};

struct swapio_handle {
	struct swapio_config		cfg;
	const struct swapio_engine_ops	*engine;
	char				engine_note[192];
	struct swapio_worker		*workers;
	unsigned int			nr_workers;
	atomic_uint			rotor;		/* spreads small ops */
	atomic_int			efd;		/* -1 until asked for */
	size_t				op_size;

	pthread_mutex_t			lock;
	pthread_cond_t			done_cv;	/* an op completed */
	unsigned int			nr_started;	/* worker start-up */
	unsigned long			inflight_ops;
	struct swapio_op		*live;		/* ops not yet freed */
	struct swapio_op		*free_ops;
	uint64_t			busy_since_ns;
	uint64_t			busy_ns;
	uint64_t			ops_done;
};

/* plan.c */
unsigned int swapio__split(const swapio_handle *h, struct swapio_op *op,
			   unsigned char *mem, size_t len, uint64_t off);
int swapio__plan_next(struct swapio_worker *w, struct swapio_part *p,
		      struct swapio_req *rq);

/* handle.c: the one place that decides what a request's result means. */
void swapio__complete(struct swapio_worker *w, struct swapio_req *rq,
		      ssize_t res);

/* file.c */
int swapio__file_open(swapio_handle *h, const char *path, unsigned int flags,
		      swapio_file **out);
int swapio__file_prepare_write(swapio_file *f, uint64_t off, size_t len);

#endif /* SWAPIO_INTERNAL_H */
