/* SPDX-License-Identifier: MIT */
/*
 * Page-aligned buffers, optionally locked in memory and on transparent huge
 * pages. mmap gives page alignment and zeroed memory without the malloc
 * arena, and hands the pages straight back on free.
 */
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

int swapio_buf_alloc(size_t size, unsigned int flags, void **out)
{
	SWAPIO_KEEP_ERRNO;
	void *p;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!size || (flags & ~(SWAPIO_BUF_LOCKED | SWAPIO_BUF_HUGE)))
		return -EINVAL;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* A hint: without THP support the buffer simply uses small pages. */
	if (flags & SWAPIO_BUF_HUGE)
		(void)madvise(p, size, MADV_HUGEPAGE);
	/* mlock fails with ENOMEM over RLIMIT_MEMLOCK, EPERM without the
	 * capability: both mean "not allowed to pin this much". */
	if ((flags & SWAPIO_BUF_LOCKED) && mlock(p, size)) {
		int err = errno;

		munmap(p, size);
		return (err == ENOMEM || err == EPERM || err == EAGAIN) ?
			SWAPIO_EMEMLOCK : -err;
	}
	*out = p;
	return 0;
}

void swapio_buf_free(void *buf, size_t size)
{
	SWAPIO_KEEP_ERRNO;
	if (buf)
		munmap(buf, size);	/* also drops any lock */
}
