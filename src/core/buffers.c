/* SPDX-License-Identifier: MIT */
/*
 * Page-aligned buffers, optionally locked in memory and on transparent huge
 * pages. mmap gives page alignment and zeroed memory without the malloc
 * arena, and hands the pages straight back on free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25	/* Linux 6.1 */
#endif

/* Smaller locked buffers are not worth a slot (engines/regbuf.c). */
#define REG_MIN		(64u << 10)

/*
 * @len bytes of private anonymous memory at a 2 MiB boundary, advised
 * onto transparent huge pages (under 2 MiB, where none fits, plain
 * pages); NULL with errno set on failure. A mapping that starts between
 * two huge pages gets them only over its aligned middle.
 */
void *swapio__map_huge(size_t len)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t span;
	unsigned char *p, *a;

	if (len > SIZE_MAX - HPAGE_SIZE - page) {
		errno = ENOMEM;
		return NULL;
	}
	len = SWAPIO_ALIGN_UP(len, page);
	if (len < HPAGE_SIZE) {
		/* No huge page fits: a plain mapping, not a wide one cut. */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	span = len + HPAGE_SIZE;
	p = mmap(NULL, span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (unsigned char *)SWAPIO_ALIGN_UP((uintptr_t)p, HPAGE_SIZE);
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + len, (size_t)(p + span - (a + len)));
	/* A hint: without THP support the memory simply uses small pages. */
	(void)madvise(a, len, MADV_HUGEPAGE);
	return a;
}

int swapio_buf_alloc(size_t size, unsigned int flags, void **out)
{
	SWAPIO_KEEP_ERRNO;
	void *p;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!size || (flags & ~(SWAPIO_BUF_LOCKED | SWAPIO_BUF_HUGE)))
		return -EINVAL;

	if (flags & SWAPIO_BUF_HUGE) {
		p = swapio__map_huge(size);
		if (!p)
			return -errno;
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
	}
	/* mlock fails with ENOMEM over RLIMIT_MEMLOCK, EPERM without the
	 * capability: both mean "not allowed to pin this much". */
	/* Pinned memory is the parent's alone: a child of fork() gets no
	 * copy-on-write image of it (and mlock is not inherited anyway). */
	if (flags & SWAPIO_BUF_LOCKED)
		(void)madvise(p, size, MADV_DONTFORK);
	if ((flags & SWAPIO_BUF_LOCKED) && mlock(p, size)) {
		int err = errno;

		munmap(p, size);
		return (err == ENOMEM || err == EPERM || err == EAGAIN) ?
			SWAPIO_EMEMLOCK : -err;
	}
	/* Locked memory is resident anyway: registering it costs nothing. */
	if ((flags & SWAPIO_BUF_LOCKED) && size >= REG_MIN)
		swapio__reg_add(p, size);
	*out = p;
	return 0;
}

void swapio_buf_free(void *buf, size_t size)
{
	SWAPIO_KEEP_ERRNO;

	if (buf) {
		if (size >= REG_MIN)
			swapio__reg_remove(buf, size);
		munmap(buf, size);	/* also drops any lock */
	}
}

int64_t swapio_mem_hugepages(void *addr, size_t len)
{
	SWAPIO_KEEP_ERRNO;
	uintptr_t a = (uintptr_t)addr, lo, hi;

	if (!addr || a + len < a)
		return -EINVAL;
	lo = (a + HPAGE_SIZE - 1) & ~(uintptr_t)(HPAGE_SIZE - 1);
	hi = (a + len) & ~(uintptr_t)(HPAGE_SIZE - 1);
	if (hi <= lo)
		return 0;
	if (madvise((void *)lo, hi - lo, MADV_HUGEPAGE))
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	/*
	 * Collapsing needs pages to move: fault in what was never touched
	 * (as huge pages now, under the advice) without changing any byte.
	 * A kernel without MADV_POPULATE_WRITE leaves that to the collapse.
	 */
	(void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
	/*
	 * The collapse scans each 2 MiB range as it finds it: a page that
	 * another thread or the kernel holds for a moment (locked, under
	 * writeback, on a per-CPU list) fails it with EAGAIN, or with
	 * EINVAL for the scan results the kernel has no errno for. Both
	 * come and go: try again before saying so.
	 */
	for (int i = 0;; i++) {
		if (!madvise((void *)lo, hi - lo, MADV_COLLAPSE))
			return (int64_t)(hi - lo);
		if (errno == ENOMEM || i == 3 ||
		    (errno != EAGAIN && errno != EINVAL))
			break;
	}
	return errno == EAGAIN || errno == ENOMEM ? -errno : -EINVAL;
}
