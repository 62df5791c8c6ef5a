/* SPDX-License-Identifier: MIT */
/*
 * The table of this process's locked buffers that an engine may register
 * with the kernel (io_uring's fixed buffers): engine.h describes it. The
 * core fills and empties it as swapio_buf_alloc() and swapio_buf_free()
 * lock and unlock memory; engines copy it, and the store asks whether a
 * buffer lies in it (ext.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"

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
void swapio__reg_add(void *p, size_t size)
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
void swapio__reg_remove(void *p, size_t size)
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
