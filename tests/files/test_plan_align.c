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

/* Plan every request of @p; check each and that they tile the part. */
static void plan_part(struct swapio_worker *w, const swapio_file *f,
		      struct swapio_part *p, unsigned char *mem,
		      uint64_t off)
{
	uint64_t pos = p->pos;

	while (p->pos < p->end) {
		struct swapio_req rq = { 0 };

		assert_int_equal(swapio__plan_next(w, p, &rq), 0);
		assert_int_equal(rq.off, pos);
		assert_true(rq.len > 0);
		if (rq.fd == f->fd) {
			assert_int_equal(rq.off % ALIGN, 0);
			assert_int_equal(rq.len % ALIGN, 0);
			assert_int_equal((uintptr_t)rq.buf % f->mem_align, 0);
			/* Bounced or not, these are the user's bytes. */
			assert_ptr_equal(rq.user ? rq.user : rq.buf,
					 mem + (rq.off - off));
			if (rq.user)
				assert_memory_equal(rq.buf, rq.user, rq.len);
		} else {
			assert_int_equal(rq.fd, f->bfd);
			assert_ptr_equal(rq.buf, mem + (rq.off - off));
		}
		pos += rq.len;
		swapio__bounce_free(&rq);
	}
	assert_int_equal(pos, p->end);
}

static void plan_case(const struct pa_case *c)
{
	struct swapio_handle h = { .cfg = { .threads = 3 } };
	swapio_file f = { .h = &h, .fd = FD, .bfd = BFD, .direct = true,
			  .mem_align = 512, .off_align = ALIGN,
			  .edge_align = ALIGN };
	struct swapio_worker w = { .h = &h };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(block_below_alignment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
