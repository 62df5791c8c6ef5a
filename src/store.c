/* SPDX-License-Identifier: MIT */
/*
 * The store: values by key in one directory, for swap space. It uses only
 * the public API (swapio.h) for its data I/O.
 *
 * On disk:
 *   lock   flock()ed while a process owns the store.
 *   data   extents of `block` bytes granularity; each extent is a header
 *          block (struct vhdr: magic, version, key, length, generation,
 *          checksum) followed by the payload, padded to the block, so the
 *          payload stays aligned for O_DIRECT.
 *   index  a log of fixed-size records (struct irec), each checksummed: a
 *          HEAD record, then PUT (key -> extent) and DEL records in the
 *          order they took effect. Replayed at open, compacted (rewritten
 *          and renamed into place) when mostly dead.
 *
 * Why a crash never mixes old and new: a put writes its extent into free
 * space, which no live key refers to, and only when both writes have
 * completed does it append its PUT record and switch the in-memory map.
 * The data was handed to the kernel before the record, so a process
 * killed at any moment leaves a log whose every record points at complete
 * data. A record cut short by the kill fails its checksum and is dropped
 * at replay, and space that no replayed record claims is free: the
 * extents of unfinished puts are reclaimed just by not being referenced.
 * Replay applies records with the same function (apply_put / apply_del)
 * that ran when they were appended, so the recovered map is the map the
 * process had.
 *
 * Locking: s->lock guards the map, the free list, the index and the
 * generation counter. No I/O on the data file runs under it; index
 * appends (one pwrite of 320 bytes) do.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "swapio.h"

#define VAL_MAGIC	0x56505753u	/* "SWPV" in a little-endian dump */
#define IDX_MAGIC	0x49505753u	/* "SWPI" */
#define FORMAT_VERSION	1u
#define REC_SIZE	320u
#define MIN_BLOCK	4096u
#define MAX_BLOCK	(1u << 20)
#define MAX_LEN		(1ull << 56)	/* keeps extent arithmetic exact */
#define DEF_GROW	(64ull << 20)
#define IDX_RESERVE	(256u << 10)	/* index space kept allocated ahead */
#define IDX_CHUNK	64u		/* records per read or write */

enum { REC_HEAD = 1, REC_PUT = 2, REC_DEL = 3 };
enum { VAL_SUM = 1u << 0 };		/* sum holds the payload's XXH3-64 */

/* One index record. Host byte order; fields at natural alignment. */
struct irec {
	uint32_t	magic;
	uint16_t	type;
	uint16_t	keylen;
	uint64_t	gen;	/* HEAD: the generation counter when written */
	uint64_t	off;	/* PUT: extent offset; HEAD: block size */
	uint64_t	len;	/* PUT: payload bytes; HEAD: format version */
	uint64_t	sum;
	uint32_t	flags;	/* VAL_* */
	uint32_t	pad;
	char		key[SWAPIO_STORE_KEY_MAX + 1];	/* NUL-padded */
	uint64_t	reserved;
	uint64_t	check;	/* XXH3-64 of all the bytes above */
};
_Static_assert(sizeof(struct irec) == REC_SIZE, "index record size");

/* The header block at the start of every extent. */
struct vhdr {
	uint32_t	magic;
	uint16_t	version;
	uint16_t	keylen;
	uint64_t	gen;
	uint64_t	len;
	uint64_t	sum;
	uint64_t	ext;	/* extent bytes, header block included */
	uint32_t	flags;	/* VAL_* */
	uint32_t	block;	/* the store's block size */
	char		key[SWAPIO_STORE_KEY_MAX + 1];
	uint64_t	check;	/* XXH3-64 of all the bytes above */
};

/* A value: in the map, or held by a get, or a put not yet committed. */
struct entry {
	struct entry	*hnext;
	uint64_t	gen;
	uint64_t	off;	/* extent start (the header block) */
	uint64_t	ext;	/* extent bytes */
	uint64_t	len;	/* payload bytes */
	uint64_t	sum;
	uint32_t	flags;
	unsigned int	refs;	/* the map's, plus one per get in flight */
	uint16_t	keylen;
	char		key[];
};

struct fext {
	uint64_t	off;
	uint64_t	len;
};

/* Free space of the data file: disjoint ranges sorted by offset. */
struct freelist {
	struct fext	*v;
	size_t		n;
	size_t		cap;
};

struct swapio_store_op {
	swapio_store		*s;
	struct swapio_store_op	*prev, *next;	/* live list, or free list */
	pthread_mutex_t		lock;		/* one finisher at a time */
	swapio_op		*io[2];
	unsigned int		nr_io;
	bool			put;
	bool			finished;
	int64_t			result;
	struct entry		*e;	/* put: the new value; get: pinned */
	void			*buf;
	uint64_t		len;
	void			*hdr;	/* put: header block, `block` bytes */
};

struct swapio_store {
	swapio_handle		*h;
	swapio_file		*df;	/* data, for the library's I/O */
	int			dfd;	/* data: fallocate, fdatasync */
	int			ifd;	/* index */
	int			dirfd;
	int			lockfd;
	uint32_t		block;
	uint32_t		flags;
	uint64_t		capacity;	/* 0: grow */
	uint64_t		grow;

	pthread_mutex_t		lock;
	struct entry		**buckets;
	size_t			nbuckets;	/* a power of two */
	size_t			nkeys;
	uint64_t		value_bytes;
	uint64_t		used_bytes;
	struct freelist		fl;
	uint64_t		data_size;
	uint64_t		gen;
	uint64_t		idx_end;	/* bytes of valid records */
	uint64_t		idx_alloc;	/* allocated ahead to here */
	uint64_t		idx_records;
	struct swapio_store_op	live;		/* list head */
	struct swapio_store_op	*free_ops;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t ext_bytes(const swapio_store *s, uint64_t len)
{
	return s->block + align_up(len, s->block);
}

/* Length of a valid key, or 0. */
static size_t key_len(const char *key)
{
	size_t n;

	if (!key)
		return 0;
	n = strnlen(key, SWAPIO_STORE_KEY_MAX + 1);
	return n <= SWAPIO_STORE_KEY_MAX ? n : 0;
}

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	const char *p = buf;
	ssize_t w;

	while (n) {
		w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Bytes read; fewer only at end of file. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = pread(fd, p + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* ------------------------------------------------------------------ */
/* Free space                                                          */
/* ------------------------------------------------------------------ */

static int fl_reserve(struct freelist *fl, size_t n)
{
	struct fext *v;
	size_t cap;

	if (fl->n + n <= fl->cap)
		return 0;
	cap = fl->cap ? fl->cap * 2 : 16;
	while (cap < fl->n + n)
		cap *= 2;
	v = realloc(fl->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	fl->v = v;
	fl->cap = cap;
	return 0;
}

/* Index of the first range starting after @off. */
static size_t fl_after(const struct freelist *fl, uint64_t off)
{
	size_t lo = 0, hi = fl->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (fl->v[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Give [off, off+len) back, merging with its neighbours. */
static int fl_insert(struct freelist *fl, uint64_t off, uint64_t len)
{
	size_t i = fl_after(fl, off);
	struct fext *prev = i ? &fl->v[i - 1] : NULL;
	struct fext *next = i < fl->n ? &fl->v[i] : NULL;
	bool join_prev = prev && prev->off + prev->len == off;
	bool join_next = next && off + len == next->off;

	assert(!prev || prev->off + prev->len <= off);
	assert(!next || off + len <= next->off);
	if (join_prev && join_next) {
		prev->len += len + next->len;
		memmove(next, next + 1, (fl->n - i - 1) * sizeof(*next));
		fl->n--;
	} else if (join_prev) {
		prev->len += len;
	} else if (join_next) {
		next->off = off;
		next->len += len;
	} else {
		if (fl_reserve(fl, 1))
			return -ENOMEM;
		memmove(&fl->v[i + 1], &fl->v[i], (fl->n - i) * sizeof(*next));
		fl->v[i] = (struct fext){ .off = off, .len = len };
		fl->n++;
	}
	return 0;
}

/* First fit: lowest offset, so the file's tail stays free to shrink into. */
static int fl_take(struct freelist *fl, uint64_t len, uint64_t *off)
{
	for (size_t i = 0; i < fl->n; i++) {
		struct fext *f = &fl->v[i];

		if (f->len < len)
			continue;
		*off = f->off;
		f->off += len;
		f->len -= len;
		if (!f->len) {
			memmove(f, f + 1, (fl->n - i - 1) * sizeof(*f));
			fl->n--;
		}
		return 0;
	}
	return -ENOSPC;
}

/* Take exactly [off, off+len), which must be free: replay's allocation. */
static int fl_claim(struct freelist *fl, uint64_t off, uint64_t len)
{
	size_t i = fl_after(fl, off);
	struct fext *f;
	uint64_t end;

	if (!i)
		return SWAPIO_EBADSTORE;
	f = &fl->v[i - 1];
	end = f->off + f->len;
	/* Written to not overflow: @off and @len come from the disk. */
	if (off >= end || len > end - off)
		return SWAPIO_EBADSTORE;	/* overlaps a live extent */
	if (f->off == off) {
		f->off += len;
		f->len -= len;
		if (!f->len) {
			memmove(f, f + 1, (fl->n - i) * sizeof(*f));
			fl->n--;
		}
		return 0;
	}
	f->len = off - f->off;
	return off + len < end ? fl_insert(fl, off + len, end - off - len) : 0;
}

/*
 * Make the data file larger by at least @need bytes beyond the free space
 * at its end. fallocate, so that O_DIRECT writes land on allocated
 * extents and ENOSPC surfaces here rather than in the middle of a put.
 */
static int data_grow(swapio_store *s, uint64_t need)
{
	const struct fext *last = s->fl.n ? &s->fl.v[s->fl.n - 1] : NULL;
	uint64_t old = s->data_size, want, step;
	int ret = 0;

	if (last && last->off + last->len == old)
		need -= last->len;
	want = align_up(need, s->block);
	step = align_up((want > s->grow ? want : s->grow), s->block);
	if (fallocate(s->dfd, 0, (off_t)old, (off_t)step)) {
		ret = -errno;
		/* The step may be too greedy for a nearly full filesystem. */
		if (ret == -ENOSPC && step > want) {
			step = want;
			ret = fallocate(s->dfd, 0, (off_t)old, (off_t)step) ?
			      -errno : 0;
		}
		if (ret == -EOPNOTSUPP)
			ret = ftruncate(s->dfd, (off_t)(old + step)) ?
			      -errno : 0;
	}
	if (ret) {
		/* A failed fallocate may keep blocks past the end: drop. */
		(void)!ftruncate(s->dfd, (off_t)old);
		return ret;
	}
	s->data_size = old + step;
	return fl_insert(&s->fl, old, step);
}

static int space_alloc(swapio_store *s, uint64_t len, uint64_t *off)
{
	int ret = fl_take(&s->fl, len, off);

	if (ret != -ENOSPC || s->capacity)
		return ret;
	ret = data_grow(s, len);
	return ret ? ret : fl_take(&s->fl, len, off);
}

static void space_free(swapio_store *s, uint64_t off, uint64_t len)
{
	/* Out of memory here leaks the extent until the next open. */
	(void)fl_insert(&s->fl, off, len);
}

/* ------------------------------------------------------------------ */
/* The map: key -> entry                                               */
/* ------------------------------------------------------------------ */

static struct entry *entry_new(const char *key, size_t keylen)
{
	struct entry *e = calloc(1, sizeof(*e) + keylen + 1);

	if (!e)
		return NULL;
	memcpy(e->key, key, keylen);
	e->keylen = (uint16_t)keylen;
	e->refs = 1;
	return e;
}

static size_t bucket_of(const swapio_store *s, const char *key, size_t n)
{
	return (size_t)XXH3_64bits(key, n) & (s->nbuckets - 1);
}

/* The link that points at @key's entry, or at the NULL ending its chain. */
static struct entry **map_slot(swapio_store *s, const char *key, size_t n)
{
	struct entry **pp = &s->buckets[bucket_of(s, key, n)];

	while (*pp && ((*pp)->keylen != n || memcmp((*pp)->key, key, n)))
		pp = &(*pp)->hnext;
	return pp;
}

static struct entry *map_find(swapio_store *s, const char *key, size_t n)
{
	return *map_slot(s, key, n);
}

/* Double the buckets; on failure the chains just grow longer. */
static void map_grow(swapio_store *s)
{
	size_t nb = s->nbuckets * 2;
	struct entry **b = calloc(nb, sizeof(*b)), *e, *next;

	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (e = s->buckets[i]; e; e = next) {
			size_t j = (size_t)XXH3_64bits(e->key, e->keylen) &
				   (nb - 1);

			next = e->hnext;
			e->hnext = b[j];
			b[j] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

/* Drop one reference; the last frees the extent. s->lock held. */
static void entry_put(swapio_store *s, struct entry *e)
{
	assert(e->refs > 0);
	if (--e->refs)
		return;
	space_free(s, e->off, e->ext);
	free(e);
}

static void map_unlink(swapio_store *s, struct entry **slot)
{
	struct entry *e = *slot;

	*slot = e->hnext;
	s->nkeys--;
	s->value_bytes -= e->len;
	s->used_bytes -= e->ext;
	entry_put(s, e);
}

/*
 * A committed put. Of two puts of one key the higher generation (the later
 * submitted) wins whichever commits last; the loser's extent is freed.
 */
static void apply_put(swapio_store *s, struct entry *e)
{
	struct entry **slot = map_slot(s, e->key, e->keylen);

	if (*slot && (*slot)->gen > e->gen) {
		entry_put(s, e);
		return;
	}
	if (*slot) {
		/* Put @e in the old entry's place in the chain. */
		e->hnext = (*slot)->hnext;
		(*slot)->hnext = e;
		map_unlink(s, slot);
	} else {
		e->hnext = NULL;
		*slot = e;
	}
	s->nkeys++;
	s->value_bytes += e->len;
	s->used_bytes += e->ext;
	if (s->nkeys > s->nbuckets)
		map_grow(s);
}

static int apply_del(swapio_store *s, const char *key, size_t n)
{
	struct entry **slot = map_slot(s, key, n);

	if (!*slot)
		return -ENOENT;
	map_unlink(s, slot);
	return 0;
}

static void map_free(swapio_store *s)
{
	struct entry *e, *next;

	for (size_t i = 0; s->buckets && i < s->nbuckets; i++)
		for (e = s->buckets[i]; e; e = next) {
			next = e->hnext;
			free(e);
		}
	free(s->buckets);
	s->buckets = NULL;
}

/* ------------------------------------------------------------------ */
/* Index records                                                       */
/* ------------------------------------------------------------------ */

static void rec_seal(struct irec *r)
{
	r->check = XXH3_64bits(r, offsetof(struct irec, check));
}

static void rec_head(const swapio_store *s, struct irec *r)
{
	memset(r, 0, sizeof(*r));
	r->magic = IDX_MAGIC;
	r->type = REC_HEAD;
	r->gen = s->gen;
	r->off = s->block;
	r->len = FORMAT_VERSION;
	rec_seal(r);
}

static void rec_fill(struct irec *r, unsigned int type, const char *key,
		     size_t keylen, uint64_t gen)
{
	memset(r, 0, sizeof(*r));
	r->magic = IDX_MAGIC;
	r->type = (uint16_t)type;
	r->keylen = (uint16_t)keylen;
	r->gen = gen;
	memcpy(r->key, key, keylen);
}

static void rec_of_entry(struct irec *r, const struct entry *e)
{
	rec_fill(r, REC_PUT, e->key, e->keylen, e->gen);
	r->off = e->off;
	r->len = e->len;
	r->sum = e->sum;
	r->flags = e->flags;
	rec_seal(r);
}

/* Checksum, magic and the key's shape: does this look like a record? */
static bool rec_valid(const struct irec *r)
{
	if (r->magic != IDX_MAGIC ||
	    r->check != XXH3_64bits(r, offsetof(struct irec, check)))
		return false;
	if (r->type == REC_HEAD)
		return true;
	return (r->type == REC_PUT || r->type == REC_DEL) &&
	       r->keylen >= 1 && r->keylen <= SWAPIO_STORE_KEY_MAX &&
	       strnlen(r->key, sizeof(r->key)) == r->keylen;
}

/* Keep index space allocated ahead, so a full disk still takes records. */
static void idx_reserve(swapio_store *s)
{
	if (s->idx_end + REC_SIZE <= s->idx_alloc)
		return;
	if (!fallocate(s->ifd, FALLOC_FL_KEEP_SIZE, (off_t)s->idx_end,
		       IDX_RESERVE))
		s->idx_alloc = s->idx_end + IDX_RESERVE;
}

/*
 * Append one record. pwrite at our own offset, not O_APPEND: a record cut
 * short (ENOSPC, EIO) is cut off again and the next append overwrites it,
 * so no torn record ever sits before a good one.
 */
static int idx_append(swapio_store *s, const struct irec *r)
{
	int ret;

	idx_reserve(s);
	ret = pwrite_full(s->ifd, r, REC_SIZE, s->idx_end);
	if (ret) {
		(void)!ftruncate(s->ifd, (off_t)s->idx_end);
		return ret;
	}
	s->idx_end += REC_SIZE;
	s->idx_records++;
	return 0;
}

/* Write HEAD and one PUT per live key to @fd. */
static int idx_write_all(swapio_store *s, int fd, uint64_t *end)
{
	struct irec *recs = malloc(IDX_CHUNK * sizeof(*recs));
	uint64_t off = 0;
	unsigned int n = 1;
	int ret = 0;

	if (!recs)
		return -ENOMEM;
	rec_head(s, &recs[0]);
	for (size_t i = 0; i < s->nbuckets && !ret; i++) {
		for (struct entry *e = s->buckets[i]; e && !ret; e = e->hnext) {
			rec_of_entry(&recs[n++], e);
			if (n < IDX_CHUNK)
				continue;
			ret = pwrite_full(fd, recs, n * REC_SIZE, off);
			off += n * REC_SIZE;
			n = 0;
		}
	}
	if (!ret && n)
		ret = pwrite_full(fd, recs, n * REC_SIZE, off);
	*end = off + n * REC_SIZE;
	free(recs);
	return ret;
}

/*
 * Replace the log by a fresh one holding only the live keys: written to
 * index.tmp, flushed, then renamed over the index, so a crash leaves one
 * complete log or the other. s->lock held (or the store not yet shared).
 */
static int idx_compact(swapio_store *s)
{
	uint64_t end = 0;
	int fd, ret;

	fd = openat(s->dirfd, "index.tmp", O_RDWR | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = idx_write_all(s, fd, &end);
	if (!ret && fdatasync(fd))
		ret = -errno;
	if (!ret && renameat(s->dirfd, "index.tmp", s->dirfd, "index"))
		ret = -errno;
	if (ret) {
		close(fd);
		unlinkat(s->dirfd, "index.tmp", 0);
		return ret;
	}
	/* The rename must reach the disk before anything relies on it. */
	(void)fsync(s->dirfd);
	if (s->ifd >= 0)
		close(s->ifd);
	s->ifd = fd;
	s->idx_end = s->idx_alloc = end;
	s->idx_records = end / REC_SIZE;
	idx_reserve(s);
	return 0;
}

/* Compact once dead records outnumber live ones by a margin. */
static void idx_maybe_compact(swapio_store *s)
{
	if (s->idx_records > 2 * s->nkeys + 1024)
		(void)idx_compact(s);	/* on failure the long log works */
}

/* Free space is the whole data file until replay claims extents. */
static int fl_init(swapio_store *s)
{
	s->fl.n = 0;
	/* An unaligned tail (never written by us) is left out of use. */
	s->data_size -= s->data_size % s->block;
	return s->data_size ? fl_insert(&s->fl, 0, s->data_size) : 0;
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */
/* ------------------------------------------------------------------ */

static int replay_put(swapio_store *s, const struct irec *r)
{
	struct entry *e;
	int ret;

	if (r->len > MAX_LEN || r->off % s->block || r->off >= s->data_size)
		return SWAPIO_EBADSTORE;
	e = entry_new(r->key, r->keylen);
	if (!e)
		return -ENOMEM;
	e->gen = r->gen;
	e->off = r->off;
	e->len = r->len;
	e->ext = ext_bytes(s, r->len);
	e->sum = r->sum;
	e->flags = r->flags & VAL_SUM;
	/* The extent must be free now, exactly as when the put committed. */
	ret = fl_claim(&s->fl, e->off, e->ext);
	if (ret) {
		free(e);
		return ret;
	}
	apply_put(s, e);
	return 0;
}

static int replay_one(swapio_store *s, const struct irec *r)
{
	if (r->gen > s->gen)
		s->gen = r->gen;
	switch (r->type) {
	case REC_PUT:
		return replay_put(s, r);
	case REC_DEL:
		(void)apply_del(s, r->key, r->keylen);
		return 0;
	default:
		return SWAPIO_EBADSTORE;	/* a second HEAD */
	}
}

static int head_check(swapio_store *s, const struct irec *r)
{
	if (!rec_valid(r) || r->type != REC_HEAD)
		return SWAPIO_EBADSTORE;
	if (r->len != FORMAT_VERSION || r->off < MIN_BLOCK ||
	    r->off > MAX_BLOCK || (r->off & (r->off - 1)))
		return SWAPIO_EBADSTORE;
	s->block = (uint32_t)r->off;
	s->gen = r->gen;
	return fl_init(s);
}

/*
 * Replay the whole log. Only the last record may be bad: a crash can cut
 * the final append short, but every earlier one completed before the next
 * began, so a bad record with good ones after it means damage.
 */
static int idx_replay(swapio_store *s, uint64_t size)
{
	const uint64_t nrec = size / REC_SIZE;
	struct irec *recs = malloc(IDX_CHUNK * sizeof(*recs));
	uint64_t i = 0, good = 0;
	int ret = 0;

	if (!recs)
		return -ENOMEM;
	while (i < nrec && !ret) {
		size_t n = (size_t)(nrec - i < IDX_CHUNK ? nrec - i :
				    IDX_CHUNK);
		ssize_t r = pread_full(s->ifd, recs, n * REC_SIZE,
				       i * REC_SIZE);

		if (r != (ssize_t)(n * REC_SIZE)) {
			ret = r < 0 ? (int)r : -EIO;
			break;
		}
		for (size_t j = 0; j < n && !ret; j++, i++) {
			if (i == 0)
				ret = head_check(s, &recs[j]);
			else if (!rec_valid(&recs[j]))
				ret = i + 1 == nrec ? 1 : SWAPIO_EBADSTORE;
			else
				ret = replay_one(s, &recs[j]);
			if (!ret)
				good = i + 1;
		}
	}
	free(recs);
	if (ret < 0)
		return ret;
	s->idx_end = good * REC_SIZE;
	s->idx_records = good;
	return good ? 0 : SWAPIO_EBADSTORE;
}

/* ------------------------------------------------------------------ */
/* Rebuilding a damaged index from the extents' headers                */
/* ------------------------------------------------------------------ */

static bool vhdr_valid(const struct vhdr *v)
{
	return v->magic == VAL_MAGIC && v->version == FORMAT_VERSION &&
	       v->check == XXH3_64bits(v, offsetof(struct vhdr, check)) &&
	       v->keylen >= 1 && v->keylen <= SWAPIO_STORE_KEY_MAX &&
	       strnlen(v->key, sizeof(v->key)) == v->keylen &&
	       v->len <= MAX_LEN && v->block >= MIN_BLOCK &&
	       v->block <= MAX_BLOCK && !(v->block & (v->block - 1));
}

/* Is the payload after the header at @off intact? Reads all of it. */
static bool scan_payload_ok(swapio_store *s, const struct vhdr *v,
			    uint64_t off, void *buf, size_t bufsz)
{
	XXH3_state_t *st;
	uint64_t done;
	bool ok = true;

	if (!(v->flags & VAL_SUM) || (s->flags & SWAPIO_STORE_NO_CHECKSUM))
		return true;
	st = XXH3_createState();
	if (!st || XXH3_64bits_reset(st) != XXH_OK) {
		XXH3_freeState(st);
		return false;
	}
	for (done = 0; ok && done < v->len;) {
		size_t n = (size_t)(v->len - done < bufsz ? v->len - done :
				    bufsz);

		ok = pread_full(s->dfd, buf, n, off + v->block + done) ==
		     (ssize_t)n && XXH3_64bits_update(st, buf, n) == XXH_OK;
		done += n;
	}
	ok = ok && XXH3_64bits_digest(st) == v->sum;
	XXH3_freeState(st);
	return ok;
}

/* Take the value whose header is @v at @off, if it fits: its extent size. */
static uint64_t scan_take(swapio_store *s, const struct vhdr *v, uint64_t off)
{
	struct entry *e;

	if (v->block != s->block || v->ext != ext_bytes(s, v->len) ||
	    off % s->block || off + v->ext > s->data_size)
		return 0;
	e = entry_new(v->key, v->keylen);
	if (!e)
		return 0;
	e->gen = v->gen;
	e->off = off;
	e->len = v->len;
	e->ext = v->ext;
	e->sum = v->sum;
	e->flags = v->flags & VAL_SUM;
	if (fl_claim(&s->fl, off, e->ext)) {
		free(e);
		return 0;
	}
	if (e->gen > s->gen)
		s->gen = e->gen;
	apply_put(s, e);
	return v->ext;
}

/* The block size of the first valid header, for a store without HEAD. */
static uint32_t scan_block(swapio_store *s)
{
	struct vhdr v;

	for (uint64_t pos = 0; pos + sizeof(v) <= s->data_size;
	     pos += MIN_BLOCK)
		if (pread_full(s->dfd, &v, sizeof(v), pos) ==
		    (ssize_t)sizeof(v) && vhdr_valid(&v))
			return v.block;
	return 0;
}

/*
 * Every 4 KiB boundary may start an extent. A header whose payload checks
 * out is taken and its extent skipped; overlaps and older generations of
 * a key lose. Then a fresh index is written.
 */
static int scan_rebuild(swapio_store *s, uint32_t def_block)
{
	const size_t bufsz = 1u << 20;
	void *buf = malloc(bufsz);
	uint64_t pos = 0, took;
	struct vhdr v;
	int ret;

	if (!buf)
		return -ENOMEM;
	map_free(s);
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	s->nkeys = s->value_bytes = s->used_bytes = 0;
	if (!s->block)
		s->block = scan_block(s);
	if (!s->block)
		s->block = def_block;
	ret = s->buckets ? fl_init(s) : -ENOMEM;
	while (!ret && pos + sizeof(v) <= s->data_size) {
		took = 0;
		if (pread_full(s->dfd, &v, sizeof(v), pos) ==
		    (ssize_t)sizeof(v) && vhdr_valid(&v) &&
		    scan_payload_ok(s, &v, pos, buf, bufsz))
			took = scan_take(s, &v, pos);
		pos += took ? took : MIN_BLOCK;
	}
	free(buf);
	return ret ? ret : idx_compact(s);
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

static int cfg_check(const struct swapio_store_config *c)
{
	const uint32_t known = SWAPIO_STORE_NO_CHECKSUM |
			       SWAPIO_STORE_NO_CREATE | SWAPIO_STORE_RECOVER;

	if (c->reserved32 || (c->flags & ~known))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]);
	     i++)
		if (c->reserved[i])
			return -EINVAL;
	return 0;
}

/* Enter the directory and take its lock: one owner at a time. */
static int store_lock(swapio_store *s, const char *dir)
{
	if (!(s->flags & SWAPIO_STORE_NO_CREATE) && mkdir(dir, 0755) &&
	    errno != EEXIST)
		return -errno;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return -errno;
	s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC,
			   0644);
	if (s->lockfd < 0)
		return -errno;
	if (flock(s->lockfd, LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

/*
 * The flock is ours, but a killed owner's last writes may still be in
 * flight: io_uring tears a ring down after its process is gone, and until
 * then those requests write into extents we are about to reuse. They hold
 * the data file open for writing, and a read lease is granted only when
 * no one has it open for writing, so wait for one (up to 5 s) on a
 * read-only descriptor, before opening ours, then let it go at once.
 * Where leases are not available (permissions, filesystem), go on.
 */
static int data_quiesce(swapio_store *s)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	int fd, ret = -EBUSY;

	fd = openat(s->dirfd, "data", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int i = 0; i < 500 && ret; i++) {
		if (!fcntl(fd, F_SETLEASE, F_RDLCK)) {
			(void)fcntl(fd, F_SETLEASE, F_UNLCK);
			ret = 0;
		} else if (errno != EAGAIN && errno != EBUSY) {
			ret = 0;
		} else {
			nanosleep(&tick, NULL);
		}
	}
	close(fd);
	return ret;
}

/* Open index and data. Returns 1 if there is no index yet, 0 or -errno. */
static int store_files(swapio_store *s, const char *dir)
{
	bool fresh = false;
	struct stat st;
	char *path;
	int ret;

	s->ifd = openat(s->dirfd, "index", O_RDWR | O_CLOEXEC);
	if (s->ifd < 0 && errno == ENOENT &&
	    !(s->flags & SWAPIO_STORE_NO_CREATE))
		fresh = true;
	else if (s->ifd < 0)
		return -errno;
	ret = data_quiesce(s);
	if (ret)
		return ret;
	s->dfd = openat(s->dirfd, "data", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->dfd < 0)
		return -errno;
	if (fstat(s->dfd, &st))
		return -errno;
	s->data_size = (uint64_t)st.st_size;
	if (asprintf(&path, "%s/data", dir) < 0)
		return -ENOMEM;
	ret = swapio_file_open(s->h, path, SWAPIO_O_READ | SWAPIO_O_WRITE,
			       &s->df);
	free(path);
	return ret ? ret : fresh;
}

/* The block of a new store: 4 KiB, or the file's larger I/O alignment. */
static uint32_t default_block(const swapio_store *s)
{
	uint32_t mem, off, b = MIN_BLOCK;

	swapio_file_alignment(s->df, &mem, &off);
	while (b < mem || b < off)
		b *= 2;
	return b <= MAX_BLOCK ? b : MAX_BLOCK;
}

/* Replay the log, or rebuild it; then cut off any torn tail. */
static int store_load(swapio_store *s)
{
	struct stat st;
	int ret;

	if (fstat(s->ifd, &st))
		return -errno;
	ret = idx_replay(s, (uint64_t)st.st_size);
	if (ret == SWAPIO_EBADSTORE && (s->flags & SWAPIO_STORE_RECOVER))
		return scan_rebuild(s, default_block(s));
	if (ret)
		return ret;
	if ((uint64_t)st.st_size > s->idx_end &&
	    ftruncate(s->ifd, (off_t)s->idx_end))
		return -errno;
	s->idx_alloc = s->idx_end;
	/* Start with a short log; a failure just keeps the long one. */
	if (s->idx_records > 2 * s->nkeys + 64)
		(void)idx_compact(s);
	return 0;
}

/* A fixed capacity is allocated in full, now. */
static int store_capacity(swapio_store *s, uint64_t capacity)
{
	uint64_t old = s->data_size;

	capacity -= capacity % s->block;
	if (capacity <= old) {
		s->capacity = old;
		return 0;
	}
	if (fallocate(s->dfd, 0, (off_t)old, (off_t)(capacity - old))) {
		int ret = -errno;

		(void)!ftruncate(s->dfd, (off_t)old);
		return ret;
	}
	s->data_size = s->capacity = capacity;
	return fl_insert(&s->fl, old, capacity - old);
}

static void store_free(swapio_store *s)
{
	struct swapio_store_op *op, *next;

	for (op = s->free_ops; op; op = next) {
		next = op->next;
		pthread_mutex_destroy(&op->lock);
		free(op->hdr);
		free(op);
	}
	swapio_file_close(s->df);
	if (s->dfd >= 0)
		close(s->dfd);
	if (s->ifd >= 0)
		close(s->ifd);
	if (s->lockfd >= 0)
		close(s->lockfd);	/* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	map_free(s);
	free(s->fl.v);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static swapio_store *store_alloc(swapio_handle *h,
				 const struct swapio_store_config *c)
{
	swapio_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->h = h;
	s->dfd = s->ifd = s->dirfd = s->lockfd = -1;
	s->flags = c->flags;
	s->grow = c->grow_bytes ? c->grow_bytes : DEF_GROW;
	s->live.next = s->live.prev = &s->live;
	pthread_mutex_init(&s->lock, NULL);
	s->nbuckets = 64;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets) {
		store_free(s);
		return NULL;
	}
	return s;
}

/* Lock, then create the store or load its index. */
static int store_setup(swapio_store *s, const char *dir, bool *fresh)
{
	int ret = store_lock(s, dir);

	if (!ret)
		ret = store_files(s, dir);
	*fresh = ret == 1 && !s->data_size;
	if (*fresh) {
		s->block = default_block(s);
		ret = fl_init(s);
		return ret ? ret : idx_compact(s);	/* the first HEAD */
	}
	if (ret == 1)	/* data without an index: never start over on it */
		return (s->flags & SWAPIO_STORE_RECOVER) ?
		       scan_rebuild(s, default_block(s)) : SWAPIO_EBADSTORE;
	return ret ? ret : store_load(s);
}

int swapio_store_open(swapio_handle *h, const char *dir,
		      const struct swapio_store_config *cfg,
		      swapio_store **out)
{
	const struct swapio_store_config none = { 0 };
	const struct swapio_store_config *c = cfg ? cfg : &none;
	bool fresh = false;
	swapio_store *s;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!h || !dir || !*dir || cfg_check(c))
		return -EINVAL;
	s = store_alloc(h, c);
	if (!s)
		return -ENOMEM;
	ret = store_setup(s, dir, &fresh);
	if (!ret && c->capacity)
		ret = store_capacity(s, c->capacity);
	if (ret && fresh) {
		/* Leave no half-made store to be mistaken for a damaged one. */
		unlinkat(s->dirfd, "index", 0);
		unlinkat(s->dirfd, "data", 0);
	}
	if (ret) {
		store_free(s);
		return ret;
	}
	idx_reserve(s);
	*out = s;
	return 0;
}

void swapio_store_close(swapio_store *s)
{
	if (!s)
		return;
	while (s->live.next != &s->live)
		swapio_store_op_free(s->live.next);
	store_free(s);
}

/* ------------------------------------------------------------------ */
/* Ops                                                                 */
/* ------------------------------------------------------------------ */

static struct swapio_store_op *op_get(swapio_store *s, bool put)
{
	struct swapio_store_op *op;

	pthread_mutex_lock(&s->lock);
	op = s->free_ops;
	if (op)
		s->free_ops = op->next;
	pthread_mutex_unlock(&s->lock);
	if (!op) {
		op = calloc(1, sizeof(*op));
		if (!op)
			return NULL;
		pthread_mutex_init(&op->lock, NULL);
	}
	/* Header blocks are kept with the op for its next put. */
	if (put && !op->hdr && posix_memalign(&op->hdr, s->block, s->block)) {
		op->hdr = NULL;
		pthread_mutex_lock(&s->lock);
		op->next = s->free_ops;
		s->free_ops = op;
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	op->s = s;
	op->put = put;
	op->finished = false;
	op->nr_io = 0;
	op->result = 0;
	return op;
}

/* s->lock held. */
static void live_add(swapio_store *s, struct swapio_store_op *op)
{
	op->next = &s->live;
	op->prev = s->live.prev;
	s->live.prev->next = op;
	s->live.prev = op;
}

/* s->lock held. */
static void op_recycle(swapio_store *s, struct swapio_store_op *op)
{
	op->prev->next = op->next;
	op->next->prev = op->prev;
	op->next = s->free_ops;
	s->free_ops = op;
}

/* Wait for and free the op's transfers; 0 or the first problem. */
static int io_reap(struct swapio_store_op *op)
{
	int ret = 0;

	for (unsigned int i = 0; i < op->nr_io; i++) {
		const uint64_t want = op->put && i == 0 ? op->s->block :
				      op->len;
		ssize_t r = swapio_op_wait(op->io[i], -1);

		if (!ret && r < 0)
			ret = (int)r;
		else if (!ret && (uint64_t)r != want)
			ret = -EIO;	/* data file shorter than the index */
		swapio_op_free(op->io[i]);
		op->io[i] = NULL;
	}
	op->nr_io = 0;
	return ret;
}

/* Undo a submission that failed half way. Returns @err. */
static int op_abort(struct swapio_store_op *op, int err)
{
	swapio_store *s = op->s;

	(void)io_reap(op);
	pthread_mutex_lock(&s->lock);
	if (op->put) {
		space_free(s, op->e->off, op->e->ext);
		free(op->e);
	} else {
		entry_put(s, op->e);
	}
	op_recycle(s, op);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static void hdr_fill(const swapio_store *s, void *blk, const struct entry *e)
{
	struct vhdr *v = blk;

	memset(blk, 0, s->block);
	v->magic = VAL_MAGIC;
	v->version = FORMAT_VERSION;
	v->keylen = e->keylen;
	v->gen = e->gen;
	v->len = e->len;
	v->sum = e->sum;
	v->ext = e->ext;
	v->flags = e->flags;
	v->block = s->block;
	memcpy(v->key, e->key, e->keylen);
	v->check = XXH3_64bits(v, offsetof(struct vhdr, check));
}

/* Header block and payload go out as two ops, both into free space. */
static int put_start(swapio_store *s, struct swapio_store_op *op)
{
	const struct entry *e = op->e;
	int ret;

	hdr_fill(s, op->hdr, e);
	ret = swapio_submit_write(s->h, s->df, op->hdr, s->block, e->off,
				  &op->io[0]);
	if (ret)
		return ret;
	op->nr_io = 1;
	if (!op->len)
		return 0;
	ret = swapio_submit_write(s->h, s->df, op->buf, op->len,
				  e->off + s->block, &op->io[1]);
	if (!ret)
		op->nr_io = 2;
	return ret;
}

static struct entry *put_entry(const swapio_store *s, const char *key,
			       size_t n, const void *buf, uint64_t len)
{
	struct entry *e = entry_new(key, n);

	if (!e)
		return NULL;
	e->len = len;
	e->ext = ext_bytes(s, len);
	if (!(s->flags & SWAPIO_STORE_NO_CHECKSUM)) {
		e->flags = VAL_SUM;
		e->sum = XXH3_64bits(buf, (size_t)len);
	}
	return e;
}

/* Space and a generation for the put; the op goes live. */
static int put_reserve(swapio_store *s, struct swapio_store_op *op)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = space_alloc(s, op->e->ext, &op->e->off);
	if (!ret) {
		op->e->gen = ++s->gen;
		live_add(s, op);
	} else {
		op->next = s->free_ops;
		s->free_ops = op;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int swapio_store_submit_put(swapio_store *s, const char *key,
			    const void *buf, uint64_t len,
			    swapio_store_op **out)
{
	const size_t n = key_len(key);
	struct swapio_store_op *op;
	struct entry *e;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s || !n || (!buf && len) || len > MAX_LEN || len > SIZE_MAX)
		return -EINVAL;
	e = put_entry(s, key, n, buf, len);
	op = e ? op_get(s, true) : NULL;
	if (!op) {
		free(e);
		return -ENOMEM;
	}
	op->e = e;
	op->buf = (void *)buf;	/* only ever read: the op writes it out */
	op->len = len;
	ret = put_reserve(s, op);
	if (ret) {
		free(e);
		return ret;
	}
	ret = put_start(s, op);
	if (ret)
		return op_abort(op, ret);
	*out = op;
	return 0;
}

/* Hold @key's value for the op, so a replace cannot free it under us. */
static int get_pin(swapio_store *s, struct swapio_store_op *op,
		   const char *key, size_t n, uint64_t len)
{
	struct entry *e;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	e = map_find(s, key, n);
	if (!e || e->len != len) {
		ret = e ? -EMSGSIZE : -ENOENT;
		op->next = s->free_ops;
		s->free_ops = op;
	} else {
		e->refs++;
		op->e = e;
		live_add(s, op);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int swapio_store_submit_get(swapio_store *s, const char *key, void *buf,
			    uint64_t len, swapio_store_op **out)
{
	const size_t n = key_len(key);
	struct swapio_store_op *op;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s || !n || (!buf && len) || len > SIZE_MAX)
		return -EINVAL;
	op = op_get(s, false);
	if (!op)
		return -ENOMEM;
	ret = get_pin(s, op, key, n, len);
	if (ret)
		return ret;
	op->buf = buf;
	op->len = len;
	if (len) {
		ret = swapio_submit_read(s->h, s->df, buf, len,
					 op->e->off + s->block, &op->io[0]);
		if (ret)
			return op_abort(op, ret);
		op->nr_io = 1;
	}
	*out = op;
	return 0;
}

/* The put's data is complete: log it, then switch the key to it. */
static int put_commit(struct swapio_store_op *op, int ret)
{
	swapio_store *s = op->s;
	struct entry *e = op->e;
	struct irec r;

	rec_of_entry(&r, e);
	pthread_mutex_lock(&s->lock);
	if (!ret)
		ret = idx_append(s, &r);
	if (ret) {
		space_free(s, e->off, e->ext);
		free(e);
	} else {
		apply_put(s, e);
		idx_maybe_compact(s);
	}
	pthread_mutex_unlock(&s->lock);
	op->e = NULL;
	return ret;
}

static int get_verify(struct swapio_store_op *op, int ret)
{
	swapio_store *s = op->s;
	struct entry *e = op->e;

	if (!ret && (e->flags & VAL_SUM) &&
	    !(s->flags & SWAPIO_STORE_NO_CHECKSUM) &&
	    XXH3_64bits(op->buf, (size_t)op->len) != e->sum)
		ret = -EBADMSG;
	pthread_mutex_lock(&s->lock);
	entry_put(s, e);
	pthread_mutex_unlock(&s->lock);
	op->e = NULL;
	return ret;
}

/* Milliseconds left until @deadline_ns (monotonic), at least 0. */
static int ms_left(uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

/* Have the op's transfers completed within @timeout_ms? */
static bool io_wait(struct swapio_store_op *op, int timeout_ms)
{
	uint64_t deadline = 0;

	if (timeout_ms > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		deadline = (uint64_t)ts.tv_sec * 1000000000u +
			   (uint64_t)ts.tv_nsec +
			   (uint64_t)timeout_ms * 1000000u;
	}
	for (unsigned int i = 0; i < op->nr_io; i++) {
		int t = timeout_ms > 0 ? ms_left(deadline) : timeout_ms;

		if (swapio_op_wait(op->io[i], t) == -ETIMEDOUT &&
		    !swapio_op_done(op->io[i]))
			return false;
	}
	return true;
}

int64_t swapio_store_op_wait(swapio_store_op *op, int timeout_ms)
{
	int64_t res;
	int ret;

	if (!op)
		return -EINVAL;
	pthread_mutex_lock(&op->lock);
	if (!op->finished) {
		if (timeout_ms >= 0 && !io_wait(op, timeout_ms)) {
			pthread_mutex_unlock(&op->lock);
			return -ETIMEDOUT;
		}
		ret = io_reap(op);
		ret = op->put ? put_commit(op, ret) : get_verify(op, ret);
		op->result = ret ? ret : (int64_t)op->len;
		op->finished = true;
	}
	res = op->result;
	pthread_mutex_unlock(&op->lock);
	return res;
}

int swapio_store_op_done(const swapio_store_op *op)
{
	struct swapio_store_op *o = (struct swapio_store_op *)op;
	int done = 1;

	/* A thread finishing the op holds its lock: not done for us yet. */
	if (!o || pthread_mutex_trylock(&o->lock))
		return 0;
	for (unsigned int i = 0; !o->finished && i < o->nr_io; i++)
		if (!swapio_op_done(o->io[i]))
			done = 0;
	pthread_mutex_unlock(&o->lock);
	return done;
}

void swapio_store_op_free(swapio_store_op *op)
{
	swapio_store *s;

	if (!op)
		return;
	s = op->s;
	swapio_store_op_wait(op, -1);
	pthread_mutex_lock(&s->lock);
	op_recycle(s, op);
	pthread_mutex_unlock(&s->lock);
}

static int sync_op(int ret, swapio_store_op *const *op)
{
	int64_t res;

	if (ret)
		return ret;
	res = swapio_store_op_wait(*op, -1);
	swapio_store_op_free(*op);
	return res < 0 ? (int)res : 0;
}

int swapio_store_put(swapio_store *s, const char *key, const void *buf,
		     uint64_t len)
{
	swapio_store_op *op;

	return sync_op(swapio_store_submit_put(s, key, buf, len, &op), &op);
}

int swapio_store_get(swapio_store *s, const char *key, void *buf,
		     uint64_t len)
{
	swapio_store_op *op;

	return sync_op(swapio_store_submit_get(s, key, buf, len, &op), &op);
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

int swapio_store_remove(swapio_store *s, const char *key)
{
	const size_t n = key_len(key);
	struct entry **slot;
	struct irec r;
	int ret;

	if (!s || !n)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	slot = map_slot(s, key, n);
	if (*slot) {
		rec_fill(&r, REC_DEL, key, n, ++s->gen);
		rec_seal(&r);
		ret = idx_append(s, &r);
		if (!ret) {
			map_unlink(s, slot);
			idx_maybe_compact(s);
		}
	} else {
		ret = -ENOENT;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int64_t swapio_store_size(swapio_store *s, const char *key)
{
	const size_t n = key_len(key);
	struct entry *e;
	int64_t ret;

	if (!s || !n)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	e = map_find(s, key, n);
	ret = e ? (int64_t)e->len : -ENOENT;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int swapio_store_list(swapio_store *s, char ***keys, size_t *count)
{
	size_t bytes = 0, n = 0;
	char **v, *p;

	if (!keys || !count)
		return -EINVAL;
	*keys = NULL;
	*count = 0;
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext)
			bytes += e->keylen + 1u;
	v = malloc((s->nkeys + 1) * sizeof(*v) + bytes);
	p = v ? (char *)(v + s->nkeys + 1) : NULL;
	for (size_t i = 0; v && i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext) {
			memcpy(p, e->key, e->keylen + 1u);
			v[n++] = p;
			p += e->keylen + 1u;
		}
	pthread_mutex_unlock(&s->lock);
	if (!v)
		return -ENOMEM;
	v[n] = NULL;
	qsort(v, n, sizeof(*v), key_cmp);
	*keys = v;
	*count = n;
	return 0;
}

int swapio_store_sync(swapio_store *s)
{
	int ret = 0;

	if (!s)
		return -EINVAL;
	/* Data first: a record must never be durable before its data. */
	if (fdatasync(s->dfd))
		return -errno;
	pthread_mutex_lock(&s->lock);
	if (fdatasync(s->ifd))
		ret = -errno;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void swapio_store_info(swapio_store *s, struct swapio_store_info *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	out->keys = s->nkeys;
	out->value_bytes = s->value_bytes;
	out->used_bytes = s->used_bytes;
	out->file_bytes = s->data_size;
	for (size_t i = 0; i < s->fl.n; i++)
		out->free_bytes += s->fl.v[i].len;
	out->index_bytes = s->idx_end;
	out->block = s->block;
	pthread_mutex_unlock(&s->lock);
}

uint64_t swapio_store_checksum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}
