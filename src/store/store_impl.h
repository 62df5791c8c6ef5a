/* SPDX-License-Identifier: MIT */
/*
 * The store's units and what they share. Private to src/store/ (and the
 * tests that drive one unit directly); never installed. Nothing here
 * sees the core's insides: the store runs on swapio.h, util.h and the
 * calls of ext.h.
 *
 *   store.c     front end: ops, the public calls
 *   map.c       the map (key -> entry): what commits, replay and the
 *               rebuild scan apply
 *   log.c       the index log: records, append, sync, compaction,
 *               replay (also from a memory buffer)
 *   space.c     free space of the data file (the allocator), growth
 *   recover.c   rebuilding the map from the extents' own headers
 *   drives.c    the data files on one or more drives, striping
 *   format.h    the on-disk format
 *   (src/util/sys.c: the system calls on the store's files, with their
 *   fault hook)
 *
 * Locking: s->lock guards the map, the tombstones, the free list, the
 * log's offsets and the generation counter. No data I/O, no fdatasync and
 * no compaction runs under it; an index append (one pwrite of 320 bytes)
 * does, and so does the final swap of a compaction (a rename).
 */
#ifndef SWAPIO_STORE_IMPL_H
#define SWAPIO_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ext.h"		/* the three calls below swapio.h */
#include "format.h"
#include "swapio.h"
#include "sys.h"
#include "util.h"

#define MIN_BLOCK	4096u
#define MAX_BLOCK	(1u << 20)
#define MAX_LEN		(1ull << 56)	/* keeps extent arithmetic exact */
#define GEN_BATCH	(1ull << 20)	/* generations reserved per GEN */
/* No store hands out 2^62 generations: a record beyond is forged, and
 * believing it would let later generations wrap around. */
#define GEN_MAX		(1ull << 62)

enum {
	ENT_TOMB = 1u << 8,	/* entry flag: a removed key's marker */
	ENT_SEEN = 1u << 9,	/* RECOVER: an intact PUT record names it */
};

/*
 * A value: in the map, or held by a get, or a put not yet committed. A
 * tombstone (ENT_TOMB, no extent) stands in the map for a key removed
 * while an older put of it was in flight, so that the put loses when it
 * commits; it goes once no put older than it is in flight.
 */
struct entry {
	struct entry	*hnext;
	struct entry	*tnext;		/* tombstones: s->tombs */
	uint64_t	gen;
	uint64_t	off;	/* extent start (the header block) */
	uint64_t	ext;	/* extent bytes; 0 for a tombstone */
	uint64_t	len;	/* payload bytes */
	uint64_t	sum;
	uint32_t	flags;	/* VAL_*, ENT_TOMB */
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
	pthread_mutex_t		lock;	/* guards finishing, result */
	pthread_cond_t		cond;	/* finished; CLOCK_MONOTONIC */
	bool			finishing;	/* a thread runs the finish */
	atomic_bool		finished;
	atomic_bool		submitted;	/* put: io[] complete, may join
						 * another's commit */
	/* Transfers: the header, then one per piece of the payload (one
	 * piece per stripe unit it touches); kept for the op's next use. */
	swapio_op		**io;
	uint64_t		*io_len;	/* bytes each must move */
	unsigned int		nr_io;
	unsigned int		cap_io;
	bool			put;
	int64_t			result;
	struct entry		*e;	/* put: the new value; get: pinned */
	void			*buf;
	uint64_t		len;
	void			*hdr;	/* put: header block, `block` bytes */
};

/* One drive of the data space (drives.c); a plain store has one. */
struct store_drive {
	swapio_handle		*h;	/* its I/O, queues and workers */
	swapio_file		*df;	/* its data file */
	int			dirfd;
	char			*dir;	/* its path, for error details */
	int			lockfd;	/* F_SETLK record lock on "lock" */
	struct store_reg	*reg;	/* this process's claim on the dir */
	uint64_t		size;	/* bytes of its data file at open */
};

/* Modes of what the store creates (util.h): private unless shared. */
#define STORE_FILE_MODE(s)	((s)->flags & SWAPIO_STORE_SHARED ?	\
				 SWAPIO_FILE_MODE_SHARED : SWAPIO_FILE_MODE)
#define STORE_DIR_MODE(s)	((s)->flags & SWAPIO_STORE_SHARED ?	\
				 SWAPIO_DIR_MODE_SHARED : SWAPIO_DIR_MODE)

struct swapio_store {
	struct store_drive	drv[SWAPIO_STORE_DRIVES_MAX];
	unsigned int		nr_drives;
	uint64_t		unit;	/* stripe unit; 0 with one drive */
	uint64_t		id;	/* striped: shared by its drives */
	unsigned int		rotor;	/* drive for the next small extent */
	int			ifd;	/* index */
	int			dirfd;	/* drive 0's, home of the index */
	unsigned int		fork_gen; /* see store_forked() */
	uint32_t		block;
	uint32_t		flags;
	uint64_t		capacity;	/* 0: grow */
	uint64_t		grow;
	struct store_sys	sys;

	pthread_mutex_t		lock;
	struct entry		**buckets;
	size_t			nbuckets;	/* a power of two */
	size_t			nkeys;
	uint64_t		value_bytes;
	uint64_t		used_bytes;
	struct entry		*tombs;
	size_t			ntombs;
	unsigned int		puts_in_flight;
	struct freelist		fl;
	uint64_t		data_size;
	uint64_t		gen;		/* the last handed out */
	uint64_t		gen_limit;	/* logged as reserved */

	/* The log; see log.c. */
	uint64_t		idx_end;	/* bytes of valid records */
	uint64_t		idx_alloc;	/* allocated ahead to about here */
	uint64_t		sync_mark;	/* idx_end after the last SYNC */
	uint64_t		compact_after;	/* no retry before this end */
	uint64_t		log_seq;	/* bumped by each compaction */
	bool			compacting;
	bool			want_compact;
	bool			dir_dirty;	/* a rename not yet fsynced */
	bool			dropped;	/* SYNC_DROPPED: see there */

	/* What the open found in the log (log.c, recover.c):
	 * reported by swapio_store_info() and named in the open's error. */
	struct log_report {
		uint64_t	nrec;	/* record slots in the file */
		uint64_t	bad;	/* first that fails its checksum */
		uint64_t	vouch;	/* the SYNC vouching for it: damage */
		uint32_t	vouch_flags;	/* its SYNC_* */
		bool		damaged;	/* bad and vouch are set */
		uint64_t	dropped;	/* records the open could not use */
		uint64_t	recovered;	/* RECOVER: keys beyond the log */
		uint64_t	lost;	/* RECOVER: values it could not read */
	} rep;

	struct swapio_store_op	live;		/* list head */
	struct swapio_store_op	*free_ops;
};

/* The data space grows by whole rows of units, the same on every drive. */
static inline uint64_t grain(const swapio_store *s)
{
	return s->nr_drives > 1 ? s->unit * s->nr_drives : s->block;
}

static inline uint64_t ext_bytes(const swapio_store *s, uint64_t len)
{
	return s->block + SWAPIO_ALIGN_UP(len, (uint64_t)s->block);
}


/* map.c: the map (s->lock held) */
struct entry *swapio__entry_new(const char *key, size_t keylen);
void swapio__entry_put(swapio_store *s, struct entry *e);
void swapio__apply_put(swapio_store *s, struct entry *e);
void swapio__apply_del(swapio_store *s, const char *key, size_t n,
		       uint64_t gen, bool tomb);
void swapio__tombs_drop(swapio_store *s, uint64_t below);
void swapio__map_free(swapio_store *s);
/* @key's entry, value or tombstone, or NULL; s->lock held. */
struct entry *swapio__map_get(swapio_store *s, const char *key, size_t n);
int swapio__map_reset(swapio_store *s);
/* store.c: a bare store (no files) for replay from memory; NULL on ENOMEM. */
swapio_store *swapio__store_alloc(swapio_handle *h, uint32_t flags);
void swapio__store_free(swapio_store *s);

/* space.c */
int swapio__fl_insert(struct freelist *fl, uint64_t off, uint64_t len);
int swapio__fl_take(struct freelist *fl, uint64_t len, uint64_t *off);
int swapio__fl_claim(struct freelist *fl, uint64_t off, uint64_t len);
int swapio__fl_take_unit(struct freelist *fl, uint64_t len, uint64_t unit,
			 unsigned int nr, unsigned int d, uint64_t *off);
uint64_t swapio__fl_free_bytes(const struct freelist *fl);
int swapio__space_init(swapio_store *s);
int swapio__space_alloc(swapio_store *s, uint64_t len, uint64_t *off);
void swapio__space_free(swapio_store *s, uint64_t off, uint64_t len);
int swapio__space_capacity(swapio_store *s, uint64_t capacity);

/* drives.c: the data space over one drive or several */
#define STRIPE_DEF_UNIT	(1ull << 20)
int swapio__drives_check(swapio_store *s, bool exists, unsigned int *failed);
int swapio__drives_record(swapio_store *s, const char *const *dirs);
void swapio__drives_unrecord(swapio_store *s);
/* Room in @op for @n more transfers; 0 or -ENOMEM. */
int swapio__io_reserve(struct swapio_store_op *op, unsigned int n);
/* Transfers needed for @len bytes at data offset @off. */
unsigned int swapio__data_pieces(const swapio_store *s, uint64_t off,
				 uint64_t len);
/* Start moving @len bytes at data offset @off, one op per piece, added
 * to @op (room reserved). 0 or the first submission's error. */
int swapio__data_submit(swapio_store *s, struct swapio_store_op *op,
			bool write, void *buf, uint64_t len, uint64_t off);
/* Start a put's writes: header block @hdr at data offset @off, @len bytes
 * of @buf after it; one transfer where both lie on one drive. */
int swapio__data_submit_put(swapio_store *s, struct swapio_store_op *op,
			    void *hdr, void *buf, uint64_t len, uint64_t off);
/* Read @n bytes at data offset @off; true if all arrived. */
bool swapio__data_pread(swapio_store *s, void *buf, size_t n, uint64_t off);
int swapio__data_allocate(swapio_store *s, uint64_t off, uint64_t len);
int swapio__data_sync(swapio_store *s);
/* The data space at open: every drive's share, whole units. */
uint64_t swapio__data_size(const swapio_store *s);

/* log.c */
void swapio__rec_put(struct irec *r, const struct entry *e);
void swapio__rec_del(struct irec *r, const char *key, size_t n, uint64_t gen);
int swapio__log_gen(swapio_store *s, uint64_t *gen);
int swapio__log_append(swapio_store *s, const struct irec *r);
/* @n records in one write; *@done of them appended, also on error. */
int swapio__log_append_n(swapio_store *s, const struct irec *r,
			 unsigned int n, unsigned int *done);
void swapio__log_maybe_compact(swapio_store *s);
int swapio__log_compact(swapio_store *s);
int swapio__log_replay(swapio_store *s, const void *buf, size_t len);
int swapio__log_load(swapio_store *s);
/* Zero what lies past the valid prefix the load found. */
int swapio__log_wipe(swapio_store *s);
/* Does the log vouch for all of itself (its last record a SYNC covering
 * every record before it), with nothing dropped by this open or an
 * earlier one since the last rebuild (SYNC_DROPPED)? */
bool swapio__log_complete(const swapio_store *s);
/* @how: SYNC_* for the record it appends, 0 for swapio_store_sync(). */
int swapio__log_sync(swapio_store *s, uint32_t how);
/*
 * Every record of the index file that passes its checksum, wherever it
 * lies, in file order, to @fn (which returns 0 or an error that stops the
 * walk). *@bad counts the slots that are neither such a record nor all
 * zeros. No index file: no records.
 */
/*
 * The cover of a compacted log whose HEAD and snapshot records are all
 * intact: every value of an older generation that is live has its PUT
 * record there. 0 when the log cannot say (older log, damage, none).
 */
uint64_t swapio__log_cover(swapio_store *s);
int swapio__log_walk(swapio_store *s,
		     int (*fn)(swapio_store *s, const struct irec *r,
			       void *arg),
		     void *arg, uint64_t *bad);

/* recover.c */
int swapio__scan_rebuild(swapio_store *s, uint32_t def_block);

#endif /* SWAPIO_STORE_IMPL_H */
