/* SPDX-License-Identifier: MIT */
/*
 * The core's private interface for the layers built into the library
 * above it: the store (src/store/) and the device layer (src/gpu/). They
 * see swapio.h, util.h and this header, never internal.h or engine.h, so
 * what they take from the core below the public API is listed here, each
 * call with the reason it is not public (docs/ARCHITECTURE.md, "Below the
 * line").
 *
 * An extension keeps its own state per handle in one slot that the handle
 * frees by a callback, and per file in one slot that the file's close
 * empties by a callback: the core never names an extension.
 */
#ifndef SWAPIO_EXT_H
#define SWAPIO_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "swapio.h"

struct swapio_op;

/* ------------------------------------------------------------------ */
/* Ops an extension runs itself (the device layer's)                   */
/* ------------------------------------------------------------------ */

/*
 * Begin checks the arguments as a submit does and makes a live, running
 * op that no worker sees; end publishes its result, closes @owned (a file
 * the op opened by path, or NULL) and wakes waiters; cancel drops an op
 * from begin that never ran (its set-up failed). Below the line: a user
 * has no use for an op that the library does not run.
 */
int swapio__op_begin(swapio_handle *h, swapio_file *f, swapio_file *owned,
		     bool write, const void *buf, size_t len, uint64_t off,
		     struct swapio_op **out);
void swapio__op_end(struct swapio_op *op, ssize_t res);
void swapio__op_cancel(struct swapio_op *op);
/* Opens @path for one path op, as swapio_submit_read_path() does. */
int swapio__path_open(swapio_handle *h, const char *path, bool write,
		      swapio_file **out);

/* ------------------------------------------------------------------ */
/* Slots                                                               */
/* ------------------------------------------------------------------ */

/*
 * The handle's extension slot. swapio__ext_get() gives its state in *@out,
 * making it first with @make (called under the handle's lock: it must not
 * call back into the handle) and remembering @destroy, which
 * swapio_handle_destroy() calls before the handle's workers stop, with
 * nothing of the extension in flight. 0, or what @make returned.
 * swapio__ext_peek() is the state, NULL when none was made. Thread-safe.
 * One extension per handle: the device layer is the only one.
 */
int swapio__ext_get(swapio_handle *h, int (*make)(swapio_handle *h,
						   void **state),
		    void (*destroy)(void *state), void **out);
void *swapio__ext_peek(swapio_handle *h);
/* SWAPIO_EFORKED where @h was made before a fork() of this process. */
int swapio__ext_forked(const swapio_handle *h);

/*
 * A file's extension slot (cuFile's registration of its descriptor), and
 * the descriptor itself. @close, where set, runs in swapio_file_close()
 * before the descriptor closes. Not locked: the extension serialises its
 * own use of a file's slot.
 */
struct swapio_ext_file {
	void	*data;
	int	state;
	void	(*close)(struct swapio_ext_file *slot);
};
struct swapio_ext_file *swapio__ext_file(swapio_file *f);
int swapio__ext_fd(const swapio_file *f);

/* ------------------------------------------------------------------ */
/* What the store takes                                                */
/* ------------------------------------------------------------------ */

/*
 * A write of @pre_len bytes of @pre at @off and then @len bytes of @buf
 * right after them, as one op whose first request carries both: a put's
 * header block and payload cost one write, not two. @pre, @pre_len and
 * @off must meet the file's direct alignment; @len > 0. The op's result
 * counts all the bytes. Below the line: the alignment rule on @pre is the
 * store's own layout, not a general gather write.
 */
int swapio__submit_write_pre(swapio_handle *h, swapio_file *f,
			     const void *pre, size_t pre_len, const void *buf,
			     size_t len, uint64_t off, swapio_op **op);
/*
 * Have @h's workers run what their engines deferred (engine.h, ->flush):
 * a file this process closed may be held open until then. Below the
 * line: it is an engine's detail (io_uring's registered files).
 */
void swapio__handle_flush(swapio_handle *h);
/*
 * Does one locked buffer of this process, one the engines may register
 * with the kernel, hold all of [@buf, @buf + @len)? Below the line: which
 * buffers are registered is the engines' choice.
 */
bool swapio__reg_holds(const void *buf, size_t len);

#endif /* SWAPIO_EXT_H */
