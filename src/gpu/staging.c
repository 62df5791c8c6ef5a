/* SPDX-License-Identifier: MIT */
/*
 * The device layer's staging path: a job's chunks as a pipeline through
 * pinned host buffers, the copies on swapio's stream overlapping the file
 * ops (gpu.c has the rule of reuse).
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
/* Staging                                                             */
/* ------------------------------------------------------------------ */

/* Wait for the file op on @s; its result, 0 if none. */
static ssize_t slot_drain(struct slot *s)
{
	ssize_t res;

	if (!s->op)
		return 0;
	res = swapio_op_wait(s->op, -1);
	swapio_op_free(s->op);
	s->op = NULL;
	return res;
}

static int slot_sync(struct swapio_gpu *g, struct slot *s)
{
	if (!s->copying)
		return 0;
	s->copying = false;
	return swapio__gpu_check(g, rt_cu.EventSynchronize(s->ev),
			"cudaEventSynchronize");
}

/* Is a file op of this job other than @self's still running? */
static bool file_busy(const struct gpu_dev *d, const struct slot *self)
{
	for (unsigned int i = 0; i < GPU_SLOTS; i++)
		if (&d->slot[i] != self && d->slot[i].op &&
		    !swapio_op_done(d->slot[i].op))
			return true;
	return false;
}

static void count_copy(struct swapio_gpu *g, bool overlapped, size_t n)
{
	pthread_mutex_lock(&g->lock);
	g->stats.copies++;
	g->stats.overlapped += overlapped;
	g->stats.staged_bytes += n;
	pthread_mutex_unlock(&g->lock);
}

static int copy_in(struct swapio_gpu *g, struct gpu_dev *d, struct slot *s,
		   const void *src, size_t n, cu_memcpy_kind kind, void *dst)
{
	int ret;

	assert(!s->copying);
	count_copy(g, file_busy(d, s), n);
	ret = swapio__gpu_check(g, rt_cu.MemcpyAsync(dst, src, n, kind, d->stream),
		       "cudaMemcpyAsync");
	if (!ret)
		ret = swapio__gpu_check(g, rt_cu.EventRecord(s->ev, d->stream),
			       "cudaEventRecord");
	s->copying = !ret;
	return ret;
}

static void first_err(ssize_t *ret, ssize_t res)
{
	if (res < 0 && *ret >= 0)
		*ret = res;
}

/*
 * Device to file: the copy of chunk i+1 runs while chunk i is written. A
 * slot is copied into only after its last write completed (slot_drain),
 * and written from only after its copy's event completed (slot_sync).
 */
ssize_t swapio__gpu_stage_write(struct swapio_gpu *g, struct gpu_dev *d,
				swapio_file *f, const unsigned char *dev,
				size_t len, uint64_t off, cu_memcpy_kind kind)
{
	size_t c = g->chunk, n = (len + c - 1) / c;
	ssize_t ret = 0;
	struct slot *s;
	size_t i;
	int sub;

	for (i = 0; i <= n && ret >= 0; i++) {
		if (i < n) {
			s = &d->slot[i % GPU_SLOTS];
			first_err(&ret, slot_drain(s));
			s->len = SWAPIO_MIN(c, len - i * c);
			if (ret >= 0)
				first_err(&ret, copy_in(g, d, s, dev + i * c,
							s->len, kind, s->buf));
		}
		if (i == 0 || ret < 0)
			continue;
		s = &d->slot[(i - 1) % GPU_SLOTS];
		first_err(&ret, slot_sync(g, s));
		if (ret < 0)
			break;
		sub = swapio_submit_write(g->h, f, s->buf, s->len,
					  off + (i - 1) * c, &s->op);
		first_err(&ret, sub);
	}
	for (i = 0; i < GPU_SLOTS; i++) {
		first_err(&ret, slot_sync(g, &d->slot[i]));
		first_err(&ret, slot_drain(&d->slot[i]));
	}
	return ret < 0 ? ret : (ssize_t)len;
}

static int read_chunk(struct swapio_gpu *g, struct slot *s, swapio_file *f,
		      size_t len, uint64_t off, size_t i)
{
	size_t c = g->chunk;

	s->len = SWAPIO_MIN(c, len - i * c);
	return swapio_submit_read(g->h, f, s->buf, s->len, off + i * c,
				  &s->op);
}

/*
 * File to device: GPU_SLOTS chunks are read ahead; chunk i is copied up
 * while the next are read. A slot is read into again only after the
 * event of its copy completed: slot i-1 is refilled once chunk i's copy
 * is queued, so at most one copy is waited for at a time.
 */
ssize_t swapio__gpu_stage_read(struct swapio_gpu *g, struct gpu_dev *d,
			       swapio_file *f, unsigned char *dev, size_t len,
			       uint64_t off, cu_memcpy_kind kind)
{
	size_t c = g->chunk, n = (len + c - 1) / c, total = 0, i, next;
	ssize_t ret = 0, res;
	struct slot *s, *p;

	for (i = 0; i < n && i < GPU_SLOTS && ret >= 0; i++)
		first_err(&ret, read_chunk(g, &d->slot[i], f, len, off, i));
	for (i = 0; i < n && ret >= 0; i++) {
		s = &d->slot[i % GPU_SLOTS];
		res = slot_drain(s);
		first_err(&ret, res);
		if (res <= 0)
			break;	/* an error, or end of file */
		first_err(&ret, copy_in(g, d, s, s->buf, (size_t)res, kind,
					dev + i * c));
		total += (size_t)res;
		if ((size_t)res < s->len)
			break;	/* end of file */
		next = i - 1 + GPU_SLOTS;
		if (i == 0 || next >= n || ret < 0)
			continue;
		p = &d->slot[(i - 1) % GPU_SLOTS];
		first_err(&ret, slot_sync(g, p));
		if (ret >= 0)
			first_err(&ret, read_chunk(g, p, f, len, off, next));
	}
	for (i = 0; i < GPU_SLOTS; i++) {
		first_err(&ret, slot_sync(g, &d->slot[i]));
		slot_drain(&d->slot[i]);	/* reads past a stop */
	}
	return ret < 0 ? ret : (ssize_t)total;
}
