// SPDX-License-Identifier: MIT
/*
 * handle.c - the Handle type: the engines and workers that move data, and
 * transfers by path.
 *
 * Invariants:
 * - h is set once by __init__ and released (swapio_handle_destroy(),
 *   GIL released) once closed with no users left, or at dealloc; users
 *   change only under the GIL.
 * - A handle made before a fork() refuses every call in the child.
 */
#include "handle.h"

#include "file.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <structmember.h>

static const char *const gpu_paths[] = { "auto", "staging", "gds" };

/* Destroy the C handle, once (it waits for its workers; GIL released). */
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

int handle_use(HandleObject *ho)
{
	reap_orphans((PyObject *)ho);
	if (forked((PyObject *)ho, ho->gen))
		return -1;
	if (ho->closed || !ho->h) {
		PyErr_SetString(PyExc_ValueError, "the handle is closed");
		return -1;
	}
	ho->users++;
	return 0;
}

void handle_unuse(HandleObject *ho)
{
	if (--ho->users == 0 && ho->closed)
		handle_release(ho);
}

void handle_unuse_obj(PyObject *ho)
{
	handle_unuse((HandleObject *)ho);
}

/* Handle(...): the keywords become a struct swapio_config, 0 its defaults. */
static int handle_init(HandleObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "block_size", "queue_depth", "threads",
				  "engine", "direct", "direct_strict",
				  "single_submit", "overlap", "gpu_path",
				  "share_node", "spin_wait", "bounce", NULL };
	const char *gpu_path = "auto";
	unsigned long long bs = 0;
	unsigned int qd = 0, threads = 0;
	const char *engine = "auto";
	int direct = 1, strict = 0, single = 0, overlap = 1, share = 0, spin = 1;
	int bounce = 0;
	int e, ret;
	struct swapio_config cfg = { 0 };
	swapio_handle *h;

	if (self->h) {
		PyErr_SetString(PyExc_RuntimeError, "handle already set up");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O&O&O&sppppzppp", kwlist,
					 conv_u64, &bs, conv_u32, &qd,
					 conv_u32, &threads, &engine, &direct,
					 &strict, &single, &overlap,
					 &gpu_path, &share, &spin, &bounce))
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
		    (spin ? 0 : SWAPIO_CFG_NO_SPIN) |
		    (bounce ? SWAPIO_CFG_BOUNCE : 0);
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_handle_create(&cfg, &h);
	Py_END_ALLOW_THREADS
	if (ret < 0) {
		raise_err_detail(STATE(self), ret, NULL);
		return -1;
	}
	self->h = h;
	self->gen = fork_gen;
	return 0;
}

/* Nothing counts in a handle being freed: each user holds a reference. */
static void handle_dealloc(HandleObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	handle_release(self);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

/* Closed at once for new calls; released with its last user. */
static PyObject *handle_close(HandleObject *self, PyObject *unused)
{
	reap_orphans((PyObject *)self);
	self->closed = 1;
	if (self->users == 0)
		handle_release(self);
	Py_RETURN_NONE;
}

static PyObject *handle_exit(HandleObject *self, PyObject *args)
{
	return handle_close(self, NULL);
}

/* The handle is usable: made in this process, and not closed. */
static int handle_check(HandleObject *self)
{
	if (forked((PyObject *)self, self->gen))
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
		return raise_err(STATE(self), r, NULL);
	return PyUnicode_FromString(gpu_paths[r]);
}

static PyObject *handle_config(HandleObject *self, void *unused)
{
	struct swapio_config c;

	if (handle_check(self))
		return NULL;
	swapio_handle_config(self->h, &c);
	return Py_BuildValue("{sKsIsIsssOsOsOsOsOsOss}",
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
		"bounce", (c.flags & SWAPIO_CFG_BOUNCE) ? Py_True : Py_False,
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
		return raise_err(STATE(self), fd, NULL);
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
		return raise_err(STATE(self), (int)ret, NULL);
	reap_orphans((PyObject *)self);	/* every op before the call is done */
	Py_RETURN_NONE;
}

/* pread/pwrite/read_async/write_async(path, buf, offset=0) by path. */
static PyObject *path_xfer(HandleObject *self, PyObject *args, PyObject *kw,
			   int write, int async)
{
	static char *kwlist[] = { "path", "buf", "offset", NULL };
	struct target t = { 0 };
	PyObject *buf, *ret;
	long long off = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|L", kwlist, &t.path,
					 &buf, &off))
		return NULL;
	if (!PyUnicode_FSConverter(t.path, &t.bytes))
		return NULL;
	if (check_offset(off) || handle_use(self) < 0) {
		Py_DECREF(t.bytes);
		return NULL;
	}
	t.handle = (PyObject *)self;
	t.h = self->h;
	t.user = (PyObject *)self;
	t.unuse = handle_unuse_obj;
	ret = transfer(&t, buf, off, write, async);
	Py_DECREF(t.bytes);
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


static PyMethodDef handle_methods[] = {
	M("open", file_open, KW, "open(path, mode='r') -> File\n\n"
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
	  "overlap=True, gpu_path='auto', share_node=False, spin_wait=True, "
	  "bounce=False)"
	  "\n\n"
	  "The engines and workers that move data. 0 means the default "
	  "(1 MiB blocks, queue depth 32, 1 thread). share_node: the queue "
	  "depth is the node's, and this handle takes queue_depth / "
	  "LOCAL_WORLD_SIZE. spin_wait=False: a lone small op's waiter "
	  "sleeps at once (less CPU, more latency at depth 1). bounce=True: "
	  "every direct request is copied through huge-page blocks, not "
	  "only those from unaligned memory (SWAPIO_CFG_BOUNCE). A context "
	  "manager; safe to use from many threads.") },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_init, handle_init },
	{ Py_tp_dealloc, handle_dealloc },
	{ Py_tp_methods, handle_methods },
	{ Py_tp_getset, handle_getset },
	{ 0, NULL }
};

/* Subclassable: the state is found through the bases (state_of_type()). */
static PyType_Spec handle_spec = {
	"swapio.Handle", sizeof(HandleObject), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, handle_slots
};

int handle_setup_types(PyObject *m, struct mod_state *st)
{
	st->HandleType = add_type(m, &handle_spec);
	return st->HandleType ? 0 : -1;
}
