/* SPDX-License-Identifier: MIT */
/*
 * Configuration files: "key = value" lines mapped onto struct swapio_config.
 *
 * The parser works on (pointer, length) spans of the caller's text and
 * never writes to it, allocates or reads past its end, so that any bytes at
 * all can be fed to it (it is fuzzed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define CONFIG_MAX_BYTES	(1u << 20)

struct span {
	const char	*p;
	size_t		n;
};

/* Boolean keys: each sets or clears one flag of swapio_config.flags. */
static const struct {
	const char	*key;
	uint32_t	flag;
	bool		inverted;	/* "true" clears the flag */
} bool_keys[] = {
	{ "direct",		SWAPIO_CFG_BUFFERED,		true },
	{ "direct_strict",	SWAPIO_CFG_DIRECT_STRICT,	false },
	{ "single_submit",	SWAPIO_CFG_SINGLE_SUBMIT,	false },
	{ "overlap_events",	SWAPIO_CFG_NO_OVERLAP,		true },
	{ "register_buffers",	SWAPIO_CFG_NO_REGISTER,		true },
	{ "share_node",		SWAPIO_CFG_SHARE_NODE,		false },
	{ "spin_wait",		SWAPIO_CFG_NO_SPIN,		true },
	{ "bounce",		SWAPIO_CFG_BOUNCE,		false },
};

#define NR_BOOL_KEYS	(SWAPIO_ARRAY_SIZE(bool_keys))

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static struct span trim(struct span s)
{
	while (s.n && is_space(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool span_eq(struct span s, const char *lit)
{
	return strlen(lit) == s.n && !memcmp(s.p, lit, s.n);
}

/* Decimal digits, then an optional K, M or G when @suffix allows it. */
static int parse_u64(struct span s, bool suffix, uint64_t *out)
{
	unsigned int shift = 0;
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (i == 0)
		return -EINVAL;
	if (suffix && i + 1 == s.n) {
		switch (s.p[i] | 0x20) {	/* ASCII lower case */
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		default: return -EINVAL;
		}
		i++;
	}
	if (i != s.n || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_bool(struct span s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(yes); i++) {
		if (span_eq(s, yes[i]) || span_eq(s, no[i])) {
			*out = span_eq(s, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_engine(struct span s, uint32_t *out)
{
	char name[16];
	int e;

	if (s.n >= sizeof(name) || memchr(s.p, '\0', s.n))
		return -EINVAL;
	memcpy(name, s.p, s.n);
	name[s.n] = '\0';
	e = swapio_engine_parse(name);
	if (e < 0)
		return e;
	*out = (uint32_t)e;
	return 0;
}

/* A number for a uint32_t field: 0 (default) or within [1, max]. */
static int parse_u32(struct span s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, false, &v) || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static bool block_size_ok(uint64_t bs)
{
	return bs % 4096 == 0 && bs <= SWAPIO_MAX_BLOCK;
}

static int set_bool_key(struct swapio_config *c, struct span key,
			struct span val)
{
	bool on;

	for (size_t i = 0; i < NR_BOOL_KEYS; i++) {
		if (!span_eq(key, bool_keys[i].key))
			continue;
		if (parse_bool(val, &on))
			return -EINVAL;
		if (on != bool_keys[i].inverted)
			c->flags |= bool_keys[i].flag;
		else
			c->flags &= ~bool_keys[i].flag;
		return 0;
	}
	return -EINVAL;
}

static const char *const gpu_paths[] = { "auto", "staging", "gds" };

static int parse_gpu_path(struct span s, uint32_t *out)
{
	for (uint32_t i = 0; i < SWAPIO_ARRAY_SIZE(gpu_paths); i++) {
		if (span_eq(s, gpu_paths[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int set_key(struct swapio_config *c, struct span key, struct span val)
{
	uint64_t bs;

	if (span_eq(key, "block_size")) {
		if (parse_u64(val, true, &bs) || !block_size_ok(bs))
			return -EINVAL;
		c->block_size = bs;
		return 0;
	}
	if (span_eq(key, "queue_depth"))
		return parse_u32(val, SWAPIO_MAX_QD, &c->queue_depth);
	if (span_eq(key, "threads"))
		return parse_u32(val, SWAPIO_MAX_THREADS, &c->threads);
	if (span_eq(key, "engine"))
		return parse_engine(val, &c->engine);
	if (span_eq(key, "gpu_path"))
		return parse_gpu_path(val, &c->gpu_path);
	return set_bool_key(c, key, val);
}

static int parse_line(struct swapio_config *c, struct span line)
{
	const char *hash = memchr(line.p, '#', line.n);
	const char *eq;
	struct span key, val;

	if (hash)
		line.n = (size_t)(hash - line.p);
	line = trim(line);
	if (!line.n)
		return 0;
	eq = memchr(line.p, '=', line.n);
	if (!eq)
		return -EINVAL;
	key = trim((struct span){ line.p, (size_t)(eq - line.p) });
	val = trim((struct span){ eq + 1, line.n - (size_t)(eq - line.p) - 1 });
	return set_key(c, key, val);
}

int swapio_config_parse(const char *text, size_t len,
			struct swapio_config *cfg)
{
	SWAPIO_KEEP_ERRNO;
	struct swapio_config c = { 0 };
	const char *p, *end, *nl;
	struct span line;
	int ret;

	if (!cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	if (!len)
		return 0;
	if (!text || memchr(text, '\0', len))
		return -EINVAL;
	for (p = text, end = text + len; p < end; p = nl ? nl + 1 : end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		line = (struct span){ p, (size_t)((nl ? nl : end) - p) };
		ret = parse_line(&c, line);
		if (ret)
			return ret;
	}
	*cfg = c;
	return 0;
}

/* The whole of @fd, at most CONFIG_MAX_BYTES, in fresh memory. */
static int read_all(int fd, char **out, size_t *len_out)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *nbuf;
	ssize_t n;

	for (;;) {
		if (len == cap || !buf) {
			if (buf)
				cap *= 2;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_BYTES) {
			free(buf);
			return -EFBIG;
		}
	}
	if (n < 0) {
		n = -errno;
		free(buf);
		return (int)n;
	}
	*out = buf;
	*len_out = len;
	return 0;
}

int swapio_config_load(const char *path, struct swapio_config *cfg)
{
	SWAPIO_KEEP_ERRNO;
	struct stat st;
	size_t len = 0;
	char *text = NULL;
	int fd, ret;

	if (!cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	if (!path)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO with no writer must not block the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if (S_ISDIR(st.st_mode))
		ret = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;	/* a FIFO or device: not a configuration */
	else
		ret = read_all(fd, &text, &len);
	close(fd);
	if (ret)
		return ret;
	ret = swapio_config_parse(text, len, cfg);
	free(text);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

static bool config_valid(const struct swapio_config *c)
{
	uint32_t known = 0;

	for (size_t i = 0; i < NR_BOOL_KEYS; i++)
		known |= bool_keys[i].flag;
	for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]);
	     i++)
		if (c->reserved[i])
			return false;
	return block_size_ok(c->block_size) && !c->reserved32 &&
	       c->gpu_path < SWAPIO_ARRAY_SIZE(gpu_paths) &&
	       c->queue_depth <= SWAPIO_MAX_QD &&
	       c->threads <= SWAPIO_MAX_THREADS &&
	       c->engine <= SWAPIO_ENGINE_THREADS && !(c->flags & ~known);
}

/* 1M rather than 1048576 where the value allows it. */
static void format_size(char *buf, size_t n, uint64_t v)
{
	static const char units[] = "GMK";

	for (unsigned int i = 0; i < 3; i++) {
		unsigned int shift = 30 - 10 * i;

		if (v && v % (1ull << shift) == 0) {
			snprintf(buf, n, "%llu%c",
				 (unsigned long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, n, "%llu", (unsigned long long)v);
}

static int render(const struct swapio_config *c, char *buf, size_t n)
{
	char bs[32];
	int len;

	format_size(bs, sizeof(bs), c->block_size);
	len = snprintf(buf, n,
		       "# swapio configuration (swapio.h); 0 means default\n"
		       "block_size = %s\nqueue_depth = %u\nthreads = %u\n"
		       "engine = %s\ngpu_path = %s\n", bs, c->queue_depth,
		       c->threads, swapio_engine_name(c->engine),
		       gpu_paths[c->gpu_path]);
	for (size_t i = 0; i < NR_BOOL_KEYS && len > 0 && (size_t)len < n;
	     i++) {
		bool set = c->flags & bool_keys[i].flag;
		bool on = set != bool_keys[i].inverted;

		len += snprintf(buf + len, n - (size_t)len, "%s = %s\n",
				bool_keys[i].key, on ? "true" : "false");
	}
	return len > 0 && (size_t)len < n ? len : -ENOSPC;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int swapio_config_save(const char *path, const struct swapio_config *cfg)
{
	SWAPIO_KEEP_ERRNO;
	char text[512], *tmp;
	int fd, len, ret;

	swapio__detail_clear();
	if (!path || !cfg || !config_valid(cfg))
		return -EINVAL;
	len = render(cfg, text, sizeof(text));
	if (len < 0)
		return len;
	/* Replace a regular file or nothing: run as root, a rename over
	 * /dev/null would replace the device. Checked again at the rename. */
	ret = swapio__replaceable_at(AT_FDCWD, path);
	if (ret)
		return ret;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	ret = write_all(fd, text, (size_t)len);
	/* mkstemp makes 0600; a configuration is not a secret. */
	if (!ret && fchmod(fd, 0644))
		ret = -errno;
	/* Without fsync a crash could leave an empty file after the rename. */
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret)
		ret = swapio__replaceable_at(AT_FDCWD, path);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
out_free:
	free(tmp);
	return ret;
}
