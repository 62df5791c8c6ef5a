/* SPDX-License-Identifier: MIT */
/*
 * Recovery (SWAPIO_STORE_RECOVER): rebuild the map from the headers the
 * extents carry, when the index is damaged or missing, then write a fresh
 * log. Runs at open, before the store is shared.
 */
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

/*
 * Every 4 KiB boundary may start an extent. A header whose payload checks
 * out is taken and its extent skipped; overlaps and older generations of
 * a key lose. Then a fresh index is written.
 */
int swapio__scan_rebuild(swapio_store *s, uint32_t def_block)
{
	const size_t bufsz = 1u << 20;
	void *buf = malloc(bufsz);
	uint64_t pos = 0, took;
	struct vhdr v;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = swapio__map_reset(s);
	if (!s->block)
		s->block = scan_block(s);
	if (!s->block)
		s->block = def_block;
	if (!ret)
		ret = swapio__space_init(s);
	while (!ret && pos + sizeof(v) <= s->data_size) {
		took = 0;
		if (read_exact(s, &v, sizeof(v), pos) && vhdr_valid(&v) &&
		    scan_payload_ok(s, &v, pos, buf, bufsz))
			took = scan_take(s, &v, pos);
		pos += took ? took : MIN_BLOCK;
	}
	free(buf);
	s->gen_limit = s->gen;
	return ret ? ret : swapio__log_compact(s);
}
