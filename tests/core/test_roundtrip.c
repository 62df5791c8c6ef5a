/* SPDX-License-Identifier: MIT */
/*
 * Round trips: random data written with swapio and read back byte for byte,
 * through swapio and through plain read(2), over the matrix of sizes,
 * offsets, buffer alignments, direct/buffered, threads, queue depths, block
 * sizes and submission flags. Also: exact file sizes (no padding), reads
 * that cross or start past the end of the file, overwrites in the middle
 * of a file, and the path-based calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <dirent.h>
#include <cmocka.h>

#include "testing.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)
#define GUARD		64	/* bytes checked on each side of a buffer */
#define GUARD_BYTE	0x5a

struct rt_cfg {
	uint64_t	block_size;
	uint32_t	queue_depth;
	uint32_t	threads;
	uint32_t	flags;
};

static swapio_handle *rt_handle(const struct rt_cfg *rc)
{
	struct swapio_config cfg = {
		.block_size = rc->block_size,
		.queue_depth = rc->queue_depth,
		.threads = rc->threads,
		.flags = rc->flags,
	};

	return t_handle(cfg);
}

static swapio_file *rt_open(swapio_handle *h, const char *path,
			    unsigned int flags)
{
	swapio_file *f;

	assert_int_equal(swapio_file_open(h, path, flags, &f), 0);
	assert_non_null(f);
	return f;
}

/*
 * A buffer of @n bytes at @misalign bytes past a page boundary, with GUARD
 * bytes of GUARD_BYTE on each side. Returns the usable pointer; *@base is
 * what to free().
 */
static unsigned char *guarded(size_t n, size_t misalign, unsigned char **base)
{
	const size_t total = 4096 + misalign + n + GUARD;
	unsigned char *b = t_page_alloc(total, 0);

	memset(b, GUARD_BYTE, total);
	*base = b;
	return b + 4096 + misalign;
}

static void check_guards(const unsigned char *p, size_t n)
{
	for (size_t i = 1; i <= GUARD; i++)
		assert_int_equal(p[-(ptrdiff_t)i], GUARD_BYTE);
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(p[n + i], GUARD_BYTE);
}

/* The file at @path is exactly @off zero bytes followed by @src[0..n). */
static void check_file(const char *path, const unsigned char *src, size_t n,
		       uint64_t off)
{
	unsigned char *got;
	size_t size;

	got = t_read_file(path, &size);
	assert_int_equal(size, off + n);
	assert_int_equal(t_first_nonzero(got, off), SIZE_MAX);
	assert_int_equal(t_first_diff(got + off, src, n), SIZE_MAX);
	free(got);
}

/*
 * One round trip: truncate, write @n random bytes from memory @misalign
 * bytes off a page boundary to @off, check the file size and contents with
 * plain reads, then read them back with swapio into memory with the same
 * misalignment and check every byte, and that nothing around it moved.
 */
static void roundtrip(swapio_handle *h, const char *path, size_t n,
		      uint64_t off, size_t misalign, uint64_t seed)
{
	unsigned char *sbase, *dbase, *src, *dst;
	swapio_file *f;

	src = guarded(n, misalign, &sbase);
	dst = guarded(n, misalign, &dbase);
	t_fill_random(src, n, seed);
	/* Not GUARD_BYTE, so a read that stops early shows. */
	memset(dst, 0xc3, n);

	f = rt_open(h, path, SWAPIO_O_READ | SWAPIO_O_WRITE |
		    SWAPIO_O_CREATE | SWAPIO_O_TRUNC);
	assert_int_equal(swapio_pwrite(h, f, src, n, off), n);
	assert_int_equal(swapio_file_size(f), off + n);
	check_file(path, src, n, off);
	assert_int_equal(swapio_pread(h, f, dst, n, off), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	check_guards(src, n);
	check_guards(dst, n);
	assert_int_equal(swapio_file_close(f), 0);
	free(sbase);
	free(dbase);
}

/* ------------------------------------------------------------------ */
/* The matrix, with the small sizes                                    */
/* ------------------------------------------------------------------ */

static const size_t small_sizes[] = {
	1, 511, 4096, 4097, 1 * MiB, 1 * MiB + 17,
};
static const uint64_t offsets[] = { 0, 512, 4096 + 7 };
static const size_t misaligns[] = { 0, 1 };
/* 1 MiB, the default, is covered by the other tests. */
static const uint64_t block_sizes[] = { 4 * KiB, 64 * KiB, 8 * MiB };

/*
 * Queue depth and submission flags. At depth 1 there is never more than
 * one request to batch or to submit, so the flags matter at depth 64.
 */
static const struct {
	uint32_t	queue_depth;
	uint32_t	flags;
} submit_modes[] = {
	{ 1, 0 },
	{ 1, SWAPIO_CFG_SINGLE_SUBMIT | SWAPIO_CFG_NO_OVERLAP },
	{ 64, 0 },
	{ 64, SWAPIO_CFG_SINGLE_SUBMIT },
	{ 64, SWAPIO_CFG_NO_OVERLAP },
	{ 64, SWAPIO_CFG_SINGLE_SUBMIT | SWAPIO_CFG_NO_OVERLAP },
};

/* Every size, offset and buffer alignment through one configuration. */
static void matrix_one(struct t_env *env, const struct rt_cfg *rc,
		       uint64_t *seed)
{
	swapio_handle *h = rt_handle(rc);

	for (size_t s = 0; s < T_ARRAY_SIZE(small_sizes); s++) {
		for (size_t o = 0; o < T_ARRAY_SIZE(offsets); o++) {
			for (size_t m = 0; m < T_ARRAY_SIZE(misaligns); m++)
				roundtrip(h, env->path, small_sizes[s],
					  offsets[o], misaligns[m], (*seed)++);
		}
	}
	swapio_handle_destroy(h);
}

static void matrix(struct t_env *env, uint32_t base_flags, uint32_t threads)
{
	uint64_t seed = 1;

	for (size_t b = 0; b < T_ARRAY_SIZE(block_sizes); b++) {
		for (size_t q = 0; q < T_ARRAY_SIZE(submit_modes); q++) {
			const struct rt_cfg rc = {
				.block_size = block_sizes[b],
				.queue_depth = submit_modes[q].queue_depth,
				.threads = threads,
				.flags = base_flags | submit_modes[q].flags,
			};

			matrix_one(env, &rc, &seed);
		}
	}
}

static void matrix_direct_1thread(void **state)
{
	matrix(*state, 0, 1);
}

static void matrix_direct_4threads(void **state)
{
	matrix(*state, 0, 4);
}

static void matrix_buffered_1thread(void **state)
{
	matrix(*state, SWAPIO_CFG_BUFFERED, 1);
}

static void matrix_buffered_4threads(void **state)
{
	matrix(*state, SWAPIO_CFG_BUFFERED, 4);
}

/* Direct I/O really is used on /tmp, or the direct matrix proves little. */
static void direct_is_direct(void **state)
{
	struct t_env *env = *state;
	struct rt_cfg direct = { 0 };
	struct rt_cfg buffered = { .flags = SWAPIO_CFG_BUFFERED };
	swapio_handle *h;
	swapio_file *f;
	uint32_t mem, offa;

	h = rt_handle(&direct);
	f = rt_open(h, env->path, SWAPIO_O_WRITE | SWAPIO_O_CREATE);
	assert_int_equal(swapio_file_direct(f), 1);
	swapio_file_alignment(f, &mem, &offa);
	assert_true(mem >= 1 && mem <= 4096 && !(mem & (mem - 1)));
	assert_true(offa >= 1 && offa <= 4096 && !(offa & (offa - 1)));
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);

	h = rt_handle(&buffered);
	f = rt_open(h, env->path, SWAPIO_O_WRITE);
	assert_int_equal(swapio_file_direct(f), 0);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
}

/* ------------------------------------------------------------------ */
/* 64 MiB + 3, in a few combinations                                   */
/* ------------------------------------------------------------------ */

static void large(void **state)
{
	static const struct {
		struct rt_cfg	rc;
		uint64_t	off;
		size_t		misalign;
	} cases[] = {
		{ { 0, 0, 0, 0 }, 0, 0 },
		{ { 8 * MiB, 64, 4, 0 }, 4096 + 7, 1 },
		{ { 1 * MiB, 1, 1, SWAPIO_CFG_NO_OVERLAP }, 512, 1 },
		{ { 4 * KiB, 64, 4, SWAPIO_CFG_BUFFERED |
				    SWAPIO_CFG_SINGLE_SUBMIT }, 512, 0 },
	};
	const size_t n = 64 * MiB + 3;
	struct t_env *env = *state;

	for (size_t i = 0; i < T_ARRAY_SIZE(cases); i++) {
		swapio_handle *h = rt_handle(&cases[i].rc);

		roundtrip(h, env->path, n, cases[i].off, cases[i].misalign,
			  1000 + i);
		swapio_handle_destroy(h);
	}
}

/* ------------------------------------------------------------------ */
/* Overwrites and the end of the file                                  */
/* ------------------------------------------------------------------ */

static const struct rt_cfg edge_cfgs[] = {
	{ 4 * KiB, 8, 1, 0 },
	{ 1 * MiB, 32, 4, 0 },
	{ 64 * KiB, 1, 1, SWAPIO_CFG_NO_OVERLAP },
	{ 4 * KiB, 64, 4, SWAPIO_CFG_BUFFERED },
	{ 1 * MiB, 32, 1, SWAPIO_CFG_BUFFERED | SWAPIO_CFG_SINGLE_SUBMIT },
};

/* Writing inside a file changes that range and not one byte around it. */
static void overwrite_middle(void **state)
{
	static const struct {
		uint64_t	off;
		size_t		len;
	} ranges[] = {
		{ 4096 + 7, 1 * MiB + 4097 },
		{ 1, 100 },
		{ 3 * MiB - 5, 5 },
		{ 8192, 65536 },
		{ 4095, 2 },
	};
	const size_t size = 3 * MiB;
	struct t_env *env = *state;
	unsigned char *expect, *patch, *got;
	size_t got_size;

	for (size_t c = 0; c < T_ARRAY_SIZE(edge_cfgs); c++) {
		swapio_handle *h = rt_handle(&edge_cfgs[c]);
		swapio_file *f;

		expect = t_random_buf(size, 50 + c);
		t_write_file(env->path, expect, size);
		f = rt_open(h, env->path, SWAPIO_O_READ | SWAPIO_O_WRITE);
		for (size_t r = 0; r < T_ARRAY_SIZE(ranges); r++) {
			patch = t_random_buf(ranges[r].len, 100 * c + r);
			assert_int_equal(swapio_pwrite(h, f, patch + (r & 1),
						       ranges[r].len - (r & 1),
						       ranges[r].off),
					 ranges[r].len - (r & 1));
			memcpy(expect + ranges[r].off, patch + (r & 1),
			       ranges[r].len - (r & 1));
			free(patch);
		}
		assert_int_equal(swapio_file_size(f), size);
		got = t_read_file(env->path, &got_size);
		assert_int_equal(got_size, size);
		assert_int_equal(t_first_diff(got, expect, size), SIZE_MAX);
		/* And swapio reads the same, whole and unaligned. */
		memset(got, 0, size);
		assert_int_equal(swapio_pread(h, f, got + 1, size - 1, 1),
				 size - 1);
		assert_int_equal(t_first_diff(got + 1, expect + 1, size - 1),
				 SIZE_MAX);
		assert_int_equal(swapio_file_close(f), 0);
		swapio_handle_destroy(h);
		free(got);
		free(expect);
	}
}

/*
 * Reads that reach past the end return the bytes up to it, correct; reads
 * at or after the end return 0.
 */
static void read_past_end(void **state)
{
	static const struct {
		uint64_t	off;
		size_t		len;
		size_t		misalign;
	} reads[] = {
		{ 0, 2 * MiB, 0 },
		{ 0, 3 * MiB + 5, 1 },
		{ 4096 + 7, 1 * MiB + 4100, 0 },
		{ 1 * MiB, 1 * MiB, 1 },
		{ 1 * MiB + 4099, 4096, 0 },	/* size - 1: one byte */
		{ 1 * MiB + 4100, 100, 0 },	/* at the end */
		{ 1 * MiB + 4100, 1 * MiB, 1 },
		{ 2 * MiB + 5000, 8192, 0 },	/* after the end */
		{ 0, 0, 0 },
	};
	const size_t size = 1 * MiB + 4097 + 3;
	struct t_env *env = *state;
	unsigned char *data, *base, *dst;

	data = t_random_buf(size, 77);
	t_write_file(env->path, data, size);
	for (size_t c = 0; c < T_ARRAY_SIZE(edge_cfgs); c++) {
		swapio_handle *h = rt_handle(&edge_cfgs[c]);
		swapio_file *f = rt_open(h, env->path, SWAPIO_O_READ);

		for (size_t r = 0; r < T_ARRAY_SIZE(reads); r++) {
			uint64_t off = reads[r].off;
			size_t want = off >= size ? 0 : size - off;

			if (want > reads[r].len)
				want = reads[r].len;
			dst = guarded(reads[r].len, reads[r].misalign, &base);
			memset(dst, 0xc3, reads[r].len);
			assert_int_equal(swapio_pread(h, f, dst, reads[r].len,
						      off), want);
			assert_int_equal(t_first_diff(dst, data + off, want),
					 SIZE_MAX);
			check_guards(dst, reads[r].len);
			free(base);
		}
		assert_int_equal(swapio_file_size(f), size);
		assert_int_equal(swapio_file_close(f), 0);
		swapio_handle_destroy(h);
	}
	free(data);
}

/* ------------------------------------------------------------------ */
/* Path-based calls                                                    */
/* ------------------------------------------------------------------ */

/* A path write creates the file; a path read reads it back. */
static void path_create_and_read(void **state)
{
	const size_t n = 1 * MiB + 17;
	const uint64_t off = 4096 + 7;
	struct t_env *env = *state;
	struct rt_cfg rc = { .block_size = 64 * KiB, .threads = 2 };
	unsigned char *src, *dst;
	swapio_handle *h;

	h = rt_handle(&rc);
	src = t_random_buf(n, 5);
	dst = t_zalloc(n + 1);
	unlink(env->path);
	assert_int_equal(swapio_pwrite_path(h, env->path, src, n, off), n);
	assert_int_equal(swapio_path_size(env->path), off + n);
	check_file(env->path, src, n, off);
	assert_int_equal(swapio_pread_path(h, env->path, dst + 1, n, off), n);
	assert_int_equal(t_first_diff(dst + 1, src, n), SIZE_MAX);
	/* Past the end, a path read is short too. */
	assert_int_equal(swapio_pread_path(h, env->path, dst, n, off + 17),
			 n - 17);
	assert_int_equal(t_first_diff(dst, src + 17, n - 17), SIZE_MAX);
	swapio_handle_destroy(h);
	free(src);
	free(dst);
}

/* A path write keeps what lies before and beyond the range written. */
static void path_keeps_rest(void **state)
{
	const size_t size = 3 * MiB, n = 100000;
	const uint64_t off = 5000;
	struct t_env *env = *state;
	unsigned char *expect, *patch, *got;
	size_t got_size;

	for (size_t c = 0; c < T_ARRAY_SIZE(edge_cfgs); c++) {
		swapio_handle *h = rt_handle(&edge_cfgs[c]);

		expect = t_random_buf(size, 200 + c);
		patch = t_random_buf(n, 300 + c);
		t_write_file(env->path, expect, size);
		assert_int_equal(swapio_pwrite_path(h, env->path, patch, n,
						    off), n);
		memcpy(expect + off, patch, n);
		got = t_read_file(env->path, &got_size);
		assert_int_equal(got_size, size);
		assert_int_equal(t_first_diff(got, expect, size), SIZE_MAX);
		swapio_handle_destroy(h);
		free(got);
		free(patch);
		free(expect);
	}
}

/* Async path ops work, and close their file when they complete. */
static void path_async_no_fd_leak(void **state)
{
	const size_t n = 300000;
	struct t_env *env = *state;
	struct rt_cfg rc = { .block_size = 64 * KiB, .threads = 2 };
	unsigned char *src, *dst;
	swapio_handle *h;
	swapio_op *op;
	int before;

	h = rt_handle(&rc);
	src = t_random_buf(n, 9);
	dst = t_malloc(n);
	unlink(env->path);
	before = t_count_fds();
	for (int i = 0; i < 20; i++) {
		src[0] = (unsigned char)i;
		assert_int_equal(swapio_submit_write_path(h, env->path, src, n,
							  (uint64_t)i * 512,
							  &op), 0);
		assert_non_null(op);
		assert_int_equal(swapio_op_wait(op, -1), n);
		swapio_op_free(op);
		memset(dst, 0, n);
		assert_int_equal(swapio_submit_read_path(h, env->path, dst, n,
							 (uint64_t)i * 512,
							 &op), 0);
		assert_int_equal(swapio_op_wait(op, -1), n);
		assert_int_equal(swapio_op_done(op), 1);
		swapio_op_free(op);
		assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	}
	assert_int_equal(t_count_fds(), before);
	assert_int_equal(swapio_path_size(env->path), 19 * 512 + n);
	swapio_handle_destroy(h);
	free(src);
	free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(direct_is_direct),
		cmocka_unit_test(matrix_direct_1thread),
		cmocka_unit_test(matrix_direct_4threads),
		cmocka_unit_test(matrix_buffered_1thread),
		cmocka_unit_test(matrix_buffered_4threads),
		cmocka_unit_test(large),
		cmocka_unit_test(overwrite_middle),
		cmocka_unit_test(read_past_end),
		cmocka_unit_test(path_create_and_read),
		cmocka_unit_test(path_keeps_rest),
		cmocka_unit_test(path_async_no_fd_leak),
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
