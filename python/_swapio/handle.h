/* SPDX-License-Identifier: MIT */
/*
 * handle.h - the Handle type: a swapio_handle and the count of its users
 * (files, stores, path ops not yet observed, calls in progress).
 */
#ifndef SWAPIO_PY_HANDLE_H
#define SWAPIO_PY_HANDLE_H

#include "op.h"

typedef struct {
	PyObject_HEAD
	swapio_handle *h;	/* NULL once released */
	int closed;
	Py_ssize_t users;	/* files, stores, live path ops, calls */
	PyObject *weakrefs;	/* asyncio keeps a hub per handle */
	unsigned int gen;	/* fork_gen when made */
} HandleObject;

/*
 * Take one use of @ho (it is open and made in this process; completed
 * orphans go first): 0, or -1 with an exception set. handle_unuse()
 * gives it back, and releases the handle after close() with the last.
 */
int handle_use(HandleObject *ho);
void handle_unuse(HandleObject *ho);
/* handle_unuse() of a Handle as a struct pending's or target's user. */
void handle_unuse_obj(PyObject *ho);
int handle_setup_types(PyObject *m, struct mod_state *st);

#endif
