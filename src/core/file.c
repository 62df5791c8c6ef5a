/* SPDX-License-Identifier: MIT */
/*
 * Files: open with or without O_DIRECT, and learn the direct-I/O alignment
 * the kernel wants for this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define FALLBACK_ALIGN	4096u	/* a multiple of every logical block */

/*
 * A value of the request queue of the device under @fd (for a block
 * device, of the device itself), from sysfs; 0 if none.
 */
static uint32_t sysfs_queue(int fd, const char *name)
{
	static const char *const fmts[] = {
		"/sys/dev/block/%u:%u/queue/%s",
		"/sys/dev/block/%u:%u/../queue/%s",	/* a partition */
	};
	struct stat st;
	char path[96];
	unsigned int v;
	dev_t dev;

	if (fstat(fd, &st))
		return 0;
	/* A device node's st_dev is the devtmpfs it lives on. */
	dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(fmts); i++) {
		FILE *fp;
		int n;

		snprintf(path, sizeof(path), fmts[i], major(dev), minor(dev),
			 name);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		n = fscanf(fp, "%u", &v);
		fclose(fp);
		if (n == 1)
			return v;
	}
	return 0;
}

static uint32_t sysfs_logical_block(int fd)
{
	uint32_t v = sysfs_queue(fd, "logical_block_size");

	return v && !(v & (v - 1)) ? v : 0;
}

/*
 * The largest direct request that needs no split even from memory in
 * scattered 4 KiB pages: max_segments pages, within max_sectors_kb; 0 if
 * the queue does not say. A 1 MiB request from 4 KiB pages on a queue of
 * 254 segments is cut into 1016 KiB and a stray 8 KiB, and the strays
 * keep the block layer from merging neighbours: reading 2 GiB that way
 * took 1540 device commands, in 1016 KiB requests 818 (docs/PERFORMANCE.md).
 */
static uint32_t unsplit_bytes(int fd)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t segs = sysfs_queue(fd, "max_segments");
	uint64_t kb = sysfs_queue(fd, "max_sectors_kb");
	uint64_t n = segs * page;

	if (kb && (!n || kb * 1024 < n))
		n = kb * 1024;
	return (uint32_t)SWAPIO_MIN(n, (uint64_t)UINT32_MAX / page * page);
}

/*
 * Ask the kernel first (statx STATX_DIOALIGN, Linux 6.1+), then the block
 * device. Where neither answers (tmpfs, network filesystems) 4096 is safe.
 */
static void learn_alignment(swapio_file *f)
{
	struct statx sx;
	uint32_t lbs;

	f->mem_align = f->off_align = 0;
	if (!statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
		f->mem_align = sx.stx_dio_mem_align;
		f->off_align = sx.stx_dio_offset_align;
	}
	if (!f->off_align) {
		lbs = sysfs_logical_block(f->fd);
		f->mem_align = f->off_align = lbs ? lbs : FALLBACK_ALIGN;
	}
	if (!f->mem_align)
		f->mem_align = f->off_align;
	/*
	 * Unaligned edges go through the page cache. Making them whole pages
	 * keeps every direct request off any page that a buffered edge may
	 * hold dirty, so writeback can never overwrite direct data.
	 */
	f->edge_align = SWAPIO_MAX(f->off_align, (uint32_t)sysconf(_SC_PAGESIZE));
	f->unsplit = unsplit_bytes(f->fd);
}

/*
 * Only what can be addressed by offset: a regular file or a block device.
 * Anything else (a FIFO, a socket, a terminal) would leave an io_uring or
 * libaio read waiting forever instead of failing.
 */
static int check_type(const struct stat *st, const char *path)
{
	if (S_ISDIR(st->st_mode))
		return swapio__detail(-EISDIR, "%s: a directory", path);
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return swapio__detail(-ESPIPE, "%s: %s, not a regular file or "
				      "a block device", path,
				      swapio__file_kind(st->st_mode));
	return 0;
}

/* What @fd (described by @st) holds: st_size is 0 for a block device. */
static int64_t stat_size(int fd, const struct stat *st)
{
	uint64_t n;

	if (!S_ISBLK(st->st_mode))
		return st->st_size;
	if (ioctl(fd, BLKGETSIZE64, &n))
		return -errno;
	return n > INT64_MAX ? -EOVERFLOW : (int64_t)n;
}

static int open_flags(unsigned int flags)
{
	int o = O_CLOEXEC;

	if ((flags & SWAPIO_O_READ) && (flags & SWAPIO_O_WRITE))
		o |= O_RDWR;
	else if (flags & SWAPIO_O_WRITE)
		o |= O_WRONLY;
	else
		o |= O_RDONLY;
	/* Creating never follows a link: one planted where a new file is
	 * expected would have it written wherever it points. */
	if (flags & SWAPIO_O_CREATE)
		o |= O_CREAT | O_NOFOLLOW;
	if (flags & SWAPIO_O_TRUNC)
		o |= O_TRUNC;
	return o;
}

/* An open of @path failed with @err: say why where the code cannot. */
static int open_failed(int dirfd, const char *path, int o, int err)
{
	struct stat st;

	if (err == -ELOOP && (o & O_NOFOLLOW) &&
	    !fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISLNK(st.st_mode))
		return swapio__detail(err, "%s: a symbolic link that another "
				      "user could have planted; not followed "
				      "when the file may be created", path);
	if (err == -ENXIO && !fstatat(dirfd, path, &st, 0))
		return swapio__detail(err, "%s: %s, not a regular file or "
				      "a block device", path,
				      swapio__file_kind(st.st_mode));
	return err;	/* the code says it all; the caller has the path */
}

static bool owner_trusted(const struct stat *st)
{
	return st->st_uid == geteuid() || st->st_uid == 0;
}

/*
 * With create, a link as the last component of @path is followed only if
 * the caller or root made it and no one else can swap it: the link
 * belongs to the caller or root, in a directory of the caller or root
 * that no one else may write unless it is sticky (the rule of a store's
 * directory). /proc/self/fd/N and /dev/disk/by-id/... pass; a link that
 * another user planted does not. Returns a descriptor of the link's
 * directory (or @dirfd itself) with *@base its name there, or -ELOOP.
 */
static int link_trusted(int dirfd, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	struct stat dst, lst;
	int pfd = dirfd;
	char *dir;

	*base = slash ? slash + 1 : path;
	if (slash) {
		dir = slash == path ? strdup("/") :
		      strndup(path, (size_t)(slash - path));
		if (!dir)
			return -ENOMEM;
		pfd = openat(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		free(dir);
		if (pfd < 0)
			return -ELOOP;
	}
	if (!fstatat(pfd, "", &dst, AT_EMPTY_PATH) && owner_trusted(&dst) &&
	    (!(dst.st_mode & (S_IWGRP | S_IWOTH)) ||
	     (dst.st_mode & S_ISVTX)) &&
	    !fstatat(pfd, *base, &lst, AT_SYMLINK_NOFOLLOW) &&
	    S_ISLNK(lst.st_mode) && owner_trusted(&lst))
		return pfd;
	if (pfd != dirfd)
		close(pfd);
	return -ELOOP;
}

static int open_link(int dirfd, const char *path, int o, mode_t mode,
		     uint32_t cfg_flags, bool *direct, struct stat *st,
		     int err);

/*
 * The primary descriptor: O_DIRECT if *@direct, else (or where the
 * filesystem refuses O_DIRECT with EINVAL, unless strict) buffered,
 * created with @mode. Fills @st and *@direct with what was opened.
 * Returns the fd or -errno.
 */
static int open_primary(int dirfd, const char *path, int o, mode_t mode,
			uint32_t cfg_flags, bool *direct, struct stat *st)
{
	int fd = -1, ret;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	if (*direct) {
		fd = openat(dirfd, path, o | O_DIRECT | O_NONBLOCK, mode);
		if (fd < 0 && (errno != EINVAL ||
			       (cfg_flags & SWAPIO_CFG_DIRECT_STRICT)))
			return open_link(dirfd, path, o, mode, cfg_flags,
					 direct, st, -errno);
		*direct = fd >= 0;
	}
	if (fd < 0 && (fd = openat(dirfd, path, o | O_NONBLOCK, mode)) < 0)
		return open_link(dirfd, path, o, mode, cfg_flags, direct, st,
				 -errno);
	/* A directory opens read-only; refuse it here, not at the first read.
	 * Then drop O_NONBLOCK, which would make io_uring fail with EAGAIN
	 * what it should wait for. */
	ret = fstat(fd, st) ? -errno : check_type(st, path);
	if (!ret && fcntl(fd, F_SETFL, *direct ? O_DIRECT : 0))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * An open of @path failed with @err: where that was O_NOFOLLOW meeting a
 * link that link_trusted() vouches for, open through it instead.
 */
static int open_link(int dirfd, const char *path, int o, mode_t mode,
		     uint32_t cfg_flags, bool *direct, struct stat *st,
		     int err)
{
	struct stat lst;
	const char *base;
	int pfd, fd;

	/* In a sticky directory the kernel may refuse O_CREAT on another
	 * user's link with EACCES before O_NOFOLLOW says ELOOP. */
	if (err == -EACCES && (o & O_NOFOLLOW) &&
	    !fstatat(dirfd, path, &lst, AT_SYMLINK_NOFOLLOW) &&
	    S_ISLNK(lst.st_mode))
		err = -ELOOP;
	if (err != -ELOOP || !(o & O_NOFOLLOW))
		return open_failed(dirfd, path, o, err);
	pfd = link_trusted(dirfd, path, &base);
	if (pfd == -ENOMEM)
		return pfd;
	if (pfd < 0)
		return open_failed(dirfd, path, o, err);
	fd = open_primary(pfd, base, o & ~O_NOFOLLOW, mode, cfg_flags,
			  direct, st);
	if (pfd != dirfd)
		close(pfd);
	if (fd < 0) {
		/* The detail named the link by its base name alone. */
		char why[256];

		snprintf(why, sizeof(why), "%s", swapio_error_detail());
		return swapio__detail(fd, "%s, a link: %s", path, why);
	}
	return fd;
}

/*
 * The buffered twin of @fd (described by @st) for the unaligned edges: a
 * second open file description of the same inode. Reopening through
 * /proc/self/fd follows the descriptor, not the path, so a rename or
 * replace of the path since the first open cannot slip in another file;
 * the inode check makes that certain (-ESTALE if it ever differed).
 * Returns the fd or -errno; -ENOENT means /proc is not mounted.
 */
static int open_twin(int fd, int o, const struct stat *st)
{
	char link[32];
	struct stat tw;
	int bfd, ret;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	/* The twin must not create or truncate again what the first made,
	 * and must follow the magic link to the first's file. */
	bfd = open(link, o & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW));
	if (bfd < 0)
		return -errno;
	ret = fstat(bfd, &tw) ? -errno : 0;
	if (!ret && (tw.st_dev != st->st_dev || tw.st_ino != st->st_ino ||
		     tw.st_rdev != st->st_rdev))
		ret = -ESTALE;
	if (ret) {
		close(bfd);
		return ret;
	}
	return bfd;
}

/*
 * Give a direct @f its twin and alignment. Without /proc there is no safe
 * twin, so the file goes wholly through the page cache instead (unless
 * strict), as a filesystem without O_DIRECT does.
 */
static int attach_twin(swapio_file *f, int o, const struct stat *st)
{
	const bool strict = f->h->cfg.flags & SWAPIO_CFG_DIRECT_STRICT;
	int bfd = open_twin(f->fd, o, st);

	if (bfd == -ENOENT && !strict) {
		if (fcntl(f->fd, F_SETFL, 0))
			return -errno;
		f->direct = false;
		return 0;
	}
	if (bfd < 0)
		return bfd;
	f->bfd = bfd;
	learn_alignment(f);
	return 0;
}

int swapio__file_openat(swapio_handle *h, int dirfd, const char *path,
			unsigned int flags, swapio_file **out)
{
	const unsigned int known = SWAPIO_O_READ | SWAPIO_O_WRITE |
				   SWAPIO_O_CREATE | SWAPIO_O_TRUNC |
				   SWAPIO_O_SHARED;
	const mode_t mode = flags & SWAPIO_O_SHARED ? SWAPIO_FILE_MODE_SHARED :
			    SWAPIO_FILE_MODE;
	const int o = open_flags(flags);
	struct stat st;
	swapio_file *f;
	int ret;

	swapio__detail_clear();
	if (!(flags & (SWAPIO_O_READ | SWAPIO_O_WRITE)) || (flags & ~known))
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->h = h;
	f->readable = flags & SWAPIO_O_READ;
	f->writable = flags & SWAPIO_O_WRITE;
	f->direct = !(h->cfg.flags & SWAPIO_CFG_BUFFERED);
	f->fd = open_primary(dirfd, path, o, mode, h->cfg.flags, &f->direct,
			     &st);
	if (f->fd < 0) {
		ret = f->fd;
		goto err_free;
	}
	f->bfd = f->fd;
	f->blkdev = S_ISBLK(st.st_mode);
	f->mem_align = f->off_align = f->edge_align = 1;
	if (f->direct) {
		ret = attach_twin(f, o, &st);
		if (ret)
			goto err_close_fd;
	}
	atomic_init(&f->size_hint, 0);
	f->gen = swapio__fork_gen();
	swapio__file_register(f);
	*out = f;
	return 0;

err_close_fd:
	close(f->fd);
err_free:
	free(f);
	return ret;
}

/*
 * A direct write that extends a file is slow on ext4 and XFS: the kernel
 * serialises it on the inode and completes it synchronously, so io_uring
 * punts every such request to a worker thread and libaio blocks in
 * io_submit(). Allocating the range first (fallocate, which also moves
 * the file size) turns the writes into plain overwrites of unwritten
 * extents that run asynchronously at full depth. One system call per
 * extending op; none once the file is large enough. A filesystem without
 * fallocate simply gets the extending writes.
 */
int swapio__file_prepare_write(swapio_file *f, uint64_t off, size_t len)
{
	uint64_t end = off + len, seen;
	struct stat st;

	/* A block device has its size; fallocate(2) there wants other modes
	 * and aligned ranges, and would fail odd writes with EINVAL. */
	if (!f->direct || f->blkdev || !len ||
	    end <= atomic_load_explicit(&f->size_hint, memory_order_relaxed))
		return 0;
	if (fstat(f->fd, &st))
		return -errno;
	/* ENOSPC and EFBIG surface here, before any data moves. */
	if (end > (uint64_t)st.st_size &&
	    fallocate(f->fd, 0, (off_t)off, (off_t)len) &&
	    errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	/* Only ever raised, so a racing smaller value cannot win. */
	end = SWAPIO_MAX(end, (uint64_t)st.st_size);
	seen = atomic_load(&f->size_hint);
	while (seen < end &&
	       !atomic_compare_exchange_weak(&f->size_hint, &seen, end))
		;
	return 0;
}

int swapio__file_open(swapio_handle *h, const char *path, unsigned int flags,
		      swapio_file **out)
{
	return swapio__file_openat(h, AT_FDCWD, path, flags, out);
}

int swapio_file_open(swapio_handle *h, const char *path, unsigned int flags,
		     swapio_file **out)
{
	return swapio_file_openat(h, AT_FDCWD, path, flags, out);
}

int swapio_file_openat(swapio_handle *h, int dirfd, const char *path,
		       unsigned int flags, swapio_file **out)
{
	SWAPIO_KEEP_ERRNO;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!h || !path)
		return -EINVAL;
	if (swapio__forked(h->gen))
		return SWAPIO_EFORKED;
	return swapio__file_openat(h, dirfd, path, flags, out);
}

int swapio_file_sync(swapio_file *f)
{
	SWAPIO_KEEP_ERRNO;

	if (!f)
		return -EINVAL;
	if (swapio__forked(f->gen))
		return SWAPIO_EFORKED;
	return fdatasync(f->fd) ? -errno : 0;
}

/* Where the filesystem has no fallocate (ramfs), a larger size will do. */
static int allocate_fallback(swapio_file *f, uint64_t end, uint64_t size)
{
	if (end <= size)
		return 0;
	return ftruncate(f->fd, (off_t)end) ? -errno : 0;
}

int swapio_file_allocate(swapio_file *f, uint64_t off, uint64_t len)
{
	SWAPIO_KEEP_ERRNO;
	struct stat st;
	int ret;

	if (!f || !f->writable || !len || off > INT64_MAX ||
	    len > INT64_MAX - off)
		return -EINVAL;
	if (swapio__forked(f->gen))
		return SWAPIO_EFORKED;
	if (fstat(f->fd, &st))
		return -errno;
	ret = fallocate(f->fd, 0, (off_t)off, (off_t)len) ? -errno : 0;
	if (ret == -EOPNOTSUPP || ret == -ENOSYS)
		ret = allocate_fallback(f, off + len, (uint64_t)st.st_size);
	/* A failed fallocate may keep blocks past the old end: drop them. */
	if (ret && off + len > (uint64_t)st.st_size)
		(void)!ftruncate(f->fd, st.st_size);
	return ret;
}

/* In a child of fork() the descriptors are closed already (fork.c). */
int swapio_file_close(swapio_file *f)
{
	SWAPIO_KEEP_ERRNO;
	int ret = 0;

	if (!f)
		return 0;
	if (swapio__forked(f->gen))
		return SWAPIO_EFORKED;
	swapio__file_unregister(f);
	if (f->ext.close)
		f->ext.close(&f->ext);	/* ext.h */
	if (f->bfd != f->fd && close(f->bfd))
		ret = -errno;
	if (close(f->fd) && !ret)
		ret = -errno;
	free(f);
	return ret;
}

int swapio_file_direct(const swapio_file *f)
{
	return f && f->direct;
}

void swapio_file_alignment(const swapio_file *f, uint32_t *mem_align,
			   uint32_t *offset_align)
{
	if (mem_align)
		*mem_align = f ? f->mem_align : 0;
	if (offset_align)
		*offset_align = f ? f->off_align : 0;
}

int64_t swapio_file_size(const swapio_file *f)
{
	SWAPIO_KEEP_ERRNO;
	struct stat st;

	if (!f)
		return -EINVAL;
	if (swapio__forked(f->gen))
		return SWAPIO_EFORKED;
	if (fstat(f->fd, &st))
		return -errno;
	return stat_size(f->fd, &st);
}

int64_t swapio_path_size(const char *path)
{
	SWAPIO_KEEP_ERRNO;
	struct stat st;
	int64_t ret;
	int fd;

	if (!path)
		return -EINVAL;
	if (stat(path, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISBLK(st.st_mode))
		return st.st_size;
	/* A device's size takes an open descriptor to ask. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = fstat(fd, &st) ? -errno : stat_size(fd, &st);
	close(fd);
	return ret;
}

struct swapio_ext_file *swapio__ext_file(swapio_file *f)
{
	return &f->ext;
}

int swapio__ext_fd(const swapio_file *f)
{
	return f->fd;
}
