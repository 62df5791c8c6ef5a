/* SPDX-License-Identifier: MIT */
/*
 * Recovery (SWAPIO_STORE_RECOVER): rebuild the map from the headers the
 * extents carry, whatever the log says, then write a fresh log. Runs at
 * open, before the store is shared, unless the log vouches for all of
 * itself (store.c, store_load()).
 *
 * What the rebuild believes:
 * - a value whose header and payload check out (its extent is taken, the
 *   newest generation of a key wins);
 * - a PUT record that passes its checksum, anywhere in the index, whose
 *   payload checks out where the record says it is (a value whose header
 *   block alone was damaged);
 * - a DEL record that passes its checksum, anywhere in the index: the key
 *   stays removed unless a value of a later generation exists.
 * Generations are unique and ordered over the store's whole life, so a
 * record proves what it says wherever it lies.
 * - A compaction's HEAD: every value older than its cover that was live
 *   then has its PUT record in the snapshot after it; where those records
 *   are all intact, an older value none of them names was removed or
 *   replaced before the compaction (whose DEL it dropped), and stays
 *   gone.
 * A removed key whose DEL record is gone otherwise (damaged, or not yet
 * compacted away when the HEAD was damaged) comes back if its extent was
 * not reused since.
 *
 * It counts (s->rep) the keys it found beyond what a plain open would
 * have given, and the values it knows of but could not bring back: a
 * header or PUT record newer than what the key now holds, whose payload
 * fails its checksum, and no DEL record that explains it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store_impl.h"

static bool vhdr_valid(const struct vhdr *v)
{
	return v->magic == VAL_MAGIC && v->version == VAL_VERSION &&
	       v->check == XXH3_64bits(v, offsetof(struct vhdr, check)) &&
	       v->keylen >= 1 && v->keylen <= SWAPIO_STORE_KEY_MAX &&
	       strnlen(v->key, sizeof(v->key)) == v->keylen &&
	       v->len <= MAX_LEN && v->block >= MIN_BLOCK &&
	       v->block <= MAX_BLOCK && !(v->block & (v->block - 1));
}

static bool read_exact(swapio_store *s, void *buf, size_t n, uint64_t off)
{
	return swapio__data_pread(s, buf, n, off);
}

/* Is the payload after the header at @off intact? Reads all of it. */
static bool scan_payload_ok(swapio_store *s, const struct vhdr *v,
			    uint64_t off, void *buf, size_t bufsz)
{
	XXH3_state_t *st;
	uint64_t done;
	bool ok = true;

	if (!(v->flags & VAL_SUM) || (s->flags & SWAPIO_STORE_NO_CHECKSUM))
		return true;
	st = XXH3_createState();
	if (!st || XXH3_64bits_reset(st) != XXH_OK) {
		XXH3_freeState(st);
		return false;
	}
	for (done = 0; ok && done < v->len;) {
		size_t n = (size_t)SWAPIO_MIN(v->len - done, (uint64_t)bufsz);

		ok = read_exact(s, buf, n, off + v->block + done) &&
		     XXH3_64bits_update(st, buf, n) == XXH_OK;
		done += n;
	}
	ok = ok && XXH3_64bits_digest(st) == v->sum;
	XXH3_freeState(st);
	return ok;
}

/* Take the value whose header is @v at @off, if it fits: its extent size. */
static uint64_t scan_take(swapio_store *s, const struct vhdr *v, uint64_t off)
{
	struct entry *e;

	if (v->block != s->block || v->ext != ext_bytes(s, v->len) ||
	    off % s->block || off + v->ext > s->data_size ||
	    v->gen > GEN_MAX)
		return 0;
	e = swapio__entry_new(v->key, v->keylen);
	if (!e)
		return 0;
	e->gen = v->gen;
	e->off = off;
	e->len = v->len;
	e->ext = v->ext;
	e->sum = v->sum;
	e->flags = v->flags & VAL_SUM;
	if (swapio__fl_claim(&s->fl, off, e->ext)) {
		free(e);
		return 0;
	}
	if (e->gen > s->gen)
		s->gen = e->gen;
	swapio__apply_put(s, e);
	return v->ext;
}

/* The block size of the first valid header, for a store without HEAD. */
static uint32_t scan_block(swapio_store *s)
{
	struct vhdr v;

	for (uint64_t pos = 0; pos + sizeof(v) <= s->data_size;
	     pos += MIN_BLOCK)
		if (read_exact(s, &v, sizeof(v), pos) && vhdr_valid(&v))
			return v.block;
	return 0;
}

struct rebuild {
	uint64_t	*pre;	/* generations a plain open had, sorted */
	size_t		npre;
	struct entry	**cand;	/* values that should be there */
	size_t		ncand;
	size_t		capcand;
	uint64_t	cover;	/* swapio__log_cover() */
	void		*buf;	/* for reading payloads */
	size_t		bufsz;
	bool		puts;	/* the walk's pass: PUT, else DEL records */
};

static int u64_cmp(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int key_cmp(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a;
	const struct entry *y = *(struct entry *const *)b;

	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	return memcmp(x->key, y->key, x->keylen);
}

/* The generations of the values in the map now (a plain open's). */
static int pre_collect(swapio_store *s, struct rebuild *rb)
{
	rb->pre = malloc((s->nkeys + 1) * sizeof(*rb->pre));
	if (!rb->pre)
		return -ENOMEM;
	for (size_t i = 0; s->buckets && i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext)
			if (!(e->flags & ENT_TOMB) && rb->npre < s->nkeys)
				rb->pre[rb->npre++] = e->gen;
	qsort(rb->pre, rb->npre, sizeof(*rb->pre), u64_cmp);
	return 0;
}

/* Remember that value @gen of @key, at @off, should exist. */
static int cand_add(struct rebuild *rb, const char *key, size_t n,
		    uint64_t gen, uint64_t off, uint64_t ext)
{
	struct entry *e;

	if (rb->ncand == rb->capcand) {
		size_t cap = rb->capcand ? 2 * rb->capcand : 64;
		struct entry **v = realloc(rb->cand, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rb->cand = v;
		rb->capcand = cap;
	}
	e = swapio__entry_new(key, n);
	if (!e)
		return -ENOMEM;
	e->gen = gen;
	e->off = off;
	e->ext = ext;
	rb->cand[rb->ncand++] = e;
	return 0;
}

/* A PUT record's value, where no newer one is known: take it if intact. */
static int walk_put(swapio_store *s, const struct irec *r,
		    struct rebuild *rb)
{
	const struct entry *have = swapio__map_get(s, r->key, r->keylen);
	struct vhdr v = { .keylen = r->keylen, .gen = r->gen, .len = r->len,
			  .sum = r->sum, .flags = r->flags & VAL_SUM,
			  .block = s->block };

	if (have && have->gen == r->gen && !(have->flags & ENT_TOMB))
		((struct entry *)have)->flags |= ENT_SEEN;
	if (have && have->gen >= r->gen)
		return 0;
	if (r->len <= MAX_LEN && r->off < s->data_size) {
		v.ext = ext_bytes(s, r->len);
		memcpy(v.key, r->key, r->keylen);
		if (r->off + v.ext <= s->data_size &&
		    scan_payload_ok(s, &v, r->off, rb->buf, rb->bufsz) &&
		    scan_take(s, &v, r->off)) {
			have = swapio__map_get(s, r->key, r->keylen);
			if (have && have->gen == r->gen)
				((struct entry *)have)->flags |= ENT_SEEN;
			return 0;
		}
	}
	return cand_add(rb, r->key, r->keylen, r->gen, r->off,
			ext_bytes(s, SWAPIO_MIN(r->len, MAX_LEN)));
}

static int walk_rec(swapio_store *s, const struct irec *r, void *arg)
{
	struct rebuild *rb = arg;

	if (r->gen > GEN_MAX)
		return 0;	/* forged: believe nothing of it */
	if (r->gen > s->gen)
		s->gen = r->gen;
	if (r->type == REC_DEL && !rb->puts)
		swapio__apply_del(s, r->key, r->keylen, r->gen, true);
	else if (r->type == REC_PUT && rb->puts)
		return walk_put(s, r, rb);
	return 0;
}

/* Is all of [@off, @off + @len) free, no value taken in it? */
static bool all_free(const struct freelist *fl, uint64_t off, uint64_t len)
{
	size_t lo = 0, hi = fl->n;

	while (lo < hi) {	/* the last range starting at or before @off */
		size_t mid = lo + (hi - lo) / 2;

		if (fl->v[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && off - fl->v[lo - 1].off < fl->v[lo - 1].len &&
	       len <= fl->v[lo - 1].len - (off - fl->v[lo - 1].off);
}

/*
 * The values named by a damaged header or an unreadable PUT record that
 * nothing newer explains: counted once per key. Not one whose extent an
 * intact value now overlaps: two live values never overlap, so that one
 * was written after this one was freed (removed or replaced).
 */
static uint64_t lost_keys(swapio_store *s, struct rebuild *rb)
{
	uint64_t lost = 0;
	bool counted = false;

	if (rb->ncand)
		qsort(rb->cand, rb->ncand, sizeof(*rb->cand), key_cmp);
	for (size_t i = 0; i < rb->ncand; i++) {
		const struct entry *c = rb->cand[i];
		const struct entry *e = swapio__map_get(s, c->key, c->keylen);

		if (i && key_cmp(&rb->cand[i - 1], &rb->cand[i]))
			counted = false;
		if (!counted && (!e || e->gen < c->gen) &&
		    all_free(&s->fl, c->off, c->ext)) {
			lost++;
			counted = true;
		}
	}
	return lost;
}

/*
 * Drop the values older than the log's cover that no PUT record of the
 * compacted log names: removed or replaced before that compaction.
 */
static void cover_drop(swapio_store *s, uint64_t cover)
{
	struct entry *e, *next;

	for (size_t i = 0; i < s->nbuckets; i++)
		for (e = s->buckets[i]; e; e = next) {
			next = e->hnext;
			if (e->gen < cover && !(e->flags & (ENT_SEEN | ENT_TOMB)))
				swapio__apply_del(s, e->key, e->keylen, e->gen,
						  false);
			else
				e->flags &= ~ENT_SEEN;
		}
}

/* Values now in the map that a plain open did not have. */
static uint64_t found_keys(swapio_store *s, const struct rebuild *rb)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext)
			if (!(e->flags & ENT_TOMB) &&
			    !bsearch(&e->gen, rb->pre, rb->npre,
				     sizeof(*rb->pre), u64_cmp))
				n++;
	return n;
}

/*
 * Every 4 KiB boundary may start an extent. A header whose payload checks
 * out is taken and its extent skipped; overlaps and older generations of
 * a key lose. A header whose payload does not is remembered. Then the
 * records of the index that pass their checksum: DELs, then PUTs of
 * values the scan did not find. Then a fresh index is written.
 */
static int scan_data(swapio_store *s, struct rebuild *rb)
{
	uint64_t pos = 0, took;
	struct vhdr v;
	int ret = 0;

	while (!ret && pos + sizeof(v) <= s->data_size) {
		took = 0;
		if (read_exact(s, &v, sizeof(v), pos) && vhdr_valid(&v)) {
			if (scan_payload_ok(s, &v, pos, rb->buf, rb->bufsz))
				took = scan_take(s, &v, pos);
			else if (v.gen <= GEN_MAX && v.gen >= rb->cover)
				/* (an older one that was live has its PUT
				 * record in the snapshot: see walk_put) */
				ret = cand_add(rb, v.key, v.keylen, v.gen,
					       pos, v.ext);
			if (v.gen <= GEN_MAX && v.gen > s->gen)
				s->gen = v.gen;
		}
		pos += took ? took : MIN_BLOCK;
	}
	return ret;
}

int swapio__scan_rebuild(swapio_store *s, uint32_t def_block)
{
	struct rebuild rb = { .bufsz = 1u << 20 };
	uint64_t bad = 0;
	int ret;

	rb.buf = malloc(rb.bufsz);
	ret = rb.buf ? pre_collect(s, &rb) : -ENOMEM;
	if (!ret)
		ret = swapio__map_reset(s);
	if (!s->block)
		s->block = scan_block(s);
	if (!s->block)
		s->block = def_block;
	if (!ret)
		ret = swapio__space_init(s);
	rb.cover = swapio__log_cover(s);
	if (!ret)
		ret = scan_data(s, &rb);
	if (!ret)
		ret = swapio__log_walk(s, walk_rec, &rb, &bad);
	rb.puts = true;
	if (!ret)
		ret = swapio__log_walk(s, walk_rec, &rb, &bad);
	if (!ret) {
		cover_drop(s, rb.cover);
		s->rep.dropped = bad;
		s->rep.lost = lost_keys(s, &rb);
		swapio__tombs_drop(s, UINT64_MAX);
		s->rep.recovered = found_keys(s, &rb);
	}
	for (size_t i = 0; i < rb.ncand; i++)
		free(rb.cand[i]);
	free(rb.cand);
	free(rb.pre);
	free(rb.buf);
	s->gen_limit = s->gen;
	s->dropped = false;	/* the new log holds all there is */
	return ret ? ret : swapio__log_compact(s);
}
