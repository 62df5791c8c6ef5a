/* SPDX-License-Identifier: MIT */
/*
 * store.h - the Store type (a swapio_store over one or more drives, each
 * with its Handle) and its ops (StoreOp).
 */
#ifndef SWAPIO_PY_STORE_H
#define SWAPIO_PY_STORE_H

#include "handle.h"

typedef struct {
	PyObject_HEAD
	HandleObject *owner;	/* drive 0's handle */
	PyObject *drives;	/* striped: a tuple of each drive's handle */
	swapio_store *s;	/* NULL once released */
	PyObject *dir;
	int closed;
	Py_ssize_t users;	/* ops not yet observed, pipelines, calls */
	unsigned int gen;	/* fork_gen when opened */
} StoreObject;

/*
 * Take one use of @so (open, made in this process): 0, or -1 with an
 * exception set. store_unuse() gives it back, and closes the store after
 * close() with the last.
 */
int store_use(StoreObject *so);
void store_unuse(StoreObject *so);
/* The bytes of a key (str or bytes), a new reference; NULL: raised. */
PyObject *key_bytes(PyObject *key);
/*
 * The drives of a store (or tier): @dir one path or a list, @handle one
 * Handle or a list of as many. Fills @dv (borrowed handles), @paths (new
 * references) and *@hs (a tuple of the handles, each in use; give them
 * back with store_unuse_handles(NULL, *hs, n)). The count, or -1.
 */
Py_ssize_t store_drives(struct mod_state *st, PyObject *dir, PyObject *handle,
			struct swapio_store_drive *dv, PyObject **paths,
			PyObject **hs);
void store_unuse_handles(HandleObject *ho, PyObject *drives, Py_ssize_t n);
int store_setup_types(PyObject *m, struct mod_state *st);

#endif
