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

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25	/* Linux 6.1 */
#endif

#define HPAGE_SIZE	(2u << 20)

/* Smaller locked buffers are not worth a slot. */
#define REG_MIN		(64u << 10)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct swapio_reg_slot reg_slots[SWAPIO_REG_SLOTS];
static atomic_uint_least64_t reg_gen;
static uint64_t reg_next_id = 1;	/* under reg_lock */

uint64_t swapio__reg_gen(void)
{
	return atomic_load_explicit(&reg_gen, memory_order_acquire);
}

uint64_t swapio__reg_copy(struct swapio_reg_slot out[SWAPIO_REG_SLOTS])
{
	uint64_t gen;

	pthread_mutex_lock(&reg_lock);
	memcpy(out, reg_slots, sizeof(reg_slots));
	gen = atomic_load_explicit(&reg_gen, memory_order_relaxed);
	pthread_mutex_unlock(&reg_lock);
	return gen;
}

bool swapio__reg_holds(const void *buf, size_t len)
{
	const uintptr_t a = (uintptr_t)buf;
	bool in = false;

	pthread_mutex_lock(&reg_lock);
	for (unsigned int i = 0; i < SWAPIO_REG_SLOTS && !in; i++)
		in = reg_slots[i].len && a >= reg_slots[i].start &&
		     len <= reg_slots[i].len &&
		     a - reg_slots[i].start <= reg_slots[i].len - len;
	pthread_mutex_unlock(&reg_lock);
	return in;
}

/* Give [p, p + size) slots, 1 GiB a slot, as far as free slots go. */
static void reg_add(void *p, size_t size)
{
	uintptr_t at = (uintptr_t)p, end = at + size;
	bool added = false;

	pthread_mutex_lock(&reg_lock);
	reg_next_id++;
	for (size_t i = 0; i < SWAPIO_REG_SLOTS && at < end; i++) {
		if (reg_slots[i].len)
			continue;
		reg_slots[i].start = at;
		reg_slots[i].len = SWAPIO_MIN(end - at,
					      (size_t)SWAPIO_REG_SLOT_MAX);
		reg_slots[i].id = reg_next_id;
		at += reg_slots[i].len;
		added = true;
	}
	if (added)
		atomic_fetch_add_explicit(&reg_gen, 1, memory_order_release);
	pthread_mutex_unlock(&reg_lock);
}

/* Empty the slots inside [p, p + size), before the memory goes. */
static void reg_remove(void *p, size_t size)
{
	uintptr_t at = (uintptr_t)p;
	bool removed = false;

	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < SWAPIO_REG_SLOTS; i++) {
		if (reg_slots[i].len && reg_slots[i].start >= at &&
		    reg_slots[i].start - at < size) {
			reg_slots[i] = (struct swapio_reg_slot){ 0 };
			removed = true;
		}
	}
	if (removed)
		atomic_fetch_add_explicit(&reg_gen, 1, memory_order_release);
	pthread_mutex_unlock(&reg_lock);
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

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* A hint: without THP support the buffer simply uses small pages. */
	if (flags & SWAPIO_BUF_HUGE)
		(void)madvise(p, size, MADV_HUGEPAGE);
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
		reg_add(p, size);
	*out = p;
	return 0;
}

void swapio_buf_free(void *buf, size_t size)
{
	SWAPIO_KEEP_ERRNO;

	if (buf) {
		if (size >= REG_MIN)
			reg_remove(buf, size);
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
	if (madvise((void *)lo, hi - lo, MADV_COLLAPSE))
		return errno == EAGAIN || errno == ENOMEM ? -errno : -EINVAL;
	return (int64_t)(hi - lo);
}
