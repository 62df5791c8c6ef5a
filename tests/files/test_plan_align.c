/* SPDX-License-Identifier: MIT */
/*
 * The planner against a file whose direct-I/O alignment exceeds the
 * handle's block_size (a device with 16 KiB logical blocks under 4 KiB
 * blocks, which this machine cannot provide): every direct request must
 * still start, end and sit in memory on that alignment, heads and tails
 * must go to the buffered twin, and the requests must tile the transfer
 * exactly. Drives swapio__split() and swapio__plan_next() directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "internal.h"
#include "testing.h"

#define ALIGN	16384u
#define FD	100	/* never used for I/O here: only compared */
#define BFD	101

struct pa_case {
	uint64_t	off;
	size_t		len;
	size_t		mem_off;	/* misalignment of the user buffer */
	uint64_t	block_size;
};

/* Plan every request of @p in slot 0 of @w; check each and that they tile
 * the part. */
static void plan_part(struct swapio_worker *w, const swapio_file *f,
		      struct swapio_part *p, unsigned char *mem,
		      uint64_t off)
{
	struct swapio_req *rq = &w->reqs[0];
	uint64_t pos = p->pos;

	while (p->pos < p->end) {
		assert_int_equal(swapio__plan_next(w, p, rq), 0);
		assert_int_equal(rq->off, pos);
		assert_true(rq->len > 0);
		if (rq->fd == f->fd) {
			assert_int_equal(rq->off % ALIGN, 0);
			assert_int_equal(rq->len % ALIGN, 0);
			assert_int_equal((uintptr_t)rq->buf % f->mem_align, 0);
			/* Bounced or not, these are the user's bytes. */
			assert_ptr_equal(rq->user ? rq->user : rq->buf,
					 mem + (rq->off - off));
			if (rq->user)
				assert_memory_equal(rq->buf, rq->user, rq->len);
		} else {
			assert_int_equal(rq->fd, f->bfd);
			assert_ptr_equal(rq->buf, mem + (rq->off - off));
		}
		pos += rq->len;
	}
	assert_int_equal(pos, p->end);
}

static void plan_case(const struct pa_case *c)
{
	struct swapio_handle h = { .cfg = { .threads = 3,
					    .queue_depth = 1 } };
	swapio_file f = { .h = &h, .fd = FD, .bfd = BFD, .direct = true,
			  .mem_align = 512, .off_align = ALIGN,
			  .edge_align = ALIGN };
	struct swapio_req slot = { 0 };
	struct swapio_worker w = { .h = &h, .reqs = &slot };
	struct swapio_op *op;
	unsigned char *buf, *mem;
	uint64_t pos = c->off;
	unsigned int nr;

	h.cfg.block_size = c->block_size;
	op = t_zalloc(sizeof(*op) + h.cfg.threads * sizeof(op->parts[0]));
	op->h = &h;
	op->f = &f;
	op->write = true;
	buf = t_page_alloc(c->len, c->mem_off);
	mem = buf + c->mem_off;
	t_fill_random(mem, c->len, c->off);
	nr = swapio__split(&h, op, mem, c->len, c->off);
	for (unsigned int i = 0; i < nr; i++) {
		assert_int_equal(op->parts[i].pos, pos);
		plan_part(&w, &f, &op->parts[i], mem, c->off);
		pos = op->parts[i].end;
	}
	assert_int_equal(pos, c->off + c->len);
	swapio__bounce_free(&w);
	free(buf);
	free(op);
}

static void block_below_alignment(void **state)
{
	static const struct pa_case cases[] = {
		{ 0, 1u << 20, 0, 4096 },
		{ ALIGN, 4 * ALIGN, 0, 4096 },
		{ 4096, 10 * ALIGN + 5, 0, 4096 },
		{ 511, (1u << 20) + 3, 3, 4096 },
		{ 3 * ALIGN - 1, 7 * ALIGN, 1, 8192 },
		{ 0, 1u << 20, 512, 12288 },
		{ 0, 1u << 20, 0, 1u << 20 },
	};

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(cases); i++)
		plan_case(&cases[i]);
}

/*
 * Bounce blocks: each slot of a worker gets its own block of one arena on
 * a 2 MiB boundary (huge-page ready) and keeps it for its next requests;
 * requests larger than the arena's blocks get a block of their own. Every
 * bounced request carries the user's bytes.
 */
static void bounce_blocks(void **state)
{
	enum { QD = 4, MIB = 1u << 20 };
	struct swapio_handle h = { .cfg = { .threads = 1, .queue_depth = QD,
					    .block_size = MIB } };
	swapio_file f = { .h = &h, .fd = FD, .bfd = BFD, .direct = true,
			  .mem_align = 512, .off_align = 4096,
			  .edge_align = 4096 };
	swapio_file wide = f;	/* edge units over the arena's blocks */
	struct swapio_req reqs[QD] = { 0 };
	struct swapio_worker w = { .h = &h, .reqs = reqs };
	const size_t len = 6 * MIB;
	struct swapio_op *op;
	unsigned char *buf, *mem, *arena = NULL;

	(void)state;
	op = t_zalloc(sizeof(*op) + sizeof(op->parts[0]));
	op->h = &h;
	op->write = true;
	buf = t_page_alloc(len, 64);
	mem = buf + 64;		/* every body request is bounced */
	t_fill_random(mem, len, 7);

	op->f = &f;
	assert_int_equal(swapio__split(&h, op, mem, len, 0), 1);
	for (unsigned int i = 0; i < 6; i++) {
		struct swapio_req *rq = &reqs[i % QD];
		unsigned char *had = rq->bounce;

		assert_int_equal(swapio__plan_next(&w, &op->parts[0], rq), 0);
		assert_int_equal(rq->len, MIB);
		assert_ptr_equal(rq->user, mem + (size_t)i * MIB);
		assert_ptr_equal(rq->buf, rq->bounce);
		assert_memory_equal(rq->buf, rq->user, rq->len);
		if (i == 0) {
			arena = rq->bounce;
			assert_int_equal((uintptr_t)arena % (2 * MIB), 0);
		}
		if (i < QD)
			assert_ptr_equal(rq->bounce,
					 arena + (size_t)(i % QD) * MIB);
		else
			assert_ptr_equal(rq->bounce, had);	/* kept */
	}

	/* 3 MiB requests: slot 1 gets a block of its own. */
	wide.edge_align = 3 * MIB;
	wide.off_align = 3 * MIB;
	op->f = &wide;
	assert_int_equal(swapio__split(&h, op, mem, len, 0), 1);
	assert_int_equal(swapio__plan_next(&w, &op->parts[0], &reqs[1]), 0);
	assert_int_equal(reqs[1].len, 3 * MIB);
	assert_true(reqs[1].bounce_len >= 3 * MIB);
	assert_true(reqs[1].bounce + reqs[1].bounce_len <= arena ||
		    reqs[1].bounce >= arena + QD * MIB);
	assert_memory_equal(reqs[1].buf, mem, 3 * MIB);
	assert_ptr_equal(reqs[0].bounce, arena);	/* untouched */

	swapio__bounce_free(&w);
	for (unsigned int i = 0; i < QD; i++)
		assert_null(reqs[i].bounce);
	free(buf);
	free(op);
}

/*
 * SWAPIO_CFG_BOUNCE: every direct body request is bounced, even from
 * aligned memory, but not from swapio's own locked buffers, and nothing is
 * bounced on a buffered file or in a head or tail.
 */
static void bounce_all(void **state)
{
	enum { QD = 4, MIB = 1u << 20 };
	struct swapio_handle h = { .cfg = { .threads = 1, .queue_depth = QD,
					    .block_size = MIB,
					    .flags = SWAPIO_CFG_BOUNCE } };
	swapio_file f = { .h = &h, .fd = FD, .bfd = BFD, .direct = true,
			  .mem_align = 512, .off_align = 4096,
			  .edge_align = 4096 };
	swapio_file buffered = { .h = &h, .fd = FD, .bfd = FD,
				 .mem_align = 1, .off_align = 1,
				 .edge_align = 1 };
	struct swapio_req reqs[QD] = { 0 };
	struct swapio_worker w = { .h = &h, .reqs = reqs };
	const size_t len = 3 * MIB + 4096;
	const uint64_t off = 4096 - 17;	/* a head, a body and a tail */
	struct swapio_op *op;
	unsigned char *buf, *mem;
	size_t direct = 0;

	(void)state;
	op = t_zalloc(sizeof(*op) + sizeof(op->parts[0]));
	op->h = &h;
	op->write = true;
	buf = t_page_alloc(len, 4096);
	mem = buf + off;	/* the body's memory is page aligned */
	t_fill_random(mem, len, 11);

	/* Aligned caller memory: every direct request bounced. */
	op->f = &f;
	assert_int_equal(swapio__split(&h, op, mem, len, off), 1);
	while (op->parts[0].pos < op->parts[0].end) {
		struct swapio_req *rq = &reqs[0];

		assert_int_equal(swapio__plan_next(&w, &op->parts[0], rq), 0);
		if (rq->fd == f.fd) {
			assert_ptr_equal(rq->buf, rq->bounce);
			assert_ptr_equal(rq->user, mem + (rq->off - off));
			assert_memory_equal(rq->buf, rq->user, rq->len);
			direct += rq->len;
		} else {
			assert_null(rq->user);
			assert_ptr_equal(rq->buf, mem + (rq->off - off));
		}
	}
	assert_int_equal(direct, 3 * MIB);

	/* swapio's own locked buffers go direct. */
	swapio__reg_add(mem, len);
	assert_int_equal(swapio__split(&h, op, mem, len, off), 1);
	while (op->parts[0].pos < op->parts[0].end) {
		assert_int_equal(swapio__plan_next(&w, &op->parts[0],
						   &reqs[0]), 0);
		assert_null(reqs[0].user);
	}
	swapio__reg_remove(mem, len);

	/* A buffered file: nothing to bounce for. */
	op->f = &buffered;
	assert_int_equal(swapio__split(&h, op, mem, len, off), 1);
	while (op->parts[0].pos < op->parts[0].end) {
		assert_int_equal(swapio__plan_next(&w, &op->parts[0],
						   &reqs[0]), 0);
		assert_null(reqs[0].user);
		assert_ptr_equal(reqs[0].buf, mem + (reqs[0].off - off));
	}

	swapio__bounce_free(&w);
	free(buf);
	free(op);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(block_below_alignment),
		cmocka_unit_test(bounce_blocks),
		cmocka_unit_test(bounce_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
