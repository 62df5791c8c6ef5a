// SPDX-License-Identifier: MIT
/*
 * _swapio: the CPython extension under the swapio package, written against
 * swapio.h and CPython's stable ABI (3.11) only.
 *
 * Lifetimes, which decide everything here:
 * - An Op owns its swapio_op and the buffer it moves (a Py_buffer view or
 *   a DLPack managed tensor) until the op completes and is observed (a
 *   wait, done() or result that sees it finished). An Op dropped while
 *   in flight, or the op of a sync call that Ctrl-C interrupted, becomes
 *   an orphan that keeps the buffer until the op completes, so the kernel
 *   never writes into memory that Python has freed, and no destructor
 *   blocks.
 * - Waits run in 50 ms slices in the main thread, running signal
 *   handlers in between, so that Ctrl-C gets through (wait_slices()).
 * - Objects made before a fork() refuse every call in the child with
 *   SWAPIO_EFORKED; closing and dropping them there does nothing.
 * - Handles, files and stores count their users (files, stores, ops not
 *   yet observed, calls in progress on another thread). close() marks
 *   the object closed at once, so nothing new starts, and the C object
 *   is released when the last user goes: no call ever runs on a freed
 *   C object, whatever the order in which Python drops references.
 * - Every call that can block (I/O, submit, wait, sync, open, close)
 *   releases the GIL. Counters above change only under the GIL.
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030B0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <dlpack/dlpack.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <swapio.h>

/* Method and attribute tables. */
#define KW	(METH_VARARGS | METH_KEYWORDS)
#define M(name, fn, flags, doc) { name, (PyCFunction)(void (*)(void))fn, \
				  flags, PyDoc_STR(doc) }
#define G(name, fn, doc) { name, (getter)fn, NULL, PyDoc_STR(doc), NULL }

static PyObject *Error;		/* swapio.Error(OSError) */
static PyObject *Timeout;	/* swapio.Timeout(Error, TimeoutError) */
static PyObject *await_hook;	/* swapio._aio.await_op, set at import */
static PyTypeObject *HandleType, *FileType, *OpType, *BufferType;
static PyTypeObject *StoreType, *StoreOpType, *PipelineType;

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* errno for a swapio result: itself, or the nearest for swapio's own. */
static int err_errno(int err)
{
	switch (err) {
	case SWAPIO_EMEMLOCK:
		return ENOMEM;
	case SWAPIO_EBADSTORE:
		return EUCLEAN;
	case SWAPIO_EFORKED:
		return EPERM;
	case SWAPIO_ENOCUDA:
		return ENODEV;
	case SWAPIO_EDRIVES:
		return EXDEV;
	}
	if (err < 0 && err > SWAPIO_ERRNO_BASE)
		return -err;
	return EIO;
}

/* swapio.Error for @err with message @text; returns NULL. */
static PyObject *raise_err_text(int err, const char *text, PyObject *filename)
{
	PyObject *type = err == -ETIMEDOUT ? Timeout : Error;
	PyObject *exc, *code;
	int e = err_errno(err);

	if (filename)
		exc = PyObject_CallFunction(type, "isO", e, text, filename);
	else
		exc = PyObject_CallFunction(type, "is", e, text);
	if (!exc)
		return NULL;
	code = PyLong_FromLong(err);
	if (!code || PyObject_SetAttrString(exc, "code", code) < 0) {
		Py_XDECREF((PyObject *)code);
		Py_DECREF((PyObject *)exc);
		return NULL;
	}
	Py_DECREF((PyObject *)code);
	PyErr_SetObject(type, exc);
	Py_DECREF((PyObject *)exc);
	return NULL;
}

/* Raise swapio.Error for @err (negative); returns NULL for the caller. */
static PyObject *raise_err(int err, PyObject *filename)
{
	return raise_err_text(err, swapio_strerror(err), filename);
}

/* As raise_err(), with @h's GPU note after a CUDA error: which call. */
static PyObject *raise_dev_err(int err, swapio_handle *h, PyObject *filename)
{
	char text[768];
	size_t n;

	if ((err != SWAPIO_ECUDA && err != SWAPIO_ENOCUDA) || !h)
		return raise_err(err, filename);
	n = (size_t)snprintf(text, sizeof(text), "%s: ", swapio_strerror(err));
	if (n < sizeof(text))
		swapio_handle_gpu_note(h, text + n, sizeof(text) - n);
	return raise_err_text(err, text, filename);
}

/*
 * raise_err_detail() - raise_err() after a call whose contract says it may
 * set swapio_error_detail() (it clears it when it starts, so what is there
 * is its own): the detail, naming the path, variable or value at fault,
 * ends the message. Completions of ops never use it: their detail, if
 * any, belongs to another thread.
 */
static PyObject *raise_err_detail(int err, PyObject *filename)
{
	const char *d = swapio_error_detail();
	char text[768];

	if (!d || !*d)
		return raise_err(err, filename);
	snprintf(text, sizeof(text), "%s: %s", swapio_strerror(err), d);
	return raise_err_text(err, text, filename);
}

/* ------------------------------------------------------------------ */
/* Fork: objects remember the process generation they were made in     */
/* ------------------------------------------------------------------ */

static unsigned int fork_gen;	/* bumped in the child of every fork() */
static unsigned long main_thread;	/* where Python runs signal handlers */

/* The forking thread is the child's main thread, as Python makes it. */
static void fork_child(void)
{
	fork_gen++;
	main_thread = PyThread_get_thread_ident();
}

/*
 * An object made before this process forked (@gen is its generation):
 * raise swapio.Error with code EFORKED, as swapio's C calls return in a
 * child, and return -1. Closing and dropping never raise this.
 */
static int forked(unsigned int gen)
{
	if (gen == fork_gen)
		return 0;
	raise_err(SWAPIO_EFORKED, NULL);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Integer arguments: in range or refused, never wrapped               */
/* ------------------------------------------------------------------ */

/*
 * An int (or an object with __index__) in 0..@max: TypeError for
 * anything else (float, str), OverflowError out of range.
 */
static int conv_unsigned(PyObject *o, unsigned long long max,
			 unsigned long long *v)
{
	PyObject *i = PyNumber_Index(o);

	if (!i)
		return 0;
	*v = PyLong_AsUnsignedLongLong(i);
	if ((*v == (unsigned long long)-1 && PyErr_Occurred()) || *v > max) {
		PyErr_Clear();
		PyErr_Format(PyExc_OverflowError, "%R is out of range "
			     "(0 to %llu)", i, max);
		Py_DECREF(i);
		return 0;
	}
	Py_DECREF(i);
	return 1;
}

/* "O&" converters: unsigned long long and unsigned int. */
static int conv_u64(PyObject *o, void *p)
{
	return conv_unsigned(o, ULLONG_MAX, p);
}

static int conv_u32(PyObject *o, void *p)
{
	unsigned long long v;

	if (!conv_unsigned(o, UINT_MAX, &v))
		return 0;
	*(unsigned int *)p = (unsigned int)v;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Waits that Ctrl-C can interrupt                                     */
/* ------------------------------------------------------------------ */

#define WAIT_SLICE_MS		50
#define WAIT_INTERRUPTED	INT64_MIN	/* a signal handler raised */

/* A wait of swapio's: its result, or -ETIMEDOUT after @ms (0: poll). */
typedef int64_t (*wait_fn)(void *arg, int ms);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * wait_slices() - @fn(@arg, ...) until it returns anything but -ETIMEDOUT,
 * or @ms pass (-1: no limit), with the GIL released. In the main thread,
 * where signal handlers run, it waits in slices of 50 ms and runs the
 * pending handlers between them: when one raises (KeyboardInterrupt for
 * Ctrl-C), it returns WAIT_INTERRUPTED with that exception set and the
 * wait abandoned; whatever was waited for goes on. Elsewhere one wait.
 */
static int64_t wait_slices(wait_fn fn, void *arg, int ms)
{
	const uint64_t end = ms > 0 ? now_ms() + (uint64_t)ms : 0;
	int64_t ret;
	int slice;

	if (ms == 0)
		return fn(arg, 0);
	if (PyThread_get_thread_ident() != main_thread) {
		Py_BEGIN_ALLOW_THREADS
		ret = fn(arg, ms);
		Py_END_ALLOW_THREADS
		return ret;
	}
	for (;;) {
		slice = WAIT_SLICE_MS;
		if (ms > 0) {
			uint64_t now = now_ms();

			if (now >= end)
				return fn(arg, 0);
			if (end - now < (uint64_t)slice)
				slice = (int)(end - now);
		}
		Py_BEGIN_ALLOW_THREADS
		ret = fn(arg, slice);
		Py_END_ALLOW_THREADS
		if (ret != -ETIMEDOUT)
			return ret;
		if (PyErr_CheckSignals() < 0)
			return WAIT_INTERRUPTED;
	}
}

static int64_t op_wait_fn(void *op, int ms)
{
	return swapio_op_wait(op, ms);
}

static int64_t sop_wait_fn(void *op, int ms)
{
	return swapio_store_op_wait(op, ms);
}

/* Seconds (None: forever) to the milliseconds swapio's waits take. */
static int timeout_ms(PyObject *t, int *ms)
{
	double s, m;

	*ms = -1;
	if (!t || t == Py_None)
		return 0;
	s = PyFloat_AsDouble(t);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) {
		PyErr_SetString(PyExc_ValueError,
				"timeout must be >= 0 seconds, or None");
		return -1;
	}
	m = s * 1000.0;
	if (m >= (double)INT_MAX) {
		*ms = INT_MAX;
		return 0;
	}
	*ms = (int)m;
	if ((double)*ms < m)
		(*ms)++;	/* round up: never return before the time */
	return 0;
}

static int check_offset(long long off)
{
	if (off < 0) {
		PyErr_SetString(PyExc_ValueError, "offset must be >= 0");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Buffers: the buffer protocol or DLPack                              */
/* ------------------------------------------------------------------ */

struct xbuf {
	void *ptr;
	size_t len;
	int device;		/* CUDA device ordinal, or -1: host memory */
	void *stream;		/* the stream the producer readied it on */
	int has_view;
	Py_buffer view;
	DLManagedTensor *dl;	/* consumed capsule: ours to delete */
	PyObject *storage;	/* resizable torch storage under ptr, or NULL */
	uintptr_t storage_ptr;	/* its memory when taken */
	unsigned long long storage_len;
};

static char empty_byte;		/* a valid address for 0-byte transfers */

static void xbuf_release(struct xbuf *b)
{
	if (b->has_view)
		PyBuffer_Release(&b->view);
	b->has_view = 0;
	if (b->dl && b->dl->deleter)
		b->dl->deleter(b->dl);
	b->dl = NULL;
	Py_CLEAR(b->storage);
}

/*
 * Torch lets a CPU tensor be resize_()d while an op holds it: the storage
 * gets new memory and frees the old, which the op still moves data into,
 * and nothing swapio can hold keeps that memory (the DLPack tensor holds
 * the storage, not its memory). Torch refuses the resize only for a
 * storage that is not resizable (swapio's memory, torch.frombuffer), so
 * for the others the op notes the storage's memory here and
 * xbuf_moved() tells at completion whether it was replaced meanwhile.
 */
static void xbuf_guard(PyObject *obj, struct xbuf *b)
{
	PyObject *st = PyObject_CallMethod(obj, "untyped_storage", NULL);
	PyObject *rs = NULL, *ptr = NULL, *len = NULL;

	if (st)
		rs = PyObject_CallMethod(st, "resizable", NULL);
	if (rs && PyObject_IsTrue(rs) == 1)
		ptr = PyObject_CallMethod(st, "data_ptr", NULL);
	if (ptr)
		len = PyObject_CallMethod(st, "nbytes", NULL);
	if (len) {
		b->storage_ptr = (uintptr_t)PyLong_AsUnsignedLongLong(ptr);
		b->storage_len = PyLong_AsUnsignedLongLong(len);
		if (!PyErr_Occurred()) {
			b->storage = st;
			st = NULL;
		}
	}
	PyErr_Clear();		/* not torch: nothing to guard */
	Py_XDECREF(len);
	Py_XDECREF(ptr);
	Py_XDECREF(rs);
	Py_XDECREF(st);
}

/* 1 if the guarded storage's memory was replaced (resize_) since taken. */
static int xbuf_moved(struct xbuf *b)
{
	PyObject *ptr, *len, *type, *value, *tb;
	int moved;

	if (!b->storage)
		return 0;
	PyErr_Fetch(&type, &value, &tb);	/* maybe from a destructor */
	ptr = PyObject_CallMethod(b->storage, "data_ptr", NULL);
	len = ptr ? PyObject_CallMethod(b->storage, "nbytes", NULL) : NULL;
	moved = !len ||
		(uintptr_t)PyLong_AsUnsignedLongLong(ptr) != b->storage_ptr ||
		PyLong_AsUnsignedLongLong(len) != b->storage_len;
	PyErr_Clear();
	Py_XDECREF(len);
	Py_XDECREF(ptr);
	PyErr_Restore(type, value, tb);
	return moved;
}

/* The error an op whose tensor was resized in flight ends with. */
static PyObject *raise_resized(PyObject *filename)
{
	return raise_err_text(-EFAULT, "the tensor was resized (resize_()) "
			      "while the op was in flight: torch gave it new "
			      "memory and released the memory the op moved "
			      "data into; resize only after the op completes",
			      filename);
}

static int xbuf_from_view(PyObject *obj, int writable, struct xbuf *b)
{
	if (PyObject_GetBuffer(obj, &b->view, PyBUF_RECORDS_RO) < 0) {
		if (PyErr_ExceptionMatches(PyExc_BufferError)) {
			PyErr_Clear();
			PyErr_SetString(PyExc_ValueError,
					"buffer cannot be exported as a "
					"contiguous block of memory");
		}
		return -1;
	}
	b->has_view = 1;
	if (writable && b->view.readonly) {
		xbuf_release(b);
		PyErr_SetString(PyExc_TypeError,
				"cannot read into a read-only buffer");
		return -1;
	}
	if (!PyBuffer_IsContiguous(&b->view, 'A')) {
		xbuf_release(b);
		PyErr_SetString(PyExc_ValueError,
				"buffer is not contiguous; pass a contiguous "
				"array (e.g. numpy.ascontiguousarray)");
		return -1;
	}
	b->ptr = b->view.buf;
	b->len = (size_t)b->view.len;
	return 0;
}

/* Bytes of a compact row-major DLPack tensor, or -1 with an exception. */
static int dl_extent(const DLTensor *t, size_t *len)
{
	uint64_t elem_bits = (uint64_t)t->dtype.bits * t->dtype.lanes;
	uint64_t n = 1, expect = 1;
	int i;

	for (i = 0; i < t->ndim; i++) {
		if (t->shape[i] < 0 ||
		    (t->shape[i] && n > UINT64_MAX / (uint64_t)t->shape[i]))
			goto bad_shape;
		n *= (uint64_t)t->shape[i];
	}
	for (i = t->ndim - 1; t->strides && n > 1 && i >= 0; i--) {
		if (t->shape[i] != 1 && t->strides[i] != (int64_t)expect) {
			PyErr_SetString(PyExc_ValueError,
					"tensor is not contiguous; call "
					".contiguous() first");
			return -1;
		}
		expect *= (uint64_t)t->shape[i];
	}
	/* Sub-byte types (int4, bool bits) pack: round the total, not each. */
	if (elem_bits && n > (UINT64_MAX - 7) / elem_bits)
		goto bad_shape;
	n = (n * elem_bits + 7) / 8;
	if (n > SIZE_MAX)
		goto bad_shape;
	*len = (size_t)n;
	return 0;

bad_shape:
	PyErr_SetString(PyExc_ValueError, "DLPack tensor has a bad shape");
	return -1;
}

static int dl_on_cuda(int type)
{
	return type == kDLCUDA || type == kDLCUDAManaged;
}

static int dl_on_host(const DLTensor *t)
{
	return t->device.device_type == kDLCPU ||
	       t->device.device_type == kDLCUDAHost ||
	       t->device.device_type == kDLROCMHost;
}

/*
 * __dlpack__() of the producer; for device memory with stream=@stream
 * (DLPack: the producer makes that stream wait for its work on the
 * tensor). A producer without the stream argument is called without it,
 * and its memory is taken as ready on the legacy default stream.
 */
static PyObject *dlpack_call(PyObject *meth, struct xbuf *b, void *stream)
{
	PyObject *args, *kw, *s, *cap;

	if (b->device < 0)
		return PyObject_CallNoArgs(meth);
	args = PyTuple_New(0);
	s = PyLong_FromVoidPtr(stream);
	kw = s ? Py_BuildValue("{sO}", "stream", s) : NULL;
	cap = args && kw ? PyObject_Call(meth, args, kw) : NULL;
	Py_XDECREF(args);
	Py_XDECREF(s);
	Py_XDECREF(kw);
	b->stream = stream;
	if (!cap && PyErr_ExceptionMatches(PyExc_TypeError)) {
		PyErr_Clear();
		b->stream = NULL;
		cap = PyObject_CallNoArgs(meth);
	}
	return cap;
}

static int xbuf_from_dlpack(PyObject *meth, struct xbuf *b, void *stream)
{
	PyObject *cap = dlpack_call(meth, b, stream), *type, *value, *tb;
	DLTensor *t;

	if (!cap && PyErr_ExceptionMatches(PyExc_BufferError)) {
		/* torch says BufferError for meta, sparse... tensors */
		PyErr_Fetch(&type, &value, &tb);
		PyErr_Format(PyExc_ValueError, "cannot take the tensor's "
			     "memory: %S", value ? value : Py_None);
		Py_XDECREF(type);
		Py_XDECREF(value);
		Py_XDECREF(tb);
		return -1;
	}
	if (!cap)
		return -1;
	b->dl = PyCapsule_GetPointer(cap, "dltensor");
	if (!b->dl) {
		Py_DECREF((PyObject *)cap);
		PyErr_Clear();
		PyErr_SetString(PyExc_TypeError,
				"__dlpack__() did not return a DLPack capsule");
		return -1;
	}
	/* Consumed, as the protocol says: the deleter is ours to call. */
	if (PyCapsule_SetName(cap, "used_dltensor") < 0) {
		b->dl = NULL;
		Py_DECREF((PyObject *)cap);
		return -1;
	}
	Py_DECREF((PyObject *)cap);
	t = &b->dl->dl_tensor;
	if (b->device >= 0 && (!dl_on_cuda((int)t->device.device_type) ||
			       t->device.device_id != b->device)) {
		xbuf_release(b);
		PyErr_SetString(PyExc_ValueError, "__dlpack__() gave another "
				"device than __dlpack_device__() said");
		return -1;
	}
	if (b->device < 0 && !dl_on_host(t)) {
		xbuf_release(b);
		PyErr_Format(PyExc_ValueError,
			     "tensor lives in device memory (DLPack device "
			     "type %d); swapio moves host memory only",
			     (int)t->device.device_type);
		return -1;
	}
	if (dl_extent(t, &b->len) < 0) {
		xbuf_release(b);
		return -1;
	}
	b->ptr = (char *)t->data + t->byte_offset;
	return 0;
}

/*
 * As xbuf_from_dlpack(), with the tensor's device current on this thread
 * around the export: a producer works on the current device (torch
 * refuses to export a tensor of another one, and older torch would make
 * the wrong device's stream wait), and the caller's device is restored.
 */
static int xbuf_from_dlpack_on(PyObject *meth, struct xbuf *b, void *stream,
			       swapio_handle *h)
{
	struct swapio_dev_saved saved;
	int ret;

	if (b->device < 0)
		return xbuf_from_dlpack(meth, b, stream);
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_dev_enter(h, b->device, &saved);
	Py_END_ALLOW_THREADS
	if (ret < 0) {
		raise_dev_err(ret, h, NULL);
		return -1;
	}
	ret = xbuf_from_dlpack(meth, b, stream);
	swapio_dev_leave(h, &saved);
	return ret;
}

/*
 * A buffer from @obj's __dlpack__ (@meth), exported on its device, and
 * for host memory watched for a resize in flight (xbuf_guard()).
 */
static int xbuf_from_dlpack_of(PyObject *obj, PyObject *meth, struct xbuf *b,
			       void *stream, swapio_handle *h)
{
	if (xbuf_from_dlpack_on(meth, b, stream, h) < 0)
		return -1;
	if (b->device < 0)
		xbuf_guard(obj, b);
	return 0;
}

/*
 * The CUDA device @obj's memory is on, from __dlpack_device__(): 0 and
 * *device (-1 for host memory or no such method), or -1 with an exception.
 */
static int dl_device(PyObject *obj, int *device)
{
	PyObject *r;
	int type = 0, id = 0;

	*device = -1;
	r = PyObject_CallMethod(obj, "__dlpack_device__", NULL);
	if (!r) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return -1;
		PyErr_Clear();
		return 0;
	}
	if (!PyArg_ParseTuple(r, "ii;__dlpack_device__() must return "
			      "(device_type, device_id)", &type, &id)) {
		Py_DECREF(r);
		return -1;
	}
	Py_DECREF(r);
	if (dl_on_cuda(type)) {
		if (id < 0 || id >= SWAPIO_DEV_MAX) {
			PyErr_Format(PyExc_ValueError, "CUDA device %d out of "
				     "range", id);
			return -1;
		}
		*device = id;
	}
	return 0;
}

/*
 * xbuf_get() - the memory of @obj, held until xbuf_release(). @writable:
 * swapio will write into it (a read). With @h, CUDA device memory is
 * taken too (b->device >= 0), readied on @h's stream for that device;
 * without, it is refused.
 */
static int xbuf_get_on(PyObject *obj, int writable, swapio_handle *h,
		       struct xbuf *b)
{
	PyObject *meth;
	void *stream = NULL;
	int ret;

	memset(b, 0, sizeof(*b));
	b->device = -1;
	if (h && !PyObject_CheckBuffer(obj)) {
		if (dl_device(obj, &b->device) < 0)
			return -1;
		if (b->device >= 0) {
			Py_BEGIN_ALLOW_THREADS
			ret = swapio_dev_stream(h, b->device, &stream);
			Py_END_ALLOW_THREADS
			if (ret < 0) {
				raise_dev_err(ret, h, NULL);
				return -1;
			}
		}
	}
	if (PyObject_CheckBuffer(obj)) {
		ret = xbuf_from_view(obj, writable, b);
	} else {
		meth = PyObject_GetAttrString(obj, "__dlpack__");
		if (!meth) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError,
				     "expected a buffer (bytearray, memoryview, "
				     "NumPy array, mmap) or a CPU tensor with "
				     "__dlpack__, not %R", Py_TYPE((PyObject *)obj));
			return -1;
		}
		ret = xbuf_from_dlpack_of(obj, meth, b, stream, h);
		Py_DECREF((PyObject *)meth);
	}
	if (!ret && !b->ptr)
		b->ptr = &empty_byte;
	return ret;
}

static int xbuf_get(PyObject *obj, int writable, struct xbuf *b)
{
	return xbuf_get_on(obj, writable, NULL, b);
}

/* ------------------------------------------------------------------ */
/* Handle                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	swapio_handle *h;
	int closed;
	Py_ssize_t users;	/* files, stores, live path ops, calls */
	PyObject *weakrefs;	/* asyncio keeps a hub per handle */
	unsigned int gen;	/* fork_gen when made */
} HandleObject;

static void handle_release(HandleObject *ho)
{
	swapio_handle *h = ho->h;

	ho->h = NULL;
	if (!h)
		return;
	Py_BEGIN_ALLOW_THREADS
	swapio_handle_destroy(h);
	Py_END_ALLOW_THREADS
}

static void reap_orphans(void);
static struct orphan *orphans;

static int handle_use(HandleObject *ho)
{
	if (orphans)
		reap_orphans();
	if (forked(ho->gen))
		return -1;
	if (ho->closed || !ho->h) {
		PyErr_SetString(PyExc_ValueError, "the handle is closed");
		return -1;
	}
	ho->users++;
	return 0;
}

static void handle_unuse(HandleObject *ho)
{
	if (--ho->users == 0 && ho->closed)
		handle_release(ho);
}

static int handle_init(HandleObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "block_size", "queue_depth", "threads",
				  "engine", "direct", "direct_strict",
				  "single_submit", "overlap", "gpu_path",
				  "share_node", "spin_wait", NULL };
	static const char *const gpu_paths[] = { "auto", "staging", "gds" };
	const char *gpu_path = "auto";
	unsigned long long bs = 0;
	unsigned int qd = 0, threads = 0;
	const char *engine = "auto";
	int direct = 1, strict = 0, single = 0, overlap = 1, share = 0, spin = 1;
	int e, ret;
	struct swapio_config cfg = { 0 };
	swapio_handle *h;

	if (self->h) {
		PyErr_SetString(PyExc_RuntimeError, "handle already set up");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O&O&O&sppppzpp", kwlist,
					 conv_u64, &bs, conv_u32, &qd,
					 conv_u32, &threads, &engine, &direct,
					 &strict, &single, &overlap,
					 &gpu_path, &share, &spin))
		return -1;
	cfg.gpu_path = UINT32_MAX;
	for (uint32_t i = 0; i < 3; i++)
		if (gpu_path && !strcmp(gpu_path, gpu_paths[i]))
			cfg.gpu_path = i;
	if (!gpu_path)
		cfg.gpu_path = 0;
	if (cfg.gpu_path == UINT32_MAX) {
		PyErr_Format(PyExc_ValueError, "unknown gpu_path %s: expected "
			     "auto, staging or gds", gpu_path);
		return -1;
	}
	e = swapio_engine_parse(engine);
	if (e < 0) {
		PyErr_Format(PyExc_ValueError, "unknown engine %s: expected "
			     "auto, uring, aio or threads", engine);
		return -1;
	}
	cfg.block_size = bs;
	cfg.queue_depth = qd;
	cfg.threads = threads;
	cfg.engine = (uint32_t)e;
	cfg.flags = (direct ? 0 : SWAPIO_CFG_BUFFERED) |
		    (strict ? SWAPIO_CFG_DIRECT_STRICT : 0) |
		    (single ? SWAPIO_CFG_SINGLE_SUBMIT : 0) |
		    (overlap ? 0 : SWAPIO_CFG_NO_OVERLAP) |
		    (share ? SWAPIO_CFG_SHARE_NODE : 0) |
		    (spin ? 0 : SWAPIO_CFG_NO_SPIN);
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_handle_create(&cfg, &h);
	Py_END_ALLOW_THREADS
	if (ret < 0) {
		raise_err_detail(ret, NULL);
		return -1;
	}
	self->h = h;
	self->gen = fork_gen;
	return 0;
}

static void handle_dealloc(HandleObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	handle_release(self);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *handle_close(HandleObject *self, PyObject *unused)
{
	if (orphans)
		reap_orphans();
	self->closed = 1;
	if (self->users == 0)
		handle_release(self);
	Py_RETURN_NONE;
}

static PyObject *self_enter(PyObject *self, PyObject *unused)
{
	Py_INCREF((PyObject *)self);
	return self;
}

static PyObject *handle_exit(HandleObject *self, PyObject *args)
{
	return handle_close(self, NULL);
}

/* The handle is usable: made in this process, and not closed. */
static int handle_check(HandleObject *self)
{
	if (forked(self->gen))
		return -1;
	if (self->closed || !self->h) {
		PyErr_SetString(PyExc_ValueError, "the handle is closed");
		return -1;
	}
	return 0;
}

static PyObject *handle_engine(HandleObject *self, void *unused)
{
	if (handle_check(self))
		return NULL;
	return PyUnicode_FromString(swapio_handle_engine(self->h));
}

static PyObject *handle_engine_note(HandleObject *self, void *unused)
{
	if (handle_check(self))
		return NULL;
	return PyUnicode_FromString(swapio_handle_engine_note(self->h));
}

static PyObject *handle_gpu_note(HandleObject *self, void *unused)
{
	char text[1024];

	if (handle_check(self))
		return NULL;
	swapio_handle_gpu_note(self->h, text, sizeof(text));
	return PyUnicode_FromString(text);
}

static PyObject *handle_gpu_path(HandleObject *self, PyObject *args,
				 PyObject *kw)
{
	static char *kwlist[] = { "device", "write", NULL };
	static const char *const names[] = { "auto", "staging", "gds" };
	int device = 0, write = 0, r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|ip", kwlist, &device,
					 &write))
		return NULL;
	if (handle_check(self))
		return NULL;
	r = swapio_dev_path(self->h, device, write);
	if (r == -ENODEV)
		Py_RETURN_NONE;
	if (r < 0)
		return raise_err(r, NULL);
	return PyUnicode_FromString(names[r]);
}

static PyObject *handle_config(HandleObject *self, void *unused)
{
	static const char *const gpu_paths[] = { "auto", "staging", "gds" };
	struct swapio_config c;

	if (handle_check(self))
		return NULL;
	swapio_handle_config(self->h, &c);
	return Py_BuildValue("{sKsIsIsssOsOsOsOsOss}",
		"block_size", (unsigned long long)c.block_size,
		"queue_depth", c.queue_depth, "threads", c.threads,
		"engine", swapio_engine_name(c.engine) ?
			  swapio_engine_name(c.engine) : "auto",
		"direct", (c.flags & SWAPIO_CFG_BUFFERED) ? Py_False : Py_True,
		"direct_strict",
		(c.flags & SWAPIO_CFG_DIRECT_STRICT) ? Py_True : Py_False,
		"single_submit",
		(c.flags & SWAPIO_CFG_SINGLE_SUBMIT) ? Py_True : Py_False,
		"overlap",
		(c.flags & SWAPIO_CFG_NO_OVERLAP) ? Py_False : Py_True,
		"spin_wait", (c.flags & SWAPIO_CFG_NO_SPIN) ? Py_False : Py_True,
		"gpu_path", gpu_paths[c.gpu_path % 3]);
}

static PyObject *handle_closed(HandleObject *self, void *unused)
{
	return PyBool_FromLong(self->closed || !self->h);
}

static PyObject *handle_stats(HandleObject *self, PyObject *unused)
{
	struct swapio_stats s;

	if (handle_check(self))
		return NULL;
	swapio_handle_stats(self->h, &s);
	return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsK}",
		"bytes_read", (unsigned long long)s.bytes_read,
		"bytes_written", (unsigned long long)s.bytes_written,
		"ops", (unsigned long long)s.ops,
		"requests", (unsigned long long)s.requests,
		"syscalls", (unsigned long long)s.syscalls,
		"retries", (unsigned long long)s.retries,
		"bounced_bytes", (unsigned long long)s.bounced_bytes,
		"registered", (unsigned long long)s.registered,
		"busy_ns", (unsigned long long)s.busy_ns,
		"lat_p50_ns", (unsigned long long)s.lat_p50_ns,
		"lat_p99_ns", (unsigned long long)s.lat_p99_ns,
		"lat_max_ns", (unsigned long long)s.lat_max_ns);
}

static PyObject *handle_reset_stats(HandleObject *self, PyObject *unused)
{
	if (handle_check(self))
		return NULL;
	swapio_handle_stats_reset(self->h);
	Py_RETURN_NONE;
}

static PyObject *handle_fileno(HandleObject *self, PyObject *unused)
{
	int fd;

	if (handle_check(self))
		return NULL;
	fd = swapio_handle_eventfd(self->h);
	if (fd < 0)
		return raise_err(fd, NULL);
	return PyLong_FromLong(fd);
}

static int64_t wait_all_fn(void *h, int ms)
{
	return swapio_wait_all(h, ms);
}

/*
 * In the main thread the wait runs in slices (wait_slices()), each a
 * barrier over the ops submitted before it: ops another thread submits
 * meanwhile may lengthen it there.
 */
static PyObject *handle_wait_all(HandleObject *self, PyObject *args,
				 PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *t = Py_None;
	int64_t ret;
	int ms;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &t) ||
	    timeout_ms(t, &ms) < 0 || handle_use(self) < 0)
		return NULL;
	ret = wait_slices(wait_all_fn, self->h, ms);
	handle_unuse(self);
	if (ret == WAIT_INTERRUPTED)
		return NULL;
	if (ret < 0)
		return raise_err((int)ret, NULL);
	if (orphans)
		reap_orphans();	/* every op before the call is done */
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* File                                                                */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	HandleObject *owner;
	swapio_file *f;
	PyObject *path;		/* as given, for messages */
	int closed;
	int close_err;		/* error of a deferred close(2) */
	Py_ssize_t users;	/* ops not yet observed, calls in progress */
} FileObject;

static int file_release(FileObject *fo)
{
	swapio_file *f = fo->f;
	int ret;

	fo->f = NULL;
	if (!f)
		return 0;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_file_close(f);
	Py_END_ALLOW_THREADS
	handle_unuse(fo->owner);
	return ret;
}

/* The file and its handle are usable (made here, neither closed). */
static int file_check(FileObject *fo)
{
	if (forked(fo->owner->gen))
		return -1;
	if (fo->closed || !fo->f) {
		PyErr_SetString(PyExc_ValueError, "I/O on a closed file");
		return -1;
	}
	if (fo->owner->closed) {
		PyErr_SetString(PyExc_ValueError,
				"the file's handle is closed");
		return -1;
	}
	return 0;
}

static int file_use(FileObject *fo)
{
	if (orphans)
		reap_orphans();
	if (file_check(fo) < 0)
		return -1;
	fo->users++;
	return 0;
}

static void file_unuse(FileObject *fo)
{
	if (--fo->users == 0 && fo->closed)
		fo->close_err = file_release(fo);
}

/* Open flags for a Python-style mode: r, r+, w, w+, a (create, keep). */
static int mode_flags(const char *mode, unsigned int *flags)
{
	static const struct {
		const char *mode;
		unsigned int flags;
	} modes[] = {
		{ "r", SWAPIO_O_READ },
		{ "r+", SWAPIO_O_READ | SWAPIO_O_WRITE },
		{ "w", SWAPIO_O_WRITE | SWAPIO_O_CREATE | SWAPIO_O_TRUNC },
		{ "w+", SWAPIO_O_READ | SWAPIO_O_WRITE | SWAPIO_O_CREATE |
			SWAPIO_O_TRUNC },
		{ "a", SWAPIO_O_WRITE | SWAPIO_O_CREATE },
		{ "a+", SWAPIO_O_READ | SWAPIO_O_WRITE | SWAPIO_O_CREATE },
	};
	char m[4];
	size_t i, j = 0;

	for (i = 0; mode[i] && j < sizeof(m) - 1; i++)
		if (mode[i] != 'b')
			m[j++] = mode[i];
	m[j] = '\0';
	for (i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
		if (!strcmp(m, modes[i].mode)) {
			*flags = modes[i].flags;
			return 0;
		}
	}
	PyErr_Format(PyExc_ValueError, "invalid mode %s: expected r, r+, w, "
		     "w+, a or a+", mode);
	return -1;
}

static PyObject *handle_open(HandleObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "path", "mode", NULL };
	PyObject *path, *bytes = NULL;
	const char *mode = "r";
	unsigned int flags;
	FileObject *fo;
	swapio_file *f;
	int ret;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s", kwlist, &path,
					 &mode) || mode_flags(mode, &flags))
		return NULL;
	if (!PyUnicode_FSConverter(path, &bytes))
		return NULL;
	if (handle_use(self) < 0)
		goto err_bytes;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_file_open(self->h, PyBytes_AsString(bytes), flags, &f);
	Py_END_ALLOW_THREADS
	if (ret < 0) {
		raise_err_detail(ret, path);
		goto err_unuse;
	}
	fo = PyObject_New(FileObject, FileType);
	if (!fo)
		goto err_close;
	Py_INCREF((PyObject *)self);
	fo->owner = self;
	fo->f = f;
	Py_INCREF((PyObject *)path);
	fo->path = path;
	fo->closed = 0;
	fo->close_err = 0;
	fo->users = 0;
	Py_DECREF((PyObject *)bytes);
	return (PyObject *)fo;

err_close:
	swapio_file_close(f);
err_unuse:
	handle_unuse(self);
err_bytes:
	Py_DECREF((PyObject *)bytes);
	return NULL;
}

static void file_dealloc(FileObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	self->closed = 1;
	file_release(self);
	Py_XDECREF((PyObject *)self->path);
	Py_XDECREF((PyObject *)self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *file_close(FileObject *self, PyObject *unused)
{
	int ret;

	if (self->closed)
		Py_RETURN_NONE;
	self->closed = 1;
	if (self->owner->gen != fork_gen)
		Py_RETURN_NONE;	/* the parent's file: nothing to do */
	if (orphans)
		reap_orphans();
	if (self->users)
		Py_RETURN_NONE;	/* the last op or call closes it */
	ret = file_release(self);
	if (ret < 0)
		return raise_err(ret, self->path);
	Py_RETURN_NONE;
}

static PyObject *file_exit(FileObject *self, PyObject *args)
{
	return file_close(self, NULL);
}

static PyObject *file_closed(FileObject *self, void *unused)
{
	return PyBool_FromLong(self->closed);
}

static PyObject *file_name(FileObject *self, void *unused)
{
	Py_INCREF((PyObject *)self->path);
	return self->path;
}

static PyObject *file_handle(FileObject *self, void *unused)
{
	Py_INCREF((PyObject *)self->owner);
	return (PyObject *)self->owner;
}

static PyObject *file_size(FileObject *self, void *unused)
{
	int64_t n;

	if (file_check(self))
		return NULL;
	n = swapio_file_size(self->f);
	if (n < 0)
		return raise_err((int)n, self->path);
	return PyLong_FromLongLong(n);
}

static PyObject *file_direct(FileObject *self, void *unused)
{
	if (file_check(self))
		return NULL;
	return PyBool_FromLong(swapio_file_direct(self->f) == 1);
}

static PyObject *file_alignment(FileObject *self, void *unused)
{
	uint32_t mem, off;

	if (file_check(self))
		return NULL;
	swapio_file_alignment(self->f, &mem, &off);
	return Py_BuildValue("(II)", mem, off);
}

static PyObject *file_sync(FileObject *self, PyObject *unused)
{
	int ret;

	if (file_use(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_file_sync(self->f);
	Py_END_ALLOW_THREADS
	file_unuse(self);
	if (ret < 0)
		return raise_err(ret, self->path);
	Py_RETURN_NONE;
}

static PyObject *file_allocate(FileObject *self, PyObject *args)
{
	long long off, len;
	int ret;

	if (!PyArg_ParseTuple(args, "LL", &off, &len) || check_offset(off) ||
	    check_offset(len) || file_use(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_file_allocate(self->f, (uint64_t)off, (uint64_t)len);
	Py_END_ALLOW_THREADS
	file_unuse(self);
	if (ret < 0)
		return raise_err(ret, self->path);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Orphans: ops in flight that nobody waits for any more               */
/* ------------------------------------------------------------------ */

/*
 * An Op or StoreOp dropped while in flight, or the op of a sync call that
 * a signal interrupted: nobody can wait for it any more, yet the kernel
 * may still write into its buffer. It becomes an orphan, which keeps the
 * buffer and its user (the file, handle or store it counts in, so that
 * none is released under it) until the op completes; reap_orphans()
 * lets the completed ones go, at the next call that uses a handle, file
 * or store, and Handle.wait_all() after its wait. A list under the GIL.
 */
enum { ORPHAN_HANDLE, ORPHAN_FILE, ORPHAN_STORE };

struct orphan {
	struct orphan *next;
	swapio_op *op;		/* the op, or */
	swapio_store_op *sop;	/* the store op */
	struct xbuf buf;
	PyObject *user;		/* a reference, and one use of it */
	int kind;		/* ORPHAN_* */
	unsigned int gen;
};

static struct orphan *orphans;

static void store_unuse_obj(PyObject *so);

/* Let a completed orphan go: the op, its buffer, its use; not @o itself. */
static void orphan_settle(struct orphan *o)
{
	if (o->gen == fork_gen) {
		/* Complete: neither blocks beyond a store op's commit. */
		Py_BEGIN_ALLOW_THREADS
		if (o->op)
			swapio_op_free(o->op);
		else
			swapio_store_op_free(o->sop);
		Py_END_ALLOW_THREADS
	}
	xbuf_release(&o->buf);
	if (o->kind == ORPHAN_FILE)
		file_unuse((FileObject *)o->user);
	else if (o->kind == ORPHAN_HANDLE)
		handle_unuse((HandleObject *)o->user);
	else
		store_unuse_obj(o->user);
	Py_DECREF(o->user);
}

static int orphan_done(const struct orphan *o)
{
	if (o->gen != fork_gen)
		return 1;	/* the parent's: nothing to wait for here */
	if (o->op)
		return swapio_op_done(o->op);
	return swapio_store_op_done(o->sop) == 1;
}

/* Let every completed orphan go. */
static void reap_orphans(void)
{
	struct orphan **pp = &orphans, *o, *done = NULL;

	/* Unlink first: releasing may run Python code that adds orphans. */
	while ((o = *pp)) {
		if (!orphan_done(o)) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		o->next = done;
		done = o;
	}
	while ((o = done)) {
		done = o->next;
		orphan_settle(o);
		PyMem_Free(o);
	}
}

/*
 * orphan_add() - hand over @op or @sop, the buffer @b (moved out) and one
 * use of @user (of kind @kind; a new reference is taken). Without memory
 * for the record, waits for the op here instead (GIL released).
 */
static void orphan_add(swapio_op *op, swapio_store_op *sop, struct xbuf *b,
		       PyObject *user, int kind)
{
	struct orphan *o = PyMem_Calloc(1, sizeof(*o)), tmp;

	Py_INCREF(user);
	if (!o) {
		o = &tmp;
		memset(o, 0, sizeof(*o));
	}
	o->op = op;
	o->sop = sop;
	o->buf = *b;
	memset(b, 0, sizeof(*b));
	o->user = user;
	o->kind = kind;
	o->gen = fork_gen;
	if (o == &tmp) {
		/* No memory for the record: wait here, as a last resort. */
		if (o->gen == fork_gen) {
			Py_BEGIN_ALLOW_THREADS
			if (op)
				swapio_op_wait(op, -1);
			else
				swapio_store_op_wait(sop, -1);
			Py_END_ALLOW_THREADS
		}
		orphan_settle(o);
		return;
	}
	o->next = orphans;
	orphans = o;
}

/* ------------------------------------------------------------------ */
/* Transfers, sync and async                                           */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	swapio_op *op;		/* NULL once finished */
	HandleObject *owner;
	FileObject *file;	/* NULL for a path op */
	PyObject *path;		/* the path as given, for errors */
	struct xbuf buf;
	ssize_t result;
	int finished;
	int waiters;		/* threads inside swapio_op_wait() */
	int write;
	int resized;		/* its tensor was resized in flight */
	unsigned int gen;	/* fork_gen when made */
} OpObject;

/* The target of one transfer: an open file, or a path on a handle. */
struct target {
	HandleObject *ho;
	FileObject *fo;		/* or NULL, then path */
	PyObject *path;		/* as given */
	PyObject *bytes;	/* its file system encoding */
};

static int target_use(struct target *t)
{
	if (t->fo)
		return file_use(t->fo);
	return handle_use(t->ho);
}

static void target_unuse(struct target *t)
{
	if (t->fo)
		file_unuse(t->fo);
	else
		handle_unuse(t->ho);
}

/* The orphan kind and object of @t's use. */
static PyObject *target_user(struct target *t, int *kind)
{
	*kind = t->fo ? ORPHAN_FILE : ORPHAN_HANDLE;
	return t->fo ? (PyObject *)t->fo : (PyObject *)t->ho;
}

static int target_submit(struct target *t, struct xbuf *b, uint64_t off,
			 int write, swapio_op **op)
{
	swapio_handle *h = t->ho->h;
	swapio_file *f = t->fo ? t->fo->f : NULL;
	const char *p = t->bytes ? PyBytes_AsString(t->bytes) : NULL;
	int ret, d = b->device;

	Py_BEGIN_ALLOW_THREADS
	if (d >= 0 && f && write)
		ret = swapio_dev_submit_write(h, f, d, b->ptr, b->len, off,
					      b->stream, op);
	else if (d >= 0 && f)
		ret = swapio_dev_submit_read(h, f, d, b->ptr, b->len, off,
					     b->stream, op);
	else if (d >= 0 && write)
		ret = swapio_dev_submit_write_path(h, p, d, b->ptr, b->len,
						   off, b->stream, op);
	else if (d >= 0)
		ret = swapio_dev_submit_read_path(h, p, d, b->ptr, b->len, off,
						  b->stream, op);
	else if (f && write)
		ret = swapio_submit_write(h, f, b->ptr, b->len, off, op);
	else if (f)
		ret = swapio_submit_read(h, f, b->ptr, b->len, off, op);
	else if (write)
		ret = swapio_submit_write_path(h, p, b->ptr, b->len, off, op);
	else
		ret = swapio_submit_read_path(h, p, b->ptr, b->len, off, op);
	Py_END_ALLOW_THREADS
	return ret;
}

/*
 * A submit failed: name the caller's path, and say what CUDA said, or
 * what opening the file by path had to say.
 */
static void raise_submit_err(int err, struct target *t)
{
	if (err == SWAPIO_ECUDA || err == SWAPIO_ENOCUDA)
		raise_dev_err(err, t->ho->h, t->path);
	else if (!t->fo)
		raise_err_detail(err, t->path);
	else
		raise_err(err, t->path);
}

static PyObject *transfer(struct target *t, PyObject *bufobj, long long off,
			  int write, int async)
{
	struct xbuf b;
	swapio_op *op;
	OpObject *o;
	ssize_t n;

	int64_t r;
	int kind;

	if (check_offset(off) || target_use(t) < 0)
		return NULL;
	if (xbuf_get_on(bufobj, !write, t->ho->h, &b) < 0) {
		target_unuse(t);
		return NULL;
	}
	if (!async) {
		/* An op waited for at once, as swapio_pread() does, in slices
		 * so that Ctrl-C gets through. */
		n = target_submit(t, &b, (uint64_t)off, write, &op);
		if (n < 0) {
			raise_submit_err((int)n, t);
			goto err_unuse;
		}
		r = wait_slices(op_wait_fn, op, -1);
		if (r == WAIT_INTERRUPTED) {
			orphan_add(op, NULL, &b, target_user(t, &kind), kind);
			return NULL;	/* the orphan keeps the use */
		}
		swapio_op_free(op);	/* complete: does not block */
		target_unuse(t);
		kind = xbuf_moved(&b);
		xbuf_release(&b);
		if (kind)
			return raise_resized(t->path);
		if (r < 0)
			return raise_dev_err((int)r, t->ho->h, t->path);
		return PyLong_FromSsize_t((ssize_t)r);
	}
	o = PyObject_New(OpObject, OpType);
	if (!o)
		goto err_unuse;
	n = target_submit(t, &b, (uint64_t)off, write, &op);
	if (n < 0) {
		o->op = NULL;
		o->owner = NULL;
		o->file = NULL;
		o->path = NULL;
		o->finished = 1;
		o->buf.has_view = 0;
		o->buf.dl = NULL;
		Py_DECREF((PyObject *)o);
		raise_submit_err((int)n, t);
		goto err_unuse;
	}
	o->op = op;
	Py_INCREF((PyObject *)t->ho);
	o->owner = t->ho;
	Py_XINCREF((PyObject *)t->fo);
	o->file = t->fo;
	Py_XINCREF(t->path);
	o->path = t->path;
	o->buf = b;
	o->result = 0;
	o->finished = 0;
	o->waiters = 0;
	o->write = write;
	o->resized = 0;
	o->gen = fork_gen;
	return (PyObject *)o;

err_unuse:
	target_unuse(t);
	xbuf_release(&b);
	return NULL;
}

static PyObject *file_xfer(FileObject *self, PyObject *args, PyObject *kw,
			   int write, int async)
{
	static char *kwlist[] = { "buf", "offset", NULL };
	struct target t = { self->owner, self, self->path, NULL };
	PyObject *buf;
	long long off = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|L", kwlist, &buf, &off))
		return NULL;
	return transfer(&t, buf, off, write, async);
}

static PyObject *file_pread(FileObject *s, PyObject *a, PyObject *k)
{
	return file_xfer(s, a, k, 0, 0);
}

static PyObject *file_pwrite(FileObject *s, PyObject *a, PyObject *k)
{
	return file_xfer(s, a, k, 1, 0);
}

static PyObject *file_read_async(FileObject *s, PyObject *a, PyObject *k)
{
	return file_xfer(s, a, k, 0, 1);
}

static PyObject *file_write_async(FileObject *s, PyObject *a, PyObject *k)
{
	return file_xfer(s, a, k, 1, 1);
}

static PyObject *path_xfer(HandleObject *self, PyObject *args, PyObject *kw,
			   int write, int async)
{
	static char *kwlist[] = { "path", "buf", "offset", NULL };
	struct target t = { self, NULL, NULL, NULL };
	PyObject *buf, *ret;
	long long off = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|L", kwlist, &t.path,
					 &buf, &off))
		return NULL;
	if (!PyUnicode_FSConverter(t.path, &t.bytes))
		return NULL;
	ret = transfer(&t, buf, off, write, async);
	Py_DECREF((PyObject *)t.bytes);
	return ret;
}

static PyObject *handle_pread(HandleObject *s, PyObject *a, PyObject *k)
{
	return path_xfer(s, a, k, 0, 0);
}

static PyObject *handle_pwrite(HandleObject *s, PyObject *a, PyObject *k)
{
	return path_xfer(s, a, k, 1, 0);
}

static PyObject *handle_read_async(HandleObject *s, PyObject *a, PyObject *k)
{
	return path_xfer(s, a, k, 0, 1);
}

static PyObject *handle_write_async(HandleObject *s, PyObject *a, PyObject *k)
{
	return path_xfer(s, a, k, 1, 1);
}

/* ------------------------------------------------------------------ */
/* Op                                                                  */
/* ------------------------------------------------------------------ */

/* @o completed with @res and nobody waits in C: release all it holds. */
static void op_finish(OpObject *o, ssize_t res)
{
	if (xbuf_moved(&o->buf)) {
		o->resized = 1;
		res = -EFAULT;
	}
	o->result = res;
	o->finished = 1;
	swapio_op_free(o->op);	/* complete: does not block */
	o->op = NULL;
	xbuf_release(&o->buf);
	if (o->file)
		file_unuse(o->file);
	else
		handle_unuse(o->owner);
}

/*
 * Wait up to @ms for @o (GIL released, Ctrl-C heard: wait_slices()); the
 * result, -ETIMEDOUT, or WAIT_INTERRUPTED with the exception set.
 */
static int64_t op_wait_ms(OpObject *o, int ms)
{
	int64_t ret;

	if (o->finished)
		return o->result;
	o->waiters++;
	ret = wait_slices(op_wait_fn, o->op, ms);
	/* The last thread out frees the op: no one else is inside it. */
	if (--o->waiters == 0 && !o->finished && ret != -ETIMEDOUT &&
	    ret != WAIT_INTERRUPTED)
		op_finish(o, (ssize_t)ret);
	return o->finished ? o->result : ret;
}

/* An exception for a finished op's error: the path it moved data of. */
static PyObject *raise_op_err(OpObject *o, int err)
{
	if (o->resized)
		return raise_resized(o->path);
	return raise_err(err, o->path);
}

static void op_dealloc(OpObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	/*
	 * Still in flight: the kernel may be writing into the buffer we hold.
	 * In this process, an orphan keeps it (and the file or handle the op
	 * counts in) until the op completes; never a wait here, which Ctrl-C
	 * could not end. A parent's op, in a child, has nothing to wait for.
	 */
	if (!self->finished && self->op) {
		if (self->gen != fork_gen || swapio_op_done(self->op)) {
			op_finish(self, self->gen != fork_gen ?
				  SWAPIO_EFORKED : swapio_op_wait(self->op, 0));
		} else {
			PyObject *user = self->file ? (PyObject *)self->file :
				(PyObject *)self->owner;

			orphan_add(self->op, NULL, &self->buf, user,
				   self->file ? ORPHAN_FILE : ORPHAN_HANDLE);
			self->op = NULL;
			self->finished = 1;
		}
	}
	Py_XDECREF(self->path);
	Py_XDECREF((PyObject *)self->file);
	Py_XDECREF((PyObject *)self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *op_wait(OpObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *t = Py_None;
	int64_t ret;
	int ms;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &t) ||
	    timeout_ms(t, &ms) < 0 || forked(self->gen))
		return NULL;
	ret = op_wait_ms(self, ms);
	if (ret == WAIT_INTERRUPTED)
		return NULL;
	if (ret < 0)
		return raise_op_err(self, (int)ret);
	return PyLong_FromSsize_t((ssize_t)ret);
}

static PyObject *op_done(OpObject *self, PyObject *unused)
{
	if (forked(self->gen))
		return NULL;
	if (self->finished)
		Py_RETURN_TRUE;
	return PyBool_FromLong(op_wait_ms(self, 0) != -ETIMEDOUT);
}

static PyObject *op_result(OpObject *self, void *unused)
{
	int64_t ret;

	if (forked(self->gen))
		return NULL;
	ret = op_wait_ms(self, 0);
	if (ret == -ETIMEDOUT && !self->finished)
		Py_RETURN_NONE;
	if (ret < 0)
		return raise_op_err(self, (int)ret);
	return PyLong_FromSsize_t((ssize_t)ret);
}

static PyObject *op_nbytes(OpObject *self, void *unused)
{
	return PyLong_FromSize_t(self->buf.len);
}

static PyObject *op_handle(OpObject *self, void *unused)
{
	if (!self->owner)
		Py_RETURN_NONE;
	Py_INCREF((PyObject *)self->owner);
	return (PyObject *)self->owner;
}

static PyObject *op_is_write(OpObject *self, void *unused)
{
	return PyBool_FromLong(self->write);
}

static PyObject *op_await(OpObject *self)
{
	if (!await_hook) {
		PyErr_SetString(PyExc_RuntimeError, "swapio._aio not loaded");
		return NULL;
	}
	return PyObject_CallFunctionObjArgs(await_hook, (PyObject *)self,
					    NULL);
}

struct any_args {
	swapio_op **ops;
	unsigned int n;
};

static int64_t wait_any_fn(void *arg, int ms)
{
	struct any_args *a = arg;

	return swapio_wait_any(a->ops, a->n, ms);
}

static PyObject *wait_any(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "ops", "timeout", NULL };
	PyObject *seq, *list, *t = Py_None, *ret = NULL;
	swapio_op **cops = NULL;
	struct any_args aa;
	OpObject *o;
	Py_ssize_t i, n;
	int64_t r = 0;
	int ms;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &seq, &t) ||
	    timeout_ms(t, &ms) < 0)
		return NULL;
	list = PySequence_List(seq);
	if (!list)
		return NULL;
	n = PyList_Size(list);
	if (n == 0 || n > UINT_MAX) {
		PyErr_SetString(PyExc_ValueError, "wait_any() needs 1 or more "
				"ops");
		goto out;
	}
	cops = PyMem_Calloc((size_t)n, sizeof(*cops));
	if (!cops) {
		PyErr_NoMemory();
		goto out;
	}
	for (i = 0; i < n; i++) {
		o = (OpObject *)PyList_GetItem(list, i);
		if (!PyObject_TypeCheck((PyObject *)o, OpType)) {
			PyErr_SetString(PyExc_TypeError, "wait_any() takes "
					"swapio.Op objects");
			goto out;
		}
		if (forked(o->gen))
			goto out;
		if (o->finished) {
			ret = PyLong_FromSsize_t(i);
			goto out;
		}
		if (o->owner != ((OpObject *)PyList_GetItem(list, 0))->owner) {
			PyErr_SetString(PyExc_ValueError, "wait_any(): all ops "
					"must belong to one handle");
			goto out;
		}
		cops[i] = o->op;
	}
	for (i = 0; i < n; i++)
		((OpObject *)PyList_GetItem(list, i))->waiters++;
	aa.ops = cops;
	aa.n = (unsigned int)n;
	r = wait_slices(wait_any_fn, &aa, ms);
	for (i = 0; i < n; i++)
		((OpObject *)PyList_GetItem(list, i))->waiters--;
	if (r == WAIT_INTERRUPTED)
		goto out;
	if (r < 0) {
		raise_err((int)r, NULL);
		goto out;
	}
	op_wait_ms((OpObject *)PyList_GetItem(list, (Py_ssize_t)r), 0);
	ret = PyLong_FromLong((long)r);
out:
	PyMem_Free(cops);
	Py_DECREF((PyObject *)list);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Buffer: memory from swapio_buf_alloc(), or a view of a pipeline's    */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	void *ptr;
	size_t size;		/* bytes exposed */
	size_t alloc;		/* bytes to swapio_buf_free(); 0: not ours */
	PyObject *owner;	/* keeps ptr alive when not ours */
	int locked;
} BufferObject;

static int buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self, self->ptr,
				 (Py_ssize_t)self->size, 0, flags);
}

static void buffer_releasebuffer(BufferObject *self, Py_buffer *view)
{
}

static void buffer_dealloc(BufferObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	if (self->alloc)
		swapio_buf_free(self->ptr, self->alloc);
	Py_XDECREF((PyObject *)self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *buffer_new_view(void *ptr, size_t size, PyObject *owner)
{
	BufferObject *b = PyObject_New(BufferObject, BufferType);

	if (!b)
		return NULL;
	b->ptr = ptr;
	b->size = size;
	b->alloc = 0;
	Py_XINCREF((PyObject *)owner);
	b->owner = owner;
	b->locked = 0;
	return (PyObject *)b;
}

static PyObject *buffer_alloc(size_t size, unsigned int flags)
{
	size_t alloc = size ? size : 1;
	BufferObject *b;
	void *p;
	int ret;

	Py_BEGIN_ALLOW_THREADS
	ret = swapio_buf_alloc(alloc, flags, &p);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	b = (BufferObject *)buffer_new_view(p, size, NULL);
	if (!b) {
		swapio_buf_free(p, alloc);
		return NULL;
	}
	b->alloc = alloc;
	b->locked = !!(flags & SWAPIO_BUF_LOCKED);
	return (PyObject *)b;
}

static PyObject *mod_alloc(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbytes", "pinned", "huge", NULL };
	unsigned long long n;
	int pinned = 1, huge = 1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pp", kwlist,
					 conv_u64, &n, &pinned, &huge))
		return NULL;
	if (n > PY_SSIZE_T_MAX) {
		PyErr_SetString(PyExc_OverflowError, "nbytes too large");
		return NULL;
	}
	return buffer_alloc((size_t)n, (pinned ? SWAPIO_BUF_LOCKED : 0) |
				       (huge ? SWAPIO_BUF_HUGE : 0));
}

static Py_ssize_t buffer_len(BufferObject *self)
{
	return (Py_ssize_t)self->size;
}

static PyObject *buffer_pinned(BufferObject *self, void *unused)
{
	return PyBool_FromLong(self->locked);
}

static PyObject *buffer_address(BufferObject *self, void *unused)
{
	return PyLong_FromVoidPtr(self->ptr);
}

/* ------------------------------------------------------------------ */
/* Module functions                                                    */
/* ------------------------------------------------------------------ */

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long err = PyLong_AsLong(arg);

	if (err == -1 && PyErr_Occurred())
		return NULL;
	if (err < INT_MIN || err > INT_MAX) {
		PyErr_Format(PyExc_OverflowError, "%R is out of range", arg);
		return NULL;
	}
	return PyUnicode_FromString(swapio_strerror((int)err));
}

static PyObject *mod_version(PyObject *mod, PyObject *unused)
{
	unsigned int v = swapio_version();

	return Py_BuildValue("(III)", v / 10000, v / 100 % 100, v % 100);
}

static PyObject *mod_probe(PyObject *mod, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8AndSize(arg, NULL);
	int e, ret;

	if (!name)
		return NULL;
	e = swapio_engine_parse(name);
	if (e < 0) {
		PyErr_Format(PyExc_ValueError, "unknown engine %s", name);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_engine_probe((unsigned int)e);
	Py_END_ALLOW_THREADS
	return PyLong_FromLong(ret);
}

static PyObject *mod_checksum(PyObject *mod, PyObject *arg)
{
	struct xbuf b;
	uint64_t sum;

	if (xbuf_get(arg, 0, &b) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	sum = swapio_store_checksum(b.ptr, b.len);
	Py_END_ALLOW_THREADS
	xbuf_release(&b);
	return PyLong_FromUnsignedLongLong(sum);
}

static PyObject *mod_hugepages(PyObject *mod, PyObject *arg)
{
	struct xbuf b;
	int64_t ret;

	if (xbuf_get(arg, 0, &b) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = b.len ? swapio_mem_hugepages(b.ptr, b.len) : 0;
	Py_END_ALLOW_THREADS
	xbuf_release(&b);
	if (ret < 0)
		return raise_err((int)ret, NULL);
	return PyLong_FromLongLong(ret);
}

static PyObject *mod_set_await_hook(PyObject *mod, PyObject *fn)
{
	PyObject *old = await_hook;

	Py_INCREF((PyObject *)fn);
	await_hook = fn;
	Py_XDECREF((PyObject *)old);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Store                                                               */
/* ------------------------------------------------------------------ */

static PyObject *NoSuchKey;	/* swapio.NoSuchKey(Error, KeyError) */

typedef struct {
	PyObject_HEAD
	HandleObject *owner;	/* drive 0's handle */
	PyObject *drives;	/* striped: a tuple of each drive's handle */
	swapio_store *s;
	PyObject *dir;
	int closed;
	Py_ssize_t users;	/* ops not yet observed, pipelines, calls */
	unsigned int gen;	/* fork_gen when opened */
} StoreObject;

/* Every handle the store uses: drive 0's, and the others' when striped. */
static void store_unuse_handles(HandleObject *ho, PyObject *drives,
				Py_ssize_t n)
{
	if (!drives) {
		handle_unuse(ho);
		return;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		handle_unuse((HandleObject *)PyTuple_GetItem(drives, i));
}

static void store_release(StoreObject *so)
{
	swapio_store *s = so->s;

	so->s = NULL;
	if (!s)
		return;
	Py_BEGIN_ALLOW_THREADS
	swapio_store_close(s);
	Py_END_ALLOW_THREADS
	store_unuse_handles(so->owner, so->drives,
			    so->drives ? PyTuple_Size(so->drives) : 0);
}

static int store_use(StoreObject *so)
{
	if (orphans)
		reap_orphans();
	if (forked(so->gen))
		return -1;
	if (so->closed || !so->s) {
		PyErr_SetString(PyExc_ValueError, "the store is closed");
		return -1;
	}
	so->users++;
	return 0;
}

static void store_unuse(StoreObject *so)
{
	if (--so->users == 0 && so->closed)
		store_release(so);
}

static void store_unuse_obj(PyObject *so)
{
	store_unuse((StoreObject *)so);
}

/* Raise for a store error about @key: a missing key is a KeyError too. */
static PyObject *store_err(int err, PyObject *key)
{
	PyObject *exc;

	if (err != -ENOENT || !key)
		return raise_err(err, NULL);
	exc = PyObject_CallFunction(NoSuchKey, "isO", ENOENT,
				    "no such key", key);
	if (!exc)
		return NULL;
	PyErr_SetObject(NoSuchKey, exc);
	Py_DECREF((PyObject *)exc);
	return NULL;
}

/*
 * key_bytes() - the bytes of a key, as a new reference: bytes as given, a
 * str encoded as UTF-8 with surrogateescape, so that every key keys()
 * returns (undecodable bytes as lone surrogates, as os.fsdecode() does)
 * names the same key again. NULL with TypeError or ValueError.
 */
static PyObject *key_bytes(PyObject *key)
{
	PyObject *b;

	if (PyUnicode_Check(key)) {
		b = PyUnicode_AsEncodedString(key, "utf-8", "surrogateescape");
	} else if (PyBytes_Check(key)) {
		b = key;
		Py_INCREF(b);
	} else {
		PyErr_SetString(PyExc_TypeError, "a key is a str or bytes");
		return NULL;
	}
	if (b && (size_t)PyBytes_Size(b) != strlen(PyBytes_AsString(b))) {
		Py_DECREF(b);
		PyErr_SetString(PyExc_ValueError, "a key has no NUL byte");
		return NULL;
	}
	return b;
}

/*
 * The drives of a store: @dir is one path or a list of paths, @handle one
 * Handle (shared by every drive) or a list of as many. Fills @dv with
 * borrowed handles and new references in @paths (encoded) and *@hs (a
 * tuple of the handles, each in use). Returns the count, or -1.
 */
static Py_ssize_t store_drives(PyObject *dir, PyObject *handle,
			       struct swapio_store_drive *dv,
			       PyObject **paths, PyObject **hs)
{
	const int many = PyList_Check(dir) || PyTuple_Check(dir);
	const int hlist = PyList_Check(handle) || PyTuple_Check(handle);
	Py_ssize_t n = many ? PySequence_Size(dir) : 1, i, used = 0;
	PyObject *d = NULL, *h;

	*hs = NULL;
	if (n < 1 || n > SWAPIO_STORE_DRIVES_MAX ||
	    (hlist && PySequence_Size(handle) != n)) {
		PyErr_Format(PyExc_ValueError, "a store takes 1 to %d "
			     "directories and one handle, or one per "
			     "directory", SWAPIO_STORE_DRIVES_MAX);
		return -1;
	}
	*hs = PyTuple_New(n);
	if (!*hs)
		return -1;
	for (i = 0; i < n; i++) {
		h = hlist ? PySequence_GetItem(handle, i) : handle;
		if (!h)
			goto err;
		if (!hlist)
			Py_INCREF(h);
		PyTuple_SetItem(*hs, i, h);	/* steals h */
		if (!PyObject_TypeCheck(h, HandleType)) {
			PyErr_SetString(PyExc_TypeError,
					"handle: a Handle, or a list of them");
			goto err;
		}
		d = many ? PySequence_GetItem(dir, i) : dir;
		if (!d || !PyUnicode_FSConverter(d, &paths[i]))
			goto err;
		if (many)
			Py_CLEAR(d);
		if (handle_use((HandleObject *)h) < 0) {
			Py_CLEAR(paths[i]);
			goto err;
		}
		used++;
		dv[i] = (struct swapio_store_drive){
			.h = ((HandleObject *)h)->h,
			.dir = PyBytes_AsString(paths[i]) };
	}
	return n;

err:
	if (many)
		Py_XDECREF(d);
	store_unuse_handles(NULL, *hs, used);
	for (i = 0; i < used; i++)
		Py_CLEAR(paths[i]);
	Py_CLEAR(*hs);
	return -1;
}

/*
 * What the open had to drop or could not bring back, as a RuntimeWarning:
 * a store that lost records never opens silently. -1 if the warning was
 * turned into an exception (the store stays open until collected).
 */
static int store_open_warn(StoreObject *self, int recover)
{
	struct swapio_store_info in;

	swapio_store_info(self->s, &in);
	if (in.dropped_records && !recover &&
	    PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
			     "swapio store %R: the index ended early at a "
			     "damaged or torn record; %llu record(s) dropped "
			     "(info()['dropped_records']); values put after "
			     "it may be gone. recover=True rebuilds from the "
			     "data file", self->dir,
			     (unsigned long long)in.dropped_records) < 0)
		return -1;
	if (in.lost_values &&
	    PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
			     "swapio store %R: recover found %u key(s) the "
			     "index had lost, but %u value(s) are damaged "
			     "beyond repair (info()['lost_values'])",
			     self->dir, in.recovered_keys,
			     in.lost_values) < 0)
		return -1;
	return 0;
}

static int store_init(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "dir", "handle", "capacity", "grow_bytes",
				  "checksum", "create", "recover",
				  "stripe_unit", NULL };
	struct swapio_store_drive dv[SWAPIO_STORE_DRIVES_MAX];
	PyObject *paths[SWAPIO_STORE_DRIVES_MAX] = { 0 };
	struct swapio_store_config cfg = { 0 };
	unsigned long long cap = 0, grow = 0, unit = 0;
	int sum = 1, create = 1, recover = 0, ret;
	unsigned int failed = 0;
	PyObject *dir, *handle, *hs, *name;
	swapio_store *s;
	Py_ssize_t n;

	if (self->s) {
		PyErr_SetString(PyExc_RuntimeError, "store already open");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O&O&pppO&", kwlist,
					 &dir, &handle, conv_u64, &cap,
					 conv_u64, &grow, &sum, &create,
					 &recover, conv_u64, &unit))
		return -1;
	n = store_drives(dir, handle, dv, paths, &hs);
	if (n < 0)
		return -1;
	cfg.capacity = cap;
	cfg.grow_bytes = grow;
	cfg.stripe_unit = unit;
	cfg.flags = (sum ? 0 : SWAPIO_STORE_NO_CHECKSUM) |
		    (create ? 0 : SWAPIO_STORE_NO_CREATE) |
		    (recover ? SWAPIO_STORE_RECOVER : 0);
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_store_open_multi(dv, (unsigned int)n, &cfg, &s, &failed);
	Py_END_ALLOW_THREADS
	for (Py_ssize_t i = 0; i < n; i++)
		Py_DECREF(paths[i]);
	if (ret < 0) {
		store_unuse_handles(NULL, hs, n);
		/* The error names the drive it belongs to. */
		name = !(PyList_Check(dir) || PyTuple_Check(dir)) ||
		       failed >= (unsigned int)n ? dir :
		       PySequence_GetItem(dir, failed);
		raise_err_detail(ret, name);
		if (name != dir)
			Py_XDECREF(name);
		Py_DECREF(hs);
		return -1;
	}
	self->owner = (HandleObject *)PyTuple_GetItem(hs, 0);
	Py_INCREF((PyObject *)self->owner);
	if (n > 1)
		self->drives = hs;
	else
		Py_DECREF(hs);
	self->s = s;
	self->gen = fork_gen;
	Py_INCREF((PyObject *)dir);
	self->dir = dir;
	return store_open_warn(self, recover);
}

static void store_dealloc(StoreObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	self->closed = 1;
	store_release(self);
	Py_XDECREF((PyObject *)self->dir);
	Py_XDECREF((PyObject *)self->owner);
	Py_XDECREF(self->drives);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *store_close(StoreObject *self, PyObject *unused)
{
	if (self->gen != fork_gen) {
		self->closed = 1;	/* the parent's store: nothing to do */
		Py_RETURN_NONE;
	}
	if (orphans)
		reap_orphans();
	self->closed = 1;
	if (self->users == 0)
		store_release(self);
	Py_RETURN_NONE;
}

static PyObject *store_exit(StoreObject *self, PyObject *args)
{
	return store_close(self, NULL);
}

static PyObject *as_result(PyObject *out, PyObject *given)
{
	PyObject *mv;

	if (given && given != Py_None)
		return out;
	mv = PyMemoryView_FromObject(out);
	Py_DECREF((PyObject *)out);
	return mv;
}

/*
 * store_start() - submit a put of @bufobj, or a get into @out (None: into
 * new aligned memory of the value's size), of @key. A get into new memory
 * whose value another thread replaced by one of another size between the
 * size look-up and the submission looks again (up to 16 times). On
 * success holds one use of @self, fills *@op, *@b (the buffer, held) and,
 * for a get, *@outp (its target, a new reference), and returns 0; else
 * -1 with an exception set.
 */
static int store_start(StoreObject *self, PyObject *key, PyObject *bufobj,
		       PyObject *out, int put, swapio_store_op **op,
		       struct xbuf *b, PyObject **outp)
{
	const int fresh = !put && (!out || out == Py_None);
	PyObject *kb = key_bytes(key), *target;
	const char *k;
	int64_t n;
	int ret, tries;

	*outp = NULL;
	memset(b, 0, sizeof(*b));
	if (!kb)
		return -1;
	k = PyBytes_AsString(kb);
	if (store_use(self) < 0)
		goto err_key;
	for (tries = 0;; tries++) {
		if (!fresh) {
			target = put ? bufobj : out;
			Py_INCREF(target);
		} else {
			n = swapio_store_size(self->s, k);
			if (n < 0) {
				store_err((int)n, key);
				goto err_unuse;
			}
			target = buffer_alloc((size_t)n,
					      (size_t)n >= (2u << 20) ?
					      SWAPIO_BUF_HUGE : 0);
			if (!target)
				goto err_unuse;
		}
		if (xbuf_get(target, !put, b) < 0) {
			Py_DECREF(target);
			goto err_unuse;
		}
		Py_BEGIN_ALLOW_THREADS
		if (put)
			ret = swapio_store_submit_put(self->s, k, b->ptr,
						      b->len, op);
		else
			ret = swapio_store_submit_get(self->s, k, b->ptr,
						      b->len, op);
		Py_END_ALLOW_THREADS
		if (!ret)
			break;
		xbuf_release(b);
		Py_DECREF(target);
		if (ret == -EMSGSIZE && fresh && tries < 16)
			continue;
		store_err(ret, key);
		goto err_unuse;
	}
	if (put)
		Py_DECREF(target);
	else
		*outp = target;
	Py_DECREF(kb);
	return 0;

err_unuse:
	store_unuse(self);
err_key:
	Py_DECREF(kb);
	return -1;
}

/* A put or get, waited for at once; Ctrl-C leaves it as an orphan. */
static PyObject *store_xfer(StoreObject *self, PyObject *key,
			    PyObject *bufobj, PyObject *given, int put)
{
	swapio_store_op *op;
	struct xbuf b;
	PyObject *out;
	int64_t r;

	if (store_start(self, key, bufobj, given, put, &op, &b, &out) < 0)
		return NULL;
	r = wait_slices(sop_wait_fn, op, -1);
	if (r == WAIT_INTERRUPTED) {
		orphan_add(NULL, op, &b, (PyObject *)self, ORPHAN_STORE);
		Py_XDECREF(out);
		return NULL;	/* the orphan keeps the use */
	}
	Py_BEGIN_ALLOW_THREADS
	swapio_store_op_free(op);	/* finished: no wait */
	Py_END_ALLOW_THREADS
	store_unuse(self);
	if (xbuf_moved(&b)) {
		xbuf_release(&b);
		Py_XDECREF(out);
		return raise_resized(NULL);
	}
	xbuf_release(&b);
	if (r < 0) {
		Py_XDECREF(out);
		return store_err((int)r, key);
	}
	if (put)
		Py_RETURN_NONE;
	return as_result(out, given);
}

static PyObject *store_put(StoreObject *self, PyObject *args)
{
	PyObject *key, *buf;

	if (!PyArg_ParseTuple(args, "OO", &key, &buf))
		return NULL;
	return store_xfer(self, key, buf, NULL, 1);
}

static PyObject *store_get(StoreObject *self, PyObject *args)
{
	PyObject *key, *given = Py_None;

	if (!PyArg_ParseTuple(args, "O|O", &key, &given))
		return NULL;
	return store_xfer(self, key, NULL, given, 0);
}

typedef struct {
	PyObject_HEAD
	swapio_store_op *op;	/* NULL once finished */
	StoreObject *owner;
	struct xbuf buf;
	PyObject *out;		/* a get's buffer, else None */
	PyObject *key;
	int64_t result;
	int finished;
	int waiters;
	int put;
	unsigned int gen;	/* fork_gen when made */
} StoreOpObject;

static void sop_finish(StoreOpObject *o, int64_t res)
{
	o->result = res;
	o->finished = 1;
	Py_BEGIN_ALLOW_THREADS
	swapio_store_op_free(o->op);	/* already finished: no wait */
	Py_END_ALLOW_THREADS
	o->op = NULL;
	xbuf_release(&o->buf);
	store_unuse(o->owner);
}

/* As op_wait_ms(), for a store op. */
static int64_t sop_wait_ms(StoreOpObject *o, int ms)
{
	int64_t ret;

	if (o->finished)
		return o->result;
	o->waiters++;
	ret = wait_slices(sop_wait_fn, o->op, ms);
	if (--o->waiters == 0 && !o->finished && ret != -ETIMEDOUT &&
	    ret != WAIT_INTERRUPTED)
		sop_finish(o, ret);
	return ret;
}

static void sop_dealloc(StoreOpObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	/* As op_dealloc(): an orphan keeps what an op in flight holds. */
	if (!self->finished && self->op) {
		if (self->gen != fork_gen) {
			self->op = NULL;	/* the parent's */
			xbuf_release(&self->buf);
			store_unuse(self->owner);
		} else if (swapio_store_op_done(self->op) == 1) {
			sop_finish(self, swapio_store_op_wait(self->op, 0));
		} else {
			orphan_add(NULL, self->op, &self->buf,
				   (PyObject *)self->owner, ORPHAN_STORE);
			self->op = NULL;
		}
		self->finished = 1;
	}
	Py_XDECREF((PyObject *)self->out);
	Py_XDECREF((PyObject *)self->key);
	Py_XDECREF((PyObject *)self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *store_submit(StoreObject *self, PyObject *key,
			      PyObject *bufobj, PyObject *out, int put)
{
	StoreOpObject *o = PyObject_New(StoreOpObject, StoreOpType);

	if (!o)
		return NULL;
	o->op = NULL;
	o->owner = NULL;
	o->finished = 1;
	o->waiters = 0;
	o->put = put;
	o->out = NULL;
	o->gen = fork_gen;
	Py_INCREF((PyObject *)key);
	o->key = key;
	if (store_start(self, key, bufobj, out, put, &o->op, &o->buf,
			&o->out) < 0) {
		Py_DECREF((PyObject *)o);
		return NULL;
	}
	Py_INCREF((PyObject *)self);
	o->owner = self;
	o->finished = 0;
	if (put) {
		Py_INCREF(Py_None);
		o->out = Py_None;
	}
	return (PyObject *)o;
}

static PyObject *store_put_async(StoreObject *self, PyObject *args)
{
	PyObject *key, *buf;

	if (!PyArg_ParseTuple(args, "OO", &key, &buf))
		return NULL;
	return store_submit(self, key, buf, NULL, 1);
}

static PyObject *store_get_async(StoreObject *self, PyObject *args)
{
	PyObject *key, *out = Py_None;

	if (!PyArg_ParseTuple(args, "O|O", &key, &out))
		return NULL;
	return store_submit(self, key, NULL, out, 0);
}

static PyObject *store_remove(StoreObject *self, PyObject *key)
{
	PyObject *kb = key_bytes(key);
	int ret;

	if (!kb)
		return NULL;
	if (store_use(self) < 0) {
		Py_DECREF(kb);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_store_remove(self->s, PyBytes_AsString(kb));
	Py_END_ALLOW_THREADS
	store_unuse(self);
	Py_DECREF(kb);
	if (ret < 0)
		return store_err(ret, key);
	Py_RETURN_NONE;
}

/* swapio_store_size() of @key: the length, or -errno; -ERANGE: raised. */
static int64_t key_size(StoreObject *self, PyObject *key)
{
	PyObject *kb = key_bytes(key);
	int64_t n;

	if (!kb)
		return -ERANGE;
	if (store_use(self) < 0) {
		Py_DECREF(kb);
		return -ERANGE;
	}
	n = swapio_store_size(self->s, PyBytes_AsString(kb));
	store_unuse(self);
	Py_DECREF(kb);
	return n;
}

static PyObject *store_size(StoreObject *self, PyObject *key)
{
	int64_t n = key_size(self, key);

	if (n == -ERANGE)
		return NULL;
	if (n < 0)
		return store_err((int)n, key);
	return PyLong_FromLongLong(n);
}

static int store_contains(StoreObject *self, PyObject *key)
{
	int64_t n = key_size(self, key);

	if (n == -ERANGE)
		return -1;
	if (n < 0 && n != -ENOENT && n != -EINVAL) {
		raise_err((int)n, NULL);
		return -1;
	}
	return n >= 0;
}

static Py_ssize_t store_len(StoreObject *self)
{
	struct swapio_store_info in;

	if (store_use(self) < 0)
		return -1;
	swapio_store_info(self->s, &in);
	store_unuse(self);
	return (Py_ssize_t)in.keys;
}

/* The keys as str: UTF-8, undecodable bytes as lone surrogates. */
static PyObject *store_keys(StoreObject *self, PyObject *unused)
{
	PyObject *list = NULL, *k;
	char **keys;
	size_t i, n;
	int ret;

	if (store_use(self) < 0)
		return NULL;
	ret = swapio_store_list(self->s, &keys, &n);
	store_unuse(self);
	if (ret < 0)
		return raise_err(ret, NULL);
	list = PyList_New((Py_ssize_t)n);
	for (i = 0; list && i < n; i++) {
		k = PyUnicode_DecodeUTF8(keys[i], (Py_ssize_t)strlen(keys[i]),
					 "surrogateescape");
		if (!k) {
			Py_CLEAR(list);
			break;
		}
		PyList_SetItem(list, (Py_ssize_t)i, k);
	}
	free(keys);
	return list;
}

static PyObject *store_sync(StoreObject *self, PyObject *unused)
{
	int ret;

	if (store_use(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_store_sync(self->s);
	Py_END_ALLOW_THREADS
	store_unuse(self);
	if (ret < 0)
		return raise_err(ret, NULL);
	Py_RETURN_NONE;
}

static PyObject *store_info(StoreObject *self, PyObject *unused)
{
	struct swapio_store_info in;

	if (store_use(self) < 0)
		return NULL;
	swapio_store_info(self->s, &in);
	store_unuse(self);
	return Py_BuildValue("{sKsKsKsKsKsKsIsIsKsKsIsI}",
		"keys", (unsigned long long)in.keys,
		"value_bytes", (unsigned long long)in.value_bytes,
		"used_bytes", (unsigned long long)in.used_bytes,
		"file_bytes", (unsigned long long)in.file_bytes,
		"free_bytes", (unsigned long long)in.free_bytes,
		"index_bytes", (unsigned long long)in.index_bytes,
		"block", in.block, "drives", in.drives,
		"stripe_unit", (unsigned long long)in.stripe_unit,
		"dropped_records", (unsigned long long)in.dropped_records,
		"recovered_keys", in.recovered_keys,
		"lost_values", in.lost_values);
}

static PyObject *store_closed(StoreObject *self, void *unused)
{
	return PyBool_FromLong(self->closed);
}

static PyObject *sop_wait(StoreOpObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *t = Py_None;
	int64_t ret;
	int ms;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &t) ||
	    timeout_ms(t, &ms) < 0 || forked(self->gen))
		return NULL;
	ret = sop_wait_ms(self, ms);
	if (ret == WAIT_INTERRUPTED)
		return NULL;
	if (ret < 0)
		return store_err((int)ret, self->key);
	return PyLong_FromLongLong(ret);
}

static PyObject *sop_done(StoreOpObject *self, PyObject *unused)
{
	int r;

	if (forked(self->gen))
		return NULL;
	if (self->finished)
		Py_RETURN_TRUE;
	r = swapio_store_op_done(self->op);
	if (r < 0)
		return raise_err(r, NULL);
	return PyBool_FromLong(r);
}

static PyObject *sop_out(StoreOpObject *self, void *unused)
{
	if (self->out && self->out != Py_None && !self->put &&
	    PyObject_TypeCheck(self->out, BufferType))
		return PyMemoryView_FromObject(self->out);
	if (!self->out)
		Py_RETURN_NONE;
	Py_INCREF((PyObject *)self->out);
	return self->out;
}

/* ------------------------------------------------------------------ */
/* Pipeline                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	swapio_pipeline *p;
} PipelineObject;

static void pipe_release(PipelineObject *po)
{
	swapio_pipeline *p = po->p;

	po->p = NULL;
	if (!p)
		return;
	Py_BEGIN_ALLOW_THREADS
	swapio_pipeline_destroy(p);
	Py_END_ALLOW_THREADS
	store_unuse(po->store);
}

/* One group: a sequence of (key, nbytes[, read_only]). */
static int pipe_group(PyObject *g, struct swapio_pipeline_group *out,
		      struct swapio_pipeline_tensor *t, PyObject *keep)
{
	PyObject *list = PySequence_List(g), *item, *key, *kb;
	Py_ssize_t i, n;
	unsigned long long len;
	int ro;

	if (!list)
		return -1;
	n = PyList_Size(list);
	for (i = 0; i < n; i++) {
		item = PyList_GetItem(list, i);
		ro = 0;
		kb = NULL;
		if (!PyArg_ParseTuple(item, "OO&|p", &key, conv_u64, &len,
				      &ro) || !(kb = key_bytes(key)) ||
		    PyList_Append(keep, kb) < 0) {
			Py_XDECREF(kb);
			Py_DECREF((PyObject *)list);
			return -1;
		}
		t[i].key = PyBytes_AsString(kb);
		Py_DECREF(kb);	/* @keep holds it */
		t[i].len = len;
		t[i].flags = ro ? SWAPIO_PIPELINE_READ_ONLY : 0;
		t[i].reserved = 0;
	}
	Py_DECREF((PyObject *)list);
	out->tensors = t;
	out->nr_tensors = (unsigned int)n;
	return 0;
}

static Py_ssize_t count_tensors(PyObject *groups)
{
	Py_ssize_t i, n, total = 0, k;

	n = PyList_Size(groups);
	for (i = 0; i < n; i++) {
		k = PySequence_Size(PyList_GetItem(groups, i));
		if (k < 0)
			return -1;
		total += k;
	}
	return total;
}

static int pipe_init(PipelineObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "store", "groups", "budget_bytes", "depth",
				  "pinned", "huge", NULL };
	struct swapio_pipeline_config cfg = { 0 };
	struct swapio_pipeline_tensor *t = NULL;
	struct swapio_pipeline_group *g = NULL;
	PyObject *groups, *list = NULL, *keep = NULL;
	unsigned long long budget = 0;
	unsigned int depth = 0;
	int pinned = 1, huge = 1, ret = -1, r;
	Py_ssize_t i, n, nt, at = 0;
	StoreObject *so;
	swapio_pipeline *p;

	if (self->p) {
		PyErr_SetString(PyExc_RuntimeError, "pipeline already made");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|O&O&pp", kwlist,
					 StoreType, &so, &groups, conv_u64,
					 &budget, conv_u32, &depth, &pinned,
					 &huge) ||
	    !(list = PySequence_List(groups)) || !(keep = PyList_New(0)))
		goto out;
	n = PyList_Size(list);
	nt = count_tensors(list);
	if (nt < 0 || n > UINT_MAX)
		goto out;
	g = PyMem_Calloc((size_t)n + 1, sizeof(*g));
	t = PyMem_Calloc((size_t)nt + 1, sizeof(*t));
	if (!g || !t) {
		PyErr_NoMemory();
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (pipe_group(PyList_GetItem(list, i), &g[i], t + at,
			       keep) < 0)
			goto out;
		at += g[i].nr_tensors;
	}
	cfg.budget_bytes = budget;
	cfg.depth = depth;
	cfg.buf_flags = (pinned ? SWAPIO_BUF_LOCKED : 0) |
			(huge ? SWAPIO_BUF_HUGE : 0);
	if (store_use(so) < 0)
		goto out;
	Py_BEGIN_ALLOW_THREADS
	r = swapio_pipeline_create(so->s, g, (unsigned int)n, &cfg, &p);
	Py_END_ALLOW_THREADS
	if (r < 0) {
		store_unuse(so);
		raise_err(r, NULL);
		goto out;
	}
	Py_INCREF((PyObject *)so);
	self->store = so;
	self->p = p;
	ret = 0;
out:
	PyMem_Free(g);
	PyMem_Free(t);
	Py_XDECREF((PyObject *)keep);
	Py_XDECREF((PyObject *)list);
	return ret;
}

static void pipe_dealloc(PipelineObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	pipe_release(self);
	Py_XDECREF((PyObject *)self->store);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static int pipe_check(PipelineObject *self)
{
	if (self->p && forked(self->store->gen))
		return -1;
	if (!self->p) {
		PyErr_SetString(PyExc_ValueError, "the pipeline is closed");
		return -1;
	}
	return 0;
}

static PyObject *pipe_begin(PipelineObject *self, PyObject *unused)
{
	int ret;

	if (pipe_check(self))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_pipeline_begin(self->p);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	Py_RETURN_NONE;
}

/* next() -> (group, [Buffer...]) or None at the end of the pass. */
static PyObject *pipe_next(PipelineObject *self, PyObject *unused)
{
	struct swapio_pipeline_view v;
	PyObject *bufs, *b;
	unsigned int i;
	int ret;

	if (pipe_check(self))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_pipeline_next(self->p, &v);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	if (ret == 0)
		Py_RETURN_NONE;
	bufs = PyList_New(v.nr_tensors);
	for (i = 0; bufs && i < v.nr_tensors; i++) {
		b = buffer_new_view(v.bufs[i], v.tensors[i].len,
				    (PyObject *)self);
		if (!b) {
			Py_CLEAR(bufs);
			break;
		}
		PyList_SetItem(bufs, i, b);
	}
	if (!bufs) {
		swapio_pipeline_release(self->p, v.group, 0);
		return NULL;
	}
	return Py_BuildValue("(IN)", v.group, bufs);
}

static PyObject *pipe_release_group(PipelineObject *self, PyObject *args)
{
	unsigned int group;
	int wb = 1, ret;

	if (!PyArg_ParseTuple(args, "O&|p", conv_u32, &group, &wb) ||
	    pipe_check(self))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_pipeline_release(self->p, group, wb);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	Py_RETURN_NONE;
}

static PyObject *pipe_flush(PipelineObject *self, PyObject *unused)
{
	int ret;

	if (pipe_check(self))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_pipeline_flush(self->p);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	Py_RETURN_NONE;
}

static PyObject *pipe_cancel(PipelineObject *self, PyObject *unused)
{
	int ret;

	if (pipe_check(self))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_pipeline_cancel(self->p);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(ret, NULL);
	Py_RETURN_NONE;
}

static PyObject *pipe_stats(PipelineObject *self, PyObject *unused)
{
	struct swapio_pipeline_stats s;

	if (pipe_check(self))
		return NULL;
	swapio_pipeline_stats(self->p, &s);
	return Py_BuildValue("{sKsKsKsKsIsIsO}",
		"bytes_read", (unsigned long long)s.bytes_read,
		"bytes_written", (unsigned long long)s.bytes_written,
		"stall_ns", (unsigned long long)s.stall_ns,
		"buf_bytes", (unsigned long long)s.buf_bytes,
		"buffers", s.buffers, "depth", s.depth,
		"locked", s.locked ? Py_True : Py_False);
}

static PyObject *pipe_close(PipelineObject *self, PyObject *unused)
{
	pipe_release(self);
	Py_RETURN_NONE;
}

static PyMethodDef store_methods[] = {
	M("put", store_put, METH_VARARGS, "put(key, buf)\n\nStore buf under "
	  "key (copy-on-write, checksummed), GIL released."),
	M("get", store_get, METH_VARARGS, "get(key, out=None)\n\nRead key's "
	  "value into out (its size must match), or into new page-aligned "
	  "memory returned as a memoryview. Missing key: NoSuchKey."),
	M("put_async", store_put_async, METH_VARARGS,
	  "put_async(key, buf) -> StoreOp\n\nStart a put; it takes effect "
	  "when waited for."),
	M("get_async", store_get_async, METH_VARARGS,
	  "get_async(key, out=None) -> StoreOp\n\nStart a get; .out is the "
	  "buffer it fills."),
	M("remove", store_remove, METH_O, "remove(key)\n\nDelete key."),
	M("size", store_size, METH_O, "size(key) -> int\n\nStored length."),
	M("keys", store_keys, METH_NOARGS, "keys() -> list\n\nThe keys, "
	  "sorted."),
	M("sync", store_sync, METH_NOARGS, "sync()\n\nMake every finished "
	  "put and remove survive a power loss."),
	M("info", store_info, METH_NOARGS, "info() -> dict\n\nCounters; "
	  "dropped_records, recovered_keys, lost_values: what the open found "
	  "in the index."),
	M("close", store_close, METH_NOARGS, "close()\n\nClose the store "
	  "(once its ops and pipelines are gone)."),
	M("__enter__", self_enter, METH_NOARGS, NULL),
	M("__exit__", store_exit, METH_VARARGS, NULL),
	{ NULL }
};

static PyGetSetDef store_getset[] = {
	G("closed", store_closed, "True once close() was called."),
	{ NULL }
};

static PyType_Slot store_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR(
	  "Store(dir, handle, capacity=0, grow_bytes=0, checksum=True, "
	  "create=True, recover=False, stripe_unit=0)\n\nTensors by key "
	  "in one directory: a mapping-like swap space. A context manager."
	  "\n\ndir may be a list of directories, one per drive: the store "
	  "is striped over them (handle then a list of as many Handles, "
	  "one per drive, or one shared; stripe_unit bytes per drive in "
	  "turn, 0: as recorded, or 1 MiB). Reopen with the same list.") },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_init, store_init },
	{ Py_tp_dealloc, store_dealloc },
	{ Py_tp_methods, store_methods },
	{ Py_tp_getset, store_getset },
	{ Py_sq_contains, store_contains },
	{ Py_sq_length, store_len },
	{ 0, NULL }
};

static PyMethodDef sop_methods[] = {
	M("wait", sop_wait, KW, "wait(timeout=None) -> int\n\nWait for the "
	  "put or get and finish it; returns the value's length."),
	M("done", sop_done, METH_NOARGS, "done() -> bool"),
	{ NULL }
};

static PyGetSetDef sop_getset[] = {
	G("out", sop_out, "The buffer a get reads into (None for a put)."),
	{ NULL }
};

static PyType_Slot sop_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR("An asynchronous put or get.") },
	{ Py_tp_dealloc, sop_dealloc },
	{ Py_tp_methods, sop_methods },
	{ Py_tp_getset, sop_getset },
	{ 0, NULL }
};

static PyMethodDef pipe_methods[] = {
	M("begin", pipe_begin, METH_NOARGS, "begin()\n\nStart a pass."),
	M("next", pipe_next, METH_NOARGS, "next() -> (group, buffers) or "
	  "None\n\nWait for the next group in memory."),
	M("release", pipe_release_group, METH_VARARGS,
	  "release(group, write_back=True)"),
	M("flush", pipe_flush, METH_NOARGS, "flush()\n\nWait for every "
	  "write-back."),
	M("cancel", pipe_cancel, METH_NOARGS, "cancel()\n\nEnd the running "
	  "pass without reading the rest (no group may be held)."),
	M("stats", pipe_stats, METH_NOARGS, "stats() -> dict"),
	M("close", pipe_close, METH_NOARGS, "close()"),
	{ NULL }
};

static PyType_Slot pipe_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR("The C pipeline; see "
	  "swapio.Pipeline.") },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_init, pipe_init },
	{ Py_tp_dealloc, pipe_dealloc },
	{ Py_tp_methods, pipe_methods },
	{ 0, NULL }
};

static int store_add_types(PyObject *m);

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */


static PyMethodDef handle_methods[] = {
	M("open", handle_open, KW, "open(path, mode='r') -> File\n\n"
	  "Open a file for transfers: r, r+, w, w+ as for open(); a and a+ "
	  "create a missing file and keep an existing one."),
	M("pread", handle_pread, KW, "pread(path, buf, offset=0) -> int\n\n"
	  "Read len(buf) bytes of the file at path into buf; returns the "
	  "bytes read (fewer only at end of file)."),
	M("pwrite", handle_pwrite, KW, "pwrite(path, buf, offset=0) -> int\n\n"
	  "Write buf to the file at path (created if missing); returns the "
	  "bytes written."),
	M("read_async", handle_read_async, KW,
	  "read_async(path, buf, offset=0) -> Op\n\nStart a read by path."),
	M("write_async", handle_write_async, KW,
	  "write_async(path, buf, offset=0) -> Op\n\nStart a write by path."),
	M("wait_all", handle_wait_all, KW, "wait_all(timeout=None)\n\n"
	  "Wait until every op submitted before this call has completed. "
	  "Raises swapio.Timeout if timeout seconds pass first."),
	M("gpu_path", handle_gpu_path, KW, "gpu_path(device=0, write=False) "
	  "-> str | None\n\nThe path device ops on that CUDA device take: "
	  "'staging' or 'gds', 'auto' while not yet measured, None before "
	  "the device's first use."),
	M("fileno", handle_fileno, METH_NOARGS, "fileno() -> int\n\n"
	  "An eventfd that becomes readable when ops complete (asyncio, "
	  "selectors). Owned by the handle."),
	M("stats", handle_stats, METH_NOARGS, "stats() -> dict\n\n"
	  "Counters since creation or reset_stats()."),
	M("reset_stats", handle_reset_stats, METH_NOARGS,
	  "reset_stats()\n\nZero the counters."),
	M("close", handle_close, METH_NOARGS, "close()\n\nClose the handle: "
	  "nothing new starts; it is released once its files, stores and "
	  "ops are gone (ops in flight complete first)."),
	M("__enter__", self_enter, METH_NOARGS, NULL),
	M("__exit__", handle_exit, METH_VARARGS, NULL),
	{ NULL }
};

static PyGetSetDef handle_getset[] = {
	G("engine", handle_engine, "The engine in use: uring, aio or threads."),
	G("engine_note", handle_engine_note, "Why that engine was chosen."),
	G("gpu_note", handle_gpu_note, "What the device (CUDA) layer chose "
	  "and why, and every fallback it took; empty before its first use."),
	G("config", handle_config, "The configuration in force, defaults "
	  "filled in, as a dict."),
	G("closed", handle_closed, "True once close() was called."),
	{ NULL }
};

static PyMemberDef handle_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(HandleObject, weakrefs),
	  READONLY, NULL },
	{ NULL }
};

static PyType_Slot handle_slots[] = {
	{ Py_tp_members, handle_members },
	{ Py_tp_doc, (void *)PyDoc_STR(
	  "Handle(block_size=0, queue_depth=0, threads=0, engine='auto', "
	  "direct=True, direct_strict=False, single_submit=False, "
	  "overlap=True, gpu_path='auto', share_node=False, spin_wait=True)"
	  "\n\n"
	  "The engines and workers that move data. 0 means the default "
	  "(1 MiB blocks, queue depth 32, 1 thread). share_node: the queue "
	  "depth is the node's, and this handle takes queue_depth / "
	  "LOCAL_WORLD_SIZE. spin_wait=False: a lone small op's waiter "
	  "sleeps at once (less CPU, more latency at depth 1). A context "
	  "manager; safe to use from many threads.") },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_init, handle_init },
	{ Py_tp_dealloc, handle_dealloc },
	{ Py_tp_methods, handle_methods },
	{ Py_tp_getset, handle_getset },
	{ 0, NULL }
};

static PyMethodDef file_methods[] = {
	M("pread", file_pread, KW, "pread(buf, offset=0) -> int\n\n"
	  "Read len(buf) bytes at offset into buf (GIL released); returns "
	  "the bytes read, fewer only at end of file."),
	M("pwrite", file_pwrite, KW, "pwrite(buf, offset=0) -> int\n\n"
	  "Write buf at offset; returns the bytes written."),
	M("read_async", file_read_async, KW,
	  "read_async(buf, offset=0) -> Op\n\nStart reading into buf; buf "
	  "is held until the op completes."),
	M("write_async", file_write_async, KW,
	  "write_async(buf, offset=0) -> Op\n\nStart writing buf."),
	M("sync", file_sync, METH_NOARGS, "sync()\n\nfdatasync the file."),
	M("allocate", file_allocate, METH_VARARGS, "allocate(offset, length)"
	  "\n\nReserve disk space for the range and grow the file over it."),
	M("close", file_close, METH_NOARGS, "close()\n\nClose the file; if "
	  "ops on it are still held, it closes when the last completes."),
	M("__enter__", self_enter, METH_NOARGS, NULL),
	M("__exit__", file_exit, METH_VARARGS, NULL),
	{ NULL }
};

static PyGetSetDef file_getset[] = {
	G("size", file_size, "The file's size in bytes."),
	G("direct", file_direct, "True if transfers use O_DIRECT."),
	G("alignment", file_alignment, "(memory, offset) alignment of "
	  "direct I/O, in bytes."),
	G("closed", file_closed, "True once close() was called."),
	G("name", file_name, "The path it was opened with."),
	G("handle", file_handle, "The Handle it belongs to."),
	{ NULL }
};

static PyType_Slot file_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR("A file opened by Handle.open().") },
	{ Py_tp_dealloc, file_dealloc },
	{ Py_tp_methods, file_methods },
	{ Py_tp_getset, file_getset },
	{ 0, NULL }
};

static PyMethodDef op_methods[] = {
	M("wait", op_wait, KW, "wait(timeout=None) -> int\n\n"
	  "Wait for the op (GIL released); returns the bytes moved or raises "
	  "swapio.Error, or swapio.Timeout when timeout seconds pass."),
	M("done", op_done, METH_NOARGS, "done() -> bool\n\n"
	  "True if the op has completed. Never blocks."),
	{ NULL }
};

static PyGetSetDef op_getset[] = {
	G("result", op_result, "Bytes moved once complete, None while in "
	  "flight; raises the op's error if it failed."),
	G("nbytes", op_nbytes, "Bytes asked for."),
	G("handle", op_handle, "The Handle it runs on."),
	G("is_write", op_is_write, "True for a write."),
	{ NULL }
};

static PyType_Slot op_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR(
	  "One asynchronous transfer. It holds its buffer until it completes; "
	  "dropping it while in flight waits for it. Awaitable.") },
	{ Py_tp_dealloc, op_dealloc },
	{ Py_tp_methods, op_methods },
	{ Py_tp_getset, op_getset },
	{ Py_am_await, op_await },
	{ 0, NULL }
};

static PyGetSetDef buffer_getset[] = {
	G("pinned", buffer_pinned, "True if the memory is locked."),
	G("address", buffer_address, "The memory's address."),
	{ NULL }
};

static PyType_Slot buffer_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR(
	  "Page-aligned memory from swapio, exported through the buffer "
	  "protocol; freed when the last view goes.") },
	{ Py_tp_dealloc, buffer_dealloc },
	{ Py_tp_getset, buffer_getset },
	{ Py_bf_getbuffer, buffer_getbuffer },
	{ Py_bf_releasebuffer, buffer_releasebuffer },
	{ Py_sq_length, buffer_len },
	{ 0, NULL }
};

static PyMethodDef mod_methods[] = {
	M("wait_any", wait_any, KW, "wait_any(ops, timeout=None) -> int\n\n"
	  "Wait until one of ops (all of one handle) has completed; returns "
	  "the lowest index of a completed op."),
	M("_alloc", mod_alloc, KW, "_alloc(nbytes, pinned=True, huge=True)"
	  " -> Buffer\n\nPage-aligned, zeroed memory."),
	M("strerror", mod_strerror, METH_O, "strerror(code) -> str\n\n"
	  "swapio's message for a negative errno or swapio code."),
	M("version", mod_version, METH_NOARGS, "version() -> (major, minor, "
	  "patch) of the C library."),
	M("probe", mod_probe, METH_O, "probe(engine) -> int\n\n0 if the "
	  "engine can run here, else the negative errno its set-up met."),
	M("checksum", mod_checksum, METH_O, "checksum(buf) -> int\n\n"
	  "The store's checksum (XXH3-64) of buf."),
	M("hugepages", mod_hugepages, METH_O, "hugepages(buf) -> int\n\n"
	  "Back buf's memory with transparent huge pages now, in place (its "
	  "whole 2 MiB pages; the content is kept): faster O_DIRECT from "
	  "memory that moves many times. Returns the bytes now in huge "
	  "pages."),
	M("_set_await_hook", mod_set_await_hook, METH_O, NULL),
	{ NULL }
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "_swapio",
	PyDoc_STR("The C core of the swapio package; import swapio instead."),
	-1, mod_methods,
};

static PyTypeObject *add_type(PyObject *m, const char *name, size_t size,
			      PyType_Slot *slots)
{
	/* The spec's name must outlive the type: a string literal. */
	PyType_Spec spec = { name, (int)size, 0, Py_TPFLAGS_DEFAULT, slots };
	PyObject *tp;

	if (!strcmp(name, "swapio.Handle"))
		spec.flags |= Py_TPFLAGS_BASETYPE;
	tp = PyType_FromSpec(&spec);
	if (!tp)
		return NULL;
	if (PyModule_AddObjectRef(m, strchr(name, '.') + 1, tp) < 0) {
		Py_DECREF((PyObject *)tp);
		return NULL;
	}
	return (PyTypeObject *)tp;
}

static int add_errors(PyObject *m)
{
	PyObject *bases;

	Error = PyErr_NewExceptionWithDoc("swapio.Error",
		"An error from swapio: an OSError whose errno and strerror say "
		"what failed; .code is swapio's own (negative) code.",
		PyExc_OSError, NULL);
	if (!Error || PyModule_AddObjectRef(m, "Error", Error) < 0)
		return -1;
	bases = PyTuple_Pack(2, Error, PyExc_TimeoutError);
	if (!bases)
		return -1;
	Timeout = PyErr_NewExceptionWithDoc("swapio.Timeout",
		"A wait ran out of time; the op is still in flight.",
		bases, NULL);
	Py_DECREF((PyObject *)bases);
	if (!Timeout || PyModule_AddObjectRef(m, "Timeout", Timeout) < 0)
		return -1;
	return 0;
}

static int store_add_types(PyObject *m)
{
	PyObject *bases = PyTuple_Pack(2, Error, PyExc_KeyError);

	if (!bases)
		return -1;
	NoSuchKey = PyErr_NewExceptionWithDoc("swapio.NoSuchKey",
		"The store has no such key (errno ENOENT; also a KeyError).",
		bases, NULL);
	Py_DECREF((PyObject *)bases);
	if (!NoSuchKey || PyModule_AddObjectRef(m, "NoSuchKey", NoSuchKey) < 0)
		return -1;
	StoreType = add_type(m, "swapio.Store", sizeof(StoreObject), store_slots);
	StoreOpType = add_type(m, "swapio.StoreOp", sizeof(StoreOpObject), sop_slots);
	PipelineType = add_type(m, "swapio._Pipeline", sizeof(PipelineObject),
				pipe_slots);
	return StoreType && StoreOpType && PipelineType ? 0 : -1;
}

/* threading.main_thread()'s ident, and the fork hook; once per process. */
static int init_threads(void)
{
	static int hooked;
	PyObject *mod, *t = NULL, *id = NULL;

	main_thread = PyThread_get_thread_ident();
	mod = PyImport_ImportModule("threading");
	if (mod)
		t = PyObject_CallMethod(mod, "main_thread", NULL);
	if (t)
		id = PyObject_GetAttrString(t, "ident");
	if (id && PyLong_Check(id))
		main_thread = PyLong_AsUnsignedLong(id);
	Py_XDECREF(id);
	Py_XDECREF(t);
	Py_XDECREF(mod);
	if (PyErr_Occurred())
		return -1;
	if (!hooked && pthread_atfork(NULL, NULL, fork_child)) {
		PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
		return -1;
	}
	hooked = 1;
	return 0;
}

PyMODINIT_FUNC PyInit__swapio(void)
{
	PyObject *m = PyModule_Create(&moddef);

	if (!m)
		return NULL;
	if (init_threads() < 0 || add_errors(m) < 0 ||
	    !(HandleType = add_type(m, "swapio.Handle", sizeof(HandleObject),
				    handle_slots)) ||
	    !(FileType = add_type(m, "swapio.File", sizeof(FileObject), file_slots)) ||
	    !(OpType = add_type(m, "swapio.Op", sizeof(OpObject), op_slots)) ||
	    !(BufferType = add_type(m, "swapio.Buffer", sizeof(BufferObject),
				    buffer_slots)) ||
	    store_add_types(m) < 0 ||
	    PyModule_AddIntConstant(m, "EMEMLOCK", SWAPIO_EMEMLOCK) < 0 ||
	    PyModule_AddIntConstant(m, "EBADSTORE", SWAPIO_EBADSTORE) < 0 ||
	    PyModule_AddIntConstant(m, "EFORKED", SWAPIO_EFORKED) < 0 ||
	    PyModule_AddIntConstant(m, "ENOCUDA", SWAPIO_ENOCUDA) < 0 ||
	    PyModule_AddIntConstant(m, "ECUDA", SWAPIO_ECUDA) < 0 ||
	    PyModule_AddIntConstant(m, "EDRIVES", SWAPIO_EDRIVES) < 0) {
		Py_DECREF((PyObject *)m);
		return NULL;
	}
	return m;
}
