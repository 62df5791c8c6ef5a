/* SPDX-License-Identifier: MIT */
/*
 * Free space of the data file: a sorted list of disjoint free ranges, and
 * growth of the file when none fits. Callers hold s->lock (or own the
 * store alone, at open). The list functions work on a bare struct
 * freelist, so tests/store/test_store_space.c drives them directly.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

static int fl_reserve(struct freelist *fl, size_t n)
{
	struct fext *v;
	size_t cap;

	if (fl->n + n <= fl->cap)
		return 0;
	cap = fl->cap ? fl->cap * 2 : 16;
	while (cap < fl->n + n)
		cap *= 2;
	v = realloc(fl->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	fl->v = v;
	fl->cap = cap;
	return 0;
}

/* Index of the first range starting after @off. */
static size_t fl_after(const struct freelist *fl, uint64_t off)
{
	size_t lo = 0, hi = fl->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (fl->v[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void fl_remove(struct freelist *fl, size_t i)
{
	memmove(&fl->v[i], &fl->v[i + 1], (fl->n - i - 1) * sizeof(*fl->v));
	fl->n--;
}

/* Give [off, off+len) back, merging with its neighbours. */
int swapio__fl_insert(struct freelist *fl, uint64_t off, uint64_t len)
{
	size_t i = fl_after(fl, off);
	struct fext *prev = i ? &fl->v[i - 1] : NULL;
	struct fext *next = i < fl->n ? &fl->v[i] : NULL;
	bool join_prev = prev && prev->off + prev->len == off;
	bool join_next = next && off + len == next->off;

	assert(!prev || prev->off + prev->len <= off);
	assert(!next || off + len <= next->off);
	if (!len)
		return 0;
	if (join_prev && join_next) {
		prev->len += len + next->len;
		fl_remove(fl, i);
	} else if (join_prev) {
		prev->len += len;
	} else if (join_next) {
		next->off = off;
		next->len += len;
	} else {
		if (fl_reserve(fl, 1))
			return -ENOMEM;
		memmove(&fl->v[i + 1], &fl->v[i], (fl->n - i) * sizeof(*next));
		fl->v[i] = (struct fext){ .off = off, .len = len };
		fl->n++;
	}
	return 0;
}

/*
 * First fit: the lowest offset, which keeps live data packed towards the
 * start. Nothing shrinks the file or punches holes today: free space
 * stays allocated to the store, ready for the next put.
 */
int swapio__fl_take(struct freelist *fl, uint64_t len, uint64_t *off)
{
	for (size_t i = 0; i < fl->n; i++) {
		struct fext *f = &fl->v[i];

		if (f->len < len)
			continue;
		*off = f->off;
		f->off += len;
		f->len -= len;
		if (!f->len)
			fl_remove(fl, i);
		return 0;
	}
	return -ENOSPC;
}

/*
 * First fit within one stripe unit of drive @d (of @nr, units of @unit
 * bytes): the lowest free [off, off+len) that lies in a single unit
 * k with k % nr == d. Each free range needs at most two looks: its first
 * unit of that drive, and the next one if the first is cut short.
 */
int swapio__fl_take_unit(struct freelist *fl, uint64_t len, uint64_t unit,
			 unsigned int nr, unsigned int d, uint64_t *off)
{
	assert(len && len <= unit && d < nr);
	for (size_t i = 0; i < fl->n; i++) {
		const uint64_t a = fl->v[i].off, b = a + fl->v[i].len;
		uint64_t k = a / unit;

		k += (d + nr - k % nr) % nr;	/* the first of drive d */
		for (; k * unit < b; k += nr) {
			uint64_t lo = SWAPIO_MAX(a, k * unit);
			uint64_t hi = SWAPIO_MIN(b, (k + 1) * unit);

			if (hi - lo >= len) {
				*off = lo;
				return swapio__fl_claim(fl, lo, len);
			}
			if (hi == b)
				break;
		}
	}
	return -ENOSPC;
}

/* Take exactly [off, off+len), which must be free: replay's allocation. */
int swapio__fl_claim(struct freelist *fl, uint64_t off, uint64_t len)
{
	size_t i = fl_after(fl, off);
	struct fext *f;
	uint64_t end;

	if (!i || !len)
		return SWAPIO_EBADSTORE;
	f = &fl->v[i - 1];
	end = f->off + f->len;
	/* Written to not overflow: @off and @len come from the disk. */
	if (off >= end || len > end - off)
		return SWAPIO_EBADSTORE;	/* overlaps a live extent */
	if (f->off == off) {
		f->off += len;
		f->len -= len;
		if (!f->len)
			fl_remove(fl, i - 1);
		return 0;
	}
	f->len = off - f->off;
	return off + len < end ?
	       swapio__fl_insert(fl, off + len, end - off - len) : 0;
}

uint64_t swapio__fl_free_bytes(const struct freelist *fl)
{
	uint64_t n = 0;

	for (size_t i = 0; i < fl->n; i++)
		n += fl->v[i].len;
	return n;
}

/* Free space is the whole data file until replay claims extents. */
int swapio__space_init(swapio_store *s)
{
	s->fl.n = 0;
	/* An unaligned tail (never written by us) is left out of use. */
	s->data_size -= s->data_size % grain(s);
	return s->data_size ? swapio__fl_insert(&s->fl, 0, s->data_size) : 0;
}

/*
 * Make the data file larger by at least @need bytes beyond the free space
 * at its end. Allocated, so that O_DIRECT writes land on allocated
 * extents and ENOSPC surfaces here rather than in the middle of a put
 * (swapio_file_allocate() falls back to a plain size change where the
 * filesystem has no fallocate).
 */
static int data_grow(swapio_store *s, uint64_t need)
{
	const struct fext *last = s->fl.n ? &s->fl.v[s->fl.n - 1] : NULL;
	uint64_t old = s->data_size, want, step;
	int ret;

	if (last && last->off + last->len == old)
		need -= last->len;
	want = SWAPIO_ALIGN_UP(need, grain(s));
	step = SWAPIO_ALIGN_UP(SWAPIO_MAX(want, s->grow), grain(s));
	ret = swapio__data_allocate(s, old, step);
	/* The step may be too greedy for a nearly full filesystem. */
	if (ret == -ENOSPC && step > want) {
		step = want;
		ret = swapio__data_allocate(s, old, step);
	}
	if (ret)
		return ret;
	s->data_size = old + step;
	return swapio__fl_insert(&s->fl, old, step);
}

/*
 * Striped, an extent that fits in a unit goes in one unit, on the drives
 * in turn: the drives fill evenly, a value touches one drive only, and
 * when a drive fails the next put goes to another one instead of back
 * into the space the failed put gave up. Larger extents take the first
 * fit and so span the drives.
 */
static int space_take(swapio_store *s, uint64_t len, uint64_t *off)
{
	const unsigned int nr = s->nr_drives;

	if (nr > 1 && len <= s->unit) {
		const unsigned int d0 = s->rotor++ % nr;

		for (unsigned int i = 0; i < nr; i++)
			if (!swapio__fl_take_unit(&s->fl, len, s->unit, nr,
						  (d0 + i) % nr, off))
				return 0;
	}
	return swapio__fl_take(&s->fl, len, off);
}

int swapio__space_alloc(swapio_store *s, uint64_t len, uint64_t *off)
{
	int ret = space_take(s, len, off);

	if (ret != -ENOSPC || s->capacity)
		return ret;
	ret = data_grow(s, len);
	return ret ? ret : space_take(s, len, off);
}

void swapio__space_free(swapio_store *s, uint64_t off, uint64_t len)
{
	/* Out of memory here leaks the extent until the next open. */
	(void)swapio__fl_insert(&s->fl, off, len);
}

/* A fixed capacity is allocated in full, now. */
int swapio__space_capacity(swapio_store *s, uint64_t capacity)
{
	uint64_t old = s->data_size;
	int ret;

	/* Striped: whole rows, rounded up, so a small capacity is not 0. */
	if (s->nr_drives > 1)
		capacity = SWAPIO_ALIGN_UP(capacity, grain(s));
	capacity -= capacity % grain(s);
	if (capacity <= old) {
		s->capacity = old;
		return 0;
	}
	ret = swapio__data_allocate(s, old, capacity - old);
	if (ret)
		return ret;
	s->data_size = s->capacity = capacity;
	return swapio__fl_insert(&s->fl, old, capacity - old);
}
