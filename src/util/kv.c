/* SPDX-License-Identifier: MIT */
/*
 * "key=value[,key=value]..." lists: the one parser under both fault
 * grammars, SWAPIO_FAULT (engine_fault.c) and SWAPIO_FAULT_FD
 * (store_sys.c), with the one table of errno names they accept. Each
 * grammar keeps its own keys and values; this unit only splits the
 * text, finds each key, refuses a repeated one and reads numbers and
 * errno names the same way for both. Nothing here allocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The errno names a fault spec may inject. */
static const struct {
	const char	*name;
	int		err;
} kv_errnos[] = {
	{ "EIO", EIO },		{ "ENOSPC", ENOSPC },
	{ "EINTR", EINTR },	{ "EAGAIN", EAGAIN },
	{ "EDQUOT", EDQUOT },	{ "EROFS", EROFS },
	{ "ENOMEM", ENOMEM },	{ "EPERM", EPERM },
	{ "ENOSYS", ENOSYS },	{ "EBADF", EBADF },
	{ "EOPNOTSUPP", EOPNOTSUPP }, { "EBADR", EBADR },
};

int swapio__kv_errno(const char *name)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(kv_errnos); i++)
		if (!strcmp(name, kv_errnos[i].name))
			return kv_errnos[i].err;
	return -EINVAL;
}

int swapio__kv_u64(const char *s, uint64_t min, uint64_t max,
		   uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull takes signs and spaces; a number here is digits only. */
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int swapio__kv_index(const char *const *names, unsigned int n,
		     const char *s)
{
	for (unsigned int i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -EINVAL;
}

int swapio__kv_parse(const char *spec, const char *const *keys,
		     unsigned int nr_keys, swapio__kv_item_fn item, void *ctx,
		     unsigned int *seen)
{
	char buf[SWAPIO_KV_MAX], *it, *save, *eq;
	int key, ret = 0;

	*seen = 0;
	if (nr_keys > 32 || strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	/* strtok_r: empty items (",,", a trailing ',') are skipped. */
	for (it = strtok_r(buf, ",", &save); it && !ret;
	     it = strtok_r(NULL, ",", &save)) {
		eq = strchr(it, '=');
		if (!eq) {
			ret = item(ctx, -1, it);
			continue;
		}
		*eq = '\0';
		key = swapio__kv_index(keys, nr_keys, it);
		if (key < 0 || (*seen & (1u << key)))
			return -EINVAL;
		*seen |= 1u << key;
		ret = item(ctx, key, eq + 1);
	}
	return ret;
}
