/* SPDX-License-Identifier: MIT */
/*
 * common.h - what every file of the _swapio extension shares: the module
 * state, errors, the fork generation, argument converters and waits that
 * Ctrl-C can interrupt.
 *
 * The extension is one file per Python type, layered so that a file sees
 * only the files below it:
 *
 *	common	(this: state, errors, converters, waits)
 *	buffers	(the memory of an argument: buffer protocol or DLPack;
 *		 the Buffer type)
 *	op	(an op in flight and its orphan; transfers; the Op type)
 *	handle	(the Handle type)
 *	file	(the File type; Handle.open() builds one)
 *	store	(the Store and StoreOp types)
 *	pipeline (the _Pipeline type)
 *	tier	(the _Tier type: the block tier)
 *	module	(module functions, state set-up, PyInit__swapio)
 *
 * One arrow runs up: the Handle's method table lists Handle.open(), whose
 * body is in file.c because it is the File's constructor.
 *
 * Lifetimes, which decide everything here:
 * - An Op owns its swapio_op and the buffer it moves (a Py_buffer view or
 *   a DLPack managed tensor) until the op completes and is observed (a
 *   wait, done() or result that sees it finished). An Op dropped while
 *   in flight, or the op of a sync call that Ctrl-C interrupted, becomes
 *   an orphan that keeps the buffer until the op completes, so the kernel
 *   never writes into memory that Python has freed, and no destructor
 *   blocks (op.c). A StoreOp does the same through the same code.
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
#ifndef SWAPIO_PY_COMMON_H
#define SWAPIO_PY_COMMON_H

#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030B0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include <swapio.h>

/* Method and attribute tables. */
#define KW	(METH_VARARGS | METH_KEYWORDS)
#define M(name, fn, flags, doc) { name, (PyCFunction)(void (*)(void))fn, \
				  flags, PyDoc_STR(doc) }
#define G(name, fn, doc) { name, (getter)fn, NULL, PyDoc_STR(doc), NULL }

struct orphan;

/*
 * The module's state: what PyInit__swapio makes, one per module object
 * (CPython may make more than one: another interpreter, a fresh import).
 * Every object reaches it through its type (STATE()), so that it never
 * depends on a process-wide global.
 */
struct mod_state {
	PyObject *Error;	/* swapio.Error(OSError) */
	PyObject *Timeout;	/* swapio.Timeout(Error, TimeoutError) */
	PyObject *NoSuchKey;	/* swapio.NoSuchKey(Error, KeyError) */
	PyObject *await_hook;	/* swapio._aio.await_op, set at import */
	PyTypeObject *HandleType, *FileType, *OpType, *BufferType;
	PyTypeObject *StoreType, *StoreOpType, *PipelineType, *TierType;
	/* Ops in flight that nobody waits for any more (op.c); under the
	 * GIL. Each keeps an object of this module, so the state outlives
	 * them. */
	struct orphan *orphans;
};

extern struct PyModuleDef swapio_module_def;	/* module.c */

/*
 * The state of the module that made @tp, or of the nearest base it made
 * (Handle may be subclassed in Python). Never NULL for this module's
 * objects; keeps any exception set.
 */
struct mod_state *state_of_type(PyTypeObject *tp);
#define STATE(obj)	state_of_type(Py_TYPE((PyObject *)(obj)))

/* PyType_Spec @spec made a type of module @m and added to it by name. */
PyTypeObject *add_type(PyObject *m, PyType_Spec *spec);

/* Raise swapio.Error (swapio.Timeout for -ETIMEDOUT) for @err, a negative
 * errno or swapio code; @filename (or NULL) is the path at fault. Each
 * returns NULL for the caller to return. */
PyObject *raise_err(struct mod_state *st, int err, PyObject *filename);
/* As raise_err() with the message @text instead of swapio_strerror(). */
PyObject *raise_err_text(struct mod_state *st, int err, const char *text,
			 PyObject *filename);
/* As raise_err(), with @h's GPU note after a CUDA error: which call. */
PyObject *raise_dev_err(struct mod_state *st, int err, swapio_handle *h,
			PyObject *filename);
/* As raise_err(), with swapio_error_detail() after a call that sets it. */
PyObject *raise_err_detail(struct mod_state *st, int err,
			   PyObject *filename);
/* Make swapio.Error and swapio.Timeout, in @st and in module @m. */
int errors_setup(PyObject *m, struct mod_state *st);

/*
 * The process generation, bumped in the child of every fork(): objects
 * note it when made. It and the main thread's id are process-wide by
 * nature (a fork copies the process, whatever the modules in it), so
 * they are globals, set by a pthread_atfork() hook.
 */
extern unsigned int fork_gen;
/* Note the main thread and hook fork(); the first call per process does. */
int threads_setup(void);

/*
 * An object made before this process forked (@gen is its generation):
 * raise swapio.Error with code EFORKED (the state found from @obj), as
 * swapio's C calls return in a child, and return -1. Closing and
 * dropping never raise this.
 */
int forked_raise(PyObject *obj);
static inline int forked(PyObject *obj, unsigned int gen)
{
	return gen == fork_gen ? 0 : forked_raise(obj);
}

/* "O&" converters, in range or refused (OverflowError), never wrapped:
 * unsigned long long and unsigned int. */
int conv_u64(PyObject *o, void *p);
int conv_u32(PyObject *o, void *p);
/* Seconds (None: forever, -1) to the milliseconds swapio's waits take. */
int timeout_ms(PyObject *t, int *ms);
/* ValueError for a negative offset or length; 0 if none. */
int check_offset(long long off);

#define WAIT_INTERRUPTED	INT64_MIN	/* a signal handler raised */

/* A wait of swapio's: its result, or -ETIMEDOUT after @ms (0: poll). */
typedef int64_t (*wait_fn)(void *arg, int ms);

/*
 * @fn(@arg, ...) until it returns anything but -ETIMEDOUT, or @ms pass
 * (-1: no limit), GIL released; in the main thread in 50 ms slices with
 * signal handlers run between them: WAIT_INTERRUPTED when one raised.
 */
int64_t wait_slices(wait_fn fn, void *arg, int ms);

/* __enter__ of every context manager here: the object itself. */
PyObject *self_enter(PyObject *self, PyObject *unused);

#endif
