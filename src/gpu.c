/* SPDX-License-Identifier: MIT */
/*
 * Device memory: CUDA buffers to files and back, through pinned staging
 * buffers or GPUDirect Storage (cuFile). Neither CUDA nor cuFile is linked
 * or included: both are loaded with dlopen() at the first device call and
 * reached through the few function pointers declared here, so a machine
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
 * Locks: h->lock (creating h->gpu), then g->lock (the job queue, the
 * devices, the note, the statistics). Neither is held across a transfer.
 */
#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "internal.h"
#include "util.h"

#define GPU_SLOTS	4
#define GPU_DEF_CHUNK	(8u << 20)
#define GPU_MAX_CHUNK	(1ull << 30)
#define GDS_ALIGN	4096u

/* The CUDA runtime's types and constants, as its API documents them. */
typedef int cu_err;		/* cudaError_t */
typedef void *cu_stream;	/* cudaStream_t */
typedef void *cu_event;		/* cudaEvent_t */
enum {
	CU_SUCCESS		= 0,
	CU_MEMCPY_H2D		= 1,	/* cudaMemcpyHostToDevice */
	CU_MEMCPY_D2H		= 2,	/* cudaMemcpyDeviceToHost */
	CU_STREAM_NON_BLOCKING	= 1,	/* cudaStreamNonBlocking */
	CU_EVENT_NO_TIMING	= 2,	/* cudaEventDisableTiming */
};

struct cuda_api {
	cu_err (*GetDevice)(int *dev);
	cu_err (*SetDevice)(int dev);
	cu_err (*StreamCreateWithFlags)(cu_stream *s, unsigned int flags);
	cu_err (*StreamDestroy)(cu_stream s);
	cu_err (*StreamWaitEvent)(cu_stream s, cu_event e, unsigned int fl);
	cu_err (*EventCreateWithFlags)(cu_event *e, unsigned int flags);
	cu_err (*EventDestroy)(cu_event e);
	cu_err (*EventRecord)(cu_event e, cu_stream s);
	cu_err (*EventSynchronize)(cu_event e);
	cu_err (*MemcpyAsync)(void *dst, const void *src, size_t n, int kind,
			      cu_stream s);
	cu_err (*HostRegister)(void *p, size_t n, unsigned int flags);
	cu_err (*HostUnregister)(void *p);
	const char *(*GetErrorString)(cu_err e);
};

/* cuFile's, likewise: CUfileError_t, CUfileDescr_t, the calls used. */
struct cufile_err {
	int err;	/* CUfileOpError; 0: success */
	int cu_err;	/* CUresult */
};

struct cufile_descr {
	int type;	/* CU_FILE_HANDLE_TYPE_OPAQUE_FD */
	union {
		int fd;
		void *handle;
	} handle;
	const void *fs_ops;
};

#define CUFILE_HANDLE_FD	1

struct cufile_api {
	struct cufile_err (*DriverOpen)(void);
	struct cufile_err (*HandleRegister)(void **fh, struct cufile_descr *d);
	void (*HandleDeregister)(void *fh);
	struct cufile_err (*BufRegister)(const void *p, size_t n, int flags);
	struct cufile_err (*BufDeregister)(const void *p);
	ssize_t (*Read)(void *fh, void *p, size_t n, off_t foff, off_t poff);
	ssize_t (*Write)(void *fh, const void *p, size_t n, off_t foff,
			 off_t poff);
};

struct sym {
	const char	*name;
	size_t		off;
};

#define CU(f)	{ "cuda" #f, offsetof(struct cuda_api, f) }
static const struct sym cuda_syms[] = {
	CU(GetDevice), CU(SetDevice), CU(StreamCreateWithFlags),
	CU(StreamDestroy), CU(StreamWaitEvent), CU(EventCreateWithFlags),
	CU(EventDestroy), CU(EventRecord), CU(EventSynchronize),
	CU(MemcpyAsync), CU(HostRegister), CU(HostUnregister),
	CU(GetErrorString),
};
#undef CU

#define CF(f)	{ "cuFile" #f, offsetof(struct cufile_api, f) }
static const struct sym cufile_syms[] = {
	CF(DriverOpen), CF(HandleRegister), CF(HandleDeregister),
	CF(BufRegister), CF(BufDeregister), CF(Read), CF(Write),
};
#undef CF

/* Process-wide: the libraries, loaded once. */
static struct {
	pthread_once_t		once;
	bool			cuda_ok;
	bool			cufile_ok;	/* loaded and its driver opened */
	struct cuda_api		cu;
	struct cufile_api	cf;
	char			why[320];	/* what failed to load, and how */
} rt = { .once = PTHREAD_ONCE_INIT };

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
	cu_event	ready;	/* the caller's stream at submission, or NULL */
};

struct swapio_gpu {
	swapio_handle		*h;
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	pthread_t		thread;
	bool			started;
	bool			stop;
	bool			gds_off;	/* a cuFile call failed */
	unsigned int		path_cfg;	/* SWAPIO_GPU_* asked for */
	size_t			chunk;		/* staging buffer size */
	struct job		*head, *tail;
	struct gpu_dev		*devs[SWAPIO_DEV_MAX];
	struct swapio__gpu_stats stats;
	char			note[512];
};

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static void *lib_open(const char *env, const char *const *names,
		      const char *what, size_t room)
{
	const char *path = swapio__env(env);
	size_t used = strlen(rt.why);
	const char *err;
	void *lib;

	if (path && *path) {
		lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		names = NULL;
	} else {
		lib = NULL;
		for (; names && *names && !lib; names++)
			lib = dlopen(*names, RTLD_NOW | RTLD_LOCAL);
	}
	if (!lib) {
		err = dlerror();
		snprintf(rt.why + used, room - used, "%s%s not loaded (%s)",
			 used ? "; " : "", what, err ? err : "not found");
	}
	return lib;
}

static bool syms_load(void *lib, const struct sym *syms, size_t n,
		      void *table)
{
	size_t used;
	void *p;

	for (size_t i = 0; i < n; i++) {
		p = dlsym(lib, syms[i].name);
		if (!p) {
			used = strlen(rt.why);
			snprintf(rt.why + used, sizeof(rt.why) - used,
				 "%s%s missing", used ? "; " : "",
				 syms[i].name);
			return false;
		}
		/* POSIX: a function's address travels as a void *. */
		memcpy((char *)table + syms[i].off, &p, sizeof(p));
	}
	return true;
}

static void cufile_load(void)
{
	static const char *const names[] = { "libcufile.so.0", "libcufile.so",
					     NULL };
	const char *env = swapio__env("SWAPIO_CUFILE_LIBRARY");
	struct cufile_err e;
	size_t used;
	void *lib;

	if (env && !strcmp(env, "none"))
		return;
	lib = lib_open("SWAPIO_CUFILE_LIBRARY", names, "cuFile",
		       sizeof(rt.why));
	if (!lib)
		return;
	if (!syms_load(lib, cufile_syms, SWAPIO_ARRAY_SIZE(cufile_syms),
		       &rt.cf)) {
		dlclose(lib);
		return;
	}
	/* Opened once per process; closed by the process's exit. */
	e = rt.cf.DriverOpen();
	if (e.err) {
		used = strlen(rt.why);
		snprintf(rt.why + used, sizeof(rt.why) - used,
			 "%scuFileDriverOpen: error %d (CUDA %d)",
			 used ? "; " : "", e.err, e.cu_err);
		return;
	}
	rt.cufile_ok = true;
}

static void rt_load(void)
{
	static const char *const names[] = { "libcudart.so.13",
					     "libcudart.so.12",
					     "libcudart.so", NULL };
	void *lib;

	lib = lib_open("SWAPIO_CUDA_LIBRARY", names, "CUDA runtime",
		       sizeof(rt.why));
	if (!lib)
		return;
	if (!syms_load(lib, cuda_syms, SWAPIO_ARRAY_SIZE(cuda_syms), &rt.cu)) {
		dlclose(lib);
		return;
	}
	rt.cuda_ok = true;
	cufile_load();
}

/* ------------------------------------------------------------------ */
/* Notes and CUDA errors                                               */
/* ------------------------------------------------------------------ */

static void __attribute__((format(printf, 2, 3)))
note_add(struct swapio_gpu *g, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	pthread_mutex_lock(&g->lock);
	used = strlen(g->note);
	if (used && used + 2 < sizeof(g->note)) {
		memcpy(g->note + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(g->note + used, sizeof(g->note) - used, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&g->lock);
}

/* 0, or SWAPIO_ECUDA with the call and CUDA's message in the note. */
static int cu_check(struct swapio_gpu *g, cu_err e, const char *call)
{
	const char *msg;

	if (e == CU_SUCCESS)
		return 0;
	msg = rt.cu.GetErrorString(e);
	note_add(g, "%s: %s (%d)", call, msg ? msg : "unknown error", e);
	return SWAPIO_ECUDA;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static size_t chunk_from_env(void)
{
	const char *s = swapio__env("SWAPIO_GPU_CHUNK");
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return GPU_DEF_CHUNK;
	v = strtoull(s, &end, 10);
	if (*end || v < 4096 || v > GPU_MAX_CHUNK || v % 4096)
		return GPU_DEF_CHUNK;
	return (size_t)v;
}

static unsigned int path_from(const swapio_handle *h)
{
	const char *s = swapio__env("SWAPIO_GPU_PATH");

	if (s && !strcmp(s, "staging"))
		return SWAPIO_GPU_STAGING;
	if (s && !strcmp(s, "gds"))
		return SWAPIO_GPU_GDS;
	if (s && !strcmp(s, "auto"))
		return SWAPIO_GPU_AUTO;
	return h->cfg.gpu_path;
}

static void *gpu_main(void *arg);

static struct swapio_gpu *gpu_new(swapio_handle *h)
{
	struct swapio_gpu *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->h = h;
	g->chunk = chunk_from_env();
	g->path_cfg = path_from(h);
	if (pthread_mutex_init(&g->lock, NULL))
		goto err_free;
	if (pthread_cond_init(&g->cv, NULL))
		goto err_lock;
	if (!rt.cuda_ok) {
		snprintf(g->note, sizeof(g->note), "%s", rt.why);
		return g;
	}
	if (pthread_create(&g->thread, NULL, gpu_main, g))
		goto err_cv;
	g->started = true;
	if (rt.why[0])	/* CUDA loaded, cuFile not */
		snprintf(g->note, sizeof(g->note), "%s", rt.why);
	return g;

err_cv:
	pthread_cond_destroy(&g->cv);
err_lock:
	pthread_mutex_destroy(&g->lock);
err_free:
	free(g);
	return NULL;
}

/* The handle's device layer, made on first use. */
static int gpu_get(swapio_handle *h, struct swapio_gpu **out)
{
	struct swapio_gpu *g;

	pthread_once(&rt.once, rt_load);
	pthread_mutex_lock(&h->lock);
	g = h->gpu;
	if (!g)
		g = h->gpu = gpu_new(h);
	pthread_mutex_unlock(&h->lock);
	if (!g)
		return -ENOMEM;
	*out = g;
	return rt.cuda_ok ? 0 : SWAPIO_ENOCUDA;
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
			rt.cu.EventDestroy(s->ev);
		if (s->pinned)
			rt.cu.HostUnregister(s->buf);
		swapio_buf_free(s->buf, chunk);
	}
	if (d->stream)
		rt.cu.StreamDestroy(d->stream);
	free(d);
}

static int slot_init(struct swapio_gpu *g, struct slot *s, bool *pin_failed)
{
	int ret;

	ret = swapio_buf_alloc(g->chunk, SWAPIO_BUF_HUGE, (void **)&s->buf);
	if (ret)
		return ret;
	ret = cu_check(g, rt.cu.EventCreateWithFlags(&s->ev,
						     CU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	/* Pinned once, for the device's life: copies from it run async. */
	if (!*pin_failed &&
	    cu_check(g, rt.cu.HostRegister(s->buf, g->chunk, 0),
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
	ret = cu_check(g, rt.cu.StreamCreateWithFlags(&d->stream,
						      CU_STREAM_NON_BLOCKING),
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

/* Run @fn(g, device, arg) with @device current on this thread. */
static int on_device(struct swapio_gpu *g, int device,
		     int (*fn)(struct swapio_gpu *, int, void *), void *arg)
{
	int old, ret;

	ret = cu_check(g, rt.cu.GetDevice(&old), "cudaGetDevice");
	if (ret)
		return ret;
	if (old != device) {
		ret = cu_check(g, rt.cu.SetDevice(device), "cudaSetDevice");
		if (ret)
			return ret;
	}
	ret = fn(g, device, arg);
	if (old != device)
		rt.cu.SetDevice(old);
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
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	ret = gpu_get(h, g);
	if (ret)
		return ret;
	return on_device(*g, device, dev_get_here, d);
}

void swapio__gpu_destroy(swapio_handle *h)
{
	struct swapio_gpu *g = h->gpu;

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
	for (unsigned int i = 0; i < SWAPIO_DEV_MAX; i++)
		dev_free(g->devs[i], g->chunk);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
	h->gpu = NULL;
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
	return cu_check(g, rt.cu.EventSynchronize(s->ev),
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
		   const void *src, size_t n, int kind, void *dst)
{
	int ret;

	assert(!s->copying);
	count_copy(g, file_busy(d, s), n);
	ret = cu_check(g, rt.cu.MemcpyAsync(dst, src, n, kind, d->stream),
		       "cudaMemcpyAsync");
	if (!ret)
		ret = cu_check(g, rt.cu.EventRecord(s->ev, d->stream),
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
			   size_t len, uint64_t off)
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
							s->len, CU_MEMCPY_D2H,
							s->buf));
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
			  uint64_t off)
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
		first_err(&ret, copy_in(g, d, s, s->buf, (size_t)res,
					CU_MEMCPY_H2D, dev + i * c));
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

static bool gds_eligible(struct swapio_gpu *g, const struct job *j)
{
	bool off;

	pthread_mutex_lock(&g->lock);
	off = g->gds_off;
	pthread_mutex_unlock(&g->lock);
	return rt.cufile_ok && !off && j->len && swapio_file_direct(j->f) &&
	       j->off % GDS_ALIGN == 0 && j->len % GDS_ALIGN == 0;
}

/* A cuFile call failed: staging from now on, and why. */
static ssize_t gds_fail(struct swapio_gpu *g, const char *call, long err)
{
	pthread_mutex_lock(&g->lock);
	g->gds_off = true;
	g->stats.gds_fallbacks++;
	pthread_mutex_unlock(&g->lock);
	note_add(g, "%s: error %ld; gds off, staging used", call, err);
	return -EIO;
}

static ssize_t gds_loop(struct swapio_gpu *g, void *fh, unsigned char *dev,
			size_t len, uint64_t off, bool write)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if (write)
			n = rt.cf.Write(fh, dev, len - done,
					(off_t)(off + done), (off_t)done);
		else
			n = rt.cf.Read(fh, dev, len - done,
				       (off_t)(off + done), (off_t)done);
		if (n < 0 || (n == 0 && write))
			return gds_fail(g, write ? "cuFileWrite" :
					"cuFileRead", (long)n);
		if (n == 0)
			break;	/* end of file */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* @len bytes by cuFile; -EIO (and gds off) on any cuFile error. */
static ssize_t gds_xfer(struct swapio_gpu *g, swapio_file *f,
			unsigned char *dev, size_t len, uint64_t off,
			bool write)
{
	struct cufile_descr desc = { .type = CUFILE_HANDLE_FD };
	struct cufile_err e;
	bool buf_reg;
	void *fh;
	ssize_t res;

	desc.handle.fd = f->fd;
	e = rt.cf.HandleRegister(&fh, &desc);
	if (e.err)
		return gds_fail(g, "cuFileHandleRegister", e.err);
	/* Registered memory saves cuFile a bounce; unregistered works. */
	buf_reg = !rt.cf.BufRegister(dev, len, 0).err;
	res = gds_loop(g, fh, dev, len, off, write);
	if (buf_reg)
		rt.cf.BufDeregister(dev);
	rt.cf.HandleDeregister(fh);
	if (res > 0) {
		pthread_mutex_lock(&g->lock);
		g->stats.gds_bytes += (uint64_t)res;
		pthread_mutex_unlock(&g->lock);
	}
	return res;
}

/* ------------------------------------------------------------------ */
/* The driver thread                                                   */
/* ------------------------------------------------------------------ */

static ssize_t stage_job(struct swapio_gpu *g, struct job *j, size_t len)
{
	if (j->write)
		return stage_write(g, j->d, j->f, j->dev, len, j->off);
	return stage_read(g, j->d, j->f, j->dev, len, j->off);
}

static double gbps(size_t n, uint64_t ns)
{
	return ns ? (double)n / (double)ns : 0.0;
}

/*
 * The first eligible op of a direction under auto: its first chunk goes
 * both ways, timed, and the faster path is kept for the device. The op
 * itself then runs in full on that path (the piece moved twice is the
 * op's own data at the op's own offset).
 */
static void gds_probe(struct swapio_gpu *g, struct job *j)
{
	size_t n = SWAPIO_MIN(j->len, g->chunk);
	const char *dir = j->write ? "writes" : "reads";
	uint64_t t0, t_gds, t_stage;
	int path;

	t0 = swapio__now_ns();
	if (gds_xfer(g, j->f, j->dev, n, j->off, j->write) < 0) {
		path = SWAPIO_GPU_STAGING;
		note_add(g, "auto: %s by staging (gds failed)", dir);
		goto out;
	}
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
out:
	pthread_mutex_lock(&g->lock);
	j->d->path[j->write] = path;
	pthread_mutex_unlock(&g->lock);
}

static int job_path(struct swapio_gpu *g, struct job *j)
{
	int path;

	if (!gds_eligible(g, j))
		return SWAPIO_GPU_STAGING;
	pthread_mutex_lock(&g->lock);
	path = j->d->path[j->write];
	pthread_mutex_unlock(&g->lock);
	if (path == SWAPIO_GPU_AUTO) {
		gds_probe(g, j);
		pthread_mutex_lock(&g->lock);
		path = j->d->path[j->write];
		pthread_mutex_unlock(&g->lock);
	}
	return path;
}

static ssize_t job_run(struct swapio_gpu *g, struct job *j)
{
	bool maybe_gds;
	ssize_t res;
	int ret;

	ret = cu_check(g, rt.cu.SetDevice(j->d->device), "cudaSetDevice");
	if (ret)
		return ret;
	pthread_mutex_lock(&g->lock);
	maybe_gds = j->d->path[j->write] != SWAPIO_GPU_STAGING;
	pthread_mutex_unlock(&g->lock);
	maybe_gds = maybe_gds && gds_eligible(g, j);
	if (j->ready && maybe_gds)
		/* cuFile is outside every stream: wait on the host. */
		ret = cu_check(g, rt.cu.EventSynchronize(j->ready),
			       "cudaEventSynchronize");
	else if (j->ready)
		ret = cu_check(g, rt.cu.StreamWaitEvent(j->d->stream,
							j->ready, 0),
			       "cudaStreamWaitEvent");
	if (ret)
		return ret;
	if (job_path(g, j) == SWAPIO_GPU_GDS) {
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
			rt.cu.EventDestroy(j->ready);
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

struct ready {
	cu_stream	stream;	/* the caller's */
	cu_event	ev;	/* recorded on it */
};

/* Record the caller's stream now, so that the job's copies follow it. */
static int ready_here(struct swapio_gpu *g, int device, void *arg)
{
	struct ready *r = arg;
	int ret;

	(void)device;
	ret = cu_check(g, rt.cu.EventCreateWithFlags(&r->ev,
						     CU_EVENT_NO_TIMING),
		       "cudaEventCreateWithFlags");
	if (ret)
		return ret;
	ret = cu_check(g, rt.cu.EventRecord(r->ev, r->stream),
		       "cudaEventRecord");
	if (ret) {
		rt.cu.EventDestroy(r->ev);
		r->ev = NULL;
	}
	return ret;
}

static int dev_submit(swapio_handle *h, swapio_file *f, const char *path,
		      int device, const void *buf, size_t len, uint64_t off,
		      void *stream, bool write, swapio_op **out)
{
	struct ready r = { NULL, NULL };
	swapio_file *owned = NULL;
	struct swapio_gpu *g;
	struct gpu_dev *d;
	struct job *j;
	int ret;

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
	if (stream != SWAPIO_DEV_NO_SYNC && stream != d->stream && len) {
		r.stream = stream;
		ret = on_device(g, device, ready_here, &r);
		if (ret)
			goto err_cancel;
		j->ready = r.ev;
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

	if (!stream)
		return -EINVAL;
	*stream = NULL;
	ret = dev_get(h, device, &g, &d);
	if (!ret)
		*stream = d->stream;
	return ret;
}

int swapio_dev_path(swapio_handle *h, int device, int write)
{
	struct swapio_gpu *g;
	int path = -ENODEV;

	if (!h || device < 0 || device >= SWAPIO_DEV_MAX)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	g = h->gpu;
	pthread_mutex_unlock(&h->lock);
	if (!g)
		return -ENODEV;
	pthread_mutex_lock(&g->lock);
	if (g->devs[device])
		path = g->devs[device]->path[!!write];
	if (path == SWAPIO_GPU_GDS && (g->gds_off || !rt.cufile_ok))
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
	pthread_mutex_lock(&h->lock);
	g = h->gpu;
	pthread_mutex_unlock(&h->lock);
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
	pthread_mutex_lock(&h->lock);
	g = h->gpu;
	pthread_mutex_unlock(&h->lock);
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	*out = g->stats;
	pthread_mutex_unlock(&g->lock);
}
