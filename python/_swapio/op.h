/* SPDX-License-Identifier: MIT */
/*
 * op.h - an op in flight as Python sees it (struct pending, shared by Op
 * and StoreOp), its orphan when nobody waits for it any more, transfers
 * (sync and async) and the Op type.
 */
#ifndef SWAPIO_PY_OP_H
#define SWAPIO_PY_OP_H

#include "buffers.h"

/* What differs between the two kinds of swapio op a pending op holds. */
struct pending_ops {
	wait_fn wait;			/* swapio_op_wait() or the store's */
	int (*done)(const void *op);	/* 1: complete; never blocks */
	void (*free)(void *op);		/* of a complete op */
	int free_unlocked;	/* free with the GIL released (a commit) */
	int guard_resize;	/* a tensor resized in flight: -EFAULT */
};

extern const struct pending_ops pending_io;	/* swapio_op */
extern const struct pending_ops pending_store;	/* swapio_store_op */

/*
 * pending - a swapio op in flight, the buffer it moves and one use of the
 * object it counts in (a File, Handle or Store, whose @unuse gives the
 * use back). Until finished, the op and the buffer are held; the first
 * wait that sees it complete, with no other thread inside the op,
 * finishes it (pending_wait()): the op is freed, the buffer and the use
 * released, and the result kept. A reference to @user is kept until
 * pending_drop(), so the object outlives what counts in it.
 */
struct pending {
	const struct pending_ops *ops;
	void *op;		/* NULL once finished */
	struct xbuf buf;
	PyObject *user;		/* a reference, and one use until finished */
	void (*unuse)(PyObject *user);
	int64_t result;
	int finished;
	int waiters;		/* threads inside the op's wait */
	int resized;		/* its tensor was resized in flight */
	unsigned int gen;	/* fork_gen when made */
};

/*
 * Fill @p for @op (of kind @ops) just submitted: the buffer @b moves in,
 * and the caller's use of @user (a new reference is taken) with it.
 */
void pending_start(struct pending *p, const struct pending_ops *ops,
		   void *op, struct xbuf *b, PyObject *user,
		   void (*unuse)(PyObject *user));
/*
 * Wait up to @ms for @p (GIL released, Ctrl-C heard: wait_slices()); the
 * result, -ETIMEDOUT, or WAIT_INTERRUPTED with the exception set. The
 * last waiter out of a complete op finishes it.
 */
int64_t pending_wait(struct pending *p, int ms);
/*
 * The object that holds @p goes: finish it if complete (or the parent's,
 * in a forked child), else hand it to an orphan of module state @st
 * (never a wait here, which Ctrl-C could not end); drop the reference.
 */
/*
 * The wait(timeout=None) method of @self, which holds @p: the timeout
 * parsed, the fork checked, then pending_wait(). 0 and *@ret, the op's
 * result (negative: its error, for the caller to raise), or -1 with an
 * exception set (bad timeout, forked, Ctrl-C); a wait that runs out of
 * time is a result, -ETIMEDOUT.
 */
int pending_wait_method(PyObject *self, struct pending *p, PyObject *args,
			PyObject *kw, int64_t *ret);
void pending_drop(struct mod_state *st, struct pending *p);
/*
 * An op that nobody will wait for (Ctrl-C in a sync call): @p moves into
 * an orphan of @st, which settles it once the op completes.
 */
void orphan_add(struct mod_state *st, struct pending *p);
/* Let every completed orphan of @st go. */
void reap_orphans_of(struct mod_state *st);
/* As reap_orphans_of() for the module of @obj, cheap when none. */
static inline void reap_orphans(PyObject *obj)
{
	struct mod_state *st = STATE(obj);

	if (st->orphans)
		reap_orphans_of(st);
}

/*
 * The target of one transfer: an open file, or a path on a handle. The
 * caller has taken one use of @user, which transfer() takes over: it
 * gives it back on failure, when a sync transfer is over, or when its
 * Op finishes.
 */
struct target {
	PyObject *handle;	/* the Handle that moves the data */
	swapio_handle *h;
	swapio_file *f;		/* the file, or NULL: by path */
	PyObject *user;		/* the File or Handle the op counts in */
	void (*unuse)(PyObject *user);
	PyObject *path;		/* as given, for errors */
	PyObject *bytes;	/* by path: its file system encoding */
};

/*
 * A read (@write 0) or write of @bufobj at @off through @t: sync, the
 * bytes moved (waited for in slices, as swapio_pread() would), or async,
 * a new Op.
 */
PyObject *transfer(struct target *t, PyObject *bufobj, long long off,
		   int write, int async);
/* swapio.wait_any(ops, timeout=None), a module function. */
PyObject *wait_any(PyObject *mod, PyObject *args, PyObject *kw);
int op_setup_types(PyObject *m, struct mod_state *st);

#endif
