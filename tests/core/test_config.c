/* SPDX-License-Identifier: MIT */
/*
 * What a handle says about itself: the configuration in force (defaults
 * filled in), the engine and why, the library version, engine names, and
 * the statistics after known transfers and after a reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <time.h>

#include "testing.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)

static swapio_file *cf_open(swapio_handle *h, const char *path)
{
	swapio_file *f;

	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE |
					  SWAPIO_O_TRUNC, &f), 0);
	return f;
}

static void defaults_filled_in(void **state)
{
	const unsigned int e = t_engine();
	struct swapio_config zero = { 0 }, got;
	swapio_handle *h = t_handle(zero);

	(void)state;
	memset(&got, 0xff, sizeof(got));
	swapio_handle_config(h, &got);
	assert_int_equal(got.block_size, 1 * MiB);
	assert_int_equal(got.queue_depth, 32);
	assert_int_equal(got.threads, 1);
	assert_int_equal(got.flags, 0);
	for (size_t i = 0; i < T_ARRAY_SIZE(got.reserved); i++)
		assert_int_equal(got.reserved[i], 0);
	/* The engine field names the engine in use, never "auto". */
	assert_int_equal(got.engine,
			 swapio_engine_parse(swapio_handle_engine(h)));
	assert_int_not_equal(got.engine, SWAPIO_ENGINE_AUTO);
	if (e != SWAPIO_ENGINE_AUTO)
		assert_int_equal(got.engine, e);
	swapio_handle_destroy(h);
}

static void config_kept(void **state)
{
	const struct swapio_config want = {
		.block_size = 64 * KiB,
		.queue_depth = 7,
		.threads = 3,
		.flags = SWAPIO_CFG_BUFFERED | SWAPIO_CFG_NO_OVERLAP |
			 SWAPIO_CFG_SINGLE_SUBMIT | SWAPIO_CFG_DIRECT_STRICT |
			 SWAPIO_CFG_BOUNCE,
	};
	struct swapio_config got;
	swapio_handle *h = t_handle(want);

	(void)state;
	swapio_handle_config(h, &got);
	assert_int_equal(got.block_size, want.block_size);
	assert_int_equal(got.queue_depth, want.queue_depth);
	assert_int_equal(got.threads, want.threads);
	assert_int_equal(got.flags, want.flags);
	swapio_handle_config(h, NULL);	/* no crash */
	swapio_handle_destroy(h);
}

/* The queue depth of a handle that shares the node with its ranks. */
static uint32_t shared_qd(uint32_t qd, uint32_t flags, const char *lws,
			  const char *env)
{
	struct swapio_config got;
	swapio_handle *h;

	if (lws)
		setenv("LOCAL_WORLD_SIZE", lws, 1);
	else
		unsetenv("LOCAL_WORLD_SIZE");
	if (env)
		setenv("SWAPIO_SHARE_NODE", env, 1);
	else
		unsetenv("SWAPIO_SHARE_NODE");
	h = t_handle((struct swapio_config){ .queue_depth = qd,
					     .flags = flags });
	swapio_handle_config(h, &got);
	swapio_handle_destroy(h);
	unsetenv("LOCAL_WORLD_SIZE");
	unsetenv("SWAPIO_SHARE_NODE");
	assert_false(got.flags & SWAPIO_CFG_SHARE_NODE);	/* taken */
	return got.queue_depth;
}

static void share_node(void **state)
{
	const uint32_t f = SWAPIO_CFG_SHARE_NODE;

	(void)state;
	assert_int_equal(shared_qd(32, f, "4", NULL), 8);
	assert_int_equal(shared_qd(32, f, "3", NULL), 10);
	assert_int_equal(shared_qd(0, f, "8", NULL), 4);	/* of 32 */
	assert_int_equal(shared_qd(2, f, "4", NULL), 1);	/* never 0 */
	assert_int_equal(shared_qd(32, f, NULL, NULL), 32);
	assert_int_equal(shared_qd(32, f, "4096", NULL), 1);
	assert_int_equal(shared_qd(32, 0, "4", NULL), 32);	/* not asked */
	/* Not read unless asked: torchrun's variable, not ours to judge. */
	assert_int_equal(shared_qd(32, 0, "four", NULL), 32);
	assert_int_equal(shared_qd(32, 0, "4", "1"), 8);	/* the env */
	assert_int_equal(shared_qd(32, 0, "4", "0"), 32);
}

/* A handle that shares the node and finds no process count it can use. */
static void share_node_refuses(const char *lws, const char *share,
			       uint32_t flags, const char *named)
{
	struct swapio_config cfg = { .flags = flags, .engine = t_engine() };
	swapio_handle *h = (swapio_handle *)&cfg;	/* not NULL */

	if (lws)
		setenv("LOCAL_WORLD_SIZE", lws, 1);
	if (share)
		setenv("SWAPIO_SHARE_NODE", share, 1);
	assert_int_equal(swapio_handle_create(&cfg, &h), -EINVAL);
	assert_null(h);
	unsetenv("LOCAL_WORLD_SIZE");
	unsetenv("SWAPIO_SHARE_NODE");
	assert_string_equal(swapio_error_detail(), named);
}

static void share_node_bad_values(void **state)
{
	const uint32_t f = SWAPIO_CFG_SHARE_NODE;
	const char *lws_says = "': not a process count from 1 to 4096 (read "
			       "for SWAPIO_SHARE_NODE / SWAPIO_CFG_SHARE_NODE)";
	static const char *const bad_lws[] = { "four", "0", "4097", "-1",
					       " 4", "4 ", "0x4",
					       "99999999999999999999999" };
	char want[256];

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(bad_lws); i++) {
		snprintf(want, sizeof(want), "LOCAL_WORLD_SIZE='%s%s",
			 bad_lws[i], lws_says);
		share_node_refuses(bad_lws[i], NULL, f, want);
		share_node_refuses(bad_lws[i], "1", 0, want);
	}
	share_node_refuses("4", "yes", 0, "SWAPIO_SHARE_NODE='yes': expected "
			   "0 or 1");
	share_node_refuses(NULL, "2", f, "SWAPIO_SHARE_NODE='2': expected "
			   "0 or 1");
}

static void engine_reported(void **state)
{
	const unsigned int e = t_engine();
	struct swapio_config cfg = { 0 };
	swapio_handle *h = t_handle(cfg);
	const char *name = swapio_handle_engine(h);
	const char *note = swapio_handle_engine_note(h);

	(void)state;
	assert_non_null(name);
	assert_true(name[0] != '\0');
	assert_true(swapio_engine_parse(name) > 0);
	if (e != SWAPIO_ENGINE_AUTO)
		assert_string_equal(name, swapio_engine_name(e));
	assert_non_null(note);
	assert_non_null(strstr(note, name));
	swapio_handle_destroy(h);
}

static void version_and_names(void **state)
{
	static const char *const names[] = { "auto", "uring", "aio",
					     "threads" };

	(void)state;
	assert_int_equal(swapio_version(), SWAPIO_VERSION_NUMBER);
	assert_int_equal(SWAPIO_VERSION_NUMBER,
			 SWAPIO_VERSION_MAJOR * 10000 +
			 SWAPIO_VERSION_MINOR * 100 + SWAPIO_VERSION_PATCH);
	for (unsigned int i = 0; i < T_ARRAY_SIZE(names); i++) {
		assert_string_equal(swapio_engine_name(i), names[i]);
		assert_int_equal(swapio_engine_parse(names[i]), i);
	}
	assert_int_equal(SWAPIO_ENGINE_URING, 1);
	assert_null(swapio_engine_name(4));
	assert_null(swapio_engine_name(UINT_MAX));
	assert_int_equal(swapio_engine_parse(""), -EINVAL);
	assert_int_equal(swapio_engine_parse("URING"), -EINVAL);
	assert_int_equal(swapio_engine_parse("thread"), -EINVAL);
	assert_int_equal(swapio_engine_probe(SWAPIO_ENGINE_THREADS), 0);
	assert_int_equal(swapio_engine_probe(SWAPIO_ENGINE_AUTO), 0);
	assert_int_equal(swapio_engine_probe(99), -EOPNOTSUPP);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

static void check_zero(const struct swapio_stats *st)
{
	assert_int_equal(st->bytes_read, 0);
	assert_int_equal(st->bytes_written, 0);
	assert_int_equal(st->ops, 0);
	assert_int_equal(st->requests, 0);
	assert_int_equal(st->syscalls, 0);
	assert_int_equal(st->retries, 0);
	assert_int_equal(st->bounced_bytes, 0);
	assert_int_equal(st->busy_ns, 0);
	assert_int_equal(st->lat_p50_ns, 0);
	assert_int_equal(st->lat_p99_ns, 0);
	assert_int_equal(st->lat_max_ns, 0);
}

static void check_latency(const struct swapio_stats *st)
{
	assert_true(st->lat_max_ns > 0);
	assert_true(st->lat_p50_ns <= st->lat_p99_ns);
	assert_true(st->lat_p99_ns <= st->lat_max_ns);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t blocks(uint64_t len, uint64_t bs)
{
	return (len + bs - 1) / bs;
}

/*
 * Known transfers through a handle of @threads workers and @bs blocks:
 * the counters account for exactly the bytes moved.
 */
static void stats_after_transfers(struct t_env *env, uint64_t bs,
				  uint32_t threads, uint32_t flags)
{
	struct swapio_config cfg = {
		.block_size = bs, .queue_depth = 8, .threads = threads,
		.flags = flags,
	};
	const size_t n = 1 * MiB + 17;
	const uint64_t off = 4096 + 7;
	unsigned char *mem = t_page_alloc(5 * MiB, 0);
	unsigned char *src = mem + 7;	/* co-aligned with off: no bounce */
	unsigned char *dst = mem + 2 * MiB;	/* page aligned: bounced */
	struct swapio_stats st;
	swapio_handle *h = t_handle(cfg);
	uint64_t t0, wall;
	swapio_file *f;

	t_fill_random(src, n, 8);
	swapio_handle_stats(h, &st);
	check_zero(&st);
	assert_int_equal(st.ops, 0);

	f = cf_open(h, env->path);
	t0 = now_ns();
	assert_int_equal(swapio_pwrite(h, f, src, n, off), n);
	wall = now_ns() - t0;
	swapio_handle_stats(h, &st);
	assert_int_equal(st.bytes_written, n);
	assert_int_equal(st.bytes_read, 0);
	assert_int_equal(st.ops, 1);
	assert_true(st.requests >= blocks(n, bs));
	assert_true(st.syscalls > 0);
	/* Times are in nanoseconds, within the op's wall time (latency is
	 * reported as a bucket bound, at most 25 % above the truth). */
	assert_true(st.busy_ns > 0);
	assert_true(st.busy_ns <= wall);
	assert_true(st.lat_max_ns <= wall + wall / 4 + 4);
	if (swapio_file_direct(f))
		assert_int_equal(st.bounced_bytes, 0);
	check_latency(&st);

	/* A read that reaches past the end counts what it moved. */
	assert_int_equal(swapio_pread(h, f, dst, 2 * n, off), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	swapio_handle_stats(h, &st);
	assert_int_equal(st.bytes_written, n);
	assert_int_equal(st.bytes_read, n);
	assert_int_equal(st.ops, 2);
	assert_true(st.requests >= 2 * blocks(n, bs));
	/* dst is page aligned but off is not: the body went through bounce
	 * blocks when direct, and nothing was bounced when buffered. */
	if (swapio_file_direct(f)) {
		assert_true(st.bounced_bytes > 0);
		assert_true(st.bounced_bytes <= n);
	} else {
		assert_int_equal(st.bounced_bytes, 0);
	}
	check_latency(&st);

	/* Refused before submission: no op, nothing counted. */
	assert_int_equal(swapio_pwrite(h, f, src, 10, INT64_MAX), -EINVAL);
	swapio_handle_stats(h, &st);
	assert_int_equal(st.ops, 2);
	assert_int_equal(st.bytes_written, n);

	swapio_handle_stats_reset(h);
	swapio_handle_stats(h, &st);
	check_zero(&st);

	/* After a reset only new transfers count. */
	assert_int_equal(swapio_pwrite(h, f, src, 4097, 0), 4097);
	assert_int_equal(swapio_pread_path(h, env->path, dst, 100, 1), 100);
	swapio_handle_stats(h, &st);
	assert_int_equal(st.bytes_written, 4097);
	assert_int_equal(st.bytes_read, 100);
	assert_int_equal(st.ops, 2);
	assert_true(st.requests >= 2);
	check_latency(&st);

	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(mem);
}

static void stats_one_worker(void **state)
{
	stats_after_transfers(*state, 64 * KiB, 1, 0);
}

static void stats_four_workers(void **state)
{
	stats_after_transfers(*state, 4 * KiB, 4, 0);
}

static void stats_buffered(void **state)
{
	stats_after_transfers(*state, 1 * MiB, 2, SWAPIO_CFG_BUFFERED);
}

/* Many ops from several files: the sums still match exactly. */
static void stats_many_ops(void **state)
{
	struct t_env *env = *state;
	struct swapio_config cfg = { .block_size = 16 * KiB, .threads = 2 };
	swapio_handle *h = t_handle(cfg);
	unsigned char *buf = t_random_buf(300 * KiB, 4);
	uint64_t written = 0, nreq = 0;
	struct swapio_stats st;
	swapio_op *ops[40];
	swapio_file *f;

	f = cf_open(h, env->path);
	for (unsigned int i = 0; i < 40; i++) {
		size_t len = 1 + (i * 7919u) % (300 * KiB);

		assert_int_equal(swapio_submit_write(h, f, buf, len,
						     i * 300 * KiB, &ops[i]),
				 0);
		written += len;
		nreq += blocks(len, cfg.block_size);
	}
	assert_int_equal(swapio_wait_all(h, -1), 0);
	for (unsigned int i = 0; i < 40; i++)
		swapio_op_free(ops[i]);
	swapio_handle_stats(h, &st);
	assert_int_equal(st.bytes_written, written);
	assert_int_equal(st.bytes_read, 0);
	assert_int_equal(st.ops, 40);
	assert_true(st.requests >= nreq);
	check_latency(&st);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_filled_in),
		cmocka_unit_test(config_kept),
		cmocka_unit_test(share_node),
		cmocka_unit_test(share_node_bad_values),
		cmocka_unit_test(engine_reported),
		cmocka_unit_test(version_and_names),
		cmocka_unit_test(stats_one_worker),
		cmocka_unit_test(stats_four_workers),
		cmocka_unit_test(stats_buffered),
		cmocka_unit_test(stats_many_ops),
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
