/* SPDX-License-Identifier: MIT */
/*
 * The pipeline: an ordered list of tensor groups streamed from a store
 * through a pool of buffers (ZeRO-Infinity's optimizer swapper). Uses only
 * swapio.h.
 *
 * Everything happens on the caller's thread, inside next() and release():
 * they reap the write-backs that have finished (which commits them and
 * frees their buffers), then start reads for the groups ahead while
 * buffers and the depth allow. The I/O itself runs on the handle's
 * workers meanwhile, so the caller's compute on group i overlaps the
 * reads of i+1.. and the write-back of i-1... No callback ever runs on a
 * library thread.
 *
 * Positions count groups handed out over all passes (group = position
 * modulo the number of groups): positions [delivered, started) are being
 * read, in order; a pass covers [pass_end - nr_groups, pass_end). A group
 * the caller holds is HELD; released with write-back it joins a FIFO of
 * writes until reaped. A group is read only when IDLE, so never before
 * its last write-back is committed: that is what lets a pass begin while
 * the last one's write-backs are still going.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "swapio.h"
#include "util.h"

#define TENSOR_ALIGN	4096u	/* offsets of tensors in a group buffer */

enum gstate { G_IDLE, G_READING, G_HELD, G_WRITING };

struct pgroup {
	unsigned int	first;		/* index of its first tensor */
	unsigned int	nr;
	uint64_t	bytes;		/* packed size in a buffer */
	enum gstate	state;
	int		err;		/* a get that could not start */
	unsigned char	*buf;
};

struct swapio_pipeline {
	swapio_store			*s;
	swapio_pool			*pool;
	struct swapio_pipeline_tensor	*tensors;	/* keys copied */
	uint64_t			*offs;	/* in the group buffer */
	void				**bufs;	/* per tensor, for views */
	swapio_store_op			**ops;		/* per tensor */
	struct pgroup			*groups;
	unsigned int			nr_groups;
	unsigned int			nr_tensors;
	unsigned int			depth;

	/* The pass. */
	bool				active;
	uint64_t			started;	/* reads begun */
	uint64_t			delivered;	/* handed out */
	uint64_t			pass_end;
	unsigned int			held;
	unsigned int			*wq;		/* writing, FIFO */
	unsigned int			wq_head, wq_len;
	int				err;
	struct swapio_pipeline_stats	st;
};

static void set_err(swapio_pipeline *p, int err)
{
	if (err && !p->err)
		p->err = err;
}

static void writes_reap(swapio_pipeline *p, bool all);

static struct pgroup *group_at(const swapio_pipeline *p, uint64_t pos)
{
	return &p->groups[pos % p->nr_groups];
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */
/* ------------------------------------------------------------------ */

/*
 * Start reading the group at position `started` if it is IDLE and a
 * buffer is free; false if not. Never blocks: a group still being
 * written back (passes overlap) waits for next_started().
 */
static bool read_start(swapio_pipeline *p)
{
	struct pgroup *g = group_at(p, p->started);
	void *buf;
	int ret;

	if (g->state == G_WRITING)
		writes_reap(p, false);
	if (g->state != G_IDLE || swapio_pool_get(p->pool, 0, &buf))
		return false;
	g->buf = buf;
	g->state = G_READING;
	g->err = 0;
	p->started++;
	for (unsigned int i = g->first; i < g->first + g->nr; i++) {
		p->bufs[i] = g->buf + p->offs[i];
		ret = swapio_store_submit_get(p->s, p->tensors[i].key,
					      p->bufs[i], p->tensors[i].len,
					      &p->ops[i]);
		/* The group fails when its turn comes, not before. */
		if (ret) {
			if (!g->err)
				g->err = ret;
			p->ops[i] = NULL;
		}
	}
	return true;
}

/* Keep up to depth groups of this pass reading ahead, as buffers allow. */
static void reads_fill(swapio_pipeline *p)
{
	while (!p->err && p->started < p->pass_end &&
	       p->started - p->delivered < p->depth && read_start(p))
		;
}

/* Wait for a group's reads; 0 or the first error. */
static int read_finish(swapio_pipeline *p, struct pgroup *g)
{
	int ret = g->err;

	for (unsigned int i = g->first; i < g->first + g->nr; i++) {
		int64_t r;

		if (!p->ops[i])
			continue;
		r = swapio_store_op_wait(p->ops[i], -1);
		if (r < 0 && !ret)
			ret = (int)r;
		else if (r > 0)
			p->st.bytes_read += (uint64_t)r;
		swapio_store_op_free(p->ops[i]);
		p->ops[i] = NULL;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Write-backs                                                         */
/* ------------------------------------------------------------------ */

static bool group_written(const swapio_pipeline *p, const struct pgroup *g)
{
	for (unsigned int i = g->first; i < g->first + g->nr; i++)
		if (p->ops[i] && !swapio_store_op_done(p->ops[i]))
			return false;
	return true;
}

/* Commit the oldest write-back and free its buffer. */
static void write_reap_one(swapio_pipeline *p)
{
	struct pgroup *g = &p->groups[p->wq[p->wq_head]];

	for (unsigned int i = g->first; i < g->first + g->nr; i++) {
		int64_t r;

		if (!p->ops[i])
			continue;
		r = swapio_store_op_wait(p->ops[i], -1);
		if (r < 0)
			set_err(p, (int)r);
		else
			p->st.bytes_written += (uint64_t)r;
		swapio_store_op_free(p->ops[i]);
		p->ops[i] = NULL;
	}
	g->state = G_IDLE;
	(void)swapio_pool_put(p->pool, g->buf);
	g->buf = NULL;
	p->wq_head = (p->wq_head + 1) % p->nr_groups;
	p->wq_len--;
}

/* Reap finished write-backs, oldest first; with @all, wait for all. */
static void writes_reap(swapio_pipeline *p, bool all)
{
	while (p->wq_len &&
	       (all || group_written(p, &p->groups[p->wq[p->wq_head]])))
		write_reap_one(p);
}

static int write_start(swapio_pipeline *p, struct pgroup *g)
{
	int ret, first = 0;

	for (unsigned int i = g->first; i < g->first + g->nr; i++) {
		p->ops[i] = NULL;
		if (p->tensors[i].flags & SWAPIO_PIPELINE_READ_ONLY)
			continue;
		ret = swapio_store_submit_put(p->s, p->tensors[i].key,
					      p->bufs[i], p->tensors[i].len,
					      &p->ops[i]);
		if (ret && !first)
			first = ret;
		if (ret)
			p->ops[i] = NULL;
	}
	g->state = G_WRITING;
	p->wq[(p->wq_head + p->wq_len) % p->nr_groups] =
		(unsigned int)(g - p->groups);
	p->wq_len++;
	set_err(p, first);
	return first;
}

/* ------------------------------------------------------------------ */
/* The pass                                                            */
/* ------------------------------------------------------------------ */

/* A group whose reads failed or are not wanted goes back to the pool. */
static void group_drop(swapio_pipeline *p, struct pgroup *g)
{
	g->state = G_IDLE;
	(void)swapio_pool_put(p->pool, g->buf);
	g->buf = NULL;
}

/* Wait for the reads begun and not handed out, and drop them. */
static void reads_drop(swapio_pipeline *p)
{
	while (p->started > p->delivered) {
		struct pgroup *g = group_at(p, --p->started);

		(void)read_finish(p, g);
		group_drop(p, g);
	}
}

/*
 * After an error: wait for everything in flight and end the pass. The
 * groups not handed out are skipped, so the next pass starts at group 0.
 */
static void pass_drain(swapio_pipeline *p)
{
	reads_drop(p);
	writes_reap(p, true);
	p->delivered = p->started = p->pass_end;
}

/*
 * Make sure the next group's reads have begun. The group may still be
 * being written back (from the last pass), or no buffer is free: either
 * way the oldest write-back finishing helps. With none in flight, the
 * caller holds every buffer, or the very group it asks for.
 */
static int next_started(swapio_pipeline *p)
{
	while (p->started == p->delivered) {
		if (!p->wq_len)
			return -EDEADLK;
		write_reap_one(p);
		reads_fill(p);
		if (p->err)
			return p->err;
	}
	return 0;
}

/*
 * The pass is over once every group was handed out and given back; the
 * last write-backs go on into the next pass (or flush()), so that its
 * first reads overlap them.
 */
static int pass_end(swapio_pipeline *p)
{
	if (p->held)
		return -EBUSY;
	p->active = false;
	return 0;
}

static int pass_fail(swapio_pipeline *p)
{
	int ret = p->err;

	pass_drain(p);
	p->err = 0;
	p->active = false;
	return ret;
}

int swapio_pipeline_next(swapio_pipeline *p, struct swapio_pipeline_view *out)
{
	struct pgroup *g;
	uint64_t t0;
	int ret;

	if (!p || !out)
		return -EINVAL;
	if (!p->active)
		return 0;
	if (!p->err && p->delivered == p->pass_end)
		return pass_end(p);
	t0 = swapio__now_ns();
	if (!p->err) {
		writes_reap(p, false);
		reads_fill(p);
		ret = next_started(p);
		if (ret == -EDEADLK)	/* not fatal: release one, call again */
			return ret;
		set_err(p, ret);
	}
	if (p->err)
		return pass_fail(p);
	g = group_at(p, p->delivered++);
	ret = read_finish(p, g);
	p->st.stall_ns += swapio__now_ns() - t0;
	if (ret) {
		group_drop(p, g);
		set_err(p, ret);
		return pass_fail(p);
	}
	g->state = G_HELD;
	p->held++;
	reads_fill(p);
	out->group = (unsigned int)(g - p->groups);
	out->nr_tensors = g->nr;
	out->bufs = &p->bufs[g->first];
	out->tensors = &p->tensors[g->first];
	return 1;
}

static bool group_writable(const swapio_pipeline *p, const struct pgroup *g)
{
	for (unsigned int i = g->first; i < g->first + g->nr; i++)
		if (!(p->tensors[i].flags & SWAPIO_PIPELINE_READ_ONLY))
			return true;
	return false;
}

int swapio_pipeline_release(swapio_pipeline *p, unsigned int group,
			    int write_back)
{
	struct pgroup *g;
	int ret = 0;

	if (!p || group >= p->nr_groups || p->groups[group].state != G_HELD)
		return -EINVAL;
	g = &p->groups[group];
	p->held--;
	if (write_back && group_writable(p, g))
		ret = write_start(p, g);
	else
		group_drop(p, g);
	/* Start the next reads now, not at the next call. */
	if (p->active && !p->err) {
		writes_reap(p, false);
		reads_fill(p);
	}
	return ret;
}

int swapio_pipeline_begin(swapio_pipeline *p)
{
	int ret;

	if (!p)
		return -EINVAL;
	if (p->active || p->held)
		return -EBUSY;
	/* A late write-back of the last pass that failed is reported here. */
	writes_reap(p, false);
	if (p->err) {
		ret = p->err;
		p->err = 0;
		return ret;
	}
	memset(&p->st, 0, sizeof(p->st));
	p->pass_end = p->delivered + p->nr_groups;
	p->active = true;
	reads_fill(p);
	return 0;
}

int swapio_pipeline_cancel(swapio_pipeline *p)
{
	if (!p)
		return -EINVAL;
	if (p->held)
		return -EBUSY;
	if (!p->active)
		return 0;
	reads_drop(p);
	p->delivered = p->started = p->pass_end;
	p->active = false;
	return 0;
}

int swapio_pipeline_flush(swapio_pipeline *p)
{
	int ret;

	if (!p)
		return -EINVAL;
	writes_reap(p, true);
	ret = p->err;
	/* In a pass, the error also ends it at the next next(). */
	if (!p->active)
		p->err = 0;
	return ret;
}

void swapio_pipeline_stats(const swapio_pipeline *p,
			   struct swapio_pipeline_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	*out = p->st;
	out->buf_bytes = swapio_pool_buf_size(p->pool);
	out->buffers = swapio_pool_count(p->pool);
	out->depth = p->depth;
	out->locked = (uint32_t)swapio_pool_locked(p->pool);
}

/* ------------------------------------------------------------------ */
/* Life                                                                */
/* ------------------------------------------------------------------ */

void swapio_pipeline_destroy(swapio_pipeline *p)
{
	if (!p)
		return;
	if (p->active)
		pass_drain(p);
	writes_reap(p, true);
	swapio_pool_destroy(p->pool);
	for (unsigned int i = 0; p->tensors && i < p->nr_tensors; i++)
		free((char *)p->tensors[i].key);
	free(p->tensors);
	free(p->offs);
	free(p->bufs);
	free(p->ops);
	free(p->groups);
	free(p->wq);
	free(p);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A key in two groups would be read ahead before the earlier group's
 * write-back of it, and that update lost: refuse it. Sorted copy, O(n log n).
 */
static int keys_unique(const struct swapio_pipeline_group *groups,
		       unsigned int nr_groups, uint64_t n)
{
	const char **v = malloc(n * sizeof(*v));
	size_t k = 0;
	int ret = 0;

	if (!v)
		return -ENOMEM;
	for (unsigned int i = 0; i < nr_groups; i++)
		for (unsigned int j = 0; j < groups[i].nr_tensors; j++)
			v[k++] = groups[i].tensors[j].key;
	qsort(v, k, sizeof(*v), key_cmp);
	for (size_t i = 1; i < k && !ret; i++)
		if (!strcmp(v[i - 1], v[i]))
			ret = -EINVAL;
	free(v);
	return ret;
}

static int check_groups(const struct swapio_pipeline_group *groups,
			unsigned int nr_groups, unsigned int *nr_tensors)
{
	uint64_t n = 0;

	if (!groups || !nr_groups)
		return -EINVAL;
	for (unsigned int i = 0; i < nr_groups; i++) {
		const struct swapio_pipeline_group *g = &groups[i];

		if (!g->tensors || !g->nr_tensors)
			return -EINVAL;
		for (unsigned int j = 0; j < g->nr_tensors; j++)
			if (!g->tensors[j].key || !g->tensors[j].len ||
			    g->tensors[j].reserved ||
			    (g->tensors[j].flags & ~SWAPIO_PIPELINE_READ_ONLY) ||
			    g->tensors[j].len > (1ull << 48))
				return -EINVAL;
		n += g->nr_tensors;
	}
	if (n > UINT32_MAX / 2 || keys_unique(groups, nr_groups, n))
		return -EINVAL;
	*nr_tensors = (unsigned int)n;
	return 0;
}

static int alloc_arrays(swapio_pipeline *p)
{
	p->tensors = calloc(p->nr_tensors, sizeof(*p->tensors));
	p->offs = calloc(p->nr_tensors, sizeof(*p->offs));
	p->bufs = calloc(p->nr_tensors, sizeof(*p->bufs));
	p->ops = calloc(p->nr_tensors, sizeof(*p->ops));
	p->groups = calloc(p->nr_groups, sizeof(*p->groups));
	p->wq = calloc(p->nr_groups, sizeof(*p->wq));
	if (!p->tensors || !p->offs || !p->bufs || !p->ops || !p->groups ||
	    !p->wq)
		return -ENOMEM;
	return 0;
}

/* Copy the groups, pack each into a buffer; the largest group's size. */
static int copy_groups(swapio_pipeline *p,
		       const struct swapio_pipeline_group *groups,
		       uint64_t *largest)
{
	unsigned int t = 0;

	*largest = 0;
	for (unsigned int i = 0; i < p->nr_groups; i++) {
		struct pgroup *g = &p->groups[i];
		uint64_t off = 0;

		g->first = t;
		g->nr = groups[i].nr_tensors;
		for (unsigned int j = 0; j < g->nr; j++, t++) {
			p->tensors[t] = groups[i].tensors[j];
			p->tensors[t].key = strdup(groups[i].tensors[j].key);
			if (!p->tensors[t].key)
				return -ENOMEM;
			p->offs[t] = off;
			off += (p->tensors[t].len + TENSOR_ALIGN - 1) /
			       TENSOR_ALIGN * TENSOR_ALIGN;
		}
		g->bytes = off;
		if (off > *largest)
			*largest = off;
	}
	return 0;
}

/* Buffers: as many as the budget holds, no more than there are groups. */
static int make_pool(swapio_pipeline *p, const struct swapio_pipeline_config *c,
		     uint64_t buf_bytes)
{
	uint64_t budget = c->budget_bytes ? c->budget_bytes : 4 * buf_bytes;
	uint64_t count = budget / buf_bytes;

	if (!count)
		return -EINVAL;
	if (count > p->nr_groups)
		count = p->nr_groups;
	p->depth = c->depth ? c->depth : (unsigned int)(count > 1 ? count - 1 :
							1);
	if (p->depth > count)
		p->depth = (unsigned int)count;
	return swapio_pool_create((size_t)buf_bytes, (unsigned int)count,
				  c->buf_flags, &p->pool);
}

int swapio_pipeline_create(swapio_store *s,
			   const struct swapio_pipeline_group *groups,
			   unsigned int nr_groups,
			   const struct swapio_pipeline_config *cfg,
			   swapio_pipeline **out)
{
	const struct swapio_pipeline_config none = { 0 };
	const struct swapio_pipeline_config *c = cfg ? cfg : &none;
	swapio_pipeline *p;
	uint64_t largest;
	unsigned int nt;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s || check_groups(groups, nr_groups, &nt))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]);
	     i++)
		if (c->reserved[i])
			return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	p->nr_groups = nr_groups;
	p->nr_tensors = nt;
	ret = alloc_arrays(p);
	if (!ret)
		ret = copy_groups(p, groups, &largest);
	if (!ret)
		ret = make_pool(p, c, largest);
	if (ret) {
		swapio_pipeline_destroy(p);
		return ret;
	}
	*out = p;
	return 0;
}
