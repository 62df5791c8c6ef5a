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

/* A store in @dir, or the test fails. */
static inline swapio_store *ts_open(swapio_handle *h, const char *dir,
				    const struct swapio_store_config *cfg)
{
	swapio_store *s;
	int ret = swapio_store_open(h, dir, cfg, &s);

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

#endif /* SWAPIO_TEST_STORE_COMMON_H */
