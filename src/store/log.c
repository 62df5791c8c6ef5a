/* SPDX-License-Identifier: MIT */
/*
 * The index log: fixed-size checksummed records appended at s->idx_end,
 * replayed at open, compacted when mostly dead (format.h has the
 * records, docs/ARCHITECTURE.md "The store's units and its log" the
 * decisions).
 *
 * Where the log ends. The first record that fails its checksum ends the
 * log: a crash or a power loss can leave a torn or never-written record
 * anywhere after the last point that was made durable, with good records
 * after it. Only a SYNC record says more: swapio_store_sync() appends one
 * after its fdatasync() returned, giving the log length that call made
 * durable. A bad record inside a length some later SYNC record vouches
 * for cannot be a crash's leftover; that, and only that, is damage.
 * swapio_store_close() appends one too, after the same fdatasync()s, and
 * so does a compaction at the end of its new log (which it made durable
 * before the rename): a log closed cleanly vouches for all of itself, and
 * damage anywhere before its end is an error, not a shorter log. What a
 * plain open drops past the valid prefix it counts (s->rep), so that a
 * shorter log is never a silent one, and every later SYNC record says so
 * (SYNC_DROPPED) until RECOVER rebuilds: RECOVER believes a log that
 * vouches for all of itself, unless records were dropped from it.
 *
 * Space. On a full filesystem the log must still take removes, so it
 * keeps space allocated ahead of its end (fallocate KEEP_SIZE), at least
 * twice a compacted log plus a slack. When that reserve can no longer be
 * extended the log compacts at once, into space it frees from its own
 * reserve: the old log keeps `slack` bytes for the appends that come
 * during the compaction and gives the rest to the new file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "store_impl.h"

#define IDX_RESERVE	(256u << 10)	/* least step of the reserve */
#define IDX_SLACK	(64u << 10)	/* appends during a compaction */
#define IDX_CHUNK	64u		/* records per read or write */
#define COPY_ROUNDS	8		/* unlocked fdatasyncs per swap */

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

static void rec_seal(struct irec *r)
{
	r->check = XXH3_64bits(r, offsetof(struct irec, check));
}

static void rec_init(struct irec *r, unsigned int type, uint64_t gen)
{
	memset(r, 0, sizeof(*r));
	r->magic = IDX_MAGIC;
	r->type = (uint16_t)type;
	r->gen = gen;
}

static void rec_key(struct irec *r, const char *key, size_t n)
{
	r->keylen = (uint16_t)n;
	memcpy(r->key, key, n);
}

void swapio__rec_put(struct irec *r, const struct entry *e)
{
	rec_init(r, REC_PUT, e->gen);
	rec_key(r, e->key, e->keylen);
	r->off = e->off;
	r->len = e->len;
	r->sum = e->sum;
	r->flags = e->flags & VAL_SUM;
	rec_seal(r);
}

void swapio__rec_del(struct irec *r, const char *key, size_t n, uint64_t gen)
{
	rec_init(r, REC_DEL, gen);
	rec_key(r, key, n);
	rec_seal(r);
}

/* Checksum, magic and the key's shape: does this look like a record? */
static bool rec_valid(const struct irec *r)
{
	if (r->magic != IDX_MAGIC ||
	    r->check != XXH3_64bits(r, offsetof(struct irec, check)))
		return false;
	if (r->type == REC_HEAD || r->type == REC_GEN || r->type == REC_SYNC)
		return true;
	return (r->type == REC_PUT || r->type == REC_DEL) &&
	       r->keylen >= 1 && r->keylen <= SWAPIO_STORE_KEY_MAX &&
	       strnlen(r->key, sizeof(r->key)) == r->keylen;
}

/* ------------------------------------------------------------------ */
/* Append                                                              */
/* ------------------------------------------------------------------ */

/* Bytes of a compacted log now: HEAD, one record per key or tombstone. */
static uint64_t compact_bytes(const swapio_store *s)
{
	return (s->nkeys + s->ntombs + 2) * (uint64_t)REC_SIZE;
}

/* The reserve a compaction may need, plus room to append meanwhile. */
static uint64_t reserve_want(const swapio_store *s)
{
	return 2 * SWAPIO_ALIGN_UP(compact_bytes(s), 4096u) + IDX_SLACK +
	       REC_SIZE;
}

/*
 * Keep the reserve ahead of the end. When the filesystem has no more to
 * give, compact (after the lock is dropped) while the reserve still
 * holds a compacted log.
 */
static void log_reserve(swapio_store *s)
{
	uint64_t want = reserve_want(s), step;

	if (s->idx_alloc >= s->idx_end + want)
		return;
	step = SWAPIO_MAX(want, (uint64_t)IDX_RESERVE);
	/* The least step may be too greedy for a nearly full filesystem:
	 * without this second try, a filesystem with room for the reserve
	 * but not for the step compacted on every append, then ran out. */
	if (!swapio__sys_fallocate(&s->sys, SYS_INDEX, s->ifd,
				   FALLOC_FL_KEEP_SIZE, s->idx_end, step) ||
	    (step > want &&
	     !swapio__sys_fallocate(&s->sys, SYS_INDEX, s->ifd,
				    FALLOC_FL_KEEP_SIZE, s->idx_end,
				    step = want)))
		s->idx_alloc = s->idx_end + step;
	else if (s->idx_end >= s->compact_after)
		s->want_compact = true;
}

/*
 * Append @n records with one write at our own offset, not O_APPEND. A
 * write cut short (ENOSPC, EIO) leaves whole records and then a torn one:
 * the whole ones count as appended (*@done), exactly as if each had gone
 * alone, and the torn one is overwritten by the next append, or is the
 * torn last record that replay drops if the process dies first. Nothing
 * is truncated, so the reserve past the end survives a failed append.
 * Returns 0 once all @n are appended. s->lock held.
 */
int swapio__log_append_n(swapio_store *s, const struct irec *r,
			 unsigned int n, unsigned int *done)
{
	size_t wrote;
	int ret;

	log_reserve(s);
	ret = swapio__sys_pwrite_part(&s->sys, SYS_INDEX, s->ifd, r,
				      (size_t)n * REC_SIZE, s->idx_end,
				      &wrote);
	*done = (unsigned int)SWAPIO_MIN(wrote / REC_SIZE, n);
	s->idx_end += (uint64_t)*done * REC_SIZE;
	if (s->idx_end / REC_SIZE > 2 * (s->nkeys + s->ntombs) + 1024 &&
	    s->idx_end >= s->compact_after)
		s->want_compact = true;
	return *done == n ? 0 : ret ? ret : -EIO;
}

int swapio__log_append(swapio_store *s, const struct irec *r)
{
	unsigned int done;

	return swapio__log_append_n(s, r, 1, &done);
}

/*
 * Vouch for the first @end bytes of the log, made durable by the caller;
 * @how: SYNC_*. Afterwards s->sync_mark is the log's length if the record
 * vouches for every record before it, else @end. s->lock held.
 */
static void log_mark_synced(swapio_store *s, uint64_t end, uint32_t how)
{
	struct irec r;

	rec_init(&r, REC_SYNC, s->gen);
	r.off = s->idx_end;
	r.len = end;
	r.flags = how | (s->dropped ? SYNC_DROPPED : 0);
	rec_seal(&r);
	/* Only a marker: without it damage just reads as a crash. */
	if (!swapio__log_append(s, &r))
		s->sync_mark = end == r.off ? s->idx_end : end;
}

/*
 * The next generation. They are reserved in logged batches (GEN records),
 * so that a generation handed out before a crash, whose header may sit in
 * free space, is never handed out again. s->lock held.
 */
int swapio__log_gen(swapio_store *s, uint64_t *gen)
{
	struct irec r;
	int ret;

	if (s->gen >= s->gen_limit) {
		rec_init(&r, REC_GEN, s->gen + GEN_BATCH);
		rec_seal(&r);
		ret = swapio__log_append(s, &r);
		if (ret)
			return ret;
		s->gen_limit = r.gen;
	}
	*gen = ++s->gen;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Compaction                                                          */
/* ------------------------------------------------------------------ */

struct compaction {
	struct entry	**v;	/* live entries and tombstones, held */
	size_t		n;
	uint64_t	gen;	/* HEAD's reservation */
	uint64_t	cover;	/* below: live iff in the snapshot */
	uint64_t	copied;	/* old log bytes reflected in the new one */
	uint64_t	end;	/* new log bytes written */
	uint64_t	alloc;
	int		fd;
};

/* Hold every entry of the map; s->lock held. */
static int compact_snapshot(swapio_store *s, struct compaction *c)
{
	c->v = malloc((s->nkeys + s->ntombs + 1) * sizeof(*c->v));
	if (!c->v)
		return -ENOMEM;
	c->n = 0;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext) {
			e->refs++;
			c->v[c->n++] = e;
		}
	c->gen = s->gen_limit;
	/* Puts in flight commit after the snapshot, with generations from
	 * the oldest of them on; every older value is in it or dead. */
	c->cover = s->gen + 1;
	for (const struct swapio_store_op *op = s->live.next; op != &s->live;
	     op = op->next)
		if (op->put && op->e && op->e->gen < c->cover)
			c->cover = op->e->gen;
	c->copied = s->idx_end;
	s->compacting = true;
	return 0;
}

static void compact_release(swapio_store *s, struct compaction *c)
{
	for (size_t i = 0; i < c->n; i++)
		swapio__entry_put(s, c->v[i]);
	free(c->v);
	c->v = NULL;
	s->compacting = false;
	s->want_compact = false;
}

/*
 * Space for the new log. On a full filesystem, give it what the old log
 * holds beyond its end: only a truncate frees blocks past the end (ext4
 * punches nothing there), so cut at the end, let the journal commit so
 * the blocks can be reused, and take back the slack for the appends that
 * come meanwhile. Under the lock: appends move the end.
 */
static int compact_space(swapio_store *s, struct compaction *c, uint64_t need)
{
	int ret;

	c->alloc = need + IDX_RESERVE;
	ret = swapio__sys_fallocate(&s->sys, SYS_TMP, c->fd,
				    FALLOC_FL_KEEP_SIZE, 0, c->alloc);
	if (ret != -ENOSPC)
		return ret == -EOPNOTSUPP ? 0 : ret;
	pthread_mutex_lock(&s->lock);
	if (s->idx_alloc > s->idx_end + IDX_SLACK &&
	    !swapio__sys_ftruncate(&s->sys, SYS_INDEX, s->ifd, s->idx_end)) {
		(void)syncfs(s->ifd);
		s->idx_alloc = s->idx_end;
		if (!swapio__sys_fallocate(&s->sys, SYS_INDEX, s->ifd,
					   FALLOC_FL_KEEP_SIZE, s->idx_end,
					   IDX_SLACK))
			s->idx_alloc = s->idx_end + IDX_SLACK;
	}
	pthread_mutex_unlock(&s->lock);
	c->alloc = need;
	return swapio__sys_fallocate(&s->sys, SYS_TMP, c->fd,
				     FALLOC_FL_KEEP_SIZE, 0, need);
}

/* HEAD, then a PUT per value and a DEL per tombstone; no lock held. */
static int compact_write(swapio_store *s, struct compaction *c)
{
	struct irec *recs = malloc(IDX_CHUNK * sizeof(*recs));
	unsigned int n = 1;
	int ret = 0;

	if (!recs)
		return -ENOMEM;
	rec_init(&recs[0], REC_HEAD, c->gen);
	recs[0].off = s->block;
	recs[0].len = IDX_VERSION;
	recs[0].sum = c->cover;
	recs[0].reserved = c->n;
	rec_seal(&recs[0]);
	c->end = 0;
	for (size_t i = 0; i <= c->n && !ret; i++) {
		if (i < c->n && (c->v[i]->flags & ENT_TOMB))
			swapio__rec_del(&recs[n++], c->v[i]->key,
					c->v[i]->keylen, c->v[i]->gen);
		else if (i < c->n)
			swapio__rec_put(&recs[n++], c->v[i]);
		if (n < IDX_CHUNK && i < c->n)
			continue;
		ret = swapio__sys_pwrite(&s->sys, SYS_TMP, c->fd, recs,
					 n * REC_SIZE, c->end);
		c->end += n * REC_SIZE;
		n = 0;
	}
	free(recs);
	return ret;
}

/*
 * Records appended to the old log since the snapshot go to the new one
 * too, in order. SYNC records stay behind: their offsets name the old
 * file, and the new one is made durable before it replaces it.
 * s->lock held.
 */
static int compact_copy(swapio_store *s, struct compaction *c)
{
	struct irec r;
	int ret = 0;

	for (; c->copied < s->idx_end && !ret; c->copied += REC_SIZE) {
		if (pread(s->ifd, &r, sizeof(r), (off_t)c->copied) !=
		    (ssize_t)sizeof(r))
			return -EIO;
		if (r.type == REC_SYNC)
			continue;
		ret = swapio__sys_pwrite(&s->sys, SYS_TMP, c->fd, &r,
					 REC_SIZE, c->end);
		if (!ret)
			c->end += REC_SIZE;
	}
	return ret;
}

/*
 * Rename the new log over the old one, all of it durable already, and
 * end it with a SYNC record that says so. s->lock held.
 */
static int compact_swap(swapio_store *s, struct compaction *c)
{
	if (renameat(s->dirfd, "index.tmp", s->dirfd, "index"))
		return -errno;
	close(s->ifd);
	s->ifd = c->fd;
	c->fd = -1;
	s->idx_end = c->end;
	s->sync_mark = 0;
	s->idx_alloc = SWAPIO_MAX(c->alloc, c->end);
	s->log_seq++;
	s->dir_dirty = true;
	log_mark_synced(s, c->end, SYNC_COMPACT);
	return 0;
}

/*
 * Copy what was appended meanwhile, sync unlocked, and swap once a sync
 * found nothing new; after COPY_ROUNDS the last sync runs locked.
 */
static int compact_finish(swapio_store *s, struct compaction *c)
{
	bool synced = false;
	int ret;

	for (int round = 0;; round++) {
		pthread_mutex_lock(&s->lock);
		if (synced && c->copied == s->idx_end) {
			ret = compact_swap(s, c);
			break;
		}
		ret = compact_copy(s, c);
		if (ret)
			break;
		if (round >= COPY_ROUNDS) {
			ret = swapio__sys_fdatasync(&s->sys, SYS_TMP, c->fd);
			if (!ret)
				ret = compact_swap(s, c);
			break;
		}
		pthread_mutex_unlock(&s->lock);
		ret = swapio__sys_fdatasync(&s->sys, SYS_TMP, c->fd);
		if (ret) {
			pthread_mutex_lock(&s->lock);
			break;
		}
		synced = true;
	}
	if (ret)
		s->compact_after = s->idx_end + 64 * REC_SIZE;
	compact_release(s, c);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * Replace the log by a fresh one holding only the live keys (and the
 * tombstones still needed), written to index.tmp and renamed over the
 * index, so a crash leaves one complete log or the other. Takes s->lock
 * only to snapshot, to hand over reserve and to swap; gets, puts and
 * syncs run meanwhile. One compaction at a time: a second caller returns.
 */
int swapio__log_compact(swapio_store *s)
{
	struct compaction c = { .fd = -1 };
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = s->compacting ? -EALREADY : compact_snapshot(s, &c);
	pthread_mutex_unlock(&s->lock);
	if (ret)
		return ret == -EALREADY ? 0 : ret;
	/* Created anew: a link planted as index.tmp is removed, not followed. */
	c.fd = swapio__tmp_at(s->dirfd, s->drv[0].dir, "index.tmp",
			      STORE_FILE_MODE(s));
	ret = c.fd < 0 ? c.fd : 0;
	if (!ret)
		ret = compact_space(s, &c, (c.n + 1) * (uint64_t)REC_SIZE);
	if (!ret)
		ret = compact_write(s, &c);
	if (!ret)
		ret = compact_finish(s, &c);
	else {
		pthread_mutex_lock(&s->lock);
		s->compact_after = s->idx_end + 64 * REC_SIZE;
		compact_release(s, &c);
		pthread_mutex_unlock(&s->lock);
	}
	if (c.fd >= 0) {
		close(c.fd);
		unlinkat(s->dirfd, "index.tmp", 0);
	}
	/* The rename must reach the disk before anything relies on it. */
	if (!ret && !fsync(s->dirfd)) {
		pthread_mutex_lock(&s->lock);
		s->dir_dirty = false;
		pthread_mutex_unlock(&s->lock);
	}
	return ret;
}

/* After an append: compact if the log asked for it. No lock held. */
void swapio__log_maybe_compact(swapio_store *s)
{
	bool want;

	pthread_mutex_lock(&s->lock);
	want = s->want_compact && !s->compacting;
	pthread_mutex_unlock(&s->lock);
	if (want)
		(void)swapio__log_compact(s);	/* the long log works */
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
	e = swapio__entry_new(r->key, r->keylen);
	if (!e)
		return -ENOMEM;
	e->gen = r->gen;
	e->off = r->off;
	e->len = r->len;
	e->ext = ext_bytes(s, r->len);
	e->sum = r->sum;
	e->flags = r->flags & VAL_SUM;
	/* The extent must be free now, exactly as when the put committed. */
	ret = swapio__fl_claim(&s->fl, e->off, e->ext);
	if (ret) {
		free(e);
		return ret;
	}
	swapio__apply_put(s, e);
	return 0;
}

static int replay_one(swapio_store *s, const struct irec *r)
{
	if (r->gen > GEN_MAX)
		return SWAPIO_EBADSTORE;
	if (r->gen > s->gen)
		s->gen = r->gen;
	switch (r->type) {
	case REC_PUT:
		return replay_put(s, r);
	case REC_DEL:
		/* A tombstone: a later PUT of an older put must lose. */
		swapio__apply_del(s, r->key, r->keylen, r->gen, true);
		return 0;
	case REC_GEN:
	case REC_SYNC:
		return 0;
	default:
		return SWAPIO_EBADSTORE;	/* a second HEAD */
	}
}

static int head_check(swapio_store *s, const struct irec *r)
{
	if (!rec_valid(r) || r->type != REC_HEAD)
		return SWAPIO_EBADSTORE;
	if (r->len < IDX_VERSION_MIN || r->len > IDX_VERSION ||
	    r->off < MIN_BLOCK || r->off > MAX_BLOCK ||
	    (r->off & (r->off - 1)) || r->gen > GEN_MAX)
		return SWAPIO_EBADSTORE;
	s->block = (uint32_t)r->off;
	s->gen = r->gen;
	return swapio__space_init(s);
}

/*
 * Does a SYNC record after record @bad vouch for it? Then it is damage:
 * the SYNC record's place (never 0: the HEAD's), else 0.
 */
static uint64_t synced_past(const unsigned char *buf, uint64_t nrec,
			    uint64_t bad, uint32_t *how)
{
	struct irec r;

	for (uint64_t i = bad + 1; i < nrec; i++) {
		memcpy(&r, buf + i * REC_SIZE, sizeof(r));
		if (r.type == REC_SYNC && rec_valid(&r) &&
		    r.off == i * REC_SIZE && r.len > bad * REC_SIZE) {
			*how = r.flags;
			return i;
		}
	}
	return 0;
}

/* Slots of @len bytes at @p up to the last that holds a non-zero byte. */
static uint64_t used_slots(const unsigned char *p, size_t len)
{
	while (len && !p[len - 1])
		len--;
	return len ? (len - 1) / REC_SIZE + 1 : 0;
}

/*
 * Replay the log in @buf (any alignment). Sets s->idx_end to the bytes of
 * the valid prefix, s->sync_mark to it too if its last record vouches for
 * all before it (else 0), and s->rep to what was found: the records
 * dropped past the prefix (up to the last slot that is not all zeros, so
 * that a tail this library zeroed never counts twice), or the damage.
 * Returns 0, -ENOMEM, or SWAPIO_EBADSTORE: no valid HEAD, a record that
 * does not fit the store, or damage (see the top).
 */
int swapio__log_replay(swapio_store *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	const uint64_t nrec = len / REC_SIZE;
	const uint64_t used = used_slots(p, len);
	bool whole = false;	/* the last record vouches for all */
	uint64_t i;
	struct irec r;
	int ret;

	memset(&s->rep, 0, sizeof(s->rep));
	s->rep.nrec = (len + REC_SIZE - 1) / REC_SIZE;
	if (!nrec)
		return SWAPIO_EBADSTORE;
	memcpy(&r, p, sizeof(r));
	ret = head_check(s, &r);
	for (i = 1; !ret && i < nrec; i++) {
		memcpy(&r, p + i * REC_SIZE, sizeof(r));
		if (!rec_valid(&r))
			break;
		ret = replay_one(s, &r);
		whole = r.type == REC_SYNC && r.off == i * REC_SIZE &&
			r.len == r.off;
		if (r.type == REC_SYNC && (r.flags & SYNC_DROPPED))
			s->dropped = true;
	}
	if (ret)
		return ret;
	s->rep.bad = i;
	if (i < nrec)
		s->rep.vouch = synced_past(p, nrec, i, &s->rep.vouch_flags);
	if (s->rep.vouch) {
		s->rep.damaged = true;
		return SWAPIO_EBADSTORE;
	}
	s->rep.dropped = used > i ? used - i : 0;
	if (s->rep.dropped)
		s->dropped = true;
	/* Nothing is in flight yet: no put can lose to a tombstone. */
	swapio__tombs_drop(s, UINT64_MAX);
	s->idx_end = i * REC_SIZE;
	/* After a drop, the next vouching record must say so. */
	s->sync_mark = whole && !s->rep.dropped ? s->idx_end : 0;
	s->gen_limit = s->gen;
	return 0;
}

bool swapio__log_complete(const swapio_store *s)
{
	return s->idx_end && s->sync_mark == s->idx_end && !s->dropped;
}

/* The whole index in memory: mapped, or read where mmap is refused. */
static void *log_map(int fd, size_t len, bool *mapped)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	size_t done = 0;
	ssize_t r;

	*mapped = p != MAP_FAILED;
	if (*mapped)
		return p;
	p = malloc(len);
	while (p && done < len) {
		r = pread(fd, (char *)p + done, len - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return NULL;
		}
		done += (size_t)r;
	}
	return p;
}

/*
 * Past the valid prefix lie a crash's leftovers. They are zeroed, not cut
 * off: a truncate would free the reserve, which a full filesystem may not
 * give back, and a stale SYNC record left there could later vouch for a
 * record it never saw.
 */
static int log_wipe_tail(swapio_store *s, uint64_t size)
{
	static const char zeros[IDX_CHUNK * REC_SIZE];
	uint64_t off = s->idx_end;
	int ret = 0;

	while (off < size && !ret) {
		size_t n = (size_t)SWAPIO_MIN(size - off, sizeof(zeros));

		ret = swapio__sys_pwrite(&s->sys, SYS_INDEX, s->ifd, zeros, n,
					 off);
		off += n;
	}
	return ret;
}

/* Replay the index file (swapio__log_wipe() clears its torn tail). */
int swapio__log_load(swapio_store *s)
{
	struct stat st;
	bool mapped;
	void *buf;
	int ret;

	if (fstat(s->ifd, &st))
		return -errno;
	if ((uint64_t)st.st_size < REC_SIZE)
		return SWAPIO_EBADSTORE;
	buf = log_map(s->ifd, (size_t)st.st_size, &mapped);
	if (!buf)
		return -ENOMEM;
	ret = swapio__log_replay(s, buf, (size_t)st.st_size);
	if (mapped)
		munmap(buf, (size_t)st.st_size);
	else
		free(buf);
	/* What is allocated already counts as reserve. */
	s->idx_alloc = SWAPIO_MAX((uint64_t)st.st_blocks * 512,
				  (uint64_t)st.st_size);
	return ret;
}

int swapio__log_wipe(swapio_store *s)
{
	struct stat st;

	if (fstat(s->ifd, &st))
		return -errno;
	return log_wipe_tail(s, (uint64_t)st.st_size);
}

uint64_t swapio__log_cover(swapio_store *s)
{
	struct irec r;
	struct stat st;
	uint64_t n, cover = 0;
	bool mapped;
	void *buf;

	if (s->ifd < 0 || fstat(s->ifd, &st) || st.st_size < REC_SIZE)
		return 0;
	buf = log_map(s->ifd, (size_t)st.st_size, &mapped);
	if (!buf)
		return 0;
	memcpy(&r, buf, sizeof(r));
	n = r.reserved;
	if (rec_valid(&r) && r.type == REC_HEAD && r.sum <= GEN_MAX + 1 &&
	    n < (uint64_t)st.st_size / REC_SIZE) {
		cover = r.sum;
		for (uint64_t i = 1; i <= n && cover; i++) {
			memcpy(&r, (char *)buf + i * REC_SIZE, sizeof(r));
			if (!rec_valid(&r))
				cover = 0;
		}
	}
	if (mapped)
		munmap(buf, (size_t)st.st_size);
	else
		free(buf);
	return cover;
}

int swapio__log_walk(swapio_store *s,
		     int (*fn)(swapio_store *s, const struct irec *r,
			       void *arg),
		     void *arg, uint64_t *bad)
{
	const unsigned char *p;
	struct irec r;
	struct stat st;
	size_t len;
	bool mapped;
	void *buf;
	int ret = 0;

	*bad = 0;
	if (s->ifd < 0)
		return 0;
	if (fstat(s->ifd, &st))
		return -errno;
	len = (size_t)st.st_size;
	if (!len)
		return 0;
	buf = log_map(s->ifd, len, &mapped);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for (size_t off = 0; off < len && !ret; off += REC_SIZE) {
		size_t n = SWAPIO_MIN(len - off, (size_t)REC_SIZE);

		memset(&r, 0, sizeof(r));
		memcpy(&r, p + off, n);
		if (n == REC_SIZE && rec_valid(&r))
			ret = fn(s, &r, arg);
		else if (used_slots(p + off, n))
			(*bad)++;
	}
	if (mapped)
		munmap(buf, len);
	else
		free(buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Sync                                                                */
/* ------------------------------------------------------------------ */

/*
 * fdatasync the data, then the index through a duplicate descriptor, so
 * that no lock is held while the disk works. The SYNC record goes after
 * the index's fdatasync returned, not before it: a marker written before
 * could reach the disk ahead of the records it vouches for.
 */
int swapio__log_sync(swapio_store *s, uint32_t how)
{
	uint64_t end, seq;
	bool dir;
	int fd, ret;

	ret = swapio__data_sync(s);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	fd = fcntl(s->ifd, F_DUPFD_CLOEXEC, 0);
	end = s->idx_end;
	seq = s->log_seq;
	dir = s->dir_dirty;
	pthread_mutex_unlock(&s->lock);
	if (fd < 0)
		return -errno;
	ret = swapio__sys_fdatasync(&s->sys, SYS_INDEX, fd);
	close(fd);
	if (!ret && dir && fsync(s->dirfd))
		ret = -errno;
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	if (seq == s->log_seq && end > s->sync_mark)
		log_mark_synced(s, end, how);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
