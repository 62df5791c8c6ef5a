// SPDX-License-Identifier: MIT
/*
 * common.c - the module state lookup, swapio's errors as Python
 * exceptions, the fork generation, argument converters and waits that
 * Ctrl-C can interrupt: what every type of the extension uses.
 *
 * Invariants: nothing here keeps a Python object; the only globals are
 * the process-wide ones (fork_gen, main_thread), written once at import
 * and in the child of a fork, read under the GIL.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Module state                                                        */
/* ------------------------------------------------------------------ */

/*
 * PyType_GetModuleByDef() is not in the 3.11 stable ABI: walk the bases
 * by hand. The first try is @tp itself, which is one of this module's
 * types for every object but an instance of a Python subclass of Handle.
 */
struct mod_state *state_of_type(PyTypeObject *tp)
{
	PyObject *m = NULL, *type, *value, *tb;

	PyErr_Fetch(&type, &value, &tb);
	for (; tp; tp = PyType_GetSlot(tp, Py_tp_base)) {
		m = PyType_GetModule(tp);
		if (m && PyModule_GetDef(m) == &swapio_module_def)
			break;
		PyErr_Clear();	/* a type with no module: a subclass */
	}
	PyErr_Restore(type, value, tb);
	return tp ? PyModule_GetState(m) : NULL;
}

PyTypeObject *add_type(PyObject *m, PyType_Spec *spec)
{
	PyObject *tp = PyType_FromModuleAndSpec(m, spec, NULL);

	if (!tp)
		return NULL;
	if (PyModule_AddObjectRef(m, strchr(spec->name, '.') + 1, tp) < 0) {
		Py_DECREF(tp);
		return NULL;
	}
	return (PyTypeObject *)tp;
}

PyObject *self_enter(PyObject *self, PyObject *unused)
{
	Py_INCREF(self);
	return self;
}

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

PyObject *raise_err_text(struct mod_state *st, int err, const char *text,
			 PyObject *filename)
{
	PyObject *type = err == -ETIMEDOUT ? st->Timeout : st->Error;
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
		Py_XDECREF(code);
		Py_DECREF(exc);
		return NULL;
	}
	Py_DECREF(code);
	PyErr_SetObject(type, exc);
	Py_DECREF(exc);
	return NULL;
}

PyObject *raise_err(struct mod_state *st, int err, PyObject *filename)
{
	return raise_err_text(st, err, swapio_strerror(err), filename);
}

PyObject *raise_dev_err(struct mod_state *st, int err, swapio_handle *h,
			PyObject *filename)
{
	char text[768];
	size_t n;

	if ((err != SWAPIO_ECUDA && err != SWAPIO_ENOCUDA) || !h)
		return raise_err(st, err, filename);
	n = (size_t)snprintf(text, sizeof(text), "%s: ", swapio_strerror(err));
	if (n < sizeof(text))
		swapio_handle_gpu_note(h, text + n, sizeof(text) - n);
	return raise_err_text(st, err, text, filename);
}

/*
 * raise_err_detail() - raise_err() after a call whose contract says it may
 * set swapio_error_detail() (it clears it when it starts, so what is there
 * is its own): the detail, naming the path, variable or value at fault,
 * ends the message. Completions of ops never use it: their detail, if
 * any, belongs to another thread.
 */
PyObject *raise_err_detail(struct mod_state *st, int err, PyObject *filename)
{
	const char *d = swapio_error_detail();
	char text[768];

	if (!d || !*d)
		return raise_err(st, err, filename);
	snprintf(text, sizeof(text), "%s: %s", swapio_strerror(err), d);
	return raise_err_text(st, err, text, filename);
}

int errors_setup(PyObject *m, struct mod_state *st)
{
	PyObject *bases;

	st->Error = PyErr_NewExceptionWithDoc("swapio.Error",
		"An error from swapio: an OSError whose errno and strerror say "
		"what failed; .code is swapio's own (negative) code.",
		PyExc_OSError, NULL);
	if (!st->Error || PyModule_AddObjectRef(m, "Error", st->Error) < 0)
		return -1;
	bases = PyTuple_Pack(2, st->Error, PyExc_TimeoutError);
	if (!bases)
		return -1;
	st->Timeout = PyErr_NewExceptionWithDoc("swapio.Timeout",
		"A wait ran out of time; the op is still in flight.",
		bases, NULL);
	Py_DECREF(bases);
	if (!st->Timeout ||
	    PyModule_AddObjectRef(m, "Timeout", st->Timeout) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Fork: objects remember the process generation they were made in     */
/* ------------------------------------------------------------------ */

unsigned int fork_gen;		/* bumped in the child of every fork() */
static unsigned long main_thread;	/* where Python runs signal handlers */

/* The forking thread is the child's main thread, as Python makes it. */
static void fork_child(void)
{
	fork_gen++;
	main_thread = PyThread_get_thread_ident();
}

int forked_raise(PyObject *obj)
{
	raise_err(STATE(obj), SWAPIO_EFORKED, NULL);
	return -1;
}

/*
 * threading.main_thread()'s ident, and the fork hook: once per process,
 * however many times the module is made (another interpreter's main
 * thread is not where the process runs its signal handlers).
 */
int threads_setup(void)
{
	static int done;
	PyObject *mod, *t = NULL, *id = NULL;

	if (done)
		return 0;
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
	if (pthread_atfork(NULL, NULL, fork_child)) {
		PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
		return -1;
	}
	done = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Arguments: integers in range or refused, never wrapped              */
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

int conv_u64(PyObject *o, void *p)
{
	return conv_unsigned(o, ULLONG_MAX, p);
}

int conv_u32(PyObject *o, void *p)
{
	unsigned long long v;

	if (!conv_unsigned(o, UINT_MAX, &v))
		return 0;
	*(unsigned int *)p = (unsigned int)v;
	return 1;
}

int timeout_ms(PyObject *t, int *ms)
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

int check_offset(long long off)
{
	if (off < 0) {
		PyErr_SetString(PyExc_ValueError, "offset must be >= 0");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Waits that Ctrl-C can interrupt                                     */
/* ------------------------------------------------------------------ */

#define WAIT_SLICE_MS		50

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
int64_t wait_slices(wait_fn fn, void *arg, int ms)
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
