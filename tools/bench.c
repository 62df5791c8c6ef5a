/* SPDX-License-Identifier: MIT */
/*
 * swapio bench: write a file, then read it back, the way a runtime would
 * use the library: large ops (64 MiB) from a window of page-aligned buffers,
 * pinned where RLIMIT_MEMLOCK allows, several in flight. The library cuts
 * each op into block_size requests and keeps queue_depth of them in flight
 * per worker, across op boundaries. --op-size, --in-flight and --random
 * turn it into a small-op test: 4 KiB ops one at a time at random offsets
 * is what fio --rw=randread --bs=4k --iodepth=1 measures.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

#define WINDOW_DEF_MAX		16	/* without --in-flight */
#define PROGRESS_SECS		0.25
#define PATTERN_SEED		0x5eedc0ffee15ba5eull
#define ORDER_SEED		0x0dd5eed0f0ffe75eull

const char *const bench_phase_name[NR_PHASES] = { "write", "read" };
const char *const bench_memory_name[3] = { "swapio", "caller",
					   "caller-huge" };

/* Ctrl-C stops new ops; those in flight finish, and the file goes. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct bench {
	const struct bench_opts	*o;
	struct bench_result	*r;
	swapio_handle		*h;
	swapio_file		*f;
	unsigned char		*bufs[BENCH_WINDOW_MAX];
	unsigned char		*region;	/* caller memory: all bufs */
	swapio_op		*ops[BENCH_WINDOW_MAX];
	uint64_t		offs[BENCH_WINDOW_MAX];
	uint64_t		t_submit_ns[BENCH_WINDOW_MAX];
	uint64_t		nr_ops;		/* per pass */
	uint64_t		*order;		/* --random: op indices */
	uint64_t		*lat_ns;	/* one per op of a phase */
	uint64_t		nr_lat;
	bool			created;
	int			created_fd;	/* the file this run made */
	struct stat		created_st;
	bool			tty;	/* stderr shows progress */
	double			t0;	/* start of the phase */
	double			last_progress;
};

/* ------------------------------------------------------------------ */
/* Data: a pattern any range of which can be made or checked alone     */
/* ------------------------------------------------------------------ */

/*
 * Word k of the file is splitmix64 of counter k: random enough that no
 * device or filesystem can compress it, and reproducible from the offset
 * alone, so a read can be checked without keeping what was written.
 */
static uint64_t pattern_word(uint64_t k)
{
	uint64_t z = PATTERN_SEED + (k + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* @off is a multiple of 8: chunks start on multiples of 4 KiB. */
static void pattern_fill(unsigned char *buf, size_t len, uint64_t off)
{
	uint64_t k = off / 8, v;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8, k++) {
		v = pattern_word(k);
		memcpy(buf + i, &v, 8);
	}
	v = pattern_word(k);
	memcpy(buf + i, &v, len - i);
}

/* The offset of the first byte that differs from the pattern, or -1. */
static int64_t pattern_check(const unsigned char *buf, size_t len,
			     uint64_t off, unsigned char *want_byte)
{
	unsigned char want[8];
	uint64_t k = off / 8, v;
	size_t i, j, n;

	for (i = 0; i < len; i += 8, k++) {
		v = pattern_word(k);
		memcpy(want, &v, 8);
		n = len - i < 8 ? len - i : 8;
		if (!memcmp(buf + i, want, n))
			continue;
		for (j = 0; buf[i + j] == want[j]; j++)
			;
		*want_byte = want[j];
		return (int64_t)(off + i + j);
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Set-up and tear-down                                                */
/* ------------------------------------------------------------------ */

/*
 * Give the file its full size before the clock starts, as fio does: a
 * direct write that extends a file is serialised by most filesystems,
 * and allocation would be timed with the data. Size 0 (--no-prealloc)
 * leaves it as it is, to time what a runtime writing new files sees.
 */
static int file_grow(int fd, uint64_t size)
{
	int ret = 0;

	if (size && fallocate(fd, 0, 0, (off_t)size)) {
		ret = -errno;
		if (ret == -EOPNOTSUPP)
			ret = ftruncate(fd, (off_t)size) ? -errno : 0;
	}
	return ret;
}

/*
 * A file of bench's own: created exclusively (never a file or a link
 * that is already there) and private (0600). Its descriptor stays open:
 * the run reopens the file through it, never by name, and the name is
 * removed only while it still names this file.
 */
static int file_create(struct bench *b, uint64_t size)
{
	int fd;

	fd = open(b->o->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	b->created = true;
	b->created_fd = fd;
	if (fstat(fd, &b->created_st))
		return -errno;
	return file_grow(fd, size);
}

/* An existing file that is smaller than --size: the caller's to grow. */
static int file_allocate(const char *path, uint64_t size)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = file_grow(fd, size);
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Settle the size and make the file ready; prints its own errors. */
static int file_prepare(struct bench *b)
{
	const struct bench_opts *o = b->o;
	struct bench_result *r = b->r;
	bool writes = o->modes & BENCH_WRITE;
	struct stat st;
	int ret;

	if (stat(o->path, &st)) {
		if (errno != ENOENT || !writes)
			return tool_fail(o->path, -errno);
		ret = file_create(b, o->no_prealloc ? 0 : r->size);
		return ret ? tool_fail(o->path, ret) : 0;
	}
	if (S_ISDIR(st.st_mode))
		return tool_fail(o->path, -EISDIR);
	/* What swapio_file_open() refuses: nothing to read at an offset. */
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return tool_fail(o->path, -ESPIPE);
	if (!writes && !o->size)
		r->size = (uint64_t)st.st_size;
	if (!r->size) {
		fprintf(stderr, "swapio: %s: the file is empty\n", o->path);
		return 1;
	}
	if ((uint64_t)st.st_size >= r->size)
		return 0;
	if (!writes) {
		fprintf(stderr, "swapio: %s: holds %lld bytes, fewer than "
			"--size %" PRIu64 "\n", o->path,
			(long long)st.st_size, r->size);
		return 1;
	}
	ret = file_allocate(o->path, o->no_prealloc ? 0 : r->size);
	return ret ? tool_fail(o->path, ret) : 0;
}

/*
 * Remove the file this run made, if its name still names it: in a
 * directory others may write, the name may have been given to another.
 */
static int file_remove(struct bench *b)
{
	const char *path = b->o->path;
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : tool_fail(path, -errno);
	if (st.st_dev != b->created_st.st_dev ||
	    st.st_ino != b->created_st.st_ino) {
		fprintf(stderr, "swapio: %s: no longer the file bench "
			"created; left alone\n", path);
		return 1;
	}
	return unlink(path) ? tool_fail(path, -errno) : 0;
}

/* --op-size, or ops big enough that each one reaches every worker. */
static uint64_t op_bytes(const struct bench_opts *o,
			 const struct swapio_config *c)
{
	if (o->op_bytes)
		return o->op_bytes;
	if (c->block_size * c->threads > BENCH_OP_BYTES)
		return c->block_size * c->threads;
	return BENCH_OP_BYTES;
}

/*
 * Enough ops in flight to keep every worker's queue full, within 1 GiB,
 * or --in-flight of them (the command line checked its 1 GiB); never
 * more than the pass has ops.
 */
static void window_size(const struct bench_opts *o, struct bench_result *r)
{
	const struct swapio_config *c = &r->cfg;
	uint64_t chunk = op_bytes(o, c), need, nchunks, n;

	if (chunk > r->size)
		chunk = r->size;
	nchunks = (r->size + chunk - 1) / chunk;
	need = c->block_size * c->queue_depth * c->threads;
	n = (need + chunk - 1) / chunk + 1;	/* one more to refill */
	if (n > BENCH_WINDOW_MAX_BYTES / chunk)
		n = BENCH_WINDOW_MAX_BYTES / chunk;
	if (n > WINDOW_DEF_MAX)
		n = WINDOW_DEF_MAX;
	if (n < 2)
		n = 2;
	/* Ops that -b x -t made bigger than 64 MiB may not fit --in-flight
	 * in 1 GiB: as many as fit. */
	if (o->in_flight)
		n = o->in_flight <= BENCH_WINDOW_MAX_BYTES / chunk ?
		    o->in_flight : BENCH_WINDOW_MAX_BYTES / chunk;
	if (!n)
		n = 1;
	if (n > nchunks)
		n = nchunks;
	assert(n >= 1 && n <= BENCH_WINDOW_MAX);
	r->chunk = chunk;
	r->window = (unsigned int)n;
}

/*
 * Caller memory: one malloc'd region holding every op's buffer at 4 KiB
 * boundaries, never advised, locked or allocated by swapio, as a runtime's
 * tensors are; with BENCH_MEM_CALLER_HUGE, collapsed into huge pages by
 * swapio_mem_hugepages() first.
 */
static int region_alloc(struct bench *b)
{
	struct bench_result *r = b->r;
	uintptr_t at;

	window_size(b->o, r);
	r->pinned = false;
	r->huge = false;
	r->memory = b->o->memory;
	b->region = malloc(r->window * r->chunk + 4096);
	if (!b->region)
		return tool_fail("buffers", -ENOMEM);
	at = ((uintptr_t)b->region + 4095) & ~(uintptr_t)4095;
	for (unsigned int i = 0; i < r->window; i++) {
		b->bufs[i] = (unsigned char *)at + (size_t)i * r->chunk;
		pattern_fill(b->bufs[i], r->chunk, i * r->chunk);
	}
	if (r->memory == BENCH_MEM_CALLER_HUGE) {
		r->huge_bytes = swapio_mem_hugepages((void *)at,
						     r->window * r->chunk);
		if (r->huge_bytes < 0)
			return tool_fail("swapio_mem_hugepages",
					 (int)r->huge_bytes);
		r->huge = r->huge_bytes > 0;
	}
	return 0;
}

static int window_alloc(struct bench *b)
{
	struct bench_result *r = b->r;
	unsigned int flags = 0;
	int ret;

	if (b->o->memory != BENCH_MEM_SWAPIO)
		return region_alloc(b);

	if (!b->o->no_pin)
		flags |= SWAPIO_BUF_LOCKED;
	if (!b->o->no_huge)
		flags |= SWAPIO_BUF_HUGE;
	window_size(b->o, r);
	r->pinned = !b->o->no_pin;
	r->huge = !b->o->no_huge;
	for (unsigned int i = 0; i < r->window; i++) {
		ret = swapio_buf_alloc(r->chunk, flags, (void **)&b->bufs[i]);
		if (ret == SWAPIO_EMEMLOCK) {
			/* Pinning is an optimisation: go on without it. */
			flags &= ~SWAPIO_BUF_LOCKED;
			r->pinned = false;
			ret = swapio_buf_alloc(r->chunk, flags,
					       (void **)&b->bufs[i]);
		}
		if (ret)
			return tool_fail("buffers", ret);
		/* Filled once; --verify refills per chunk. */
		pattern_fill(b->bufs[i], r->chunk, i * r->chunk);
	}
	return 0;
}

/*
 * The op order of a pass (--random) and room for the latency of every op
 * of a phase: both known before the clock starts, so nothing is
 * allocated while it runs.
 */
static int order_alloc(struct bench *b)
{
	const unsigned int loops = b->o->loops ? b->o->loops : 1;
	struct bench_result *r = b->r;

	b->nr_ops = (r->size + r->chunk - 1) / r->chunk;
	r->random = b->o->random;
	b->lat_ns = calloc(b->nr_ops * loops, sizeof(*b->lat_ns));
	if (!b->lat_ns)
		return tool_fail("latency array", -ENOMEM);
	if (!r->random)
		return 0;
	b->order = malloc(b->nr_ops * sizeof(*b->order));
	if (!b->order)
		return tool_fail("op order", -ENOMEM);
	bench_shuffle(b->order, b->nr_ops, ORDER_SEED);
	return 0;
}

static int bench_open(struct bench *b)
{
	const struct bench_opts *o = b->o;
	struct bench_result *r = b->r;
	unsigned int flags = SWAPIO_O_READ;
	char what[64];
	int ret;

	ret = swapio_handle_create(&o->cfg, &b->h);
	if (ret) {
		snprintf(what, sizeof(what), "engine %s",
			 swapio_engine_name(o->cfg.engine) ?: "?");
		return tool_fail(what, ret);
	}
	swapio_handle_config(b->h, &r->cfg);
	r->engine = swapio_handle_engine(b->h);
	snprintf(r->note, sizeof(r->note), "%s",
		 swapio_handle_engine_note(b->h));
	if (o->modes & BENCH_WRITE)
		flags |= SWAPIO_O_WRITE;
	/* A file of ours by its descriptor; by name where /proc is not. */
	ret = -ENOENT;
	if (b->created) {
		snprintf(what, sizeof(what), "/proc/self/fd/%d", b->created_fd);
		ret = swapio_file_open(b->h, what, flags, &b->f);
	}
	if (ret == -ENOENT)
		ret = swapio_file_open(b->h, o->path, flags, &b->f);
	if (ret)
		return tool_fail(o->path, ret);
	r->direct = swapio_file_direct(b->f);
	ret = window_alloc(b);
	return ret ? ret : order_alloc(b);
}

static void bench_close(struct bench *b)
{
	if (b->region)
		free(b->region);
	else
		for (unsigned int i = 0; i < BENCH_WINDOW_MAX; i++)
			swapio_buf_free(b->bufs[i], b->r->chunk);
	free(b->order);
	free(b->lat_ns);
	swapio_file_close(b->f);
	swapio_handle_destroy(b->h);
}

/* ------------------------------------------------------------------ */
/* Transfers                                                           */
/* ------------------------------------------------------------------ */

static void progress(struct bench *b, unsigned int p, uint64_t done,
		     uint64_t total)
{
	double now = tool_now();

	if (!b->tty || now - b->last_progress < PROGRESS_SECS)
		return;
	b->last_progress = now;
	fprintf(stderr, "\r%-5s %5.1f%%  %.2f GB/s ", bench_phase_name[p],
		100.0 * (double)done / (double)total,
		(double)done / 1e9 / (now - b->t0));
}

static size_t chunk_len(const struct bench *b, uint64_t off)
{
	uint64_t left = b->r->size - off;

	return left < b->r->chunk ? (size_t)left : (size_t)b->r->chunk;
}

static int op_start(struct bench *b, unsigned int p, unsigned int slot,
		    uint64_t off)
{
	size_t len = chunk_len(b, off);
	char what[4200];
	int ret;

	b->offs[slot] = off;
	if (p == PH_WRITE && b->o->verify)
		pattern_fill(b->bufs[slot], len, off);
	b->t_submit_ns[slot] = tool_now_ns();
	if (p == PH_WRITE)
		ret = swapio_submit_write(b->h, b->f, b->bufs[slot], len, off,
					  &b->ops[slot]);
	else
		ret = swapio_submit_read(b->h, b->f, b->bufs[slot], len, off,
					 &b->ops[slot]);
	if (!ret)
		return 0;
	snprintf(what, sizeof(what), "%s %s", bench_phase_name[p],
		 b->o->path);
	return tool_fail(what, ret);
}

static int verify(const struct bench *b, unsigned int slot, size_t len)
{
	unsigned char want;
	int64_t bad;

	bad = pattern_check(b->bufs[slot], len, b->offs[slot], &want);
	if (bad < 0)
		return 0;
	fprintf(stderr, "swapio: verify %s: mismatch at byte %" PRId64
		" (read 0x%02x, expected 0x%02x)\n", b->o->path, bad,
		b->bufs[slot][bad - (int64_t)b->offs[slot]], want);
	return 1;
}

/* Wait for the op in @slot and check what it did. */
static int op_end(struct bench *b, unsigned int p, unsigned int slot)
{
	size_t len = chunk_len(b, b->offs[slot]);
	int64_t res = swapio_op_wait(b->ops[slot], -1);
	char what[4200];

	assert(b->nr_lat < b->nr_ops * (b->o->loops ? b->o->loops : 1));
	b->lat_ns[b->nr_lat++] = tool_now_ns() - b->t_submit_ns[slot];
	swapio_op_free(b->ops[slot]);
	b->ops[slot] = NULL;
	snprintf(what, sizeof(what), "%s %s at offset %" PRIu64,
		 bench_phase_name[p], b->o->path, b->offs[slot]);
	if (res < 0)
		return tool_fail(what, (int)res);
	if ((uint64_t)res != len) {
		fprintf(stderr, "swapio: %s: short transfer (%" PRId64 " of "
			"%zu bytes)\n", what, res, len);
		return 1;
	}
	if (p == PH_READ && b->o->verify)
		return verify(b, slot, len);
	return 0;
}

/* Where op @i of a pass goes: in order, or --random's permutation. */
static uint64_t op_offset(const struct bench *b, uint64_t i)
{
	return (b->order ? b->order[i] : i) * b->r->chunk;
}

/*
 * One pass over the file. Ops complete roughly in order, so the oldest is
 * waited for and its buffer refilled: a ring of `window` slots. After an
 * error nothing new starts, but every op in flight is still waited for.
 * An op that finished before an older one is timed until its own wait
 * returns: only at --in-flight 1 is that the device's latency alone.
 */
static int run_pass(struct bench *b, unsigned int p, uint64_t *done,
		    uint64_t total)
{
	const unsigned int window = b->r->window;
	unsigned int head = 0, n = 0;
	uint64_t next = 0;
	int rc = 0, ret;

	for (;;) {
		if (interrupted && !rc) {
			fprintf(stderr, "\nswapio: bench: interrupted\n");
			rc = 130;
		}
		while (!rc && n < window && next < b->nr_ops) {
			rc = op_start(b, p, (head + n) % window,
				      op_offset(b, next));
			if (!rc) {
				next++;
				n++;
			}
		}
		if (!n)
			return rc;
		*done += chunk_len(b, b->offs[head]);
		ret = op_end(b, p, head);
		rc = rc ? rc : ret;
		head = (head + 1) % window;
		n--;
		progress(b, p, *done, total);
	}
}

static int run_phase(struct bench *b, unsigned int p)
{
	struct bench_phase *ph = &b->r->ph[p];
	unsigned int loops = b->o->loops ? b->o->loops : 1;
	uint64_t done = 0, total = b->r->size * loops;
	double c0;
	int rc = 0;

	swapio_handle_stats_reset(b->h);
	b->nr_lat = 0;
	c0 = tool_cpu_seconds();
	b->t0 = b->last_progress = tool_now();
	for (unsigned int i = 0; i < loops && !rc; i++)
		rc = run_pass(b, p, &done, total);
	ph->secs = tool_now() - b->t0;
	ph->cpu_secs = tool_cpu_seconds() - c0;
	swapio_handle_stats(b->h, &ph->st);
	bench_op_latency(b->lat_ns, b->nr_lat, ph);
	ph->bytes = total;
	ph->ran = !rc;
	if (b->tty)
		fputs("\r\033[K", stderr);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Shared with the store's bench                                       */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void bench_shuffle(uint64_t *v, uint64_t n, uint64_t seed)
{
	uint64_t i, j, t;

	for (i = 0; i < n; i++)
		v[i] = i;
	/* The modulo's bias is under n / 2^64: no benchmark can see it. */
	for (i = n; i > 1; i--) {
		j = splitmix64(&seed) % i;
		t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value that @pct percent of @ns reach. */
static double rank_us(const uint64_t *ns, uint64_t n, unsigned int pct)
{
	const uint64_t k = (n * pct + 99) / 100;

	return (double)ns[k ? k - 1 : 0] / 1e3;
}

void bench_op_latency(uint64_t *ns, uint64_t n, struct bench_phase *ph)
{
	double sum = 0;

	ph->op_p50_us = ph->op_p99_us = ph->op_mean_us = 0;
	if (!n)
		return;
	qsort(ns, n, sizeof(*ns), cmp_u64);
	for (uint64_t i = 0; i < n; i++)
		sum += (double)ns[i];
	ph->op_p50_us = rank_us(ns, n, 50);
	ph->op_p99_us = rank_us(ns, n, 99);
	ph->op_mean_us = sum / (double)n / 1e3;
}

bool bench_interrupted(void)
{
	return interrupted;
}

/* The library's threads block every signal, so these reach this one. */
void bench_catch_signals(bool on)
{
	static struct sigaction old_int, old_term;
	struct sigaction sa = { .sa_handler = on_signal };

	if (on) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, &old_int);
		sigaction(SIGTERM, &sa, &old_term);
	} else {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
	}
}

int bench_run(const struct bench_opts *o, struct bench_result *r)
{
	struct bench b = { .o = o, .r = r, .created_fd = -1 };
	int rc, ret;

	memset(r, 0, sizeof(*r));
	r->size = o->size ? o->size : ((o->modes & BENCH_WRITE) ? 1ull << 30
								 : 0);
	b.tty = !o->quiet && isatty(STDERR_FILENO);
	bench_catch_signals(true);
	rc = file_prepare(&b);
	if (!rc) {
		rc = bench_open(&b);
		for (unsigned int p = 0; p < NR_PHASES && !rc; p++)
			if (o->modes & (1u << p))
				rc = run_phase(&b, p);
		bench_close(&b);
	}
	/* A file this run made goes, even after an error, unless kept. */
	if (b.created && (!o->keep || rc)) {
		ret = file_remove(&b);
		rc = rc ? rc : ret;
	}
	r->created = b.created && !rc && o->keep;
	if (b.created_fd >= 0)
		close(b.created_fd);
	bench_catch_signals(false);
	return rc;
}
