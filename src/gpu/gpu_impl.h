/* SPDX-License-Identifier: MIT */
/*
 * What the units of the device layer share (internal, not installed):
 *
 *   gpu.c       set-up, devices, notes, submission, the public calls
 *   staging.c   a job through pinned staging buffers, chunk by chunk
 *   gds.c       a job by GPUDirect Storage (cuFile)
 *   driver.c    the driver thread: picks each job's path and runs it
 *   gpu_load.c  loading the CUDA runtime and cuFile at run time
 */
#ifndef SWAPIO_GPU_IMPL_H
#define SWAPIO_GPU_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gpu.h"
#include "gpu_load.h"
#include "swapio.h"

#define GPU_SLOTS	4
#define GPU_DEF_CHUNK	(8u << 20)
#define GPU_MAX_CHUNK	(1ull << 30)
#define GDS_ALIGN	4096u

#define rt_cu	(swapio__cuda.cu)

struct slot {
	unsigned char	*buf;		/* chunk bytes, page-aligned */
	bool		pinned;		/* cudaHostRegister() succeeded */
	cu_event	ev;		/* recorded after its last copy */
	bool		copying;	/* ev not yet synchronised */
	swapio_op	*op;		/* file op on buf, or NULL */
	size_t		len;		/* that op's length */
};

struct gpu_dev {
	int		device;
	cu_stream	stream;
	struct slot	slot[GPU_SLOTS];
	int		path[2];	/* [write]: SWAPIO_GPU_*; AUTO: unmeasured */
};

/* One device op, owned by the driver thread once queued. */
struct job {
	struct job	*next;
	struct swapio_op *op;
	swapio_file	*f;
	struct gpu_dev	*d;
	unsigned char	*dev;
	size_t		len;
	uint64_t	off;
	bool		write;
	bool		managed;	/* cudaMallocManaged() memory */
	cu_event	ready;	/* the caller's stream at submission, or NULL */
};

struct swapio_gpu {
	swapio_handle		*h;
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	pthread_t		thread;
	bool			started;
	bool			stop;
	enum cufile_state	cufile;		/* as last seen, for the note */
	unsigned int		path_cfg;	/* SWAPIO_GPU_* asked for */
	size_t			chunk;		/* staging buffer size */
	struct job		*head, *tail;
	struct gpu_dev		*devs[SWAPIO_DEV_MAX];
	struct swapio__gpu_stats stats;
	char			note[512];
};

/* The cuFile table, once cuFile has opened (set by the driver threads). */
extern const struct cufile_api *_Atomic swapio__gpu_cf;

/* gpu.c: a clause for the note (each once, the newest last); a failed
 * CUDA call into the note, as SWAPIO_ECUDA. */
void __attribute__((format(printf, 2, 3)))
swapio__gpu_note(struct swapio_gpu *g, const char *fmt, ...);
int swapio__gpu_check(struct swapio_gpu *g, cu_err e, const char *call);

/* staging.c: @len bytes of a job through the staging buffers of @d. */
ssize_t swapio__gpu_stage_write(struct swapio_gpu *g, struct gpu_dev *d,
				swapio_file *f, const unsigned char *dev,
				size_t len, uint64_t off, cu_memcpy_kind kind);
ssize_t swapio__gpu_stage_read(struct swapio_gpu *g, struct gpu_dev *d,
			       swapio_file *f, unsigned char *dev, size_t len,
			       uint64_t off, cu_memcpy_kind kind);

/* gds.c: cuFile's state (opened on first use), whether a job may take it,
 * a file's registration, and @len bytes by cuFile. */
enum cufile_state swapio__gpu_cufile_state(struct swapio_gpu *g);
bool swapio__gpu_gds_eligible(struct swapio_gpu *g, const struct job *j);
int swapio__gpu_gds_file(struct swapio_gpu *g, swapio_file *f,
			 cufile_handle *fh);
ssize_t swapio__gpu_gds_xfer(struct swapio_gpu *g, swapio_file *f,
			     unsigned char *dev, size_t len, uint64_t off,
			     bool write);

/* driver.c: the driver thread's body; @arg is the struct swapio_gpu. */
void *swapio__gpu_main(void *arg);

#endif /* SWAPIO_GPU_IMPL_H */
