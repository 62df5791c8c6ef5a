// SPDX-License-Identifier: MIT
/*
 * store.c - the Store type, tensors by key in one directory or striped
 * over several, and StoreOp, an asynchronous put or get.
 *
 * Invariants:
 * - A Store holds a reference to each drive's Handle and, until released,
 *   one use of each; s is closed (GIL released) once the Store is closed
 *   with no users left (ops not yet observed, pipelines, calls), or at
 *   dealloc.
 * - A StoreOp is a struct pending (op.c) whose user is its Store: the
 *   waiting, finishing and dropping are an Op's. Its done() only asks,
 *   since a store op's wait may commit, which done() must not do.
 * - A missing key raises NoSuchKey, which is both a swapio.Error and a
 *   KeyError.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every handle the store uses: drive 0's, and the others' when striped. */
void store_unuse_handles(HandleObject *ho, PyObject *drives, Py_ssize_t n)
{
	if (!drives) {
		handle_unuse(ho);
		return;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		handle_unuse((HandleObject *)PyTuple_GetItem(drives, i));
}

/* Close the C store, once (GIL released), and give back its handles. */
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

int store_use(StoreObject *so)
{
	reap_orphans((PyObject *)so);
	if (forked((PyObject *)so, so->gen))
		return -1;
	if (so->closed || !so->s) {
		PyErr_SetString(PyExc_ValueError, "the store is closed");
		return -1;
	}
	so->users++;
	return 0;
}

void store_unuse(StoreObject *so)
{
	if (--so->users == 0 && so->closed)
		store_release(so);
}

/* store_unuse() of a Store as a struct pending's user. */
static void store_unuse_obj(PyObject *so)
{
	store_unuse((StoreObject *)so);
}

/* Raise for a store error about @key: a missing key is a KeyError too. */
static PyObject *store_err(struct mod_state *st, int err, PyObject *key)
{
	PyObject *exc;

	if (err != -ENOENT || !key)
		return raise_err(st, err, NULL);
	exc = PyObject_CallFunction(st->NoSuchKey, "isO", ENOENT,
				    "no such key", key);
	if (!exc)
		return NULL;
	PyErr_SetObject(st->NoSuchKey, exc);
	Py_DECREF((PyObject *)exc);
	return NULL;
}

/*
 * key_bytes() - the bytes of a key, as a new reference: bytes as given, a
 * str encoded as UTF-8 with surrogateescape, so that every key keys()
 * returns (undecodable bytes as lone surrogates, as os.fsdecode() does)
 * names the same key again. NULL with TypeError or ValueError.
 */
PyObject *key_bytes(PyObject *key)
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
Py_ssize_t store_drives(struct mod_state *st, PyObject *dir,
			       PyObject *handle,
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
		if (!PyObject_TypeCheck(h, st->HandleType)) {
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

/*
 * Store(dir, handle, ...): open or create on every drive, each drive's
 * handle in use until the store is released.
 */
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
	n = store_drives(STATE(self), dir, handle, dv, paths, &hs);
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
		raise_err_detail(STATE(self), ret, name);
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

/* Nothing counts in a store being freed: each user holds a reference. */
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

/* Closed at once for new calls; released with its last user. */
static PyObject *store_close(StoreObject *self, PyObject *unused)
{
	if (self->gen != fork_gen) {
		self->closed = 1;	/* the parent's store: nothing to do */
		Py_RETURN_NONE;
	}
	reap_orphans((PyObject *)self);
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
	struct mod_state *st = STATE(self);
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
				store_err(st, (int)n, key);
				goto err_unuse;
			}
			target = buffer_alloc(st, (size_t)n,
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
		store_err(st, ret, key);
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
	struct mod_state *st = STATE(self);
	swapio_store_op *op;
	struct pending p;
	struct xbuf b;
	PyObject *out;
	int64_t r;

	if (store_start(self, key, bufobj, given, put, &op, &b, &out) < 0)
		return NULL;
	r = wait_slices(pending_store.wait, op, -1);
	if (r == WAIT_INTERRUPTED) {
		pending_start(&p, &pending_store, op, &b, (PyObject *)self,
			      store_unuse_obj);
		orphan_add(st, &p);
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
		return raise_resized(st, NULL);
	}
	xbuf_release(&b);
	if (r < 0) {
		Py_XDECREF(out);
		return store_err(st, (int)r, key);
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
	struct pending p;	/* user: the Store */
	PyObject *out;		/* a get's buffer, else None */
	PyObject *key;
	int put;
} StoreOpObject;

/* As an Op's: an orphan keeps what an op in flight holds. */
static void sop_dealloc(StoreOpObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	pending_drop(STATE(self), &self->p);
	Py_XDECREF(self->out);
	Py_XDECREF(self->key);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

/* put_async() and get_async(): a StoreOp whose user is @self. */
static PyObject *store_submit(StoreObject *self, PyObject *key,
			      PyObject *bufobj, PyObject *out, int put)
{
	PyTypeObject *tp = STATE(self)->StoreOpType;
	StoreOpObject *o = PyObject_New(StoreOpObject, tp);
	swapio_store_op *op;
	struct xbuf b;

	if (!o)
		return NULL;
	memset(&o->p, 0, sizeof(o->p));
	o->p.finished = 1;
	o->put = put;
	o->out = NULL;
	Py_INCREF(key);
	o->key = key;
	if (store_start(self, key, bufobj, out, put, &op, &b, &o->out) < 0) {
		Py_DECREF((PyObject *)o);
		return NULL;
	}
	pending_start(&o->p, &pending_store, op, &b, (PyObject *)self,
		      store_unuse_obj);
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
		return store_err(STATE(self), ret, key);
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
		return store_err(STATE(self), (int)n, key);
	return PyLong_FromLongLong(n);
}

/* `key in store`: a key that cannot be stored (-EINVAL) is not in it. */
static int store_contains(StoreObject *self, PyObject *key)
{
	int64_t n = key_size(self, key);

	if (n == -ERANGE)
		return -1;
	if (n < 0 && n != -ENOENT && n != -EINVAL) {
		raise_err(STATE(self), (int)n, NULL);
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
		return raise_err(STATE(self), ret, NULL);
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
		return raise_err(STATE(self), ret, NULL);
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
	int64_t ret;

	if (pending_wait_method((PyObject *)self, &self->p, args, kw, &ret))
		return NULL;
	if (ret < 0)
		return store_err(STATE(self), (int)ret, self->key);
	return PyLong_FromLongLong(ret);
}

static PyObject *sop_done(StoreOpObject *self, PyObject *unused)
{
	int r;

	if (forked((PyObject *)self, self->p.gen))
		return NULL;
	if (self->p.finished)
		Py_RETURN_TRUE;
	r = swapio_store_op_done(self->p.op);	/* never commits */
	if (r < 0)
		return raise_err(STATE(self), r, NULL);
	return PyBool_FromLong(r);
}

static PyObject *sop_out(StoreOpObject *self, void *unused)
{
	if (self->out && self->out != Py_None && !self->put &&
	    PyObject_TypeCheck(self->out, STATE(self)->BufferType))
		return PyMemoryView_FromObject(self->out);
	if (!self->out)
		Py_RETURN_NONE;
	Py_INCREF((PyObject *)self->out);
	return self->out;
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

static PyType_Spec store_spec = {
	"swapio.Store", sizeof(StoreObject), 0, Py_TPFLAGS_DEFAULT, store_slots
};

static PyType_Spec sop_spec = {
	"swapio.StoreOp", sizeof(StoreOpObject), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	sop_slots
};

/* NoSuchKey, Store and StoreOp, in @st and in module @m. */
int store_setup_types(PyObject *m, struct mod_state *st)
{
	PyObject *bases = PyTuple_Pack(2, st->Error, PyExc_KeyError);

	if (!bases)
		return -1;
	st->NoSuchKey = PyErr_NewExceptionWithDoc("swapio.NoSuchKey",
		"The store has no such key (errno ENOENT; also a KeyError).",
		bases, NULL);
	Py_DECREF(bases);
	if (!st->NoSuchKey ||
	    PyModule_AddObjectRef(m, "NoSuchKey", st->NoSuchKey) < 0)
		return -1;
	st->StoreType = add_type(m, &store_spec);
	st->StoreOpType = add_type(m, &sop_spec);
	return st->StoreType && st->StoreOpType ? 0 : -1;
}
