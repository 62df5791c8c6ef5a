/* SPDX-License-Identifier: MIT */
/*
 * Transfer planning: an op becomes parts (one per worker), and a part
 * becomes block requests, the way DeepSpeed's io_prep_generator walks a
 * transfer. With O_DIRECT a request must have its file offset and length
 * on the file's offset alignment and its memory on the memory alignment.
 * So, in file order:
 *
 *   head  [pos, next edge boundary)  buffered twin fd, user memory
 *   body  whole edge units           direct; bounced if memory is unaligned
 *                                    (or always: SWAPIO_CFG_BOUNCE)
 *   tail  [last edge boundary, end)  buffered twin fd, user memory
 *
 * Edges are whole pages (see file.c), so the caller never sees EINVAL for
 * an odd size, offset or buffer.
 *
 * A write may have a prefix (swapio__submit_write_pre(): the store's
 * header block): aligned memory for the aligned bytes just before the
 * op's first. Part 0 carries it, and it goes with that part's first body
 * request, which becomes two segments; before a head or tail it goes
 * alone, direct.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/*
 * The body is the run of whole edge units inside the part; what lies
 * before it is the head, what lies after it the tail. Without O_DIRECT the
 * whole part is body.
 */
static void part_bounds(const swapio_file *f, struct swapio_part *p)
{
	const uint64_t e = f->edge_align;

	p->body = p->pos;
	p->tail = p->end;
	if (!f->direct)
		return;
	p->body = SWAPIO_MIN(SWAPIO_ALIGN_UP(p->pos, e), p->end);
	p->tail = SWAPIO_MAX(SWAPIO_ALIGN_DOWN(p->end, e), p->body);
}

/*
 * The request size for @f: block_size, rounded up to whole edge units. A
 * device whose logical block is larger than block_size (16 KiB sectors
 * and 4 KiB blocks) would otherwise get misaligned direct requests. A
 * direct request is also kept within what the device takes unsplit from
 * scattered 4 KiB pages (file.c): 1 MiB becomes 1016 KiB on a queue of
 * 254 segments.
 */
static uint64_t file_block(const swapio_handle *h, const swapio_file *f)
{
	const uint64_t e = f->edge_align;
	uint64_t bs = SWAPIO_ALIGN_UP(h->cfg.block_size, e);

	if (f->direct && f->unsplit >= e && bs > f->unsplit)
		bs = SWAPIO_ALIGN_DOWN((uint64_t)f->unsplit, e);
	return bs;
}

/*
 * Cut [off, off + len) into at most nr_workers contiguous parts whose
 * inner boundaries fall on file_block() multiples of the file offset, so
 * that every part but the first starts aligned. Returns the part count.
 */
unsigned int swapio__split(const swapio_handle *h, struct swapio_op *op,
			   unsigned char *mem, size_t len, uint64_t off)
{
	const uint64_t bs = file_block(h, op->f);
	const uint64_t end = off + len;
	uint64_t nr_blocks = (len + bs - 1) / bs;
	uint64_t n = SWAPIO_MIN((uint64_t)h->cfg.threads, nr_blocks);
	uint64_t chunk, pos = off;
	unsigned int nr = 0;

	if (n == 0)
		n = 1;
	chunk = SWAPIO_ALIGN_UP((len + n - 1) / n, bs);
	for (uint64_t i = 0; i < n && (pos < end || nr == 0); i++) {
		uint64_t cut = i == n - 1 ? end :
			       SWAPIO_ALIGN_DOWN(off + (i + 1) * chunk, bs);
		struct swapio_part *p = &op->parts[nr];

		if (cut > end)
			cut = end;
		if (cut <= pos && len)
			continue;
		p->op = op;
		p->next = NULL;
		p->pos = pos;
		p->end = cut;
		part_bounds(op->f, p);
		p->mem = mem + (pos - off);
		/* Under SWAPIO_CFG_BOUNCE a direct body is bounced from any
		 * memory but swapio's own locked buffers: one lookup a part. */
		p->bounce_all = (h->cfg.flags & SWAPIO_CFG_BOUNCE) &&
				op->f->direct &&
				!swapio__reg_holds(p->mem, cut - pos);
		p->pre = NULL;
		p->pre_len = 0;
		p->reqs_out = 0;
		nr++;
		pos = cut;
	}
	assert(pos == end && nr >= 1);
	return nr;
}

/*
 * Bounce memory. A worker maps one arena of queue_depth blocks the first
 * time a request of it needs bouncing, and each request slot keeps its
 * block; pages are faulted in as slots are used. The arena is 2 MiB
 * aligned and advised onto transparent huge pages: a direct request from
 * huge pages is a few segments where 4 KiB pages give one a page, and a
 * device with a short segment list (a virtio disk takes 254) moves the
 * first markedly faster. It is not copied into a child of fork(). A file
 * whose requests are larger than the arena's blocks (edge units over the
 * block size) gets a block of its own for each slot that needs one.
 */
/* @len bytes (a multiple of HPAGE_SIZE): huge pages, not forked. */
static unsigned char *bounce_map(size_t len)
{
	unsigned char *p = swapio__map_huge(len);

	if (p)
		(void)madvise(p, len, MADV_DONTFORK);
	return p;
}

static size_t arena_len(const struct swapio_worker *w)
{
	return SWAPIO_ALIGN_UP(w->bounce_size * w->h->cfg.queue_depth,
			       (size_t)HPAGE_SIZE);
}

static bool in_arena(const struct swapio_worker *w, const unsigned char *p)
{
	return w->bounce && p >= w->bounce && p < w->bounce + arena_len(w);
}

/* A bounce block of at least @len bytes for @rq's slot. */
static int bounce_block(struct swapio_worker *w, struct swapio_req *rq,
			size_t len)
{
	size_t own;

	if (rq->bounce && rq->bounce_len >= len)
		return 0;
	if (!w->bounce_size) {
		w->bounce_size = SWAPIO_MAX(len, SWAPIO_ALIGN_UP(
			(size_t)w->h->cfg.block_size,
			(size_t)sysconf(_SC_PAGESIZE)));
		w->bounce = bounce_map(arena_len(w));
	}
	if (rq->bounce && !in_arena(w, rq->bounce))
		munmap(rq->bounce, rq->bounce_len);
	rq->bounce = NULL;
	rq->bounce_len = 0;
	if (w->bounce && len <= w->bounce_size) {
		rq->bounce = w->bounce + (size_t)(rq - w->reqs) *
					 w->bounce_size;
		rq->bounce_len = w->bounce_size;
		return 0;
	}
	own = SWAPIO_ALIGN_UP(len, (size_t)HPAGE_SIZE);
	rq->bounce = bounce_map(own);
	if (!rq->bounce)
		return -ENOMEM;
	rq->bounce_len = own;
	return 0;
}

void swapio__bounce_free(struct swapio_worker *w)
{
	for (unsigned int j = 0; w->reqs && j < w->h->cfg.queue_depth; j++) {
		struct swapio_req *rq = &w->reqs[j];

		if (rq->bounce && !in_arena(w, rq->bounce))
			munmap(rq->bounce, rq->bounce_len);
		rq->bounce = NULL;
		rq->bounce_len = 0;
	}
	if (w->bounce)
		munmap(w->bounce, arena_len(w));
	w->bounce = NULL;
	w->bounce_size = 0;
}

/*
 * Fill @rq with the next request of part @p and advance the part.
 * Returns 0, or -ENOMEM when a needed bounce block cannot be allocated.
 */
int swapio__plan_next(struct swapio_worker *w, struct swapio_part *p,
		      struct swapio_req *rq)
{
	const swapio_file *f = p->op->f;
	const uint64_t bs = file_block(w->h, f);
	uint64_t left = p->end - p->pos;
	size_t n;

	assert(left > 0);
	rq->part = p;
	rq->write = p->op->write;
	rq->off = p->pos;
	rq->buf = p->mem;
	rq->pre = NULL;
	rq->pre_len = 0;
	rq->user = NULL;
	rq->done = 0;
	rq->retries = 0;
	rq->fd = f->fd;
	rq->direct = f->direct;

	if (p->pre_len && !(p->pos >= p->body && p->pos < p->tail)) {
		/* A prefix before a head or tail: a request of its own. */
		rq->off = p->pos - p->pre_len;
		rq->buf = NULL;
		rq->pre = p->pre;
		rq->len = rq->pre_len = p->pre_len;
		p->pre_len = 0;
		p->reqs_out++;
		return 0;
	}
	if (p->pos < p->body) {
		/* Head: up to the first page boundary, through the cache. */
		n = p->body - p->pos;
		rq->fd = f->bfd;
		rq->direct = false;
	} else if (p->pos >= p->tail) {
		/* Tail: what is left after the last page boundary. */
		n = left;
		rq->fd = f->bfd;
		rq->direct = false;
	} else {
		/* Body: whole pages, direct when the file is; with a
		 * prefix, the two together within one request's size. */
		n = SWAPIO_MIN(bs, p->tail - p->pos);
		if (p->pre_len && n + p->pre_len > bs &&
		    bs >= p->pre_len + f->edge_align)
			n = SWAPIO_ALIGN_DOWN(bs - p->pre_len,
					      (uint64_t)f->edge_align);
		if ((uintptr_t)p->mem % f->mem_align || p->bounce_all) {
			int ret = bounce_block(w, rq, bs);

			if (ret)
				return ret;
			rq->user = p->mem;
			rq->buf = rq->bounce;
			if (rq->write)
				memcpy(rq->buf, rq->user, n);
		}
	}
	rq->len = n;
	if (p->pre_len) {
		/* The prefix goes with the first body request, one write. */
		rq->off -= p->pre_len;
		rq->pre = p->pre;
		rq->pre_len = p->pre_len;
		rq->len += p->pre_len;
		p->pre_len = 0;
	}
	p->pos += n;
	p->mem += n;
	p->reqs_out++;
	return 0;
}
