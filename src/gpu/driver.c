/* SPDX-License-Identifier: MIT */
/*
 * The device layer's driver thread, one per handle: takes jobs in
 * submission order, picks each one's path (measuring both where AUTO asks)
 * and runs it.
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

/* ------------------------------------------------------------------ */
/* The driver thread                                                   */
/* ------------------------------------------------------------------ */

static ssize_t stage_job(struct swapio_gpu *g, struct job *j, size_t len)
{
	if (j->write)
		return swapio__gpu_stage_write(g, j->d, j->f, j->dev, len, j->off,
				   j->managed ? GPU_MEMCPY_DEFAULT :
				   GPU_MEMCPY_D2H);
	return swapio__gpu_stage_read(g, j->d, j->f, j->dev, len, j->off,
			  j->managed ? GPU_MEMCPY_DEFAULT : GPU_MEMCPY_H2D);
}

static double gbps(size_t n, uint64_t ns)
{
	return ns ? (double)n / (double)ns : 0.0;
}

static void path_set(struct swapio_gpu *g, struct job *j, int path)
{
	pthread_mutex_lock(&g->lock);
	j->d->path[j->write] = path;
	pthread_mutex_unlock(&g->lock);
}

/*
 * The first eligible op of a direction under auto: its first chunk goes
 * both ways, timed, and the faster path is kept for the device. The op
 * itself then runs in full on that path (the piece moved twice is the
 * op's own data at the op's own offset). The file is registered with
 * cuFile before the clock starts: registration is once per file, not a
 * cost of each transfer. A file that cuFile refuses leaves the choice to
 * the next eligible op.
 */
static int gds_probe(struct swapio_gpu *g, struct job *j)
{
	size_t n = SWAPIO_MIN(j->len, g->chunk);
	const char *dir = j->write ? "writes" : "reads";
	uint64_t t0, t_gds, t_stage;
	cufile_handle fh;
	int path;

	if (swapio__gpu_gds_file(g, j->f, &fh))
		return SWAPIO_GPU_STAGING;
	t0 = swapio__now_ns();
	if (swapio__gpu_gds_xfer(g, j->f, j->dev, n, j->off, j->write) < 0)
		return SWAPIO_GPU_STAGING;
	t_gds = swapio__now_ns() - t0;
	t0 = swapio__now_ns();
	if (stage_job(g, j, n) < 0)
		t_stage = UINT64_MAX;	/* let the op itself report it */
	else
		t_stage = swapio__now_ns() - t0;
	path = t_gds <= t_stage ? SWAPIO_GPU_GDS : SWAPIO_GPU_STAGING;
	swapio__gpu_note(g, "auto: %s gds %.2f GB/s, staging %.2f GB/s over %zu "
		 "bytes; chose %s", dir, gbps(n, t_gds), gbps(n, t_stage), n,
		 path == SWAPIO_GPU_GDS ? "gds" : "staging");
	path_set(g, j, path);
	return path;
}

/* The path this job takes (AUTO: to be measured by this job). */
static int job_path(struct swapio_gpu *g, struct job *j)
{
	enum cufile_state st;
	int path;

	if (!swapio__gpu_gds_eligible(g, j))
		return SWAPIO_GPU_STAGING;
	pthread_mutex_lock(&g->lock);
	path = j->d->path[j->write];
	pthread_mutex_unlock(&g->lock);
	if (path == SWAPIO_GPU_STAGING)
		return path;
	st = swapio__gpu_cufile_state(g);
	if (st == GDS_OPENING)	/* not yet: maybe for a later op */
		return SWAPIO_GPU_STAGING;
	if (path == SWAPIO_GPU_AUTO && st != GDS_NVFS) {
		/* Compat mode is POSIX I/O with bounce buffers: staging. */
		path_set(g, j, SWAPIO_GPU_STAGING);
		swapio__gpu_note(g, "auto: %s by staging (%s)",
			 j->write ? "writes" : "reads",
			 st == GDS_COMPAT ? "cuFile in compat mode" :
			 "no cuFile");
		return SWAPIO_GPU_STAGING;
	}
	if (st == GDS_FAILED)
		return SWAPIO_GPU_STAGING;
	if (st == GDS_COMPAT)
		swapio__gpu_note(g, "gds (compat mode)");
	return path;
}

/*
 * cuFile is outside every stream: before the job's first cuFile call the
 * host waits for the caller's event, and for swapio's own stream, where
 * the caller's work sits when it passed that stream (and a DLPack
 * producer's wait, from Python). A staging job waits in-stream instead.
 */
static int job_order(struct swapio_gpu *g, struct job *j, bool gds)
{
	int ret = 0;

	if (!gds)
		return j->ready ? swapio__gpu_check(g, rt_cu.StreamWaitEvent(
					   j->d->stream, j->ready, 0),
					   "cudaStreamWaitEvent") : 0;
	if (j->ready)
		ret = swapio__gpu_check(g, rt_cu.EventSynchronize(j->ready),
			       "cudaEventSynchronize");
	if (!ret)
		ret = swapio__gpu_check(g, rt_cu.StreamSynchronize(j->d->stream),
			       "cudaStreamSynchronize");
	return ret;
}

static ssize_t job_run(struct swapio_gpu *g, struct job *j)
{
	ssize_t res;
	int ret, path;

	ret = swapio__gpu_check(g, rt_cu.SetDevice(j->d->device), "cudaSetDevice");
	if (ret)
		return ret;
	path = job_path(g, j);
	ret = job_order(g, j, path != SWAPIO_GPU_STAGING);
	if (ret)
		return ret;
	if (path == SWAPIO_GPU_AUTO)
		path = gds_probe(g, j);
	if (path == SWAPIO_GPU_GDS) {
		res = swapio__gpu_gds_xfer(g, j->f, j->dev, j->len, j->off, j->write);
		if (res >= 0)
			return res;
	}
	return stage_job(g, j, j->len);
}

void *swapio__gpu_main(void *arg)
{
	struct swapio_gpu *g = arg;
	struct job *j;
	ssize_t res;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (!g->head && !g->stop)
			pthread_cond_wait(&g->cv, &g->lock);
		j = g->head;
		if (j) {
			g->head = j->next;
			if (!g->head)
				g->tail = NULL;
		}
		pthread_mutex_unlock(&g->lock);
		if (!j)
			return NULL;
		res = j->len ? job_run(g, j) : 0;
		if (j->ready)
			rt_cu.EventDestroy(j->ready);
		pthread_mutex_lock(&g->lock);
		g->stats.jobs++;
		pthread_mutex_unlock(&g->lock);
		swapio__op_end(j->op, res);
		free(j);
	}
}
