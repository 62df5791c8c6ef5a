/* SPDX-License-Identifier: MIT */
/*
 * Small static inlines every layer may use: array size, alignment, the
 * monotonic clock and deadlines. They know nothing of swapio's internals,
 * so the store, the pool and the pipeline (which see only swapio.h)
 * include this header too.
 */
#ifndef SWAPIO_UTIL_H
#define SWAPIO_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SWAPIO_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define SWAPIO_ALIGN_UP(x, a)	(((x) + (a) - 1) / (a) * (a))
#define SWAPIO_ALIGN_DOWN(x, a)	((x) / (a) * (a))
#define SWAPIO_MIN(a, b)	((a) < (b) ? (a) : (b))
#define SWAPIO_MAX(a, b)	((a) > (b) ? (a) : (b))

/* Monotonic clock in nanoseconds. */
static inline uint64_t swapio__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The CLOCK_MONOTONIC instant @timeout_ms from now, for
 * pthread_cond_timedwait() on a condition variable made with that clock.
 */
static inline struct timespec swapio__deadline(int timeout_ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	return dl;
}

/*
 * What is left of a timeout that started at @start_ns, in the timeout_ms
 * convention: -1 (no limit) and 0 (poll) stay as they are; a positive
 * timeout never falls below 0.
 */
static inline int swapio__ms_left(int timeout_ms, uint64_t start_ns)
{
	uint64_t used_ms;

	if (timeout_ms <= 0)
		return timeout_ms;
	used_ms = (swapio__now_ns() - start_ns) / 1000000u;
	return used_ms >= (uint64_t)timeout_ms ? 0 :
	       timeout_ms - (int)used_ms;
}

/*
 * fork.c: moved on in every child of fork(). An object records the value
 * it was made under; if the value has moved since, this process inherited
 * the object and must answer SWAPIO_EFORKED (swapio.h, "Processes").
 */
extern atomic_uint swapio__fork_generation;

static inline unsigned int swapio__fork_gen(void)
{
	return atomic_load_explicit(&swapio__fork_generation,
				    memory_order_relaxed);
}

static inline bool swapio__forked(unsigned int gen)
{
	return gen != swapio__fork_gen();
}

static inline void swapio__errno_restore(const int *saved)
{
	errno = *saved;
}

/*
 * First line of a public function that makes system or library calls:
 * errno is put back as the caller left it when the function returns, so
 * that no public call ever changes it (swapio.h, "Conventions").
 */
#define SWAPIO_KEEP_ERRNO						\
	int swapio__saved_errno						\
		__attribute__((cleanup(swapio__errno_restore), unused)) = errno

/*
 * The calling thread's error detail (swapio_error_detail()). A public call
 * that can set one clears it first; a failure records what the caller gave
 * that is at fault, and returns @err:
 *	return swapio__detail(-EINVAL, "SWAPIO_ENGINE='%s': unknown", v);
 * Defined in errors.c; every layer may use them.
 */
void swapio__detail_clear(void);
int swapio__detail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The environment (src/env.c): every variable the library reads is in its
 * table and in man/swapio.3, ENVIRONMENT. swapio__env() is the value of
 * @name, NULL when unset or empty. swapio__env_get() parses it: 1 and
 * *@out, 0 when unset or empty (*@out untouched), or -EINVAL with a detail
 * that names the variable and the value. swapio__env_check() parses every
 * variable of @scope that is set: 0 or the first -EINVAL. A fault-injection
 * variable that parses is announced on stderr, once per process.
 */
enum {
	SWAPIO_ENV_HANDLE	= 1u << 0,	/* at swapio_handle_create() */
	SWAPIO_ENV_STORE	= 1u << 1,	/* at a store's open */
};
const char *swapio__env(const char *name);
int swapio__env_get(const char *name, uint64_t *out);
int swapio__env_check(unsigned int scope);
/* The table's @i-th name, NULL past its end (for the tests). */
const char *swapio__env_nth(unsigned int i);

/*
 * "key=value[,key=value]..." lists, the grammar of both fault specs
 * (kv.c). swapio__kv_parse() copies @spec (shorter than SWAPIO_KV_MAX)
 * and calls @item once per item, in order, with the index of its key in
 * @keys (@nr_keys of them, at most 32) and its value, or with key -1 and
 * the whole item when it has no '='; empty items are skipped. It stops
 * at the first error: -EINVAL for too long a spec, an unknown key or a
 * key given twice, else what @item returned. *@seen: a bit per key given.
 * swapio__kv_errno(): the positive errno of a name ("EIO") of the one
 * table both grammars accept, or -EINVAL. swapio__kv_u64(): decimal
 * digits only, in [@min, @max]: 0 and *@out, or -EINVAL.
 * swapio__kv_index(): the index of @s in @names (NULL entries skipped),
 * or -EINVAL.
 */
#define SWAPIO_KV_MAX	256
typedef int (*swapio__kv_item_fn)(void *ctx, int key, char *val);
int swapio__kv_parse(const char *spec, const char *const *keys,
		     unsigned int nr_keys, swapio__kv_item_fn item, void *ctx,
		     unsigned int *seen);
int swapio__kv_errno(const char *name);
int swapio__kv_u64(const char *s, uint64_t min, uint64_t max,
		   uint64_t *out);
int swapio__kv_index(const char *const *names, unsigned int n,
		     const char *s);

/*
 * Files the library keeps by path, safe on a shared machine (safe_open.c;
 * docs/RELIABILITY.md, "Shared machines"). New files are private unless
 * the caller asked for shared modes, which the umask then trims.
 */
#define SWAPIO_FILE_MODE	0600
#define SWAPIO_DIR_MODE		0700
#define SWAPIO_FILE_MODE_SHARED	0644
#define SWAPIO_DIR_MODE_SHARED	0755

/* "a FIFO", "a block device", ... for a st_mode, in details. */
const char *swapio__file_kind(mode_t mode);

/*
 * Vet an open directory: owned by the caller or root, and writable by no
 * one else unless sticky. 0, or -EPERM with a detail naming @path.
 */
int swapio__dir_check(int dirfd, const char *path);

/*
 * Open directory @path without following a link as its last component
 * (creating it with @mode first if @create and it is missing), and vet
 * it as swapio__dir_check() does. The descriptor, or -errno: -ELOOP (a
 * link), -ENOTDIR, -EPERM (unsafe owner or mode), or what open(2) said;
 * each but -ENOENT with a detail.
 */
int swapio__dir_open(const char *path, bool create, mode_t mode);

/*
 * Open @name in directory @dirfd with @oflags (access mode, O_CREAT,
 * O_EXCL) and @mode, never following a link and never blocking (a FIFO
 * is refused, not waited on), and keep it only if it is a regular file
 * with one link, of the caller or root. @dir names the directory in
 * details (NULL: @name alone). The descriptor, blocking, close-on-exec;
 * or -errno: -ELOOP (a link), -EISDIR, -ESPIPE (a FIFO, socket or
 * device), -EPERM (another owner, or hard links), or what openat(2)
 * said; each but -ENOENT with a detail.
 */
int swapio__file_at(int dirfd, const char *dir, const char *name,
		    int oflags, mode_t mode);

/*
 * A new temporary @name in @dirfd, read-write, to be renamed over its
 * final name: whatever has the name (a stale temporary, a planted link)
 * is removed first, then it is created exclusively. As swapio__file_at().
 */
int swapio__tmp_at(int dirfd, const char *dir, const char *name,
		   mode_t mode);

/*
 * Whether @path (relative to @dirfd) may be replaced by a rename: 0 if
 * it is a regular file or missing, else -EISDIR, -ELOOP (a link) or
 * -ESPIPE (a FIFO, socket or device), with a detail.
 */
int swapio__replaceable_at(int dirfd, const char *path);

#endif /* SWAPIO_UTIL_H */
