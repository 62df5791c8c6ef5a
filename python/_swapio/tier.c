// SPDX-License-Identifier: MIT
/*
 * tier.c - the _Tier type: a swapio_tier (the block tier of swapio.h)
 * over one or more drives, each with its Handle. swapio.BlockTier
 * (python/swapio/_tier.py) is the public face.
 *
 * Invariants:
 * - Every batch submitted and not yet released has a struct pbatch on
 *   self->batches holding the memory of each of its buffers (struct
 *   xbuf) and its results array, so that no buffer the tier's thread
 *   still reads or writes is ever released. A batch's pbatch goes when
 *   its record says the tier is done with its buffers: its first record
 *   without SWAPIO_TIER_HELD, or the RELEASED record after a HELD one.
 * - reap() hands each batch to Python once, with its first record, and
 *   a held batch once more, as (id, RELEASED, None), when the tier is
 *   done with its buffers.
 * - close() (or dealloc) closes the C tier first, which waits for every
 *   op, and only then releases the buffers. All under the GIL except the
 *   close and wait themselves.
 */
#include "tier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buffers.h"
#include "store.h"

struct pbatch {
	struct pbatch *next;
	uint64_t id;
	unsigned int n;
	int reported;
	int32_t *res;
	struct xbuf *bufs;	/* n, or NULL for EXISTS / REMOVE */
};

typedef struct {
	PyObject_HEAD
	swapio_tier *t;		/* NULL once closed */
	PyObject *handles;	/* tuple, each Handle in use until close */
	struct pbatch *batches;
	unsigned int gen;
} TierObject;

static void pbatch_free(struct pbatch *b)
{
	if (b->bufs)
		for (unsigned int i = 0; i < b->n; i++)
			xbuf_release(&b->bufs[i]);
	free(b->bufs);
	free(b->res);
	free(b);
}

static void tier_release(TierObject *self)
{
	swapio_tier *t = self->t;
	struct pbatch *b, *next;

	self->t = NULL;
	if (t) {
		Py_BEGIN_ALLOW_THREADS
		swapio_tier_close(t);
		Py_END_ALLOW_THREADS
	}
	for (b = self->batches; b; b = next) {
		next = b->next;
		pbatch_free(b);
	}
	self->batches = NULL;
	if (self->handles) {
		store_unuse_handles(NULL, self->handles,
				    PyTuple_Size(self->handles));
		Py_CLEAR(self->handles);
	}
}

static int tier_live(TierObject *self)
{
	if (forked((PyObject *)self, self->gen))
		return -1;
	if (!self->t) {
		PyErr_SetString(PyExc_ValueError, "the tier is closed");
		return -1;
	}
	return 0;
}

static int tier_init(TierObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "dir", "handle", "namespace", "capacity",
				  "high_pct", "low_pct", "checksum",
				  "max_inflight", "stripe_unit", NULL };
	struct swapio_store_drive dv[SWAPIO_STORE_DRIVES_MAX];
	PyObject *paths[SWAPIO_STORE_DRIVES_MAX] = { 0 };
	struct swapio_tier_config cfg = { 0 };
	unsigned long long cap = 0, unit = 0;
	unsigned int high = 0, low = 0, inflight = 0;
	int sum = 1, ret;
	const char *ns;
	PyObject *dir, *handle, *hs;
	swapio_tier *t;
	Py_ssize_t n;

	if (self->t) {
		PyErr_SetString(PyExc_RuntimeError, "tier already open");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOs|O&O&O&pO&O&", kwlist,
					 &dir, &handle, &ns, conv_u64, &cap,
					 conv_u32, &high, conv_u32, &low,
					 &sum, conv_u32, &inflight,
					 conv_u64, &unit))
		return -1;
	n = store_drives(STATE(self), dir, handle, dv, paths, &hs);
	if (n < 0)
		return -1;
	cfg.capacity = cap;
	cfg.high_pct = high;
	cfg.low_pct = low;
	cfg.max_inflight = inflight;
	cfg.stripe_unit = unit;
	cfg.flags = sum ? 0 : SWAPIO_STORE_NO_CHECKSUM;
	Py_BEGIN_ALLOW_THREADS
	ret = swapio_tier_open(dv, (unsigned int)n, ns, &cfg, &t);
	Py_END_ALLOW_THREADS
	for (Py_ssize_t i = 0; i < n; i++)
		Py_DECREF(paths[i]);
	if (ret < 0) {
		store_unuse_handles(NULL, hs, n);
		Py_DECREF(hs);
		raise_err_detail(STATE(self), ret, dir);
		return -1;
	}
	self->t = t;
	self->handles = hs;
	self->gen = fork_gen;
	return 0;
}

static void tier_dealloc(TierObject *self)
{
	PyTypeObject *tp = Py_TYPE((PyObject *)self);

	if (self->gen == fork_gen)
		tier_release(self);
	PyObject_Free(self);
	Py_DECREF((PyObject *)tp);
}

/* submit(verb, keys, bufs, timeout_ms) -> batch id */
static PyObject *tier_submit(TierObject *self, PyObject *args)
{
	unsigned int verb;
	int timeout_ms, io;
	PyObject *keys, *bufs, *kseq = NULL, *bseq = NULL, *kb = NULL;
	struct swapio_tier_block *v = NULL;
	PyObject **kbytes = NULL;
	struct pbatch *b = NULL;
	Py_ssize_t n = 0, i, taken = 0;
	int64_t id;

	if (!PyArg_ParseTuple(args, "IOOi", &verb, &keys, &bufs, &timeout_ms) ||
	    tier_live(self) < 0)
		return NULL;
	io = verb == SWAPIO_TIER_PUT || verb == SWAPIO_TIER_GET;
	kseq = PySequence_Tuple(keys);
	if (!kseq)
		return NULL;
	n = PyTuple_Size(kseq);
	if (n < 1 || n > 65536) {
		PyErr_SetString(PyExc_ValueError,
				"a batch has 1 to 65536 keys");
		goto err;
	}
	if (io) {
		bseq = PySequence_Tuple(bufs);
		if (!bseq)
			goto err;
		if (PyTuple_Size(bseq) != n) {
			PyErr_SetString(PyExc_ValueError,
					"one buffer per key");
			goto err;
		}
	}
	b = calloc(1, sizeof(*b));
	v = calloc((size_t)n, sizeof(*v));
	kbytes = calloc((size_t)n, sizeof(*kbytes));
	if (!b || !v || !kbytes || !(b->res = calloc((size_t)n, 4)) ||
	    (io && !(b->bufs = calloc((size_t)n, sizeof(*b->bufs))))) {
		PyErr_NoMemory();
		goto err;
	}
	b->n = (unsigned int)n;
	for (i = 0; i < n; i++) {
		kb = key_bytes(PyTuple_GetItem(kseq, i));
		if (!kb)
			goto err;
		kbytes[i] = kb;
		v[i].key = PyBytes_AsString(kb);
	}
	for (i = 0; io && i < n; i++) {
		if (xbuf_get(PyTuple_GetItem(bseq, i),
			     verb == SWAPIO_TIER_GET, &b->bufs[i]) < 0)
			goto err;
		taken++;
		v[i].buf = b->bufs[i].ptr;
		v[i].len = b->bufs[i].len;
	}
	id = swapio_tier_submit(self->t, verb, v, (unsigned int)n, b->res,
				timeout_ms);
	if (id < 0) {
		raise_err(STATE(self), (int)id, NULL);
		goto err;
	}
	b->id = (uint64_t)id;
	b->next = self->batches;
	self->batches = b;
	for (i = 0; i < n; i++)
		Py_DECREF(kbytes[i]);
	free(kbytes);
	free(v);
	Py_DECREF(kseq);
	Py_XDECREF(bseq);
	return PyLong_FromLongLong(id);

err:
	if (b) {
		b->n = (unsigned int)taken;
		pbatch_free(b);
	}
	for (i = 0; kbytes && i < n; i++)
		Py_XDECREF(kbytes[i]);
	free(kbytes);
	free(v);
	Py_XDECREF(kseq);
	Py_XDECREF(bseq);
	return NULL;
}

/* reap() -> [(batch id, flags, [result, ...]), ...] */
static PyObject *tier_reap(TierObject *self, PyObject *unused)
{
	struct swapio_tier_done d[64];
	struct pbatch **p, *b;
	PyObject *out, *res, *item;
	int n;

	if (tier_live(self) < 0)
		return NULL;
	out = PyList_New(0);
	if (!out)
		return NULL;
	do {
		n = swapio_tier_reap(self->t, d, 64);
		if (n < 0) {
			Py_DECREF(out);
			return raise_err(STATE(self), n, NULL);
		}
		for (int k = 0; k < n; k++) {
			for (p = &self->batches; (b = *p); p = &b->next)
				if (b->id == d[k].batch)
					break;
			if (!b)
				continue;
			if (!b->reported) {
				b->reported = 1;
				res = PyList_New(b->n);
				for (unsigned int i = 0; res && i < b->n; i++)
					PyList_SetItem(res, i,
						PyLong_FromLong(b->res[i]));
				item = res ? Py_BuildValue("(KIN)",
					(unsigned long long)b->id,
					d[k].flags, res) : NULL;
				if (!item || PyList_Append(out, item) < 0) {
					Py_XDECREF(item);
					Py_DECREF(out);
					return NULL;
				}
				Py_DECREF(item);
			}
			if (d[k].flags & SWAPIO_TIER_HELD)
				continue;
			*p = b->next;
			pbatch_free(b);
			if (!(d[k].flags & SWAPIO_TIER_RELEASED))
				continue;
			/* A held batch's buffers are free now: say so. */
			item = Py_BuildValue("(KIO)", (unsigned long long)d[k].batch,
					     d[k].flags, Py_None);
			if (!item || PyList_Append(out, item) < 0) {
				Py_XDECREF(item);
				Py_DECREF(out);
				return NULL;
			}
			Py_DECREF(item);
		}
	} while (n == 64);
	return out;
}

static int64_t tier_wait_fn(void *arg, int ms)
{
	return swapio_tier_wait(arg, ms);
}

/* wait(timeout_ms) -> bool */
static PyObject *tier_wait(TierObject *self, PyObject *args)
{
	int ms;
	int64_t r;

	if (!PyArg_ParseTuple(args, "i", &ms) || tier_live(self) < 0)
		return NULL;
	r = wait_slices(tier_wait_fn, self->t, ms);
	if (r == WAIT_INTERRUPTED)
		return NULL;
	if (r < 0 && r != -ETIMEDOUT)
		return raise_err(STATE(self), (int)r, NULL);
	return PyBool_FromLong(r == 0);
}

static PyObject *tier_fileno(TierObject *self, PyObject *unused)
{
	if (tier_live(self) < 0)
		return NULL;
	return PyLong_FromLong(swapio_tier_eventfd(self->t));
}

static int tier_contains(TierObject *self, PyObject *key)
{
	PyObject *kb;
	int r;

	if (tier_live(self) < 0)
		return -1;
	kb = key_bytes(key);
	if (!kb)
		return -1;
	r = swapio_tier_contains(self->t, PyBytes_AsString(kb));
	Py_DECREF(kb);
	return r;
}

static PyObject *tier_info(TierObject *self, PyObject *unused)
{
	struct swapio_tier_info in;

	if (tier_live(self) < 0)
		return NULL;
	swapio_tier_info(self->t, &in);
	return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsKsKsK}",
		"blocks", (unsigned long long)in.blocks,
		"disk_bytes", (unsigned long long)in.disk_bytes,
		"capacity", (unsigned long long)in.capacity,
		"puts", (unsigned long long)in.puts,
		"hits", (unsigned long long)in.hits,
		"misses", (unsigned long long)in.misses,
		"bad_checksums", (unsigned long long)in.bad_checksums,
		"evicted", (unsigned long long)in.evicted,
		"expired", (unsigned long long)in.expired,
		"failed", (unsigned long long)in.failed,
		"read_bytes", (unsigned long long)in.read_bytes,
		"written_bytes", (unsigned long long)in.written_bytes,
		"inflight", (unsigned long long)in.inflight,
		"queued", (unsigned long long)in.queued);
}

static PyObject *tier_close(TierObject *self, PyObject *unused)
{
	if (self->gen != fork_gen)
		Py_RETURN_NONE;
	tier_release(self);
	Py_RETURN_NONE;
}

static PyObject *tier_closed(TierObject *self, void *unused)
{
	return PyBool_FromLong(!self->t);
}

static PyMethodDef tier_methods[] = {
	M("submit", tier_submit, METH_VARARGS, "submit(verb, keys, bufs, "
	  "timeout_ms) -> int\n\nQueue a batch; never waits for I/O."),
	M("reap", tier_reap, METH_NOARGS, "reap() -> list\n\n(batch, flags, "
	  "results) of each batch finished since, and (batch, RELEASED, "
	  "None) when a held batch's buffers are free; never blocks."),
	M("wait", tier_wait, METH_VARARGS, "wait(timeout_ms) -> bool\n\n"
	  "Wait until a batch can be reaped."),
	M("fileno", tier_fileno, METH_NOARGS, "fileno() -> int\n\nThe "
	  "eventfd, readable while batches wait to be reaped."),
	M("info", tier_info, METH_NOARGS, "info() -> dict\n\nCounters."),
	M("close", tier_close, METH_NOARGS, "close()\n\nWait for everything "
	  "in flight, then close."),
	{ NULL }
};

static PyGetSetDef tier_getset[] = {
	G("closed", tier_closed, "True once closed."),
	{ NULL }
};

static PyType_Slot tier_slots[] = {
	{ Py_tp_doc, (void *)PyDoc_STR(
	  "_Tier(dir, handle, namespace, capacity=0, high_pct=0, low_pct=0, "
	  "checksum=True, max_inflight=0, stripe_unit=0)\n\nThe C block "
	  "tier; use swapio.BlockTier.") },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_init, tier_init },
	{ Py_tp_dealloc, tier_dealloc },
	{ Py_tp_methods, tier_methods },
	{ Py_tp_getset, tier_getset },
	{ Py_sq_contains, tier_contains },
	{ 0, NULL }
};

static PyType_Spec tier_spec = {
	"swapio._Tier", sizeof(TierObject), 0, Py_TPFLAGS_DEFAULT, tier_slots
};

int tier_setup_types(PyObject *m, struct mod_state *st)
{
	st->TierType = add_type(m, &tier_spec);
	return st->TierType ? 0 : -1;
}
