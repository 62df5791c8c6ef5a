/* SPDX-License-Identifier: MIT */
/*
 * Test helpers. They fail loudly (print and exit 1) so that test bodies
 * stay straight-line. Exit 77 means "skipped", after printing why.
 *
 * The engine under test comes from SWAPIO_TEST_ENGINE (uring, aio,
 * threads; ctest sets it), default auto. Temporary files live under
 * SWAPIO_TEST_DIR, default /tmp (O_DIRECT works there on ext4 and tmpfs).
 */
#ifndef SWAPIO_TESTING_H
#define SWAPIO_TESTING_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swapio.h"

#define T_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define T_SKIP		77

static inline void __attribute__((noreturn, format(printf, 1, 2)))
t_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline void __attribute__((noreturn, format(printf, 1, 2)))
t_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(T_SKIP);
}

/* The engine under test; skips (77) if it cannot run here. */
static inline unsigned int t_engine(void)
{
	const char *name = getenv("SWAPIO_TEST_ENGINE");
	int e, ret;

	if (!name || !*name)
		return SWAPIO_ENGINE_AUTO;
	e = swapio_engine_parse(name);
	if (e < 0)
		t_die("SWAPIO_TEST_ENGINE=%s: unknown engine", name);
	ret = swapio_engine_probe((unsigned int)e);
	if (ret)
		t_skip("engine %s unavailable here: %s", name,
		       swapio_strerror(ret));
	return (unsigned int)e;
}

static inline void *t_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		t_die("out of memory (%zu bytes)", n);
	return p;
}

static inline void *t_zalloc(size_t n)
{
	void *p = t_malloc(n);

	memset(p, 0, n);
	return p;
}

/* splitmix64: a seeded, reproducible stream. */
static inline uint64_t t_rand64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void t_fill_random(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed * 0x2545f4914f6cdd1dull + 1, v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		v = t_rand64(&s);
		memcpy(p + i, &v, 8);
	}
	v = t_rand64(&s);
	memcpy(p + i, &v, n - i);
}

/* @n random bytes from @seed, in fresh malloc memory. */
static inline unsigned char *t_random_buf(size_t n, uint64_t seed)
{
	unsigned char *p = t_malloc(n);

	t_fill_random(p, n, seed);
	return p;
}

/* A fresh temporary directory; the caller removes it with t_rmdir(). */
static inline char *t_tmpdir(void)
{
	const char *base = getenv("SWAPIO_TEST_DIR");
	char *path;

	if (asprintf(&path, "%s/swapio-test-XXXXXX", base ? base : "/tmp") < 0)
		t_die("asprintf failed");
	if (!mkdtemp(path))
		t_die("mkdtemp(%s): %s", path, strerror(errno));
	return path;
}

static inline int t_rm_one(const char *path, const struct stat *st,
			   int type, struct FTW *ftw)
{
	(void)st, (void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf @path (without following links), then free it. */
static inline void t_rmdir(char *path)
{
	if (nftw(path, t_rm_one, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		fprintf(stderr, "warning: could not remove %s: %s\n", path,
			strerror(errno));
	free(path);
}

/* A handle with @cfg and the engine under test, or the test fails. */
static inline swapio_handle *t_handle(struct swapio_config cfg)
{
	swapio_handle *h;
	int ret;

	cfg.engine = t_engine();
	ret = swapio_handle_create(&cfg, &h);
	if (ret)
		t_die("swapio_handle_create: %s", swapio_strerror(ret));
	return h;
}

/* ------------------------------------------------------------------ */
/* Files and memory, checked with plain system calls                   */
/* ------------------------------------------------------------------ */

#include <fcntl.h>
#include <sys/stat.h>

/* "@dir/@name" in fresh malloc memory. */
static inline char *t_path(const char *dir, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		t_die("asprintf failed");
	return path;
}

/*
 * The usual cmocka group fixture: a fresh temporary directory and the path
 * of a file "data" in it, removed again by t_env_teardown().
 */
struct t_env {
	char	*dir;
	char	*path;
};

static inline int t_env_setup(void **state)
{
	struct t_env *env = t_zalloc(sizeof(*env));

	env->dir = t_tmpdir();
	env->path = t_path(env->dir, "data");
	*state = env;
	return 0;
}

static inline int t_env_teardown(void **state)
{
	struct t_env *env = *state;

	free(env->path);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

/* Descriptors this process has open: to show that nothing leaked. */
static inline int t_count_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		t_die("/proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The whole file at @path through read(2), in fresh malloc memory. */
static inline unsigned char *t_read_file(const char *path, size_t *size)
{
	unsigned char *buf;
	struct stat st;
	size_t done = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		t_die("%s: %s", path, strerror(errno));
	buf = t_malloc((size_t)st.st_size);
	while (done < (size_t)st.st_size) {
		n = pread(fd, buf + done, (size_t)st.st_size - done,
			  (off_t)done);
		if (n <= 0)
			t_die("read %s: %s", path, n ? strerror(errno) : "EOF");
		done += (size_t)n;
	}
	close(fd);
	*size = done;
	return buf;
}

/* Create or replace @path with @n bytes of @buf through write(2). */
static inline void t_write_file(const char *path, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	size_t done = 0;
	ssize_t w;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		t_die("%s: %s", path, strerror(errno));
	while (done < n) {
		w = write(fd, p + done, n - done);
		if (w <= 0)
			t_die("write %s: %s", path, strerror(errno));
		done += (size_t)w;
	}
	if (close(fd))
		t_die("close %s: %s", path, strerror(errno));
}

/* Index of the first byte where @a and @b differ, or SIZE_MAX if none. */
static inline size_t t_first_diff(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	if (!memcmp(a, b, n))
		return SIZE_MAX;
	for (size_t i = 0;; i++)
		if (x[i] != y[i])
			return i;
}

/* Index of the first nonzero byte of @p, or SIZE_MAX if all are zero. */
static inline size_t t_first_nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return i;
	return SIZE_MAX;
}

/* @n bytes (plus @slack) at a page boundary; release with free(). */
static inline unsigned char *t_page_alloc(size_t n, size_t slack)
{
	void *p;

	if (posix_memalign(&p, 4096, n + slack ? n + slack : 1))
		t_die("out of memory (%zu bytes)", n + slack);
	return p;
}

#endif /* SWAPIO_TESTING_H */
