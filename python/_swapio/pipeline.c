// SPDX-License-Identifier: MIT
/*
 * pipeline.c - the _Pipeline type: groups of a Store's values read ahead
 * into pinned buffers within a byte budget, lent to Python as Buffer
 * views, and written back when released.
 *
 * Invariants:
 * - A pipeline holds a reference to its Store and, until released, one
 *   use of it; p is destroyed (GIL released) at close() or dealloc.
 * - The Buffers next() returns keep the pipeline object alive (their
 *   owner); the memory behind them is the pipeline's until the group is
 *   released.
 */
#include "pipeline.h"

#include <limits.h>

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

/* The tensors of every group of the list @groups, or -1 (raised). */
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

/*
 * _Pipeline(store, groups, ...): the groups' keys stay alive (in @keep)
 * only until swapio_pipeline_create() has copied them.
 */
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
					 STATE(self)->StoreType, &so, &groups,
					 conv_u64, &budget, conv_u32, &depth,
					 &pinned, &huge) ||
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
		raise_err(STATE(self), r, NULL);
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

/* The pipeline is open and its store made in this process. */
static int pipe_check(PipelineObject *self)
{
	if (self->p && forked((PyObject *)self, self->store->gen))
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
		return raise_err(STATE(self), ret, NULL);
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
		return raise_err(STATE(self), ret, NULL);
	if (ret == 0)
		Py_RETURN_NONE;
	bufs = PyList_New(v.nr_tensors);
	for (i = 0; bufs && i < v.nr_tensors; i++) {
		b = buffer_new_view(STATE(self), v.bufs[i], v.tensors[i].len,
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
		return raise_err(STATE(self), ret, NULL);
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
		return raise_err(STATE(self), ret, NULL);
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
		return raise_err(STATE(self), ret, NULL);
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

/* Destroy the C pipeline now, its memory with it, not at dealloc. */
static PyObject *pipe_close(PipelineObject *self, PyObject *unused)
{
	pipe_release(self);
	Py_RETURN_NONE;
}

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

static PyType_Spec pipe_spec = {
	"swapio._Pipeline", sizeof(PipelineObject), 0, Py_TPFLAGS_DEFAULT,
	pipe_slots
};

int pipeline_setup_types(PyObject *m, struct mod_state *st)
{
	st->PipelineType = add_type(m, &pipe_spec);
	return st->PipelineType ? 0 : -1;
}
