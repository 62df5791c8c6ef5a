/* SPDX-License-Identifier: MIT */
/* Helpers shared by the subcommands: errors, numbers, clocks. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "swapio.h"
#include "cmd.h"

int tool_fail(const char *what, int err)
{
	const char *detail = swapio_error_detail();

	/* The library's own words on what was at fault, where it has any. */
	if (*detail)
		fprintf(stderr, "swapio: %s: %s (%s)\n", what,
			swapio_strerror(err), detail);
	else
		fprintf(stderr, "swapio: %s: %s\n", what,
			swapio_strerror(err));
	return 1;
}

int tool_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "swapio %s: ", cmd);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}

/*
 * The command's one number parser: every option of every subcommand
 * takes the same sizes and refuses the same mistakes. strtoull and
 * strtoul accept signs and spaces; a number here starts with a digit.
 */
int tool_parse_size(const char *s, uint64_t *out)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

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
	if (*end || v > ((uint64_t)INT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int tool_parse_uint(const char *s, unsigned long min, unsigned long max,
		    unsigned int *out)
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

const char *tool_option_name(const struct option *opts, int val)
{
	for (; opts->name; opts++)
		if (opts->val == val)
			return opts->name;
	return "?";
}

/*
 * Split @s at commas and hand each item to @one with @ctx. Empty items are
 * errors. At most @max_n items. 0 or -1.
 */
static int parse_list(const char *s, unsigned int max_n, unsigned int *n,
		      int (*one)(const char *item, unsigned int i, void *ctx),
		      void *ctx)
{
	char *copy, *item, *save = NULL;
	int ret = 0;

	*n = 0;
	if (!s || !*s || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
		return -1;
	copy = strdup(s);
	if (!copy)
		return -1;
	for (item = strtok_r(copy, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		if (*n == max_n)
			ret = -1;
		else
			ret = one(item, (*n)++, ctx);
	}
	free(copy);
	return *s == ',' ? -1 : ret;
}

static int one_size(const char *item, unsigned int i, void *ctx)
{
	return tool_parse_size(item, &((uint64_t *)ctx)[i]);
}

int tool_parse_size_list(const char *s, uint64_t *out, unsigned int max_n,
			 unsigned int *n)
{
	return parse_list(s, max_n, n, one_size, out);
}

struct uint_ctx {
	unsigned long	min, max;
	unsigned int	*out;
};

static int one_uint(const char *item, unsigned int i, void *ctx)
{
	struct uint_ctx *c = ctx;

	return tool_parse_uint(item, c->min, c->max, &c->out[i]);
}

int tool_parse_uint_list(const char *s, unsigned long min, unsigned long max,
			 unsigned int *out, unsigned int max_n,
			 unsigned int *n)
{
	struct uint_ctx c = { min, max, out };

	return parse_list(s, max_n, n, one_uint, &c);
}

void tool_format_size(char *buf, unsigned int n, uint64_t v)
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

double tool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t tool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double tool_cpu_seconds(void)
{
	struct rusage ru;

	/* RUSAGE_SELF covers every thread: the library's workers too. */
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

char *tool_mkdtemp(const char *parent, const char *prefix)
{
	char *dir;
	int err;

	if (asprintf(&dir, "%s/%s.XXXXXX", parent, prefix) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (mkdtemp(dir))
		return dir;
	err = errno;
	free(dir);
	errno = err;
	return NULL;
}

static int rmtree_err;

static int rmtree_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) && errno != ENOENT && !rmtree_err)
		rmtree_err = -errno;
	return 0;
}

int tool_rmtree(const char *dir)
{
	/* Depth first, each link removed as itself, never followed. */
	rmtree_err = 0;
	if (nftw(dir, rmtree_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) &&
	    errno != ENOENT && !rmtree_err)
		rmtree_err = -errno;
	return rmtree_err;
}

void tool_store_note(swapio_store *s, const char *dir)
{
	struct swapio_store_info in;

	swapio_store_info(s, &in);
	if (in.dropped_records)
		fprintf(stderr, "swapio: note: %s: the store's index ended "
			"early at a damaged or torn record; %llu record(s) "
			"dropped, values put after it may be gone\n", dir,
			(unsigned long long)in.dropped_records);
}
