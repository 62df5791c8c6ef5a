/* SPDX-License-Identifier: MIT */
/*
 * The fd-level fault hook of the store (see sys.h).
 *
 * SWAPIO_FAULT_FD = item[,item]...
 *   call=pwrite|fdatasync|ftruncate|fallocate   which call (required)
 *   file=index|tmp|data                          whose (default: any)
 *   errno=NAME      fail picked calls with NAME (ENOSPC EIO EDQUOT EINTR
 *                   EOPNOTSUPP EROFS ENOMEM, or any other name of the
 *                   table both fault grammars share, kv.c)
 *   delay_ms=N      sleep N ms (1..60000) before each picked call
 *   nth=N           pick from the Nth matching call on (default: every one)
 *   count=N         pick N calls from the nth on (default 1 with nth; 0:
 *                   all)
 * A spec must inject something (errno or delay_ms); each key once. The
 * list itself is read by kv.c, as SWAPIO_FAULT's is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"
#include "util.h"

#define DELAY_MAX	60000

static const char *const call_names[SYS_NR_CALLS] = {
	[SYS_PWRITE] = "pwrite", [SYS_FDATASYNC] = "fdatasync",
	[SYS_FTRUNCATE] = "ftruncate", [SYS_FALLOCATE] = "fallocate",
};
static const char *const file_names[SYS_NR_FILES] = {
	[SYS_ANY] = "any", [SYS_INDEX] = "index", [SYS_TMP] = "tmp",
	[SYS_DATA] = "data",
};
enum { KEY_CALL, KEY_FILE, KEY_ERRNO, KEY_DELAY, KEY_NTH, KEY_COUNT,
       NR_KEYS };

static const char *const sys_keys[NR_KEYS] = {
	[KEY_CALL] = "call",	[KEY_FILE] = "file",
	[KEY_ERRNO] = "errno",	[KEY_DELAY] = "delay_ms",
	[KEY_NTH] = "nth",	[KEY_COUNT] = "count",
};

/* One key=value item (swapio__kv_parse()); key -1: no '=', refused. */
static int parse_item(void *ctx, int key, char *v)
{
	struct store_sys *sys = ctx;
	uint64_t x = 0;
	int ret;

	switch (key) {
	case KEY_CALL:
		sys->call = swapio__kv_index(call_names, SYS_NR_CALLS, v);
		return sys->call < 0 ? -EINVAL : 0;
	case KEY_FILE:
		sys->file = swapio__kv_index(file_names, SYS_NR_FILES, v);
		return sys->file < 0 ? -EINVAL : 0;
	case KEY_ERRNO:
		ret = swapio__kv_errno(v);
		if (ret < 0)
			return ret;
		sys->err = ret;
		return 0;
	case KEY_DELAY:
		if (swapio__kv_u64(v, 1, DELAY_MAX, &x))
			return -EINVAL;
		sys->delay_ms = (unsigned int)x;
		return 0;
	case KEY_NTH:
		return swapio__kv_u64(v, 1, UINT64_MAX, &sys->nth);
	case KEY_COUNT:
		sys->count = 0;
		return swapio__kv_u64(v, 0, UINT64_MAX, &sys->count);
	default:
		return -EINVAL;
	}
}

int swapio__sys_init(struct store_sys *sys, const char *spec)
{
	unsigned int seen = 0;
	int ret;

	memset(sys, 0, sizeof(*sys));
	atomic_init(&sys->seen, 0);
	if (!spec || !*spec)
		return 0;
	sys->call = -1;
	sys->count = 1;
	ret = swapio__kv_parse(spec, sys_keys, NR_KEYS, parse_item, sys,
			       &seen);
	/* count= without nth= means "the first N". */
	if (!ret && (seen & (1u << KEY_COUNT)) && !(seen & (1u << KEY_NTH)))
		sys->nth = 1;
	if (!ret && !(seen & (1u << KEY_COUNT)) && !(seen & (1u << KEY_NTH)))
		sys->count = 0;
	if (ret || sys->call < 0 || (!sys->err && !sys->delay_ms))
		return -EINVAL;
	sys->on = true;
	return 0;
}

int swapio__sys_pick(struct store_sys *sys, int call, int file)
{
	uint64_t n;

	if (!sys->on || sys->call != call ||
	    (sys->file != SYS_ANY && sys->file != file))
		return 0;
	n = atomic_fetch_add(&sys->seen, 1) + 1;
	if (sys->nth && (n < sys->nth ||
			 (sys->count && n - sys->nth >= sys->count)))
		return 0;
	if (sys->delay_ms) {
		struct timespec ts = {
			.tv_sec = sys->delay_ms / 1000,
			.tv_nsec = (long)(sys->delay_ms % 1000) * 1000000,
		};

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return sys->err;
}

int swapio__sys_pwrite_part(struct store_sys *sys, int file, int fd,
			    const void *buf, size_t n, uint64_t off,
			    size_t *wrote)
{
	const char *p = buf;
	int err = swapio__sys_pick(sys, SYS_PWRITE, file);
	ssize_t w;

	*wrote = 0;
	if (err == ENOSPC && n > 1) {
		/* A full disk tears the write: half of it lands. */
		w = pwrite(fd, p, n / 2, (off_t)off);
		*wrote = w > 0 ? (size_t)w : 0;
		return -err;
	}
	if (err)
		return -err;
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
		*wrote += (size_t)w;
	}
	return 0;
}

int swapio__sys_pwrite(struct store_sys *sys, int file, int fd,
		       const void *buf, size_t n, uint64_t off)
{
	size_t wrote;

	return swapio__sys_pwrite_part(sys, file, fd, buf, n, off, &wrote);
}

int swapio__sys_fdatasync(struct store_sys *sys, int file, int fd)
{
	int err = swapio__sys_pick(sys, SYS_FDATASYNC, file);

	if (err)
		return -err;
	return fdatasync(fd) ? -errno : 0;
}

int swapio__sys_ftruncate(struct store_sys *sys, int file, int fd,
			  uint64_t size)
{
	int err = swapio__sys_pick(sys, SYS_FTRUNCATE, file);

	if (err)
		return -err;
	return ftruncate(fd, (off_t)size) ? -errno : 0;
}

int swapio__sys_fallocate(struct store_sys *sys, int file, int fd, int mode,
			  uint64_t off, uint64_t len)
{
	int err = swapio__sys_pick(sys, SYS_FALLOCATE, file);

	if (err)
		return -err;
	return fallocate(fd, mode, (off_t)off, (off_t)len) ? -errno : 0;
}
