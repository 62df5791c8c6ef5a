/* SPDX-License-Identifier: MIT */
/*
 * The handle: configuration, workers, the life of an op, and waiting.
 *
 * Locks, outermost first: h->lock (op lists, in-flight count, start-up),
 * then w->lock (a worker's incoming parts, and whether it may be asleep in
 * its engine). Neither is held across I/O. Everything else a worker
 * touches is its own.
 *
 * Ownership of a request: a worker's free list, then planned and lent to
 * the engine (rq->queued) until its event comes back, then either the
 * retry list (the rest must be sent) or finished and free again. A part
 * is finished when all of it is planned and none of its requests is out;
 * an op when all its parts are. Whoever finishes the op last publishes
 * op->done, and after that nothing of the op may be touched: a waiter may
 * free it at once.
 */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/* A waiter spins this long on a lone op of at most SPIN_MAX_BYTES. */
#define SPIN_NS		(50 * 1000)
#define SPIN_MAX_BYTES	(256u << 10)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

/*
 * This process's share of a node's queue depth @qd: LOCAL_WORLD_SIZE
 * processes (torchrun's name for those on this node) split it evenly, so
 * that together they keep as many requests in flight on the shared
 * drives as one process alone would, and each gets the same.
 */
static int node_share(uint32_t *qd)
{
	uint64_t n = 1;
	int ret;

	ret = swapio__env_get("LOCAL_WORLD_SIZE", &n);
	if (ret < 0)
		return ret;
	*qd = SWAPIO_MAX(*qd / (uint32_t)n, 1u);
	return 0;
}

static int config_resolve(const struct swapio_config *in,
			  struct swapio_config *c)
{
	const uint32_t known = SWAPIO_CFG_BUFFERED | SWAPIO_CFG_SINGLE_SUBMIT |
			       SWAPIO_CFG_NO_OVERLAP | SWAPIO_CFG_DIRECT_STRICT |
			       SWAPIO_CFG_NO_REGISTER | SWAPIO_CFG_SHARE_NODE |
			       SWAPIO_CFG_NO_SPIN | SWAPIO_CFG_BOUNCE;
	uint64_t share = 0;
	int ret;

	*c = *in;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(c->reserved); i++)
		if (c->reserved[i])
			return -EINVAL;
	if (c->reserved32 || c->gpu_path > SWAPIO_GPU_GDS)
		return -EINVAL;
	if (!c->block_size)
		c->block_size = SWAPIO_DEF_BLOCK;
	if (!c->queue_depth)
		c->queue_depth = SWAPIO_DEF_QD;
	if (!c->threads)
		c->threads = 1;
	if (c->block_size % 4096 || c->block_size > SWAPIO_MAX_BLOCK ||
	    c->queue_depth > SWAPIO_MAX_QD || c->threads > SWAPIO_MAX_THREADS ||
	    c->engine > SWAPIO_ENGINE_THREADS || (c->flags & ~known))
		return -EINVAL;
	ret = swapio__env_get("SWAPIO_SHARE_NODE", &share);
	if (ret < 0)
		return ret;
	if (share)
		c->flags |= SWAPIO_CFG_SHARE_NODE;
	if (c->flags & SWAPIO_CFG_SHARE_NODE) {
		ret = node_share(&c->queue_depth);
		if (ret)
			return ret;
		c->flags &= ~SWAPIO_CFG_SHARE_NODE;	/* taken */
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Completion: request -> part -> op                                   */
/* ------------------------------------------------------------------ */

/* 4 linear steps per power of two: within 25 % everywhere. */
static unsigned int lat_bucket(uint64_t ns)
{
	unsigned int msb;

	if (ns < 4)
		return (unsigned int)ns;
	msb = 63u - (unsigned int)__builtin_clzll(ns);
	return SWAPIO_MIN((msb - 1) * 4 + ((ns >> (msb - 2)) & 3),
			  SWAPIO_LAT_BUCKETS - 1u);
}

static uint64_t lat_bucket_floor(unsigned int i)
{
	if (i < 4)
		return i;
	return (uint64_t)(4 + i % 4) << (i / 4 - 1);
}

static void op_finish(struct swapio_op *op)
{
	swapio_handle *h = op->h;
	int err = atomic_load(&op->error);
	uint64_t one = 1;
	int efd, ret;

	op->result = err ? err : (ssize_t)atomic_load(&op->bytes);
	if (op->owned) {
		ret = swapio_file_close(op->owned);
		op->owned = NULL;
		/* A failed close can lose written data (NFS); report it. */
		if (ret && op->write && op->result >= 0)
			op->result = ret;
	}
	pthread_mutex_lock(&h->lock);
	if (op->run_prev)
		op->run_prev->run_next = op->run_next;
	else
		h->run_head = op->run_next;
	if (op->run_next)
		op->run_next->run_prev = op->run_prev;
	else
		h->run_tail = op->run_prev;
	h->ops_done++;
	if (--h->inflight_ops == 0)
		h->busy_ns += swapio__now_ns() - h->busy_since_ns;
	/* The op may be freed by a waiter as soon as this is seen. Only
	 * its own waiters and those waiting for any op are woken: a caller
	 * waiting for the oldest of 64 ops is not woken for the other 63. */
	if (op->waiters || h->any_waiters)
		pthread_cond_broadcast(&h->done_cv);
	atomic_store_explicit(&op->done, true, memory_order_release);
	pthread_mutex_unlock(&h->lock);

	efd = atomic_load(&h->efd);
	if (efd >= 0)
		(void)!write(efd, &one, sizeof(one));
}

static void op_set_error(struct swapio_op *op, int err)
{
	int none = 0;

	atomic_compare_exchange_strong(&op->error, &none, err);
}

static void part_finish(struct swapio_part *p)
{
	struct swapio_op *op = p->op;

	if (atomic_fetch_sub(&op->parts_left, 1) == 1)
		op_finish(op);
}

static void req_finish(struct swapio_worker *w, struct swapio_req *rq,
		       int err)
{
	struct swapio_worker_stats *st = &w->stats;
	struct swapio_part *p = rq->part;
	uint64_t lat = swapio__now_ns() - rq->t_queued;

	if (rq->user) {
		/* Only a write has a prefix, and the prefix is never bounced. */
		if (!rq->write)
			memcpy(rq->user, rq->buf, rq->done);
		atomic_fetch_add_explicit(&st->bounced, rq->done -
					  SWAPIO_MIN(rq->done, rq->pre_len),
					  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(rq->write ? &st->bytes_written :
				  &st->bytes_read, rq->done,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&st->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->lat[lat_bucket(lat)], 1,
				  memory_order_relaxed);
	if (err)
		op_set_error(p->op, err);
	atomic_fetch_add(&p->op->bytes, rq->done);

	rq->next = w->free_reqs;
	w->free_reqs = rq;
	if (--p->reqs_out == 0 && p->pos == p->end)
		part_finish(p);
}

/* Can the rest of @rq still go direct, or must it take the buffered fd? */
static bool rest_is_aligned(const swapio_file *f, const struct swapio_req *rq)
{
	return (uintptr_t)swapio__req_buf(rq) % f->mem_align == 0 &&
	       swapio__req_off(rq) % f->off_align == 0 &&
	       swapio__req_len(rq) % f->off_align == 0;
}

void swapio__complete(struct swapio_worker *w, struct swapio_req *rq,
		      ssize_t res)
{
	const swapio_file *f = rq->part->op->f;
	bool again = false;

	assert(w->inflight > 0 && rq->queued);
	w->inflight--;
	rq->queued = false;
	if (res > 0) {
		assert((size_t)res <= swapio__req_len(rq));
		rq->done += (size_t)res;
		again = rq->done < rq->len;	/* short: send the rest */
		if (again && rq->direct && !rest_is_aligned(f, rq)) {
			rq->fd = f->bfd;
			rq->direct = false;
		}
	} else if (res == -EINTR || res == -EAGAIN) {
		again = rq->retries++ < SWAPIO_MAX_RETRIES;
	} else if (res == 0 && rq->write) {
		res = -EIO;	/* a write that moves nothing would loop */
	}
	if (again) {
		atomic_fetch_add_explicit(&w->stats.retries, 1,
					  memory_order_relaxed);
		rq->next = w->retry;
		w->retry = rq;
		return;
	}
	/* res == 0 on a read is end of file: the op reports a short count. */
	req_finish(w, rq, res < 0 ? (int)res : 0);
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Spin until @ready(@arg) or SPIN_NS have passed; true if it became ready.
 * Between rounds the CPU is offered to others (sched_yield() returns at
 * once unless a thread waits for this CPU), so that on a machine with few
 * cores a spin never holds off the thread it waits for.
 */
static bool spin_until(bool (*ready)(const void *), const void *arg)
{
	const uint64_t end = swapio__now_ns() + SPIN_NS;

	do {
		for (int i = 0; i < 64; i++) {
			if (ready(arg))
				return true;
			cpu_relax();
		}
		sched_yield();
	} while (swapio__now_ns() < end);
	return ready(arg);
}

static bool work_arrived(const void *arg)
{
	const struct swapio_worker *w = arg;

	return atomic_load_explicit(&w->enqueued, memory_order_relaxed) !=
	       w->taken;
}

/*
 * Idle after a lone small op: its caller, waiting at depth 1, submits the
 * next one within microseconds. Watching for it a while is cheaper than
 * a sleep and a wake-up, which on a VM cost as much as the read itself.
 */
static void worker_idle_spin(struct swapio_worker *w)
{
	if (!w->spin || w->cur_head || w->retry || w->inflight)
		return;
	w->spin = false;
	(void)spin_until(work_arrived, w);
}

/* Sleep until there is work; false once stopped with nothing left. */
static bool worker_fetch(struct swapio_worker *w)
{
	bool run;

	worker_idle_spin(w);
	pthread_mutex_lock(&w->lock);
	while (!w->in_head && !w->cur_head && !w->retry && !w->inflight &&
	       !w->stop && !w->flush)
		pthread_cond_wait(&w->cv, &w->lock);
	w->flush_now = w->flush;
	w->flush = false;
	if (w->in_head) {
		if (w->cur_tail)
			w->cur_tail->next = w->in_head;
		else
			w->cur_head = w->in_head;
		w->cur_tail = w->in_tail;
		w->spin = w->in_tail->op->spin;
		w->in_head = w->in_tail = NULL;
	}
	w->taken = atomic_load_explicit(&w->enqueued, memory_order_relaxed);
	run = !w->stop || w->cur_head || w->retry || w->inflight;
	pthread_mutex_unlock(&w->lock);
	return run;
}

/* Take @p off the head of the current list; put it back last if @again. */
static void worker_rotate(struct swapio_worker *w, struct swapio_part *p,
			  bool again)
{
	w->cur_head = p->next;
	if (!w->cur_head)
		w->cur_tail = NULL;
	p->next = NULL;
	if (!again)
		return;
	if (w->cur_tail)
		w->cur_tail->next = p;
	else
		w->cur_head = p;
	w->cur_tail = p;
}

/* Nothing more of @p will be planned: @err (if any) fails its op. */
static void part_end_planning(struct swapio_part *p, int err)
{
	if (err)
		op_set_error(p->op, err);
	p->pos = p->end;
	if (p->reqs_out == 0)
		part_finish(p);
}

/*
 * The next request to send: a retry first, else one planned from the
 * part at the head of the list, which then goes to the back. Taking the
 * parts in turn keeps a small op from waiting behind all of a large one.
 */
static struct swapio_req *worker_next(struct swapio_worker *w)
{
	struct swapio_req *rq = w->retry;
	struct swapio_part *p;
	int ret;

	if (rq) {
		w->retry = rq->next;
		return rq;
	}
	while ((p = w->cur_head) && (rq = w->free_reqs)) {
		w->free_reqs = rq->next;
		ret = swapio__plan_next(w, p, rq);
		worker_rotate(w, p, !ret && p->pos < p->end);
		if (!ret)
			return rq;
		/* No bounce memory: fail the rest of this part. */
		rq->next = w->free_reqs;
		w->free_reqs = rq;
		part_end_planning(p, ret);
	}
	return NULL;
}

/* Keep the queue full: queue_depth requests in flight when there is work. */
static void worker_fill(struct swapio_worker *w)
{
	const bool single = w->h->cfg.flags & SWAPIO_CFG_SINGLE_SUBMIT;
	struct swapio_req *rq;

	/* Batch mode (no overlap): the next batch starts when one drains. */
	if ((w->h->cfg.flags & SWAPIO_CFG_NO_OVERLAP) && w->inflight)
		return;
	while ((rq = worker_next(w))) {
		swapio__engine_queue(w, rq);
		if (single)
			(void)swapio__engine_submit(w);
	}
}

/*
 * The engine failed for good (a broken ring, say). Tear it down, which
 * waits until the kernel is done with every request it held, then fail
 * those requests and everything still to come: no op is left waiting.
 */
static void worker_fail(struct swapio_worker *w, int err)
{
	struct swapio_req *rq;

	w->ectx.ops->exit(&w->ectx);
	w->dead = err;
	for (unsigned int i = 0; i < w->h->cfg.queue_depth; i++) {
		rq = &w->reqs[i];
		if (!rq->queued)
			continue;
		rq->queued = false;
		w->inflight--;
		req_finish(w, rq, err);
	}
}

/* After worker_fail(): every retry and every part fails at once. */
static void worker_drain_dead(struct swapio_worker *w)
{
	struct swapio_req *rq;
	struct swapio_part *p;

	while ((rq = w->retry)) {
		w->retry = rq->next;
		req_finish(w, rq, w->dead);
	}
	while ((p = w->cur_head)) {
		worker_rotate(w, p, false);
		part_end_planning(p, w->dead);
	}
}

/*
 * Wait in the engine for a completion. While the worker could take more
 * work (a request slot is free) it marks itself as reaping, so that an
 * enqueuer wakes the engine rather than leave new work waiting behind a
 * long request; with new work already there it only looks.
 */
static void worker_reap(struct swapio_worker *w)
{
	const bool batch = w->h->cfg.flags & SWAPIO_CFG_NO_OVERLAP;
	unsigned int min = batch ? w->inflight : 1;
	bool wakeable = false;
	int ret;

	if (!batch && w->free_reqs) {
		pthread_mutex_lock(&w->lock);
		if (w->in_head)
			min = 0;
		else
			w->reaping = wakeable = true;
		pthread_mutex_unlock(&w->lock);
	}
	ret = swapio__engine_reap(w, min);
	for (int i = 0; i < ret; i++)	/* the events it handed back */
		swapio__complete(w, w->events[i].rq, w->events[i].res);
	if (wakeable) {
		/* Cleared under the lock: no wake-up reaches a dead engine. */
		pthread_mutex_lock(&w->lock);
		w->reaping = false;
		pthread_mutex_unlock(&w->lock);
	}
	if (ret < 0)
		worker_fail(w, ret);
}

static void *worker_main(void *arg)
{
	struct swapio_worker *w = arg;
	swapio_handle *h = w->h;

	w->init_result = w->ectx.ops->init(&w->ectx);
	pthread_mutex_lock(&h->lock);
	h->nr_started++;
	pthread_cond_broadcast(&h->done_cv);
	pthread_mutex_unlock(&h->lock);
	if (w->init_result)
		return NULL;

	while (worker_fetch(w)) {
		if (w->dead) {
			worker_drain_dead(w);
			continue;
		}
		if (w->flush_now && w->ectx.ops->flush)
			w->ectx.ops->flush(&w->ectx);
		w->flush_now = false;
		worker_fill(w);
		if (w->inflight)
			worker_reap(w);
	}
	if (!w->dead)
		w->ectx.ops->exit(&w->ectx);
	return NULL;
}

static void worker_enqueue(struct swapio_worker *w, struct swapio_part *p)
{
	pthread_mutex_lock(&w->lock);
	if (w->in_tail)
		w->in_tail->next = p;
	else
		w->in_head = p;
	w->in_tail = p;
	atomic_fetch_add_explicit(&w->enqueued, 1, memory_order_relaxed);
	pthread_cond_signal(&w->cv);
	if (w->reaping) {
		/* Under the lock: the engine lives while reaping is set. */
		w->reaping = false;
		swapio__engine_wake(w);
	}
	pthread_mutex_unlock(&w->lock);
}

void swapio__handle_flush(swapio_handle *h)
{
	if (swapio__forked(h->gen))
		return;	/* the parent's: no workers here */
	for (unsigned int i = 0; i < h->cfg.threads; i++) {
		struct swapio_worker *w = &h->workers[i];

		pthread_mutex_lock(&w->lock);
		w->flush = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Tell the first @n workers first, then join: teardowns overlap. */
static void workers_stop(swapio_handle *h, unsigned int n)
{
	struct swapio_worker *w;
	unsigned int i;

	for (i = 0; i < n; i++) {
		w = &h->workers[i];
		if (!w->started)
			continue;
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		atomic_fetch_add_explicit(&w->enqueued, 1, memory_order_relaxed);
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->lock);
	}
	for (i = 0; i < n; i++) {
		w = &h->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		w->started = false;
		swapio__bounce_free(w);
		free(w->reqs);
		free(w->events);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->lock);
	}
	free(h->workers);
	h->workers = NULL;
}

/* Zeroed @w: its lock and condition, requests and events; all or none. */
static int worker_setup(swapio_handle *h, struct swapio_worker *w,
			const struct swapio_engine_ops *e, unsigned int id)
{
	const unsigned int qd = h->cfg.queue_depth;
	int ret;

	w->h = h;
	w->ectx = (struct swapio_ectx){
		.ops = e, .queue_depth = qd, .worker = id,
		.no_register = h->cfg.flags & SWAPIO_CFG_NO_REGISTER };
	ret = pthread_mutex_init(&w->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&w->cv, NULL);
	if (ret) {
		pthread_mutex_destroy(&w->lock);
		return -ret;
	}
	w->reqs = calloc(qd, sizeof(*w->reqs));
	w->events = calloc(qd, sizeof(*w->events));
	if (!w->reqs || !w->events) {
		free(w->events);
		free(w->reqs);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->lock);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < qd; i++) {
		w->reqs[i].next = w->free_reqs;
		w->free_reqs = &w->reqs[i];
	}
	return 0;
}

/*
 * Start every worker with engine @e and wait for each to set its engine
 * up on its own thread (an io_uring ring then belongs to that thread).
 * Workers block all signals, so signals reach the application's threads
 * and never interrupt I/O.
 */
static int workers_start(swapio_handle *h, const struct swapio_engine_ops *e)
{
	const unsigned int n = h->cfg.threads;
	unsigned int set_up = 0, created = 0;
	sigset_t all, old;
	int ret = 0;

	h->engine = e;
	h->nr_started = 0;
	h->workers = calloc(n, sizeof(*h->workers));
	if (!h->workers)
		return -ENOMEM;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned int i = 0; i < n && !ret; i++) {
		struct swapio_worker *w = &h->workers[i];

		ret = worker_setup(h, w, e, i);
		if (!ret) {
			set_up = i + 1;	/* workers_stop() undoes it */
			ret = -pthread_create(&w->thread, NULL, worker_main, w);
		}
		if (!ret) {
			w->started = true;
			created++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&h->lock);
	while (h->nr_started < created)
		pthread_cond_wait(&h->done_cv, &h->lock);
	pthread_mutex_unlock(&h->lock);
	for (unsigned int i = 0; i < created && !ret; i++)
		ret = h->workers[i].init_result;
	if (ret)
		workers_stop(h, set_up);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Engine choice                                                       */
/* ------------------------------------------------------------------ */

static void __attribute__((format(printf, 2, 3)))
note_add(swapio_handle *h, const char *fmt, ...)
{
	size_t used = strlen(h->engine_note);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->engine_note + used, sizeof(h->engine_note) - used, fmt,
		  ap);
	va_end(ap);
}

static int engine_try(swapio_handle *h, unsigned int id)
{
	const struct swapio_engine_ops *e = swapio__engine_get(id);
	int ret;

	if (!e)
		return -EOPNOTSUPP;
	ret = swapio__engine_check(e);
	if (!ret)
		ret = swapio_engine_probe(id);
	if (!ret)
		ret = swapio__fault_wrap(id, h->cfg.threads, &e); /* tests */
	if (!ret)
		ret = workers_start(h, e);
	if (ret)
		swapio__fault_unwrap(e);	/* the handle's ref, if any */
	else
		h->cfg.engine = id;
	return ret;
}

/*
 * A named engine (config, or SWAPIO_ENGINE under auto) must start or the
 * handle fails. Auto walks uring, aio, threads and keeps the first that
 * starts, noting why each earlier one did not.
 */
static int engine_attach(swapio_handle *h)
{
	unsigned int want = h->cfg.engine;
	const char *why = "requested";
	int ret = -EOPNOTSUPP, id;
	uint64_t env;

	if (want == SWAPIO_ENGINE_AUTO) {
		ret = swapio__env_get("SWAPIO_ENGINE", &env);
		if (ret < 0)
			return ret;
		if (ret) {
			want = (unsigned int)env;
			why = "SWAPIO_ENGINE";
		}
	}
	if (want != SWAPIO_ENGINE_AUTO) {
		ret = engine_try(h, want);
		if (!ret)
			note_add(h, "%s: %s", why, swapio_engine_name(want));
		return ret;
	}
	for (size_t i = 0; (id = swapio__engine_nth(i)) >= 0; i++) {
		ret = engine_try(h, (unsigned int)id);
		if (!ret) {
			note_add(h, "auto: chose %s", swapio_engine_name(id));
			return 0;
		}
		note_add(h, "%s unavailable (%s); ", swapio_engine_name(id),
			 swapio_strerror(ret));
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Handle life                                                         */
/* ------------------------------------------------------------------ */

static int handle_sync_init(swapio_handle *h)
{
	pthread_condattr_t ca;
	int ret;

	ret = pthread_mutex_init(&h->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_condattr_init(&ca);
	if (!ret) {
		/* Deadlines are CLOCK_MONOTONIC (swapio__deadline()). */
		ret = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (!ret)
			ret = pthread_cond_init(&h->done_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (ret)
		pthread_mutex_destroy(&h->lock);
	return -ret;
}

int swapio_handle_create(const struct swapio_config *cfg, swapio_handle **out)
{
	SWAPIO_KEEP_ERRNO;
	static const struct swapio_config none;
	struct swapio_config c;
	swapio_handle *h;
	int ret;

	swapio__detail_clear();
	if (!out)
		return -EINVAL;
	*out = NULL;
	/* Every variable a handle reads, whether or not this one uses it. */
	ret = swapio__env_check(SWAPIO_ENV_HANDLE);
	if (ret)
		return ret;
	ret = config_resolve(cfg ? cfg : &none, &c);
	if (ret)
		return ret;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cfg = c;
	h->gen = swapio__fork_gen();
	h->op_size = sizeof(struct swapio_op) +
		     c.threads * sizeof(struct swapio_part);
	atomic_init(&h->efd, -1);
	ret = handle_sync_init(h);
	if (ret)
		goto err_free;
	ret = engine_attach(h);
	if (ret)
		goto err_destroy_sync;
	*out = h;
	return 0;

err_destroy_sync:
	pthread_cond_destroy(&h->done_cv);
	pthread_mutex_destroy(&h->lock);
err_free:
	free(h);
	return ret;
}

static void ops_free(struct swapio_op *op)
{
	struct swapio_op *next;

	for (; op; op = next) {
		next = op->next;
		free(op);
	}
}

/* In a child of fork() the handle is the parent's: leave it alone. */
void swapio_handle_destroy(swapio_handle *h)
{
	SWAPIO_KEEP_ERRNO;
	int efd;

	if (!h || swapio__forked(h->gen))
		return;
	swapio_wait_all(h, -1);
	if (h->ext_destroy)
		h->ext_destroy(h->ext);	/* ext.h */
	workers_stop(h, h->cfg.threads);
	swapio__fault_unwrap(h->engine);
	ops_free(h->live);
	ops_free(h->free_ops);
	efd = atomic_load(&h->efd);
	if (efd >= 0)
		close(efd);
	pthread_cond_destroy(&h->done_cv);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void swapio_handle_config(const swapio_handle *h, struct swapio_config *out)
{
	if (h && out)
		*out = h->cfg;
}

const char *swapio_handle_engine(const swapio_handle *h)
{
	return h && h->engine ? swapio_engine_name(h->cfg.engine) : "none";
}

const char *swapio_handle_engine_note(const swapio_handle *h)
{
	return h ? h->engine_note : "";
}

int swapio_handle_eventfd(swapio_handle *h)
{
	SWAPIO_KEEP_ERRNO;
	int efd;

	if (!h)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	pthread_mutex_lock(&h->lock);
	efd = atomic_load(&h->efd);
	if (efd < 0) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			efd = -errno;
		else
			atomic_store(&h->efd, efd);
	}
	pthread_mutex_unlock(&h->lock);
	return efd;
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */
/* ------------------------------------------------------------------ */

static struct swapio_op *op_get(swapio_handle *h)
{
	struct swapio_op *op;

	pthread_mutex_lock(&h->lock);
	op = h->free_ops;
	if (op)
		h->free_ops = op->next;
	pthread_mutex_unlock(&h->lock);
	if (!op)
		op = malloc(h->op_size);
	return op;
}

/* Everything an op needs checked before anything is taken for it. */
static int op_check(swapio_handle *h, swapio_file *f, bool write,
		    const void *buf, size_t len, uint64_t off)
{
	if (!h || !f || (!buf && len) || off > INT64_MAX ||
	    len > INT64_MAX - off || f->h != h)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	if (write ? !f->writable : !f->readable)
		return -EBADF;
	return write ? swapio__file_prepare_write(f, off, len) : 0;
}

/* A checked, initialised op with no parts yet, or -errno. */
static int op_new(swapio_handle *h, swapio_file *f, swapio_file *owned,
		  bool write, const void *buf, size_t len, uint64_t off,
		  struct swapio_op **out)
{
	struct swapio_op *op;
	int ret = op_check(h, f, write, buf, len, off);

	if (ret)
		return ret;
	op = op_get(h);
	if (!op)
		return -ENOMEM;
	op->h = h;
	op->f = f;
	op->owned = owned;
	op->write = write;
	op->waiters = 0;
	atomic_init(&op->done, false);
	atomic_init(&op->bytes, 0);
	atomic_init(&op->error, 0);
	op->result = 0;
	*out = op;
	return 0;
}

/*
 * Number the op and put it on the live and the running lists. A small op
 * that starts alone on the handle is one a caller typically waits for at
 * once (depth 1, latency bound): its waiter spins a while before it
 * sleeps, see swapio_op_wait().
 */
static void op_link(swapio_handle *h, struct swapio_op *op, size_t len)
{
	pthread_mutex_lock(&h->lock);
	op->spin = len <= SPIN_MAX_BYTES && h->inflight_ops == 0 &&
		   !(h->cfg.flags & SWAPIO_CFG_NO_SPIN);
	op->seq = h->next_seq++;
	op->prev = NULL;
	op->next = h->live;
	if (h->live)
		h->live->prev = op;
	h->live = op;
	op->run_next = NULL;
	op->run_prev = h->run_tail;
	if (h->run_tail)
		h->run_tail->run_next = op;
	else
		h->run_head = op;
	h->run_tail = op;
	if (h->inflight_ops++ == 0)
		h->busy_since_ns = swapio__now_ns();
	pthread_mutex_unlock(&h->lock);
}

/* An op over [off, off + len), or with a prefix over pre_len bytes more:
 * see swapio__submit_write_pre(). */
static int op_submit_pre(swapio_handle *h, swapio_file *f, swapio_file *owned,
			 bool write, void *pre, size_t pre_len, void *buf,
			 size_t len, uint64_t off, swapio_op **out)
{
	SWAPIO_KEEP_ERRNO;
	struct swapio_op *op;
	unsigned int start, nr_parts;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = op_new(h, f, owned, write, buf, pre_len + len, off, &op);
	if (ret)
		return ret;
	nr_parts = len ? swapio__split(h, op, buf, len, off + pre_len) : 0;
	op->parts[0].pre = pre;
	op->parts[0].pre_len = pre_len;
	op->nr_parts = nr_parts;
	atomic_init(&op->parts_left, nr_parts);
	op_link(h, op, pre_len + len);

	/* Once its last part is queued the op may finish and be reused by
	 * another thread: from then on only locals are read. */
	if (!nr_parts) {
		op_finish(op);
	} else {
		start = atomic_fetch_add_explicit(&h->rotor, 1,
						  memory_order_relaxed);
		for (unsigned int i = 0; i < nr_parts; i++)
			worker_enqueue(&h->workers[(start + i) %
						   h->cfg.threads],
				       &op->parts[i]);
	}
	*out = op;
	return 0;
}

static int op_submit(swapio_handle *h, swapio_file *f, swapio_file *owned,
		     bool write, void *buf, size_t len, uint64_t off,
		     swapio_op **out)
{
	return op_submit_pre(h, f, owned, write, NULL, 0, buf, len, off, out);
}

int swapio__submit_write_pre(swapio_handle *h, swapio_file *f,
			     const void *pre, size_t pre_len, const void *buf,
			     size_t len, uint64_t off, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;

	if (!op)
		return -EINVAL;
	*op = NULL;
	if (!len || !pre || !pre_len || len > SIZE_MAX - pre_len)
		return -EINVAL;
	if (f && f->direct && (pre_len % f->off_align ||
			       (uintptr_t)pre % f->mem_align ||
			       (off + pre_len) % f->off_align))
		return -EINVAL;
	/* Writes only read from the memory; the casts never lead to a
	 * store. */
	return op_submit_pre(h, f, NULL, true, (void *)pre, pre_len,
			     (void *)buf, len, off, op);
}

int swapio__op_begin(swapio_handle *h, swapio_file *f, swapio_file *owned,
		     bool write, const void *buf, size_t len, uint64_t off,
		     struct swapio_op **out)
{
	struct swapio_op *op;
	int ret;

	ret = op_new(h, f, owned, write, buf, len, off, &op);
	if (ret)
		return ret;
	op->nr_parts = 0;
	atomic_init(&op->parts_left, 0);
	op_link(h, op, SIZE_MAX);
	*out = op;
	return 0;
}

void swapio__op_end(struct swapio_op *op, ssize_t res)
{
	if (res < 0)
		op_set_error(op, (int)res);
	else
		atomic_store(&op->bytes, (uint64_t)res);
	op_finish(op);
}

void swapio__op_cancel(struct swapio_op *op)
{
	op->owned = NULL;	/* the caller closes it: submit failed */
	op_finish(op);
	swapio_op_free(op);
}

int swapio__path_open(swapio_handle *h, const char *path, bool write,
		      swapio_file **out)
{
	if (!h || !path)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	return swapio__file_open(h, path, write ?
				 SWAPIO_O_WRITE | SWAPIO_O_CREATE :
				 SWAPIO_O_READ, out);
}

int swapio__ext_get(swapio_handle *h, int (*make)(swapio_handle *h,
						   void **state),
		    void (*destroy)(void *state), void **out)
{
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->ext) {
		ret = make(h, &h->ext);
		if (!ret)
			h->ext_destroy = destroy;
	}
	*out = h->ext;
	pthread_mutex_unlock(&h->lock);
	return ret;
}

void *swapio__ext_peek(swapio_handle *h)
{
	void *ext;

	pthread_mutex_lock(&h->lock);
	ext = h->ext;
	pthread_mutex_unlock(&h->lock);
	return ext;
}

int swapio__ext_forked(const swapio_handle *h)
{
	return swapio__forked(h->gen) ? SWAPIO_EFORKED : 0;
}

int swapio_submit_read(swapio_handle *h, swapio_file *f, void *buf,
		       size_t len, uint64_t off, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	return op_submit(h, f, NULL, false, buf, len, off, op);
}

int swapio_submit_write(swapio_handle *h, swapio_file *f, const void *buf,
			size_t len, uint64_t off, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	/* Writes only read from @buf; the cast never leads to a store. */
	return op_submit(h, f, NULL, true, (void *)buf, len, off, op);
}

static int submit_path(swapio_handle *h, const char *path, bool write,
		       void *buf, size_t len, uint64_t off, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	swapio_file *f;
	int ret;

	if (!op)
		return -EINVAL;
	*op = NULL;
	if (!h || !path)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	ret = swapio__file_open(h, path, write ?
				SWAPIO_O_WRITE | SWAPIO_O_CREATE :
				SWAPIO_O_READ, &f);
	if (ret)
		return ret;
	ret = op_submit(h, f, f, write, buf, len, off, op);
	if (ret)
		swapio_file_close(f);
	return ret;
}

int swapio_submit_read_path(swapio_handle *h, const char *path, void *buf,
			    size_t len, uint64_t off, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	return submit_path(h, path, false, buf, len, off, op);
}

int swapio_submit_write_path(swapio_handle *h, const char *path,
			     const void *buf, size_t len, uint64_t off,
			     swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	return submit_path(h, path, true, (void *)buf, len, off, op);
}

/* Synchronous calls are an async op waited for at once. */
static ssize_t finish_sync(swapio_op *op)
{
	ssize_t res = swapio_op_wait(op, -1);

	swapio_op_free(op);
	return res;
}

ssize_t swapio_pread(swapio_handle *h, swapio_file *f, void *buf, size_t len,
		     uint64_t off)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op;
	int ret = swapio_submit_read(h, f, buf, len, off, &op);

	return ret ? ret : finish_sync(op);
}

ssize_t swapio_pwrite(swapio_handle *h, swapio_file *f, const void *buf,
		      size_t len, uint64_t off)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op;
	int ret = swapio_submit_write(h, f, buf, len, off, &op);

	return ret ? ret : finish_sync(op);
}

ssize_t swapio_pread_path(swapio_handle *h, const char *path, void *buf,
			  size_t len, uint64_t off)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op;
	int ret = swapio_submit_read_path(h, path, buf, len, off, &op);

	return ret ? ret : finish_sync(op);
}

ssize_t swapio_pwrite_path(swapio_handle *h, const char *path,
			   const void *buf, size_t len, uint64_t off)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op;
	int ret = swapio_submit_write_path(h, path, buf, len, off, &op);

	return ret ? ret : finish_sync(op);
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */
/* ------------------------------------------------------------------ */

static bool op_is_done(const swapio_op *op)
{
	return atomic_load_explicit(&op->done, memory_order_acquire);
}

/* Watching a lone small op (op_link()) saves its waiter a wake-up, which
 * costs about a third of a 4 KiB read's latency on a VM. */
static bool op_ready(const void *op)
{
	return op_is_done(op);
}

int swapio_op_done(const swapio_op *op)
{
	return op && op_is_done(op);
}

/* One sleep on h->done_cv, h->lock held. false once the deadline passed. */
static bool sleep_until(swapio_handle *h, int timeout_ms,
			const struct timespec *dl)
{
	if (timeout_ms == 0)
		return false;
	if (timeout_ms < 0) {
		pthread_cond_wait(&h->done_cv, &h->lock);
		return true;
	}
	return pthread_cond_timedwait(&h->done_cv, &h->lock, dl) != ETIMEDOUT;
}

int64_t swapio_op_wait(swapio_op *op, int timeout_ms)
{
	SWAPIO_KEEP_ERRNO;
	struct timespec dl;
	bool done;

	if (!op)
		return -EINVAL;
	if (swapio__forked(op->h->gen))
		return SWAPIO_EFORKED;
	if (op_is_done(op) || (op->spin && timeout_ms &&
			       spin_until(op_ready, op)))
		return op->result;
	if (timeout_ms > 0)
		dl = swapio__deadline(timeout_ms);
	pthread_mutex_lock(&op->h->lock);
	op->waiters++;
	while (!(done = op_is_done(op)) && sleep_until(op->h, timeout_ms, &dl))
		;
	op->waiters--;
	pthread_mutex_unlock(&op->h->lock);
	return done || op_is_done(op) ? op->result : -ETIMEDOUT;
}

static int first_done(swapio_op *const *ops, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (op_is_done(ops[i]))
			return (int)i;
	return -ETIMEDOUT;
}

int swapio_wait_any(swapio_op *const *ops, unsigned int n, int timeout_ms)
{
	SWAPIO_KEEP_ERRNO;
	swapio_handle *h;
	struct timespec dl;
	int idx;

	if (!ops || !n || n > INT32_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		if (!ops[i] || ops[i]->h != ops[0]->h)
			return -EINVAL;
	h = ops[0]->h;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	if (timeout_ms > 0)
		dl = swapio__deadline(timeout_ms);
	pthread_mutex_lock(&h->lock);
	h->any_waiters++;
	while ((idx = first_done(ops, n)) < 0 &&
	       sleep_until(h, timeout_ms, &dl))
		;
	h->any_waiters--;
	pthread_mutex_unlock(&h->lock);
	return idx >= 0 ? idx : first_done(ops, n);
}

/* Is any op numbered below @seq still running? h->lock held. */
static bool running_before(const swapio_handle *h, uint64_t seq)
{
	return h->run_head && h->run_head->seq < seq;
}

/*
 * The running list is in submission order, so its head is the oldest op
 * still running: the ops submitted before this call are all done once the
 * head is younger than the call, whatever is submitted meanwhile.
 */
int swapio_wait_all(swapio_handle *h, int timeout_ms)
{
	SWAPIO_KEEP_ERRNO;
	struct timespec dl;
	uint64_t seq;
	int ret;

	if (!h)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	if (timeout_ms > 0)
		dl = swapio__deadline(timeout_ms);
	pthread_mutex_lock(&h->lock);
	seq = h->next_seq;
	h->any_waiters++;
	while (running_before(h, seq) && sleep_until(h, timeout_ms, &dl))
		;
	h->any_waiters--;
	ret = running_before(h, seq) ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* In a child of fork() the op is the parent's: leave it alone. */
void swapio_op_free(swapio_op *op)
{
	SWAPIO_KEEP_ERRNO;
	swapio_handle *h;

	if (!op || swapio__forked(op->h->gen))
		return;
	h = op->h;
	swapio_op_wait(op, -1);
	pthread_mutex_lock(&h->lock);
	if (op->prev)
		op->prev->next = op->next;
	else
		h->live = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = h->free_ops;
	h->free_ops = op;
	pthread_mutex_unlock(&h->lock);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

#define LOAD(x)		atomic_load_explicit(&(x), memory_order_relaxed)
#define RESET(x)	atomic_store_explicit(&(x), 0, memory_order_relaxed)

static uint64_t lat_percentile(const uint64_t *hist, uint64_t total,
			       double pct)
{
	uint64_t want = (uint64_t)(pct * (double)total + 0.999999), seen = 0;

	for (unsigned int i = 0; i < SWAPIO_LAT_BUCKETS; i++) {
		seen += hist[i];
		if (hist[i] && seen >= want)
			return (lat_bucket_floor(i) + lat_bucket_floor(i + 1)) / 2;
	}
	return 0;
}

int64_t swapio__fault_injected(const swapio_handle *h)
{
	return h ? swapio__fault_count(h->engine) : -1;
}

void swapio_handle_stats(swapio_handle *h, struct swapio_stats *out)
{
	SWAPIO_KEEP_ERRNO;
	uint64_t hist[SWAPIO_LAT_BUCKETS] = { 0 };

	if (!h || !out)
		return;
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < h->cfg.threads; i++) {
		struct swapio_worker_stats *st = &h->workers[i].stats;

		out->bytes_read += LOAD(st->bytes_read);
		out->bytes_written += LOAD(st->bytes_written);
		out->requests += LOAD(st->requests);
		out->syscalls += LOAD(st->syscalls);
		out->registered += LOAD(st->registered);
		out->retries += LOAD(st->retries);
		out->bounced_bytes += LOAD(st->bounced);
		for (unsigned int b = 0; b < SWAPIO_LAT_BUCKETS; b++)
			hist[b] += LOAD(st->lat[b]);
	}
	for (unsigned int b = SWAPIO_LAT_BUCKETS; b-- > 0;)
		if (hist[b]) {
			out->lat_max_ns = lat_bucket_floor(b + 1);
			break;
		}
	out->lat_p50_ns = lat_percentile(hist, out->requests, 0.50);
	out->lat_p99_ns = lat_percentile(hist, out->requests, 0.99);

	pthread_mutex_lock(&h->lock);
	out->ops = h->ops_done;
	out->busy_ns = h->busy_ns;
	if (h->inflight_ops)
		out->busy_ns += swapio__now_ns() - h->busy_since_ns;
	pthread_mutex_unlock(&h->lock);
}

void swapio_handle_stats_reset(swapio_handle *h)
{
	SWAPIO_KEEP_ERRNO;
	if (!h)
		return;
	for (unsigned int i = 0; i < h->cfg.threads; i++) {
		struct swapio_worker_stats *st = &h->workers[i].stats;

		RESET(st->bytes_read);
		RESET(st->bytes_written);
		RESET(st->requests);
		RESET(st->syscalls);
		RESET(st->registered);
		RESET(st->retries);
		RESET(st->bounced);
		for (unsigned int b = 0; b < SWAPIO_LAT_BUCKETS; b++)
			RESET(st->lat[b]);
	}
	pthread_mutex_lock(&h->lock);
	h->ops_done = 0;
	h->busy_ns = 0;
	h->busy_since_ns = swapio__now_ns();
	pthread_mutex_unlock(&h->lock);
}
