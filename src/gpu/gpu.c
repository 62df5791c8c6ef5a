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
 * pipeline (staging.c), submitting the file side as ordinary ops on the
 * same handle, so the engines and workers are
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
 * Locks: the handle's (creating its slot, ext.h), then g->lock (the job
 * queue, the devices, the note, the statistics, each file's cuFile
 * state). Neither is held across a transfer.
 *
 * This file: set-up, devices, the note, submission and the public calls;
 * gpu_impl.h lists the other units (staging, GDS, the driver thread).
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
#include "gpu_impl.h"
#include "gpu_load.h"
#include "util.h"

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
void swapio__gpu_note(struct swapio_gpu *g, const char *fmt, ...)
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
int swapio__gpu_check(struct swapio_gpu *g, cu_err e, const char *call)
{
	const char *msg;

	if (e == GPU_SUCCESS)
		return 0;
	rt_cu.GetLastError();
	msg = rt_cu.GetErrorString(e);
	swapio__gpu_note(g, "%s: %s (%u)", call, msg ? msg : "unknown error", e);
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
		if (pthread_create(&g->thread, NULL, swapio__gpu_main, g))
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
	ret = swapio__gpu_check(g, rt_cu.EventCreateWithFlags(&s->ev,
						     GPU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	/* Pinned once, for the device's life: copies from it run async. */
	if (!*pin_failed &&
	    swapio__gpu_check(g, rt_cu.HostRegister(s->buf, g->chunk, 0),
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
	ret = swapio__gpu_check(g, rt_cu.StreamCreateWithFlags(&d->stream,
						      GPU_STREAM_NON_BLOCKING),
		       "cudaStreamCreateWithFlags");
	for (unsigned int i = 0; !ret && i < GPU_SLOTS; i++)
		ret = slot_init(g, &d->slot[i], &pin_failed);
	if (ret) {
		dev_free(d, g->chunk);
		return ret;
	}
	if (pin_failed)
		swapio__gpu_note(g, "staging left unpinned: copies will not overlap");
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
	ret = swapio__gpu_check(g, rt_cu.GetDevice(&old), "cudaGetDevice");
	if (ret)
		return ret;
	if (ctx_api && rt_cu.CtxGetCurrent(&ctx) != GPU_SUCCESS)
		ctx_api = false;
	if (old == device && (ctx || !ctx_api))
		return 0;
	ret = swapio__gpu_check(g, rt_cu.SetDevice(device), "cudaSetDevice");
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
	ret = swapio__gpu_check(g, rt_cu.EventCreateWithFlags(&sb->j->ready,
						     GPU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	ret = swapio__gpu_check(g, rt_cu.EventRecord(sb->j->ready, sb->stream),
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
