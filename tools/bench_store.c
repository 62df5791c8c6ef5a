/* SPDX-License-Identifier: MIT */
/*
 * swapio bench --dir A --dir B ...: the same measurement through a store
 * striped over one directory per drive, each drive on a handle of its
 * own. Values of --value-size go in with a window of puts in flight and
 * come back with gets; every byte is checked with --verify (the store
 * verifies its checksum on every get anyway). With --random the gets go
 * in a seeded random order of the keys; the puts stay in order, since
 * each goes to fresh space wherever its key falls. The store lives in a
 * directory "swapio-bench.XXXXXX" that mkdtemp(3) makes under each one
 * given (never one that already exists; mode 0700), and goes afterwards
 * unless --keep, and after an error or Ctrl-C whatever --keep says.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

#define WINDOW_DEF	4
#define WINDOW_MAX	1024
#define SEED		0x5eedc0ffee15ba5eull
#define ORDER_SEED	0x0dd5eed0f0ffe75eull

struct sbench {
	const struct bench_store_opts	*so;
	swapio_handle		*h[SWAPIO_STORE_DRIVES_MAX];
	char			*dirs[SWAPIO_STORE_DRIVES_MAX];
	swapio_store		*s;
	unsigned char		*bufs[WINDOW_MAX];
	unsigned int		window;
	size_t			buf_bytes;
	uint64_t		nvals;
	bool			unpinned;	/* RLIMIT_MEMLOCK said no */
	uint64_t		*order;		/* --random: the gets' keys */
	uint64_t		*lat_ns;	/* one per op of a phase */
	uint64_t		nr_lat;
	uint64_t		t_submit_ns[WINDOW_MAX];
};

/* Value @i's bytes: a splitmix64 stream, incompressible. */
static void value_fill(unsigned char *p, size_t n, uint64_t i)
{
	uint64_t z = SEED ^ (i * 0x9e3779b97f4a7c15ull), v;
	size_t k;

	for (k = 0; k + 8 <= n; k += 8) {
		z += 0x9e3779b97f4a7c15ull;
		v = z;
		v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
		v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
		v ^= v >> 31;
		memcpy(p + k, &v, 8);
	}
	memset(p + k, (int)(i & 0xff), n - k);
}

/* Closes everything; with @remove, the directories bench made go too. */
static int sbench_free(struct sbench *b, bool remove)
{
	int rc = 0, ret;

	swapio_store_close(b->s);
	for (unsigned int i = 0; i < b->so->nr_dirs; i++) {
		swapio_handle_destroy(b->h[i]);
		if (remove && b->dirs[i]) {
			ret = tool_rmtree(b->dirs[i]);
			if (ret && !rc)
				rc = tool_fail(b->dirs[i], ret);
		}
		free(b->dirs[i]);
	}
	for (unsigned int w = 0; w < b->window; w++)
		swapio_buf_free(b->bufs[w], b->buf_bytes);
	free(b->order);
	free(b->lat_ns);
	return rc;
}

static int sbench_open(struct sbench *b, const struct bench_opts *o,
		       struct bench_result *r)
{
	const struct bench_store_opts *so = b->so;
	struct swapio_store_drive dv[SWAPIO_STORE_DRIVES_MAX];
	/* Allocated at open, before the clock starts, as bench does for a
	 * file; --no-prealloc lets the puts grow the store. Each value
	 * takes a header block and its padding to the block, which is at
	 * most the page size: 64 KiB covers both on any Linux. */
	const uint64_t blk = 64u << 10;
	struct swapio_store_config scfg = {
		.stripe_unit = so->stripe_unit,
		.flags = so->no_checksum ? SWAPIO_STORE_NO_CHECKSUM : 0,
		.capacity = o->no_prealloc ? 0 : b->nvals *
			    ((b->buf_bytes + blk - 1) / blk * blk + blk),
	};
	unsigned int failed;
	int ret;

	for (unsigned int i = 0; i < so->nr_dirs; i++) {
		b->dirs[i] = tool_mkdtemp(so->dirs[i], "swapio-bench");
		if (!b->dirs[i])
			return tool_fail(so->dirs[i], -errno);
		ret = swapio_handle_create(&o->cfg, &b->h[i]);
		if (ret)
			return tool_fail("handle", ret);
		dv[i] = (struct swapio_store_drive){ .h = b->h[i],
						     .dir = b->dirs[i] };
	}
	ret = swapio_store_open_multi(dv, so->nr_dirs, &scfg, &b->s, &failed);
	if (ret)
		return tool_fail(failed < so->nr_dirs ? so->dirs[failed] :
				 "store", ret);
	tool_store_note(b->s, b->dirs[0]);
	swapio_handle_config(b->h[0], &r->cfg);
	r->engine = swapio_handle_engine(b->h[0]);
	snprintf(r->note, sizeof(r->note), "%s",
		 swapio_handle_engine_note(b->h[0]));
	return 0;
}

static void stats_sum(struct sbench *b, struct swapio_stats *out)
{
	struct swapio_stats st;

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < b->so->nr_dirs; i++) {
		swapio_handle_stats(b->h[i], &st);
		out->syscalls += st.syscalls;
		out->requests += st.requests;
		out->retries += st.retries;
		out->bounced_bytes += st.bounced_bytes;
		/* Percentiles do not add: the slowest drive's. */
		if (st.lat_p50_ns > out->lat_p50_ns)
			out->lat_p50_ns = st.lat_p50_ns;
		if (st.lat_p99_ns > out->lat_p99_ns)
			out->lat_p99_ns = st.lat_p99_ns;
		if (st.lat_max_ns > out->lat_max_ns)
			out->lat_max_ns = st.lat_max_ns;
	}
}

/* Finish op @w of value @i: check the result and, on a read, the bytes. */
static int sbench_finish(struct sbench *b, swapio_store_op *op,
			 unsigned int w, uint64_t i, bool read, bool verify)
{
	int64_t n = swapio_store_op_wait(op, -1);
	unsigned char *want;
	int ret = 0;

	assert(b->nr_lat < b->nvals);
	b->lat_ns[b->nr_lat++] = tool_now_ns() - b->t_submit_ns[w];
	swapio_store_op_free(op);
	if (n < 0)
		return tool_fail(read ? "get" : "put", (int)n);
	if (read && verify) {
		want = malloc(b->buf_bytes);
		if (!want)
			return tool_fail("verify", -ENOMEM);
		value_fill(want, b->buf_bytes, i);
		if (memcmp(want, b->bufs[w], b->buf_bytes)) {
			fprintf(stderr, "swapio: value %llu read back "
				"wrong\n", (unsigned long long)i);
			ret = 1;
		}
		free(want);
	}
	return ret;
}

static int sbench_phase(struct sbench *b, bool read, bool verify,
			struct bench_phase *ph)
{
	swapio_store_op *ops[WINDOW_MAX] = { 0 };
	uint64_t idx[WINDOW_MAX];
	char key[64];
	double t0, c0;
	int ret = 0;

	for (unsigned int i = 0; i < b->so->nr_dirs; i++)
		swapio_handle_stats_reset(b->h[i]);
	b->nr_lat = 0;
	if (!read)
		for (unsigned int w = 0; w < b->window; w++)
			value_fill(b->bufs[w], b->buf_bytes, w);
	t0 = tool_now();
	c0 = tool_cpu_seconds();
	for (uint64_t i = 0; i < b->nvals + b->window && !ret; i++) {
		const unsigned int w = (unsigned int)(i % b->window);
		uint64_t k;

		if (bench_interrupted()) {
			fprintf(stderr, "\nswapio: bench: interrupted\n");
			ret = 130;
			break;
		}
		if (ops[w])
			ret = sbench_finish(b, ops[w], w, idx[w], read, verify);
		ops[w] = NULL;
		if (ret || i >= b->nvals)
			continue;
		/* Key k went in from buffer k % window, which holds that
		 * value: in order that is w, at random it need not be. */
		k = read && b->order ? b->order[i] : i;
		snprintf(key, sizeof(key), "bench.%llu",
			 (unsigned long long)k);
		idx[w] = k % b->window;
		b->t_submit_ns[w] = tool_now_ns();
		ret = read ? swapio_store_submit_get(b->s, key, b->bufs[w],
						     b->buf_bytes, &ops[w]) :
			     swapio_store_submit_put(b->s, key, b->bufs[w],
						     b->buf_bytes, &ops[w]);
		if (ret)
			ret = tool_fail(read ? "get" : "put", ret);
	}
	for (unsigned int w = 0; w < b->window; w++)
		swapio_store_op_free(ops[w]);	/* waits for it first */
	ph->ran = !ret;
	ph->secs = tool_now() - t0;
	ph->cpu_secs = tool_cpu_seconds() - c0;
	ph->bytes = b->nvals * b->buf_bytes;
	stats_sum(b, &ph->st);
	bench_op_latency(b->lat_ns, b->nr_lat, ph);
	return ret;
}

/* Room for every op's latency and --random's order, before the clock. */
static int sbench_order(struct sbench *b, bool random)
{
	b->lat_ns = calloc(b->nvals, sizeof(*b->lat_ns));
	if (random && b->lat_ns)
		b->order = malloc(b->nvals * sizeof(*b->order));
	if (!b->lat_ns || (random && !b->order)) {
		free(b->lat_ns);
		return tool_fail("op arrays", -ENOMEM);
	}
	if (random)
		bench_shuffle(b->order, b->nvals, ORDER_SEED);
	return 0;
}

int bench_store_run(const struct bench_opts *o,
		    const struct bench_store_opts *so, struct bench_result *r)
{
	struct sbench b = { .so = so };
	const uint64_t size = o->size ? o->size : 1ull << 30;
	int ret, rc;

	memset(r, 0, sizeof(*r));
	b.buf_bytes = (size_t)so->value_bytes;
	b.window = so->in_flight ? so->in_flight : WINDOW_DEF;
	b.nvals = size / so->value_bytes ? size / so->value_bytes : 1;
	ret = sbench_order(&b, o->random);
	if (ret)
		return ret;
	for (unsigned int w = 0; w < b.window; w++) {
		ret = swapio_buf_alloc(b.buf_bytes, (o->no_pin ? 0 :
				       SWAPIO_BUF_LOCKED) |
				       (o->no_huge ? 0 : SWAPIO_BUF_HUGE),
				       (void **)&b.bufs[w]);
		if (ret == SWAPIO_EMEMLOCK && !o->no_pin && (b.unpinned = true))
			ret = swapio_buf_alloc(b.buf_bytes, o->no_huge ? 0 :
					       SWAPIO_BUF_HUGE,
					       (void **)&b.bufs[w]);
		if (ret) {
			sbench_free(&b, false);
			return tool_fail("buffer", ret);
		}
	}
	bench_catch_signals(true);
	ret = sbench_open(&b, o, r);
	if (!ret && (o->modes & BENCH_WRITE))
		ret = sbench_phase(&b, false, o->verify, &r->ph[PH_WRITE]);
	if (!ret && (o->modes & BENCH_READ))
		ret = sbench_phase(&b, true, o->verify, &r->ph[PH_READ]);
	r->direct = !(r->cfg.flags & SWAPIO_CFG_BUFFERED);
	r->pinned = !o->no_pin && !b.unpinned;
	r->huge = !o->no_huge;
	r->size = b.nvals * b.buf_bytes;
	r->chunk = b.buf_bytes;
	r->window = b.window;
	r->random = o->random;
	/* What this run made goes, even after an error, unless kept. */
	rc = sbench_free(&b, !o->keep || ret);
	bench_catch_signals(false);
	return ret == 130 ? 130 : ret || rc ? 1 : 0;
}
