/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the CUDA runtime and cuFile calls swapio makes, over host
 * memory, so that the device layer runs and is checked on machines
 * without a GPU. Tests load it as libswapio_cuda_standin.so through
 * SWAPIO_CUDA_LIBRARY (and SWAPIO_CUFILE_LIBRARY for the cuFile half).
 *
 * "Device" memory is page-aligned host memory from cudaMalloc(). Each
 * stream is a worker thread that runs its queue in order, so copies really
 * happen later than cudaMemcpyAsync() returns, and events complete when
 * the worker reaches them. The stand-in checks what a real device cannot
 * report: a host-to-device copy's source must not change between the call
 * and the copy
 * (else a staging buffer was reused before its event completed), and
 * counts copies from host memory that was never cudaHostRegister()ed.
 *
 * Knobs, from the environment at load and swapio_standin_set() after:
 * devices (number of devices, 0: none), copy_delay_us, fail_memcpy (the
 * Nth cudaMemcpyAsync from now fails), fail_register, fail_event_record
 * (the Nth from now), cufile_fail (the Nth cuFileRead/Write from now),
 * cufile_delay_us, cufile_driver_fail, copy_hold (while nonzero, streams
 * hold their copies back), cufile_open_delay_ms (cuFileDriverOpen()
 * stalls), cufile_compat (no nvidia-fs: its version reads 0.0),
 * cufile_refuse (the Nth cuFileHandleRegister from now fails),
 * cufile_fail_errno (the Nth cuFileRead/Write returns -1 with errno EIO),
 * cufile_register_delay_us (cuFileHandleRegister() is slow).
 * Environment names are SWAPIO_STANDIN_ and the knob in capitals.
 *
 * What real CUDA does that matters to swapio, and the stand-in models:
 * cuFile calls do not wait for stream work (a cuFile call on memory that
 * a queued copy still reads or writes is counted in cufile_races); a
 * current device (a context) per thread, none until the thread sets one;
 * a failed call stays the thread's last error until cudaGetLastError();
 * cudaPointerGetAttributes() over cudaMalloc()/cudaMallocManaged()
 * memory (copies naming a direction for managed memory are counted in
 * managed_explicit). Built with -DSTANDIN_DRIVER_ERROR=35 it is a runtime
 * on too old a driver: cudaGetDeviceCount() answers 35.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "gpu_abi.h"

#define API	__attribute__((visibility("default")))

enum {
	E_OK = 0, E_INVALID_VALUE = 1, E_NO_MEMORY = 2, E_NO_DEVICE = 100,
	E_INVALID_DEVICE = 101, E_NOT_READY = 600,
	E_INSUFFICIENT_DRIVER = 35,
};

/* ------------------------------------------------------------------ */
/* Knobs and counters                                                  */
/* ------------------------------------------------------------------ */

struct knob {
	const char	*name;
	atomic_long	v;
};

static struct knob knobs[] = {
	{ "devices", 1 }, { "copy_delay_us", 0 }, { "fail_memcpy", 0 },
	{ "fail_register", 0 }, { "fail_event_record", 0 },
	{ "cufile_fail", 0 }, { "cufile_delay_us", 0 },
	{ "cufile_driver_fail", 0 }, { "copy_hold", 0 },
	{ "cufile_open_delay_ms", 0 }, { "cufile_compat", 0 },
	{ "cufile_refuse", 0 }, { "cufile_fail_errno", 0 },
	{ "cufile_register_delay_us", 0 },
	/* Counters, read back by the tests. */
	{ "violations", 0 }, { "copies", 0 }, { "unpinned_copies", 0 },
	{ "registered", 0 }, { "cufile_calls", 0 }, { "waits", 0 },
	{ "event_syncs", 0 }, { "cufile_races", 0 }, { "driver_opens", 0 },
	{ "cufile_registers", 0 }, { "cufile_deregisters", 0 },
	{ "buf_registers", 0 }, { "stream_syncs", 0 },
	{ "managed_explicit", 0 }, { "count_calls", 0 },
};
#define NR_KNOBS	(sizeof(knobs) / sizeof(knobs[0]))

static atomic_long *knob(const char *name)
{
	for (size_t i = 0; i < NR_KNOBS; i++)
		if (!strcmp(knobs[i].name, name))
			return &knobs[i].v;
	return NULL;
}

#define K(name)	atomic_load(knob(name))

static __thread int cur_ctx = -1;	/* the thread's device; -1: none */
static __thread int last_err;

/* Also "current": the calling thread's device (-1: none), as a program
 * that set it with cudaSetDevice() or cleared it with cuCtxSetCurrent(). */
API int swapio_standin_set(const char *name, long v)
{
	atomic_long *k = knob(name);

	if (!strcmp(name, "current")) {
		cur_ctx = (int)v;
		return 0;
	}

	if (!k)
		return -1;
	atomic_store(k, v);
	return 0;
}

/*
 * A call that needs a context, on a thread with none, makes device 0's
 * primary context current there, as the real runtime does.
 */
static void bind(void)
{
	if (cur_ctx < 0)
		cur_ctx = 0;
}

/* A failed call: the thread's last error until cudaGetLastError(). */
static int err(int e)
{
	if (e)
		last_err = e;
	return e;
}

/* Also "current" (the calling thread's device, -1: none) and last_error. */
API long swapio_standin_get(const char *name)
{
	atomic_long *k = knob(name);

	if (!strcmp(name, "current"))
		return cur_ctx;
	if (!strcmp(name, "last_error"))
		return last_err;

	return k ? atomic_load(k) : -1;
}

__attribute__((constructor)) static void knobs_from_env(void)
{
	char env[64];
	const char *s;

	for (size_t i = 0; i < NR_KNOBS; i++) {
		snprintf(env, sizeof(env), "SWAPIO_STANDIN_%s", knobs[i].name);
		for (char *p = env; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		s = getenv(env);
		if (s)
			atomic_store(&knobs[i].v, atol(s));
	}
}

/* Counts a countdown knob down; true when it reaches its Nth call. */
static bool fire(const char *name)
{
	atomic_long *k = knob(name);
	long v = atomic_load(k);

	while (v > 0 && !atomic_compare_exchange_weak(k, &v, v - 1))
		;
	return v == 1;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	if (us > 0)
		nanosleep(&ts, NULL);
}

static uint64_t hash(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* ------------------------------------------------------------------ */
/* Devices, memory, registration                                       */
/* ------------------------------------------------------------------ */

API int cudaGetDeviceCount(int *n)
{
	atomic_fetch_add(knob("count_calls"), 1);
#ifdef STANDIN_DRIVER_ERROR
	*n = 0;
	return err(STANDIN_DRIVER_ERROR);
#endif
	*n = (int)K("devices");
	return *n > 0 ? E_OK : err(E_NO_DEVICE);
}

API int cudaGetDevice(int *dev)
{
	if (K("devices") <= 0)
		return err(E_NO_DEVICE);
	*dev = cur_ctx < 0 ? 0 : cur_ctx;
	return E_OK;
}

API int cudaSetDevice(int dev)
{
	if (K("devices") <= 0)
		return err(E_NO_DEVICE);
	if (dev < 0 || dev >= K("devices"))
		return err(E_INVALID_DEVICE);
	cur_ctx = dev;
	return E_OK;
}

API int cudaGetLastError(void)
{
	int e = last_err;

	last_err = 0;
	return e;
}

/* Contexts: one per device, made current per thread. */
static char contexts[64];

static unsigned int ctx_get(void **ctx)
{
	*ctx = cur_ctx < 0 ? NULL : &contexts[cur_ctx];
	return 0;
}

static unsigned int ctx_set(void *ctx)
{
	cur_ctx = ctx ? (int)((char *)ctx - contexts) : -1;
	return 0;
}

API int cudaGetDriverEntryPointByVersion(const char *sym, void **fn,
					 unsigned int version,
					 unsigned long long flags,
					 unsigned int *status)
{
	(void)version, (void)flags;
	*fn = NULL;
	if (!strcmp(sym, "cuCtxGetCurrent"))
		*fn = (void *)ctx_get;
	else if (!strcmp(sym, "cuCtxSetCurrent"))
		*fn = (void *)ctx_set;
	if (status)
		*status = *fn ? 0 : 1;	/* cudaDriverEntryPointSymbolNotFound */
	return E_OK;
}

/* Device allocations, for cudaPointerGetAttributes(). */
struct alloc {
	uintptr_t	lo, hi;
	int		device;
	bool		managed;
	struct alloc	*next;
};

static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alloc *allocs;

static int dev_malloc(void **p, size_t n, bool managed)
{
	size_t sz = (n + 4095) / 4096 * 4096;
	struct alloc *a = malloc(sizeof(*a));

	if (!sz)
		sz = 4096;
	*p = aligned_alloc(4096, sz);
	if (!*p || !a) {
		free(*p);
		free(a);
		return err(E_NO_MEMORY);
	}
	memset(*p, 0xa5, sz);
	a->lo = (uintptr_t)*p;
	a->hi = a->lo + sz;
	a->device = cur_ctx < 0 ? 0 : cur_ctx;
	a->managed = managed;
	pthread_mutex_lock(&alloc_lock);
	a->next = allocs;
	allocs = a;
	pthread_mutex_unlock(&alloc_lock);
	return E_OK;
}

API int cudaMalloc(void **p, size_t n)
{
	return dev_malloc(p, n, false);
}

API int cudaMallocManaged(void **p, size_t n, unsigned int flags)
{
	(void)flags;
	return dev_malloc(p, n, true);
}

API int cudaFree(void *p)
{
	struct alloc **pp, *a;

	pthread_mutex_lock(&alloc_lock);
	for (pp = &allocs; (a = *pp); pp = &a->next) {
		if (a->lo == (uintptr_t)p) {
			*pp = a->next;
			free(a);
			break;
		}
	}
	pthread_mutex_unlock(&alloc_lock);
	free(p);
	return E_OK;
}

/* The allocation holding @p: 0 none, 1 device, 2 managed; its device. */
static int alloc_find(const void *p, int *device)
{
	int kind = 0;

	pthread_mutex_lock(&alloc_lock);
	for (struct alloc *a = allocs; a && !kind; a = a->next) {
		if ((uintptr_t)p >= a->lo && (uintptr_t)p < a->hi) {
			kind = a->managed ? 2 : 1;
			*device = a->device;
		}
	}
	pthread_mutex_unlock(&alloc_lock);
	return kind;
}

API int cudaPointerGetAttributes(struct cu_ptr_attr *attr, const void *p)
{
	int device = -2, kind = alloc_find(p, &device);

	memset(attr, 0, sizeof(*attr));
	attr->device = device;
	attr->type = kind == 1 ? GPU_MEM_DEVICE : kind == 2 ? GPU_MEM_MANAGED :
		     GPU_MEM_UNREGISTERED;
	attr->device_ptr = kind ? (void *)p : NULL;
	return E_OK;
}

struct range {
	uintptr_t	lo, hi;
	struct range	*next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *regs;

API int cudaHostRegister(void *p, size_t n, unsigned int flags)
{
	struct range *r;

	bind();
	(void)flags;
	if (fire("fail_register") || K("fail_register") < 0)
		return err(E_NO_MEMORY);
	r = malloc(sizeof(*r));
	if (!r)
		return err(E_NO_MEMORY);
	r->lo = (uintptr_t)p;
	r->hi = (uintptr_t)p + n;
	pthread_mutex_lock(&reg_lock);
	r->next = regs;
	regs = r;
	pthread_mutex_unlock(&reg_lock);
	atomic_fetch_add(knob("registered"), 1);
	return E_OK;
}

API int cudaHostUnregister(void *p)
{
	struct range **pp, *r;
	int ret = E_INVALID_VALUE;

	bind();
	pthread_mutex_lock(&reg_lock);
	for (pp = &regs; (r = *pp); pp = &r->next) {
		if (r->lo == (uintptr_t)p) {
			*pp = r->next;
			free(r);
			ret = E_OK;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (!ret)
		atomic_fetch_sub(knob("registered"), 1);
	return ret;
}

static bool is_registered(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + n;
	bool found = false;

	pthread_mutex_lock(&reg_lock);
	for (struct range *r = regs; r && !found; r = r->next)
		found = lo >= r->lo && hi <= r->hi;
	pthread_mutex_unlock(&reg_lock);
	return found;
}

API const char *cudaGetErrorString(int e)
{
	switch (e) {
	case E_OK: return "no error";
	case E_INVALID_VALUE: return "invalid argument (stand-in)";
	case E_NO_MEMORY: return "out of memory (stand-in)";
	case E_NO_DEVICE: return "no CUDA-capable device is detected "
				 "(stand-in)";
	case E_INVALID_DEVICE: return "invalid device ordinal (stand-in)";
	case E_NOT_READY: return "device not ready";
	case E_INSUFFICIENT_DRIVER: return "CUDA driver version is "
					   "insufficient for CUDA runtime "
					   "version";
	}
	return "unrecognized error code";
}

/* ------------------------------------------------------------------ */
/* Events and streams                                                  */
/* ------------------------------------------------------------------ */

/*
 * An event may be destroyed while a stream still holds a record or a wait
 * of it (CUDA allows that): each queued command holds a reference.
 */
struct event {
	atomic_int	refs;
	pthread_mutex_t	lock;
	pthread_cond_t	cv;
	uint64_t	recorded;	/* generation of the last record */
	uint64_t	completed;	/* generation the stream reached */
};

enum { CMD_COPY, CMD_RECORD, CMD_WAIT };

struct cmd {
	int		type;
	struct cmd	*next;
	void		*dst;
	const void	*src;
	size_t		n;
	bool		check;		/* host source: must not change */
	uint64_t	src_hash;
	struct event	*ev;
	uint64_t	gen;
};

struct stream {
	pthread_mutex_t	lock;
	pthread_cond_t	cv;
	pthread_t	thread;
	struct cmd	*head, *tail;
	bool		stop;
	unsigned int	busy;	/* commands queued or running */
	struct cmd	*running;	/* dequeued, not yet finished */
	struct stream	*next;		/* every stream, for cuFile's check */
};

static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream *streams;

static bool cmd_overlaps(const struct cmd *c, uintptr_t lo, uintptr_t hi)
{
	uintptr_t d = (uintptr_t)c->dst, s = (uintptr_t)c->src;

	return c->type == CMD_COPY && ((d < hi && d + c->n > lo) ||
				       (s < hi && s + c->n > lo));
}

/* Does a copy queued or running on any stream touch [p, p + n)? */
static bool stream_work_on(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + n;
	bool found = false;

	pthread_mutex_lock(&streams_lock);
	for (struct stream *s = streams; s && !found; s = s->next) {
		pthread_mutex_lock(&s->lock);
		found = s->running && cmd_overlaps(s->running, lo, hi);
		for (struct cmd *c = s->head; c && !found; c = c->next)
			found = cmd_overlaps(c, lo, hi);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&streams_lock);
	return found;
}

API int cudaEventCreateWithFlags(struct event **out, unsigned int flags)
{
	struct event *e = calloc(1, sizeof(*e));

	bind();
	(void)flags;
	if (!e)
		return err(E_NO_MEMORY);
	atomic_init(&e->refs, 1);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cv, NULL);
	*out = e;
	return E_OK;
}

API int cudaEventCreate(struct event **out)
{
	return cudaEventCreateWithFlags(out, 0);
}

static void event_put(struct event *e)
{
	if (atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

API int cudaEventDestroy(struct event *e)
{
	bind();
	if (!e)
		return err(E_INVALID_VALUE);
	event_put(e);
	return E_OK;
}

static void event_wait_gen(struct event *e, uint64_t gen)
{
	pthread_mutex_lock(&e->lock);
	while (e->completed < gen)
		pthread_cond_wait(&e->cv, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

API int cudaEventQuery(struct event *e)
{
	int ret;

	pthread_mutex_lock(&e->lock);
	ret = e->completed >= e->recorded ? E_OK : E_NOT_READY;
	pthread_mutex_unlock(&e->lock);
	return ret;
}

API int cudaEventSynchronize(struct event *e)
{
	uint64_t gen;

	bind();
	atomic_fetch_add(knob("event_syncs"), 1);
	pthread_mutex_lock(&e->lock);
	gen = e->recorded;
	pthread_mutex_unlock(&e->lock);
	event_wait_gen(e, gen);
	return E_OK;
}

static void run_copy(const struct cmd *c)
{
	sleep_us(K("copy_delay_us"));
	while (K("copy_hold"))
		sleep_us(100);
	/* The staging source changed since the call: reused too early. */
	if (c->check && hash(c->src, c->n) != c->src_hash)
		atomic_fetch_add(knob("violations"), 1);
	memcpy(c->dst, c->src, c->n);
}

static void run_cmd(struct cmd *c)
{
	switch (c->type) {
	case CMD_COPY:
		run_copy(c);
		break;
	case CMD_RECORD:
		pthread_mutex_lock(&c->ev->lock);
		if (c->gen > c->ev->completed)
			c->ev->completed = c->gen;
		pthread_cond_broadcast(&c->ev->cv);
		pthread_mutex_unlock(&c->ev->lock);
		break;
	case CMD_WAIT:
		event_wait_gen(c->ev, c->gen);
		break;
	}
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct cmd *c;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv, &s->lock);
		c = s->head;
		if (!c) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		s->running = c;
		pthread_mutex_unlock(&s->lock);
		run_cmd(c);
		pthread_mutex_lock(&s->lock);
		s->running = NULL;
		pthread_mutex_unlock(&s->lock);
		if (c->ev)
			event_put(c->ev);
		free(c);
		pthread_mutex_lock(&s->lock);
		s->busy--;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->lock);
	}
}

static struct stream *stream_new(void)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&s->thread, NULL, stream_main, s)) {
		free(s);
		return NULL;
	}
	pthread_mutex_lock(&streams_lock);
	s->next = streams;
	streams = s;
	pthread_mutex_unlock(&streams_lock);
	return s;
}

static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;
static struct stream *legacy;	/* stream 0, never destroyed */

static void legacy_init(void)
{
	legacy = stream_new();
}

static struct stream *stream_of(struct stream *s)
{
	if (s)
		return s;
	pthread_once(&legacy_once, legacy_init);
	return legacy;
}

API int cudaStreamCreateWithFlags(struct stream **out, unsigned int flags)
{
	bind();
	(void)flags;
	*out = stream_new();
	return *out ? E_OK : E_NO_MEMORY;
}

API int cudaStreamCreate(struct stream **out)
{
	return cudaStreamCreateWithFlags(out, 0);
}

API int cudaStreamSynchronize(struct stream *s)
{
	bind();
	atomic_fetch_add(knob("stream_syncs"), 1);
	s = stream_of(s);
	pthread_mutex_lock(&s->lock);
	while (s->busy)
		pthread_cond_wait(&s->cv, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return E_OK;
}

API int cudaStreamDestroy(struct stream *s)
{
	bind();
	if (!s)
		return err(E_INVALID_VALUE);
	cudaStreamSynchronize(s);
	pthread_mutex_lock(&streams_lock);
	for (struct stream **pp = &streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&streams_lock);
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return E_OK;
}

static int enqueue(struct stream *s, struct cmd *c)
{
	s = stream_of(s);
	pthread_mutex_lock(&s->lock);
	c->next = NULL;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->busy++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	return E_OK;
}

API int cudaEventRecord(struct event *e, struct stream *s)
{
	struct cmd *c;

	bind();
	if (!e)
		return err(E_INVALID_VALUE);
	if (fire("fail_event_record"))
		return err(E_INVALID_VALUE);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err(E_NO_MEMORY);
	c->type = CMD_RECORD;
	c->ev = e;
	atomic_fetch_add(&e->refs, 1);
	pthread_mutex_lock(&e->lock);
	c->gen = ++e->recorded;
	pthread_mutex_unlock(&e->lock);
	return enqueue(s, c);
}

API int cudaStreamWaitEvent(struct stream *s, struct event *e,
			    unsigned int flags)
{
	struct cmd *c = calloc(1, sizeof(*c));

	bind();
	(void)flags;
	if (!c)
		return err(E_NO_MEMORY);
	atomic_fetch_add(knob("waits"), 1);
	c->type = CMD_WAIT;
	c->ev = e;
	atomic_fetch_add(&e->refs, 1);
	pthread_mutex_lock(&e->lock);
	c->gen = e->recorded;
	pthread_mutex_unlock(&e->lock);
	return enqueue(s, c);
}

/*
 * kind: 1 host to device, 2 device to host, 4 inferred from the pointers
 * (cudaMemcpyDefault). The host side is checked for registration, and a
 * host source for changes before the copy runs.
 */
API int cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind,
			struct stream *s)
{
	int dev, src_kind = alloc_find(src, &dev);
	int dst_kind = alloc_find(dst, &dev);
	bool h2d;
	struct cmd *c;

	bind();
	if (fire("fail_memcpy"))
		return err(E_INVALID_VALUE);
	if (kind != 1 && kind != 2 && kind != 4)
		return err(E_INVALID_VALUE);
	if ((src_kind == 2 || dst_kind == 2) && kind != 4)
		atomic_fetch_add(knob("managed_explicit"), 1);
	h2d = kind == 1 || (kind == 4 && !src_kind);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err(E_NO_MEMORY);
	atomic_fetch_add(knob("copies"), 1);
	if (!is_registered(h2d ? src : dst, n))
		atomic_fetch_add(knob("unpinned_copies"), 1);
	c->type = CMD_COPY;
	c->dst = dst;
	c->src = src;
	c->n = n;
	/* A device source may still be written by work queued before the
	 * copy; a host source is the caller's to leave alone from now. */
	c->check = h2d;
	if (c->check)
		c->src_hash = hash(src, n);
	return enqueue(s, c);
}

/* ------------------------------------------------------------------ */
/* cuFile                                                              */
/* ------------------------------------------------------------------ */

struct cf_handle {
	int fd;
};

API struct cufile_err cuFileDriverOpen(void)
{
	struct cufile_err e = { K("cufile_driver_fail") ? 5001 : 0, 0 };

	atomic_fetch_add(knob("driver_opens"), 1);
	sleep_us(K("cufile_open_delay_ms") * 1000);
	return e;
}

API struct cufile_err cuFileDriverGetProperties(struct cufile_props *p)
{
	struct cufile_err e = { 0, 0 };

	memset(p, 0, sizeof(*p));
	if (!K("cufile_compat")) {
		p->nvfs.major_version = 2;
		p->nvfs.minor_version = 17;
	}
	return e;
}

API struct cufile_err cuFileHandleRegister(struct cf_handle **fh,
					   struct cufile_descr *d)
{
	struct cufile_err e = { 0, 0 };

	atomic_fetch_add(knob("cufile_registers"), 1);
	sleep_us(K("cufile_register_delay_us"));
	if (fire("cufile_refuse")) {
		e.err = 5030;	/* CU_FILE_IO_NOT_SUPPORTED */
		return e;
	}
	*fh = malloc(sizeof(**fh));
	if (!*fh || d->type != 1) {
		free(*fh);
		e.err = 5002;
		return e;
	}
	(*fh)->fd = d->handle.fd;
	return e;
}

API void cuFileHandleDeregister(struct cf_handle *fh)
{
	atomic_fetch_add(knob("cufile_deregisters"), 1);
	free(fh);
}

API struct cufile_err cuFileBufRegister(const void *p, size_t n, int flags)
{
	struct cufile_err e = { 0, 0 };

	(void)p, (void)n, (void)flags;
	atomic_fetch_add(knob("buf_registers"), 1);
	return e;
}

API struct cufile_err cuFileBufDeregister(const void *p)
{
	struct cufile_err e = { 0, 0 };

	(void)p;
	return e;
}

static ssize_t cf_io(struct cf_handle *fh, void *p, size_t n, off_t foff,
		     off_t poff, bool write)
{
	ssize_t r;

	atomic_fetch_add(knob("cufile_calls"), 1);
	/* Outside every stream: copies still queued on this memory race. */
	if (stream_work_on((char *)p + poff, n))
		atomic_fetch_add(knob("cufile_races"), 1);
	sleep_us(K("cufile_delay_us"));
	if (fire("cufile_fail") || K("cufile_fail") < 0)
		return -5011;	/* a CUfileOpError, negated */
	if (fire("cufile_fail_errno")) {
		errno = EIO;
		return -1;
	}
	if (write)
		r = pwrite(fh->fd, (char *)p + poff, n, foff);
	else
		r = pread(fh->fd, (char *)p + poff, n, foff);
	return r < 0 ? -1 : r;
}

API ssize_t cuFileRead(struct cf_handle *fh, void *p, size_t n, off_t foff,
		       off_t poff)
{
	return cf_io(fh, p, n, foff, poff, false);
}

API ssize_t cuFileWrite(struct cf_handle *fh, const void *p, size_t n,
			off_t foff, off_t poff)
{
	return cf_io(fh, (void *)p, n, foff, poff, true);
}
