/* SPDX-License-Identifier: MIT */
/*
 * swapio - move large buffers between memory and files at device speed,
 * synchronously or asynchronously.
 *
 * Conventions, for every function below:
 * - A call returns 0 (or a count) on success and a negative errno on
 *   failure. It never sets errno, prints, aborts or exits.
 * - Offsets and lengths are in bytes. Offsets are uint64_t whatever the
 *   caller's _FILE_OFFSET_BITS.
 * - Asynchronous contract: if a submit returns an error, no completion will
 *   ever arrive for it; if it succeeds, the op completes exactly once,
 *   carrying the byte count or the first error any of its requests met.
 *
 * Processes and fork: every object (handle, file, op, store, store op,
 * pool, pipeline) belongs to the process that created it. A child of
 * fork() inherits copies without the threads behind them, so in a child
 * every call on an inherited object returns SWAPIO_EFORKED at once,
 * instead of waiting for work that will never run; the release calls
 * (swapio_handle_destroy, swapio_file_close, swapio_op_free,
 * swapio_store_close, swapio_pool_destroy...) do nothing there, and the
 * child's copies go with its exit or exec. The library closes the
 * descriptors of every inherited swapio_file in the child as it forks,
 * so a child never keeps the parent's files open. Memory from
 * swapio_buf_alloc(SWAPIO_BUF_LOCKED), a pool's buffers and the library's
 * bounce blocks are not mapped in a child at all (MADV_DONTFORK): the
 * child gets no copy-on-write image of the parent's pinned window. A
 * child may create objects of its own and use them as any process does.
 * The store's lock is a POSIX record lock, which a child does not
 * inherit, so the parent may close and reopen its store while children
 * live. posix_spawn() and vfork()+exec are unaffected.
 */
#ifndef SWAPIO_H
#define SWAPIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SWAPIO_VERSION_MAJOR	0
#define SWAPIO_VERSION_MINOR	1
#define SWAPIO_VERSION_PATCH	0
#define SWAPIO_VERSION_NUMBER	(SWAPIO_VERSION_MAJOR * 10000 +	\
				 SWAPIO_VERSION_MINOR * 100 +	\
				 SWAPIO_VERSION_PATCH)
/*
 * SWAPIO_CHECK_VERSION() - nonzero if this header is version
 * @major.@minor.@patch or later, for code built against several releases:
 * #if SWAPIO_CHECK_VERSION(0, 2, 0) ... #endif. The library in use may be
 * newer than the header; swapio_version() says which it is.
 */
#define SWAPIO_CHECK_VERSION(major, minor, patch)			\
	(SWAPIO_VERSION_NUMBER >= (major) * 10000 + (minor) * 100 + (patch))
#define SWAPIO_API		__attribute__((visibility("default")))

/* ------------------------------------------------------------------ */
/* Opaque objects                                                      */
/* ------------------------------------------------------------------ */

typedef struct swapio_handle swapio_handle;	/* engines, workers, ops */
typedef struct swapio_file swapio_file;		/* an open file */
typedef struct swapio_op swapio_op;		/* one asynchronous transfer */

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

/*
 * How device (CUDA) memory reaches a file; see "Device memory" below and
 * docs/GPU.md. SWAPIO_GPU_PATH=auto|staging|gds overrides the config.
 */
enum swapio_gpu_path {
	SWAPIO_GPU_AUTO		= 0,	/* time both at first use, keep the faster */
	SWAPIO_GPU_STAGING	= 1,	/* through pinned host staging buffers */
	SWAPIO_GPU_GDS		= 2,	/* GPUDirect Storage (cuFile) */
};

enum swapio_engine {
	SWAPIO_ENGINE_AUTO	= 0,	/* uring, then aio, then threads */
	SWAPIO_ENGINE_URING	= 1,	/* io_uring through liburing */
	SWAPIO_ENGINE_AIO	= 2,	/* Linux AIO through libaio */
	SWAPIO_ENGINE_THREADS	= 3,	/* pread/pwrite on a thread pool */
};

/* Flags for swapio_config.flags. Zero is the default for each. */
enum {
	/* Open files without O_DIRECT (go through the page cache). */
	SWAPIO_CFG_BUFFERED		= 1u << 0,
	/* One request per submission system call (DeepSpeed single_submit). */
	SWAPIO_CFG_SINGLE_SUBMIT	= 1u << 1,
	/*
	 * Submit a batch of queue_depth requests, then wait for all of it,
	 * instead of refilling the queue as each completes (DeepSpeed
	 * overlap_events=false).
	 */
	SWAPIO_CFG_NO_OVERLAP		= 1u << 2,
	/*
	 * Fail with -EINVAL when a filesystem refuses O_DIRECT, instead of
	 * falling back to buffered I/O for that file.
	 */
	SWAPIO_CFG_DIRECT_STRICT	= 1u << 3,
	/*
	 * Do not register swapio's locked buffers with io_uring: requests
	 * from them then pin their pages one by one, as from any memory.
	 * Registered memory also counts against RLIMIT_MEMLOCK without
	 * CAP_IPC_LOCK; a registration refused for that is skipped anyway.
	 */
	SWAPIO_CFG_NO_REGISTER		= 1u << 4,
	/*
	 * Several processes share this node's drives, one per GPU: the
	 * queue depth given (or the default) is the node's, and this handle
	 * takes its fair share, queue_depth / LOCAL_WORLD_SIZE (at least 1).
	 * LOCAL_WORLD_SIZE is read from the environment at create (torchrun
	 * and most launchers set it; unset: 1; not a number from 1 to 4096:
	 * -EINVAL). The environment variable SWAPIO_SHARE_NODE=1 sets this
	 * flag for every handle the process creates. swapio_handle_config() reports the
	 * share taken, with this flag cleared.
	 */
	SWAPIO_CFG_SHARE_NODE		= 1u << 5,
	/*
	 * Never spin. By default a small op (256 KiB or less) submitted
	 * while nothing else is in flight on the handle is watched for up
	 * to 50 us by its waiter, and the worker that ran it watches for
	 * the next op as long, before either sleeps: at queue depth 1 that
	 * saves two thread wake-ups per op (about a third of a 4 KiB read's
	 * latency on a VM) for some CPU time. Large and concurrent ops
	 * never spin.
	 */
	SWAPIO_CFG_NO_SPIN		= 1u << 6,
	/*
	 * Copy every direct request through the worker's bounce blocks
	 * (2 MiB aligned, on transparent huge pages), not only those from
	 * memory off the file's memory alignment; swapio's own locked
	 * buffers are never bounced. A memcpy per byte, in exchange for a
	 * request from one huge page where caller memory on 4 KiB pages
	 * has every page pinned and a segment per physically contiguous
	 * run: it can pay on a device that pays per segment (a virtio
	 * disk), seldom on NVMe. Measure before setting.
	 */
	SWAPIO_CFG_BOUNCE		= 1u << 7,
};

/*
 * Zero-initialise, then set only what you need: 0 always means "default".
 * Bounds: block_size a multiple of 4096 from 4 KiB to 1 GiB; queue_depth
 * 1..4096; threads 1..64. Anything else is refused with -EINVAL.
 */
struct swapio_config {
	uint64_t block_size;	/* bytes per request; 0: 1 MiB */
	uint32_t queue_depth;	/* requests in flight per thread; 0: 32 */
	uint32_t threads;	/* workers one transfer is split over; 0: 1 */
	uint32_t engine;	/* enum swapio_engine; 0: auto */
	uint32_t flags;		/* SWAPIO_CFG_* */
	uint32_t gpu_path;	/* enum swapio_gpu_path; 0: auto */
	uint32_t reserved32;	/* must be zero */
	uint64_t reserved[5];	/* must be zero (room to grow) */
};

/* ------------------------------------------------------------------ */
/* Configuration files                                                 */
/* ------------------------------------------------------------------ */

/*
 * A configuration file is text, one "key = value" per line; blank lines
 * and everything from '#' to the end of a line are ignored. Keys, each at
 * most once in practice (a later line overrides an earlier one):
 *
 *   block_size     = 1M	bytes, with an optional K, M or G (x1024)
 *   queue_depth    = 32
 *   threads        = 1
 *   engine         = auto	auto, uring, aio or threads
 *   direct         = true	false sets SWAPIO_CFG_BUFFERED
 *   direct_strict  = false	true sets SWAPIO_CFG_DIRECT_STRICT
 *   single_submit  = false	true sets SWAPIO_CFG_SINGLE_SUBMIT
 *   overlap_events = true	false sets SWAPIO_CFG_NO_OVERLAP
 *   register_buffers = true	false sets SWAPIO_CFG_NO_REGISTER
 *   share_node     = false	true sets SWAPIO_CFG_SHARE_NODE
 *   spin_wait      = true	false sets SWAPIO_CFG_NO_SPIN
 *   bounce         = false	true sets SWAPIO_CFG_BOUNCE
 *   gpu_path       = auto	auto, staging or gds (enum swapio_gpu_path)
 *
 * Booleans are true/false (also yes/no, on/off, 1/0). A number of 0 means
 * "default", as in struct swapio_config; values outside its bounds are
 * refused. `swapio sweep --save FILE` writes such a file.
 */

/*
 * swapio_config_parse() - read a configuration from @len bytes of @text
 * (need not be NUL-terminated; a NUL byte inside is an error).
 *
 * *@cfg is zeroed first, then each key read sets its field. Returns 0, or
 * -EINVAL for an unknown key, a line without '=', or a bad value; on
 * error *@cfg is left zeroed. Never reads past @len. Thread-safe.
 */
SWAPIO_API int swapio_config_parse(const char *text, size_t len,
				   struct swapio_config *cfg);

/*
 * swapio_config_load() - swapio_config_parse() the file at @path.
 *
 * Returns 0 or -errno: -ENOENT for a missing file, -EISDIR, -EACCES...,
 * -EFBIG for a file over 1 MiB (no configuration is that long), and
 * -EINVAL as swapio_config_parse() or for a path that is not a regular
 * file (a FIFO, a device). On error *@cfg is left zeroed.
 */
SWAPIO_API int swapio_config_load(const char *path, struct swapio_config *cfg);

/*
 * swapio_config_save() - write @cfg to @path in the format above, every
 * key spelled out, so that swapio_config_load() gives @cfg back exactly.
 * The file is replaced atomically (written to a new file created beside
 * it, mode 0644, then renamed over it), and only a regular file is ever
 * replaced: -ELOOP if @path is a symbolic link, -EISDIR for a directory,
 * -ESPIPE for a FIFO, socket or device node (such as /dev/null), each
 * left untouched, with swapio_error_detail() naming @path (cleared when
 * the call starts). Returns 0, -EINVAL if @cfg breaks the bounds of
 * struct swapio_config (or has reserved words set), or the errno of the
 * write.
 */
SWAPIO_API int swapio_config_save(const char *path,
				  const struct swapio_config *cfg);

/* ------------------------------------------------------------------ */
/* Handle                                                              */
/* ------------------------------------------------------------------ */

/*
 * swapio_handle_create() - start a handle: its workers and their engines.
 *
 * With engine AUTO, or the environment variable SWAPIO_ENGINE=name, the
 * first engine that starts here is used; swapio_handle_engine() and
 * swapio_handle_engine_note() tell which and why. An engine named in the
 * config that cannot run here fails with -EOPNOTSUPP (or the errno its set
 * up met). @cfg may be NULL for the defaults, as everywhere a config is
 * taken. On success *out owns the handle. Returns 0 or -errno (-ENOMEM
 * when out of memory). Every
 * environment variable a handle reads (swapio(3), ENVIRONMENT) is checked
 * here: a malformed one gives -EINVAL, and swapio_error_detail() names the
 * variable and its value. Clears swapio_error_detail() when it starts.
 */
SWAPIO_API int swapio_handle_create(const struct swapio_config *cfg,
				    swapio_handle **out);

/*
 * swapio_handle_destroy() - wait for every op in flight, then free the
 * handle, its workers and every op not yet freed. Files opened on it must
 * be closed first. NULL is a no-op. Not concurrent with other calls on @h.
 */
SWAPIO_API void swapio_handle_destroy(swapio_handle *h);

/* The configuration in force, with every default filled in. */
SWAPIO_API void swapio_handle_config(const swapio_handle *h,
				     struct swapio_config *out);

/* The engine in use: "uring", "aio" or "threads". Static string. */
SWAPIO_API const char *swapio_handle_engine(const swapio_handle *h);

/*
 * Why that engine was chosen, e.g. "auto: uring unavailable (Operation not
 * permitted); chose aio". Lives as long as the handle.
 */
SWAPIO_API const char *swapio_handle_engine_note(const swapio_handle *h);

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Flags for swapio_file_open(). */
enum {
	SWAPIO_O_READ	= 1u << 0,	/* open for reading */
	SWAPIO_O_WRITE	= 1u << 1,	/* open for writing */
	SWAPIO_O_CREATE	= 1u << 2,	/* create if missing (mode 0600) */
	SWAPIO_O_TRUNC	= 1u << 3,	/* truncate to 0 on open */
	SWAPIO_O_SHARED	= 1u << 4,	/* create with mode 0644, less umask */
};

/*
 * swapio_file_open() - open @path for transfers through @h.
 *
 * Direct I/O follows the handle: O_DIRECT unless SWAPIO_CFG_BUFFERED. The
 * file's direct-I/O alignment is asked of the kernel (statx STATX_DIOALIGN,
 * else the device's logical block size, else 4096). A filesystem that
 * refuses O_DIRECT gets buffered I/O (see swapio_file_direct()), or
 * -EINVAL under SWAPIO_CFG_DIRECT_STRICT. Errors are open(2)'s: -ENOENT,
 * -EISDIR, -EACCES, ..., and -ESPIPE for anything but a regular file or a
 * block device (a FIFO, socket or terminal cannot be read at an offset;
 * opening one never blocks). -EINVAL for a NULL argument or unknown or
 * missing READ/WRITE flags. With SWAPIO_O_CREATE a file is created with
 * mode 0600 (0644 less the umask with SWAPIO_O_SHARED), and a symbolic
 * link as the last component of @path is followed only where no other
 * user can have planted it: the link belongs to the caller or root, in a
 * directory of the caller or root that no one else may write unless it
 * is sticky (so /proc/self/fd/N and /dev/disk/by-id/... are followed);
 * any other link is -ELOOP, its target neither created nor written. An
 * existing file keeps its mode. Refusals set swapio_error_detail(), which
 * the call clears when it starts (docs/RELIABILITY.md, "Shared machines").
 * With O_DIRECT, unaligned edges go through a buffered twin descriptor
 * reopened from the first through /proc/self/fd, never by @path, so both
 * name one inode (-ESTALE if they ever did not); where /proc is not
 * mounted the file gets buffered I/O, or -ENOENT under
 * SWAPIO_CFG_DIRECT_STRICT. A file may serve many ops at once from any
 * thread.
 */
SWAPIO_API int swapio_file_open(swapio_handle *h, const char *path,
				unsigned int flags, swapio_file **out);

/*
 * swapio_file_openat() - swapio_file_open() relative to the directory
 * descriptor @dirfd (or AT_FDCWD), as openat(2): a relative @path never
 * depends on the current directory, and a store opens its files inside
 * the directory it locked. Same flags, results and errors.
 */
SWAPIO_API int swapio_file_openat(swapio_handle *h, int dirfd,
				  const char *path, unsigned int flags,
				  swapio_file **out);

/*
 * swapio_file_sync() - fdatasync(2) the file: every write that completed
 * before the call reaches stable storage. 0 or -errno. Thread-safe.
 */
SWAPIO_API int swapio_file_sync(swapio_file *f);

/*
 * swapio_file_allocate() - allocate [@off, @off + @len) on disk and grow
 * the file to cover it (fallocate(2) mode 0), so that writes there cannot
 * fail with ENOSPC. On a filesystem without fallocate (ramfs, some FUSE)
 * the file is only made large enough (ftruncate), with no space promised.
 * On failure the file keeps its old size. 0, or -errno: -EINVAL (NULL,
 * @len 0, range past INT64_MAX, not opened for writing), -ENOSPC, ...
 */
SWAPIO_API int swapio_file_allocate(swapio_file *f, uint64_t off,
				    uint64_t len);

/*
 * swapio_file_close() - close a file. Every op on it must have completed.
 * Returns 0 or the error close(2) reported. NULL is a no-op returning 0.
 */
SWAPIO_API int swapio_file_close(swapio_file *f);

/* 1 if transfers on @f use O_DIRECT, 0 if they go through the page cache. */
SWAPIO_API int swapio_file_direct(const swapio_file *f);

/* Direct-I/O alignment of @f in bytes: memory and file offset. */
SWAPIO_API void swapio_file_alignment(const swapio_file *f,
				      uint32_t *mem_align,
				      uint32_t *offset_align);

/* Size of an open file (of a block device: the device's), or -errno. */
SWAPIO_API int64_t swapio_file_size(const swapio_file *f);

/*
 * Size of the file at @path (DeepSpeed's get_file_size), or -errno. For a
 * block device, the device's size (that needs read permission on it).
 */
SWAPIO_API int64_t swapio_path_size(const char *path);

/* ------------------------------------------------------------------ */
/* Synchronous I/O                                                     */
/* ------------------------------------------------------------------ */

/*
 * swapio_pread() / swapio_pwrite() - move @len bytes between @buf and @f at
 * @off, split into block_size requests spread over the handle's workers.
 *
 * Any buffer address, offset and length is accepted: with O_DIRECT the
 * aligned body goes direct and an unaligned head, tail or buffer goes
 * through the page cache or an aligned bounce block. Short transfers are
 * resubmitted for the rest and EINTR/EAGAIN retried.
 *
 * Returns the bytes moved (a read returns fewer only at end of file) or the
 * first error: -EINVAL for a NULL argument or off + len beyond INT64_MAX,
 * -EBADF for a file not opened for that direction, or what the kernel
 * reported (-ENOSPC, -EIO, ...). Thread-safe.
 *
 * A direct write that extends the file first allocates its range
 * (fallocate), so that the requests run as asynchronous overwrites; that
 * is where -ENOSPC and -EFBIG show, before any data moves. If such a write
 * then fails, the file keeps its new size, reading zeros where no data
 * landed.
 */
SWAPIO_API ssize_t swapio_pread(swapio_handle *h, swapio_file *f, void *buf,
				size_t len, uint64_t off);
SWAPIO_API ssize_t swapio_pwrite(swapio_handle *h, swapio_file *f,
				 const void *buf, size_t len, uint64_t off);

/*
 * The same by path, opening the file for this one transfer as DeepSpeed's
 * aio_handle does. A write creates the file if it is missing and keeps what
 * lies beyond the range written.
 */
SWAPIO_API ssize_t swapio_pread_path(swapio_handle *h, const char *path,
				     void *buf, size_t len, uint64_t off);
SWAPIO_API ssize_t swapio_pwrite_path(swapio_handle *h, const char *path,
				      const void *buf, size_t len,
				      uint64_t off);

/* ------------------------------------------------------------------ */
/* Asynchronous I/O                                                    */
/* ------------------------------------------------------------------ */

/*
 * swapio_submit_read() / swapio_submit_write() - start a transfer and return
 * at once. On success *op is the ticket: wait for it, then free it. @buf
 * must stay valid and untouched until the op completes. Same arguments and
 * errors as swapio_pread(); errors found before submission are returned
 * here and no op is made. Thread-safe.
 */
SWAPIO_API int swapio_submit_read(swapio_handle *h, swapio_file *f, void *buf,
				  size_t len, uint64_t off, swapio_op **op);
SWAPIO_API int swapio_submit_write(swapio_handle *h, swapio_file *f,
				   const void *buf, size_t len, uint64_t off,
				   swapio_op **op);

/*
 * By path: the file is opened at submission (so a missing file fails here
 * with -ENOENT) and closed when the op completes.
 */
SWAPIO_API int swapio_submit_read_path(swapio_handle *h, const char *path,
				       void *buf, size_t len, uint64_t off,
				       swapio_op **op);
SWAPIO_API int swapio_submit_write_path(swapio_handle *h, const char *path,
					const void *buf, size_t len,
					uint64_t off, swapio_op **op);

/* 1 if @op has completed, else 0. Never blocks. */
SWAPIO_API int swapio_op_done(const swapio_op *op);

/*
 * swapio_op_wait() - wait for one op to finish.
 *
 * Blocks until @op completes or @timeout_ms passes (-1: no limit, 0: poll).
 * Returns the op's result: bytes moved (short only at end of file) or a
 * negative errno; -ETIMEDOUT if it is still running. The caller keeps
 * ownership of @op until swapio_op_free(). Any number of threads may wait.
 */
SWAPIO_API int64_t swapio_op_wait(swapio_op *op, int timeout_ms);

/*
 * swapio_wait_any() - wait until one of @ops[0..n) has completed.
 * Returns the index of a completed op (the lowest), -ETIMEDOUT, or -EINVAL
 * for an empty set or a NULL entry. All ops must belong to one handle.
 */
SWAPIO_API int swapio_wait_any(swapio_op *const *ops, unsigned int n,
			       int timeout_ms);

/*
 * swapio_wait_all() - a barrier: wait until every op submitted on @h
 * before this call has completed. Ops that other threads submit meanwhile
 * are not waited for, so a stream on another thread cannot starve it.
 * Returns 0, or -ETIMEDOUT with one of those ops still in flight.
 */
SWAPIO_API int swapio_wait_all(swapio_handle *h, int timeout_ms);

/*
 * swapio_op_free() - release an op. If it is still in flight, waits for it
 * first. NULL is a no-op.
 */
SWAPIO_API void swapio_op_free(swapio_op *op);

/*
 * swapio_handle_eventfd() - a descriptor that becomes readable when ops
 * complete, for event loops (poll/epoll). Read 8 bytes to reset it, then
 * check your ops with swapio_op_done(). Owned by the handle; created on the
 * first call. Returns the fd or -errno.
 */
SWAPIO_API int swapio_handle_eventfd(swapio_handle *h);

/* ------------------------------------------------------------------ */
/* Device memory (CUDA)                                                */
/* ------------------------------------------------------------------ */

/*
 * Transfers between a file and CUDA device memory. swapio neither links
 * against CUDA nor needs its headers: the CUDA runtime is loaded with
 * dlopen() at the first device call, one already in the process first,
 * else the first of libcudart.so.13, .12, libcudart.so (SWAPIO_CUDA_LIBRARY
 * names others, ':'-separated) whose cudaGetDeviceCount() finds a device;
 * cuFile (libcufile.so.0; SWAPIO_CUFILE_LIBRARY, "none" to skip it) only
 * for the first op that may use it, with a bounded wait for its driver.
 * Where no runtime works (none, no driver, no device) every device call
 * returns SWAPIO_ENOCUDA; where one of its calls fails, SWAPIO_ECUDA, and
 * swapio_handle_gpu_note() names the call and CUDA's message.
 *
 * Paths (docs/GPU.md): data moves through pinned host staging buffers,
 * chunk by chunk, the copies on a stream of swapio's own overlapping the
 * file I/O; or, where cuFile's driver and the file allow it (an O_DIRECT
 * file, offset and length multiples of 4096), by GPUDirect Storage. With
 * SWAPIO_GPU_AUTO the first eligible op of each direction is timed both
 * ways and the faster path kept (staging where cuFile runs in compat
 * mode, without nvidia-fs). A cuFile error makes that file fall back to
 * staging for good, and the op is redone that way; the note says why.
 *
 * Streams: @stream is the cudaStream_t the caller last used @dev_buf on
 * (NULL: the legacy default stream). The op's copies are ordered after
 * all work enqueued on @stream before the submit call (an event recorded
 * there at submission, waited for by swapio's stream); pass
 * SWAPIO_DEV_NO_SYNC to skip that when the memory is known to be ready,
 * or swapio_dev_stream()'s stream after making it wait yourself. A read
 * has landed in device memory, visible to every stream, when its op
 * completes: no further synchronisation is needed. @device is the CUDA
 * device ordinal @dev_buf belongs to. A handle's device ops run one at a
 * time per handle, in submission order, each one overlapped inside.
 */
#define SWAPIO_DEV_NO_SYNC	((void *)-1)
#define SWAPIO_DEV_MAX		64	/* device ordinals 0..SWAPIO_DEV_MAX-1 */

/*
 * swapio_dev_submit_read() / swapio_dev_submit_write() - as
 * swapio_submit_read() / _write(), for @len bytes of device memory at
 * @dev_buf on device @device. The op is waited for, polled and freed as
 * any other. Returns 0 and *op, or the errors of swapio_submit_read(),
 * -EINVAL for a device out of range, for @dev_buf in host memory or on
 * another device (as cudaPointerGetAttributes() says), or for a malformed
 * SWAPIO_GPU_PATH / SWAPIO_GPU_CHUNK (swapio_error_detail() names it;
 * cleared first), SWAPIO_ENOCUDA, SWAPIO_ECUDA (the device's set-up or
 * the stream event failed). The op's result is the
 * bytes moved (a read short only at end of file) or the first error: an
 * I/O error, or SWAPIO_ECUDA for a failed copy. Thread-safe.
 */
SWAPIO_API int swapio_dev_submit_read(swapio_handle *h, swapio_file *f,
				      int device, void *dev_buf, size_t len,
				      uint64_t off, void *stream,
				      swapio_op **op);
SWAPIO_API int swapio_dev_submit_write(swapio_handle *h, swapio_file *f,
				       int device, const void *dev_buf,
				       size_t len, uint64_t off, void *stream,
				       swapio_op **op);

/*
 * By path, as swapio_submit_read_path() / _write_path(): a missing file
 * fails here with -ENOENT.
 */
SWAPIO_API int swapio_dev_submit_read_path(swapio_handle *h, const char *path,
					   int device, void *dev_buf,
					   size_t len, uint64_t off,
					   void *stream, swapio_op **op);
SWAPIO_API int swapio_dev_submit_write_path(swapio_handle *h,
					    const char *path, int device,
					    const void *dev_buf, size_t len,
					    uint64_t off, void *stream,
					    swapio_op **op);

/* Synchronous: submit, wait, free. Bytes moved or -errno. Thread-safe. */
SWAPIO_API ssize_t swapio_dev_pread(swapio_handle *h, swapio_file *f,
				    int device, void *dev_buf, size_t len,
				    uint64_t off, void *stream);
SWAPIO_API ssize_t swapio_dev_pwrite(swapio_handle *h, swapio_file *f,
				     int device, const void *dev_buf,
				     size_t len, uint64_t off, void *stream);

/*
 * swapio_dev_stream() - the cudaStream_t swapio copies on for @device
 * (set up on first call: CUDA loaded, stream made, staging pinned), for
 * a caller or DLPack producer that orders its own work before swapio's
 * (DLPack's __dlpack__(stream=...)). Passing it as @stream above then
 * costs no event. Returns 0 and *stream, SWAPIO_ENOCUDA, SWAPIO_ECUDA,
 * -EINVAL, -ENOMEM. Thread-safe.
 */
SWAPIO_API int swapio_dev_stream(swapio_handle *h, int device, void **stream);

/* The calling thread's CUDA state, saved by swapio_dev_enter(): opaque. */
struct swapio_dev_saved {
	void	*ctx;		/* its CUcontext, or NULL */
	int	device;		/* its current device */
	int	how;		/* what to give back; 0: nothing */
};

/*
 * swapio_dev_enter() / swapio_dev_leave() - make @device current on the
 * calling thread around a call into another CUDA library (a DLPack
 * producer's __dlpack__(), which works on the current device), then give
 * the thread back exactly what it had. swapio_dev_enter() sets up @device
 * as swapio_dev_stream() does and saves the thread's state in @saved;
 * swapio_dev_leave() restores it: the context the thread had, none if it
 * had none (a thread that never chose a device does not get one on
 * device 0). Returns 0, -EINVAL, SWAPIO_ENOCUDA or SWAPIO_ECUDA; on
 * error nothing was changed, and leave is a no-op. Clears, then may set,
 * swapio_error_detail(). Per thread: leave on the thread that entered.
 */
SWAPIO_API int swapio_dev_enter(swapio_handle *h, int device,
				struct swapio_dev_saved *saved);
SWAPIO_API void swapio_dev_leave(swapio_handle *h,
				 const struct swapio_dev_saved *saved);

/*
 * swapio_dev_path() - the path device ops on @device take in direction
 * @write now: SWAPIO_GPU_STAGING or SWAPIO_GPU_GDS, or SWAPIO_GPU_AUTO
 * while an auto choice has yet to be measured; -EINVAL, or -ENODEV for a
 * device not used yet on @h.
 */
SWAPIO_API int swapio_dev_path(swapio_handle *h, int device, int write);

/*
 * swapio_handle_gpu_note() - what the device layer chose and why, and
 * every fallback it took ("cuFileRead: error 5010; gds off for this file,
 * staging used"), clauses separated by "; ", each once, the newest last
 * (the oldest dropped when room runs out), copied into @buf (at most @len
 * bytes, NUL included). Returns the note's full length. Empty before the
 * first device call. Thread-safe.
 */
SWAPIO_API size_t swapio_handle_gpu_note(swapio_handle *h, char *buf,
					 size_t len);

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

enum {
	SWAPIO_BUF_LOCKED	= 1u << 0,	/* mlock: pinned in memory */
	SWAPIO_BUF_HUGE		= 1u << 1,	/* ask for transparent huge pages */
};

/*
 * swapio_buf_alloc() - page-aligned, zero-filled memory of @size bytes.
 * SWAPIO_BUF_LOCKED locks it in memory; when RLIMIT_MEMLOCK or privileges
 * forbid that, returns SWAPIO_EMEMLOCK and allocates nothing.
 * SWAPIO_BUF_HUGE advises transparent huge pages (a hint, never an error).
 * Returns 0 or -errno (-ENOMEM, -EINVAL for size 0 or unknown flags).
 */
SWAPIO_API int swapio_buf_alloc(size_t size, unsigned int flags, void **out);

/* Free memory from swapio_buf_alloc(); @size as allocated. NULL: no-op. */
SWAPIO_API void swapio_buf_free(void *buf, size_t size);

/*
 * swapio_mem_hugepages() - back the caller's own memory [@addr, @addr +
 * @len) (a tensor from malloc, say) with transparent huge pages now, in
 * place: MADV_HUGEPAGE, MADV_POPULATE_WRITE (pages never touched are
 * faulted in, as huge pages), then MADV_COLLAPSE over the whole 2 MiB
 * pages inside the range; the partial pages at its ends stay as they
 * are. The content is kept; the pages move, once, at about the cost of
 * copying them. O_DIRECT from memory in 4 KiB pages costs the kernel a pinned
 * page and often a separate segment per 4 KiB; from huge pages, one per
 * 2 MiB (docs/PERFORMANCE.md measures the difference). Worth it for large
 * regions that move many times, such as swap buffers. Returns the bytes
 * now in huge pages (0: the range holds no whole 2 MiB page), or -EINVAL
 * (bad arguments, a mapping that cannot hold huge pages, or a kernel
 * older than 6.1 or with THP off), -EAGAIN (pages pinned, for instance
 * registered with a device, or busy; some may be collapsed), -ENOMEM.
 */
SWAPIO_API int64_t swapio_mem_hugepages(void *addr, size_t len);

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

struct swapio_stats {
	uint64_t bytes_read;	/* bytes moved by completed requests */
	uint64_t bytes_written;
	uint64_t ops;		/* ops completed */
	uint64_t requests;	/* block requests completed */
	uint64_t syscalls;	/* system calls the engines made for I/O */
	uint64_t retries;	/* short transfers resubmitted, EINTR/EAGAIN */
	uint64_t bounced_bytes;	/* bytes copied through bounce blocks */
	uint64_t busy_ns;	/* time with at least one op in flight */
	uint64_t lat_p50_ns;	/* request latency, queue to completion */
	uint64_t lat_p99_ns;
	uint64_t lat_max_ns;
	uint64_t registered;	/* requests from buffers registered with
				 * the kernel (io_uring fixed buffers) */
	uint64_t reserved[4];
};

/* Counters since creation or the last reset. Thread-safe. */
SWAPIO_API void swapio_handle_stats(swapio_handle *h, struct swapio_stats *out);
SWAPIO_API void swapio_handle_stats_reset(swapio_handle *h);

/* ------------------------------------------------------------------ */
/* Errors and introspection                                            */
/* ------------------------------------------------------------------ */

/* swapio's own codes lie far below every errno value. */
#define SWAPIO_ERRNO_BASE	(-3000)
#define SWAPIO_EMEMLOCK		(SWAPIO_ERRNO_BASE - 1)
/* A store's index is damaged, or the directory is not a swapio store. */
#define SWAPIO_EBADSTORE	(SWAPIO_ERRNO_BASE - 2)
/*
 * The object was created by another process: this one inherited it
 * across fork(). See "Processes and fork" above.
 */
#define SWAPIO_EFORKED		(SWAPIO_ERRNO_BASE - 3)
/* A device call, but the CUDA runtime library could not be loaded. */
#define SWAPIO_ENOCUDA		(SWAPIO_ERRNO_BASE - 4)
/* A CUDA runtime call failed; swapio_handle_gpu_note() says which. */
#define SWAPIO_ECUDA		(SWAPIO_ERRNO_BASE - 5)
/*
 * A striped store was opened with drives other than its own: another
 * count, order or stripe unit, a directory of another store, or a plain
 * store's directory given as one of several (or the reverse).
 */
#define SWAPIO_EDRIVES		(SWAPIO_ERRNO_BASE - 6)

/* A static message for @err (negative errno or SWAPIO_E*). Thread-safe. */
SWAPIO_API const char *swapio_strerror(int err);

/*
 * swapio_errname() - the symbolic name of @err, for logs and tests:
 * "SWAPIO_EFORKED" for swapio's own codes, "ENOSPC" for -ENOSPC, "OK" for
 * 0 or a count, "UNKNOWN" for a value that is neither. A static string,
 * never NULL. Thread-safe.
 */
SWAPIO_API const char *swapio_errname(int err);

/*
 * swapio_error_detail() - what the last failed call of this thread had to
 * say beyond its code: the path, variable or value at fault, as in
 * "SWAPIO_ENGINE='urng': unknown engine (auto, uring, aio, threads)" or
 * "/tmp/st: directory writable by others (mode 0777)". "" when that call
 * set none. Calls that can set it (they say so) clear it when they start,
 * so a detail never outlives the next such call in the thread. The text
 * lives in thread-local storage until then; never NULL. Never touches
 * errno.
 */
SWAPIO_API const char *swapio_error_detail(void);

/* SWAPIO_VERSION_NUMBER of the library in use. */
SWAPIO_API unsigned int swapio_version(void);

/* "uring", "aio", "threads" for an enum swapio_engine; NULL if unknown. */
SWAPIO_API const char *swapio_engine_name(unsigned int engine);

/* Parse an engine name ("auto" included); -EINVAL if unknown. */
SWAPIO_API int swapio_engine_parse(const char *name);

/*
 * swapio_engine_probe() - can @engine run on this machine? 0 if so, else
 * the -errno its set-up met (-EOPNOTSUPP when not built in, -EPERM when
 * io_uring is disabled or filtered). Cached.
 */
SWAPIO_API int swapio_engine_probe(unsigned int engine);

/* ------------------------------------------------------------------ */
/* Store / Pool / Pipeline                                             */
/* ------------------------------------------------------------------ */

/*
 * A store is swap space in one directory: values ("tensors") put, got and
 * removed by key, asynchronously, in preallocated extents of one data file
 * opened through a handle (O_DIRECT where the filesystem allows it).
 *
 * Integrity, always: each value carries an XXH3-64 checksum, computed on
 * put and verified on get (-EBADMSG on mismatch), unless the store was
 * opened with SWAPIO_STORE_NO_CHECKSUM. Replacing a key is copy-on-write:
 * the new value goes to free space and the key switches to it only once
 * all of it is written, so a key never reads half old, half new.
 *
 * Durability, two levels:
 * - Process crash (SIGKILL, abort, exit without close) at any moment: on
 *   reopen every key holds the value of its last completed put (one whose
 *   wait returned success) or, for a put still in flight at the crash,
 *   that put's value or the previous one; never a mix. Space of unfinished
 *   puts is free again. No system call beyond the writes is needed.
 * - Power loss or kernel crash: only what swapio_store_sync() covered is
 *   guaranteed. Later puts and removes may be lost; a lost value reads as
 *   its previous state or as -EBADMSG, never as wrong data (unless
 *   checksums are off).
 * - Clean close: swapio_store_close() syncs as swapio_store_sync() does
 *   and leaves a log that vouches for all of itself.
 * Without swapio_store_sync() the store is fast swap space, not a
 * database. A power loss without a sync never makes a store unopenable:
 * the first index record that fails its checksum ends the log (later
 * records are dropped, and swapio_store_info() counts them), unless a
 * later record written by a sync, a compaction or a clean close vouched
 * for that part of the log; only then is it damage, and open says
 * SWAPIO_EBADSTORE. So damage in a cleanly closed store's log is always
 * an error, never a silently shorter store; docs/RELIABILITY.md has the
 * table of what survives what.
 *
 * Order: operations on one key take effect in submission order. Of a put
 * and a remove of one key, or two puts, the later submitted wins however
 * their completions interleave, in this session and after a reopen: a
 * remove submitted after a put that is still in flight removes that put's
 * value too when it commits.
 *
 * Full disk: the index keeps space allocated ahead of its end, so a store
 * on a full filesystem still takes removes, and the space they free takes
 * puts of that size again.
 *
 * Processes: a store belongs to the process that opened it. Its lock is a
 * POSIX record lock (fcntl F_SETLK) on "lock", which a forked child does
 * not inherit, so the parent may close and reopen the store while
 * children live. In a forked child every call on an inherited store
 * returns SWAPIO_EFORKED (swapio_store_close() and swapio_store_op_free()
 * just return: the child's copy is released by exit or exec).
 *
 * Files in the directory: "lock" (record-locked by the owning process),
 * "data" (the extents) and "index" (an append-only log of fixed-size,
 * checksummed records, replayed at open and compacted now and then).
 * All of them are opened relative to the directory's descriptor. A store
 * striped over several drives (swapio_store_open_multi()) has "lock",
 * "data" and "drives" in each drive's directory and "index" in the first.
 */
typedef struct swapio_store swapio_store;	/* opaque */
typedef struct swapio_store_op swapio_store_op;	/* one async put or get */

/* Keys are NUL-terminated strings of 1 to this many bytes. */
#define SWAPIO_STORE_KEY_MAX	255

/* Flags for swapio_store_config.flags. Zero is the default for each. */
enum {
	/* Neither compute checksums on put nor verify them on get. */
	SWAPIO_STORE_NO_CHECKSUM	= 1u << 0,
	/* Fail with -ENOENT rather than create a missing store. */
	SWAPIO_STORE_NO_CREATE		= 1u << 1,
	/*
	 * Unless the index vouches for all of itself (closed cleanly, or
	 * synced with nothing logged after, and no records dropped by an
	 * open since), rebuild it from the data file instead of failing
	 * with SWAPIO_EBADSTORE or ending the log early: every value whose
	 * header and checksum are intact (or whose intact index record
	 * points at an intact payload) comes back, the newest generation of
	 * a key winning; a key stays removed where an intact remove record
	 * anywhere in the index is newer than its value, or where it was
	 * removed before the index was last compacted and the compacted
	 * records are intact. A removed key whose remove record is gone
	 * otherwise may come back if its extent was not reused.
	 * Reads the whole data file; swapio_store_info() reports what it
	 * found and what it could not bring back.
	 */
	SWAPIO_STORE_RECOVER		= 1u << 2,
	/*
	 * Create the store's directories with mode 0755 and its files 0644
	 * (less the umask), readable by other users, instead of 0700 and
	 * 0600. Existing files and directories keep their modes.
	 */
	SWAPIO_STORE_SHARED		= 1u << 3,
};

/*
 * Zero-initialise, then set only what you need. With capacity 0 the data
 * file grows on demand by grow_bytes at a time (less if the filesystem has
 * no more) until the filesystem is full; with a capacity it is allocated
 * in full at open (fallocate) and never grows.
 */
struct swapio_store_config {
	uint64_t capacity;	/* bytes, all drives together; 0: grow */
	uint64_t grow_bytes;	/* growth step; 0: 64 MiB */
	uint32_t flags;		/* SWAPIO_STORE_* */
	uint32_t reserved32;	/* must be zero */
	/* Striped stores: bytes each drive takes in turn, a multiple of the
	 * store's block; 0: as recorded, or 1 MiB for a new store. */
	uint64_t stripe_unit;
	uint64_t reserved[5];	/* must be zero */
};

/*
 * swapio_store_open() - open the store in directory @dir, creating the
 * directory and the store if missing (unless SWAPIO_STORE_NO_CREATE).
 *
 * @h does the data I/O and must outlive the store; @cfg may be NULL for
 * the defaults. Only one process owns a store at a time: a second opener
 * gets -EBUSY. After an owner was killed, open waits (up to 5 s) until
 * the writes it left in flight have drained, and says -EBUSY if another
 * process still holds the data file open for writing then. A second open
 * in the same process is refused with -EBUSY too. SWAPIO_FAULT_FD (see
 * docs/RELIABILITY.md) makes the store's own system calls fail for tests;
 * a spec that does not parse gives -EINVAL, and swapio_error_detail()
 * names it. An index that ends early at a record that fails its checksum
 * (a crash's or power loss's torn tail) opens, the records dropped
 * counted in swapio_store_info().
 *
 * On a machine shared with other users (docs/RELIABILITY.md, "Shared
 * machines") the store touches nothing outside @dir: @dir must not be a
 * symbolic link (-ELOOP) and must belong to the caller or root and be
 * writable by no one else unless sticky (-EPERM); each file in it
 * ("lock", "data", "index", "drives" and their temporaries) is opened
 * relative to it, never through a link (-ELOOP), never blocking, and must
 * be a regular file (-EISDIR, -ESPIPE for a FIFO, socket or device) with
 * one link, of the caller or root (-EPERM). What the store creates is
 * private: directories 0700, files 0600, unless SWAPIO_STORE_SHARED.
 * Every refusal sets swapio_error_detail() naming the path and why; the
 * call clears it when it starts. Returns 0 and
 * *out, or -errno: -EINVAL (bad argument), -EBUSY, -ENOENT, -ENOSPC
 * (capacity not available), SWAPIO_EBADSTORE (damaged index, or not a
 * store; see SWAPIO_STORE_RECOVER; swapio_error_detail() names the
 * record at fault), the refusals above, or what the filesystem said.
 */
SWAPIO_API int swapio_store_open(swapio_handle *h, const char *dir,
				 const struct swapio_store_config *cfg,
				 swapio_store **out);

/* Drives a store may be striped over. */
#define SWAPIO_STORE_DRIVES_MAX	64

/* One drive of a striped store: its directory and the handle for its I/O. */
struct swapio_store_drive {
	swapio_handle	*h;	/* moves this drive's data; may be shared */
	const char	*dir;	/* the store's directory on this drive */
};

/*
 * swapio_store_open_multi() - open the store striped over @nr drives,
 * creating it if missing (unless SWAPIO_STORE_NO_CREATE).
 *
 * The data space is cut into stripe units (cfg->stripe_unit) dealt to the
 * drives in turn, as RAID 0 does: a value longer than a unit is split
 * across the drives and moved in parallel, one op per unit on that
 * drive's handle, so give each drive a handle of its own and a slow drive
 * never holds up the others' queues. Small values fill the units in
 * turn, so the drives fill evenly. The index, and so the log of every
 * put, lives on drive 0; each drive has its own "lock", "data" and
 * "drives" (the store's id, the drive's place in the list, the count and
 * the stripe unit), so that reopening with another list, another order
 * or another unit is refused with SWAPIO_EDRIVES. A missing drive of an
 * existing store is never created: open says -ENOENT. On an error that
 * belongs to one drive, *@failed (if not NULL) is its index, else @nr.
 *
 * An I/O error on one drive fails only the puts and gets whose values
 * touch it; the data space grows on every drive at once, so a full drive
 * stops the growth (-ENOSPC) while puts into space already allocated go
 * on. Every rule of swapio_store_open() (crash, sync, order, fork) holds
 * for striped values: a put is logged only after all its pieces were
 * written, and swapio_store_sync() syncs every drive before the index.
 * @nr == 1 opens the plain store in drives[0].dir, as swapio_store_open().
 * Each handle must outlive the store. Returns 0 and *out, or the errors
 * of swapio_store_open(), SWAPIO_EDRIVES, or -EINVAL (@nr 0 or above
 * SWAPIO_STORE_DRIVES_MAX, a NULL member, a unit that is not a multiple
 * of the block, the same directory twice, also by two paths to one
 * directory, with a detail naming both).
 */
SWAPIO_API int swapio_store_open_multi(const struct swapio_store_drive *drives,
				       unsigned int nr,
				       const struct swapio_store_config *cfg,
				       swapio_store **out,
				       unsigned int *failed);

/*
 * swapio_store_close() - finish every op not yet freed (puts are committed,
 * as by swapio_store_op_free()); if anything was logged since the index
 * last vouched for itself, sync as swapio_store_sync() does (fdatasync()
 * of every data file and the index: a few ms on NVMe, plus the index's
 * dirty pages) and append a record that vouches for the whole log; then
 * close the store and release its lock. A failed sync is not reported
 * (the log is left as a crash leaves it): call swapio_store_sync() first
 * to see its errors. NULL is a no-op. Not concurrent with any other call
 * on @s.
 */
SWAPIO_API void swapio_store_close(swapio_store *s);

/*
 * swapio_store_submit_put() - start storing @len bytes of @buf under @key,
 * replacing any value it has (copy-on-write).
 *
 * The checksum is computed here, on the calling thread. @buf must stay
 * valid and unchanged until the op completes. The put takes effect (the
 * key switches to the new value) once its data is written, at the latest
 * when its op is waited for or freed (a wait on another put may commit
 * it with its own); when two puts of one key overlap, the later submitted
 * wins.
 * Returns 0 and *op, or -errno: -EINVAL (NULL, key empty or longer than
 * SWAPIO_STORE_KEY_MAX, @len over 2^56), -ENOSPC (no room; nothing
 * changed), -ENOMEM.
 * Thread-safe.
 */
SWAPIO_API int swapio_store_submit_put(swapio_store *s, const char *key,
				       const void *buf, uint64_t len,
				       swapio_store_op **op);

/*
 * swapio_store_submit_get() - start reading the value of @key into @buf.
 *
 * @len must equal the stored length exactly (see swapio_store_size()).
 * The checksum is verified when the op is waited for. A get started
 * before a put or remove of the same key reads the old value, whose
 * space stays reserved until the get is freed. Returns 0 and *op, or
 * -errno: -EINVAL, -ENOENT (no such key), -EMSGSIZE (@len differs from the
 * stored length). Thread-safe.
 */
SWAPIO_API int swapio_store_submit_get(swapio_store *s, const char *key,
				       void *buf, uint64_t len,
				       swapio_store_op **op);

/*
 * swapio_store_op_wait() - wait for a put or get, then finish it: a put is
 * committed to the index (with any other puts whose data is written: one
 * write of the index for all), a get's checksum verified. Same timeouts as
 * swapio_op_wait(). Returns the value's length, -ETIMEDOUT (still running;
 * wait again), or the op's error: -EBADMSG (checksum mismatch), -EIO
 * (short transfer: data file truncated), -ENOSPC, or an I/O error. A
 * failed put changes nothing and its space is free again. Waiting again
 * returns the same result. Threads may wait on one op concurrently, each
 * with its own timeout: one thread commits or verifies, the others wait
 * for its result.
 */
SWAPIO_API int64_t swapio_store_op_wait(swapio_store_op *op, int timeout_ms);

/* 1 if the op's I/O has completed (a wait will not block on I/O), else
 * 0; SWAPIO_EFORKED in a forked child. Never blocks. */
SWAPIO_API int swapio_store_op_done(const swapio_store_op *op);

/* Finish @op as swapio_store_op_wait(op, -1) does, then release it. NULL:
 * no-op. */
SWAPIO_API void swapio_store_op_free(swapio_store_op *op);

/*
 * Synchronous put and get: submit, wait, free. Return 0 or the errors of
 * swapio_store_submit_put(), swapio_store_submit_get() and
 * swapio_store_op_wait() above. Thread-safe.
 */
SWAPIO_API int swapio_store_put(swapio_store *s, const char *key,
				const void *buf, uint64_t len);
SWAPIO_API int swapio_store_get(swapio_store *s, const char *key, void *buf,
				uint64_t len);

/*
 * swapio_store_remove() - delete @key; its space is free once no get
 * holds it. A put of @key still in flight loses to the remove (see
 * "Order"). Returns 0, -ENOENT (no value and no put in flight), or an
 * error writing the index (-ENOSPC, -EIO), in which case the key stays.
 * Thread-safe.
 */
SWAPIO_API int swapio_store_remove(swapio_store *s, const char *key);

/* The stored length of @key's value, or -ENOENT / -EINVAL. Thread-safe. */
SWAPIO_API int64_t swapio_store_size(swapio_store *s, const char *key);

/*
 * swapio_store_list() - the keys, sorted bytewise, as one allocation:
 * *keys is an array of *count string pointers into the same block; free
 * it with free(*keys). Returns 0 or -ENOMEM. Thread-safe (a snapshot).
 */
SWAPIO_API int swapio_store_list(swapio_store *s, char ***keys,
				 size_t *count);

/*
 * swapio_store_sync() - make every put and remove that had finished when
 * this call began survive a power loss: fdatasync() of the data file,
 * then of the index, then a SYNC record that vouches for the log so far.
 * Gets, puts and removes go on while the disk works. Returns 0 or -errno.
 * Thread-safe.
 */
SWAPIO_API int swapio_store_sync(swapio_store *s);

struct swapio_store_info {
	uint64_t keys;		/* values stored */
	uint64_t value_bytes;	/* sum of their lengths */
	uint64_t used_bytes;	/* data file bytes they occupy, headers in */
	uint64_t file_bytes;	/* data file size */
	uint64_t free_bytes;	/* data file bytes free now */
	uint64_t index_bytes;	/* index log size */
	uint32_t block;		/* extent alignment and header size */
	uint32_t drives;	/* drives it is striped over; 1: plain */
	uint64_t stripe_unit;	/* bytes per drive in turn; 0: plain */
	/*
	 * What the open found in the index. A plain open: the records it
	 * dropped where the log ended early at a record that fails its
	 * checksum (that record, and every one after it up to the last that
	 * is not all zeros), which a crash or a power loss without a sync
	 * can leave; 0 when the log was whole. With SWAPIO_STORE_RECOVER,
	 * when it rebuilt: the records that failed their checksum.
	 */
	uint64_t dropped_records;
	/* SWAPIO_STORE_RECOVER's rebuild: keys it found in the data file
	 * beyond what a plain open would have given (new, or newer values). */
	uint32_t recovered_keys;
	/* ... and keys of which it knows a newer value (an intact header or
	 * index record) than the one it could bring back, but whose payload
	 * fails its checksum: lost to damage. Saturate at UINT32_MAX. */
	uint32_t lost_values;
	uint64_t reserved[1];
};

/* Counters of the store now. Thread-safe. */
SWAPIO_API void swapio_store_info(swapio_store *s,
				  struct swapio_store_info *out);

/*
 * swapio_store_checksum() - the checksum the store keeps per value
 * (XXH3-64, seed 0) of @len bytes at @buf, for callers that verify or
 * time it. Pure function; thread-safe.
 */
SWAPIO_API uint64_t swapio_store_checksum(const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Block tier: batches of blocks by key, for KV caches                 */
/* ------------------------------------------------------------------ */

/*
 * A tier: a store of blocks (a KV cache's pages, each a few hundred KiB)
 * moved in batches, from and into slices of the caller's own memory (no
 * copy: the caller's region is the I/O buffer), with its I/O run by a
 * thread of its own, so that no call waits for the disk. Inference
 * engines keep prefix caches on it (docs/INFERENCE.md).
 *
 * It is a store (everything above: checksums, crash rules, striping,
 * one owning process) in the subdirectory @ns of each drive's directory,
 * so that engines serving two models, or one model with two KV layouts,
 * never read each other's blocks, and may share one root. On top of the
 * store it keeps, in memory, the blocks' order of use and their size on
 * disk, and bounds that size: a put that would take it above the high
 * watermark first evicts the least recently used blocks down to the low
 * one. Blocks written before a close, or before a crash for puts that
 * completed, are found by the next open (their order of use starts as
 * the keys' order). A block whose checksum fails is a miss (-EBADMSG)
 * and is removed: a tier never hands out wrong bytes.
 *
 * A batch is one verb on many blocks. swapio_tier_submit() copies the
 * keys, queues the batch and returns its id at once; the tier's thread
 * keeps up to max_inflight blocks of every batch queued in flight, so the
 * drive sees depth across blocks and batches. When every block of a batch
 * has its result, the batch is finished: its record waits for
 * swapio_tier_reap() and the tier's eventfd becomes readable.
 *
 * Deadlines: a batch submitted with a timeout is finished at its deadline
 * whatever its I/O does (the blocks not done by then say -ETIMEDOUT), so
 * a hung drive fails batches instead of pinning the caller. I/O already
 * at the drive cannot be recalled: until that I/O ends, the batch's
 * record carries SWAPIO_TIER_HELD and its buffers stay in use (a get may
 * still write the block's own bytes there); a second record for the same
 * batch, flagged SWAPIO_TIER_RELEASED, says when they are free.
 */
typedef struct swapio_tier swapio_tier;

/* Verbs of swapio_tier_submit(). */
enum {
	SWAPIO_TIER_PUT = 1,	/* store each buf[0, len) under its key */
	SWAPIO_TIER_GET,	/* read each block into buf; len must match */
	SWAPIO_TIER_EXISTS,	/* 0 if the key holds a block (buf unused) */
	SWAPIO_TIER_REMOVE,	/* drop the key's block (buf unused) */
};

/* One block of a batch. */
struct swapio_tier_block {
	const char	*key;	/* 1 to SWAPIO_STORE_KEY_MAX bytes */
	void		*buf;	/* PUT: read from; GET: written to */
	uint64_t	len;
};

/* Zero-initialise, then set only what you need. */
struct swapio_tier_config {
	uint64_t capacity;	/* bytes the blocks may take on disk, all
				 * drives, headers in; 0: until full */
	uint32_t high_pct;	/* evict above this % of capacity; 0: 95 */
	uint32_t low_pct;	/* ... down to this %; 0: 90 */
	uint32_t flags;		/* SWAPIO_STORE_NO_CHECKSUM, _SHARED */
	uint32_t max_inflight;	/* blocks in flight at most; 0: 128 */
	uint64_t stripe_unit;	/* as swapio_store_config's */
	uint64_t reserved[4];	/* must be zero */
};

/*
 * swapio_tier_open() - open (creating if missing) the tier of namespace
 * @ns over @nr drives: the store in "<dir>/<ns>" of each drive, striped
 * when @nr > 1, with each drive's handle doing its I/O (each must
 * outlive the tier). @ns is 1 to 64 of [A-Za-z0-9._-], not starting with
 * '.'. Each drive's directory is created (0700) if missing and vetted as
 * the store vets its own (swapio_store_open(), "shared machine"). Starts
 * the tier's thread. A store whose index is damaged (SWAPIO_EBADSTORE)
 * is opened with SWAPIO_STORE_RECOVER: a cache rebuilds what is intact
 * rather than refuse to start. Returns 0 and *out, or -errno: -EINVAL (a bad
 * argument or namespace, with a detail), -EBUSY (another process or
 * tier has this namespace open), or the errors of
 * swapio_store_open_multi(). Clears and sets swapio_error_detail().
 */
SWAPIO_API int swapio_tier_open(const struct swapio_store_drive *drives,
				unsigned int nr, const char *ns,
				const struct swapio_tier_config *cfg,
				swapio_tier **out);

/*
 * swapio_tier_close() - wait for every batch and every op in flight (a
 * hung drive hangs it), stop the thread and close the store (which syncs
 * it as swapio_store_close() does). Records not reaped are dropped. NULL
 * is a no-op. Not concurrent with any other call on @t.
 */
SWAPIO_API void swapio_tier_close(swapio_tier *t);

/*
 * swapio_tier_submit() - queue a batch of @n blocks (1 to 65536) for
 * @verb and return at once; never waits for I/O or for the tier's
 * thread. The keys are copied; the buffers and @results (n entries,
 * written by the tier) must stay valid until the batch's record is
 * reaped without SWAPIO_TIER_HELD. results[i] is 0 for a block stored,
 * loaded and verified, present, or removed, else -errno: -ENOENT (a
 * miss: no such block, or its put has not completed), -EBADMSG (its
 * checksum failed: a miss; the block is removed), -EMSGSIZE (GET: @len
 * differs from the stored length), -ETIMEDOUT (the batch's deadline
 * came first), -ENOSPC (PUT: no room even after evicting), -EINVAL (a
 * bad key), or an I/O error. @timeout_ms: the batch's deadline from now,
 * -1 for none. Returns the batch id (> 0), or -errno: -EINVAL (a bad
 * verb, @n, or NULL), -ENOMEM, SWAPIO_EFORKED. Thread-safe.
 */
SWAPIO_API int64_t swapio_tier_submit(swapio_tier *t, unsigned int verb,
				      const struct swapio_tier_block *blocks,
				      unsigned int n, int32_t *results,
				      int timeout_ms);

/* Flags of a batch's record. */
enum {
	SWAPIO_TIER_EXPIRED	= 1u << 0,	/* its deadline finished it */
	SWAPIO_TIER_HELD	= 1u << 1,	/* buffers still in use */
	SWAPIO_TIER_RELEASED	= 1u << 2,	/* a HELD batch's buffers
						 * are free now */
};

/* A finished batch, as swapio_tier_reap() hands it out. */
struct swapio_tier_done {
	uint64_t batch;		/* its id */
	uint32_t n;		/* its blocks */
	uint32_t ok;		/* those whose result is 0 */
	uint32_t flags;		/* SWAPIO_TIER_* above */
	uint32_t reserved;
};

/*
 * swapio_tier_reap() - take up to @max records of finished batches, in
 * the order they finished, and reset the eventfd. Never blocks. Returns
 * the count (0: none), or SWAPIO_EFORKED. Thread-safe.
 */
SWAPIO_API int swapio_tier_reap(swapio_tier *t, struct swapio_tier_done *out,
				unsigned int max);

/*
 * swapio_tier_wait() - wait until a record is there to reap (0), or
 * @timeout_ms pass (-ETIMEDOUT; -1: no limit). Reaps nothing.
 * Thread-safe.
 */
SWAPIO_API int swapio_tier_wait(swapio_tier *t, int timeout_ms);

/*
 * swapio_tier_eventfd() - a descriptor, owned by the tier, readable while
 * records wait to be reaped (poll/epoll; swapio_tier_reap() resets it).
 */
SWAPIO_API int swapio_tier_eventfd(swapio_tier *t);

/* 1 if @key holds a block now (its put completed), else 0. In memory;
 * never blocks on I/O. Thread-safe. */
SWAPIO_API int swapio_tier_contains(swapio_tier *t, const char *key);

struct swapio_tier_info {
	uint64_t blocks;	/* blocks held */
	uint64_t disk_bytes;	/* what they take on disk, headers in */
	uint64_t capacity;	/* the bound; 0: none */
	uint64_t puts;		/* blocks stored */
	uint64_t hits;		/* blocks loaded and verified */
	uint64_t misses;	/* gets of blocks not there */
	uint64_t bad_checksums;	/* gets whose checksum failed (misses too) */
	uint64_t evicted;	/* blocks evicted for room */
	uint64_t expired;	/* batches finished by their deadline */
	uint64_t failed;	/* blocks that failed otherwise (I/O, full) */
	uint64_t read_bytes;	/* payload bytes loaded */
	uint64_t written_bytes;	/* payload bytes stored */
	uint64_t inflight;	/* blocks in flight now */
	uint64_t queued;	/* blocks queued, not yet started */
	uint64_t reserved[6];
};

/* Counters of the tier now. Thread-safe. */
SWAPIO_API void swapio_tier_info(swapio_tier *t, struct swapio_tier_info *out);

/*
 * A pool: a fixed set of equal, page-aligned buffers, optionally locked in
 * memory, allocated once and handed out and back without allocating.
 */
typedef struct swapio_pool swapio_pool;

/* A flag for swapio_pool_create() beside SWAPIO_BUF_LOCKED and _HUGE. */
enum {
	/* With SWAPIO_BUF_LOCKED: fail rather than fall back to unlocked. */
	SWAPIO_POOL_REQUIRE_LOCKED	= 1u << 8,
};

/*
 * swapio_pool_create() - allocate @count buffers of @buf_size bytes
 * (rounded up to a page). SWAPIO_BUF_LOCKED pins them; if the memory-lock
 * limit forbids that, the pool is made unlocked (swapio_pool_locked() says
 * 0) unless SWAPIO_POOL_REQUIRE_LOCKED, which returns SWAPIO_EMEMLOCK.
 * Returns 0 and *out, or -EINVAL (a size or count of 0, unknown flags, or
 * a total beyond the address space) / -ENOMEM / SWAPIO_EMEMLOCK.
 */
SWAPIO_API int swapio_pool_create(size_t buf_size, unsigned int count,
				  unsigned int flags, swapio_pool **out);

/* Free the pool and its memory; every buffer must be back. NULL: no-op. */
SWAPIO_API void swapio_pool_destroy(swapio_pool *p);

/*
 * swapio_pool_get() - take a free buffer into *buf, waiting up to
 * @timeout_ms for one (-1: no limit, 0: try). Returns 0, or -EAGAIN (try,
 * none free), -ETIMEDOUT, -EINVAL. Thread-safe; never allocates.
 */
SWAPIO_API int swapio_pool_get(swapio_pool *p, int timeout_ms, void **buf);

/*
 * swapio_pool_put() - give back a buffer from swapio_pool_get(). Returns 0,
 * or -EINVAL for a pointer that is not one of the pool's buffers or is
 * already free. Thread-safe; wakes one waiter.
 */
SWAPIO_API int swapio_pool_put(swapio_pool *p, void *buf);

/* Buffer size, buffer count, buffers free now, and whether pinned. */
SWAPIO_API size_t swapio_pool_buf_size(const swapio_pool *p);
SWAPIO_API unsigned int swapio_pool_count(const swapio_pool *p);
SWAPIO_API unsigned int swapio_pool_available(swapio_pool *p);
SWAPIO_API int swapio_pool_locked(const swapio_pool *p);

/*
 * A pipeline streams an ordered list of tensor groups from a store
 * through a pool of buffers within a memory budget: it reads up to
 * `depth` groups ahead of the caller, hands each group to the caller in
 * order, and writes it back when the caller releases it, all overlapped
 * (ZeRO-Infinity's optimizer swapper). Everything runs on the caller's
 * thread or the handle's I/O workers; no callback ever runs on a library
 * thread. One pipeline is used by one thread at a time.
 */
typedef struct swapio_pipeline swapio_pipeline;

/* Per-tensor flag: read it, never write it back (e.g. gradients). */
enum {
	SWAPIO_PIPELINE_READ_ONLY	= 1u << 0,
};

struct swapio_pipeline_tensor {
	const char	*key;	/* store key */
	uint64_t	len;	/* bytes; must equal the stored length */
	uint32_t	flags;	/* SWAPIO_PIPELINE_* */
	uint32_t	reserved;	/* must be zero */
};

struct swapio_pipeline_group {
	const struct swapio_pipeline_tensor	*tensors;
	unsigned int				nr_tensors;	/* at least 1 */
};

/*
 * A group's tensors are packed into one pool buffer at page-aligned
 * offsets, so every buffer is as large as the largest group and the pool
 * holds budget_bytes / that many: at least 1; 3 or more let reading,
 * computing and writing overlap.
 */
struct swapio_pipeline_config {
	uint64_t budget_bytes;	/* memory for buffers; 0: 4 groups' worth */
	uint32_t depth;		/* groups read ahead at most; 0: buffers - 1 */
	uint32_t buf_flags;	/* SWAPIO_BUF_* / SWAPIO_POOL_* for the pool */
	uint64_t reserved[4];	/* must be zero */
};

/* What swapio_pipeline_next() hands out: one group, in its buffers. */
struct swapio_pipeline_view {
	unsigned int				group;	/* index */
	unsigned int				nr_tensors;
	void *const				*bufs;	/* one per tensor */
	const struct swapio_pipeline_tensor	*tensors;
};

/*
 * swapio_pipeline_create() - a pipeline over @groups of store @s. The
 * groups and keys are copied. A key must appear at most once in all the
 * groups. @cfg may be NULL for the defaults. Returns 0 and *out, or
 * -EINVAL (empty group, zero-length tensor, budget below one group),
 * -ENOMEM, SWAPIO_EMEMLOCK.
 */
SWAPIO_API int swapio_pipeline_create(swapio_store *s,
				      const struct swapio_pipeline_group *groups,
				      unsigned int nr_groups,
				      const struct swapio_pipeline_config *cfg,
				      swapio_pipeline **out);

/*
 * swapio_pipeline_destroy() - finish what is in flight (write-backs are
 * committed), then free the pipeline and its buffers. NULL: no-op.
 */
SWAPIO_API void swapio_pipeline_destroy(swapio_pipeline *p);

/*
 * swapio_pipeline_begin() - start a pass over all groups in order, reading
 * the first ones ahead at once, while the last pass's final write-backs
 * may still be going (a group is read only after its write-back is
 * done). Returns 0, -EBUSY while a pass is still running (call next()
 * until it returns 0) or a group is held, or the error of a write-back of
 * the last pass that failed since (the pass is then not started).
 */
SWAPIO_API int swapio_pipeline_begin(swapio_pipeline *p);

/*
 * swapio_pipeline_next() - wait for the next group to be in memory and
 * describe it in *out; its buffers are the caller's until
 * swapio_pipeline_release(). Returns 1 (a group), 0 when every group was
 * handed out and given back (the pass is over; its last write-backs may
 * still be in flight: see swapio_pipeline_flush()), or
 * the first error met: a get's (-EBADMSG, -ENOENT, -EMSGSIZE, -EIO) or a
 * write-back's. After such an error the pass is over: what was in flight
 * is waited for, groups not handed out are skipped, and later calls
 * return 0. Groups the caller holds must still be released. Two returns
 * leave the pass running: -EDEADLK when the caller holds every buffer,
 * and -EBUSY at the end while it still holds a group; release, then call
 * again.
 */
SWAPIO_API int swapio_pipeline_next(swapio_pipeline *p,
				    struct swapio_pipeline_view *out);

/*
 * swapio_pipeline_release() - give back group @group from next(). With
 * @write_back, its tensors not marked SWAPIO_PIPELINE_READ_ONLY are written to
 * the store (checksummed here, on the calling thread) and the buffer is
 * reused once that is done; without, at once. Returns 0 or -errno:
 * -EINVAL (not a group the caller holds), or the error of submitting a
 * put, which next() also reports.
 */
SWAPIO_API int swapio_pipeline_release(swapio_pipeline *p,
				       unsigned int group, int write_back);

/*
 * swapio_pipeline_cancel() - end the running pass now, without reading the
 * rest: the reads begun are waited for and their groups dropped, the groups
 * not handed out are skipped (the next pass starts at group 0), and the
 * write-backs in flight go on (swapio_pipeline_flush() waits for them; a
 * write-back error is still reported there or by the next begin()). For a
 * pass begun ahead that is no longer wanted. Returns 0 (also with no pass
 * running), -EBUSY while the caller holds a group (release it first), or
 * -EINVAL.
 */
SWAPIO_API int swapio_pipeline_cancel(swapio_pipeline *p);

/*
 * swapio_pipeline_flush() - wait for every write-back in flight and commit
 * it. Returns 0 or the first write-back error not yet reported. Call it
 * before relying on the store's content (a sync, a checkpoint, a get).
 */
SWAPIO_API int swapio_pipeline_flush(swapio_pipeline *p);

struct swapio_pipeline_stats {
	uint64_t bytes_read;	/* since begin() */
	uint64_t bytes_written;	/* write-backs committed since begin() */
	uint64_t stall_ns;	/* time next() blocked waiting for I/O */
	uint64_t buf_bytes;	/* size of each pool buffer */
	uint32_t buffers;	/* pool buffers */
	uint32_t depth;		/* read-ahead in groups */
	uint32_t locked;	/* 1 if the buffers are pinned */
	uint32_t reserved32;
	uint64_t reserved[3];
};

/* Counters of the current or last pass. */
SWAPIO_API void swapio_pipeline_stats(const swapio_pipeline *p,
				      struct swapio_pipeline_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* SWAPIO_H */
