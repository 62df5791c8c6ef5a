/* SPDX-License-Identifier: MIT */
/*
 * The fd-level fault hook of the store (see sys.h).
 *
 * SWAPIO_FAULT_FD = item[,item]...
 *   call=pwrite|fdatasync|ftruncate|fallocate   which call (required)
 *   file=index|tmp|data                          whose (default: any)
 *   errno=NAME      fail picked calls with NAME (ENOSPC EIO EDQUOT EINTR
 *                   EOPNOTSUPP EROFS ENOMEM)
 *   delay_ms=N      sleep N ms (1..60000) before each picked call
 *   nth=N           pick from the Nth matching call on (default: every one)
 *   count=N         pick N calls from the nth on (default 1 with nth; 0:
 *                   all)
 * A spec must inject something (errno or delay_ms); each key once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"
#include "util.h"

#define SPEC_MAX	256
#define DELAY_MAX	60000

static const char *const call_names[SYS_NR_CALLS] = {
	[SYS_PWRITE] = "pwrite", [SYS_FDATASYNC] = "fdatasync",
	[SYS_FTRUNCATE] = "ftruncate", [SYS_FALLOCATE] = "fallocate",
};
static const char *const file_names[SYS_NR_FILES] = {
	[SYS_ANY] = "any", [SYS_INDEX] = "index", [SYS_TMP] = "tmp",
	[SYS_DATA] = "data",
};
static const struct { const char *name; int err; } errs[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT },
	{ "EINTR", EINTR }, { "EOPNOTSUPP", EOPNOTSUPP }, { "EROFS", EROFS },
	{ "ENOMEM", ENOMEM },
};

static int name_index(const char *const *names, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], v))
			return (int)i;
	return -1;
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

static int parse_errno(const char *v, int *err)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(errs); i++)
		if (!strcmp(errs[i].name, v)) {
			*err = errs[i].err;
			return 0;
		}
	return -EINVAL;
}

/* One key=value item; @seen has a bit per key already given. */
static int parse_item(struct store_sys *sys, char *item, unsigned int *seen)
{
	static const char *const keys[] = { "call", "file", "errno",
					    "delay_ms", "nth", "count" };
	char *v = strchr(item, '=');
	uint64_t x = 0;
	int k;

	if (!v)
		return -EINVAL;
	*v++ = '\0';
	k = name_index(keys, SWAPIO_ARRAY_SIZE(keys), item);
	if (k < 0 || (*seen & (1u << k)))
		return -EINVAL;
	*seen |= 1u << k;
	switch (k) {
	case 0:
		sys->call = name_index(call_names, SYS_NR_CALLS, v);
		return sys->call < 0 ? -EINVAL : 0;
	case 1:
		sys->file = name_index(file_names, SYS_NR_FILES, v);
		return sys->file < 0 ? -EINVAL : 0;
	case 2:
		return parse_errno(v, &sys->err);
	case 3:
		if (parse_u64(v, DELAY_MAX, &x) || !x)
			return -EINVAL;
		sys->delay_ms = (unsigned int)x;
		return 0;
	case 4:
		return parse_u64(v, UINT64_MAX, &sys->nth) || !sys->nth ?
		       -EINVAL : 0;
	default:
		sys->count = 0;
		return parse_u64(v, UINT64_MAX, &sys->count);
	}
}

int swapio__sys_init(struct store_sys *sys, const char *spec)
{
	char buf[SPEC_MAX], *item, *save;
	unsigned int seen = 0;
	int ret = 0;

	memset(sys, 0, sizeof(*sys));
	atomic_init(&sys->seen, 0);
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	sys->call = -1;
	sys->count = 1;
	for (item = strtok_r(buf, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save))
		ret = parse_item(sys, item, &seen);
	/* count= without nth= means "the first N". */
	if (!ret && (seen & (1u << 5)) && !(seen & (1u << 4)))
		sys->nth = 1;
	if (!ret && !(seen & (1u << 5)) && !(seen & (1u << 4)))
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
