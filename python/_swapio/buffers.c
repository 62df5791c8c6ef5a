// SPDX-License-Identifier: MIT
/*
 * buffers.c - the memory of a Python argument, and the Buffer type.
 *
 * An argument's memory comes from the buffer protocol (bytearray, NumPy,
 * mmap, Buffer) or from DLPack (__dlpack__: torch and others, host or
 * CUDA memory). A DLPack capsule is consumed: its deleter is ours to
 * call in xbuf_release(). A resizable torch storage is watched, since a
 * resize_() in flight frees the memory an op moves data into
 * (xbuf_guard(), xbuf_moved()).
 *
 * A Buffer either owns memory from swapio_buf_alloc() (alloc != 0) and
 * frees it when the last reference and view go, or is a view that keeps
 * its owner (a pipeline) alive.
 */
#include "buffers.h"

#include <errno.h>
#include <string.h>

static char empty_byte;		/* a valid address for 0-byte transfers */

void xbuf_release(struct xbuf *b)
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

int xbuf_moved(struct xbuf *b)
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

PyObject *raise_resized(struct mod_state *st, PyObject *filename)
{
	return raise_err_text(st, -EFAULT, "the tensor was resized (resize_()) "
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
		Py_DECREF(cap);
		PyErr_Clear();
		PyErr_SetString(PyExc_TypeError,
				"__dlpack__() did not return a DLPack capsule");
		return -1;
	}
	/* Consumed, as the protocol says: the deleter is ours to call. */
	if (PyCapsule_SetName(cap, "used_dltensor") < 0) {
		b->dl = NULL;
		Py_DECREF(cap);
		return -1;
	}
	Py_DECREF(cap);
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
static int xbuf_from_dlpack_on(struct mod_state *st, PyObject *meth,
			       struct xbuf *b, void *stream, swapio_handle *h)
{
	struct swapio_dev_saved saved;
	int ret;

	if (b->device < 0)
		return xbuf_from_dlpack(meth, b, stream);
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_dev_enter(h, b->device, &saved);
	Py_END_ALLOW_THREADS
	if (ret < 0) {
		raise_dev_err(st, ret, h, NULL);
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
static int xbuf_from_dlpack_of(struct mod_state *st, PyObject *obj,
			       PyObject *meth, struct xbuf *b, void *stream,
			       swapio_handle *h)
{
	if (xbuf_from_dlpack_on(st, meth, b, stream, h) < 0)
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
 * xbuf_get_on() - the memory of @obj, held until xbuf_release(). @st is
 * needed only with @h (a CUDA error to raise); buffers.h has the rest.
 */
int xbuf_get_on(struct mod_state *st, PyObject *obj, int writable,
		swapio_handle *h, struct xbuf *b)
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
				raise_dev_err(st, ret, h, NULL);
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
				     "__dlpack__, not %R", Py_TYPE(obj));
			return -1;
		}
		ret = xbuf_from_dlpack_of(st, obj, meth, b, stream, h);
		Py_DECREF(meth);
	}
	if (!ret && !b->ptr)
		b->ptr = &empty_byte;
	return ret;
}

int xbuf_get(PyObject *obj, int writable, struct xbuf *b)
{
	return xbuf_get_on(NULL, obj, writable, NULL, b);
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
	Py_XDECREF(self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

PyObject *buffer_new_view(struct mod_state *st, void *ptr, size_t size,
			  PyObject *owner)
{
	BufferObject *b = PyObject_New(BufferObject, st->BufferType);

	if (!b)
		return NULL;
	b->ptr = ptr;
	b->size = size;
	b->alloc = 0;
	Py_XINCREF(owner);
	b->owner = owner;
	b->locked = 0;
	return (PyObject *)b;
}

PyObject *buffer_alloc(struct mod_state *st, size_t size, unsigned int flags)
{
	size_t alloc = size ? size : 1;
	BufferObject *b;
	void *p;
	int ret;

	Py_BEGIN_ALLOW_THREADS
	ret = swapio_buf_alloc(alloc, flags, &p);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return raise_err(st, ret, NULL);
	b = (BufferObject *)buffer_new_view(st, p, size, NULL);
	if (!b) {
		swapio_buf_free(p, alloc);
		return NULL;
	}
	b->alloc = alloc;
	b->locked = !!(flags & SWAPIO_BUF_LOCKED);
	return (PyObject *)b;
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

static PyType_Spec buffer_spec = {
	"swapio.Buffer", sizeof(BufferObject), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	buffer_slots
};

int buffers_setup_types(PyObject *m, struct mod_state *st)
{
	st->BufferType = add_type(m, &buffer_spec);
	return st->BufferType ? 0 : -1;
}
