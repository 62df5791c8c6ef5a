/* SPDX-License-Identifier: MIT */
/*
 * The engine contract. An engine moves block requests between memory and
 * files and hands back what the kernel said, as (request, result) events;
 * the core decides what a result means (retries, short transfers, errors,
 * statistics). This header is all an engine sees: it knows requests and
 * its own context, never the worker, the op or the handle behind them.
 *
 * Every hook but ->wake() runs on the thread of the worker the context
 * belongs to, so a context needs no locking against the core.
 */
#ifndef SWAPIO_ENGINE_H
#define SWAPIO_ENGINE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util.h"

#define SWAPIO_ENGINE_OPS_VERSION	2
#define SWAPIO_MAX_RETRIES	8	/* EINTR/EAGAIN, per request */

struct swapio_part;

/*
 * One block-sized request. The core owns it; it lends it to the engine
 * from ->queue() until the event that returns it. An engine reads the
 * transfer through swapio__req_buf/len/off() when it queues it, and may
 * use priv[] for its own per-request state (an iocb or an SQE's data).
 */
struct swapio_req {
	struct swapio_part	*part;		/* core only */
	struct swapio_req	*next;		/* core only: free, retry */
	unsigned char		*buf;		/* I/O memory: user or bounce */
	unsigned char		*pre;		/* memory of the first pre_len */
	size_t			pre_len;	/* bytes, before buf's (0: none) */
	unsigned char		*user;		/* bounced: the user's memory */
	unsigned char		*bounce;	/* this slot's block, lazily */
	size_t			bounce_len;	/* its size */
	uint64_t		off;
	size_t			len;
	size_t			done;		/* bytes moved so far */
	uint64_t		t_queued;	/* ns, for latency */
	int			fd;
	bool			write;
	bool			direct;		/* fd is opened O_DIRECT */
	bool			queued;		/* core: lent to the engine */
	unsigned int		retries;	/* EINTR/EAGAIN so far */
	struct iovec		vec[2];		/* engine: swapio__req_iov() */
	unsigned char		priv[64] __attribute__((aligned(16)));
};

/*
 * What an engine should transfer now: the part of @rq not yet done. A
 * request may carry a prefix, pre_len bytes of other memory that go to
 * the file just before buf's (a store's header block before its payload:
 * one write, not two). While some of it is left, the transfer is two
 * segments and an engine moves it with swapio__req_iov(); otherwise
 * swapio__req_buf() and swapio__req_len() describe it.
 */
static inline bool swapio__req_split(const struct swapio_req *rq)
{
	return rq->done < rq->pre_len && rq->len > rq->pre_len;
}

static inline void *swapio__req_buf(const struct swapio_req *rq)
{
	return rq->done < rq->pre_len ? rq->pre + rq->done :
					rq->buf + (rq->done - rq->pre_len);
}

static inline size_t swapio__req_len(const struct swapio_req *rq)
{
	return rq->len - rq->done;
}

static inline uint64_t swapio__req_off(const struct swapio_req *rq)
{
	return rq->off + rq->done;
}

/* The transfer left as segments in @iov (rq->vec where the engine needs
 * them to outlive the call): two while swapio__req_split(), else one. */
static inline unsigned int swapio__req_iov(const struct swapio_req *rq,
					   struct iovec iov[2])
{
	iov[0] = (struct iovec){ swapio__req_buf(rq), swapio__req_len(rq) };
	if (!swapio__req_split(rq))
		return 1;
	iov[0].iov_len = rq->pre_len - rq->done;
	iov[1] = (struct iovec){ rq->buf, rq->len - rq->pre_len };
	return 2;
}

/* A finished request and its result: bytes moved (0: end of file) or
 * -errno, exactly as the kernel reported it. */
struct swapio_event {
	struct swapio_req	*rq;
	ssize_t			res;
};

struct swapio_engine_ops;

/* One engine instance, serving one worker. */
struct swapio_ectx {
	const struct swapio_engine_ops	*ops;	/* the table it runs */
	unsigned int	queue_depth;	/* never more requests held at once */
	unsigned int	worker;		/* index of the worker it serves */
	bool		no_register;	/* SWAPIO_CFG_NO_REGISTER */
	void		*data;		/* the engine's own state */
	uint64_t	syscalls;	/* I/O system calls made; the core
					 * adds them to its statistics and
					 * zeroes the count */
	uint64_t	registered;	/* requests queued from registered
					 * buffers; counted the same way */
};

struct swapio_engine_ops {
	unsigned int	version;	/* SWAPIO_ENGINE_OPS_VERSION */

	/* 0 if usable on this machine, else -errno. Called once, cached. */
	int  (*probe)(void);
	/* Set up ctx->data; cleans up after itself on failure. */
	int  (*init)(struct swapio_ectx *ctx);
	/* Tear down. Returns only once the kernel can no longer touch the
	 * memory of any request still lent to the engine. */
	void (*exit)(struct swapio_ectx *ctx);
	/* Stage one request; the core never lends more than queue_depth. */
	void (*queue)(struct swapio_ectx *ctx, struct swapio_req *rq);
	/* Hand every staged request to the kernel. 0 or -errno. */
	int  (*submit)(struct swapio_ectx *ctx);
	/*
	 * Submit what is staged, then wait until at least @min requests
	 * have finished or ->wake() was called, whichever is first. Fills
	 * @ev with up to @max events, each lent request returned exactly
	 * once, and returns their number (0 is fine after a wake), or
	 * -errno if the engine can no longer run; the core then calls
	 * ->exit() and fails what is still lent.
	 */
	int  (*reap)(struct swapio_ectx *ctx, unsigned int min,
		     struct swapio_event *ev, unsigned int max);
	/* Any thread: make the current or the next ->reap() return soon. */
	void (*wake)(struct swapio_ectx *ctx);
	/*
	 * Optional (NULL: nothing to do). Run what the kernel deferred for
	 * this context until its next system call, and that may still hold
	 * a file open: io_uring's task work of finished requests.
	 */
	void (*flush)(struct swapio_ectx *ctx);
};

/* The engines, each at the end of its own file. */
#ifdef SWAPIO_HAVE_LIBURING
extern const struct swapio_engine_ops swapio__engine_uring;
#endif
#ifdef SWAPIO_HAVE_LIBAIO
extern const struct swapio_engine_ops swapio__engine_aio;
#endif
extern const struct swapio_engine_ops swapio__engine_threads;

/*
 * threads.c: the pread/pwrite pool behind the threads engine, also
 * used by aio for the requests Linux AIO would run inside io_submit()
 * (those on a descriptor without O_DIRECT). @notify, if set, is called
 * from a pool thread each time a request finishes.
 */
struct swapio_tpool;
int swapio__tpool_start(unsigned int nr_threads, void (*notify)(void *),
			void *arg, struct swapio_tpool **out);
void swapio__tpool_stop(struct swapio_tpool *t);	/* waits for running */
void swapio__tpool_queue(struct swapio_tpool *t, struct swapio_req *rq);
void swapio__tpool_submit(struct swapio_tpool *t);
/* Wait for @min finished requests or a wake-up; fill @ev, up to @max. */
unsigned int swapio__tpool_reap(struct swapio_tpool *t, unsigned int min,
				struct swapio_event *ev, unsigned int max);
void swapio__tpool_wake(struct swapio_tpool *t);

/*
 * engine.c: the preference list. swapio__engine_nth(i) is the enum
 * swapio_engine of its @i-th entry, in the order "auto" tries them (-1
 * past the end); swapio__engine_get() gives an engine's table, NULL when
 * it is not built in.
 */
int swapio__engine_nth(size_t i);
const struct swapio_engine_ops *swapio__engine_get(unsigned int id);
int swapio__engine_check(const struct swapio_engine_ops *ops);

/*
 * regbuf.c: the locked buffers of this process that an engine may
 * register with the kernel (io_uring fixed buffers), in at most
 * SWAPIO_REG_SLOTS slots of at most SWAPIO_REG_SLOT_MAX bytes; a free slot
 * has len 0. A slot is the same memory only while its id is the same. swapio_buf_alloc(SWAPIO_BUF_LOCKED) fills slots and
 * swapio_buf_free() empties them, each bumping the generation. An engine
 * that registers slots must compare swapio__reg_gen() with the generation
 * of its copy before it uses one for a request: the memory of an emptied
 * slot may be mapped again at the same address.
 */
#define SWAPIO_REG_SLOTS	64
#define SWAPIO_REG_SLOT_MAX	(1ull << 30)

struct swapio_reg_slot {
	uintptr_t	start;
	size_t		len;
	uint64_t	id;	/* unique per allocation: the same address
				 * and length may come back as new memory */
};

uint64_t swapio__reg_gen(void);
/* Copy the table into @out; returns the generation of that copy. */
uint64_t swapio__reg_copy(struct swapio_reg_slot out[SWAPIO_REG_SLOTS]);
/* Give [@p, @p + @size) slots, 1 GiB a slot, as far as free slots go;
 * empty the slots inside it, before the memory goes. The core's. */
void swapio__reg_add(void *p, size_t size);
void swapio__reg_remove(void *p, size_t size);
/* Does one slot hold all of [@buf, @buf + @len)? (also in ext.h) */
bool swapio__reg_holds(const void *buf, size_t len);

/*
 * fault.c: fault injection for tests, switched on by the environment
 * variable SWAPIO_FAULT (grammar in docs/RELIABILITY.md), which the core
 * reads and hands to swapio__fault_filter() (internal.h,
 * swapio__fault_wrap()).
 *
 * swapio__fault_filter() is called once per engine tried, before its
 * workers start. With @spec NULL (the variable unset or empty) it leaves
 * *@e alone and the handle runs the real table, so the hot path never
 * sees the filter. Otherwise *@e becomes a table that forwards to the
 * real one and rewrites the events it returns. Returns 0, or -EINVAL for
 * a bad spec, -ENOMEM. swapio__fault_unwrap() drops the reference the
 * wrap itself made (the handle keeps it for its whole life); each context
 * that set up holds its own until ->exit(). Accepts any table.
 */
int swapio__fault_filter(const char *spec, unsigned int id,
			 unsigned int nr_workers,
			 const struct swapio_engine_ops **e);
void swapio__fault_unwrap(const struct swapio_engine_ops *e);

/* Parse @spec into nothing: 0 if valid, else -EINVAL. For tests. */
int swapio__fault_check(const char *spec);

/* Faults injected so far through table @e, or -1 if it is not the filter. */
int64_t swapio__fault_count(const struct swapio_engine_ops *e);

#endif /* SWAPIO_ENGINE_H */
