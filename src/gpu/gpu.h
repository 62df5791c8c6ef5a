/* SPDX-License-Identifier: MIT */
/* The device layer's counters, for the tests (internal, not installed). */
#ifndef SWAPIO_GPU_H
#define SWAPIO_GPU_H

#include <stdint.h>

#include "swapio.h"

struct swapio__gpu_stats {
	uint64_t jobs;		/* device ops finished */
	uint64_t copies;	/* staging copies queued */
	uint64_t overlapped;	/* of those, while a file op of theirs ran */
	uint64_t staged_bytes;	/* bytes through staging buffers */
	uint64_t gds_bytes;	/* bytes by cuFile */
	uint64_t gds_fallbacks;	/* cuFile errors that turned gds off */
};

/* A snapshot; all zero before the first device call. Thread-safe. */
void swapio__gpu_stats(swapio_handle *h, struct swapio__gpu_stats *out);

#endif /* SWAPIO_GPU_H */
