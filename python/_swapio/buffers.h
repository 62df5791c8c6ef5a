/* SPDX-License-Identifier: MIT */
/*
 * buffers.h - the memory of a Python argument (struct xbuf: a buffer
 * protocol view or a consumed DLPack tensor, host or CUDA), and the
 * Buffer type (memory from swapio_buf_alloc(), or a view of a pipeline's).
 */
#ifndef SWAPIO_PY_BUFFERS_H
#define SWAPIO_PY_BUFFERS_H

#include "common.h"

#include <dlpack/dlpack.h>

/*
 * Memory taken from a Python object, held until xbuf_release(): either a
 * Py_buffer view or a DLPack tensor whose deleter is ours to call. An
 * all-zero xbuf holds nothing, and releasing it does nothing; moving one
 * is a struct copy followed by zeroing the source.
 */
struct xbuf {
	void *ptr;		/* never NULL once taken (0 bytes: a dummy) */
	size_t len;
	int device;		/* CUDA device ordinal, or -1: host memory */
	void *stream;		/* the stream the producer readied it on */
	int has_view;
	Py_buffer view;
	DLManagedTensor *dl;	/* consumed capsule: ours to delete */
	PyObject *storage;	/* resizable torch storage under ptr, or NULL */
	uintptr_t storage_ptr;	/* its memory when taken */
	unsigned long long storage_len;
};

/*
 * The memory of @obj, held until xbuf_release(). @writable: swapio will
 * write into it (a read). With @h, CUDA device memory is taken too
 * (b->device >= 0), readied on @h's stream for that device; without
 * (xbuf_get()), it is refused. 0, or -1 with an exception set.
 */
int xbuf_get_on(struct mod_state *st, PyObject *obj, int writable,
		swapio_handle *h, struct xbuf *b);
int xbuf_get(PyObject *obj, int writable, struct xbuf *b);
void xbuf_release(struct xbuf *b);
/* 1 if the guarded storage's memory was replaced (resize_) since taken. */
int xbuf_moved(struct xbuf *b);
/* The error an op whose tensor was resized in flight ends with. */
PyObject *raise_resized(struct mod_state *st, PyObject *filename);

/* A Buffer over @ptr, kept alive by @owner (a new reference), not freed. */
PyObject *buffer_new_view(struct mod_state *st, void *ptr, size_t size,
			  PyObject *owner);
/* A Buffer of @size new bytes from swapio_buf_alloc(@flags). */
PyObject *buffer_alloc(struct mod_state *st, size_t size, unsigned int flags);
int buffers_setup_types(PyObject *m, struct mod_state *st);

#endif
