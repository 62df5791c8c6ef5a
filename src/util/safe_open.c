/* SPDX-License-Identifier: MIT */
/*
 * Opening what the library keeps by path, on a machine shared with other
 * users (docs/RELIABILITY.md, "Shared machines"). A store's directory is
 * opened once, without following a link, and vetted as OpenSSH and sudo
 * vet the paths they trust; every file in it is then opened relative to
 * that descriptor, without following a link and without blocking, and
 * kept only if it is a regular file of the caller or root with one link.
 * Every refusal names the path and the reason in the error detail.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

const char *swapio__file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:	return "a regular file";
	case S_IFDIR:	return "a directory";
	case S_IFLNK:	return "a symbolic link";
	case S_IFIFO:	return "a FIFO";
	case S_IFSOCK:	return "a socket";
	case S_IFCHR:	return "a character device";
	case S_IFBLK:	return "a block device";
	}
	return "not a file";
}

/* "dir/name", or @name alone, for details. */
static const char *join(char *buf, size_t n, const char *dir,
			const char *name)
{
	if (!dir)
		return name;
	snprintf(buf, n, "%s/%s", dir, name);
	return buf;
}

/* Only the caller and root may own what the library trusts. */
static int owner_check(const struct stat *st, const char *path,
		       const char *what)
{
	const uid_t me = geteuid();

	if (st->st_uid == me || st->st_uid == 0)
		return 0;
	return swapio__detail(-EPERM, "%s: %s owned by uid %u, not by this "
			      "user (uid %u) or root; refusing it", path,
			      what, (unsigned int)st->st_uid,
			      (unsigned int)me);
}

int swapio__dir_check(int dirfd, const char *path)
{
	struct stat st;
	int ret;

	if (fstat(dirfd, &st))
		return swapio__detail(-errno, "%s", path);
	ret = owner_check(&st, path, "directory");
	if (ret)
		return ret;
	/* Others could plant or swap names in it, unless it is sticky (and
	 * then only its owner, the caller or root, may). */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return swapio__detail(-EPERM, "%s: directory writable by "
				      "others (mode 0%03o); refusing it "
				      "(chmod go-w, or use a directory "
				      "inside it)", path,
				      (unsigned int)(st.st_mode & 07777));
	return 0;
}

/*
 * After an open of @name in @dirfd (@path in details) failed with @err:
 * say what is in the way. ENOENT, which callers expect, sets no detail.
 */
static int open_failed(int dirfd, const char *name, const char *path,
		       int err)
{
	struct stat st;

	if (err == -ENOENT)
		return err;
	if ((err == -ELOOP || err == -ENXIO || err == -ENOTDIR) &&
	    !fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (S_ISLNK(st.st_mode))
			return swapio__detail(-ELOOP, "%s: a symbolic link; "
					      "refusing to follow it", path);
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			return swapio__detail(-ESPIPE, "%s: %s, not a regular "
					      "file; refusing it", path,
					      swapio__file_kind(st.st_mode));
	}
	return swapio__detail(err, "%s", path);
}

int swapio__dir_open(const char *path, bool create, mode_t mode)
{
	char name[4096];
	size_t n = strlen(path);
	int fd, ret;

	/* A trailing slash would make the kernel follow a link despite
	 * O_NOFOLLOW: "st/" is the directory "st" points to. */
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(name))
		return swapio__detail(-ENAMETOOLONG, "%s", path);
	memcpy(name, path, n);
	name[n] = '\0';
	if (create && mkdir(name, mode) && errno != EEXIST)
		return swapio__detail(-errno, "%s: cannot create the directory",
				      path);
	fd = open(name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return open_failed(AT_FDCWD, name, path, -errno);
	ret = swapio__dir_check(fd, path);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* A file the library keeps in a vetted directory. */
static int file_check(const struct stat *st, const char *path)
{
	if (S_ISDIR(st->st_mode))
		return swapio__detail(-EISDIR, "%s: a directory, not a regular "
				      "file; refusing it", path);
	if (!S_ISREG(st->st_mode))
		return swapio__detail(-ESPIPE, "%s: %s, not a regular file; "
				      "refusing it", path,
				      swapio__file_kind(st->st_mode));
	/* A second name could be a hard link to a file outside. */
	if (st->st_nlink > 1)
		return swapio__detail(-EPERM, "%s: a file with %lu hard links; "
				      "refusing it", path,
				      (unsigned long)st->st_nlink);
	return owner_check(st, path, "file");
}

int swapio__file_at(int dirfd, const char *dir, const char *name,
		    int oflags, mode_t mode)
{
	char buf[4096];
	const char *path = join(buf, sizeof(buf), dir, name);
	struct stat st;
	int fd, ret;

	/* O_NONBLOCK: a FIFO must fail the check below, not block here. */
	fd = openat(dirfd, name, oflags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		    mode);
	if (fd < 0)
		return open_failed(dirfd, name, path, -errno);
	ret = fstat(fd, &st) ? swapio__detail(-errno, "%s", path) :
	      file_check(&st, path);
	if (!ret && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		ret = swapio__detail(-errno, "%s", path);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int swapio__tmp_at(int dirfd, const char *dir, const char *name, mode_t mode)
{
	/* A stale temporary (or a link planted under its name) goes; the
	 * name is then created anew or not at all. */
	if (unlinkat(dirfd, name, 0) && errno != ENOENT) {
		char buf[4096];

		return swapio__detail(-errno, "%s: cannot remove the stale "
				      "temporary", join(buf, sizeof(buf), dir,
							name));
	}
	return swapio__file_at(dirfd, dir, name,
			       O_RDWR | O_CREAT | O_EXCL, mode);
}

int swapio__replaceable_at(int dirfd, const char *path)
{
	struct stat st;

	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : swapio__detail(-errno, "%s", path);
	if (S_ISREG(st.st_mode))
		return 0;
	return swapio__detail(S_ISDIR(st.st_mode) ? -EISDIR :
			      S_ISLNK(st.st_mode) ? -ELOOP : -ESPIPE,
			      "%s: %s, not a regular file; refusing to "
			      "replace it", path,
			      swapio__file_kind(st.st_mode));
}
