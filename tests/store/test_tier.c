/* SPDX-License-Identifier: MIT */
/*
 * The block tier through its public calls: batches of blocks in slices
 * of one buffer (aligned and not, odd sizes) stored, loaded byte for byte,
 * found, removed; records through the eventfd; blocks found again after a
 * reopen; namespaces that never see each other's blocks; the capacity
 * bound and its LRU order; a damaged block read as a miss and dropped; a
 * batch finished by its deadline while its I/O is held back (HELD, then
 * RELEASED), with submit returning before any of it. Striped over three
 * drives when SWAPIO_TEST_STRIPE says so, on every engine.
 */
#include <poll.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_store_common.h"
#include "util.h"

#define KiB	1024u

/* The tier of namespace @ns under @dir (striped as the store tests are). */
static int tier_open(swapio_handle *h, const char *dir, const char *ns,
		     const struct swapio_tier_config *cfg, swapio_tier **out)
{
	struct swapio_store_drive dv[8];
	struct swapio_tier_config c = cfg ? *cfg : (struct swapio_tier_config){ 0 };
	unsigned int n = ts_stripe(&c.stripe_unit);
	char *dirs[8];
	int ret;

	for (unsigned int i = 0; i < n; i++) {
		dirs[i] = i ? ts_drive_dir(dir, i) : strdup(dir);
		dv[i] = (struct swapio_store_drive){ .h = h, .dir = dirs[i] };
	}
	if (n == 1)
		c.stripe_unit = 0;
	ret = swapio_tier_open(dv, n, ns, &c, out);
	for (unsigned int i = 0; i < n; i++)
		free(dirs[i]);
	return ret;
}

static swapio_tier *tier(swapio_handle *h, const char *dir, const char *ns,
			 const struct swapio_tier_config *cfg)
{
	swapio_tier *t;
	int ret = tier_open(h, dir, ns, cfg, &t);

	if (ret)
		t_die("swapio_tier_open(%s, %s): %s (%s)", dir, ns,
		      swapio_strerror(ret), swapio_error_detail());
	return t;
}

/* Wait on the eventfd for batch @id's first record; its flags. */
static struct swapio_tier_done await(swapio_tier *t, int64_t id)
{
	struct swapio_tier_done d[8];
	struct pollfd p = { .fd = swapio_tier_eventfd(t), .events = POLLIN };

	assert_true(p.fd >= 0);
	for (;;) {
		assert_int_equal(poll(&p, 1, 30000), 1);
		int n = swapio_tier_reap(t, d, 8);

		assert_true(n >= 0);
		for (int i = 0; i < n; i++)
			if ((int64_t)d[i].batch == id &&
			    !(d[i].flags & SWAPIO_TIER_RELEASED))
				return d[i];
	}
}

/* One synchronous batch: its count of blocks that succeeded. */
static unsigned int batch(swapio_tier *t, unsigned int verb,
			  struct swapio_tier_block *v, unsigned int n,
			  int32_t *res)
{
	int64_t id = swapio_tier_submit(t, verb, v, n, res, -1);
	struct swapio_tier_done d;

	assert_true(id > 0);
	d = await(t, id);
	assert_int_equal(d.n, n);
	assert_int_equal(d.flags, 0);
	return d.ok;
}

struct blocks {
	unsigned int	n;
	size_t		len, stride;
	unsigned char	*src, *dst;	/* n slices each, at an offset */
	char		(*key)[64];
	struct swapio_tier_block *v;
	int32_t		*res;
};

/* @n blocks of @len bytes, slices @stride apart from @off into one
 * buffer, keys "<prefix>.<i>". */
static void blocks_make(struct blocks *b, unsigned int n, size_t len,
			size_t off, const char *prefix, uint64_t seed)
{
	b->n = n;
	b->len = len;
	b->stride = len + off;
	b->src = t_page_alloc(n * b->stride + off, 0);
	b->dst = t_page_alloc(n * b->stride + off, 0);
	b->key = t_malloc(n * sizeof(*b->key));
	b->v = t_malloc(n * sizeof(*b->v));
	b->res = t_malloc(n * sizeof(*b->res));
	t_fill_random(b->src, n * b->stride + off, seed);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(b->key[i], sizeof(b->key[i]), "%s.%u@%08x", prefix,
			 i, i * 2654435761u);
		b->v[i] = (struct swapio_tier_block){ .key = b->key[i],
			.buf = b->src + off + i * b->stride, .len = len };
	}
}

/* Point the blocks at dst (to load into) or src. */
static void blocks_to(struct blocks *b, bool dst, size_t off)
{
	for (unsigned int i = 0; i < b->n; i++)
		b->v[i].buf = (dst ? b->dst : b->src) + off + i * b->stride;
}

static void blocks_free(struct blocks *b)
{
	free(b->src);
	free(b->dst);
	free(b->key);
	free(b->v);
	free(b->res);
}

/* Block i loaded into dst equals what src held. */
static void assert_block(const struct blocks *b, unsigned int i, size_t off)
{
	assert_int_equal(t_first_diff(b->dst + off + i * b->stride,
				      b->src + off + i * b->stride, b->len),
			 SIZE_MAX);
}

/* Store, load, find and remove, at sizes and offsets of every kind. */
static void round_trip(void **state)
{
	static const struct { size_t len, off; unsigned int n; } c[] = {
		{ 256 * KiB, 0, 64 },	/* an engine's pages, aligned */
		{ 64 * KiB, 512, 40 },	/* sector-aligned slices */
		{ 12345, 17, 33 },	/* odd size, odd offset */
		{ 2048 * KiB + 1, 4096, 5 },
	};
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	swapio_tier *t = tier(h, env->dir, "model-a", NULL);
	struct swapio_tier_info in;
	uint64_t bytes = 0;
	struct blocks b;

	for (size_t k = 0; k < SWAPIO_ARRAY_SIZE(c); k++) {
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "c%zu", k);
		blocks_make(&b, c[k].n, c[k].len, c[k].off, prefix, k + 1);
		assert_int_equal(batch(t, SWAPIO_TIER_PUT, b.v, b.n, b.res),
				 b.n);
		bytes += (uint64_t)b.n * b.len;
		blocks_to(&b, true, c[k].off);
		assert_int_equal(batch(t, SWAPIO_TIER_GET, b.v, b.n, b.res),
				 b.n);
		for (unsigned int i = 0; i < b.n; i++) {
			assert_int_equal(b.res[i], 0);
			assert_block(&b, i, c[k].off);
			assert_true(swapio_tier_contains(t, b.key[i]));
		}
		/* The wrong length is refused per block, never read. */
		b.v[0].len--;
		assert_int_equal(batch(t, SWAPIO_TIER_GET, b.v, 1, b.res), 0);
		assert_int_equal(b.res[0], -EMSGSIZE);
		b.v[0].len++;
		/* Remove every other one; exists says which are left. */
		for (unsigned int i = 0; i < b.n; i += 2)
			b.v[i / 2].key = b.key[i];
		assert_int_equal(batch(t, SWAPIO_TIER_REMOVE, b.v,
				       (b.n + 1) / 2, b.res), (b.n + 1) / 2);
		for (unsigned int i = 0; i < b.n; i++)
			b.v[i].key = b.key[i];
		assert_int_equal(batch(t, SWAPIO_TIER_EXISTS, b.v, b.n, b.res),
				 b.n / 2);
		for (unsigned int i = 0; i < b.n; i++)
			assert_int_equal(b.res[i], i % 2 ? 0 : -ENOENT);
		/* A removed block is a miss; the others still load. */
		memset(b.dst, 0, b.n * b.stride + c[k].off);
		assert_int_equal(batch(t, SWAPIO_TIER_GET, b.v, b.n, b.res),
				 b.n / 2);
		for (unsigned int i = 1; i < b.n; i += 2)
			assert_block(&b, i, c[k].off);
		bytes -= (uint64_t)(b.n + 1) / 2 * b.len;
		blocks_free(&b);
	}
	swapio_tier_info(t, &in);
	assert_int_equal(in.inflight, 0);
	assert_int_equal(in.queued, 0);
	assert_true(in.disk_bytes >= bytes);
	swapio_tier_close(t);
	swapio_handle_destroy(h);
}

/* What a tier held is there after a reopen; namespaces are apart. */
static void reopen_and_namespaces(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	swapio_tier *a = tier(h, env->dir, "llama-kv16", NULL), *b, *a2;
	struct swapio_tier_info in;
	struct blocks k;

	blocks_make(&k, 48, 256 * KiB, 0, "chunk", 7);
	assert_int_equal(batch(a, SWAPIO_TIER_PUT, k.v, k.n, k.res), k.n);
	/* Another namespace under the same root sees none of them. */
	b = tier(h, env->dir, "llama-kv8", NULL);
	blocks_to(&k, true, 0);
	assert_int_equal(batch(b, SWAPIO_TIER_GET, k.v, k.n, k.res), 0);
	for (unsigned int i = 0; i < k.n; i++)
		assert_int_equal(k.res[i], -ENOENT);
	/* One namespace has one owner. */
	assert_int_equal(tier_open(h, env->dir, "llama-kv16", NULL, &a2),
			 -EBUSY);
	swapio_tier_close(b);
	swapio_tier_close(a);

	a = tier(h, env->dir, "llama-kv16", NULL);
	swapio_tier_info(a, &in);
	assert_int_equal(in.blocks, k.n);
	assert_int_equal(batch(a, SWAPIO_TIER_GET, k.v, k.n, k.res), k.n);
	for (unsigned int i = 0; i < k.n; i++)
		assert_block(&k, i, 0);
	swapio_tier_close(a);
	blocks_free(&k);
	swapio_handle_destroy(h);
}

/* Full: the oldest blocks go first, a block read lately stays. */
static void capacity_lru(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	const size_t len = 64 * KiB;
	struct swapio_tier_config cfg = { .capacity = 20 * (len + 4 * KiB),
					  .high_pct = 100, .low_pct = 80 };
	swapio_tier *t = tier(h, env->dir, "small", &cfg);
	struct swapio_tier_info in;
	struct blocks k;
	unsigned int present = 0;

	blocks_make(&k, 60, len, 0, "b", 11);
	/* 0..9 in, one at a time (the blocks of one batch take their
	 * place in the order as they complete), block 0 read (the newest
	 * in use now), 10..19 in: full to the byte, nothing evicted yet. */
	for (unsigned int i = 0; i < 10; i++)
		assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v + i, 1,
				       k.res + i), 1);
	blocks_to(&k, true, 0);
	assert_int_equal(batch(t, SWAPIO_TIER_GET, k.v, 1, k.res), 1);
	blocks_to(&k, false, 0);
	assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v + 10, 10, k.res), 10);
	swapio_tier_info(t, &in);
	assert_int_equal(in.blocks, 20);
	assert_int_equal(in.evicted, 0);
	/* One more: the oldest in use go down to the low mark, 1 first;
	 * block 0, read after 9 was put, stays. */
	assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v + 20, 1, k.res), 1);
	swapio_tier_info(t, &in);
	assert_int_equal(in.blocks, 16);
	assert_int_equal(in.evicted, 5);
	for (unsigned int i = 1; i <= 5; i++)
		assert_false(swapio_tier_contains(t, k.key[i]));
	assert_true(swapio_tier_contains(t, k.key[0]));
	assert_true(swapio_tier_contains(t, k.key[6]));
	assert_true(swapio_tier_contains(t, k.key[20]));
	for (unsigned int i = 21; i < k.n; i += 13) {
		unsigned int m = SWAPIO_MIN(13u, k.n - i);

		assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v + i, m,
				       k.res + i), m);
	}
	swapio_tier_info(t, &in);
	assert_true(in.disk_bytes <= cfg.capacity);
	for (unsigned int i = 0; i < k.n; i++)
		present += (unsigned int)swapio_tier_contains(t, k.key[i]);
	assert_int_equal(present, in.blocks);
	assert_int_equal(in.evicted, k.n - in.blocks);
	for (unsigned int i = k.n - 10; i < k.n; i++)
		assert_true(swapio_tier_contains(t, k.key[i]));
	/* What is there loads right; a block above capacity is refused. */
	blocks_to(&k, true, 0);
	assert_int_equal(batch(t, SWAPIO_TIER_GET, k.v + k.n - 10, 10,
			       k.res), 10);
	for (unsigned int i = k.n - 10; i < k.n; i++)
		assert_block(&k, i, 0);
	swapio_tier_close(t);
	blocks_free(&k);

	cfg.capacity = 64 * KiB;
	t = tier(h, env->dir, "tiny", &cfg);
	blocks_make(&k, 1, len, 0, "big", 12);
	assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v, 1, k.res), 0);
	assert_int_equal(k.res[0], -ENOSPC);
	swapio_tier_close(t);
	blocks_free(&k);
	swapio_handle_destroy(h);
}

/* A block damaged on disk is a miss, counted and dropped; never bytes. */
static void damaged_block_is_a_miss(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	const size_t len = 64 * KiB;
	swapio_tier *t = tier(h, env->dir, "ns", NULL);
	struct swapio_tier_info in;
	struct blocks k;
	char *d = t_path(env->dir, "ns"), *p;
	size_t n, hits = 0;
	unsigned char *data;
	int fd;

	blocks_make(&k, 8, len, 0, "x", 21);
	assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v, k.n, k.res), k.n);
	swapio_tier_close(t);
	/* Flip one byte inside block 3's payload, wherever it landed. */
	p = t_path(d, "data");
	data = t_read_file(p, &n);
	for (size_t off = 0; off + len <= n; off += 4096)
		if (!memcmp(data + off, k.src + 3 * len, len)) {
			fd = open(p, O_WRONLY);
			assert_true(fd >= 0);
			data[off + 1000] ^= 0x40;
			assert_int_equal(pwrite(fd, data + off + 1000, 1,
						(off_t)off + 1000), 1);
			close(fd);
			hits++;
		}
	free(data);
	free(p);
	free(d);
	if (ts_stripe(NULL) > 1 && hits == 0) {
		/* A block split over drives: not found whole. */
		blocks_free(&k);
		swapio_handle_destroy(h);
		skip();
	}
	assert_int_equal(hits, 1);

	t = tier(h, env->dir, "ns", NULL);
	blocks_to(&k, true, 0);
	memset(k.dst, 0, k.n * len);
	assert_int_equal(batch(t, SWAPIO_TIER_GET, k.v, k.n, k.res), k.n - 1);
	for (unsigned int i = 0; i < k.n; i++) {
		assert_int_equal(k.res[i], i == 3 ? -EBADMSG : 0);
		if (i != 3)
			assert_block(&k, i, 0);
	}
	swapio_tier_info(t, &in);
	assert_int_equal(in.bad_checksums, 1);
	assert_false(swapio_tier_contains(t, k.key[3]));
	assert_int_equal(batch(t, SWAPIO_TIER_GET, k.v + 3, 1, k.res), 0);
	assert_int_equal(k.res[0], -ENOENT);
	swapio_tier_close(t);
	blocks_free(&k);
	swapio_handle_destroy(h);
}

/* A batch whose I/O is held back past its deadline: finished at the
 * deadline (EXPIRED, HELD), released when the I/O ends; submit never
 * waited. */
static void deadline(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h;
	swapio_tier *t;
	struct blocks k;
	struct swapio_tier_done d[4];
	struct swapio_tier_info in;
	int64_t id;
	int n, got = 0;

	/* Completions held back 1.5 s: a drive that hangs for a while. */
	setenv("SWAPIO_FAULT", "delay_ms=1500,dir=read", 1);
	h = t_handle((struct swapio_config){ 0 });
	unsetenv("SWAPIO_FAULT");
	t = tier(h, env->dir, "slow", NULL);
	blocks_make(&k, 16, 64 * KiB, 0, "s", 31);
	assert_int_equal(batch(t, SWAPIO_TIER_PUT, k.v, k.n, k.res), k.n);
	blocks_to(&k, true, 0);
	id = swapio_tier_submit(t, SWAPIO_TIER_GET, k.v, k.n, k.res, 100);
	assert_true(id > 0);
	/* Queued, not done: submit came back before any of it. */
	assert_int_equal(swapio_tier_reap(t, d, 4), 0);
	d[0] = await(t, id);
	assert_true(d[0].flags & SWAPIO_TIER_EXPIRED);
	assert_true(d[0].flags & SWAPIO_TIER_HELD);
	assert_int_equal(d[0].ok, 0);
	for (unsigned int i = 0; i < k.n; i++)
		assert_int_equal(k.res[i], -ETIMEDOUT);
	swapio_tier_info(t, &in);
	assert_int_equal(in.expired, 1);
	/* Then the RELEASED record, once the held I/O ends. */
	while (!got) {
		assert_int_equal(swapio_tier_wait(t, 30000), 0);
		n = swapio_tier_reap(t, d, 4);
		for (int i = 0; i < n; i++)
			if ((int64_t)d[i].batch == id &&
			    d[i].flags == SWAPIO_TIER_RELEASED)
				got = 1;
	}
	swapio_tier_info(t, &in);
	assert_int_equal(in.inflight, 0);
	swapio_tier_close(t);
	swapio_handle_destroy(h);
	blocks_free(&k);
}

static void bad_arguments(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	struct swapio_store_drive dv = { .h = h, .dir = env->dir };
	struct swapio_tier_config cfg = { .high_pct = 50, .low_pct = 60 };
	struct swapio_tier_block v = { .key = "k" };
	swapio_tier *t;
	int32_t res;

	assert_int_equal(swapio_tier_open(&dv, 1, "../up", NULL, &t), -EINVAL);
	assert_non_null(strstr(swapio_error_detail(), "namespace"));
	assert_int_equal(swapio_tier_open(&dv, 1, ".hidden", NULL, &t),
			 -EINVAL);
	assert_int_equal(swapio_tier_open(&dv, 1, "", NULL, &t), -EINVAL);
	assert_int_equal(swapio_tier_open(&dv, 1, "ok", &cfg, &t), -EINVAL);
	assert_int_equal(swapio_tier_open(&dv, 0, "ok", NULL, &t), -EINVAL);
	t = tier(h, env->dir, "ok", NULL);
	assert_int_equal(swapio_tier_submit(t, 0, &v, 1, &res, -1), -EINVAL);
	assert_int_equal(swapio_tier_submit(t, SWAPIO_TIER_EXISTS, &v, 0,
					    &res, -1), -EINVAL);
	v.key = "";
	assert_int_equal(batch(t, SWAPIO_TIER_EXISTS, &v, 1, &res), 0);
	assert_int_equal(res, -EINVAL);
	assert_int_equal(swapio_tier_wait(t, 10), -ETIMEDOUT);
	swapio_tier_close(t);
	swapio_handle_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, t_env_setup, t_env_teardown)
		T(round_trip),
		T(reopen_and_namespaces),
		T(capacity_lru),
		T(damaged_block_is_a_miss),
		T(deadline),
		T(bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
