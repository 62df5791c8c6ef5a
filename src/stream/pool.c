/* SPDX-License-Identifier: MIT */
/*
 * A pool of equal, page-aligned buffers (DeepSpeed's SwapBufferManager):
 * one allocation, locked in memory when allowed, cut into buffers that are
 * handed out and back through a stack of free indices. Everything is
 * allocated at creation, so get and put never allocate; one mutex and one
 * condition variable make them thread-safe. Uses only swapio.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "swapio.h"
#include "util.h"

struct swapio_pool {
	unsigned char	*mem;
	size_t		buf_size;
	size_t		total;
	unsigned int	count;
	bool		locked;
	unsigned int	gen;		/* fork generation */

	pthread_mutex_t	lock;
	pthread_cond_t	cv;		/* a buffer came back */
	unsigned int	nfree;
	unsigned int	*stack;		/* free buffers' indices */
	bool		*is_free;	/* catches a double put */
};

/* Pinned if allowed; else unpinned, unless the caller insists. */
static int pool_memory(struct swapio_pool *p, unsigned int flags)
{
	const unsigned int buf_flags = flags & (SWAPIO_BUF_LOCKED |
						SWAPIO_BUF_HUGE);
	void *mem;
	int ret;

	ret = swapio_buf_alloc(p->total, buf_flags, (void **)&mem);
	if (ret == SWAPIO_EMEMLOCK && !(flags & SWAPIO_POOL_REQUIRE_LOCKED))
		ret = swapio_buf_alloc(p->total, buf_flags & ~SWAPIO_BUF_LOCKED,
				       (void **)&mem);
	else if (!ret)
		p->locked = buf_flags & SWAPIO_BUF_LOCKED;
	if (ret)
		return ret;
	/* A swap window is the parent's alone: no copy in a child. */
	(void)madvise(mem, p->total, MADV_DONTFORK);
	p->mem = mem;
	return 0;
}

static int pool_sync_init(struct swapio_pool *p)
{
	pthread_condattr_t ca;
	int ret;

	ret = pthread_condattr_init(&ca);
	if (ret)
		return -ret;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (ret)
		return -ret;
	ret = pthread_mutex_init(&p->lock, NULL);
	if (ret) {
		pthread_cond_destroy(&p->cv);
		return -ret;
	}
	return 0;
}

/* The pool object and its bookkeeping, every buffer free. */
static struct swapio_pool *pool_alloc(size_t buf_size, unsigned int count)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct swapio_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->buf_size = (buf_size + page - 1) / page * page;
	p->count = count;
	p->total = p->buf_size * count;
	p->stack = malloc(count * sizeof(*p->stack));
	p->is_free = malloc(count * sizeof(*p->is_free));
	if (!p->stack || !p->is_free) {
		free(p->is_free);
		free(p->stack);
		free(p);
		return NULL;
	}
	/* Lowest index on top: buffers are handed out in address order. */
	for (unsigned int i = 0; i < count; i++) {
		p->stack[i] = count - 1 - i;
		p->is_free[i] = true;
	}
	p->nfree = count;
	return p;
}

int swapio_pool_create(size_t buf_size, unsigned int count,
		       unsigned int flags, swapio_pool **out)
{
	SWAPIO_KEEP_ERRNO;
	const unsigned int known = SWAPIO_BUF_LOCKED | SWAPIO_BUF_HUGE |
				   SWAPIO_POOL_REQUIRE_LOCKED;
	struct swapio_pool *p;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!buf_size || !count || (flags & ~known) ||
	    buf_size > SIZE_MAX / 2 / count)
		return -EINVAL;
	p = pool_alloc(buf_size, count);
	if (!p)
		return -ENOMEM;
	ret = pool_memory(p, flags);
	if (ret)
		goto err_free_pool;
	ret = pool_sync_init(p);
	if (ret)
		goto err_free_memory;
	p->gen = swapio__fork_gen();
	*out = p;
	return 0;

err_free_memory:
	swapio_buf_free(p->mem, p->total);
err_free_pool:
	free(p->is_free);
	free(p->stack);
	free(p);
	return ret;
}

/* In a child of fork() the pool is the parent's: leave it alone. */
void swapio_pool_destroy(swapio_pool *p)
{
	SWAPIO_KEEP_ERRNO;

	if (!p || swapio__forked(p->gen))
		return;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
	swapio_buf_free(p->mem, p->total);
	free(p->is_free);
	free(p->stack);
	free(p);
}

int swapio_pool_get(swapio_pool *p, int timeout_ms, void **buf)
{
	SWAPIO_KEEP_ERRNO;
	struct timespec dl;
	unsigned int i;
	int ret = 0;

	if (!buf)
		return -EINVAL;
	*buf = NULL;
	if (!p)
		return -EINVAL;
	if (swapio__forked(p->gen))
		return SWAPIO_EFORKED;
	if (timeout_ms > 0)
		dl = swapio__deadline(timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (!p->nfree && !ret) {
		if (timeout_ms == 0)
			ret = -EAGAIN;
		else if (timeout_ms < 0)
			pthread_cond_wait(&p->cv, &p->lock);
		else if (pthread_cond_timedwait(&p->cv, &p->lock, &dl) ==
			 ETIMEDOUT && !p->nfree)
			ret = -ETIMEDOUT;
	}
	if (!ret) {
		i = p->stack[--p->nfree];
		p->is_free[i] = false;
		*buf = p->mem + (size_t)i * p->buf_size;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int swapio_pool_put(swapio_pool *p, void *buf)
{
	SWAPIO_KEEP_ERRNO;
	unsigned char *b = buf;
	size_t i;
	int ret = 0;

	if (!p || !b || b < p->mem || b >= p->mem + p->total ||
	    (size_t)(b - p->mem) % p->buf_size)
		return -EINVAL;
	if (swapio__forked(p->gen))
		return SWAPIO_EFORKED;
	i = (size_t)(b - p->mem) / p->buf_size;
	pthread_mutex_lock(&p->lock);
	if (p->is_free[i]) {
		ret = -EINVAL;
	} else {
		p->is_free[i] = true;
		p->stack[p->nfree++] = (unsigned int)i;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

size_t swapio_pool_buf_size(const swapio_pool *p)
{
	return p ? p->buf_size : 0;
}

unsigned int swapio_pool_count(const swapio_pool *p)
{
	return p ? p->count : 0;
}

unsigned int swapio_pool_available(swapio_pool *p)
{
	SWAPIO_KEEP_ERRNO;
	unsigned int n;

	if (!p || swapio__forked(p->gen))
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->nfree;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int swapio_pool_locked(const swapio_pool *p)
{
	return p && p->locked;
}
