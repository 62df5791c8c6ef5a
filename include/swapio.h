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
	uint64_t reserved[6];	/* must be zero (room to grow) */
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
 * The file is replaced atomically (written beside it, then renamed).
 * Returns 0, -EINVAL if @cfg breaks the bounds of struct swapio_config
 * (or has reserved words set), or the errno of the write.
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
 * up met). On success *out owns the handle. Returns 0 or -errno.
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
	SWAPIO_O_CREATE	= 1u << 2,	/* create if missing (mode 0644) */
	SWAPIO_O_TRUNC	= 1u << 3,	/* truncate to 0 on open */
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
 * block device (a FIFO, socket or terminal cannot be read at an offset).
 * -EINVAL for a NULL argument or unknown or missing READ/WRITE flags.
 * A file may serve many ops at once from any thread.
 */
SWAPIO_API int swapio_file_open(swapio_handle *h, const char *path,
				unsigned int flags, swapio_file **out);

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

/* Size of an open file, or -errno. */
SWAPIO_API int64_t swapio_file_size(const swapio_file *f);

/* Size of the file at @path (DeepSpeed's get_file_size), or -errno. */
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
SWAPIO_API ssize_t swapio_op_wait(swapio_op *op, int timeout_ms);

/*
 * swapio_wait_any() - wait until one of @ops[0..n) has completed.
 * Returns the index of a completed op (the lowest), -ETIMEDOUT, or -EINVAL
 * for an empty set or a NULL entry. All ops must belong to one handle.
 */
SWAPIO_API int swapio_wait_any(swapio_op *const *ops, unsigned int n,
			       int timeout_ms);

/*
 * swapio_wait_all() - wait until every op submitted on @h so far has
 * completed. Returns 0, or -ETIMEDOUT with ops still in flight.
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
	uint64_t reserved[5];
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

/* A static message for @err (negative errno or SWAPIO_E*). Thread-safe. */
SWAPIO_API const char *swapio_strerror(int err);

/* SWAPIO_VERSION_NUMBER of the library in use. */
SWAPIO_API unsigned int swapio_version(void);

/* "uring", "aio", "threads" for an enum swapio_engine; NULL if unknown. */
SWAPIO_API const char *swapio_engine_name(unsigned int engine);

/* Parse an engine name ("auto" included); -EINVAL if unknown. */
SWAPIO_API int swapio_engine_parse(const char *name);

/*
 * swapio_engine_probe() - can @engine run on this machine? 0 if so, else
 * the -errno its set-up met (-EOPNOTSUPP when not built in). Cached.
 */
SWAPIO_API int swapio_engine_probe(unsigned int engine);

#ifdef __cplusplus
}
#endif
#endif /* SWAPIO_H */
