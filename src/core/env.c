/* SPDX-License-Identifier: MIT */
/*
 * Every environment variable the library reads, in one table: its name,
 * when it is checked, the parser its value must pass, and what a good
 * value is. The library reads the environment only through swapio__env()
 * and swapio__env_get(), which know no name outside the table, so this
 * table and the ENVIRONMENT section of man/swapio.3 are the whole list.
 *
 * A value that does not parse fails the call that reads it with -EINVAL,
 * and swapio_error_detail() names the variable and the value: a typo never
 * turns a setting silently off. The fault-injection variables are for
 * tests; the first time a process turns one on, the library says so on
 * stderr, once per variable: the only line it ever prints
 * (docs/ARCHITECTURE.md, "Environment").
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"

#define GPU_CHUNK_MAX	(1ull << 30)	/* src/gpu/gpu.c's GPU_MAX_CHUNK */

struct env_var {
	const char	*name;
	unsigned int	scope;		/* SWAPIO_ENV_*: checked when */
	bool		loud;		/* injects faults: say so once */
	/* 0 and the value as a number, or -1. NULL: any text will do. */
	int		(*parse)(const char *s, uint64_t *out);
	const char	*wants;		/* what a good value is */
};

/* Decimal digits only (no sign, space or suffix), in [@min, @max]. */
static int parse_range(const char *s, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_engine(const char *s, uint64_t *out)
{
	int e = swapio_engine_parse(s);

	if (e < 0)
		return -1;
	*out = (uint64_t)e;
	return 0;
}

static int parse_fault(const char *s, uint64_t *out)
{
	*out = 1;
	return swapio__fault_check(s) ? -1 : 0;
}

static int parse_fault_fd(const char *s, uint64_t *out)
{
	struct store_sys sys;

	*out = 1;
	return swapio__sys_init(&sys, s) ? -1 : 0;
}

static int parse_bool(const char *s, uint64_t *out)
{
	return parse_range(s, 0, 1, out);
}

static int parse_ranks(const char *s, uint64_t *out)
{
	return parse_range(s, 1, SWAPIO_MAX_QD, out);
}

static int parse_gpu_path(const char *s, uint64_t *out)
{
	static const char *const names[] = {
		[SWAPIO_GPU_AUTO] = "auto",
		[SWAPIO_GPU_STAGING] = "staging",
		[SWAPIO_GPU_GDS] = "gds",
	};

	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

static int parse_gpu_chunk(const char *s, uint64_t *out)
{
	if (parse_range(s, 4096, GPU_CHUNK_MAX, out) || *out % 4096)
		return -1;
	return 0;
}

static const struct env_var vars[] = {
	/* Read only by a handle whose config leaves the engine to auto. */
	{ "SWAPIO_ENGINE", 0, false, parse_engine,
	  "unknown engine (auto, uring, aio, threads)" },
	{ "SWAPIO_SHARE_NODE", SWAPIO_ENV_HANDLE, false, parse_bool,
	  "expected 0 or 1" },
	/* torchrun's; read only by a handle that shares the node. */
	{ "LOCAL_WORLD_SIZE", 0, false, parse_ranks,
	  "not a process count from 1 to 4096 (read for "
	  "SWAPIO_SHARE_NODE / SWAPIO_CFG_SHARE_NODE)" },
	{ "SWAPIO_FAULT", SWAPIO_ENV_HANDLE, true, parse_fault,
	  "not a fault spec (docs/RELIABILITY.md, \"Fault injection\")" },
	{ "SWAPIO_FAULT_FD", SWAPIO_ENV_STORE, true, parse_fault_fd,
	  "not a store fault spec (docs/RELIABILITY.md, \"The store's "
	  "faults\")" },
	{ "SWAPIO_GPU_PATH", SWAPIO_ENV_HANDLE, false, parse_gpu_path,
	  "expected auto, staging or gds" },
	{ "SWAPIO_GPU_CHUNK", SWAPIO_ENV_HANDLE, false, parse_gpu_chunk,
	  "expected bytes, a multiple of 4096 from 4096 to 1073741824" },
	/* Paths for dlopen(); what does not load is the device note's. */
	{ "SWAPIO_CUDA_LIBRARY", 0, false, NULL, "library paths, ':'-separated" },
	{ "SWAPIO_CUFILE_LIBRARY", 0, false, NULL, "a library path, or none" },
};

static atomic_bool announced[SWAPIO_ARRAY_SIZE(vars)];

static const struct env_var *env_find(const char *name)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(vars); i++)
		if (!strcmp(vars[i].name, name))
			return &vars[i];
	return NULL;
}

const char *swapio__env(const char *name)
{
	const char *s;

	/* A variable read here and missing from the table is a bug. */
	assert(env_find(name));
	if (!env_find(name))
		return NULL;
	s = getenv(name);
	return s && *s ? s : NULL;
}

const char *swapio__env_nth(unsigned int i)
{
	return i < SWAPIO_ARRAY_SIZE(vars) ? vars[i].name : NULL;
}

/* @s as the detail shows it: printable, and at most about 128 bytes. */
static void quote(char *buf, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < n; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i] && i >= 3)
		memcpy(buf + i - 3, "...", 3);
	buf[i] = '\0';
}

/*
 * One line, one write(2), so that threads and processes sharing stderr
 * never split it. Only a value that parsed gets here: printable, and
 * shorter than the fault specs' 256 bytes.
 */
static void announce(const struct env_var *v, const char *s)
{
	char line[512];
	int n;

	if (atomic_exchange(&announced[v - vars], true))
		return;
	n = snprintf(line, sizeof(line), "swapio: %s='%s' is set: injecting "
		     "I/O faults (testing only)\n", v->name, s);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    write(STDERR_FILENO, line, (size_t)n) < 0)
		return;	/* stderr closed: nothing more to do */
}

static int env_parse(const struct env_var *v, uint64_t *out)
{
	char shown[132];
	const char *s;

	s = getenv(v->name);
	if (!s || !*s)
		return 0;
	if (v->parse && v->parse(s, out)) {
		quote(shown, sizeof(shown), s);
		return swapio__detail(-EINVAL, "%s='%s': %s", v->name, shown,
				      v->wants);
	}
	if (v->loud)
		announce(v, s);
	return 1;
}

int swapio__env_get(const char *name, uint64_t *out)
{
	const struct env_var *v = env_find(name);
	uint64_t val = 0;
	int ret;

	assert(v);
	if (!v)
		return -EINVAL;
	ret = env_parse(v, &val);
	if (ret > 0)
		*out = val;
	return ret;
}

int swapio__env_check(unsigned int scope)
{
	uint64_t val;
	int ret;

	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(vars); i++) {
		if (!(vars[i].scope & scope))
			continue;
		ret = env_parse(&vars[i], &val);
		if (ret < 0)
			return ret;
	}
	return 0;
}
