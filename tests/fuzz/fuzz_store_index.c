/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the store's log replay, from memory: each input is
 * replayed by swapio__log_replay() into a bare store (no files) whose data
 * file is 64 MiB long. Replay must never crash or hang; when it accepts a
 * log, the map and the free list must agree: every byte of the data file
 * is either free or in exactly one live extent.
 *
 * A random buffer almost never gets past the record checksums, so the
 * first input byte picks a mode:
 *   0: the rest is the log as is;
 *   1: the rest, with every whole record's checksum fixed up (deep paths).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store_impl.h"

#define DATA_SIZE	(64ull << 20)

static void fix_checksums(unsigned char *buf, size_t len)
{
	for (size_t off = 0; off + REC_SIZE <= len; off += REC_SIZE) {
		uint64_t sum = XXH3_64bits(buf + off,
					   offsetof(struct irec, check));

		memcpy(buf + off + offsetof(struct irec, check), &sum, 8);
	}
}

static void check_accounting(const swapio_store *s)
{
	uint64_t used = 0, keys = 0;

	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext) {
			if (e->flags & ENT_TOMB)
				abort();	/* replay drops them all */
			used += e->ext;
			keys++;
		}
	if (keys != s->nkeys || used != s->used_bytes ||
	    used + swapio__fl_free_bytes(&s->fl) != s->data_size ||
	    s->idx_end % REC_SIZE || s->gen_limit < s->gen)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	swapio_store *s;

	if (!size)
		return 0;
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		fix_checksums(buf, size - 1);
	s = swapio__store_alloc(NULL, 0);
	if (s) {
		s->data_size = DATA_SIZE;
		if (!swapio__log_replay(s, buf, size - 1))
			check_accounting(s);
		swapio__store_free(s);
	}
	free(buf);
	return 0;
}
