/* SPDX-License-Identifier: MIT */
/*
 * Faults injected under real I/O (SWAPIO_FAULT, src/engine_fault.c): every
 * op completes, exactly once, with the injected error or, for EINTR,
 * EAGAIN and short transfers, with the full byte count and the right
 * bytes on disk; stats.retries counts the retries. An engine that fails
 * for good fails what it held and all that follows. Runs once per engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_fault.h"
#include "store_impl.h"	/* swapio__submit_write_pre() */

#define BS	(64u << 10)	/* small blocks: many requests per op */

static struct swapio_config cfg_of(uint32_t threads, uint32_t qd,
				   uint32_t flags)
{
	struct swapio_config cfg = {
		.block_size = BS, .threads = threads, .queue_depth = qd,
		.flags = flags,
	};

	return cfg;
}

/* Write @len random bytes at @off with no faults; returns them. */
static unsigned char *seed_file(const char *path, size_t len, uint64_t off,
				uint64_t seed)
{
	swapio_handle *h = tf_handle(NULL, cfg_of(1, 8, 0));
	swapio_file *f = tf_open(h, path);
	unsigned char *buf = t_random_buf(len, seed);

	assert_int_equal(tf_pwrite(h, f, buf, len, off), len);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	return buf;
}

/* nth=: exactly one request fails, its op reports it, the next op works. */
static void eio_nth(void **state)
{
	struct t_env *env = *state;
	const size_t len = 16 * BS;
	swapio_handle *h = tf_handle("errno=EIO,nth=3", cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(len, 1), *dst = t_zalloc(len);

	assert_int_equal(tf_pwrite(h, f, src, len, 0), -EIO);
	assert_int_equal(swapio__fault_injected(h), 1);
	assert_int_equal(tf_pwrite(h, f, src, len, 0), len);
	assert_int_equal(tf_pread(h, f, dst, len, 0), len);
	assert_memory_equal(src, dst, len);
	assert_int_equal(tf_stats(h).retries, 0);	/* EIO is final */
	swapio_file_close(f);
	swapio_handle_destroy(h);
	tf_check_file(env->path, src, len, 0);
	free(src), free(dst);
}

/* Writes fail with ENOSPC before reaching the disk: old data stays, and
 * reads on the same handle still work. */
static void enospc_writes(void **state)
{
	struct t_env *env = *state;
	const size_t len = 8 * BS + 123;
	unsigned char *old = seed_file(env->path, len, 77, 2);
	unsigned char *src = t_random_buf(len, 3), *dst = t_zalloc(len);
	swapio_handle *h = tf_handle("errno=ENOSPC,dir=write",
				     cfg_of(2, 4, 0));
	swapio_file *f = tf_open(h, env->path);

	assert_int_equal(tf_pwrite(h, f, src, len, 77), -ENOSPC);
	assert_int_equal(swapio_pwrite(h, f, src, 1, 5), -ENOSPC);
	assert_int_equal(tf_pread(h, f, dst, len, 77), len);
	assert_memory_equal(old, dst, len);
	assert_true(swapio__fault_injected(h) >= 2);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	tf_check_file(env->path, old, len, 77);
	free(old), free(src), free(dst);
}

/* A failed read reports the error; the file is untouched. */
static void eio_reads(void **state)
{
	struct t_env *env = *state;
	const size_t len = 4 * BS;
	unsigned char *old = seed_file(env->path, len, 0, 4);
	unsigned char *dst = t_zalloc(len);
	swapio_handle *h = tf_handle("errno=EIO,dir=read,every=2",
				     cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);

	assert_int_equal(tf_pread(h, f, dst, len, 0), -EIO);
	assert_int_equal(swapio_pread_path(h, env->path, dst, len, 0), -EIO);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	tf_check_file(env->path, old, len, 0);
	free(old), free(dst);
}

/*
 * Write at odd sizes, offsets and buffer addresses with @spec on, read
 * back through the same handle and with plain pread(2). Every op must
 * give the full count. Returns the faults injected.
 */
static int64_t roundtrip_under(const char *path, const char *spec,
			       struct swapio_config cfg)
{
	static const size_t sizes[] = { 1, 4095, 4096, BS + 1, 5 * BS + 4097,
					(1u << 20) + 17 };
	static const uint64_t offs[] = { 0, 7, 4096, 65536 + 511 };
	swapio_handle *h = tf_handle(spec, cfg);
	swapio_file *f = tf_open(h, path);
	int64_t injected;

	for (size_t i = 0; i < T_ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		uint64_t off = offs[i % T_ARRAY_SIZE(offs)];
		unsigned char *src = t_random_buf(n + 1, i + 10);
		unsigned char *dst = t_zalloc(n + 1);

		/* src + 1: memory off any alignment, so bounce blocks too. */
		assert_int_equal(tf_pwrite(h, f, src + 1, n, off), n);
		assert_int_equal(tf_pread(h, f, dst + 1, n, off), n);
		assert_memory_equal(src + 1, dst + 1, n);
		tf_check_file(path, src + 1, n, off);
		free(src), free(dst);
	}
	injected = swapio__fault_injected(h);
	/* Every injected EINTR/EAGAIN or short transfer was one retry. */
	assert_true(tf_stats(h).retries >= (uint64_t)injected);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	return injected;
}

static void eintr_every3(void **state)
{
	struct t_env *env = *state;

	assert_true(roundtrip_under(env->path, "errno=EINTR,every=3",
				    cfg_of(1, 8, 0)) > 0);
	assert_true(roundtrip_under(env->path, "errno=EINTR,every=3",
				    cfg_of(3, 8, SWAPIO_CFG_BUFFERED)) > 0);
}

static void eagain_prob(void **state)
{
	struct t_env *env = *state;

	assert_true(roundtrip_under(env->path, "seed=7,prob=0.1,errno=EAGAIN",
				    cfg_of(2, 8, 0)) > 0);
	assert_true(roundtrip_under(env->path, "seed=8,prob=0.5,errno=EAGAIN",
				    cfg_of(1, 2,
					   SWAPIO_CFG_SINGLE_SUBMIT)) > 0);
}

/* Every request fails with EINTR, yet each is let through on its last
 * retry: the injected fault is always recoverable. */
static void eintr_always(void **state)
{
	struct t_env *env = *state;
	const size_t len = 4 * BS;
	swapio_handle *h = tf_handle("errno=EINTR", cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(len, 5), *dst = t_zalloc(len);

	assert_int_equal(tf_pwrite(h, f, src, len, 0), len);
	/* Each request failed SWAPIO_MAX_RETRIES times, then went through. */
	assert_int_equal(tf_stats(h).retries,
			 tf_stats(h).requests * SWAPIO_MAX_RETRIES);
	assert_int_equal(tf_pread(h, f, dst, len, 0), len);
	assert_memory_equal(src, dst, len);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	tf_check_file(env->path, src, len, 0);
	free(src), free(dst);
}

/* sticky=1: the picked request keeps failing; the core gives up after
 * SWAPIO_MAX_RETRIES retries and fails the op with that errno. */
static void eagain_sticky(void **state)
{
	struct t_env *env = *state;
	const size_t len = 4 * BS;
	swapio_handle *h = tf_handle("errno=EAGAIN,nth=2,sticky=1",
				     cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(len, 6), *dst = t_zalloc(len);

	assert_int_equal(tf_pwrite(h, f, src, len, 0), -EAGAIN);
	assert_int_equal(tf_stats(h).retries, SWAPIO_MAX_RETRIES);
	assert_int_equal(swapio__fault_injected(h), SWAPIO_MAX_RETRIES + 1);
	/* The handle is fine afterwards. */
	assert_int_equal(tf_pwrite(h, f, src, len, 0), len);
	assert_int_equal(tf_pread(h, f, dst, len, 0), len);
	assert_memory_equal(src, dst, len);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src), free(dst);
}

static void short_every2(void **state)
{
	struct t_env *env = *state;

	assert_true(roundtrip_under(env->path, "short=1,every=2",
				    cfg_of(1, 8, 0)) > 0);
	assert_true(roundtrip_under(env->path, "short=1,every=2",
				    cfg_of(2, 4, SWAPIO_CFG_BUFFERED)) > 0);
}

/* Every request cut in half, and its remainders again, down to a page. */
static void short_always(void **state)
{
	struct t_env *env = *state;

	assert_true(roundtrip_under(env->path, "short=1",
				    cfg_of(2, 8, SWAPIO_CFG_NO_OVERLAP)) > 0);
}

/* Completions held back 20 ms: ops take at least that, then complete. */
static void delay_every4(void **state)
{
	struct t_env *env = *state;
	const size_t len = 16 * BS;
	swapio_handle *h = tf_handle("delay_ms=20,every=4", cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(len, 7), *dst = t_zalloc(len);
	uint64_t t0 = tf_now_ms();
	swapio_op *op;

	assert_int_equal(swapio_submit_write(h, f, src, len, 0, &op), 0);
	assert_int_equal(tf_wait(op), len);
	assert_true(tf_now_ms() - t0 >= 20);
	assert_int_equal(tf_pread(h, f, dst, len, 0), len);
	assert_memory_equal(src, dst, len);
	assert_true(swapio__fault_injected(h) >= 4);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src), free(dst);
}

/* A delayed op is still running at a short timeout, then completes. */
static void delay_timeout(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = tf_handle("delay_ms=300", cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(BS, 8);
	swapio_op *op;

	assert_int_equal(swapio_submit_write(h, f, src, BS, 0, &op), 0);
	assert_int_equal(swapio_op_wait(op, 10), -ETIMEDOUT);
	assert_int_equal(swapio_op_done(op), 0);
	assert_int_equal(swapio_op_wait(op, TF_WAIT_MS), BS);
	assert_int_equal(swapio_op_done(op), 1);
	swapio_op_free(op);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src);
}

/*
 * Many ops in flight over several workers, every 5th request failing:
 * each op completes exactly once with -EIO or its full count, and the
 * ones that succeeded left the right bytes.
 */
static void eio_many_async(void **state)
{
	enum { NR = 48 };
	struct t_env *env = *state;
	swapio_handle *h = tf_handle("errno=EIO,every=5", cfg_of(4, 8, 0));
	swapio_file *f = tf_open(h, env->path);
	unsigned char *src = t_random_buf(NR * 2 * BS, 9);
	swapio_op *ops[NR];
	size_t len[NR];
	ssize_t res;
	int failed = 0, ok = 0;

	for (int i = 0; i < NR; i++) {
		len[i] = i % 3 == 0 ? 2 * BS : (size_t)(i * 1000 + 1);
		assert_int_equal(swapio_submit_write(h, f, src + i * 2 * BS,
						     len[i], i * 2 * BS,
						     &ops[i]), 0);
	}
	assert_int_equal(swapio_wait_all(h, TF_WAIT_MS), 0);
	for (int i = 0; i < NR; i++) {
		assert_int_equal(swapio_op_done(ops[i]), 1);
		res = tf_wait(ops[i]);
		if (res == -EIO) {
			failed++;
			continue;
		}
		assert_int_equal(res, len[i]);
		tf_check_file(env->path, src + i * 2 * BS, len[i], i * 2 * BS);
		ok++;
	}
	assert_true(failed > 0 && ok > 0);
	assert_int_equal(tf_stats(h).ops, NR);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src);
}

/*
 * Destroying a handle waits for the ops still in flight, faults and all:
 * path ops own their file, so nothing has to be closed first. No leak.
 */
static void destroy_in_flight(void **state)
{
	static const char *const specs[] = {
		"delay_ms=30,every=2", "errno=EIO,every=2",
		"errno=EAGAIN,every=2", "short=1",
	};
	struct t_env *env = *state;
	unsigned char *src = t_random_buf(8 * BS, 10);

	for (size_t i = 0; i < T_ARRAY_SIZE(specs); i++) {
		swapio_handle *h = tf_handle(specs[i], cfg_of(2, 4, 0));
		swapio_op *op;

		/* Ops left unfreed on purpose: destroy frees them. */
		for (int j = 0; j < 4; j++)
			assert_int_equal(swapio_submit_write_path(h, env->path,
					 src, 8 * BS, j * 8 * BS, &op), 0);
		swapio_handle_destroy(h);
	}
	free(src);
}

/* Both batch mode and one-syscall-per-request mode deliver faults. */
static void eio_batch_modes(void **state)
{
	static const uint32_t flags[] = {
		SWAPIO_CFG_NO_OVERLAP, SWAPIO_CFG_SINGLE_SUBMIT,
	};
	struct t_env *env = *state;
	const size_t len = 12 * BS;
	unsigned char *src = t_random_buf(len, 11);

	for (size_t i = 0; i < T_ARRAY_SIZE(flags); i++) {
		swapio_handle *h = tf_handle("errno=EIO,nth=6",
					     cfg_of(1, 4, flags[i]));
		swapio_file *f = tf_open(h, env->path);

		assert_int_equal(tf_pwrite(h, f, src, len, 0), -EIO);
		assert_int_equal(tf_pwrite(h, f, src, len, 0), len);
		swapio_file_close(f);
		swapio_handle_destroy(h);
		tf_check_file(env->path, src, len, 0);
	}
	free(src);
}

/*
 * An engine that fails for good (fatal=: its reap returns an error, as a
 * broken ring would): the ops in flight fail with that error and so does
 * every later op on that worker; nothing waits forever, and destroy
 * returns.
 */
static void fatal_engine_error(void **state)
{
	struct t_env *env = *state;
	const size_t len = 6 * BS;
	unsigned char *src = t_random_buf(len, 12);
	swapio_handle *h = tf_handle("fatal=EBADR", cfg_of(1, 4, 0));
	swapio_file *f = tf_open(h, env->path);

	assert_int_equal(tf_pwrite(h, f, src, len, 0), -EBADR);
	assert_int_equal(tf_pwrite(h, f, src, 4096, 0), -EBADR);
	assert_int_equal(tf_pread(h, f, src, 100, 1), -EBADR);
	assert_int_equal(swapio__fault_injected(h), 1);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(src);
}

/*
 * A write with a prefix (the store's header block before its payload, one
 * write of two segments): the file holds both back to back, at odd sizes
 * and from unaligned (bounced) memory, with no faults, with short
 * transfers cut inside the prefix or after it, and with EINTR; one worker
 * or two. Arguments the call cannot honour are refused.
 */
static void prefix_writes(void **state)
{
	static const char *const specs[] = {
		NULL, "short=1,every=2", "short=1", "errno=EINTR,every=3",
	};
	static const size_t lens[] = {
		1, 4095, 4096, 5000, BS, BS + 123, 3 * BS + 5,
	};
	struct t_env *env = *state;
	const uint64_t off = 3 * 4096;
	unsigned char *pre = t_page_alloc(4096, 0);
	unsigned char *data = t_page_alloc(3 * BS + 4096, 0);
	swapio_op *op;

	for (size_t k = 0; k < SWAPIO_ARRAY_SIZE(specs); k++)
	for (uint32_t threads = 1; threads <= 2; threads++) {
		swapio_handle *h = tf_handle(specs[k], cfg_of(threads, 4, 0));
		swapio_file *f = tf_open(h, env->path);

		for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(lens); i++)
		for (size_t at = 0; at <= 1; at++) {
			const size_t len = lens[i];
			uint64_t seed = k * 1000 + threads * 100 + i * 2 + at;

			t_fill_random(pre, 4096, seed);
			t_fill_random(data + at, len, seed + 50000);
			assert_int_equal(swapio__submit_write_pre(h, f, pre,
					 4096, data + at, len, off, &op), 0);
			assert_int_equal(tf_wait(op), 4096 + len);
			tf_check_file(env->path, pre, 4096, off);
			tf_check_file(env->path, data + at, len, off + 4096);
		}
		if (swapio_file_direct(f)) {
			assert_int_equal(swapio__submit_write_pre(h, f, pre + 1,
					 4096, data, 10, off, &op), -EINVAL);
			assert_int_equal(swapio__submit_write_pre(h, f, pre,
					 1000, data, 10, off, &op), -EINVAL);
			assert_int_equal(swapio__submit_write_pre(h, f, pre,
					 4096, data, 10, off + 1, &op),
					 -EINVAL);
		}
		assert_int_equal(swapio__submit_write_pre(h, f, pre, 4096,
				 data, 0, off, &op), -EINVAL);
		assert_null(op);
		swapio_file_close(f);
		swapio_handle_destroy(h);
	}
	free(pre);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(eio_nth),
		cmocka_unit_test(enospc_writes),
		cmocka_unit_test(eio_reads),
		cmocka_unit_test(eintr_every3),
		cmocka_unit_test(eagain_prob),
		cmocka_unit_test(eintr_always),
		cmocka_unit_test(eagain_sticky),
		cmocka_unit_test(short_every2),
		cmocka_unit_test(short_always),
		cmocka_unit_test(delay_every4),
		cmocka_unit_test(delay_timeout),
		cmocka_unit_test(eio_many_async),
		cmocka_unit_test(destroy_in_flight),
		cmocka_unit_test(eio_batch_modes),
		cmocka_unit_test(fatal_engine_error),
		cmocka_unit_test(prefix_writes),
	};

	t_engine();	/* skip (77) at once if the engine cannot run here */
	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
