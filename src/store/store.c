/* SPDX-License-Identifier: MIT */
/*
 * The store's front end: the ops and the public calls. Its data I/O
 * goes through the public API (swapio.h) and the calls of ext.h (a put's
 * header and payload as one write); the map (map.c), the log, the
 * allocator and recovery are units of their own (store_impl.h).
 *
 * Why a crash never mixes old and new: a put writes its extent into free
 * space, which no live key refers to, and only when both writes have
 * completed does it append its PUT record and switch the in-memory map.
 * The data was handed to the kernel before the record, so a process
 * killed at any moment leaves a log whose every record points at complete
 * data. Replay applies records with the same functions (apply_put /
 * apply_del) that ran when they were appended, so the recovered map is
 * the map the process had.
 *
 * One key, one order: every put and remove takes a generation when it is
 * submitted, and of two operations on a key the higher generation wins,
 * whichever commits last. A remove of a key whose older put is still in
 * flight leaves a tombstone (and its DEL record carries its generation),
 * so the put loses when it commits, in this session and at replay.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "checksum.h"
#include "store_impl.h"
#include "util.h"

#define DEF_GROW	(64ull << 20)
#define COMMIT_MAX	32	/* puts in one group commit */

/* Is @s inherited across fork()? A store belongs to its opener. */
static bool store_forked(const swapio_store *s)
{
	return swapio__forked(s->fork_gen);
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

/* ------------------------------------------------------------------ */
/* Lookups and puts in flight                                          */
/* ------------------------------------------------------------------ */

/* @key's value; tombstones do not count. */
static struct entry *map_find(swapio_store *s, const char *key, size_t n)
{
	struct entry *e = swapio__map_get(s, key, n);

	return e && !(e->flags & ENT_TOMB) ? e : NULL;
}

/* The oldest generation of a put in flight (not yet committed). */
static uint64_t oldest_put(const swapio_store *s)
{
	uint64_t g = UINT64_MAX;

	for (const struct swapio_store_op *op = s->live.next; op != &s->live;
	     op = op->next)
		if (op->put && op->e && op->e->gen < g)
			g = op->e->gen;
	return g;
}

/* Is a put of @key in flight? */
static bool put_pending(const swapio_store *s, const char *key, size_t n)
{
	if (!s->puts_in_flight)
		return false;
	for (const struct swapio_store_op *op = s->live.next; op != &s->live;
	     op = op->next)
		if (op->put && op->e && op->e->keylen == n &&
		    !memcmp(op->e->key, key, n))
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

/*
 * The stores this process has open, by directory. A record lock belongs
 * to the process, so a second open in the same process would get it too,
 * and closing that opener's descriptor would drop the first one's lock:
 * the registry refuses it before the lock file is even opened. An entry
 * also remembers a clean close, with the index as it was left, so that
 * a reopen need not wait for a killed owner's writes that cannot exist.
 */
struct store_reg {
	struct store_reg	*next;
	dev_t			dev;
	ino_t			ino;
	bool			open;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_reg *regs;

static int reg_claim(struct store_drive *d)
{
	struct store_reg *r;
	struct stat st;
	int ret = 0;

	if (fstat(d->dirfd, &st))
		return -errno;
	pthread_mutex_lock(&reg_lock);
	for (r = regs; r && (r->dev != st.st_dev || r->ino != st.st_ino);)
		r = r->next;
	if (!r && (r = calloc(1, sizeof(*r)))) {
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->next = regs;
		regs = r;
	}
	if (!r)
		ret = -ENOMEM;
	else if (r->open)
		ret = -EBUSY;
	else
		r->open = true;
	d->reg = ret ? NULL : r;
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

static void reg_release(struct store_drive *d)
{
	if (!d->reg)
		return;
	pthread_mutex_lock(&reg_lock);
	d->reg->open = false;
	pthread_mutex_unlock(&reg_lock);
	d->reg = NULL;
}

static int cfg_check(const struct swapio_store_config *c)
{
	const uint32_t known = SWAPIO_STORE_NO_CHECKSUM |
			       SWAPIO_STORE_NO_CREATE | SWAPIO_STORE_RECOVER |
			       SWAPIO_STORE_SHARED;

	if (c->reserved32 || (c->flags & ~known))
		return -EINVAL;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(c->reserved); i++)
		if (c->reserved[i])
			return -EINVAL;
	return 0;
}

/*
 * Drive @i's directory must not be one of the drives before it, by any
 * path: its lock would be taken twice. 0 or -EINVAL.
 */
static int drive_unique(const swapio_store *s, unsigned int i)
{
	struct stat st, prev;

	if (fstat(s->drv[i].dirfd, &st))
		return -errno;
	for (unsigned int j = 0; j < i; j++)
		if (!fstat(s->drv[j].dirfd, &prev) &&
		    prev.st_dev == st.st_dev && prev.st_ino == st.st_ino)
			return swapio__detail(-EINVAL, "%s and %s: the same "
					      "directory, given twice",
					      s->drv[j].dir, s->drv[i].dir);
	return 0;
}

/*
 * Enter drive @i's directory @dir (creating it with @create), vetted as
 * safe on a shared machine (safe_open.c), and take its lock: one owner
 * at a time. A POSIX record lock (F_SETLK), not flock(): it belongs to
 * the process, so a forked child does not inherit it and the parent may
 * close and reopen.
 */
static int drive_lock(swapio_store *s, unsigned int i, const char *dir,
		      bool create)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct store_drive *d = &s->drv[i];
	int ret;

	d->dir = strdup(dir);
	if (!d->dir)
		return -ENOMEM;
	d->dirfd = swapio__dir_open(dir, create, STORE_DIR_MODE(s));
	if (d->dirfd < 0)
		return d->dirfd;
	ret = drive_unique(s, i);
	if (!ret)
		ret = reg_claim(d);
	if (ret)
		return ret;
	d->lockfd = swapio__file_at(d->dirfd, d->dir, "lock",
				    O_RDWR | O_CREAT, STORE_FILE_MODE(s));
	if (d->lockfd < 0)
		return d->lockfd;
	if (fcntl(d->lockfd, F_SETLK, &fl))
		return errno == EACCES || errno == EAGAIN ? -EBUSY : -errno;
	return 0;
}

/*
 * The lock is ours, but a killed owner's last writes may still be in
 * flight: io_uring tears a ring down after its process is gone, and until
 * then those requests write into extents we are about to reuse. They hold
 * the data file open for writing, and a read lease is granted only when
 * no one has it open for writing, so wait for one (up to 5 s) on a
 * read-only descriptor, before opening ours, then let it go at once.
 * Where leases are not available (permissions, filesystem), go on. A
 * forked child holds none of the data file's descriptors: the library
 * closes them in every child (fork.c).
 */
static int data_quiesce(const struct store_drive *d)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	int fd, ret = -EBUSY;

	fd = swapio__file_at(d->dirfd, d->dir, "data", O_RDONLY, 0);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	for (int i = 0; i < 500 && ret; i++) {
		if (!fcntl(fd, F_SETLEASE, F_RDLCK)) {
			(void)fcntl(fd, F_SETLEASE, F_UNLCK);
			ret = 0;
		} else if (errno != EAGAIN && errno != EBUSY) {
			ret = 0;
		} else {
			/* Our own handle's ring may hold it (engine.h). */
			if (i % 10 == 0)
				swapio__handle_flush(d->h);
			nanosleep(&tick, NULL);
		}
	}
	close(fd);
	return ret;
}

/* Open the index. Returns 1 if there is none yet, 0 or -errno. */
static int index_open(swapio_store *s)
{
	int fd = swapio__file_at(s->dirfd, s->drv[0].dir, "index", O_RDWR, 0);

	if (fd >= 0) {
		s->ifd = fd;
		return 0;
	}
	if (fd == -ENOENT && !(s->flags & SWAPIO_STORE_NO_CREATE))
		return 1;
	return fd;
}

/*
 * Open a drive's data file, once a killed owner's writes have drained.
 * The quiesce vetted an existing one; with SWAPIO_O_CREATE the open
 * follows no link and refuses a FIFO or socket.
 */
static int data_open(const swapio_store *s, struct store_drive *d)
{
	const unsigned int shared = s->flags & SWAPIO_STORE_SHARED ?
				    SWAPIO_O_SHARED : 0;
	int64_t size;
	int ret = data_quiesce(d);

	if (ret)
		return ret;
	ret = swapio_file_openat(d->h, d->dirfd, "data", SWAPIO_O_READ |
				 SWAPIO_O_WRITE | SWAPIO_O_CREATE | shared,
				 &d->df);
	if (ret)
		return ret;
	size = swapio_file_size(d->df);
	if (size < 0)
		return (int)size;
	d->size = (uint64_t)size;
	return 0;
}

/*
 * Lock every drive and open the files. Drive 0 first: it holds the index,
 * and whether the store exists decides whether the other drives may be
 * created (a missing drive of an existing store is an error, not a new
 * empty directory). Returns 1 if there is no index yet, 0 or -errno, and
 * the drive at fault in *@failed.
 */
static int store_files(swapio_store *s, const struct swapio_store_drive *dv,
		       unsigned int *failed)
{
	const bool create = !(s->flags & SWAPIO_STORE_NO_CREATE);
	struct stat st;
	bool exists;
	int fresh, ret;

	*failed = 0;
	ret = drive_lock(s, 0, dv[0].dir, create);
	if (ret)
		return ret;
	s->dirfd = s->drv[0].dirfd;
	fresh = index_open(s);
	if (fresh < 0)
		return fresh;
	exists = !fresh || (!fstatat(s->dirfd, "data", &st,
				     AT_SYMLINK_NOFOLLOW) && st.st_size);
	for (unsigned int i = 1; i < s->nr_drives; i++) {
		*failed = i;
		ret = drive_lock(s, i, dv[i].dir, create && !exists);
		if (ret)
			return ret;
	}
	ret = swapio__drives_check(s, exists, failed);
	for (unsigned int i = 0; !ret && i < s->nr_drives; i++) {
		*failed = i;
		ret = data_open(s, &s->drv[i]);
	}
	if (ret)
		return ret;
	*failed = s->nr_drives;
	s->data_size = swapio__data_size(s);
	return fresh;
}

/*
 * The block of a new store: 4 KiB, or larger where the page or the
 * file's I/O alignment is: an extent's buffered tail page must never
 * share a page with the next extent's direct header.
 */
static uint32_t default_block(const swapio_store *s)
{
	uint32_t mem, off, b = MIN_BLOCK;
	long page = sysconf(_SC_PAGESIZE);

	for (unsigned int i = 0; i < s->nr_drives; i++) {
		swapio_file_alignment(s->drv[i].df, &mem, &off);
		while (b < mem || b < off ||
		       (page > 0 && b < (unsigned long)page))
			b *= 2;
	}
	return b <= MAX_BLOCK ? b : MAX_BLOCK;
}

/*
 * Replay the log, or rebuild it: RECOVER rebuilds unless the log vouches
 * for all of itself (a clean close, or a sync with nothing after it).
 */
static int store_load(swapio_store *s)
{
	int ret = swapio__log_load(s);

	if ((s->flags & SWAPIO_STORE_RECOVER) &&
	    (ret == SWAPIO_EBADSTORE || (!ret && !swapio__log_complete(s))))
		return swapio__scan_rebuild(s, default_block(s));
	if (!ret)
		ret = swapio__log_wipe(s);
	if (ret)
		return ret;
	/* Start with a short log; a failure just keeps the long one. */
	if (s->idx_end / REC_SIZE > 2 * s->nkeys + 64)
		(void)swapio__log_compact(s);
	return 0;
}

void swapio__store_free(swapio_store *s)
{
	struct swapio_store_op *op, *next;

	for (op = s->free_ops; op; op = next) {
		next = op->next;
		pthread_cond_destroy(&op->cond);
		pthread_mutex_destroy(&op->lock);
		free(op->hdr);
		free(op->io);
		free(op->io_len);
		free(op);
	}
	if (s->ifd >= 0)
		close(s->ifd);
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(s->drv); i++) {
		struct store_drive *d = &s->drv[i];

		swapio_file_close(d->df);
		if (d->lockfd >= 0)
			close(d->lockfd);	/* releases the record lock */
		reg_release(d);
		if (d->dirfd >= 0)
			close(d->dirfd);
		free(d->dir);
	}
	swapio__map_free(s);
	free(s->fl.v);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

swapio_store *swapio__store_alloc(swapio_handle *h, uint32_t flags)
{
	swapio_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->drv[0].h = h;
	s->nr_drives = 1;
	s->ifd = s->dirfd = -1;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(s->drv); i++)
		s->drv[i].dirfd = s->drv[i].lockfd = -1;
	s->fork_gen = swapio__fork_gen();
	s->flags = flags;
	s->grow = DEF_GROW;
	s->live.next = s->live.prev = &s->live;
	s->nbuckets = 64;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets || pthread_mutex_init(&s->lock, NULL)) {
		free(s->buckets);
		free(s);
		return NULL;
	}
	return s;
}

/* A new store's block, stripe unit and drive records. */
static int store_create(swapio_store *s, const struct swapio_store_drive *dv)
{
	const char *dirs[SWAPIO_STORE_DRIVES_MAX];
	int ret;

	s->block = default_block(s);
	s->gen_limit = GEN_BATCH;	/* the first HEAD reserves */
	if (s->unit % s->block)
		return -EINVAL;
	for (unsigned int i = 0; i < s->nr_drives; i++)
		dirs[i] = dv[i].dir;
	ret = swapio__drives_record(s, dirs);
	if (!ret)
		ret = swapio__space_init(s);
	return ret ? ret : swapio__log_compact(s);
}

/* Lock, then create the store or load its index. */
static int store_setup(swapio_store *s, const struct swapio_store_drive *dv,
		       bool *fresh, unsigned int *failed)
{
	int ret = store_files(s, dv, failed);

	*fresh = ret == 1 && !s->data_size;
	if (*fresh)
		return store_create(s, dv);
	if (ret >= 0 && s->unit % MIN_BLOCK)
		return SWAPIO_EDRIVES;	/* a forged record */
	if (ret == 1)	/* data without an index: never start over on it */
		ret = (s->flags & SWAPIO_STORE_RECOVER) ?
		      swapio__scan_rebuild(s, default_block(s)) :
		      SWAPIO_EBADSTORE;
	else if (!ret)
		ret = store_load(s);
	/* The block comes from the log: only now can the unit be checked. */
	if (!ret && s->unit % s->block)
		ret = SWAPIO_EDRIVES;
	return ret;
}

/* What the log's SWAPIO_EBADSTORE was, for swapio_error_detail(). */
static int store_bad_detail(const swapio_store *s, const char *dir)
{
	const struct log_report *r = &s->rep;
	const char *who = (r->vouch_flags & SYNC_CLOSE) ? "a clean close" :
			  (r->vouch_flags & SYNC_COMPACT) ? "a compaction" :
			  "a sync";

	if (s->ifd < 0)
		return swapio__detail(SWAPIO_EBADSTORE,
			"%s/index: missing beside a data file that holds "
			"data; open with SWAPIO_STORE_RECOVER to rebuild it "
			"from the data file", dir);
	if (!r->damaged)
		return swapio__detail(SWAPIO_EBADSTORE,
			"%s/index: not a swapio store's log (its first record "
			"is not a valid header, or a record does not fit the "
			"store)", dir);
	return swapio__detail(SWAPIO_EBADSTORE,
		"%s/index: record %llu of %llu (offset %llu) fails its "
		"checksum, and record %llu, written by %s, vouches for it: "
		"damage, not a torn tail; open with SWAPIO_STORE_RECOVER to "
		"rebuild from the data file",
		dir, (unsigned long long)r->bad, (unsigned long long)r->nrec,
		(unsigned long long)(r->bad * REC_SIZE),
		(unsigned long long)r->vouch, who);
}

/* Check the arguments of an open; 0 or -EINVAL. */
static int open_check(const struct swapio_store_drive *dv, unsigned int nr,
		      const struct swapio_store_config *c)
{
	if (!dv || !nr || nr > SWAPIO_STORE_DRIVES_MAX || cfg_check(c))
		return -EINVAL;
	if (c->stripe_unit > MAX_LEN)
		return -EINVAL;
	for (unsigned int i = 0; i < nr; i++)
		if (!dv[i].h || !dv[i].dir || !*dv[i].dir)
			return -EINVAL;
	return 0;
}

int swapio_store_open_multi(const struct swapio_store_drive *dv,
			    unsigned int nr,
			    const struct swapio_store_config *cfg,
			    swapio_store **out, unsigned int *failed)
{
	SWAPIO_KEEP_ERRNO;
	const struct swapio_store_config none = { 0 };
	const struct swapio_store_config *c = cfg ? cfg : &none;
	unsigned int bad = nr;
	bool fresh = false;
	swapio_store *s;
	int ret;

	swapio__detail_clear();
	if (failed)
		*failed = nr;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (open_check(dv, nr, c))
		return -EINVAL;
	s = swapio__store_alloc(dv[0].h, c->flags);
	if (!s)
		return -ENOMEM;
	s->nr_drives = nr;
	for (unsigned int i = 0; i < nr; i++)
		s->drv[i].h = dv[i].h;
	s->unit = nr > 1 ? c->stripe_unit : 0;
	if (c->grow_bytes)
		s->grow = c->grow_bytes;
	ret = swapio__env_check(SWAPIO_ENV_STORE);
	if (!ret)
		ret = swapio__sys_init(&s->sys, swapio__env("SWAPIO_FAULT_FD"));
	if (!ret)
		ret = store_setup(s, dv, &fresh, &bad);
	if (ret == SWAPIO_EBADSTORE)
		ret = store_bad_detail(s, dv[0].dir);
	if (!ret && c->capacity)
		ret = swapio__space_capacity(s, c->capacity);
	if (ret && fresh) {
		/* Leave no half-made store to be mistaken for a damaged one. */
		unlinkat(s->dirfd, "index", 0);
		swapio__drives_unrecord(s);
	}
	if (ret) {
		if (failed)
			*failed = ret == -ENOMEM ? nr : bad;
		swapio__store_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int swapio_store_open(swapio_handle *h, const char *dir,
		      const struct swapio_store_config *cfg,
		      swapio_store **out)
{
	const struct swapio_store_drive d = { .h = h, .dir = dir };

	return swapio_store_open_multi(&d, 1, cfg, out, NULL);
}

void swapio_store_close(swapio_store *s)
{
	SWAPIO_KEEP_ERRNO;

	/*
	 * In a forked child the store is the parent's: its locks may have
	 * been held at the fork and its ops belong to threads that are not
	 * here. Leave it alone; exit or exec releases the copy.
	 */
	if (!s || store_forked(s))
		return;
	while (s->live.next != &s->live)
		swapio_store_op_free(s->live.next);
	/*
	 * Leave a log that vouches for itself: damage before its end is then
	 * an error at the next open, not a shorter log. Nothing to do when
	 * nothing was logged since the last record that vouches; a failure
	 * only leaves the log as a crash would.
	 */
	if (s->idx_end != s->sync_mark)
		(void)swapio__log_sync(s, SYNC_CLOSE);
	swapio__store_free(s);
}

/* ------------------------------------------------------------------ */
/* Ops                                                                 */
/* ------------------------------------------------------------------ */

static struct swapio_store_op *op_new(void)
{
	struct swapio_store_op *op = calloc(1, sizeof(*op));
	pthread_condattr_t ca;

	if (!op)
		return NULL;
	if (pthread_condattr_init(&ca))
		goto err_free;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&op->cond, &ca))
		goto err_attr;
	if (pthread_mutex_init(&op->lock, NULL))
		goto err_cond;
	pthread_condattr_destroy(&ca);
	return op;

err_cond:
	pthread_cond_destroy(&op->cond);
err_attr:
	pthread_condattr_destroy(&ca);
err_free:
	free(op);
	return NULL;
}

/* s->lock held. */
static void op_unget(swapio_store *s, struct swapio_store_op *op)
{
	op->next = s->free_ops;
	s->free_ops = op;
}

static struct swapio_store_op *sop_get(swapio_store *s, bool put)
{
	struct swapio_store_op *op;

	pthread_mutex_lock(&s->lock);
	op = s->free_ops;
	if (op)
		s->free_ops = op->next;
	pthread_mutex_unlock(&s->lock);
	if (!op)
		op = op_new();
	if (!op)
		return NULL;
	/* Header blocks are kept with the op for its next put. */
	if (put && !op->hdr && posix_memalign(&op->hdr, s->block, s->block)) {
		op->hdr = NULL;
		pthread_mutex_lock(&s->lock);
		op_unget(s, op);
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	op->s = s;
	op->put = put;
	op->finishing = false;
	atomic_init(&op->finished, false);
	atomic_init(&op->submitted, false);
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

/*
 * Free the op's transfers. Only once no one can be waiting on them, which
 * is why the finish step leaves them be and release does this.
 */
static void io_release(struct swapio_store_op *op)
{
	for (unsigned int i = 0; i < op->nr_io; i++) {
		swapio_op_free(op->io[i]);
		op->io[i] = NULL;
	}
	op->nr_io = 0;
}

/* s->lock held. */
static void op_recycle(swapio_store *s, struct swapio_store_op *op)
{
	io_release(op);
	op->prev->next = op->next;
	op->next->prev = op->prev;
	op_unget(s, op);
}

/*
 * The transfers' outcome: 0 or the first error. Waits for every one of
 * them, also after an error: a failed put's space is freed next, and a
 * piece still in flight (on another drive, say) must not land in it after
 * another put took it.
 */
static int io_result(struct swapio_store_op *op)
{
	int ret = 0;

	for (unsigned int i = 0; i < op->nr_io; i++) {
		int64_t r = swapio_op_wait(op->io[i], -1);

		if (ret)
			continue;
		if (r < 0)
			ret = (int)r;
		else if ((uint64_t)r != op->io_len[i])
			ret = -EIO;	/* data file shorter than the index */
	}
	return ret;
}

/* Undo a submission that failed half way. Returns @err. */
static int op_abort(struct swapio_store_op *op, int err)
{
	swapio_store *s = op->s;

	(void)io_result(op);
	pthread_mutex_lock(&s->lock);
	if (op->put) {
		swapio__space_free(s, op->e->off, op->e->ext);
		free(op->e);
		op->e = NULL;
		s->puts_in_flight--;
		swapio__tombs_drop(s, oldest_put(s));
	} else {
		swapio__entry_put(s, op->e);
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
	v->version = VAL_VERSION;
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

/*
 * Header block and payload go into free space: as one op where they lie
 * on one drive, else the header alone and one op per stripe unit the
 * payload touches.
 */
static int put_start(swapio_store *s, struct swapio_store_op *op)
{
	const struct entry *e = op->e;
	int ret;

	ret = swapio__io_reserve(op, 1 + swapio__data_pieces(s,
					e->off + s->block, op->len));
	if (ret)
		return ret;
	hdr_fill(s, op->hdr, e);
	return swapio__data_submit_put(s, op, op->hdr, op->buf, op->len,
				       e->off);
}

static struct entry *put_entry(const swapio_store *s, const char *key,
			       size_t n, const void *buf, uint64_t len)
{
	struct entry *e = swapio__entry_new(key, n);

	if (!e)
		return NULL;
	e->len = len;
	e->ext = ext_bytes(s, len);
	if (!(s->flags & SWAPIO_STORE_NO_CHECKSUM)) {
		e->flags = VAL_SUM;
		e->sum = swapio__xxh3(buf, (size_t)len);
	}
	return e;
}

/* Space and a generation for the put; the op goes live. */
static int put_reserve(swapio_store *s, struct swapio_store_op *op)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = swapio__space_alloc(s, op->e->ext, &op->e->off);
	if (!ret) {
		ret = swapio__log_gen(s, &op->e->gen);
		if (ret)
			swapio__space_free(s, op->e->off, op->e->ext);
	}
	if (!ret) {
		s->puts_in_flight++;
		live_add(s, op);
	} else {
		op_unget(s, op);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int swapio_store_submit_put(swapio_store *s, const char *key,
			    const void *buf, uint64_t len,
			    swapio_store_op **out)
{
	SWAPIO_KEEP_ERRNO;
	const size_t n = key_len(key);
	struct swapio_store_op *op;
	struct entry *e;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s || !n || (!buf && len) || len > MAX_LEN || len > SIZE_MAX)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	e = put_entry(s, key, n, buf, len);
	op = e ? sop_get(s, true) : NULL;
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
	atomic_store_explicit(&op->submitted, true, memory_order_release);
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
		op_unget(s, op);
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
	SWAPIO_KEEP_ERRNO;
	const size_t n = key_len(key);
	struct swapio_store_op *op;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s || !n || (!buf && len) || len > SIZE_MAX)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	op = sop_get(s, false);
	if (!op)
		return -ENOMEM;
	ret = get_pin(s, op, key, n, len);
	if (ret)
		return ret;
	op->buf = buf;
	op->len = len;
	ret = swapio__io_reserve(op, swapio__data_pieces(s,
					op->e->off + s->block, len));
	if (!ret)
		ret = swapio__data_submit(s, op, false, buf, len,
					  op->e->off + s->block);
	if (ret)
		return op_abort(op, ret);
	*out = op;
	return 0;
}

/* Have all of @q's transfers completed? */
static bool io_all_done(const struct swapio_store_op *q)
{
	for (unsigned int i = 0; i < q->nr_io; i++)
		if (!swapio_op_done(q->io[i]))
			return false;
	return true;
}

/*
 * Other puts whose data is complete and that no one is finishing: they
 * join @op's commit, claimed as their own waiter would claim them (a
 * waiter holding an op's lock just keeps it). s->lock held.
 */
static unsigned int commit_gather(swapio_store *s,
				  const struct swapio_store_op *op,
				  struct swapio_store_op **v, unsigned int max)
{
	struct swapio_store_op *q;
	unsigned int n = 0;
	bool mine;

	for (q = s->live.next; q != &s->live && n < max; q = q->next) {
		if (q == op || !q->put || atomic_load(&q->finished) ||
		    !atomic_load_explicit(&q->submitted, memory_order_acquire) ||
		    !io_all_done(q) || pthread_mutex_trylock(&q->lock))
			continue;
		mine = !q->finishing;
		q->finishing = true;
		pthread_mutex_unlock(&q->lock);
		if (mine)
			v[n++] = q;
	}
	return n;
}

/* Hand a claimed op its result and wake its waiters. */
static void op_publish(struct swapio_store_op *op, int64_t res)
{
	pthread_mutex_lock(&op->lock);
	op->result = res;
	atomic_store(&op->finished, true);
	pthread_cond_broadcast(&op->cond);
	pthread_mutex_unlock(&op->lock);
}

/*
 * The put's data is complete: log it, then switch the key to it. Puts
 * whose data completed too go in the same write of the log (a group
 * commit), so that a window of puts in flight costs one system call per
 * batch, not one per put. Each record is still on the file before its
 * put's wait returns, which is all SIGKILL-safety asks; a put may take
 * effect before its own wait, never after it.
 */
static int put_commit(struct swapio_store_op *op, int ret)
{
	swapio_store *s = op->s;
	struct swapio_store_op *v[COMMIT_MAX];
	struct irec r[COMMIT_MAX];
	int res[COMMIT_MAX], err = 0;
	unsigned int n, k = 0, done = 0, j = 0;

	pthread_mutex_lock(&s->lock);
	v[0] = op;
	res[0] = ret;
	n = 1 + commit_gather(s, op, v + 1, COMMIT_MAX - 1);
	for (unsigned int i = 1; i < n; i++)
		res[i] = io_result(v[i]);	/* complete: no wait */
	for (unsigned int i = 0; i < n; i++)
		if (!res[i])
			swapio__rec_put(&r[k++], v[i]->e);
	if (k)
		err = swapio__log_append_n(s, r, k, &done);
	for (unsigned int i = 0; i < n; i++) {
		struct entry *e = v[i]->e;

		if (!res[i] && j++ >= done)
			res[i] = err;
		if (res[i]) {
			swapio__space_free(s, e->off, e->ext);
			free(e);
		} else {
			swapio__apply_put(s, e);
		}
		v[i]->e = NULL;
		s->puts_in_flight--;
	}
	if (s->ntombs)
		swapio__tombs_drop(s, oldest_put(s));
	pthread_mutex_unlock(&s->lock);
	for (unsigned int i = 1; i < n; i++)
		op_publish(v[i], res[i] ? res[i] : (int64_t)v[i]->len);
	return res[0];
}

static int get_verify(struct swapio_store_op *op, int ret)
{
	swapio_store *s = op->s;
	struct entry *e = op->e;

	if (!ret && (e->flags & VAL_SUM) &&
	    !(s->flags & SWAPIO_STORE_NO_CHECKSUM) &&
	    swapio__xxh3(op->buf, (size_t)op->len) != e->sum)
		ret = -EBADMSG;
	pthread_mutex_lock(&s->lock);
	swapio__entry_put(s, e);
	op->e = NULL;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Have the op's transfers completed within the waiter's own timeout? */
static bool sop_io_wait(struct swapio_store_op *op, int timeout_ms,
		    uint64_t start_ns)
{
	for (unsigned int i = 0; i < op->nr_io; i++) {
		int t = swapio__ms_left(timeout_ms, start_ns);

		if (swapio_op_wait(op->io[i], t) == -ETIMEDOUT &&
		    !swapio_op_done(op->io[i]))
			return false;
	}
	return true;
}

/* Another thread is finishing: wait for it, within our own timeout. */
static void finish_wait(struct swapio_store_op *op, int timeout_ms,
			uint64_t start_ns)
{
	struct timespec dl;
	int t;

	while (!atomic_load(&op->finished)) {
		t = swapio__ms_left(timeout_ms, start_ns);
		if (t < 0) {
			pthread_cond_wait(&op->cond, &op->lock);
			continue;
		}
		if (!t)
			return;
		dl = swapio__deadline(t);
		if (pthread_cond_timedwait(&op->cond, &op->lock, &dl))
			return;
	}
}

/* Commit or verify, once; runs on the one thread that claimed it. */
static int64_t op_finish(struct swapio_store_op *op)
{
	int ret = io_result(op);

	ret = op->put ? put_commit(op, ret) : get_verify(op, ret);
	return ret ? ret : (int64_t)op->len;
}

/*
 * No lock is held while the transfers are awaited, so every waiter keeps
 * its own timeout. The first waiter to see them complete claims the
 * finish; the others wait for its result on the condition variable.
 */
int64_t swapio_store_op_wait(swapio_store_op *op, int timeout_ms)
{
	SWAPIO_KEEP_ERRNO;
	const uint64_t start = swapio__now_ns();
	swapio_store *s;
	bool mine = false;
	int64_t res;

	if (!op)
		return -EINVAL;
	s = op->s;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	if (atomic_load(&op->finished))
		return op->result;
	if (!sop_io_wait(op, timeout_ms, start))
		return atomic_load(&op->finished) ? op->result : -ETIMEDOUT;
	pthread_mutex_lock(&op->lock);
	mine = !op->finishing;
	op->finishing = true;
	pthread_mutex_unlock(&op->lock);
	if (mine) {
		const bool put = op->put;	/* @op may go once published */

		res = op_finish(op);
		op_publish(op, res);
		/* After the result is out: a compaction must not hold
		 * waiters. */
		if (put)
			swapio__log_maybe_compact(s);
		return res;
	}
	pthread_mutex_lock(&op->lock);
	finish_wait(op, timeout_ms, start);
	res = atomic_load(&op->finished) ? op->result : -ETIMEDOUT;
	pthread_mutex_unlock(&op->lock);
	return res;
}

int swapio_store_op_done(const swapio_store_op *op)
{
	if (!op)
		return 0;
	if (store_forked(op->s))
		return SWAPIO_EFORKED;
	if (atomic_load(&op->finished))
		return 1;
	for (unsigned int i = 0; i < op->nr_io; i++)
		if (!swapio_op_done(op->io[i]))
			return 0;
	return 1;
}

void swapio_store_op_free(swapio_store_op *op)
{
	SWAPIO_KEEP_ERRNO;
	swapio_store *s;

	if (!op || store_forked(op->s))
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

/* Log and apply a remove; s->lock held. */
static int remove_locked(swapio_store *s, const char *key, size_t n)
{
	const bool pending = put_pending(s, key, n);
	struct irec r;
	uint64_t gen;
	int ret;

	if (!map_find(s, key, n) && !pending)
		return -ENOENT;
	ret = swapio__log_gen(s, &gen);
	if (ret)
		return ret;
	swapio__rec_del(&r, key, n, gen);
	ret = swapio__log_append(s, &r);
	if (!ret)
		swapio__apply_del(s, key, n, gen, pending);
	return ret;
}

int swapio_store_remove(swapio_store *s, const char *key)
{
	SWAPIO_KEEP_ERRNO;
	const size_t n = key_len(key);
	int ret;

	if (!s || !n)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	pthread_mutex_lock(&s->lock);
	ret = remove_locked(s, key, n);
	pthread_mutex_unlock(&s->lock);
	swapio__log_maybe_compact(s);
	return ret;
}

int64_t swapio_store_size(swapio_store *s, const char *key)
{
	const size_t n = key_len(key);
	struct entry *e;
	int64_t ret;

	if (!s || !n)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
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

/* Copy the keys into @v (room for s->nkeys + 1); s->lock held. */
static size_t list_fill(swapio_store *s, char **v)
{
	char *p = (char *)(v + s->nkeys + 1);
	size_t n = 0;

	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext) {
			if (e->flags & ENT_TOMB)
				continue;
			memcpy(p, e->key, e->keylen + 1u);
			v[n++] = p;
			p += e->keylen + 1u;
		}
	v[n] = NULL;
	return n;
}

int swapio_store_list(swapio_store *s, char ***keys, size_t *count)
{
	size_t bytes = 0, n = 0;
	char **v;

	if (!keys || !count)
		return -EINVAL;
	*keys = NULL;
	*count = 0;
	if (!s)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext)
			bytes += e->keylen + 1u;
	v = malloc((s->nkeys + 1) * sizeof(*v) + bytes);
	if (v)
		n = list_fill(s, v);
	pthread_mutex_unlock(&s->lock);
	if (!v)
		return -ENOMEM;
	qsort(v, n, sizeof(*v), key_cmp);
	*keys = v;
	*count = n;
	return 0;
}

int swapio_store_sync(swapio_store *s)
{
	SWAPIO_KEEP_ERRNO;

	if (!s)
		return -EINVAL;
	if (store_forked(s))
		return SWAPIO_EFORKED;
	return swapio__log_sync(s, 0);
}

void swapio_store_info(swapio_store *s, struct swapio_store_info *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!s || store_forked(s))
		return;
	pthread_mutex_lock(&s->lock);
	out->keys = s->nkeys;
	out->value_bytes = s->value_bytes;
	out->used_bytes = s->used_bytes;
	out->file_bytes = s->data_size;
	out->free_bytes = swapio__fl_free_bytes(&s->fl);
	out->index_bytes = s->idx_end;
	out->block = s->block;
	out->drives = s->nr_drives;
	out->stripe_unit = s->unit;
	out->dropped_records = s->rep.dropped;
	out->recovered_keys = (uint32_t)SWAPIO_MIN(s->rep.recovered,
						   (uint64_t)UINT32_MAX);
	out->lost_values = (uint32_t)SWAPIO_MIN(s->rep.lost,
						(uint64_t)UINT32_MAX);
	pthread_mutex_unlock(&s->lock);
}

uint64_t swapio_store_checksum(const void *buf, size_t len)
{
	return swapio__xxh3(buf, len);
}
