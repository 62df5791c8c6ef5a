// SPDX-License-Identifier: MIT
/*
 * module.c - the _swapio module: its functions (strerror, version, probe,
 * checksum, hugepages, _alloc, wait_any from op.c), its state's life
 * (set-up, GC traversal, clearing) and PyInit__swapio.
 *
 * The module is made in phases (PEP 489): PyInit__swapio returns the
 * definition and module_exec() fills each new module object: errors,
 * then the types from the bottom of the layering up (common.h), then
 * swapio's own error codes as constants.
 *
 * Invariants: the state holds a reference to each exception, type and
 * the await hook, visited by module_traverse() and dropped by
 * module_clear(). Its orphans are not visited: each keeps an object of
 * this module, hence its type, hence the module, alive on purpose until
 * its op completes, so the state is never freed under one.
 */
#include "file.h"
#include "pipeline.h"
#include "tier.h"

#include <limits.h>

/* ------------------------------------------------------------------ */
/* Module functions                                                    */
/* ------------------------------------------------------------------ */

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
	return buffer_alloc(PyModule_GetState(mod), (size_t)n,
			    (pinned ? SWAPIO_BUF_LOCKED : 0) |
			    (huge ? SWAPIO_BUF_HUGE : 0));
}

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
		return raise_err(PyModule_GetState(mod), (int)ret, NULL);
	return PyLong_FromLongLong(ret);
}

/* swapio._aio hands over the function Op.__await__ calls. */
static PyObject *mod_set_await_hook(PyObject *mod, PyObject *fn)
{
	struct mod_state *st = PyModule_GetState(mod);
	PyObject *old = st->await_hook;

	Py_INCREF(fn);
	st->await_hook = fn;
	Py_XDECREF(old);
	Py_RETURN_NONE;
}

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

/* ------------------------------------------------------------------ */
/* The module and its state                                            */
/* ------------------------------------------------------------------ */

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
	struct mod_state *st = PyModule_GetState(m);

	if (!st)
		return 0;
	Py_VISIT(st->Error);
	Py_VISIT(st->Timeout);
	Py_VISIT(st->NoSuchKey);
	Py_VISIT(st->await_hook);
	Py_VISIT(st->HandleType);
	Py_VISIT(st->FileType);
	Py_VISIT(st->OpType);
	Py_VISIT(st->BufferType);
	Py_VISIT(st->StoreType);
	Py_VISIT(st->StoreOpType);
	Py_VISIT(st->PipelineType);
	Py_VISIT(st->TierType);
	return 0;
}

static int module_clear(PyObject *m)
{
	struct mod_state *st = PyModule_GetState(m);

	if (!st)
		return 0;
	Py_CLEAR(st->Error);
	Py_CLEAR(st->Timeout);
	Py_CLEAR(st->NoSuchKey);
	Py_CLEAR(st->await_hook);
	Py_CLEAR(st->HandleType);
	Py_CLEAR(st->FileType);
	Py_CLEAR(st->OpType);
	Py_CLEAR(st->BufferType);
	Py_CLEAR(st->StoreType);
	Py_CLEAR(st->StoreOpType);
	Py_CLEAR(st->PipelineType);
	Py_CLEAR(st->TierType);
	return 0;
}

static void module_free(void *m)
{
	module_clear(m);
}

/* swapio's own error codes, beside the errno values they map to. */
static int add_codes(PyObject *m)
{
	return PyModule_AddIntConstant(m, "EMEMLOCK", SWAPIO_EMEMLOCK) < 0 ||
	       PyModule_AddIntConstant(m, "EBADSTORE", SWAPIO_EBADSTORE) < 0 ||
	       PyModule_AddIntConstant(m, "EFORKED", SWAPIO_EFORKED) < 0 ||
	       PyModule_AddIntConstant(m, "ENOCUDA", SWAPIO_ENOCUDA) < 0 ||
	       PyModule_AddIntConstant(m, "ECUDA", SWAPIO_ECUDA) < 0 ||
	       PyModule_AddIntConstant(m, "EDRIVES", SWAPIO_EDRIVES) < 0 ?
	       -1 : 0;
}

static int module_exec(PyObject *m)
{
	struct mod_state *st = PyModule_GetState(m);

	if (threads_setup() < 0 || errors_setup(m, st) < 0 ||
	    handle_setup_types(m, st) < 0 || file_setup_types(m, st) < 0 ||
	    op_setup_types(m, st) < 0 || buffers_setup_types(m, st) < 0 ||
	    store_setup_types(m, st) < 0 || pipeline_setup_types(m, st) < 0 ||
	    tier_setup_types(m, st) < 0 ||
	    add_codes(m) < 0)
		return -1;
	return 0;
}

static PyModuleDef_Slot module_slots[] = {
	{ Py_mod_exec, module_exec },
	{ 0, NULL }
};

struct PyModuleDef swapio_module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "_swapio",
	.m_doc = PyDoc_STR("The C core of the swapio package; import swapio "
			   "instead."),
	.m_size = sizeof(struct mod_state),
	.m_methods = mod_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__swapio(void)
{
	return PyModuleDef_Init(&swapio_module_def);
}
