/* SPDX-License-Identifier: MIT */
/*
 * The store's data space over one drive or several (striping).
 *
 * The rest of the store sees one linear data space: the allocator, the
 * log, the extents and recovery work on offsets in it. This unit maps an
 * offset to a drive and a place in that drive's data file, RAID 0 style:
 * the space is cut into units of s->unit bytes, unit k goes to drive
 * k % nr at offset (k / nr) * unit. A value longer than a unit therefore
 * spreads over the drives, and each piece is its own op on that drive's
 * handle, so the drives work in parallel and a slow one holds up only the
 * values that touch it. With one drive the map is the identity and no
 * "drives" record is written: a plain store is unchanged on disk.
 *
 * The data space grows by whole rows (nr units), the same on every drive,
 * so every drive's file is the same size and the map needs no table.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "store_impl.h"

/* Where @len bytes at @off begin: drive, offset there, bytes in one run. */
static void data_map(const swapio_store *s, uint64_t off, uint64_t len,
		     unsigned int *drive, uint64_t *at, uint64_t *run)
{
	uint64_t k, in;

	if (s->nr_drives == 1) {
		*drive = 0;
		*at = off;
		*run = len;
		return;
	}
	k = off / s->unit;
	in = off % s->unit;
	*drive = (unsigned int)(k % s->nr_drives);
	*at = k / s->nr_drives * s->unit + in;
	*run = SWAPIO_MIN(len, s->unit - in);
}

unsigned int swapio__data_pieces(const swapio_store *s, uint64_t off,
				 uint64_t len)
{
	if (!len)
		return 0;
	if (s->nr_drives == 1)
		return 1;
	return (unsigned int)((off + len - 1) / s->unit - off / s->unit + 1);
}

int swapio__io_reserve(struct swapio_store_op *op, unsigned int n)
{
	unsigned int cap = op->cap_io ? op->cap_io : 2;
	swapio_op **io;
	uint64_t *len;

	while (cap < op->nr_io + n)
		cap *= 2;
	if (cap == op->cap_io)
		return 0;
	io = realloc(op->io, cap * sizeof(*io));
	if (!io)
		return -ENOMEM;
	op->io = io;
	len = realloc(op->io_len, cap * sizeof(*len));
	if (!len)
		return -ENOMEM;
	op->io_len = len;
	op->cap_io = cap;
	return 0;
}

int swapio__data_submit(swapio_store *s, struct swapio_store_op *op,
			bool write, void *buf, uint64_t len, uint64_t off)
{
	unsigned char *p = buf;
	unsigned int d;
	uint64_t at, run;
	swapio_op *io;
	int ret;

	while (len) {
		data_map(s, off, len, &d, &at, &run);
		ret = write ? swapio_submit_write(s->drv[d].h, s->drv[d].df,
						  p, run, at, &io) :
			      swapio_submit_read(s->drv[d].h, s->drv[d].df,
						 p, run, at, &io);
		if (ret)
			return ret;
		op->io[op->nr_io] = io;
		op->io_len[op->nr_io++] = run;
		p += run;
		off += run;
		len -= run;
	}
	return 0;
}

/*
 * Header and payload are contiguous in the file and apart in memory. Where
 * they lie in one piece (any store on one drive; a value within one stripe
 * unit) they go as one request of two segments: one write and one extent
 * conversion in the filesystem instead of two, which is a third of a
 * 64 KiB put's CPU. Else, and for an empty value, the header goes alone.
 * So does a large payload in registered memory: a vectored request cannot
 * be a fixed-buffer one, and pinning its pages again (256 per MiB) costs
 * more than the header's own write (1 MiB puts: 0.088 s/GB as two writes,
 * 0.108 as one; docs/PERFORMANCE.md).
 */
/* Registered payloads up to this size still go with their header. */
#define PREFIX_FIXED_MAX	(128u << 10)

int swapio__data_submit_put(swapio_store *s, struct swapio_store_op *op,
			    void *hdr, void *buf, uint64_t len, uint64_t off)
{
	unsigned int d;
	uint64_t at, run;
	swapio_op *io;
	int ret;

	data_map(s, off, s->block + len, &d, &at, &run);
	if (!len || run < s->block + len || len > SIZE_MAX - s->block ||
	    (len > PREFIX_FIXED_MAX && swapio__reg_holds(buf, (size_t)len))) {
		ret = swapio__data_submit(s, op, true, hdr, s->block, off);
		return ret ? ret : swapio__data_submit(s, op, true, buf, len,
						       off + s->block);
	}
	ret = swapio__submit_write_pre(s->drv[d].h, s->drv[d].df, hdr,
				       s->block, buf, (size_t)len, at, &io);
	if (ret)
		return ret;
	op->io[op->nr_io] = io;
	op->io_len[op->nr_io++] = s->block + len;
	return 0;
}

bool swapio__data_pread(swapio_store *s, void *buf, size_t n, uint64_t off)
{
	unsigned char *p = buf;
	unsigned int d;
	uint64_t at, run;

	while (n) {
		data_map(s, off, n, &d, &at, &run);
		if (swapio_pread(s->drv[d].h, s->drv[d].df, p, run, at) !=
		    (ssize_t)run)
			return false;
		p += run;
		off += run;
		n -= run;
	}
	return true;
}

/* The data file's sync and allocation through the public API, each with
 * the fault hook of the store's system calls (sys.h). */
static int sys_file_sync(struct store_sys *sys, swapio_file *f)
{
	int err = swapio__sys_pick(sys, SYS_FDATASYNC, SYS_DATA);

	return err ? -err : swapio_file_sync(f);
}

static int sys_file_allocate(struct store_sys *sys, swapio_file *f,
			     uint64_t off, uint64_t len)
{
	int err = swapio__sys_pick(sys, SYS_FALLOCATE, SYS_DATA);

	return err ? -err : swapio_file_allocate(f, off, len);
}

/*
 * Give back what a failed growth allocated on drive @i past @size: the
 * store keeps no writable descriptor of its own on a data file (see
 * data_quiesce() in store.c), so this one lives only for the truncate.
 * Nothing points past the data space, so nothing in flight is cut.
 */
static void drive_shrink(swapio_store *s, unsigned int i, uint64_t size)
{
	int fd = swapio__file_at(s->drv[i].dirfd, s->drv[i].dir, "data",
				 O_WRONLY, 0);

	if (fd < 0)
		return;
	(void)swapio__sys_ftruncate(&s->sys, SYS_DATA, fd, size);
	close(fd);
}

/*
 * Allocate [off, off + len) of the data space: the same share on every
 * drive. When a drive fails (full, say), the shares the drives before it
 * took are given back, so a full drive leaks no space on the others.
 */
int swapio__data_allocate(swapio_store *s, uint64_t off, uint64_t len)
{
	const unsigned int nr = s->nr_drives;
	int ret = 0;
	unsigned int i;

	assert(nr == 1 || (off % grain(s) == 0 && len % grain(s) == 0));
	for (i = 0; i < nr && !ret; i++)
		ret = sys_file_allocate(&s->sys, s->drv[i].df,
						off / nr, len / nr);
	if (ret && nr > 1)
		while (--i > 0)
			drive_shrink(s, i - 1, off / nr);
	return ret;
}

int swapio__data_sync(swapio_store *s)
{
	int ret;

	for (unsigned int i = 0; i < s->nr_drives; i++) {
		ret = sys_file_sync(&s->sys, s->drv[i].df);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t swapio__data_size(const swapio_store *s)
{
	uint64_t row = UINT64_MAX;

	if (s->nr_drives == 1)
		return s->drv[0].size;
	for (unsigned int i = 0; i < s->nr_drives; i++)
		row = SWAPIO_MIN(row, s->drv[i].size / s->unit);
	return row * s->unit * s->nr_drives;
}

/* ------------------------------------------------------------------ */
/* The drive records                                                   */
/* ------------------------------------------------------------------ */

static void drec_seal(struct drec *r)
{
	r->check = XXH3_64bits(r, offsetof(struct drec, check));
}

/* Read drive @i's record: 0, 1 if it has none, or SWAPIO_EDRIVES. */
static int drec_read(const swapio_store *s, unsigned int i, struct drec *r)
{
	int fd = swapio__file_at(s->drv[i].dirfd, s->drv[i].dir, "drives",
				 O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return fd == -ENOENT ? 1 : fd;
	n = pread(fd, r, sizeof(*r), 0);
	close(fd);
	if (n != (ssize_t)sizeof(*r) || r->magic != DRV_MAGIC ||
	    r->version != DRV_VERSION ||
	    r->check != XXH3_64bits(r, offsetof(struct drec, check)))
		return SWAPIO_EDRIVES;
	return 0;
}

/* Bytes of drive @i's file @name; 0 if it has none. */
static uint64_t file_bytes(const swapio_store *s, unsigned int i,
			   const char *name)
{
	struct stat st;

	if (fstatat(s->drv[i].dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	return (uint64_t)st.st_size;
}

/* A new store: no drive may hold another store's values or index. */
static int drives_free(const swapio_store *s, unsigned int *failed)
{
	for (unsigned int i = 0; i < s->nr_drives; i++) {
		struct stat st;

		if (file_bytes(s, i, "data") ||
		    (i && !fstatat(s->drv[i].dirfd, "index", &st,
				   AT_SYMLINK_NOFOLLOW))) {
			*failed = i;
			return SWAPIO_EDRIVES;
		}
	}
	return 0;
}

/* An existing store: every drive's record names it, in this place. */
static int drives_match(swapio_store *s, uint64_t unit, unsigned int *failed)
{
	struct drec r;
	int ret;

	for (unsigned int i = 0; i < s->nr_drives; i++) {
		*failed = i;
		ret = drec_read(s, i, &r);
		if (ret == 1 && s->nr_drives == 1)
			return 0;	/* a plain store */
		if (ret < 0 && ret != SWAPIO_EDRIVES)
			return ret;
		if (ret || r.nr != s->nr_drives || r.index != i ||
		    (i && r.id != s->id) || (unit && r.unit != unit) ||
		    !r.unit || r.unit > MAX_LEN)
			return SWAPIO_EDRIVES;
		s->id = r.id;
		unit = r.unit;
	}
	s->unit = unit;
	return 0;
}

/*
 * Check the drives against the store: for an existing one (@exists),
 * that each is the one recorded in its place; for a new one, that none
 * holds another store's data. Sets s->unit and s->id for the first.
 */
int swapio__drives_check(swapio_store *s, bool exists, unsigned int *failed)
{
	uint64_t unit = s->unit;
	int ret;

	ret = exists ? drives_match(s, unit, failed) : drives_free(s, failed);
	if (!ret)
		*failed = s->nr_drives;
	if (s->nr_drives == 1)
		s->unit = 0;
	else if (!s->unit)
		s->unit = STRIPE_DEF_UNIT;	/* a new store */
	return ret;
}

static int drec_write(const swapio_store *s, unsigned int i,
		      const struct drec *r, const char *const *dirs)
{
	const int dfd = s->drv[i].dirfd;
	FILE *f;
	int fd, ret = 0;

	fd = swapio__tmp_at(dfd, s->drv[i].dir, "drives.tmp",
			    STORE_FILE_MODE(s));
	if (fd < 0)
		return fd;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		return ret;
	}
	fwrite(r, sizeof(*r), 1, f);
	for (unsigned int j = 0; j < s->nr_drives; j++)
		fprintf(f, "%u\t%s\n", j, dirs[j]);
	if (fflush(f) || fdatasync(fd))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && renameat(dfd, "drives.tmp", dfd, "drives"))
		ret = -errno;
	if (!ret && fsync(dfd))
		ret = -errno;
	return ret;
}

/*
 * A new striped store: give it an id and write every drive's record,
 * durably, before the index exists. A crash before the index is written
 * leaves a store that is still new; the next open writes them again.
 */
int swapio__drives_record(swapio_store *s, const char *const *dirs)
{
	struct drec r = { .magic = DRV_MAGIC, .version = DRV_VERSION };
	struct timespec ts;
	int ret;

	if (s->nr_drives == 1) {
		(void)unlinkat(s->drv[0].dirfd, "drives", 0);	/* stale */
		return 0;
	}
	if (getrandom(&s->id, sizeof(s->id), 0) != sizeof(s->id)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		s->id = (uint64_t)ts.tv_sec * 1000000007u ^
			(uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
	}
	r.nr = s->nr_drives;
	r.unit = s->unit;
	r.id = s->id;
	for (unsigned int i = 0; i < s->nr_drives; i++) {
		r.index = (uint16_t)i;
		drec_seal(&r);
		ret = drec_write(s, i, &r, dirs);
		if (ret)
			return ret;
	}
	return 0;
}

/* Undo a creation that failed: no half-made drive may stay claimed. */
void swapio__drives_unrecord(swapio_store *s)
{
	for (unsigned int i = 0; i < s->nr_drives; i++) {
		if (s->drv[i].dirfd < 0)
			continue;
		(void)unlinkat(s->drv[i].dirfd, "drives", 0);
		(void)unlinkat(s->drv[i].dirfd, "data", 0);
	}
}
