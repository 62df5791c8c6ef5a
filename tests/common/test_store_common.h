/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the store's tests: values whose content follows from
 * (key, generation), so a read-back is checked byte for byte, not only by
 * the store's own checksum.
 */
#ifndef SWAPIO_TEST_STORE_COMMON_H
#define SWAPIO_TEST_STORE_COMMON_H

#include <fcntl.h>
#include <sys/stat.h>

#include "testing.h"

/* The bytes of value @gen of key number @id. */
static inline void ts_fill(void *buf, size_t len, unsigned int id,
			   uint64_t gen)
{
	t_fill_random(buf, len, (uint64_t)id * 1000003u + gen);
}

/* 0 if @buf holds value @gen of key @id, else 1 + the first bad offset. */
static inline size_t ts_check(const void *buf, size_t len, unsigned int id,
			      uint64_t gen)
{
	unsigned char *want = t_malloc(len);
	size_t d;

	ts_fill(want, len, id, gen);
	d = t_first_diff(buf, want, len);
	free(want);
	return d == SIZE_MAX ? 0 : d + 1;
}

static inline void ts_key(char *key, size_t n, unsigned int id)
{
	snprintf(key, n, "layer.%u/weights", id);
}

/*
 * SWAPIO_TEST_STRIPE=N[:UNIT] runs every store test over a store striped
 * across N drives (2..8): @dir itself, which keeps the index, and
 * @dir/drive.1 .. @dir/drive.N-1, with a stripe unit of UNIT bytes
 * (default 32 KiB, so that values of more than a few blocks really
 * split). Unset: the plain store. ctest runs the store's tests both ways
 * (tests/store/store.cmake).
 */
static inline unsigned int ts_stripe(uint64_t *unit)
{
	const char *v = getenv("SWAPIO_TEST_STRIPE");
	unsigned long n, u = 32u << 10;
	char *end;

	if (!v || !*v)
		return 1;
	n = strtoul(v, &end, 10);
	if (*end == ':')
		u = strtoul(end + 1, &end, 10);
	if (*end || n < 1 || n > 8 || !u)
		t_die("SWAPIO_TEST_STRIPE=%s: want N[:UNIT], N in 1..8", v);
	if (unit)
		*unit = u;
	return (unsigned int)n;
}

/* The directory of drive @i (> 0) of a test store in @dir; free() it. */
static inline char *ts_drive_dir(const char *dir, unsigned int i)
{
	char name[32];

	snprintf(name, sizeof(name), "drive.%u", i);
	return t_path(dir, name);
}

/*
 * swapio_store_open() as the store's tests call it: striped over the
 * drives SWAPIO_TEST_STRIPE names, every drive on handle @h (the
 * striping tests proper give each drive its own).
 */
static inline int ts_store_open(swapio_handle *h, const char *dir,
				const struct swapio_store_config *cfg,
				swapio_store **out)
{
	struct swapio_store_drive dv[8];
	struct swapio_store_config c = { 0 };
	unsigned int n = ts_stripe(&c.stripe_unit);
	uint64_t unit = c.stripe_unit;
	char *dirs[8] = { 0 };
	int ret;

	if (n == 1 || !dir)
		return swapio_store_open(h, dir, cfg, out);
	if (cfg)
		c = *cfg;
	if (!c.stripe_unit)
		c.stripe_unit = unit;
	for (unsigned int i = 0; i < n; i++) {
		dirs[i] = i ? ts_drive_dir(dir, i) : strdup(dir);
		dv[i] = (struct swapio_store_drive){ .h = h, .dir = dirs[i] };
	}
	ret = swapio_store_open_multi(dv, n, &c, out, NULL);
	for (unsigned int i = 0; i < n; i++)
		free(dirs[i]);
	return ret;
}

/*
 * The store's data space as one buffer, whatever the striping: the
 * drives' data files dealt back unit by unit. free() it.
 */
static inline unsigned char *ts_read_data(const char *dir, size_t *size)
{
	uint64_t unit = 0;
	const unsigned int n = ts_stripe(&unit);
	unsigned char *f[8], *out;
	size_t sz[8], row = SIZE_MAX;

	for (unsigned int i = 0; i < n; i++) {
		char *d = i ? ts_drive_dir(dir, i) : strdup(dir);
		char *p = t_path(d, "data");

		f[i] = t_read_file(p, &sz[i]);
		free(p);
		free(d);
		row = sz[i] < row ? sz[i] : row;
	}
	if (n == 1) {
		*size = sz[0];
		return f[0];
	}
	row -= row % unit;
	*size = row * n;
	out = t_malloc(*size ? *size : 1);
	for (size_t k = 0; k < row / unit * n; k++)
		memcpy(out + k * unit, f[k % n] + k / n * unit, unit);
	for (unsigned int i = 0; i < n; i++)
		free(f[i]);
	return out;
}

/* A store in @dir, or the test fails. */
static inline swapio_store *ts_open(swapio_handle *h, const char *dir,
				    const struct swapio_store_config *cfg)
{
	swapio_store *s;
	int ret = ts_store_open(h, dir, cfg, &s);

	if (ret)
		t_die("swapio_store_open(%s): %s", dir, swapio_strerror(ret));
	return s;
}

/* Put value @gen of key @id, @len bytes, synchronously. */
static inline int ts_put(swapio_store *s, unsigned int id, uint64_t gen,
			 size_t len)
{
	unsigned char *buf = t_malloc(len);
	char key[64];
	int ret;

	ts_key(key, sizeof(key), id);
	ts_fill(buf, len, id, gen);
	ret = swapio_store_put(s, key, buf, len);
	free(buf);
	return ret;
}

/* Read key @id and check it is value @gen of @len bytes; 0 or -errno,
 * or 1 when the content is wrong. */
static inline int ts_get_check(swapio_store *s, unsigned int id,
			       uint64_t gen, size_t len)
{
	unsigned char *buf = t_malloc(len);
	char key[64];
	int ret;

	ts_key(key, sizeof(key), id);
	ret = swapio_store_get(s, key, buf, len);
	if (!ret && ts_check(buf, len, id, gen))
		ret = 1;
	free(buf);
	return ret;
}

/*
 * Close @s as a crash would leave it: the index exactly as the process
 * left it, without the record that swapio_store_close() appends to vouch
 * for the log. (A copy of the index taken while the store is open is put
 * back after the close; the close writes nothing else.)
 */
static inline void ts_close_crashed(swapio_store *s, const char *dir)
{
	char *idx = t_path(dir, "index");
	size_t n;
	unsigned char *copy = t_read_file(idx, &n);

	swapio_store_close(s);
	t_write_file(idx, copy, n);
	free(copy);
	free(idx);
}

#endif /* SWAPIO_TEST_STORE_COMMON_H */
