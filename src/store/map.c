/* SPDX-License-Identifier: MIT */
/*
 * The store's map: key -> entry, a chained hash table over XXH3 that
 * doubles when it holds more entries than buckets, with the tombstones of
 * removes on a list of their own. The front end (store.c), log replay
 * (log.c) and the rebuild scan (recover.c) change it only through
 * swapio__apply_put() and swapio__apply_del(), so a replayed log builds
 * the map the process had. Callers hold s->lock, or own the store alone
 * (open, rebuild). Below it only the allocator (space.c): the last
 * reference to an entry frees its extent.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store_impl.h"

struct entry *swapio__entry_new(const char *key, size_t keylen)
{
	struct entry *e = calloc(1, sizeof(*e) + keylen + 1);

	if (!e)
		return NULL;
	memcpy(e->key, key, keylen);
	e->keylen = (uint16_t)keylen;
	e->refs = 1;
	return e;
}

static size_t bucket_of(const swapio_store *s, const char *key, size_t n)
{
	return (size_t)XXH3_64bits(key, n) & (s->nbuckets - 1);
}

/* The link that points at @key's entry, or at the NULL ending its chain. */
static struct entry **map_slot(swapio_store *s, const char *key, size_t n)
{
	struct entry **pp = &s->buckets[bucket_of(s, key, n)];

	while (*pp && ((*pp)->keylen != n || memcmp((*pp)->key, key, n)))
		pp = &(*pp)->hnext;
	return pp;
}

struct entry *swapio__map_get(swapio_store *s, const char *key, size_t n)
{
	return *map_slot(s, key, n);
}

/* Double the buckets; on failure the chains just grow longer. */
static void map_grow(swapio_store *s)
{
	size_t nb = s->nbuckets * 2;
	struct entry **b = calloc(nb, sizeof(*b)), *e, *next;

	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (e = s->buckets[i]; e; e = next) {
			size_t j = (size_t)XXH3_64bits(e->key, e->keylen) &
				   (nb - 1);

			next = e->hnext;
			e->hnext = b[j];
			b[j] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

/* Drop one reference; the last frees the extent. s->lock held. */
void swapio__entry_put(swapio_store *s, struct entry *e)
{
	assert(e->refs > 0);
	if (--e->refs)
		return;
	if (e->ext)
		swapio__space_free(s, e->off, e->ext);
	free(e);
}

static void tomb_unlist(swapio_store *s, struct entry *t)
{
	struct entry **pp = &s->tombs;

	while (*pp != t)
		pp = &(*pp)->tnext;
	*pp = t->tnext;
	s->ntombs--;
}

static void map_unlink(swapio_store *s, struct entry **slot)
{
	struct entry *e = *slot;

	*slot = e->hnext;
	if (e->flags & ENT_TOMB) {
		tomb_unlist(s, e);
	} else {
		s->nkeys--;
		s->value_bytes -= e->len;
		s->used_bytes -= e->ext;
	}
	swapio__entry_put(s, e);
}

/* Put @e where *@slot is, replacing what is there. */
static void map_replace(swapio_store *s, struct entry **slot, struct entry *e)
{
	if (*slot) {
		e->hnext = (*slot)->hnext;
		(*slot)->hnext = e;
		map_unlink(s, slot);
	} else {
		e->hnext = NULL;
		*slot = e;
	}
	if (e->flags & ENT_TOMB) {
		e->tnext = s->tombs;
		s->tombs = e;
		s->ntombs++;
		return;
	}
	s->nkeys++;
	s->value_bytes += e->len;
	s->used_bytes += e->ext;
	if (s->nkeys + s->ntombs > s->nbuckets)
		map_grow(s);
}

/*
 * A committed put. The higher generation (the later submitted) wins
 * against a value or a tombstone, whichever commits last; the loser's
 * extent is freed.
 */
void swapio__apply_put(swapio_store *s, struct entry *e)
{
	struct entry **slot = map_slot(s, e->key, e->keylen);

	if (*slot && (*slot)->gen > e->gen) {
		swapio__entry_put(s, e);
		return;
	}
	map_replace(s, slot, e);
}

/*
 * A remove with generation @gen: the value goes, and with @tomb a
 * tombstone stays so that older puts still in flight lose. Out of memory
 * for the tombstone only loses that protection (the DEL record has it).
 */
void swapio__apply_del(swapio_store *s, const char *key, size_t n,
		       uint64_t gen, bool tomb)
{
	struct entry **slot = map_slot(s, key, n);
	struct entry *t;

	if (*slot && (*slot)->gen > gen)
		return;		/* a newer value (an old log's order) */
	t = tomb ? swapio__entry_new(key, n) : NULL;
	if (t) {
		t->gen = gen;
		t->flags = ENT_TOMB;
		map_replace(s, slot, t);
	} else if (*slot) {
		map_unlink(s, slot);
	}
}

/* Drop the tombstones older than @below; s->lock held. */
void swapio__tombs_drop(swapio_store *s, uint64_t below)
{
	struct entry *t = s->tombs, *next;

	for (; t; t = next) {
		next = t->tnext;
		if (t->gen < below)
			map_unlink(s, map_slot(s, t->key, t->keylen));
	}
}

void swapio__map_free(swapio_store *s)
{
	struct entry *e, *next;

	for (size_t i = 0; s->buckets && i < s->nbuckets; i++)
		for (e = s->buckets[i]; e; e = next) {
			next = e->hnext;
			free(e);
		}
	free(s->buckets);
	s->buckets = NULL;
	s->tombs = NULL;
	s->nkeys = s->ntombs = 0;
	s->value_bytes = s->used_bytes = 0;
}

/* An empty map (for a rebuild). */
int swapio__map_reset(swapio_store *s)
{
	swapio__map_free(s);
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	return s->buckets ? 0 : -ENOMEM;
}
