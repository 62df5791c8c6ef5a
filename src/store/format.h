/* SPDX-License-Identifier: MIT */
/*
 * The store's on-disk records. Private to src/store*.c and to the tests
 * that build records by hand (the fuzzer); never installed.
 *
 * index  a log of fixed-size records (struct irec), each checksummed: a
 *        HEAD record, then PUT, DEL, GEN and SYNC records in the order
 *        they were appended.
 * data   extents of `block` bytes granularity; each extent is a header
 *        block (struct vhdr) followed by the payload, padded to the
 *        block, so the payload stays aligned for O_DIRECT.
 *
 * Host byte order; every field at its natural alignment.
 */
#ifndef SWAPIO_STORE_FORMAT_H
#define SWAPIO_STORE_FORMAT_H

#include <stdint.h>

#include "swapio.h"

#define VAL_MAGIC	0x56505753u	/* "SWPV" in a little-endian dump */
#define IDX_MAGIC	0x49505753u	/* "SWPI" */
#define VAL_VERSION	1u		/* struct vhdr */
/*
 * Version 2 of the log adds GEN and SYNC records and gives DEL records a
 * generation that replay compares. A version 1 log replays unchanged.
 */
#define IDX_VERSION	2u
#define IDX_VERSION_MIN	1u
#define REC_SIZE	320u

enum {
	REC_HEAD = 1,	/* gen: reserved generations; off: block; len: version;
			 * sum: cover, reserved: the records after it that
			 * a compaction wrote (0 in older logs; see
			 * recover.c) */
	REC_PUT = 2,	/* key -> extent at off, len payload bytes */
	REC_DEL = 3,	/* key removed by the op with generation gen */
	REC_GEN = 4,	/* generations up to gen may be in use */
	REC_SYNC = 5,	/* off: own offset; len: log bytes made durable;
			 * flags: SYNC_* (who wrote it; 0 in older logs) */
};

/* REC_SYNC's flags: what wrote it, for the error that names it. */
enum {
	SYNC_CLOSE = 1u << 0,	/* swapio_store_close() */
	SYNC_COMPACT = 1u << 1,	/* a compaction, at the end of its new log */
	/* An open of this log dropped records since its last rebuild: the
	 * data file may hold values the log lost, so RECOVER still scans. */
	SYNC_DROPPED = 1u << 2,
};

enum { VAL_SUM = 1u << 0 };	/* sum holds the payload's XXH3-64 */

/* One index record. */
struct irec {
	uint32_t	magic;
	uint16_t	type;
	uint16_t	keylen;
	uint64_t	gen;
	uint64_t	off;
	uint64_t	len;
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

/*
 * "drives", in each drive's directory of a striped store (a plain store
 * has none): which store the drive belongs to and its place in the list.
 * The record is followed by the list as it was given at creation, one
 * "index<TAB>path" line per drive, for people; open reads only the record.
 */
#define DRV_MAGIC	0x44505753u	/* "SWPD" */
#define DRV_VERSION	1u

struct drec {
	uint32_t	magic;
	uint16_t	version;
	uint16_t	index;	/* this drive's place, from 0 */
	uint32_t	nr;	/* drives in the store */
	uint32_t	pad;
	uint64_t	unit;	/* stripe unit, bytes */
	uint64_t	id;	/* random, the same on every drive */
	uint64_t	check;	/* XXH3-64 of all the bytes above */
};

#endif /* SWAPIO_STORE_FORMAT_H */
