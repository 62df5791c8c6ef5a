/* SPDX-License-Identifier: MIT */
/*
 * Loading the CUDA runtime and cuFile (src/gpu_load.c), for the device
 * layer (src/gpu/gpu.c). Internal, not installed.
 */
#ifndef SWAPIO_GPU_LOAD_H
#define SWAPIO_GPU_LOAD_H

#include <stdbool.h>

#include "gpu_abi.h"

#define GPU_FIELD(name, ret, params)	ret (*name) params;
struct cuda_api {
	SWAPIO_CUDA_CALLS(GPU_FIELD, struct cu_ptr_attr)
	SWAPIO_CUDA_OPTIONAL(GPU_FIELD)
	SWAPIO_CUDA_DRIVER_CALLS(GPU_FIELD)	/* NULL where unreachable */
};

struct cufile_api {
	SWAPIO_CUFILE_CALLS(GPU_FIELD, struct cufile_err, struct cufile_descr)
	SWAPIO_CUFILE_OPTIONAL(GPU_FIELD, struct cufile_err,
			       struct cufile_props)	/* may be NULL */
};
#undef GPU_FIELD

/* The CUDA runtime, loaded once per process by swapio__cuda_load(). */
struct swapio__cuda {
	bool		ok;		/* a runtime with a device answered */
	struct cuda_api	cu;
	char		why[512];	/* what failed, per candidate; or "" */
};
extern struct swapio__cuda swapio__cuda;

/*
 * Loads the runtime once per process: a candidate already in the process
 * first (RTLD_NOLOAD), then each in order; the first whose
 * cudaGetDeviceCount() finds a device is kept. Thread-safe.
 */
void swapio__cuda_load(void);

/* What cuFile is, once asked for. */
enum cufile_state {
	GDS_UNTRIED,		/* nobody asked yet */
	GDS_OPENING,		/* cuFileDriverOpen() has not answered yet */
	GDS_NVFS,		/* open, with nvidia-fs: real GDS */
	GDS_COMPAT,		/* open, without nvidia-fs: POSIX inside */
	GDS_FAILED,		/* not loaded, or its driver did not open */
};

/*
 * The cuFile state, opening cuFile on the first call (only ever called
 * once CUDA works, for an op that may use GDS). The library is loaded
 * and its driver opened on a thread of its own; a caller waits at most
 * a few seconds after the first call for it, and a driver that has not
 * answered by then counts as unavailable until it does. On GDS_NVFS
 * or _COMPAT, *api is the table; otherwise @why (@len bytes) says why.
 * Thread-safe.
 */
enum cufile_state swapio__cufile_get(const struct cufile_api **api,
				     char *why, size_t len);

#endif /* SWAPIO_GPU_LOAD_H */
