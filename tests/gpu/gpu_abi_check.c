/* SPDX-License-Identifier: MIT */
/*
 * swapio's hand-written CUDA and cuFile ABI (src/gpu_abi.h) against the
 * real headers: compiled, never run, by tests/gpu/gpu_abi_check.sh where
 * cuda_runtime_api.h and cufile.h are found. Every check is at compile
 * time: each type swapio uses in their place is the real one's compatible
 * type, each struct has the real one's size and offsets, each constant
 * the real value, and each call in swapio's tables, spelled with the real
 * structs, takes the real function without a cast (the script makes an
 * incompatible pointer an error). With -DSWAPIO_ABI_NAMES, the
 * preprocessed output lists each symbol name swapio looks up beside the
 * name the header really declares, for the script to compare (a header
 * may rename a call by macro, as to a _v2 or _ptsz variant).
 */
#include <assert.h>
#include <stddef.h>

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cufile.h>

#include "gpu_abi.h"

#ifdef SWAPIO_ABI_NAMES
#define NAME_CU(name, ret, params)	swapio_name "cuda" #name cuda##name
#define NAME_DRV(name, ret, params)	swapio_name "cu" #name cu##name
#define NAME_CF(name, ret, params)	swapio_name "cuFile" #name cuFile##name
SWAPIO_CUDA_CALLS(NAME_CU, A)
SWAPIO_CUDA_OPTIONAL(NAME_CU)
SWAPIO_CUDA_DRIVER_CALLS(NAME_DRV)
SWAPIO_CUFILE_CALLS(NAME_CF, R, D)
SWAPIO_CUFILE_OPTIONAL(NAME_CF, R, P)
#else

#define SAME_TYPE(a, b)							\
	static_assert(__builtin_types_compatible_p(a, b),		\
		      #a " is not compatible with " #b)
#define SAME_VALUE(a, b)						\
	static_assert((long long)(a) == (long long)(b), #a " != " #b)
#define SAME_SIZE(a, b)							\
	static_assert(sizeof(a) == sizeof(b), "sizeof " #a " != " #b);	\
	static_assert(_Alignof(a) == _Alignof(b), "_Alignof " #a " != " #b)
#define SAME_FIELD(a, fa, b, fb)					\
	static_assert(offsetof(a, fa) == offsetof(b, fb),		\
		      "offsetof " #a "." #fa " != " #b "." #fb);	\
	static_assert(sizeof(((a *)0)->fa) == sizeof(((b *)0)->fb),	\
		      "sizeof " #a "." #fa " != " #b "." #fb)

/* Scalars and handles. */
SAME_TYPE(cu_err, cudaError_t);
SAME_TYPE(cu_memcpy_kind, enum cudaMemcpyKind);
SAME_TYPE(cu_stream, cudaStream_t);
SAME_TYPE(cu_event, cudaEvent_t);
SAME_TYPE(cu_ctx, CUcontext);
SAME_TYPE(cu_result, CUresult);
SAME_TYPE(cu_entry_status, enum cudaDriverEntryPointQueryResult);
SAME_TYPE(cufile_handle, CUfileHandle_t);

/* Constants. */
SAME_VALUE(GPU_SUCCESS, cudaSuccess);
SAME_VALUE(GPU_ERR_NO_DEVICE, cudaErrorNoDevice);
SAME_VALUE(GPU_MEMCPY_H2D, cudaMemcpyHostToDevice);
SAME_VALUE(GPU_MEMCPY_D2H, cudaMemcpyDeviceToHost);
SAME_VALUE(GPU_MEMCPY_DEFAULT, cudaMemcpyDefault);
SAME_VALUE(GPU_STREAM_NON_BLOCKING, cudaStreamNonBlocking);
SAME_VALUE(GPU_EVENT_NO_TIMING, cudaEventDisableTiming);
SAME_VALUE(GPU_MEM_UNREGISTERED, cudaMemoryTypeUnregistered);
SAME_VALUE(GPU_MEM_HOST, cudaMemoryTypeHost);
SAME_VALUE(GPU_MEM_DEVICE, cudaMemoryTypeDevice);
SAME_VALUE(GPU_MEM_MANAGED, cudaMemoryTypeManaged);
SAME_VALUE(GPU_ENTRY_DEFAULT, cudaEnableDefault);
SAME_VALUE(GPU_ENTRY_SUCCESS, cudaDriverEntryPointSuccess);
SAME_VALUE(GPU_CUFILE_FD, CU_FILE_HANDLE_TYPE_OPAQUE_FD);
SAME_VALUE(GPU_CUFILE_SUCCESS, CU_FILE_SUCCESS);
SAME_VALUE(GPU_CUFILE_BASE_ERR, CUFILEOP_BASE_ERR);
static_assert((long long)GPU_DRIVER_VERSION <= CUDA_VERSION,
	      "swapio asks the driver for a newer ABI than the header's");

/* struct cudaPointerAttributes: CUDA 13 added reserved[]; swapio has it. */
#if CUDART_VERSION >= 13000
SAME_SIZE(struct cu_ptr_attr, struct cudaPointerAttributes);
SAME_FIELD(struct cu_ptr_attr, reserved, struct cudaPointerAttributes,
	   reserved);
#else
static_assert(sizeof(struct cu_ptr_attr) >=
	      sizeof(struct cudaPointerAttributes),
	      "the runtime would write past swapio's cudaPointerAttributes");
#endif
SAME_FIELD(struct cu_ptr_attr, type, struct cudaPointerAttributes, type);
SAME_FIELD(struct cu_ptr_attr, device, struct cudaPointerAttributes, device);
SAME_FIELD(struct cu_ptr_attr, device_ptr, struct cudaPointerAttributes,
	   devicePointer);
SAME_FIELD(struct cu_ptr_attr, host_ptr, struct cudaPointerAttributes,
	   hostPointer);
SAME_TYPE(__typeof__(((struct cu_ptr_attr *)0)->type), enum cudaMemoryType);

/* CUfileError_t */
SAME_SIZE(struct cufile_err, CUfileError_t);
SAME_FIELD(struct cufile_err, err, CUfileError_t, err);
SAME_FIELD(struct cufile_err, cu_err, CUfileError_t, cu_err);
SAME_TYPE(__typeof__(((struct cufile_err *)0)->err), CUfileOpError);
SAME_TYPE(__typeof__(((struct cufile_err *)0)->cu_err), CUresult);

/* CUfileDescr_t */
SAME_SIZE(struct cufile_descr, CUfileDescr_t);
SAME_FIELD(struct cufile_descr, type, CUfileDescr_t, type);
SAME_FIELD(struct cufile_descr, handle, CUfileDescr_t, handle);
SAME_FIELD(struct cufile_descr, handle.fd, CUfileDescr_t, handle.fd);
SAME_FIELD(struct cufile_descr, handle.handle, CUfileDescr_t, handle.handle);
SAME_FIELD(struct cufile_descr, fs_ops, CUfileDescr_t, fs_ops);
SAME_TYPE(__typeof__(((struct cufile_descr *)0)->type),
	  enum CUfileFileHandleType);

/* CUfileDrvProps_t */
SAME_SIZE(struct cufile_props, CUfileDrvProps_t);
#define PROP(f)	SAME_FIELD(struct cufile_props, f, CUfileDrvProps_t, f)
PROP(nvfs);
PROP(nvfs.major_version);
PROP(nvfs.minor_version);
PROP(nvfs.poll_thresh_size);
PROP(nvfs.max_direct_io_size);
PROP(nvfs.dstatusflags);
PROP(nvfs.dcontrolflags);
PROP(fflags);
PROP(max_device_cache_size);
PROP(per_buffer_cache_size);
PROP(max_device_pinned_mem_size);
PROP(max_batch_io_size);
PROP(max_batch_io_timeout_msecs);
#undef PROP

/*
 * Prototypes: swapio's tables, with the real structs, take each real
 * function as it is. Were a parameter or return type different, the
 * initialisation would be an incompatible-pointer-types error.
 */
#define TAKE_CU(name, ret, params)	ret (*const take_cuda##name) params = \
						cuda##name;
#define TAKE_DRV(name, ret, params)	ret (*const take_cu##name) params = \
						cu##name;
#define TAKE_CF(name, ret, params)	ret (*const take_cuFile##name) params =\
						cuFile##name;
SWAPIO_CUDA_CALLS(TAKE_CU, struct cudaPointerAttributes)
SWAPIO_CUDA_OPTIONAL(TAKE_CU)
SWAPIO_CUDA_DRIVER_CALLS(TAKE_DRV)
SWAPIO_CUFILE_CALLS(TAKE_CF, CUfileError_t, CUfileDescr_t)
SWAPIO_CUFILE_OPTIONAL(TAKE_CF, CUfileError_t, CUfileDrvProps_t)

#endif /* SWAPIO_ABI_NAMES */
