/* SPDX-License-Identifier: MIT */
/*
 * Numbers on a command line, for the examples: one parser, so that every
 * option takes the same sizes and refuses the same mistakes as the swapio
 * command's (tools/util.c). Header-only, so that this directory still
 * builds on its own.
 */
#ifndef SWAPIO_EXAMPLES_ARGS_H
#define SWAPIO_EXAMPLES_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The largest size any option takes: a file offset's range (off_t). */
#define ARGS_SIZE_MAX	((uint64_t)INT64_MAX)

/*
 * A byte count: decimal digits, then an optional K, M, G or T (x1024),
 * at most ARGS_SIZE_MAX. No sign, space, or anything after. 0 or -1.
 */
static inline int args_parse_size(const char *s, uint64_t *out)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	/* strtoull accepts signs and spaces; a size starts with a digit. */
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end | 0x20) {	/* ASCII lower case */
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	}
	if (shift)
		end++;
	if (*end || v > (ARGS_SIZE_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A decimal integer in [@min, @max] (@max at most UINT32_MAX). 0 or -1. */
static inline int args_parse_uint(const char *s, unsigned long min,
				  unsigned long max, unsigned int *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max || v > 0xffffffffUL)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* 1M rather than 1048576 where the value allows it. */
static inline void args_format_size(char *buf, unsigned int n, uint64_t v)
{
	static const char units[] = "TGMK";

	for (unsigned int i = 0; i < 4; i++) {
		unsigned int shift = 40 - 10 * i;

		if (v && v % (1ull << shift) == 0) {
			snprintf(buf, n, "%llu%c",
				 (unsigned long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, n, "%llu", (unsigned long long)v);
}

#endif /* SWAPIO_EXAMPLES_ARGS_H */
