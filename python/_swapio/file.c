// SPDX-License-Identifier: MIT
/*
 * file.c - the File type: a file opened by Handle.open() for transfers.
 *
 * Invariants:
 * - A File holds a reference to its Handle and, until released, one use
 *   of it; f is closed (GIL released) once the File is closed with no
 *   users left (ops not yet observed, calls in progress), or at dealloc.
 *   A close(2) error of a deferred release is kept (close_err).
 * - A File made before a fork() refuses every call in the child, and
 *   closing it there does nothing.
 */
#include "file.h"

#include <errno.h>
#include <string.h>


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
	if (forked((PyObject *)fo, fo->owner->gen))
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
	reap_orphans((PyObject *)fo);
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

static void file_unuse_obj(PyObject *fo)
{
	file_unuse((FileObject *)fo);
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

PyObject *file_open(HandleObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "path", "mode", NULL };
	PyObject *path, *bytes = NULL;
	const char *mode = "r";
	unsigned int flags;
	FileObject *fo;
	swapio_file *f;
	struct mod_state *st = STATE(self);
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
		raise_err_detail(st, ret, path);
		goto err_unuse;
	}
	fo = PyObject_New(FileObject, st->FileType);
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

/* Nothing counts in a file being freed: each op holds a reference. */
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

/*
 * Closed at once for new calls; released now, raising close(2)'s error,
 * or by the last op or call, which keeps the error in close_err.
 */
static PyObject *file_close(FileObject *self, PyObject *unused)
{
	int ret;

	if (self->closed)
		Py_RETURN_NONE;
	self->closed = 1;
	if (self->owner->gen != fork_gen)
		Py_RETURN_NONE;	/* the parent's file: nothing to do */
	reap_orphans((PyObject *)self);
	if (self->users)
		Py_RETURN_NONE;	/* the last op or call closes it */
	ret = file_release(self);
	if (ret < 0)
		return raise_err(STATE(self), ret, self->path);
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
		return raise_err(STATE(self), (int)n, self->path);
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
		return raise_err(STATE(self), ret, self->path);
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
		return raise_err(STATE(self), ret, self->path);
	Py_RETURN_NONE;
}

/* pread/pwrite/read_async/write_async(buf, offset=0) on the file. */
static PyObject *file_xfer(FileObject *self, PyObject *args, PyObject *kw,
			   int write, int async)
{
	static char *kwlist[] = { "buf", "offset", NULL };
	struct target t = { 0 };
	PyObject *buf;
	long long off = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|L", kwlist, &buf, &off))
		return NULL;
	if (check_offset(off) || file_use(self) < 0)
		return NULL;
	t.handle = (PyObject *)self->owner;
	t.h = self->owner->h;
	t.f = self->f;
	t.user = (PyObject *)self;
	t.unuse = file_unuse_obj;
	t.path = self->path;
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

static PyType_Spec file_spec = {
	"swapio.File", sizeof(FileObject), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, file_slots
};

int file_setup_types(PyObject *m, struct mod_state *st)
{
	st->FileType = add_type(m, &file_spec);
	return st->FileType ? 0 : -1;
}
