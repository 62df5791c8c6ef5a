/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the reliability tests (faults, fallbacks, bad input,
 * several processes). Like testing.h they fail loudly, so that test
 * bodies stay straight-line. Every wait is bounded: a hang fails the test
 * with a message instead of stalling ctest until its TIMEOUT.
 */
#ifndef SWAPIO_TEST_FAULT_H
#define SWAPIO_TEST_FAULT_H

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "testing.h"
#include "internal.h"	/* swapio__fault_injected() */

#define TF_WAIT_MS	30000	/* far above any op here: a hang */

/* A handle on the engine under test with SWAPIO_FAULT=@spec (NULL: none). */
static inline swapio_handle *tf_handle(const char *spec,
				       struct swapio_config cfg)
{
	swapio_handle *h;

	if (spec)
		setenv("SWAPIO_FAULT", spec, 1);
	else
		unsetenv("SWAPIO_FAULT");
	h = t_handle(cfg);
	unsetenv("SWAPIO_FAULT");
	if (spec && swapio__fault_injected(h) < 0)
		t_die("SWAPIO_FAULT=%s: handle runs without the fault engine",
		      spec);
	return h;
}

/* The op's result, waited for at most TF_WAIT_MS; the op is freed. */
static inline ssize_t tf_wait(swapio_op *op)
{
	ssize_t res = swapio_op_wait(op, TF_WAIT_MS);

	if (res == -ETIMEDOUT)
		t_die("op still running after %d ms: hang", TF_WAIT_MS);
	swapio_op_free(op);
	return res;
}

static inline ssize_t tf_pwrite(swapio_handle *h, swapio_file *f,
				const void *buf, size_t len, uint64_t off)
{
	swapio_op *op;
	int ret = swapio_submit_write(h, f, buf, len, off, &op);

	return ret ? ret : tf_wait(op);
}

static inline ssize_t tf_pread(swapio_handle *h, swapio_file *f, void *buf,
			       size_t len, uint64_t off)
{
	swapio_op *op;
	int ret = swapio_submit_read(h, f, buf, len, off, &op);

	return ret ? ret : tf_wait(op);
}

static inline swapio_file *tf_open(swapio_handle *h, const char *path)
{
	swapio_file *f;
	int ret = swapio_file_open(h, path, SWAPIO_O_READ | SWAPIO_O_WRITE |
				   SWAPIO_O_CREATE, &f);

	if (ret)
		t_die("swapio_file_open(%s): %s", path, swapio_strerror(ret));
	return f;
}

/* @len bytes of @path at @off through pread(2), bypassing swapio. */
static inline unsigned char *tf_read_plain(const char *path, size_t len,
					   uint64_t off)
{
	unsigned char *buf = t_zalloc(len);
	size_t done = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		t_die("%s: %s", path, strerror(errno));
	while (done < len) {
		n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0)
			t_die("pread %s: %s", path, strerror(errno));
		if (n == 0)
			break;		/* past EOF reads as zeros */
		done += (size_t)n;
	}
	close(fd);
	return buf;
}

/* Fail unless @path holds @want at @off, checked with plain pread(2). */
static inline void tf_check_file(const char *path, const unsigned char *want,
				 size_t len, uint64_t off)
{
	unsigned char *got = tf_read_plain(path, len, off);

	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			t_die("%s: byte %zu at offset %llu is %#x, want %#x",
			      path, i, (unsigned long long)(off + i), got[i],
			      want[i]);
	free(got);
}

static inline struct swapio_stats tf_stats(swapio_handle *h)
{
	struct swapio_stats st;

	swapio_handle_stats(h, &st);
	return st;
}

static inline uint64_t tf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif /* SWAPIO_TEST_FAULT_H */
