/* SPDX-License-Identifier: MIT */
/*
 * The CUDA runtime, CUDA driver and cuFile ABI that swapio uses, written
 * by hand (internal, not installed): swapio neither includes nor links
 * CUDA, it loads the libraries with dlopen() (src/gpu_load.c).
 *
 * Everything here must match the real headers: tests/gpu/gpu_abi_check.c
 * includes this file beside cuda_runtime_api.h and cufile.h and checks
 * every size, offset, constant and prototype. To make that possible the
 * scalar and handle types below are the real ones' compatible types (an
 * enum without negative values is compatible with unsigned int; handles
 * are pointers to the same struct tags), and each table of calls is an
 * X-macro over the struct types, so that the check can instantiate it
 * with the real structs and assign every real function to it.
 */
#ifndef SWAPIO_GPU_ABI_H
#define SWAPIO_GPU_ABI_H

#include <stddef.h>
#include <sys/types.h>

/* ---- CUDA runtime ------------------------------------------------- */

typedef unsigned int cu_err;			/* cudaError_t */
typedef unsigned int cu_memcpy_kind;		/* enum cudaMemcpyKind */
typedef struct CUstream_st *cu_stream;		/* cudaStream_t */
typedef struct CUevent_st *cu_event;		/* cudaEvent_t */
typedef struct CUctx_st *cu_ctx;		/* CUcontext */
typedef unsigned int cu_result;			/* CUresult */
typedef unsigned int cu_entry_status;	/* cudaDriverEntryPointQueryResult */

enum {
	GPU_SUCCESS		= 0,	/* cudaSuccess */
	GPU_ERR_NO_DEVICE	= 100,	/* cudaErrorNoDevice */
	GPU_MEMCPY_H2D		= 1,	/* cudaMemcpyHostToDevice */
	GPU_MEMCPY_D2H		= 2,	/* cudaMemcpyDeviceToHost */
	GPU_MEMCPY_DEFAULT	= 4,	/* cudaMemcpyDefault */
	GPU_STREAM_NON_BLOCKING	= 1,	/* cudaStreamNonBlocking */
	GPU_EVENT_NO_TIMING	= 2,	/* cudaEventDisableTiming */
	GPU_MEM_UNREGISTERED	= 0,	/* cudaMemoryTypeUnregistered */
	GPU_MEM_HOST		= 1,	/* cudaMemoryTypeHost */
	GPU_MEM_DEVICE		= 2,	/* cudaMemoryTypeDevice */
	GPU_MEM_MANAGED		= 3,	/* cudaMemoryTypeManaged */
	GPU_ENTRY_DEFAULT	= 0,	/* cudaEnableDefault */
	GPU_ENTRY_SUCCESS	= 0,	/* cudaDriverEntryPointSuccess */
	GPU_DRIVER_VERSION	= 12000, /* the driver ABI asked for: 12.0 */
};

/* struct cudaPointerAttributes (CUDA 13; CUDA 12 writes the first four). */
struct cu_ptr_attr {
	unsigned int	type;		/* enum cudaMemoryType */
	int		device;
	void		*device_ptr;
	void		*host_ptr;
	long		reserved[8];	/* must be zero */
};

/*
 * X(name, return type, (parameters)) for each runtime call, named
 * "cuda" #name; A is struct cudaPointerAttributes. Those after
 * SWAPIO_CUDA_OPTIONAL may be missing from an older runtime.
 */
#define SWAPIO_CUDA_CALLS(X, A)						\
	X(GetDeviceCount, cu_err, (int *count))				\
	X(GetDevice, cu_err, (int *device))				\
	X(SetDevice, cu_err, (int device))				\
	X(GetLastError, cu_err, (void))					\
	X(GetErrorString, const char *, (cu_err error))			\
	X(StreamCreateWithFlags, cu_err, (cu_stream *s,			\
					  unsigned int flags))		\
	X(StreamDestroy, cu_err, (cu_stream s))				\
	X(StreamSynchronize, cu_err, (cu_stream s))			\
	X(StreamWaitEvent, cu_err, (cu_stream s, cu_event e,		\
				    unsigned int flags))		\
	X(EventCreateWithFlags, cu_err, (cu_event *e,			\
					 unsigned int flags))		\
	X(EventDestroy, cu_err, (cu_event e))				\
	X(EventRecord, cu_err, (cu_event e, cu_stream s))		\
	X(EventSynchronize, cu_err, (cu_event e))			\
	X(MemcpyAsync, cu_err, (void *dst, const void *src, size_t n,	\
				cu_memcpy_kind kind, cu_stream s))	\
	X(HostRegister, cu_err, (void *p, size_t n, unsigned int flags)) \
	X(HostUnregister, cu_err, (void *p))				\
	X(PointerGetAttributes, cu_err, (A *attr, const void *p))
#define SWAPIO_CUDA_OPTIONAL(X)						\
	X(GetDriverEntryPointByVersion, cu_err, (const char *symbol,	\
		void **fn, unsigned int version,			\
		unsigned long long flags, cu_entry_status *status))

/* Driver calls, reached through cudaGetDriverEntryPointByVersion(). */
#define SWAPIO_CUDA_DRIVER_CALLS(X)					\
	X(CtxGetCurrent, cu_result, (cu_ctx *ctx))			\
	X(CtxSetCurrent, cu_result, (cu_ctx ctx))

/* ---- cuFile -------------------------------------------------------- */

/* CUfileError_t */
struct cufile_err {
	unsigned int	err;		/* CUfileOpError; 0: success */
	cu_result	cu_err;		/* CUresult */
};

/* CUfileDescr_t */
struct cufile_descr {
	unsigned int	type;		/* enum CUfileFileHandleType */
	union {
		int	fd;
		void	*handle;
	} handle;
	const void	*fs_ops;	/* const CUfileFSOps_t * */
};

/* CUfileDrvProps_t */
struct cufile_props {
	struct {
		unsigned int	major_version;
		unsigned int	minor_version;
		size_t		poll_thresh_size;
		size_t		max_direct_io_size;
		unsigned int	dstatusflags;
		unsigned int	dcontrolflags;
	} nvfs;
	unsigned int	fflags;
	unsigned int	max_device_cache_size;
	unsigned int	per_buffer_cache_size;
	unsigned int	max_device_pinned_mem_size;
	unsigned int	max_batch_io_size;
	unsigned int	max_batch_io_timeout_msecs;
};

typedef void *cufile_handle;		/* CUfileHandle_t */

enum {
	GPU_CUFILE_FD	= 1,	/* CU_FILE_HANDLE_TYPE_OPAQUE_FD */
	GPU_CUFILE_SUCCESS		= 0,	/* CU_FILE_SUCCESS */
	GPU_CUFILE_BASE_ERR		= 5000,	/* CUFILEOP_BASE_ERR */
};

/*
 * X(name, return type, (parameters)) for each cuFile call, named
 * "cuFile" #name; R is CUfileError_t, D CUfileDescr_t, P
 * CUfileDrvProps_t. DriverGetProperties may be missing.
 */
#define SWAPIO_CUFILE_CALLS(X, R, D)					\
	X(DriverOpen, R, (void))					\
	X(HandleRegister, R, (cufile_handle *fh, D *descr))		\
	X(HandleDeregister, void, (cufile_handle fh))			\
	X(BufRegister, R, (const void *p, size_t n, int flags))	\
	X(BufDeregister, R, (const void *p))				\
	X(Read, ssize_t, (cufile_handle fh, void *p, size_t n,		\
			  off_t file_off, off_t buf_off))		\
	X(Write, ssize_t, (cufile_handle fh, const void *p, size_t n,	\
			   off_t file_off, off_t buf_off))
#define SWAPIO_CUFILE_OPTIONAL(X, R, P)					\
	X(DriverGetProperties, R, (P *props))

#endif /* SWAPIO_GPU_ABI_H */
