/* SPDX-License-Identifier: MIT */
/*
 * The device layer's GPUDirect Storage path: cuFile opened on first use,
 * each file registered once, and a fall back to staging for good after
 * any cuFile error on that file.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ext.h"
#include "gpu_impl.h"
#include "util.h"

/* The cuFile table, once cuFile has opened (set by the driver threads). */
const struct cufile_api *_Atomic swapio__gpu_cf;

/* ------------------------------------------------------------------ */
/* GPUDirect Storage                                                   */
/* ------------------------------------------------------------------ */

/* The cuFile state, opened on first use; a change goes into the note. */
enum cufile_state swapio__gpu_cufile_state(struct swapio_gpu *g)
{
	const struct cufile_api *api;
	enum cufile_state st;
	char why[320];
	bool changed;

	st = swapio__cufile_get(&api, why, sizeof(why));
	if (st == GDS_NVFS || st == GDS_COMPAT)
		atomic_store(&swapio__gpu_cf, api);
	pthread_mutex_lock(&g->lock);
	changed = g->cufile != st;
	g->cufile = st;
	pthread_mutex_unlock(&g->lock);
	if (changed && st == GDS_COMPAT)
		swapio__gpu_note(g, "cuFile in compat mode (no nvidia-fs): POSIX I/O "
			 "through its own bounce buffers");
	else if (changed && why[0])
		swapio__gpu_note(g, "%s", why);
	return st;
}

/* Could this job take cuFile, by its own and its file's properties? */
bool swapio__gpu_gds_eligible(struct swapio_gpu *g, const struct job *j)
{
	bool refused;

	pthread_mutex_lock(&g->lock);
	refused = swapio__ext_file(j->f)->state < 0;
	pthread_mutex_unlock(&g->lock);
	return !refused && !j->managed && j->len && swapio_file_direct(j->f) &&
	       j->off % GDS_ALIGN == 0 && j->len % GDS_ALIGN == 0;
}

/* A cuFile call failed on @f: staging for that file from now on. */
static ssize_t gds_fail(struct swapio_gpu *g, swapio_file *f,
			const char *call, long res, int err)
{
	pthread_mutex_lock(&g->lock);
	swapio__ext_file(f)->state = -1;
	g->stats.gds_fallbacks++;
	pthread_mutex_unlock(&g->lock);
	if (res == -1)	/* a system call failed inside: errno says what */
		swapio__gpu_note(g, "%s: %s (errno %d); gds off for this file, "
			 "staging used", call, strerror(err), err);
	else
		swapio__gpu_note(g, "%s: error %ld; gds off for this file, staging "
			 "used", call, res);
	return -EIO;
}

/* The file slot's close callback: deregister before the fd closes. */
static void gds_file_close(struct swapio_ext_file *slot)
{
	const struct cufile_api *cf = atomic_load(&swapio__gpu_cf);

	/* Registered only once cuFile had opened: cf is set. A file that
	 * failed later (state -1) may still hold its registration. */
	if (slot->data && cf)
		cf->HandleDeregister(slot->data);
	slot->data = NULL;
	slot->state = 0;
}

/* @f's cuFile handle, registered once for the file's life. */
int swapio__gpu_gds_file(struct swapio_gpu *g, swapio_file *f,
			 cufile_handle *fh)
{
	const struct cufile_api *cf = atomic_load(&swapio__gpu_cf);
	struct cufile_descr desc = { .type = GPU_CUFILE_FD };
	struct swapio_ext_file *slot = swapio__ext_file(f);
	struct cufile_err e;
	int state;

	pthread_mutex_lock(&g->lock);
	state = slot->state;
	*fh = slot->data;
	pthread_mutex_unlock(&g->lock);
	if (state)
		return state < 0 ? -EIO : 0;
	desc.handle.fd = swapio__ext_fd(f);
	e = cf->HandleRegister(fh, &desc);
	if (e.err)
		return (int)gds_fail(g, f, "cuFileHandleRegister", (long)e.err,
				     0);
	pthread_mutex_lock(&g->lock);
	slot->data = *fh;
	slot->state = 1;
	slot->close = gds_file_close;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/*
 * @len bytes by cuFile; -EIO (and gds off for the file) on any cuFile
 * error. The device memory is not registered with cuFileBufRegister():
 * that pays only for a buffer reused across many ops, which swapio cannot
 * know is still allocated; unregistered memory goes through cuFile's own
 * bounce buffers where it needs them.
 */
ssize_t swapio__gpu_gds_xfer(struct swapio_gpu *g, swapio_file *f,
			     unsigned char *dev, size_t len, uint64_t off,
			     bool write)
{
	const struct cufile_api *cf = atomic_load(&swapio__gpu_cf);
	cufile_handle fh;
	size_t done = 0;
	ssize_t n;

	if (swapio__gpu_gds_file(g, f, &fh))
		return -EIO;
	while (done < len) {
		errno = 0;
		if (write)
			n = cf->Write(fh, dev, len - done,
				      (off_t)(off + done), (off_t)done);
		else
			n = cf->Read(fh, dev, len - done,
				     (off_t)(off + done), (off_t)done);
		if (n < 0 || (n == 0 && write))
			return gds_fail(g, f, write ? "cuFileWrite" :
					"cuFileRead", (long)n, errno);
		if (n == 0)
			break;	/* end of file */
		done += (size_t)n;
	}
	pthread_mutex_lock(&g->lock);
	g->stats.gds_bytes += done;
	pthread_mutex_unlock(&g->lock);
	return (ssize_t)done;
}
