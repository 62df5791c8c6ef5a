/* SPDX-License-Identifier: MIT */
/*
 * file.h - the File type: a swapio_file opened by Handle.open(), which
 * holds one use of its Handle until released.
 */
#ifndef SWAPIO_PY_FILE_H
#define SWAPIO_PY_FILE_H

#include "handle.h"

/* Handle.open(path, mode='r') -> File: the File's constructor. */
PyObject *file_open(HandleObject *self, PyObject *args, PyObject *kw);
int file_setup_types(PyObject *m, struct mod_state *st);

#endif
