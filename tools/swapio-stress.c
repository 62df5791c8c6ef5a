/* SPDX-License-Identifier: MIT */
/*
 * swapio-stress: a soak test. Several threads submit mixed reads and
 * writes of random sizes at random (often odd) offsets and buffer
 * addresses against several files through one handle, for a set time,
 * and check every byte read against what was last written there.
 *
 * Each file is cut into regions with one lock each; an op locks the one
 * or two regions it covers, so concurrent ops never overlap and the
 * expected content is always known: a shadow copy of every file is kept
 * in memory. A write that fails (only under --fault) leaves its regions
 * "unknown" until a later write covers them whole; reads there are not
 * checked. At the end every file is read back and compared in full.
 *
 * A watchdog thread ends the run with exit code 3 when no op completes
 * for --watchdog seconds. Exit codes: 0 clean, 1 a mismatch or an
 * unexpected error, 2 usage, 3 hang, 77 engine unavailable here.
 *
 * Beside the files, --store-threads threads put, get and remove keys of
 * a store, each checking its own keys against a model; at the end every
 * key is checked, then again after the store is closed and reopened.
 * With --contracts one more thread checks the handle's and the store's
 * promises under that load (see "Contracts").
 *
 * Uses only swapio.h, like every tool.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "swapio.h"

#define REGION		(256u << 10)	/* lock and "unknown" unit */
#define MAX_BATCH	4		/* async ops in flight per thread */
#define MAX_THREADS	64
#define MAX_FILES	64
#define EXIT_HANG	3
#define EXIT_SKIP	77

struct opts {
	double		seconds;
	unsigned int	threads;
	unsigned int	files;
	unsigned int	file_mib;
	unsigned int	watchdog_s;
	unsigned int	store_threads;
	unsigned int	engine;
	const char	*dir;
	const char	*fault;
	uint64_t	seed;
	bool		buffered;
	bool		contracts;
};

struct sfile {
	char		*path;
	swapio_file	*f;
	uint64_t	size;		/* odd: the last region is short */
	unsigned int	nr_regions;
	unsigned char	*shadow;	/* what the file holds */
	bool		*unknown;	/* per region: a write failed */
	pthread_mutex_t	*locks;		/* per region */
};

struct counters {
	atomic_uint_least64_t	ops;		/* completed */
	atomic_uint_least64_t	reads;
	atomic_uint_least64_t	writes;
	atomic_uint_least64_t	bytes_written;
	atomic_uint_least64_t	bytes_verified;
	atomic_uint_least64_t	mismatches;
	atomic_uint_least64_t	failed_ops;	/* by injected faults */
	atomic_uint_least64_t	bad;		/* unexpected */
	atomic_uint_least64_t	store_ops;
	atomic_uint_least64_t	contracts;	/* probes of --contracts */
};

static struct opts o = {
	.seconds = 10, .threads = 4, .files = 4, .file_mib = 4,
	.watchdog_s = 20, .seed = 1, .store_threads = 2,
};
static swapio_handle *h;
static struct sfile files[MAX_FILES];
static struct counters cnt;
static atomic_bool stop;	/* workers: time is up */
static atomic_bool done;	/* watchdog: all I/O is over */
static atomic_uint_least64_t progress;	/* ops done, set-up included */
static bool expect_errors;	/* --fault can make ops fail */
static char *scratch;		/* our directory under --dir */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(unsigned char *p, size_t n, uint64_t *s)
{
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		v = rnd(s);
		memcpy(p + i, &v, 8);
	}
	v = rnd(s);
	memcpy(p + i, &v, n - i);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void __attribute__((format(printf, 1, 2))) complain(const char *fmt,
							    ...)
{
	va_list ap;

	fputs("swapio-stress: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p) {
		complain("out of memory (%zu bytes)", n);
		exit(1);
	}
	return p;
}

#define ADD(c, v)	atomic_fetch_add_explicit(&cnt.c, (v), \
						  memory_order_relaxed)
#define GET(c)		atomic_load_explicit(&cnt.c, memory_order_relaxed)

/*
 * Can a fault spec make ops fail? EINTR/EAGAIN, short transfers and
 * delays are always recovered (unless sticky=1); other errnos are not.
 */
static bool spec_fails_ops(const char *spec)
{
	const char *e = strstr(spec, "errno=");

	if (!e)
		return false;
	if (strstr(spec, "sticky=1"))
		return true;
	return strncmp(e + 6, "EINTR", 5) && strncmp(e + 6, "EAGAIN", 6);
}

/* ------------------------------------------------------------------ */
/* One op                                                              */
/* ------------------------------------------------------------------ */

struct op {
	struct sfile	*sf;
	unsigned int	r0, nr;		/* regions locked */
	bool		write;
	bool		whole;		/* covers its regions */
	uint64_t	off;
	size_t		len;
	unsigned char	*mem;		/* odd address within alloc */
	unsigned char	*alloc;
	swapio_op	*sop;
};

static uint64_t region_end(const struct sfile *sf, unsigned int r)
{
	uint64_t end = (uint64_t)(r + 1) * REGION;

	return end < sf->size ? end : sf->size;
}

/* Lock one or two neighbouring regions, in order; false if busy. */
static bool op_lock(struct op *op, uint64_t *s)
{
	struct sfile *sf = &files[rnd(s) % o.files];
	unsigned int r0 = (unsigned int)(rnd(s) % sf->nr_regions);
	unsigned int nr = r0 + 1 < sf->nr_regions && rnd(s) % 4 == 0 ? 2 : 1;

	for (unsigned int i = 0; i < nr; i++) {
		if (pthread_mutex_trylock(&sf->locks[r0 + i])) {
			while (i--)
				pthread_mutex_unlock(&sf->locks[r0 + i]);
			return false;
		}
	}
	op->sf = sf;
	op->r0 = r0;
	op->nr = nr;
	return true;
}

static void op_unlock(struct op *op)
{
	for (unsigned int i = 0; i < op->nr; i++)
		pthread_mutex_unlock(&op->sf->locks[op->r0 + i]);
}

static bool op_any_unknown(const struct op *op)
{
	for (unsigned int i = 0; i < op->nr; i++)
		if (op->sf->unknown[op->r0 + i])
			return true;
	return false;
}

/* A length from 1 byte to the whole span, weighted to small and odd. */
static size_t pick_len(uint64_t span, uint64_t *s)
{
	static const uint64_t caps[] = { 600, 8192 + 1, 65536 + 3, UINT64_MAX };
	uint64_t cap = caps[rnd(s) % 4];

	if (cap > span)
		cap = span;
	return (size_t)(1 + rnd(s) % cap);
}

/* Choose what @op does inside its locked regions. */
static void op_plan(struct op *op, uint64_t *s)
{
	const uint64_t start = (uint64_t)op->r0 * REGION;
	const uint64_t span = region_end(op->sf, op->r0 + op->nr - 1) - start;

	/* An unknown region is first made known again by a whole write. */
	op->whole = op_any_unknown(op) || rnd(s) % 16 == 0;
	op->write = op->whole || rnd(s) % 2;
	op->len = op->whole ? (size_t)span : pick_len(span, s);
	op->off = start + (op->whole ? 0 : rnd(s) % (span - op->len + 1));
	/* A page boundary, or up to 4095 bytes past one: odd addresses. */
	op->alloc = xmalloc(op->len + 8192);
	op->mem = (unsigned char *)(((uintptr_t)op->alloc + 4095) / 4096 *
				    4096);
	op->mem += rnd(s) % 3 == 0 ? 0 : rnd(s) % 4096;
	if (op->write)
		fill(op->mem, op->len, s);
}

static int op_submit(struct op *op, uint64_t *s)
{
	const bool by_path = rnd(s) % 16 == 0;

	if (op->write)
		return by_path ?
			swapio_submit_write_path(h, op->sf->path, op->mem,
						 op->len, op->off, &op->sop) :
			swapio_submit_write(h, op->sf->f, op->mem, op->len,
					    op->off, &op->sop);
	return by_path ?
		swapio_submit_read_path(h, op->sf->path, op->mem, op->len,
					op->off, &op->sop) :
		swapio_submit_read(h, op->sf->f, op->mem, op->len, op->off,
				   &op->sop);
}

static void report_mismatch(const struct op *op, const unsigned char *want)
{
	size_t i = 0;

	while (i < op->len && op->mem[i] == want[i])
		i++;
	complain("MISMATCH %s offset %llu (op %llu+%zu): got %#x want %#x",
		 op->sf->path, (unsigned long long)(op->off + i),
		 (unsigned long long)op->off, op->len, op->mem[i], want[i]);
	ADD(mismatches, 1);
}

static void op_failed(struct op *op, ssize_t res)
{
	if (res < 0 && expect_errors) {
		ADD(failed_ops, 1);
		/* A failed write may have moved part of its bytes. */
		for (unsigned int i = 0; op->write && i < op->nr; i++)
			op->sf->unknown[op->r0 + i] = true;
		return;
	}
	complain("%s %s at %llu+%zu: %zd (%s)", op->write ? "write" : "read",
		 op->sf->path, (unsigned long long)op->off, op->len, res,
		 res < 0 ? swapio_strerror((int)res) : "short");
	ADD(bad, 1);
}

/* Check or record the result, then release everything @op holds. */
static void op_finish(struct op *op, ssize_t res)
{
	unsigned char *shadow = op->sf->shadow + op->off;

	ADD(ops, 1);
	atomic_fetch_add(&progress, 1);
	if (res != (ssize_t)op->len) {
		op_failed(op, res);
	} else if (op->write) {
		memcpy(shadow, op->mem, op->len);
		for (unsigned int i = 0; op->whole && i < op->nr; i++)
			op->sf->unknown[op->r0 + i] = false;
		ADD(writes, 1);
		ADD(bytes_written, op->len);
	} else {
		ADD(reads, 1);
		if (op_any_unknown(op))
			;	/* nothing known to compare with */
		else if (memcmp(op->mem, shadow, op->len))
			report_mismatch(op, shadow);
		else
			ADD(bytes_verified, op->len);
	}
	op_unlock(op);
	free(op->alloc);
}

/* ------------------------------------------------------------------ */
/* Worker threads                                                      */
/* ------------------------------------------------------------------ */

/* The result of @sop, waited for in slices so that a stop is noticed. */
static ssize_t wait_op(swapio_op *sop)
{
	ssize_t res;

	while ((res = swapio_op_wait(sop, 250)) == -ETIMEDOUT)
		;
	swapio_op_free(sop);
	return res;
}

/* Wait for a batch in completion order, through swapio_wait_any(). */
static void wait_batch(struct op *ops, unsigned int n)
{
	swapio_op *sops[MAX_BATCH];
	int i;

	for (unsigned int j = 0; j < n; j++)
		sops[j] = ops[j].sop;
	while (n) {
		i = swapio_wait_any(sops, n, 250);
		if (i == -ETIMEDOUT)
			continue;
		if (i < 0) {
			complain("swapio_wait_any: %s", swapio_strerror(i));
			exit(1);
		}
		op_finish(&ops[i], wait_op(sops[i]));
		n--;
		ops[i] = ops[n];
		sops[i] = sops[n];
	}
}

static void run_batch(uint64_t *s)
{
	struct op ops[MAX_BATCH];
	unsigned int n = 0, want = 1 + (unsigned int)(rnd(s) % MAX_BATCH);
	int ret;

	for (unsigned int tries = 0; n < want && tries < 8; tries++) {
		if (!op_lock(&ops[n], s))
			continue;
		op_plan(&ops[n], s);
		ret = op_submit(&ops[n], s);
		if (ret) {
			op_finish(&ops[n], ret);
			continue;
		}
		n++;
	}
	wait_batch(ops, n);
}

static void *worker(void *arg)
{
	uint64_t s = o.seed * 1000003u + (uintptr_t)arg;

	while (!atomic_load(&stop))
		run_batch(&s);
	return NULL;
}

static void print_report(const char *how, double secs)
{
	struct swapio_stats st;

	swapio_handle_stats(h, &st);
	printf("swapio-stress: %s engine=%s seconds=%.1f threads=%u files=%u "
	       "ops=%llu ops/s=%.0f reads=%llu writes=%llu "
	       "bytes_written=%llu bytes_verified=%llu mismatches=%llu "
	       "failed_ops=%llu unexpected=%llu retries=%llu store_ops=%llu "
	       "contracts=%llu\n",
	       how, swapio_handle_engine(h), secs, o.threads, o.files,
	       (unsigned long long)GET(ops), (double)GET(ops) / secs,
	       (unsigned long long)GET(reads), (unsigned long long)GET(writes),
	       (unsigned long long)GET(bytes_written),
	       (unsigned long long)GET(bytes_verified),
	       (unsigned long long)GET(mismatches),
	       (unsigned long long)GET(failed_ops),
	       (unsigned long long)GET(bad),
	       (unsigned long long)st.retries,
	       (unsigned long long)GET(store_ops),
	       (unsigned long long)GET(contracts));
	fflush(stdout);
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) && errno != ENOENT)
		complain("remove %s: %s", path, strerror(errno));
	return 0;
}

/*
 * The scratch directory and everything in it, whatever the store made
 * there: mkdtemp() made it private (0700), so all it holds is ours. Links
 * are removed as links, never followed.
 */
static void scratch_remove(void)
{
	if (scratch)
		nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* No op completed for watchdog_s seconds: report and leave at once. */
static void *watchdog(void *arg)
{
	double t0 = *(const double *)arg, last_t = now_s();
	uint64_t last = atomic_load(&progress), cur;

	while (!atomic_load(&done)) {
		usleep(200000);
		cur = atomic_load(&progress);
		if (cur != last) {
			last = cur;
			last_t = now_s();
		} else if (now_s() - last_t > o.watchdog_s) {
			complain("HANG: no op completed for %u s",
				 o.watchdog_s);
			print_report("hang", now_s() - t0);
			/* Threads are stuck in swapio: leave, but tidy up. */
			scratch_remove();
			_exit(EXIT_HANG);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static int file_setup(struct sfile *sf, unsigned int i)
{
	uint64_t s = o.seed + i;
	ssize_t res;
	int ret;

	sf->size = (uint64_t)o.file_mib << 20;
	sf->size -= 777 + i;	/* odd sizes, a short last region */
	sf->nr_regions = (unsigned int)((sf->size + REGION - 1) / REGION);
	sf->shadow = xmalloc(sf->size);
	sf->unknown = xmalloc(sf->nr_regions * sizeof(*sf->unknown));
	sf->locks = xmalloc(sf->nr_regions * sizeof(*sf->locks));
	for (unsigned int r = 0; r < sf->nr_regions; r++)
		pthread_mutex_init(&sf->locks[r], NULL);
	ret = swapio_file_open(h, sf->path, SWAPIO_O_READ | SWAPIO_O_WRITE |
			       SWAPIO_O_CREATE | SWAPIO_O_TRUNC, &sf->f);
	if (ret)
		return ret;
	fill(sf->shadow, sf->size, &s);
	res = swapio_pwrite(h, sf->f, sf->shadow, sf->size, 0);
	atomic_fetch_add(&progress, 1);
	if (res == (ssize_t)sf->size)
		return 0;
	if (res >= 0 || !expect_errors)
		return res < 0 ? (int)res : -EIO;
	for (unsigned int r = 0; r < sf->nr_regions; r++)
		sf->unknown[r] = true;
	return 0;
}

/* Read every known region back in one pass, retrying injected faults. */
static void final_check(struct sfile *sf)
{
	for (unsigned int r = 0; r < sf->nr_regions; r++) {
		struct op op = {
			.sf = sf, .r0 = r, .nr = 1,
			.off = (uint64_t)r * REGION,
		};
		ssize_t res = -1;

		op.len = (size_t)(region_end(sf, r) - op.off);
		op.alloc = xmalloc(op.len);
		op.mem = op.alloc;
		for (int i = 0; i < 16 && res != (ssize_t)op.len; i++)
			res = swapio_pread(h, sf->f, op.mem, op.len, op.off);
		pthread_mutex_lock(&sf->locks[r]);
		op_finish(&op, res);	/* unlocks, frees */
	}
}

static void file_teardown(struct sfile *sf)
{
	int ret = swapio_file_close(sf->f);	/* NULL if never opened */

	if (ret)
		complain("close %s: %s", sf->path, swapio_strerror(ret));
	if (sf->path)
		unlink(sf->path);
	for (unsigned int r = 0; sf->locks && r < sf->nr_regions; r++)
		pthread_mutex_destroy(&sf->locks[r]);
	free(sf->locks);
	free(sf->unknown);
	free(sf->shadow);
	free(sf->path);
}

/* ------------------------------------------------------------------ */
/* The store                                                           */
/* ------------------------------------------------------------------ */

/*
 * Store threads put, get and remove keys of a store in the scratch
 * directory. Key k belongs to thread k % store_threads, so each thread
 * alone knows what its keys must hold: a value is its length and the
 * seed it was made from. A failed put must change nothing, so the model
 * changes only on success.
 */
#define STORE_KEYS	64
#define STORE_VAL_MAX	(256u << 10)

struct skey {
	size_t		len;	/* 0: absent */
	uint64_t	seed;
};

static swapio_store *store;
static struct skey skeys[STORE_KEYS];

static void skey_name(char *buf, size_t n, unsigned int k)
{
	snprintf(buf, n, "stress/tensor.%u", k);
}

static unsigned char *make_value(size_t len, uint64_t seed)
{
	unsigned char *buf = xmalloc(len);
	uint64_t s = seed;

	fill(buf, len, &s);
	return buf;
}

/* An error: counted as injected if faults can explain it. */
static void store_failed(const char *what, unsigned int k, int err)
{
	if (err < 0 && err != -EBADMSG && expect_errors) {
		ADD(failed_ops, 1);
		return;
	}
	complain("store %s of key %u: %s", what, k, swapio_strerror(err));
	if (err == -EBADMSG)
		ADD(mismatches, 1);	/* the store caught wrong data */
	else
		ADD(bad, 1);
}

static int store_put_value(const char *key, const void *buf, size_t len,
			   bool async)
{
	swapio_store_op *op;
	int64_t res;
	int ret;

	if (!async)
		return swapio_store_put(store, key, buf, len);
	ret = swapio_store_submit_put(store, key, buf, len, &op);
	if (ret)
		return ret;
	while ((res = swapio_store_op_wait(op, 250)) == -ETIMEDOUT)
		;
	swapio_store_op_free(op);
	return res < 0 ? (int)res : 0;
}

static void store_put(unsigned int k, uint64_t *s)
{
	size_t len = 1 + (size_t)(rnd(s) % STORE_VAL_MAX);
	uint64_t seed = rnd(s);
	unsigned char *buf = make_value(len, seed);
	char key[64];
	int ret;

	skey_name(key, sizeof(key), k);
	ret = store_put_value(key, buf, len, rnd(s) % 2);
	if (ret) {
		store_failed("put", k, ret);
	} else {
		skeys[k].len = len;
		skeys[k].seed = seed;
		ADD(bytes_written, len);
	}
	free(buf);
}

/* Key @k holds what the model says; returns false on a failed read. */
static bool store_check(unsigned int k)
{
	unsigned char *got, *want;
	char key[64];
	int ret;

	skey_name(key, sizeof(key), k);
	if (!skeys[k].len) {
		ret = (int)swapio_store_size(store, key);
		if (ret != -ENOENT)
			store_failed("size of a removed key", k, ret < 0 ?
				     ret : -EEXIST);
		return true;
	}
	got = xmalloc(skeys[k].len);
	ret = swapio_store_get(store, key, got, skeys[k].len);
	if (!ret) {
		want = make_value(skeys[k].len, skeys[k].seed);
		if (memcmp(got, want, skeys[k].len)) {
			complain("MISMATCH store key %u", k);
			ADD(mismatches, 1);
		} else {
			ADD(bytes_verified, skeys[k].len);
		}
		free(want);
	}
	free(got);
	if (ret && ret != -EIO)
		store_failed("get", k, ret);
	return ret != -EIO;
}

static void store_remove(unsigned int k)
{
	char key[64];
	int ret;

	skey_name(key, sizeof(key), k);
	ret = swapio_store_remove(store, key);
	if (!ret && skeys[k].len)
		skeys[k].len = 0;
	else if (ret != -ENOENT || skeys[k].len)
		store_failed("remove", k, ret ? ret : -EEXIST);
}

static void *store_worker(void *arg)
{
	const unsigned int id = (unsigned int)(uintptr_t)arg;
	uint64_t s = o.seed * 7919u + id, r;
	unsigned int k;

	while (!atomic_load(&stop)) {
		k = id + o.store_threads *
		    (unsigned int)(rnd(&s) % (STORE_KEYS / o.store_threads));
		r = rnd(&s) % 16;
		if (r < 7)
			store_put(k, &s);
		else if (r < 15 && !store_check(k))
			store_failed("get", k, -EIO);
		else if (r == 15)
			store_remove(k);
		ADD(store_ops, 1);
		atomic_fetch_add(&progress, 1);
	}
	return NULL;
}

/* Every key, then again after closing and reopening the store. */
static void store_final_check(void)
{
	char *dir;
	int ret;

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int k = 0; k < STORE_KEYS; k++) {
			int tries = 0;

			while (!store_check(k) && ++tries < 16)
				;
			if (tries == 16)
				store_failed("get", k, -EIO);
		}
		if (pass)
			break;
		swapio_store_close(store);
		store = NULL;
		if (asprintf(&dir, "%s/store", scratch) < 0)
			return;
		ret = swapio_store_open(h, dir, NULL, &store);
		free(dir);
		if (ret) {
			store_failed("reopen", 0, ret);
			return;
		}
	}
}

static int store_setup(void)
{
	char *dir;
	int ret;

	if (!o.store_threads)
		return 0;
	if (asprintf(&dir, "%s/store", scratch) < 0)
		return -ENOMEM;
	ret = swapio_store_open(h, dir, NULL, &store);
	free(dir);
	return ret;
}

static void store_teardown(void)
{
	if (o.store_threads)
		swapio_store_close(store);
}

/* ------------------------------------------------------------------ */
/* Contracts (--contracts)                                             */
/* ------------------------------------------------------------------ */

/*
 * One more thread walks, in turn and under the load of all the others,
 * the promises that concurrency tends to break:
 *   barrier  a 4 KiB write, then swapio_wait_all(): it returns 0 with
 *            that write done, while the other threads keep the handle
 *            busy throughout;
 *   order    put a key, submit a second put, remove the key before that
 *            put is waited for: the key stays removed, and still is after
 *            the store is reopened at the end;
 *   hol      on a one-worker handle of its own, a 4 KiB read submitted
 *            after a 512 MiB buffered one of a sparse file (a single
 *            request, long enough that no scheduling delay on a loaded
 *            machine covers it) finishes first;
 *   fork     a child (no allocation, no threads) gets SWAPIO_EFORKED
 *            from the shared handle and store, and exits.
 */
#define HOL_BIG		(512u << 20)	/* ~0.1 s of copying zeros */

static unsigned int nr_order_keys;

static void contract_broken(const char *what, long long got)
{
	complain("CONTRACT %s: got %lld", what, got);
	ADD(bad, 1);
}

static void contract_barrier(swapio_file *bf, const unsigned char *buf)
{
	swapio_op *op;
	int ret;

	ret = swapio_submit_write(h, bf, buf, 4096, 0, &op);
	if (ret) {
		contract_broken("barrier submit", ret);
		return;
	}
	ret = swapio_wait_all(h, (int)o.watchdog_s * 1000);
	if (ret || !swapio_op_done(op))
		contract_broken("wait_all returned before its op", ret);
	else if (swapio_op_wait(op, 0) != 4096)
		contract_broken("barrier write", swapio_op_wait(op, 0));
	swapio_op_free(op);
}

static void order_key(char *key, size_t n, unsigned int i)
{
	snprintf(key, n, "contract/order.%u", i);
}

static void contract_order(const unsigned char *buf)
{
	swapio_store_op *op;
	char key[64];
	int64_t res;
	int ret;

	if (!store)
		return;
	order_key(key, sizeof(key), nr_order_keys++);
	ret = swapio_store_put(store, key, buf, 4096);
	if (!ret)
		ret = swapio_store_submit_put(store, key, buf + 1, 8192, &op);
	if (ret) {
		contract_broken("order put", ret);
		return;
	}
	ret = swapio_store_remove(store, key);
	res = swapio_store_op_wait(op, -1);
	swapio_store_op_free(op);
	if (ret || res < 0)
		contract_broken("order remove/put", ret ? ret : res);
	else if ((res = swapio_store_size(store, key)) != -ENOENT)
		contract_broken("remove after put did not win", res);
}

static void contract_order_final(void)
{
	char key[64];
	int64_t res;

	for (unsigned int i = 0; store && i < nr_order_keys; i++) {
		order_key(key, sizeof(key), i);
		res = swapio_store_size(store, key);
		if (res != -ENOENT)
			contract_broken("removed key back after reopen", res);
	}
}

/*
 * One round of the head-of-line contract: a 4 KiB read submitted after a
 * 512 MiB one on the same handle completes first. 1 if it did, 0 if the
 * big read was done by then, -1 on an error (reported).
 */
static int hol_round(swapio_handle *hh, swapio_file *hf, unsigned char *big,
		     unsigned char *small)
{
	swapio_op *b, *s;
	ssize_t res;
	int ret = 1;

	if (swapio_submit_read(hh, hf, big, HOL_BIG, 0, &b)) {
		contract_broken("hol submit", 0);
		return -1;
	}
	if (swapio_submit_read(hh, hf, small, 4096, HOL_BIG, &s)) {
		contract_broken("hol submit", 0);
		swapio_op_free(b);
		return -1;
	}
	res = swapio_op_wait(s, -1);
	if (res != 4096) {
		contract_broken("hol small read", res);
		ret = -1;
	} else if (swapio_op_done(b)) {
		ret = 0;
	}
	res = swapio_op_wait(b, -1);
	if (res != HOL_BIG) {
		contract_broken("hol big read", res);
		ret = -1;
	}
	swapio_op_free(s);
	swapio_op_free(b);
	return ret;
}

/*
 * The contract is an ordering, and a loaded machine can starve the
 * thread that would have finished the small read for as long as the big
 * one takes: it is broken only if every one of HOL_ROUNDS rounds says
 * so. A worker that plans the small read after the big one fails them
 * all.
 */
#define HOL_ROUNDS	5

static void contract_hol(swapio_handle *hh, swapio_file *hf,
			 unsigned char *big, unsigned char *small)
{
	for (int i = 0; i < HOL_ROUNDS; i++) {
		int r = hol_round(hh, hf, big, small);

		if (r != 0)
			return;
	}
	contract_broken("4 KiB read waited for the 512 MiB one", 0);
}

/* The child only calls what must fail at once, and never allocates. */
static void contract_fork(swapio_file *bf, unsigned char *buf)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		contract_broken("fork", -errno);
		return;
	}
	if (!pid) {
		alarm(10);
		if (swapio_pwrite(h, bf, buf, 4096, 0) != SWAPIO_EFORKED ||
		    swapio_wait_all(h, -1) != SWAPIO_EFORKED ||
		    (store && swapio_store_put(store, "contract/child", buf,
					       1) != SWAPIO_EFORKED))
			_exit(1);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		contract_broken("forked child", status);
}

static int contract_files(swapio_handle **hh, swapio_file **hf,
			  swapio_file **bf)
{
	struct swapio_config cfg = { .block_size = HOL_BIG, .threads = 1,
				     .engine = o.engine,
				     .flags = SWAPIO_CFG_BUFFERED };
	char path[4096];
	int ret, fd;

	snprintf(path, sizeof(path), "%s/barrier", scratch);
	ret = swapio_file_open(h, path, SWAPIO_O_WRITE | SWAPIO_O_CREATE, bf);
	if (!ret)
		ret = swapio_handle_create(&cfg, hh);
	snprintf(path, sizeof(path), "%s/hol", scratch);
	if (!ret)
		ret = swapio_file_open(*hh, path, SWAPIO_O_READ |
				       SWAPIO_O_WRITE | SWAPIO_O_CREATE, hf);
	/* Sparse: the page cache copies zeros, no disk I/O at all. */
	if (!ret) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, HOL_BIG * 2))
			ret = -errno;
		if (fd >= 0)
			close(fd);
	}
	return ret;
}

static void contract_unlink(const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	if (unlink(path) && errno != ENOENT)
		complain("unlink %s: %s", path, strerror(errno));
}

static void *contract_worker(void *arg)
{
	unsigned char *big = xmalloc(HOL_BIG), *small = xmalloc(8192 + 1);
	swapio_handle *hh = NULL;
	swapio_file *hf = NULL, *bf = NULL;
	int ret;

	(void)arg;
	memset(small, 0x5a, 8192 + 1);
	ret = contract_files(&hh, &hf, &bf);
	if (ret)
		contract_broken("set-up", ret);
	for (unsigned int i = 0; !ret && !atomic_load(&stop); i++) {
		switch (i % 4) {
		case 0: contract_barrier(bf, small); break;
		case 1: contract_order(small); break;
		case 2: contract_hol(hh, hf, big, small); break;
		default: contract_fork(bf, small); break;
		}
		ADD(contracts, 1);
		atomic_fetch_add(&progress, 1);
	}
	swapio_file_close(hf);
	swapio_file_close(bf);
	swapio_handle_destroy(hh);
	contract_unlink("barrier");
	contract_unlink("hol");
	free(big);
	free(small);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Options and main                                                    */
/* ------------------------------------------------------------------ */

static const char usage[] =
"usage: swapio-stress [options]\n"
"  --seconds N     run time (default 10)\n"
"  --threads N     submitting threads (default 4, at most 64)\n"
"  --files N       files (default 4, at most 64)\n"
"  --store-threads N  threads using a store beside the files (default 2,\n"
"                  at most 64; 0: no store)\n"
"  --file-mib N    size of each file in MiB (default 4)\n"
"  --engine NAME   auto, uring, aio or threads (default auto)\n"
"  --dir DIR       where to make a scratch directory\n"
"                  (default $TMPDIR, else /tmp)\n"
"  --fault SPEC    set SWAPIO_FAULT=SPEC for the handle\n"
"  --watchdog N    seconds without progress that count as a hang (20)\n"
"  --seed N        random seed (default 1)\n"
"  --buffered      no O_DIRECT\n"
"  --contracts     one more thread checks wait_all, the order of a remove\n"
"                  after a put, head-of-line order and fork, in turn\n"
"exit: 0 clean, 1 mismatch or error, 2 usage, 3 hang, 77 engine unavailable\n";

static bool parse_uint(const char *s, unsigned int min, unsigned int max,
		       unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = (unsigned int)v;
	return true;
}

static int parse_opt(int c, const char *arg)
{
	unsigned int v;
	char *end;
	int e;

	switch (c) {
	case 's':
		o.seconds = strtod(arg, &end);
		return *end || !(o.seconds > 0 && o.seconds < 1e6) ? -1 : 0;
	case 't':
		return parse_uint(arg, 1, MAX_THREADS, &o.threads) ? 0 : -1;
	case 'f':
		return parse_uint(arg, 1, MAX_FILES, &o.files) ? 0 : -1;
	case 'S':
		return parse_uint(arg, 0, MAX_THREADS, &o.store_threads) ?
		       0 : -1;
	case 'm':
		return parse_uint(arg, 1, 4096, &o.file_mib) ? 0 : -1;
	case 'w':
		return parse_uint(arg, 1, 3600, &o.watchdog_s) ? 0 : -1;
	case 'r':
		if (!parse_uint(arg, 0, UINT32_MAX, &v))
			return -1;
		o.seed = v;
		return 0;
	case 'e':
		e = swapio_engine_parse(arg);
		o.engine = (unsigned int)e;
		return e < 0 ? -1 : 0;
	case 'd':
		o.dir = arg;
		return 0;
	case 'F':
		o.fault = arg;
		return 0;
	case 'b':
		o.buffered = true;
		return 0;
	case 'c':
		o.contracts = true;
		return 0;
	default:
		return -1;
	}
}

static int parse_args(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "seconds", 1, NULL, 's' },	{ "threads", 1, NULL, 't' },
		{ "files", 1, NULL, 'f' },	{ "file-mib", 1, NULL, 'm' },
		{ "engine", 1, NULL, 'e' },	{ "dir", 1, NULL, 'd' },
		{ "fault", 1, NULL, 'F' },	{ "watchdog", 1, NULL, 'w' },
		{ "seed", 1, NULL, 'r' },	{ "buffered", 0, NULL, 'b' },
		{ "store-threads", 1, NULL, 'S' },
		{ "contracts", 0, NULL, 'c' },
		{ "help", 0, NULL, 'h' },	{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			exit(0);
		}
		if (parse_opt(c, optarg)) {
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static int handle_setup(void)
{
	struct swapio_config cfg = {
		.block_size = 128u << 10, .queue_depth = 16, .threads = 2,
		.engine = o.engine,
		.flags = o.buffered ? SWAPIO_CFG_BUFFERED : 0,
	};
	int ret;

	if (o.engine && (ret = swapio_engine_probe(o.engine))) {
		complain("engine %s unavailable here: %s",
			 swapio_engine_name(o.engine), swapio_strerror(ret));
		return EXIT_SKIP;
	}
	if (o.fault && setenv("SWAPIO_FAULT", o.fault, 1))
		return 1;
	expect_errors = o.fault && spec_fails_ops(o.fault);
	ret = swapio_handle_create(&cfg, &h);
	if (ret) {
		complain("swapio_handle_create: %s %s", swapio_strerror(ret),
			 swapio_error_detail());
		return 1;
	}
	return 0;
}

/* Run the threads for the set time, then check every file in full.
 * Returns the seconds that took. */
static double run(void)
{
	pthread_t th[MAX_THREADS], sth[MAX_THREADS], cth;
	double t0 = now_s();

	for (unsigned int i = 0; i < o.threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	for (unsigned int i = 0; i < o.store_threads; i++)
		pthread_create(&sth[i], NULL, store_worker,
			       (void *)(uintptr_t)i);
	if (o.contracts)
		pthread_create(&cth, NULL, contract_worker, NULL);
	while (now_s() - t0 < o.seconds)
		usleep(100000);
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < o.threads; i++)
		pthread_join(th[i], NULL);
	for (unsigned int i = 0; i < o.store_threads; i++)
		pthread_join(sth[i], NULL);
	if (o.contracts)
		pthread_join(cth, NULL);
	for (unsigned int i = 0; i < o.files; i++)
		final_check(&files[i]);
	if (o.store_threads)
		store_final_check();
	contract_order_final();
	return now_s() - t0;
}

static char *scratch_dir(void)
{
	const char *base = o.dir ? o.dir : getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/swapio-stress-XXXXXX", base ? base : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(dir)) {
		complain("mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

int main(int argc, char **argv)
{
	unsigned int nr_setup = 0;
	double secs = 0, t0 = now_s();
	pthread_t wd;
	int ret;

	if (parse_args(argc, argv))
		return 2;
	ret = handle_setup();
	if (ret)
		return ret;
	scratch = scratch_dir();
	ret = scratch ? 0 : 1;
	for (unsigned int i = 0; !ret && i < o.files; i++)
		if (asprintf(&files[i].path, "%s/f%u", scratch, i) < 0)
			ret = 1;
	/* Watched from the first write on: set-up can hang too. */
	pthread_create(&wd, NULL, watchdog, &t0);
	for (; !ret && nr_setup < o.files; nr_setup++) {
		ret = file_setup(&files[nr_setup], nr_setup);
		if (ret)
			complain("setting up %s: %s", files[nr_setup].path,
				 swapio_strerror(ret));
	}
	if (!ret) {
		ret = store_setup();
		if (ret)
			complain("swapio_store_open: %s %s", swapio_strerror(ret),
				 swapio_error_detail());
	}
	if (!ret)
		secs = run();
	atomic_store(&done, true);
	pthread_join(wd, NULL);
	store_teardown();
	for (unsigned int i = 0; i < o.files; i++)
		file_teardown(&files[i]);
	if (!ret)
		print_report(GET(mismatches) || GET(bad) ? "FAILED" : "ok",
			     secs);
	swapio_handle_destroy(h);
	scratch_remove();
	free(scratch);
	return ret || GET(mismatches) || GET(bad) ? 1 : 0;
}
