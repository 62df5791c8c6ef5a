/* SPDX-License-Identifier: MIT */
/* Configuration files: parse, load, save, and garbage in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "testing.h"

static int setup_dir(void **state)
{
	*state = t_tmpdir();
	return 0;
}

static int teardown_dir(void **state)
{
	t_rmdir(*state);
	return 0;
}

static char *path_in(void **state, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", (char *)*state, name) < 0)
		t_die("asprintf failed");
	return p;
}

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (!fp || fwrite(text, 1, len, fp) != len || fclose(fp))
		t_die("cannot write %s", path);
}

static int parse_str(const char *text, struct swapio_config *c)
{
	return swapio_config_parse(text, strlen(text), c);
}

static void parse_every_key(void **state)
{
	static const char text[] =
		"# tuned by hand\r\n"
		"  block_size=8M   # trailing comment\n"
		"queue_depth = 128\n\n"
		"\tthreads = 4\n"
		"engine = aio\n"
		"direct = false\n"
		"direct_strict = yes\n"
		"single_submit = on\n"
		"register_buffers = off\n"
		"share_node = true\n"
		"spin_wait = no\n"
		"bounce = true\n"
		"overlap_events = 0";	/* no final newline */
	struct swapio_config c;

	(void)state;
	assert_int_equal(parse_str(text, &c), 0);
	assert_int_equal(c.block_size, 8u << 20);
	assert_int_equal(c.queue_depth, 128);
	assert_int_equal(c.threads, 4);
	assert_int_equal(c.engine, SWAPIO_ENGINE_AIO);
	assert_int_equal(c.flags, SWAPIO_CFG_BUFFERED |
			 SWAPIO_CFG_DIRECT_STRICT | SWAPIO_CFG_SINGLE_SUBMIT |
			 SWAPIO_CFG_NO_OVERLAP | SWAPIO_CFG_NO_REGISTER |
			 SWAPIO_CFG_SHARE_NODE | SWAPIO_CFG_NO_SPIN |
			 SWAPIO_CFG_BOUNCE);
}

static void parse_defaults_and_overrides(void **state)
{
	struct swapio_config c, zero = { 0 };

	(void)state;
	assert_int_equal(parse_str("", &c), 0);
	assert_memory_equal(&c, &zero, sizeof(c));
	assert_int_equal(swapio_config_parse(NULL, 0, &c), 0);
	assert_int_equal(parse_str("# only a comment\n\n   \n", &c), 0);
	assert_memory_equal(&c, &zero, sizeof(c));
	/* A later line wins; "true" of an inverted key clears its flag. */
	assert_int_equal(parse_str("direct = false\ndirect = true\n"
				   "block_size = 4k\nblock_size = 1g\n",
				   &c), 0);
	assert_int_equal(c.flags, 0);
	assert_int_equal(c.block_size, 1u << 30);
	assert_int_equal(parse_str("block_size = 0\nqueue_depth = 0\n", &c), 0);
	assert_memory_equal(&c, &zero, sizeof(c));
}

static void parse_rejects_bad_input(void **state)
{
	static const char *const bad[] = {
		"bogus = 1", "block_size", "= 1M", "block_size = ",
		"block_size = 1000", "block_size = 2G", "block_size = -4096",
		"block_size = 1MB", "block_size = 0x1000", "block_size = 1 M",
		"block_size = 99999999999999999999",
		"block_size = 18014398509481984G", "queue_depth = 4097",
		"queue_depth = 8K", "threads = 65", "threads = two",
		"engine = spdk", "engine = URING", "engine = uringuringuring",
		"direct = maybe", "direct = TRUE", "overlap_events =",
		"single_submit = true false", "BLOCK_SIZE = 1M",
		"block size = 1M", "queue_depth == 8",
	};
	struct swapio_config c;

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++) {
		c.block_size = 12345;
		if (parse_str(bad[i], &c) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_int_equal(c.block_size, 0);	/* left zeroed */
	}
	/* A NUL inside the text, and a valid line after a bad one. */
	assert_int_equal(swapio_config_parse("threads = 2\0x", 13, &c),
			 -EINVAL);
	assert_int_equal(parse_str("threads = 2\nnope\nthreads = 3\n", &c),
			 -EINVAL);
	assert_int_equal(swapio_config_parse("x", 1, NULL), -EINVAL);
	assert_int_equal(swapio_config_parse(NULL, 5, &c), -EINVAL);
}

/* Only the first @len bytes count: the parser must not look beyond. */
static void parse_respects_length(void **state)
{
	static const char text[] = "threads = 2\nbogus = 1\n";
	char *exact = t_malloc(12);
	struct swapio_config c;

	(void)state;
	memcpy(exact, text, 12);	/* "threads = 2\n", no terminator */
	assert_int_equal(swapio_config_parse(exact, 12, &c), 0);
	assert_int_equal(c.threads, 2);
	assert_int_equal(swapio_config_parse(exact, 11, &c), 0);
	assert_int_equal(swapio_config_parse(exact, 10, &c), -EINVAL);
	free(exact);
}

static void save_load_round_trip(void **state)
{
	struct swapio_config cases[] = {
		{ 0 },
		{ .block_size = 128 << 10, .queue_depth = 8, .threads = 2,
		  .engine = SWAPIO_ENGINE_URING },
		{ .block_size = (1u << 20) + 4096, .queue_depth = 4096,
		  .threads = 64, .engine = SWAPIO_ENGINE_THREADS,
		  .flags = SWAPIO_CFG_BUFFERED | SWAPIO_CFG_NO_OVERLAP |
			   SWAPIO_CFG_SINGLE_SUBMIT |
			   SWAPIO_CFG_DIRECT_STRICT },
		{ .block_size = 1u << 30, .engine = SWAPIO_ENGINE_AIO,
		  .flags = SWAPIO_CFG_NO_OVERLAP },
		{ .gpu_path = SWAPIO_GPU_STAGING },
		{ .gpu_path = SWAPIO_GPU_GDS, .threads = 3 },
	};
	char *path = path_in(state, "swapio.conf");
	struct swapio_config got;
	struct stat st;

	for (size_t i = 0; i < T_ARRAY_SIZE(cases); i++) {
		assert_int_equal(swapio_config_save(path, &cases[i]), 0);
		assert_int_equal(swapio_config_load(path, &got), 0);
		assert_memory_equal(&got, &cases[i], sizeof(got));
	}
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	free(path);
}

static void save_rejects_bad_config(void **state)
{
	char *path = path_in(state, "never.conf");
	struct swapio_config c = { .block_size = 1000 };
	struct stat st;

	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .reserved[4] = 1 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .reserved32 = 1 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .gpu_path = 3 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .engine = 9 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .flags = 1u << 31 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	c = (struct swapio_config){ .threads = 65 };
	assert_int_equal(swapio_config_save(path, &c), -EINVAL);
	assert_int_equal(swapio_config_save(path, NULL), -EINVAL);
	assert_int_equal(swapio_config_save(NULL, &c), -EINVAL);
	assert_int_equal(stat(path, &st), -1);	/* nothing was written */
	c = (struct swapio_config){ 0 };
	assert_int_equal(swapio_config_save("/nonexistent-dir/x.conf", &c),
			 -ENOENT);
	free(path);
}

static void load_errors(void **state)
{
	char *missing = path_in(state, "missing.conf");
	char *big = path_in(state, "big.conf");
	char *bad = path_in(state, "bad.conf");
	size_t n = (1u << 20) + 2;
	char *text = t_malloc(n);
	struct swapio_config c;

	assert_int_equal(swapio_config_load(missing, &c), -ENOENT);
	assert_int_equal(swapio_config_load(*state, &c), -EISDIR);
	memset(text, '\n', n);	/* valid, but no config is this long */
	write_text(big, text, n);
	assert_int_equal(swapio_config_load(big, &c), -EFBIG);
	write_text(bad, "threads = 2\nengine = fast\n", 26);
	assert_int_equal(swapio_config_load(bad, &c), -EINVAL);
	assert_int_equal(c.threads, 0);
	assert_int_equal(swapio_config_load(NULL, &c), -EINVAL);
	assert_int_equal(swapio_config_load(bad, NULL), -EINVAL);
	free(text), free(missing), free(big), free(bad);
}

/* Garbage and mutated files: any result is fine, a crash is not. */
static void parse_survives_garbage(void **state)
{
	static const char seed_text[] =
		"block_size = 1M\nqueue_depth = 32\nthreads = 1\n"
		"engine = uring\ndirect = true\noverlap_events = false\n";
	const size_t max = 256;
	struct swapio_config c;
	uint64_t rng = 42;
	char *buf;

	(void)state;
	for (unsigned int i = 0; i < 20000; i++) {
		size_t len = t_rand64(&rng) % max, flips;

		/* Exact-size heap copies let ASan catch any over-read. */
		buf = t_malloc(len);
		if (i % 2) {
			t_fill_random(buf, len, i);
		} else {
			len = len < sizeof(seed_text) - 1 ? len :
			      sizeof(seed_text) - 1;
			memcpy(buf, seed_text, len);
			for (flips = t_rand64(&rng) % 4; flips-- && len;)
				buf[t_rand64(&rng) % len] =
					(char)t_rand64(&rng);
		}
		if (swapio_config_parse(buf, len, &c) == 0)
			assert_true(c.threads <= 64 && c.queue_depth <= 4096);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_every_key),
		cmocka_unit_test(parse_defaults_and_overrides),
		cmocka_unit_test(parse_rejects_bad_input),
		cmocka_unit_test(parse_respects_length),
		cmocka_unit_test(parse_survives_garbage),
		cmocka_unit_test_setup_teardown(save_load_round_trip,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(save_rejects_bad_config,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(load_errors, setup_dir,
						teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
