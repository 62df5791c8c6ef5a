/* SPDX-License-Identifier: MIT */
/*
 * pipeline.h - the _Pipeline type: swapio_pipeline over a Store, which
 * swapio.Pipeline (Python) wraps.
 */
#ifndef SWAPIO_PY_PIPELINE_H
#define SWAPIO_PY_PIPELINE_H

#include "store.h"

int pipeline_setup_types(PyObject *m, struct mod_state *st);

#endif
