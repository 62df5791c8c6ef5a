/* SPDX-License-Identifier: MIT */
/*
 * Device memory: CUDA buffers to files and back, through pinned staging
 * buffers or GPUDirect Storage (cuFile). Neither CUDA nor cuFile is linked
 * or included: gpu_load.c loads both with dlopen() (the runtime at the
 * first device call, cuFile only for an op that may use GDS), so a machine
 * without them builds and runs swapio, and gets SWAPIO_ENOCUDA from the
 * device calls alone.
 *
 * Each handle that makes a device call gets one struct swapio_gpu: a
 * driver thread, a queue of jobs (one per device op, run in submission
 * order), and per device ordinal a stream of swapio's own with
 * GPU_SLOTS staging buffers, each registered with cudaHostRegister() once
 * and paired with an event. The driver thread runs a job's chunks as a
 * pipeline (see stage_write() and stage_read()), submitting the file side
 * as ordinary ops on the same handle, so the engines and workers are
 * those of host transfers.
 *
 * The one rule of reuse: a staging buffer is handed to a copy only once
 * the file op that used it has completed, and to a file op only once the
 * event recorded after its last copy has completed.
 *
 * cuFile calls are outside every stream: before a job that may use them,
 * the driver thread waits on the host for the caller's event and for
 * swapio's own stream (where a DLPack producer queued its wait), and a
 * cuFile call returns only once its data has moved.
 *
 * Locks: the handle's (creating its slot, ext.h), then g->lock (the job queue, the
 * devices, the note, the statistics, each file's cuFile state). Neither
 * is held across a transfer.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext.h"
#include "gpu.h"
#include "gpu_load.h"
#include "util.h"

#define GPU_SLOTS	4
#define GPU_DEF_CHUNK	(8u << 20)
#define GPU_MAX_CHUNK	(1ull << 30)
#define GDS_ALIGN	4096u

#define rt_cu	(swapio__cuda.cu)

struct slot {
	unsigned char	*buf;		/* chunk bytes, page-aligned */
	bool		pinned;		/* cudaHostRegister() succeeded */
	cu_event	ev;		/* recorded after its last copy */
	bool		copying;	/* ev not yet synchronised */
	swapio_op	*op;		/* file op on buf, or NULL */
	size_t		len;		/* that op's length */
};

struct gpu_dev {
	int		device;
	cu_stream	stream;
	struct slot	slot[GPU_SLOTS];
	int		path[2];	/* [write]: SWAPIO_GPU_*; AUTO: unmeasured */
};

/* One device op, owned by the driver thread once queued. */
struct job {
	struct job	*next;
	struct swapio_op *op;
	swapio_file	*f;
	struct gpu_dev	*d;
	unsigned char	*dev;
	size_t		len;
	uint64_t	off;
	bool		write;
	bool		managed;	/* cudaMallocManaged() memory */
	cu_event	ready;	/* the caller's stream at submission, or NULL */
};

struct swapio_gpu {
	swapio_handle		*h;
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	pthread_t		thread;
	bool			started;
	bool			stop;
	enum cufile_state	cufile;		/* as last seen, for the note */
	unsigned int		path_cfg;	/* SWAPIO_GPU_* asked for */
	size_t			chunk;		/* staging buffer size */
	struct job		*head, *tail;
	struct gpu_dev		*devs[SWAPIO_DEV_MAX];
	struct swapio__gpu_stats stats;
	char			note[512];
};

/* The cuFile table, once cuFile has opened (set by the driver threads). */
static const struct cufile_api *_Atomic cf_api;

/* ------------------------------------------------------------------ */
/* Notes and CUDA errors                                               */
/* ------------------------------------------------------------------ */

/* Where the clause @c (@n bytes) sits in @note, or NULL. */
static char *clause_find(char *note, const char *c, size_t n)
{
	char *p = note, *end;

	while (*p) {
		end = strstr(p, "; ");
		if ((size_t)((end ? end : p + strlen(p)) - p) == n &&
		    !memcmp(p, c, n))
			return p;
		if (!end)
			return NULL;
		p = end + 2;
	}
	return NULL;
}

/* Drops the clause at @p (and the separator after or before it). */
static void clause_drop(char *note, char *p)
{
	char *end = strstr(p, "; ");

	if (end)
		memmove(p, end + 2, strlen(end + 2) + 1);
	else if (p > note)
		p[-2] = '\0';
	else
		*p = '\0';
}

/*
 * Adds a clause to the note, newest last: a clause already there moves to
 * the end instead of repeating, and the oldest go where room runs out.
 */
static void __attribute__((format(printf, 2, 3)))
note_add(struct swapio_gpu *g, const char *fmt, ...)
{
	char c[sizeof(g->note)], *p;
	size_t n, used;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c, sizeof(c), fmt, ap);
	va_end(ap);
	n = strlen(c);
	pthread_mutex_lock(&g->lock);
	p = clause_find(g->note, c, n);
	if (p)
		clause_drop(g->note, p);
	while ((used = strlen(g->note)) && used + 2 + n >= sizeof(g->note))
		clause_drop(g->note, g->note);
	if (used)
		memcpy(g->note + used, "; ", 3), used += 2;
	snprintf(g->note + used, sizeof(g->note) - used, "%s", c);
	pthread_mutex_unlock(&g->lock);
}

/*
 * 0, or SWAPIO_ECUDA with the call and CUDA's message in the note. The
 * error is taken off the thread (cudaGetLastError()), so that it is not
 * reported again, against unrelated work, by the caller's next CUDA call.
 */
static int cu_check(struct swapio_gpu *g, cu_err e, const char *call)
{
	const char *msg;

	if (e == GPU_SUCCESS)
		return 0;
	rt_cu.GetLastError();
	msg = rt_cu.GetErrorString(e);
	note_add(g, "%s: %s (%u)", call, msg ? msg : "unknown error", e);
	return SWAPIO_ECUDA;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static int chunk_from_env(size_t *chunk)
{
	const char *s = swapio__env("SWAPIO_GPU_CHUNK");
	unsigned long long v;
	char *end;

	*chunk = GPU_DEF_CHUNK;
	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-' || v < 4096 || v > GPU_MAX_CHUNK ||
	    v % 4096)
		return swapio__detail(-EINVAL, "SWAPIO_GPU_CHUNK='%s': not a "
				      "multiple of 4096 from 4096 to %llu", s,
				      GPU_MAX_CHUNK);
	*chunk = (size_t)v;
	return 0;
}

static int path_from(const swapio_handle *h, unsigned int *path)
{
	const char *s = swapio__env("SWAPIO_GPU_PATH");
	struct swapio_config cfg;

	swapio_handle_config(h, &cfg);
	*path = cfg.gpu_path;
	if (!s || !*s)
		return 0;
	if (!strcmp(s, "staging"))
		*path = SWAPIO_GPU_STAGING;
	else if (!strcmp(s, "gds"))
		*path = SWAPIO_GPU_GDS;
	else if (!strcmp(s, "auto"))
		*path = SWAPIO_GPU_AUTO;
	else
		return swapio__detail(-EINVAL, "SWAPIO_GPU_PATH='%s': not "
				      "auto, staging or gds", s);
	return 0;
}

static void *gpu_main(void *arg);

/* The handle's device layer; its lock held. 0, -EINVAL, -ENOMEM. */
static int gpu_new(swapio_handle *h, void **out)
{
	struct swapio_gpu *g;
	unsigned int path;
	size_t chunk;
	int ret;

	ret = chunk_from_env(&chunk);
	if (!ret)
		ret = path_from(h, &path);
	if (ret)
		return ret;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->h = h;
	g->chunk = chunk;
	g->path_cfg = path;
	if (pthread_mutex_init(&g->lock, NULL))
		goto err_free;
	if (pthread_cond_init(&g->cv, NULL))
		goto err_lock;
	/* What loading found (why no runtime, or which one): said once. */
	snprintf(g->note, sizeof(g->note), "%s", swapio__cuda.why);
	if (swapio__cuda.ok) {
		if (pthread_create(&g->thread, NULL, gpu_main, g))
			goto err_cv;
		g->started = true;
	}
	*out = g;
	return 0;

err_cv:
	pthread_cond_destroy(&g->cv);
err_lock:
	pthread_mutex_destroy(&g->lock);
err_free:
	free(g);
	return -ENOMEM;
}

static void gpu_destroy(void *state);

/* The handle's device layer, made on first use. */
static int gpu_get(swapio_handle *h, struct swapio_gpu **out)
{
	void *state;
	int ret;

	swapio__cuda_load();
	ret = swapio__ext_get(h, gpu_new, gpu_destroy, &state);
	*out = state;
	if (ret)
		return ret;
	return swapio__cuda.ok ? 0 : SWAPIO_ENOCUDA;
}

static void dev_free(struct gpu_dev *d, size_t chunk)
{
	struct slot *s;

	if (!d)
		return;
	for (unsigned int i = 0; i < GPU_SLOTS; i++) {
		s = &d->slot[i];
		assert(!s->op);
		if (s->ev)
			rt_cu.EventDestroy(s->ev);
		if (s->pinned)
			rt_cu.HostUnregister(s->buf);
		swapio_buf_free(s->buf, chunk);
	}
	if (d->stream)
		rt_cu.StreamDestroy(d->stream);
	free(d);
}

static int slot_init(struct swapio_gpu *g, struct slot *s, bool *pin_failed)
{
	int ret;

	ret = swapio_buf_alloc(g->chunk, SWAPIO_BUF_HUGE, (void **)&s->buf);
	if (ret)
		return ret;
	ret = cu_check(g, rt_cu.EventCreateWithFlags(&s->ev,
						     GPU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	/* Pinned once, for the device's life: copies from it run async. */
	if (!*pin_failed &&
	    cu_check(g, rt_cu.HostRegister(s->buf, g->chunk, 0),
		     "cudaHostRegister"))
		*pin_failed = true;
	s->pinned = !*pin_failed;
	return 0;
}

/* Make device @device's stream and staging; g->lock held. */
static int dev_new(struct swapio_gpu *g, int device, struct gpu_dev **out)
{
	struct gpu_dev *d = calloc(1, sizeof(*d));
	bool pin_failed = false;
	int ret;

	if (!d)
		return -ENOMEM;
	d->device = device;
	d->path[0] = d->path[1] = (int)g->path_cfg;
	ret = cu_check(g, rt_cu.StreamCreateWithFlags(&d->stream,
						      GPU_STREAM_NON_BLOCKING),
		       "cudaStreamCreateWithFlags");
	for (unsigned int i = 0; !ret && i < GPU_SLOTS; i++)
		ret = slot_init(g, &d->slot[i], &pin_failed);
	if (ret) {
		dev_free(d, g->chunk);
		return ret;
	}
	if (pin_failed)
		note_add(g, "staging left unpinned: copies will not overlap");
	*out = d;
	return 0;
}

enum { SAVED_NOTHING, SAVED_CTX, SAVED_DEVICE };

/*
 * Make @device current on this thread, saving in @sv what to give back.
 * Where the driver's context calls are reachable, the thread's context is
 * saved and restored as it was, NULL included: a thread that never chose
 * a device keeps none, where cudaSetDevice(0) would make a context on
 * GPU 0 that it never asked for.
 */
static int dev_enter(struct swapio_gpu *g, int device,
		     struct swapio_dev_saved *sv)
{
	bool ctx_api = rt_cu.CtxGetCurrent != NULL;
	cu_ctx ctx = NULL;
	int old, ret;

	memset(sv, 0, sizeof(*sv));
	ret = cu_check(g, rt_cu.GetDevice(&old), "cudaGetDevice");
	if (ret)
		return ret;
	if (ctx_api && rt_cu.CtxGetCurrent(&ctx) != GPU_SUCCESS)
		ctx_api = false;
	if (old == device && (ctx || !ctx_api))
		return 0;
	ret = cu_check(g, rt_cu.SetDevice(device), "cudaSetDevice");
	if (ret)
		return ret;
	sv->ctx = ctx;
	sv->device = old;
	sv->how = ctx_api ? SAVED_CTX : SAVED_DEVICE;
	return 0;
}

static void dev_leave(const struct swapio_dev_saved *sv)
{
	if (sv->how == SAVED_CTX)
		rt_cu.CtxSetCurrent((cu_ctx)sv->ctx);
	else if (sv->how == SAVED_DEVICE)
		rt_cu.SetDevice(sv->device);
}

/* Run @fn(g, device, arg) with @device current on this thread. */
static int on_device(struct swapio_gpu *g, int device,
		     int (*fn)(struct swapio_gpu *, int, void *), void *arg)
{
	struct swapio_dev_saved sv;
	int ret;

	ret = dev_enter(g, device, &sv);
	if (ret)
		return ret;
	ret = fn(g, device, arg);
	dev_leave(&sv);
	return ret;
}

static int dev_get_here(struct swapio_gpu *g, int device, void *arg)
{
	struct gpu_dev **out = arg;
	int ret = 0;

	pthread_mutex_lock(&g->lock);
	if (!g->devs[device]) {
		/* Notes take g->lock: drop it while CUDA is set up. */
		pthread_mutex_unlock(&g->lock);
		ret = dev_new(g, device, out);
		pthread_mutex_lock(&g->lock);
		if (!ret && g->devs[device]) {	/* another thread won */
			pthread_mutex_unlock(&g->lock);
			dev_free(*out, g->chunk);
			pthread_mutex_lock(&g->lock);
		} else if (!ret) {
			g->devs[device] = *out;
		}
	}
	*out = g->devs[device];
	pthread_mutex_unlock(&g->lock);
	return ret;
}

static int dev_get(swapio_handle *h, int device, struct swapio_gpu **g,
		   struct gpu_dev **d)
{
	int ret;

	if (!h || device < 0 || device >= SWAPIO_DEV_MAX)
		return -EINVAL;
	ret = swapio__ext_forked(h);
	if (ret)
		return ret;
	ret = gpu_get(h, g);
	if (ret)
		return ret;
	return on_device(*g, device, dev_get_here, d);
}

/* The slot's destroy callback: nothing of @state in flight. */
static void gpu_destroy(void *state)
{
	struct swapio_gpu *g = state;
	struct swapio_dev_saved sv;

	if (!g)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->lock);
		g->stop = true;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	assert(!g->head);
	for (int i = 0; i < SWAPIO_DEV_MAX; i++) {
		if (!g->devs[i])
			continue;
		/* On its device, then the caller's thread as it was. */
		if (dev_enter(g, i, &sv)) {
			dev_free(g->devs[i], g->chunk);
			continue;
		}
		dev_free(g->devs[i], g->chunk);
		dev_leave(&sv);
	}
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* ------------------------------------------------------------------ */
/* Staging                                                             */
/* ------------------------------------------------------------------ */

/* Wait for the file op on @s; its result, 0 if none. */
static ssize_t slot_drain(struct slot *s)
{
	ssize_t res;

	if (!s->op)
		return 0;
	res = swapio_op_wait(s->op, -1);
	swapio_op_free(s->op);
	s->op = NULL;
	return res;
}

static int slot_sync(struct swapio_gpu *g, struct slot *s)
{
	if (!s->copying)
		return 0;
	s->copying = false;
	return cu_check(g, rt_cu.EventSynchronize(s->ev),
			"cudaEventSynchronize");
}

/* Is a file op of this job other than @self's still running? */
static bool file_busy(const struct gpu_dev *d, const struct slot *self)
{
	for (unsigned int i = 0; i < GPU_SLOTS; i++)
		if (&d->slot[i] != self && d->slot[i].op &&
		    !swapio_op_done(d->slot[i].op))
			return true;
	return false;
}

static void count_copy(struct swapio_gpu *g, bool overlapped, size_t n)
{
	pthread_mutex_lock(&g->lock);
	g->stats.copies++;
	g->stats.overlapped += overlapped;
	g->stats.staged_bytes += n;
	pthread_mutex_unlock(&g->lock);
}

static int copy_in(struct swapio_gpu *g, struct gpu_dev *d, struct slot *s,
		   const void *src, size_t n, cu_memcpy_kind kind, void *dst)
{
	int ret;

	assert(!s->copying);
	count_copy(g, file_busy(d, s), n);
	ret = cu_check(g, rt_cu.MemcpyAsync(dst, src, n, kind, d->stream),
		       "cudaMemcpyAsync");
	if (!ret)
		ret = cu_check(g, rt_cu.EventRecord(s->ev, d->stream),
			       "cudaEventRecord");
	s->copying = !ret;
	return ret;
}

static void first_err(ssize_t *ret, ssize_t res)
{
	if (res < 0 && *ret >= 0)
		*ret = res;
}

/*
 * Device to file: the copy of chunk i+1 runs while chunk i is written. A
 * slot is copied into only after its last write completed (slot_drain),
 * and written from only after its copy's event completed (slot_sync).
 */
static ssize_t stage_write(struct swapio_gpu *g, struct gpu_dev *d,
			   swapio_file *f, const unsigned char *dev,
			   size_t len, uint64_t off, cu_memcpy_kind kind)
{
	size_t c = g->chunk, n = (len + c - 1) / c;
	ssize_t ret = 0;
	struct slot *s;
	size_t i;
	int sub;

	for (i = 0; i <= n && ret >= 0; i++) {
		if (i < n) {
			s = &d->slot[i % GPU_SLOTS];
			first_err(&ret, slot_drain(s));
			s->len = SWAPIO_MIN(c, len - i * c);
			if (ret >= 0)
				first_err(&ret, copy_in(g, d, s, dev + i * c,
							s->len, kind, s->buf));
		}
		if (i == 0 || ret < 0)
			continue;
		s = &d->slot[(i - 1) % GPU_SLOTS];
		first_err(&ret, slot_sync(g, s));
		if (ret < 0)
			break;
		sub = swapio_submit_write(g->h, f, s->buf, s->len,
					  off + (i - 1) * c, &s->op);
		first_err(&ret, sub);
	}
	for (i = 0; i < GPU_SLOTS; i++) {
		first_err(&ret, slot_sync(g, &d->slot[i]));
		first_err(&ret, slot_drain(&d->slot[i]));
	}
	return ret < 0 ? ret : (ssize_t)len;
}

static int read_chunk(struct swapio_gpu *g, struct slot *s, swapio_file *f,
		      size_t len, uint64_t off, size_t i)
{
	size_t c = g->chunk;

	s->len = SWAPIO_MIN(c, len - i * c);
	return swapio_submit_read(g->h, f, s->buf, s->len, off + i * c,
				  &s->op);
}

/*
 * File to device: GPU_SLOTS chunks are read ahead; chunk i is copied up
 * while the next are read. A slot is read into again only after the
 * event of its copy completed: slot i-1 is refilled once chunk i's copy
 * is queued, so at most one copy is waited for at a time.
 */
static ssize_t stage_read(struct swapio_gpu *g, struct gpu_dev *d,
			  swapio_file *f, unsigned char *dev, size_t len,
			  uint64_t off, cu_memcpy_kind kind)
{
	size_t c = g->chunk, n = (len + c - 1) / c, total = 0, i, next;
	ssize_t ret = 0, res;
	struct slot *s, *p;

	for (i = 0; i < n && i < GPU_SLOTS && ret >= 0; i++)
		first_err(&ret, read_chunk(g, &d->slot[i], f, len, off, i));
	for (i = 0; i < n && ret >= 0; i++) {
		s = &d->slot[i % GPU_SLOTS];
		res = slot_drain(s);
		first_err(&ret, res);
		if (res <= 0)
			break;	/* an error, or end of file */
		first_err(&ret, copy_in(g, d, s, s->buf, (size_t)res, kind,
					dev + i * c));
		total += (size_t)res;
		if ((size_t)res < s->len)
			break;	/* end of file */
		next = i - 1 + GPU_SLOTS;
		if (i == 0 || next >= n || ret < 0)
			continue;
		p = &d->slot[(i - 1) % GPU_SLOTS];
		first_err(&ret, slot_sync(g, p));
		if (ret >= 0)
			first_err(&ret, read_chunk(g, p, f, len, off, next));
	}
	for (i = 0; i < GPU_SLOTS; i++) {
		first_err(&ret, slot_sync(g, &d->slot[i]));
		slot_drain(&d->slot[i]);	/* reads past a stop */
	}
	return ret < 0 ? ret : (ssize_t)total;
}

/* ------------------------------------------------------------------ */
/* GPUDirect Storage                                                   */
/* ------------------------------------------------------------------ */

/* The cuFile state, opened on first use; a change goes into the note. */
static enum cufile_state cufile_state(struct swapio_gpu *g)
{
	const struct cufile_api *api;
	enum cufile_state st;
	char why[320];
	bool changed;

	st = swapio__cufile_get(&api, why, sizeof(why));
	if (st == GDS_NVFS || st == GDS_COMPAT)
		atomic_store(&cf_api, api);
	pthread_mutex_lock(&g->lock);
	changed = g->cufile != st;
	g->cufile = st;
	pthread_mutex_unlock(&g->lock);
	if (changed && st == GDS_COMPAT)
		note_add(g, "cuFile in compat mode (no nvidia-fs): POSIX I/O "
			 "through its own bounce buffers");
	else if (changed && why[0])
		note_add(g, "%s", why);
	return st;
}

/* Could this job take cuFile, by its own and its file's properties? */
static bool gds_eligible(struct swapio_gpu *g, const struct job *j)
{
	bool refused;

	pthread_mutex_lock(&g->lock);
	refused = swapio__ext_file(j->f)->state < 0;
	pthread_mutex_unlock(&g->lock);
	return !refused && !j->managed && j->len && swapio_file_direct(j->f) &&
	       j->off % GDS_ALIGN == 0 && j->len % GDS_ALIGN == 0;
}

/* A cuFile call failed on @f: staging for that file from now on. */
static ssize_t gds_fail(struct swapio_gpu *g, swapio_file *f,
			const char *call, long res, int err)
{
	pthread_mutex_lock(&g->lock);
	swapio__ext_file(f)->state = -1;
	g->stats.gds_fallbacks++;
	pthread_mutex_unlock(&g->lock);
	if (res == -1)	/* a system call failed inside: errno says what */
		note_add(g, "%s: %s (errno %d); gds off for this file, "
			 "staging used", call, strerror(err), err);
	else
		note_add(g, "%s: error %ld; gds off for this file, staging "
			 "used", call, res);
	return -EIO;
}

/* The file slot's close callback: deregister before the fd closes. */
static void gds_file_close(struct swapio_ext_file *slot)
{
	const struct cufile_api *cf = atomic_load(&cf_api);

	/* Registered only once cuFile had opened: cf is set. A file that
	 * failed later (state -1) may still hold its registration. */
	if (slot->data && cf)
		cf->HandleDeregister(slot->data);
	slot->data = NULL;
	slot->state = 0;
}

/* @f's cuFile handle, registered once for the file's life. */
static int gds_file(struct swapio_gpu *g, swapio_file *f, cufile_handle *fh)
{
	const struct cufile_api *cf = atomic_load(&cf_api);
	struct cufile_descr desc = { .type = GPU_CUFILE_FD };
	struct swapio_ext_file *slot = swapio__ext_file(f);
	struct cufile_err e;
	int state;

	pthread_mutex_lock(&g->lock);
	state = slot->state;
	*fh = slot->data;
	pthread_mutex_unlock(&g->lock);
	if (state)
		return state < 0 ? -EIO : 0;
	desc.handle.fd = swapio__ext_fd(f);
	e = cf->HandleRegister(fh, &desc);
	if (e.err)
		return (int)gds_fail(g, f, "cuFileHandleRegister", (long)e.err,
				     0);
	pthread_mutex_lock(&g->lock);
	slot->data = *fh;
	slot->state = 1;
	slot->close = gds_file_close;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/*
 * @len bytes by cuFile; -EIO (and gds off for the file) on any cuFile
 * error. The device memory is not registered with cuFileBufRegister():
 * that pays only for a buffer reused across many ops, which swapio cannot
 * know is still allocated; unregistered memory goes through cuFile's own
 * bounce buffers where it needs them.
 */
static ssize_t gds_xfer(struct swapio_gpu *g, swapio_file *f,
			unsigned char *dev, size_t len, uint64_t off,
			bool write)
{
	const struct cufile_api *cf = atomic_load(&cf_api);
	cufile_handle fh;
	size_t done = 0;
	ssize_t n;

	if (gds_file(g, f, &fh))
		return -EIO;
	while (done < len) {
		errno = 0;
		if (write)
			n = cf->Write(fh, dev, len - done,
				      (off_t)(off + done), (off_t)done);
		else
			n = cf->Read(fh, dev, len - done,
				     (off_t)(off + done), (off_t)done);
		if (n < 0 || (n == 0 && write))
			return gds_fail(g, f, write ? "cuFileWrite" :
					"cuFileRead", (long)n, errno);
		if (n == 0)
			break;	/* end of file */
		done += (size_t)n;
	}
	pthread_mutex_lock(&g->lock);
	g->stats.gds_bytes += done;
	pthread_mutex_unlock(&g->lock);
	return (ssize_t)done;
}



/* ------------------------------------------------------------------ */
/* The driver thread                                                   */
/* ------------------------------------------------------------------ */

static ssize_t stage_job(struct swapio_gpu *g, struct job *j, size_t len)
{
	if (j->write)
		return stage_write(g, j->d, j->f, j->dev, len, j->off,
				   j->managed ? GPU_MEMCPY_DEFAULT :
				   GPU_MEMCPY_D2H);
	return stage_read(g, j->d, j->f, j->dev, len, j->off,
			  j->managed ? GPU_MEMCPY_DEFAULT : GPU_MEMCPY_H2D);
}

static double gbps(size_t n, uint64_t ns)
{
	return ns ? (double)n / (double)ns : 0.0;
}

static void path_set(struct swapio_gpu *g, struct job *j, int path)
{
	pthread_mutex_lock(&g->lock);
	j->d->path[j->write] = path;
	pthread_mutex_unlock(&g->lock);
}

/*
 * The first eligible op of a direction under auto: its first chunk goes
 * both ways, timed, and the faster path is kept for the device. The op
 * itself then runs in full on that path (the piece moved twice is the
 * op's own data at the op's own offset). The file is registered with
 * cuFile before the clock starts: registration is once per file, not a
 * cost of each transfer. A file that cuFile refuses leaves the choice to
 * the next eligible op.
 */
static int gds_probe(struct swapio_gpu *g, struct job *j)
{
	size_t n = SWAPIO_MIN(j->len, g->chunk);
	const char *dir = j->write ? "writes" : "reads";
	uint64_t t0, t_gds, t_stage;
	cufile_handle fh;
	int path;

	if (gds_file(g, j->f, &fh))
		return SWAPIO_GPU_STAGING;
	t0 = swapio__now_ns();
	if (gds_xfer(g, j->f, j->dev, n, j->off, j->write) < 0)
		return SWAPIO_GPU_STAGING;
	t_gds = swapio__now_ns() - t0;
	t0 = swapio__now_ns();
	if (stage_job(g, j, n) < 0)
		t_stage = UINT64_MAX;	/* let the op itself report it */
	else
		t_stage = swapio__now_ns() - t0;
	path = t_gds <= t_stage ? SWAPIO_GPU_GDS : SWAPIO_GPU_STAGING;
	note_add(g, "auto: %s gds %.2f GB/s, staging %.2f GB/s over %zu "
		 "bytes; chose %s", dir, gbps(n, t_gds), gbps(n, t_stage), n,
		 path == SWAPIO_GPU_GDS ? "gds" : "staging");
	path_set(g, j, path);
	return path;
}

/* The path this job takes (AUTO: to be measured by this job). */
static int job_path(struct swapio_gpu *g, struct job *j)
{
	enum cufile_state st;
	int path;

	if (!gds_eligible(g, j))
		return SWAPIO_GPU_STAGING;
	pthread_mutex_lock(&g->lock);
	path = j->d->path[j->write];
	pthread_mutex_unlock(&g->lock);
	if (path == SWAPIO_GPU_STAGING)
		return path;
	st = cufile_state(g);
	if (st == GDS_OPENING)	/* not yet: maybe for a later op */
		return SWAPIO_GPU_STAGING;
	if (path == SWAPIO_GPU_AUTO && st != GDS_NVFS) {
		/* Compat mode is POSIX I/O with bounce buffers: staging. */
		path_set(g, j, SWAPIO_GPU_STAGING);
		note_add(g, "auto: %s by staging (%s)",
			 j->write ? "writes" : "reads",
			 st == GDS_COMPAT ? "cuFile in compat mode" :
			 "no cuFile");
		return SWAPIO_GPU_STAGING;
	}
	if (st == GDS_FAILED)
		return SWAPIO_GPU_STAGING;
	if (st == GDS_COMPAT)
		note_add(g, "gds (compat mode)");
	return path;
}

/*
 * cuFile is outside every stream: before the job's first cuFile call the
 * host waits for the caller's event, and for swapio's own stream, where
 * the caller's work sits when it passed that stream (and a DLPack
 * producer's wait, from Python). A staging job waits in-stream instead.
 */
static int job_order(struct swapio_gpu *g, struct job *j, bool gds)
{
	int ret = 0;

	if (!gds)
		return j->ready ? cu_check(g, rt_cu.StreamWaitEvent(
					   j->d->stream, j->ready, 0),
					   "cudaStreamWaitEvent") : 0;
	if (j->ready)
		ret = cu_check(g, rt_cu.EventSynchronize(j->ready),
			       "cudaEventSynchronize");
	if (!ret)
		ret = cu_check(g, rt_cu.StreamSynchronize(j->d->stream),
			       "cudaStreamSynchronize");
	return ret;
}

static ssize_t job_run(struct swapio_gpu *g, struct job *j)
{
	ssize_t res;
	int ret, path;

	ret = cu_check(g, rt_cu.SetDevice(j->d->device), "cudaSetDevice");
	if (ret)
		return ret;
	path = job_path(g, j);
	ret = job_order(g, j, path != SWAPIO_GPU_STAGING);
	if (ret)
		return ret;
	if (path == SWAPIO_GPU_AUTO)
		path = gds_probe(g, j);
	if (path == SWAPIO_GPU_GDS) {
		res = gds_xfer(g, j->f, j->dev, j->len, j->off, j->write);
		if (res >= 0)
			return res;
	}
	return stage_job(g, j, j->len);
}

static void *gpu_main(void *arg)
{
	struct swapio_gpu *g = arg;
	struct job *j;
	ssize_t res;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (!g->head && !g->stop)
			pthread_cond_wait(&g->cv, &g->lock);
		j = g->head;
		if (j) {
			g->head = j->next;
			if (!g->head)
				g->tail = NULL;
		}
		pthread_mutex_unlock(&g->lock);
		if (!j)
			return NULL;
		res = j->len ? job_run(g, j) : 0;
		if (j->ready)
			rt_cu.EventDestroy(j->ready);
		pthread_mutex_lock(&g->lock);
		g->stats.jobs++;
		pthread_mutex_unlock(&g->lock);
		swapio__op_end(j->op, res);
		free(j);
	}
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */
/* ------------------------------------------------------------------ */

/*
 * Is the job's memory that of @device, as CUDA knows it? A wrong
 * ordinal or host memory would otherwise fail later, as an unexplained
 * copy error, or not at all. A runtime that does not know the pointer
 * at all (older ones refuse host memory so) leaves the check to the
 * copies.
 */
static int ptr_check(struct job *j, int device)
{
	struct cu_ptr_attr a;

	memset(&a, 0, sizeof(a));
	if (rt_cu.PointerGetAttributes(&a, j->dev) != GPU_SUCCESS) {
		rt_cu.GetLastError();
		return 0;
	}
	if (a.type == GPU_MEM_DEVICE && a.device != device)
		return swapio__detail(-EINVAL, "dev_buf %p is memory of CUDA "
				      "device %d, not of device %d",
				      (void *)j->dev, a.device, device);
	if (a.type != GPU_MEM_DEVICE && a.type != GPU_MEM_MANAGED)
		return swapio__detail(-EINVAL, "dev_buf %p is host memory, "
				      "not CUDA device memory",
				      (void *)j->dev);
	j->managed = a.type == GPU_MEM_MANAGED;
	return 0;
}

struct submit {
	struct job	*j;
	cu_stream	stream;	/* the caller's; NULL: the legacy default */
	bool		record;	/* record an event on it */
};

/* With the device current: check the memory, record the caller's stream. */
static int submit_here(struct swapio_gpu *g, int device, void *arg)
{
	struct submit *sb = arg;
	int ret;

	ret = ptr_check(sb->j, device);
	if (ret || !sb->record)
		return ret;
	ret = cu_check(g, rt_cu.EventCreateWithFlags(&sb->j->ready,
						     GPU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	ret = cu_check(g, rt_cu.EventRecord(sb->j->ready, sb->stream),
		       "cudaEventRecord");
	if (ret) {
		rt_cu.EventDestroy(sb->j->ready);
		sb->j->ready = NULL;
	}
	return ret;
}

static int dev_submit(swapio_handle *h, swapio_file *f, const char *path,
		      int device, const void *buf, size_t len, uint64_t off,
		      void *stream, bool write, swapio_op **out)
{
	struct submit sb = { NULL, NULL, false };
	swapio_file *owned = NULL;
	struct swapio_gpu *g;
	struct gpu_dev *d;
	struct job *j;
	int ret;

	swapio__detail_clear();
	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = dev_get(h, device, &g, &d);
	if (ret)
		return ret;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (path) {
		ret = swapio__path_open(h, path, write, &f);
		if (ret)
			goto err_free;
		owned = f;
	}
	ret = swapio__op_begin(h, f, owned, write, buf, len, off, &j->op);
	if (ret)
		goto err_close;
	j->f = f;
	j->d = d;
	j->dev = (unsigned char *)buf;	/* a write only reads it */
	j->len = len;
	j->off = off;
	j->write = write;
	if (len) {
		sb.j = j;
		sb.stream = stream;
		sb.record = stream != SWAPIO_DEV_NO_SYNC &&
			    stream != d->stream;
		ret = on_device(g, device, submit_here, &sb);
		if (ret)
			goto err_cancel;
	}
	*out = (swapio_op *)j->op;
	pthread_mutex_lock(&g->lock);
	if (g->tail)
		g->tail->next = j;
	else
		g->head = j;
	g->tail = j;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->lock);
	return 0;

err_cancel:
	swapio__op_cancel(j->op);
	*out = NULL;
err_close:
	if (owned)
		swapio_file_close(owned);
err_free:
	free(j);
	return ret;
}

int swapio_dev_submit_read(swapio_handle *h, swapio_file *f, int device,
			   void *dev_buf, size_t len, uint64_t off,
			   void *stream, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	if (!f)
		return -EINVAL;
	return dev_submit(h, f, NULL, device, dev_buf, len, off, stream,
			  false, op);
}

int swapio_dev_submit_write(swapio_handle *h, swapio_file *f, int device,
			    const void *dev_buf, size_t len, uint64_t off,
			    void *stream, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	if (!f)
		return -EINVAL;
	return dev_submit(h, f, NULL, device, dev_buf, len, off, stream,
			  true, op);
}

int swapio_dev_submit_read_path(swapio_handle *h, const char *path,
				int device, void *dev_buf, size_t len,
				uint64_t off, void *stream, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	if (!path)
		return -EINVAL;
	return dev_submit(h, NULL, path, device, dev_buf, len, off, stream,
			  false, op);
}

int swapio_dev_submit_write_path(swapio_handle *h, const char *path,
				 int device, const void *dev_buf, size_t len,
				 uint64_t off, void *stream, swapio_op **op)
{
	SWAPIO_KEEP_ERRNO;
	if (!path)
		return -EINVAL;
	return dev_submit(h, NULL, path, device, dev_buf, len, off, stream,
			  true, op);
}

static ssize_t dev_sync(int ret, swapio_op *op)
{
	ssize_t res;

	if (ret)
		return ret;
	res = swapio_op_wait(op, -1);
	swapio_op_free(op);
	return res;
}

ssize_t swapio_dev_pread(swapio_handle *h, swapio_file *f, int device,
			 void *dev_buf, size_t len, uint64_t off, void *stream)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op = NULL;
	int ret = swapio_dev_submit_read(h, f, device, dev_buf, len, off,
					 stream, &op);

	return dev_sync(ret, op);
}

ssize_t swapio_dev_pwrite(swapio_handle *h, swapio_file *f, int device,
			  const void *dev_buf, size_t len, uint64_t off,
			  void *stream)
{
	SWAPIO_KEEP_ERRNO;
	swapio_op *op = NULL;
	int ret = swapio_dev_submit_write(h, f, device, dev_buf, len, off,
					  stream, &op);

	return dev_sync(ret, op);
}

int swapio_dev_stream(swapio_handle *h, int device, void **stream)
{
	SWAPIO_KEEP_ERRNO;
	struct swapio_gpu *g;
	struct gpu_dev *d;
	int ret;

	swapio__detail_clear();
	if (!stream)
		return -EINVAL;
	*stream = NULL;
	ret = dev_get(h, device, &g, &d);
	if (!ret)
		*stream = d->stream;
	return ret;
}

int swapio_dev_enter(swapio_handle *h, int device,
		     struct swapio_dev_saved *saved)
{
	SWAPIO_KEEP_ERRNO;
	struct swapio_gpu *g;
	struct gpu_dev *d;
	int ret;

	swapio__detail_clear();
	if (!saved)
		return -EINVAL;
	memset(saved, 0, sizeof(*saved));
	ret = dev_get(h, device, &g, &d);
	if (ret)
		return ret;
	return dev_enter(g, device, saved);
}

void swapio_dev_leave(swapio_handle *h, const struct swapio_dev_saved *saved)
{
	SWAPIO_KEEP_ERRNO;

	if (h && saved && saved->how != SAVED_NOTHING && swapio__cuda.ok)
		dev_leave(saved);
}

int swapio_dev_path(swapio_handle *h, int device, int write)
{
	struct swapio_gpu *g;
	int path = -ENODEV;

	if (!h || device < 0 || device >= SWAPIO_DEV_MAX)
		return -EINVAL;
	g = swapio__ext_peek(h);
	if (!g)
		return -ENODEV;
	pthread_mutex_lock(&g->lock);
	if (g->devs[device])
		path = g->devs[device]->path[!!write];
	if (path == SWAPIO_GPU_GDS && (g->cufile == GDS_FAILED ||
				       g->cufile == GDS_OPENING))
		path = SWAPIO_GPU_STAGING;
	pthread_mutex_unlock(&g->lock);
	return path;
}

size_t swapio_handle_gpu_note(swapio_handle *h, char *buf, size_t len)
{
	struct swapio_gpu *g;
	size_t n = 0;

	if (!h)
		return 0;
	g = swapio__ext_peek(h);
	if (g)
		pthread_mutex_lock(&g->lock);
	if (g)
		n = strlen(g->note);
	if (buf && len)
		snprintf(buf, len, "%s", g ? g->note : "");
	if (g)
		pthread_mutex_unlock(&g->lock);
	return n;
}

void swapio__gpu_stats(swapio_handle *h, struct swapio__gpu_stats *out)
{
	struct swapio_gpu *g;

	memset(out, 0, sizeof(*out));
	g = swapio__ext_peek(h);
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	*out = g->stats;
	pthread_mutex_unlock(&g->lock);
}
