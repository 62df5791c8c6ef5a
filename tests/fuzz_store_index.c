/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the store's index parser: each input becomes the
 * "index" file of a small store (whose data file holds a few real values),
 * which is then opened, listed, read, written and closed. Opening must
 * never crash, hang or hand out wrong data: it either succeeds or returns
 * an error. Self-contained: only the public API and this file.
 *
 * A random file almost never gets past the record checksums, so the first
 * input byte picks a mode:
 *   0: the rest is the index as is;
 *   1: the rest, with every whole 320-byte record's checksum fixed up;
 *   2: the rest XORed over a real index, checksums fixed up (deep paths).
 * Odd mode bytes also set SWAPIO_STORE_RECOVER (rebuild by scanning).
 * The record layout assumed here: 320 bytes, the last 8 the XXH3-64 of
 * the 312 before them, in host byte order (src/store.c, struct irec).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "swapio.h"

#define REC	320
#define MAXGET	(1u << 20)

static swapio_handle *h;
static char dir[64], idx_path[96], data_path[96];
static unsigned char *real_idx, *real_data;
static size_t real_idx_len, real_data_len;

static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		abort();
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spill(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		abort();
	close(fd);
}

static void cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

/* A store with a few values, kept as bytes to restore before each run. */
static void init(void)
{
	struct swapio_store_config cfg = { .grow_bytes = 64 * 1024 };
	char val[5000];
	swapio_store *s;

	snprintf(dir, sizeof(dir), "%s/swapio-fuzz-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir) ||
	    swapio_handle_create(&(struct swapio_config){ 0 }, &h) ||
	    swapio_store_open(h, dir, &cfg, &s))
		abort();
	atexit(cleanup);
	for (int i = 0; i < 4; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		memset(val, 'a' + i, sizeof(val));
		if (swapio_store_put(s, key, val, 1000u * (unsigned)i + 1))
			abort();
	}
	swapio_store_put(s, "k1", val, 7);	/* a replace: a dead record */
	swapio_store_remove(s, "k2");
	swapio_store_close(s);
	snprintf(idx_path, sizeof(idx_path), "%s/index", dir);
	snprintf(data_path, sizeof(data_path), "%s/data", dir);
	real_idx = slurp(idx_path, &real_idx_len);
	real_data = slurp(data_path, &real_data_len);
}

static void seal(unsigned char *buf, size_t len)
{
	for (size_t off = 0; off + REC <= len; off += REC) {
		uint64_t sum = XXH3_64bits(buf + off, REC - 8);

		memcpy(buf + off + REC - 8, &sum, 8);
	}
}

/* The index bytes for this input; the caller frees them. */
static unsigned char *make_index(const uint8_t *data, size_t size,
				 size_t *len)
{
	const unsigned int mode = size ? data[0] % 3 : 0;
	unsigned char *buf;

	if (size)
		data++, size--;
	*len = mode == 2 && size < real_idx_len ? real_idx_len : size;
	buf = calloc(1, *len ? *len : 1);
	if (!buf)
		abort();
	if (mode == 2)
		memcpy(buf, real_idx, real_idx_len < *len ? real_idx_len :
		       *len);
	for (size_t i = 0; i < size; i++)
		buf[i] = mode == 2 ? buf[i] ^ data[i] : data[i];
	if (mode)
		seal(buf, *len);
	return buf;
}

/* Whatever opened must behave: read every key, write, remove. */
static void exercise(swapio_store *s)
{
	static unsigned char buf[MAXGET];
	char **keys;
	size_t n;

	if (swapio_store_list(s, &keys, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		int64_t len = swapio_store_size(s, keys[i]);

		if (len >= 0 && len <= MAXGET)
			(void)swapio_store_get(s, keys[i], buf, (uint64_t)len);
	}
	free(keys);
	(void)swapio_store_put(s, "fuzz", "new value", 9);
	(void)swapio_store_remove(s, "k0");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swapio_store_config cfg = { .grow_bytes = 64 * 1024 };
	unsigned char *idx;
	swapio_store *s;
	size_t len;

	if (!h)
		init();
	idx = make_index(data, size, &len);
	spill(idx_path, idx, len);
	spill(data_path, real_data, real_data_len);
	if (size && data[0] % 2)
		cfg.flags = SWAPIO_STORE_RECOVER;
	if (!swapio_store_open(h, dir, &cfg, &s)) {
		exercise(s);
		swapio_store_close(s);
	}
	free(idx);
	return 0;
}
