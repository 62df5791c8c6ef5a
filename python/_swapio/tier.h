/* SPDX-License-Identifier: MIT */
/*
 * tier.h - the _Tier type: the block tier (swapio_tier) over one or more
 * drives, each with its Handle; swapio.BlockTier wraps it.
 */
#ifndef SWAPIO_PY_TIER_H
#define SWAPIO_PY_TIER_H

#include "handle.h"

int tier_setup_types(PyObject *m, struct mod_state *st);

#endif
