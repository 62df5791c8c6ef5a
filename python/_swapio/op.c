// SPDX-License-Identifier: MIT
/*
 * op.c - ops in flight: the waiting, finishing and dropping that Op and
 * StoreOp share (struct pending), orphans, transfers and the Op type.
 *
 * Invariants:
 * - A pending op holds its swapio op, its buffer and one use of its user
 *   until finished; finished is set once, under the GIL, by the last
 *   thread out of a wait that saw the op complete, or by the drop of its
 *   object. No thread is inside the op when it is freed.
 * - Nothing here blocks with the GIL held but the free of a complete op.
 * - Orphans live in the module state, a list changed only under the GIL.
 */
#include "op.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The two kinds of swapio op                                          */
/* ------------------------------------------------------------------ */

static int64_t io_wait(void *op, int ms)
{
	return swapio_op_wait(op, ms);
}

static int io_done(const void *op)
{
	return swapio_op_done(op);
}

static void io_free(void *op)
{
	swapio_op_free(op);
}

static int64_t store_wait(void *op, int ms)
{
	return swapio_store_op_wait(op, ms);
}

static int store_done(const void *op)
{
	return swapio_store_op_done(op);
}

static void store_free(void *op)
{
	swapio_store_op_free(op);
}

/* A transfer's free never blocks; a store op's may commit the put. The
 * store guards a sync transfer's tensor (store.c), not a StoreOp's. */
const struct pending_ops pending_io = { io_wait, io_done, io_free, 0, 1 };
const struct pending_ops pending_store = { store_wait, store_done,
					   store_free, 1, 0 };

/* ------------------------------------------------------------------ */
/* Pending ops                                                         */
/* ------------------------------------------------------------------ */

void pending_start(struct pending *p, const struct pending_ops *ops,
		   void *op, struct xbuf *b, PyObject *user,
		   void (*unuse)(PyObject *user))
{
	p->ops = ops;
	p->op = op;
	p->buf = *b;
	memset(b, 0, sizeof(*b));
	Py_INCREF(user);
	p->user = user;
	p->unuse = unuse;
	p->result = 0;
	p->finished = 0;
	p->waiters = 0;
	p->resized = 0;
	p->gen = fork_gen;
}

/*
 * Let go of what @p holds, its op complete: the op (a parent's, in a
 * forked child, is not ours to free), the buffer, the use; not the
 * reference to the user.
 */
static void pending_settle(struct pending *p)
{
	if (p->gen == fork_gen) {
		if (p->ops->free_unlocked) {
			Py_BEGIN_ALLOW_THREADS
			p->ops->free(p->op);
			Py_END_ALLOW_THREADS
		} else {
			p->ops->free(p->op);	/* complete: does not block */
		}
	}
	p->op = NULL;
	xbuf_release(&p->buf);
	p->unuse(p->user);
}

/* @p completed with @res and nobody waits in C: release all it holds. */
static void pending_finish(struct pending *p, int64_t res)
{
	if (p->ops->guard_resize && xbuf_moved(&p->buf)) {
		p->resized = 1;
		res = -EFAULT;
	}
	p->result = res;
	p->finished = 1;
	pending_settle(p);
}

int64_t pending_wait(struct pending *p, int ms)
{
	int64_t ret;

	if (p->finished)
		return p->result;
	p->waiters++;
	ret = wait_slices(p->ops->wait, p->op, ms);
	/* The last thread out frees the op: no one else is inside it. */
	if (--p->waiters == 0 && !p->finished && ret != -ETIMEDOUT &&
	    ret != WAIT_INTERRUPTED)
		pending_finish(p, ret);
	return p->finished ? p->result : ret;
}

int pending_wait_method(PyObject *self, struct pending *p, PyObject *args,
			PyObject *kw, int64_t *ret)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *t = Py_None;
	int ms;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &t) ||
	    timeout_ms(t, &ms) < 0 || forked(self, p->gen))
		return -1;
	*ret = pending_wait(p, ms);
	return *ret == WAIT_INTERRUPTED ? -1 : 0;
}

void pending_drop(struct mod_state *st, struct pending *p)
{
	/*
	 * Still in flight: the kernel may be writing into the buffer we hold.
	 * In this process, an orphan keeps it (and the use) until the op
	 * completes. A parent's op, in a child, has nothing to wait for.
	 */
	if (!p->finished && p->op) {
		if (p->gen != fork_gen)
			pending_finish(p, SWAPIO_EFORKED);
		else if (p->ops->done(p->op) == 1)
			pending_finish(p, p->ops->wait(p->op, 0));
		else
			orphan_add(st, p);
	}
	p->finished = 1;
	Py_CLEAR(p->user);
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
 * or store, and Handle.wait_all() after its wait.
 */
struct orphan {
	struct orphan *next;
	struct pending p;	/* holds its user's reference */
};

/* Let a completed orphan's op go, and its user; not @o itself. */
static void orphan_settle(struct orphan *o)
{
	pending_settle(&o->p);
	Py_DECREF(o->p.user);
}

static int orphan_done(const struct orphan *o)
{
	if (o->p.gen != fork_gen)
		return 1;	/* the parent's: nothing to wait for here */
	return o->p.ops->done(o->p.op) == 1;
}

void reap_orphans_of(struct mod_state *st)
{
	struct orphan **pp = &st->orphans, *o, *done = NULL;

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

/* Without memory for the record, waits for the op here (GIL released). */
void orphan_add(struct mod_state *st, struct pending *p)
{
	struct orphan *o = PyMem_Calloc(1, sizeof(*o)), tmp;

	if (!o) {
		o = &tmp;
		memset(o, 0, sizeof(*o));
	}
	o->p = *p;
	p->op = NULL;
	p->user = NULL;
	memset(&p->buf, 0, sizeof(p->buf));
	if (o == &tmp) {
		/* No memory for the record: wait here, as a last resort. */
		if (o->p.gen == fork_gen) {
			Py_BEGIN_ALLOW_THREADS
			o->p.ops->wait(o->p.op, -1);
			Py_END_ALLOW_THREADS
		}
		orphan_settle(o);
		return;
	}
	o->next = st->orphans;
	st->orphans = o;
}

/* ------------------------------------------------------------------ */
/* Transfers, sync and async                                           */
/* ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	struct pending p;	/* user: the File, or the Handle by path */
	PyObject *owner;	/* the Handle */
	PyObject *path;		/* the path as given, for errors */
	int write;
} OpObject;

static int target_submit(struct target *t, struct xbuf *b, uint64_t off,
			 int write, swapio_op **op)
{
	swapio_handle *h = t->h;
	swapio_file *f = t->f;
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
static void raise_submit_err(struct mod_state *st, int err, struct target *t)
{
	if (err == SWAPIO_ECUDA || err == SWAPIO_ENOCUDA)
		raise_dev_err(st, err, t->h, t->path);
	else if (!t->f)
		raise_err_detail(st, err, t->path);
	else
		raise_err(st, err, t->path);
}

/* An op waited for at once, as swapio_pread() does, in slices so that
 * Ctrl-C gets through; on Ctrl-C the op becomes an orphan. */
static PyObject *transfer_sync(struct mod_state *st, struct target *t,
			       struct xbuf *b, long long off, int write)
{
	struct pending p;
	swapio_op *op;
	int64_t r;
	int ret, moved;

	ret = target_submit(t, b, (uint64_t)off, write, &op);
	if (ret < 0) {
		raise_submit_err(st, ret, t);
		t->unuse(t->user);
		xbuf_release(b);
		return NULL;
	}
	r = wait_slices(pending_io.wait, op, -1);
	if (r == WAIT_INTERRUPTED) {
		pending_start(&p, &pending_io, op, b, t->user, t->unuse);
		orphan_add(st, &p);
		return NULL;	/* the orphan keeps the use */
	}
	swapio_op_free(op);	/* complete: does not block */
	t->unuse(t->user);
	moved = xbuf_moved(b);
	xbuf_release(b);
	if (moved)
		return raise_resized(st, t->path);
	if (r < 0)
		return raise_dev_err(st, (int)r, t->h, t->path);
	return PyLong_FromSsize_t((ssize_t)r);
}

PyObject *transfer(struct target *t, PyObject *bufobj, long long off,
		   int write, int async)
{
	struct mod_state *st = STATE(t->user);
	struct xbuf b;
	swapio_op *op;
	OpObject *o;
	int ret;

	if (xbuf_get_on(st, bufobj, !write, t->h, &b) < 0) {
		t->unuse(t->user);
		return NULL;
	}
	if (!async)
		return transfer_sync(st, t, &b, off, write);
	o = PyObject_New(OpObject, st->OpType);
	if (!o)
		goto err_unuse;
	ret = target_submit(t, &b, (uint64_t)off, write, &op);
	if (ret < 0) {
		memset(&o->p, 0, sizeof(o->p));
		o->p.finished = 1;
		o->owner = NULL;
		o->path = NULL;
		Py_DECREF((PyObject *)o);
		raise_submit_err(st, ret, t);
		goto err_unuse;
	}
	pending_start(&o->p, &pending_io, op, &b, t->user, t->unuse);
	Py_INCREF(t->handle);
	o->owner = t->handle;
	Py_XINCREF(t->path);
	o->path = t->path;
	o->write = write;
	return (PyObject *)o;

err_unuse:
	t->unuse(t->user);
	xbuf_release(&b);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Op                                                                  */
/* ------------------------------------------------------------------ */

/* An exception for a finished op's error: the path it moved data of. */
static PyObject *raise_op_err(OpObject *o, int err)
{
	if (o->p.resized)
		return raise_resized(STATE(o), o->path);
	return raise_err(STATE(o), err, o->path);
}

static void op_dealloc(OpObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	pending_drop(STATE(self), &self->p);
	Py_XDECREF(self->path);
	Py_XDECREF(self->owner);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

static PyObject *op_wait(OpObject *self, PyObject *args, PyObject *kw)
{
	int64_t ret;

	if (pending_wait_method((PyObject *)self, &self->p, args, kw, &ret))
		return NULL;
	if (ret < 0)
		return raise_op_err(self, (int)ret);
	return PyLong_FromSsize_t((ssize_t)ret);
}

static PyObject *op_done(OpObject *self, PyObject *unused)
{
	if (forked((PyObject *)self, self->p.gen))
		return NULL;
	if (self->p.finished)
		Py_RETURN_TRUE;
	return PyBool_FromLong(pending_wait(&self->p, 0) != -ETIMEDOUT);
}

static PyObject *op_result(OpObject *self, void *unused)
{
	int64_t ret;

	if (forked((PyObject *)self, self->p.gen))
		return NULL;
	ret = pending_wait(&self->p, 0);
	if (ret == -ETIMEDOUT && !self->p.finished)
		Py_RETURN_NONE;
	if (ret < 0)
		return raise_op_err(self, (int)ret);
	return PyLong_FromSsize_t((ssize_t)ret);
}

static PyObject *op_nbytes(OpObject *self, void *unused)
{
	return PyLong_FromSize_t(self->p.buf.len);
}

static PyObject *op_handle(OpObject *self, void *unused)
{
	if (!self->owner)
		Py_RETURN_NONE;
	Py_INCREF(self->owner);
	return self->owner;
}

static PyObject *op_is_write(OpObject *self, void *unused)
{
	return PyBool_FromLong(self->write);
}

static PyObject *op_await(OpObject *self)
{
	PyObject *hook = STATE(self)->await_hook;

	if (!hook) {
		PyErr_SetString(PyExc_RuntimeError, "swapio._aio not loaded");
		return NULL;
	}
	return PyObject_CallFunctionObjArgs(hook, (PyObject *)self, NULL);
}

/* ------------------------------------------------------------------ */
/* wait_any()                                                          */
/* ------------------------------------------------------------------ */

struct any_args {
	swapio_op **ops;
	unsigned int n;
};

static int64_t wait_any_fn(void *arg, int ms)
{
	struct any_args *a = arg;

	return swapio_wait_any(a->ops, a->n, ms);
}

/* The waiters of every op of @list change by @d: no finish meanwhile. */
static void any_waiters(PyObject *list, Py_ssize_t n, int d)
{
	for (Py_ssize_t i = 0; i < n; i++)
		((OpObject *)PyList_GetItem(list, i))->p.waiters += d;
}

PyObject *wait_any(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "ops", "timeout", NULL };
	struct mod_state *st = PyModule_GetState(mod);
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
		if (!PyObject_TypeCheck((PyObject *)o, st->OpType)) {
			PyErr_SetString(PyExc_TypeError, "wait_any() takes "
					"swapio.Op objects");
			goto out;
		}
		if (forked((PyObject *)o, o->p.gen))
			goto out;
		if (o->p.finished) {
			ret = PyLong_FromSsize_t(i);
			goto out;
		}
		if (o->owner != ((OpObject *)PyList_GetItem(list, 0))->owner) {
			PyErr_SetString(PyExc_ValueError, "wait_any(): all ops "
					"must belong to one handle");
			goto out;
		}
		cops[i] = o->p.op;
	}
	any_waiters(list, n, 1);
	aa.ops = cops;
	aa.n = (unsigned int)n;
	r = wait_slices(wait_any_fn, &aa, ms);
	any_waiters(list, n, -1);
	if (r == WAIT_INTERRUPTED)
		goto out;
	if (r < 0) {
		raise_err(st, (int)r, NULL);
		goto out;
	}
	pending_wait(&((OpObject *)PyList_GetItem(list, (Py_ssize_t)r))->p, 0);
	ret = PyLong_FromLong((long)r);
out:
	PyMem_Free(cops);
	Py_DECREF(list);
	return ret;
}

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

static PyType_Spec op_spec = {
	"swapio.Op", sizeof(OpObject), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, op_slots
};

int op_setup_types(PyObject *m, struct mod_state *st)
{
	st->OpType = add_type(m, &op_spec);
	return st->OpType ? 0 : -1;
}
