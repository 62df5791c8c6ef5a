/* SPDX-License-Identifier: MIT */
/*
 * swapio-copy: copy a file at device speed.
 *
 *   swapio-copy SRC DST [CHUNK]
 *
 * Two buffers of CHUNK bytes (default 64M; K, M, G suffixes) take turns:
 * while one is written to DST, the next chunk of SRC is read into the
 * other, both asynchronously through one handle, with O_DIRECT where the
 * filesystem allows it. DST is created or truncated. Prints the bytes
 * copied and the GB/s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <swapio.h>

/* "64M" -> 67108864; 0 on a bad size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'G': v <<= 10;	/* fall through */
	case 'M': v <<= 10;	/* fall through */
	case 'K': v <<= 10; end++; break;
	}
	return *end ? 0 : v;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "swapio-copy: %s: %s (%s)\n", what,
		swapio_strerror(err), swapio_errname(err));
	return 1;
}

/* Read chunk @i of @f into @buf: 0 and *op, or -errno. */
static int read_chunk(swapio_handle *h, swapio_file *f, void *buf,
		      uint64_t chunk, int64_t size, uint64_t i, swapio_op **op)
{
	uint64_t off = i * chunk, len = chunk;

	if (off + len > (uint64_t)size)
		len = (uint64_t)size - off;
	return swapio_submit_read(h, f, buf, len, off, op);
}

static int copy(swapio_handle *h, swapio_file *src, swapio_file *dst,
		void *buf[2], uint64_t chunk, int64_t size)
{
	uint64_t nr = ((uint64_t)size + chunk - 1) / chunk;
	swapio_op *rd = NULL, *wr = NULL;
	int64_t n, w;
	int ret = 0;

	if (nr && (ret = read_chunk(h, src, buf[0], chunk, size, 0, &rd)))
		return ret;
	for (uint64_t i = 0; i < nr; i++) {
		n = swapio_op_wait(rd, -1);	/* chunk i, in buf[i % 2] */
		swapio_op_free(rd);
		rd = NULL;
		if (n < 0) {
			ret = (int)n;
			break;
		}
		/* The other buffer is free once the last write is done. */
		if (wr) {
			w = swapio_op_wait(wr, -1);
			swapio_op_free(wr);
			wr = NULL;
			if (w < 0) {
				ret = (int)w;
				break;
			}
		}
		if (i + 1 < nr && (ret = read_chunk(h, src, buf[(i + 1) % 2],
						    chunk, size, i + 1, &rd)))
			break;
		ret = swapio_submit_write(h, dst, buf[i % 2], (size_t)n,
					  i * chunk, &wr);
		if (ret)
			break;
	}
	swapio_op_free(rd);		/* waits for a read still in flight */
	if (wr && (w = swapio_op_wait(wr, -1)) < 0 && !ret)
		ret = (int)w;
	swapio_op_free(wr);
	return ret;
}

int main(int argc, char **argv)
{
	uint64_t chunk = argc > 3 ? parse_size(argv[3]) : 64u << 20;
	swapio_file *src = NULL, *dst = NULL;
	swapio_handle *h = NULL;
	void *buf[2] = { NULL, NULL };
	struct timespec t0, t1;
	int64_t size;
	double s;
	int ret;

	if (argc < 3 || argc > 4 || !chunk) {
		fprintf(stderr, "usage: swapio-copy SRC DST [CHUNK]\n");
		return 2;
	}
	if ((ret = swapio_handle_create(NULL, &h)))	/* NULL: defaults */
		return fail("handle", ret);
	if ((ret = swapio_file_open(h, argv[1], SWAPIO_O_READ, &src)))
		return fail(argv[1], ret);
	if ((ret = swapio_file_open(h, argv[2], SWAPIO_O_WRITE |
				    SWAPIO_O_CREATE | SWAPIO_O_TRUNC, &dst)))
		return fail(argv[2], ret);
	if ((size = swapio_file_size(src)) < 0)
		return fail(argv[1], (int)size);
	if ((ret = swapio_buf_alloc(chunk, 0, &buf[0])) ||
	    (ret = swapio_buf_alloc(chunk, 0, &buf[1])))
		return fail("buffers", ret);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = copy(h, src, dst, buf, chunk, size);
	if (!ret)
		ret = swapio_file_sync(dst);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret)
		return fail("copy", ret);
	s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%lld bytes in %.3f s: %.2f GB/s (engine %s)\n",
	       (long long)size, s, s > 0 ? (double)size / s / 1e9 : 0.0,
	       swapio_handle_engine(h));

	swapio_buf_free(buf[0], chunk);
	swapio_buf_free(buf[1], chunk);
	if ((ret = swapio_file_close(dst)))
		return fail(argv[2], ret);
	swapio_file_close(src);
	swapio_handle_destroy(h);
	return 0;
}
