// SPDX-License-Identifier: MIT
/*
 * tier.c - the block tier: batches of blocks by key over a store, run by
 * a thread of the tier's own (swapio.h, "Block tier").
 *
 * Threads and what each owns:
 * - Callers only queue: swapio_tier_submit() copies a batch into one
 *   allocation and appends it to t->sub under t->qlock; reap, wait, info
 *   and contains take t->qlock or t->mlock briefly. No caller ever waits
 *   for the tier's thread or for I/O.
 * - The tier's thread owns the batches once taken from t->sub, the slots
 *   (blocks at the drive) and every call on the store; it takes t->mlock
 *   only to change the map of keys (contains and info read it) and
 *   t->qlock only to take batches and post records.
 *
 * A batch lives until its last record is reaped and its last op has
 * ended: refs counts the thread's hold (dropped when no op of it is at
 * the drive any more and its record is out) and each record queued.
 *
 * The map of keys mirrors the store's: an entry per key with a block
 * (present) or a put in flight, in order of use (t->lru, oldest first),
 * with what the block takes on disk, which is what capacity bounds.
 */
#include "swapio.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NS_MAX		64
#define BATCH_MAX	65536u
#define SLOTS_DEFAULT	128u
#define SLOTS_MAX	4096u
#define POLL_MS		10	/* a handle's eventfd read by another user */

/* A link of the order of use; first in struct tent. */
struct lnode {
	struct lnode	*prev, *next;
};

struct tent {
	struct lnode	l;		/* t->lru while present */
	struct tent	*hnext;
	uint64_t	len;		/* the block's length, if present */
	uint64_t	disk;		/* what it takes on disk, if present */
	unsigned int	putting;	/* puts of the key in flight */
	/* Puts in submission order: the store lets the later submitted
	 * win, and a remove beat every put submitted before it. */
	uint64_t	seq;		/* the last put submitted */
	uint64_t	have;		/* the put whose block is present */
	uint64_t	cut;		/* puts up to this lost to a remove */
	bool		present;
	uint16_t	keylen;
	char		key[];
};

struct rec {
	struct rec	*next;
	struct batch	*b;
	struct swapio_tier_done d;
};

struct batch {
	struct batch	*next;		/* t->sub, then t->fifo */
	struct batch	*anext;		/* t->all */
	uint64_t	id;
	uint64_t	deadline;	/* ns, monotonic; 0: none */
	unsigned int	verb, n;
	unsigned int	started;	/* blocks begun */
	unsigned int	left;		/* blocks without a result */
	unsigned int	running;	/* ops at the drive */
	unsigned int	ok;
	unsigned int	refs;		/* under t->qlock */
	bool		finished;	/* its first record is out */
	bool		held;		/* ... and said HELD */
	bool		expired;	/* its deadline finished it */
	struct rec	rec[2];		/* first, and RELEASED */
	int32_t		*res;
	struct swapio_tier_block *v;	/* keys copied after it */
};

struct slot {
	swapio_store_op	*op;		/* NULL: free */
	struct batch	*b;
	struct tent	*e;
	unsigned int	i;
	uint64_t	disk;		/* PUT: what the block will take */
	uint64_t	seq;		/* PUT: its place among the key's */
};

struct swapio_tier {
	swapio_store	*s;
	unsigned int	gen;
	uint32_t	block;		/* the store's extent granularity */
	uint64_t	capacity, high, low;
	/* t->qlock: the queues and the counters callers read */
	pthread_mutex_t	qlock;
	pthread_cond_t	qcond;		/* a record was posted */
	struct batch	*sub, **sub_tail;
	struct rec	*recs, **recs_tail;
	uint64_t	next_id;
	bool		stop;
	struct swapio_tier_info info;
	/* t->mlock: the map (the thread writes, callers read) */
	pthread_mutex_t	mlock;
	struct tent	**bucket;
	size_t		nbucket, nkeys;
	struct lnode	lru;		/* sentinel: lru.next is the oldest */
	uint64_t	disk;		/* present blocks */
	uint64_t	nblocks;	/* ... and how many */
	uint64_t	reserved;	/* puts in flight */
	/* the thread's own */
	pthread_t	thread;
	struct batch	*fifo, **fifo_tail, *all;
	struct slot	*slot;
	unsigned int	nslot, busy;
	int		efd;		/* records wait */
	int		wake;		/* a batch was queued, or stop */
	struct pollfd	*pfd;		/* wake, then each handle's eventfd */
	unsigned int	npfd;
};

/* ---- the map ---- */

static size_t key_hash(const char *key, size_t len)
{
	return (size_t)swapio_store_checksum(key, len);
}

static struct tent *map_find(const swapio_tier *t, const char *key)
{
	const size_t len = strlen(key);
	struct tent *e;

	e = t->bucket[key_hash(key, len) & (t->nbucket - 1)];
	for (; e; e = e->hnext)
		if (e->keylen == len && !memcmp(e->key, key, len))
			return e;
	return NULL;
}

/* Double the buckets; a failure only leaves chains longer. */
static void map_grow(swapio_tier *t)
{
	const size_t n = t->nbucket * 2;
	struct tent **b = calloc(n, sizeof(*b)), *e, *next;

	if (!b)
		return;
	for (size_t i = 0; i < t->nbucket; i++)
		for (e = t->bucket[i]; e; e = next) {
			next = e->hnext;
			e->hnext = b[key_hash(e->key, e->keylen) & (n - 1)];
			b[key_hash(e->key, e->keylen) & (n - 1)] = e;
		}
	free(t->bucket);
	t->bucket = b;
	t->nbucket = n;
}

/* The entry of @key, made (absent, not in the LRU) if missing. Under
 * mlock. NULL: no memory. */
static struct tent *map_get(swapio_tier *t, const char *key)
{
	const size_t len = strlen(key);
	struct tent *e = map_find(t, key), **head;

	if (e)
		return e;
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, len);
	e->keylen = (uint16_t)len;
	if (t->nkeys >= t->nbucket)
		map_grow(t);
	head = &t->bucket[key_hash(key, len) & (t->nbucket - 1)];
	e->hnext = *head;
	*head = e;
	t->nkeys++;
	return e;
}

static void lru_unlink(struct tent *e)
{
	e->l.prev->next = e->l.next;
	e->l.next->prev = e->l.prev;
	e->l.prev = e->l.next = NULL;
}

static void lru_push(swapio_tier *t, struct tent *e)
{
	e->l.prev = t->lru.prev;
	e->l.next = &t->lru;
	t->lru.prev->next = &e->l;
	t->lru.prev = &e->l;
}

/* Under mlock: @e has no block any more; dropped if nothing holds it. */
static void map_absent(swapio_tier *t, struct tent *e)
{
	struct tent **p;

	if (e->present) {
		lru_unlink(e);
		t->disk -= e->disk;
		t->nblocks--;
		e->present = false;
		e->disk = 0;
	}
	if (e->putting)
		return;
	p = &t->bucket[key_hash(e->key, e->keylen) & (t->nbucket - 1)];
	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	t->nkeys--;
	free(e);
}

/* Under mlock: @e holds a block of @len bytes taking @disk. */
static void map_present(swapio_tier *t, struct tent *e, uint64_t len,
			uint64_t disk)
{
	if (e->present) {
		lru_unlink(e);
		t->disk -= e->disk;
		t->nblocks--;
	}
	t->nblocks++;
	e->present = true;
	e->len = len;
	e->disk = disk;
	t->disk += disk;
	lru_push(t, e);
}

/* What a block of @len bytes takes in the store: a header block, then
 * the payload padded to the block. */
static uint64_t disk_of(const swapio_tier *t, uint64_t len)
{
	return t->block + SWAPIO_ALIGN_UP(len, t->block);
}

/* ---- records ---- */

/* Drop a hold on @b (under t->qlock, or once the thread is gone); the
 * last frees it. */
static void batch_put(struct batch *b)
{
	if (--b->refs == 0)
		free(b);
}

/* Post record @k of @b with @flags (the thread). */
static void post(swapio_tier *t, struct batch *b, unsigned int k,
		 uint32_t flags)
{
	const uint64_t one = 1;
	struct rec *r = &b->rec[k];

	r->next = NULL;
	r->b = b;
	r->d = (struct swapio_tier_done){ .batch = b->id, .n = b->n,
					  .ok = b->ok, .flags = flags };
	pthread_mutex_lock(&t->qlock);
	b->refs++;
	*t->recs_tail = r;
	t->recs_tail = &r->next;
	pthread_cond_broadcast(&t->qcond);
	pthread_mutex_unlock(&t->qlock);
	(void)!write(t->efd, &one, sizeof(one));
}

/*
 * The batch's records: the first when every block has its result (or at
 * the deadline), a second (RELEASED) when a HELD batch's last op ends.
 * True once the thread is done with @b.
 */
static bool settle(swapio_tier *t, struct batch *b)
{
	if (!b->finished && b->left == 0) {
		b->finished = true;
		b->held = b->running > 0;
		post(t, b, 0, (b->held ? SWAPIO_TIER_HELD : 0) |
			      (b->expired ? SWAPIO_TIER_EXPIRED : 0));
	}
	if (!b->finished || b->running > 0)
		return false;
	if (b->held)
		post(t, b, 1, SWAPIO_TIER_RELEASED);
	return true;
}

/* ---- blocks ---- */

static void result(swapio_tier *t, struct batch *b, unsigned int i, int err)
{
	if (b->res[i] != INT32_MIN)
		return;		/* its deadline gave it one already */
	b->res[i] = err;
	b->left--;
	if (!err) {
		b->ok++;
		return;
	}
	/* A lookup's or a remove's -ENOENT is an answer, not a failure. */
	if (b->verb == SWAPIO_TIER_EXISTS || b->verb == SWAPIO_TIER_REMOVE ||
	    err == -ETIMEDOUT)
		return;
	pthread_mutex_lock(&t->qlock);
	if (err == -ENOENT || err == -EBADMSG)
		t->info.misses++;
	else
		t->info.failed++;
	pthread_mutex_unlock(&t->qlock);
}

/* Evict the oldest blocks until @need more bytes fit under the low
 * watermark (or none is left to evict). Returns how many went. */
static unsigned int evict(swapio_tier *t, uint64_t need, bool force)
{
	unsigned int n = 0;
	struct lnode *ln;
	struct tent *e;
	char key[SWAPIO_STORE_KEY_MAX + 1];

	for (;;) {
		pthread_mutex_lock(&t->mlock);
		/* Not a key with a put in flight: the remove would undo
		 * that put too. */
		for (ln = t->lru.next; ln != &t->lru &&
		     ((struct tent *)ln)->putting;)
			ln = ln->next;
		e = (struct tent *)ln;	/* l is its first member */
		if (ln == &t->lru || (!force && (!t->capacity ||
		    t->disk + t->reserved + need <= t->low))) {
			pthread_mutex_unlock(&t->mlock);
			return n;
		}
		memcpy(key, e->key, e->keylen + 1u);
		map_absent(t, e);
		pthread_mutex_unlock(&t->mlock);
		/* A remove that fails leaves the block in the store but
		 * out of the map: a later put of the key replaces it. */
		(void)swapio_store_remove(t->s, key);
		n++;
		pthread_mutex_lock(&t->qlock);
		t->info.evicted++;
		pthread_mutex_unlock(&t->qlock);
		if (force)
			return n;
	}
}

static void start_put(swapio_tier *t, struct batch *b, unsigned int i,
		      struct slot *sl)
{
	const struct swapio_tier_block *bk = &b->v[i];
	const uint64_t disk = disk_of(t, bk->len);
	struct tent *e;
	int ret;

	if (t->capacity && disk > t->low) {
		result(t, b, i, -ENOSPC);
		return;
	}
	if (t->capacity && t->disk + t->reserved + disk > t->high)
		evict(t, disk, false);
	for (;;) {
		ret = swapio_store_submit_put(t->s, bk->key, bk->buf, bk->len,
					      &sl->op);
		/* The disk is full before the capacity is: make room. */
		if (ret != -ENOSPC || !evict(t, disk, true))
			break;
	}
	if (ret < 0) {
		result(t, b, i, ret);
		return;
	}
	pthread_mutex_lock(&t->mlock);
	e = map_get(t, bk->key);
	if (e) {
		e->putting++;
		sl->seq = ++e->seq;
		t->reserved += disk;
	}
	pthread_mutex_unlock(&t->mlock);
	if (!e) {
		/* No entry to commit to: let the put finish, count it
		 * failed, and leave the key to a later open. */
		swapio_store_op_free(sl->op);
		sl->op = NULL;
		result(t, b, i, -ENOMEM);
		return;
	}
	sl->e = e;
	sl->disk = disk;
}

static void start_get(swapio_tier *t, struct batch *b, unsigned int i,
		      struct slot *sl)
{
	const struct swapio_tier_block *bk = &b->v[i];
	struct tent *e;
	int ret;

	pthread_mutex_lock(&t->mlock);
	e = map_find(t, bk->key);
	ret = !e || !e->present ? -ENOENT :
	      e->len != bk->len ? -EMSGSIZE : 0;
	pthread_mutex_unlock(&t->mlock);
	if (!ret)
		ret = swapio_store_submit_get(t->s, bk->key, bk->buf, bk->len,
					      &sl->op);
	if (ret < 0)
		result(t, b, i, ret);
}

static void do_remove(swapio_tier *t, struct batch *b, unsigned int i)
{
	const char *key = b->v[i].key;
	struct tent *e;
	int ret = swapio_store_remove(t->s, key);

	if (!ret || ret == -ENOENT) {
		pthread_mutex_lock(&t->mlock);
		e = map_find(t, key);
		if (e) {
			/* The puts in flight lose to it, as in the store. */
			e->cut = e->seq;
			if (e->present)
				ret = 0;
			map_absent(t, e);
		}
		pthread_mutex_unlock(&t->mlock);
	}
	result(t, b, i, ret);
}

/* Start block i of @b: in a slot (PUT, GET) or at once. */
static void start(swapio_tier *t, struct batch *b, unsigned int i)
{
	const char *key = b->v[i].key;
	struct slot *sl = NULL;
	size_t len = strnlen(key, SWAPIO_STORE_KEY_MAX + 1);

	if (len == 0 || len > SWAPIO_STORE_KEY_MAX) {
		result(t, b, i, -EINVAL);
		return;
	}
	switch (b->verb) {
	case SWAPIO_TIER_EXISTS:
		result(t, b, i, swapio_tier_contains(t, key) ? 0 : -ENOENT);
		return;
	case SWAPIO_TIER_REMOVE:
		do_remove(t, b, i);
		return;
	}
	for (unsigned int k = 0; k < t->nslot; k++)
		if (!t->slot[k].op) {
			sl = &t->slot[k];
			break;
		}
	*sl = (struct slot){ .b = b, .i = i };
	if (b->verb == SWAPIO_TIER_PUT)
		start_put(t, b, i, sl);
	else
		start_get(t, b, i, sl);
	if (sl->op) {
		t->busy++;
		b->running++;
	}
}

/* The op of @sl ended: its result, and the map. */
static void finish(swapio_tier *t, struct slot *sl)
{
	struct batch *b = sl->b;
	const struct swapio_tier_block *bk = &b->v[sl->i];
	int64_t r = swapio_store_op_wait(sl->op, 0);
	struct tent *e;

	if (r == -ETIMEDOUT)
		return;		/* not yet after all */
	swapio_store_op_free(sl->op);
	sl->op = NULL;
	t->busy--;
	b->running--;
	if (b->verb == SWAPIO_TIER_PUT) {
		pthread_mutex_lock(&t->mlock);
		e = sl->e;
		e->putting--;
		t->reserved -= sl->disk;
		if (r >= 0 && sl->seq > e->cut && sl->seq > e->have) {
			e->have = sl->seq;
			map_present(t, e, bk->len, sl->disk);
		} else if (!e->present) {
			map_absent(t, e);
		}
		pthread_mutex_unlock(&t->mlock);
	} else if (r == -EBADMSG || r == -EIO) {
		/* Never hand it out again: drop it, unless a newer put of
		 * the key is in flight (a remove now would undo it). */
		pthread_mutex_lock(&t->mlock);
		e = map_find(t, bk->key);
		if (e && !e->putting)
			map_absent(t, e);
		else
			e = NULL;
		pthread_mutex_unlock(&t->mlock);
		if (e)
			(void)swapio_store_remove(t->s, bk->key);
	} else if (r >= 0) {
		pthread_mutex_lock(&t->mlock);
		e = map_find(t, bk->key);
		if (e && e->present) {
			lru_unlink(e);
			lru_push(t, e);
		}
		pthread_mutex_unlock(&t->mlock);
	}
	pthread_mutex_lock(&t->qlock);
	if (r >= 0 && b->verb == SWAPIO_TIER_PUT) {
		t->info.puts++;
		t->info.written_bytes += bk->len;
	} else if (r >= 0) {
		t->info.hits++;
		t->info.read_bytes += bk->len;
	} else if (r == -EBADMSG) {
		t->info.bad_checksums++;
	}
	pthread_mutex_unlock(&t->qlock);
	result(t, b, sl->i, r < 0 ? (int)r : 0);
}

/* ---- the thread ---- */

/* Batches past their deadline: finish them now. Returns the ns to the
 * nearest deadline still ahead (UINT64_MAX: none). */
static uint64_t expire(swapio_tier *t)
{
	const uint64_t now = swapio__now_ns();
	uint64_t next = UINT64_MAX;
	struct batch *b;

	for (b = t->all; b; b = b->anext) {
		if (b->finished || !b->deadline)
			continue;
		if (b->deadline > now) {
			next = SWAPIO_MIN(next, b->deadline - now);
			continue;
		}
		for (unsigned int i = 0; i < b->n; i++)
			if (b->res[i] == INT32_MIN)
				result(t, b, i, -ETIMEDOUT);
		pthread_mutex_lock(&t->qlock);
		t->info.queued -= b->n - b->started;
		t->info.expired++;
		pthread_mutex_unlock(&t->qlock);
		b->started = b->n;
		b->expired = true;
	}
	return next;
}

/* Take what callers queued; true if the tier is to stop. */
static bool take(swapio_tier *t)
{
	struct batch *b, *next;
	bool stop;

	pthread_mutex_lock(&t->qlock);
	b = t->sub;
	t->sub = NULL;
	t->sub_tail = &t->sub;
	stop = t->stop;
	pthread_mutex_unlock(&t->qlock);
	for (; b; b = next) {
		next = b->next;
		b->next = NULL;
		*t->fifo_tail = b;
		t->fifo_tail = &b->next;
		b->anext = t->all;
		t->all = b;
	}
	return stop;
}

/* One turn: start what fits, finish what ended, settle. True if
 * anything moved. */
static bool turn(swapio_tier *t)
{
	bool moved;
	unsigned int started = 0, ended = 0;
	struct batch *b, **p;

	while (t->fifo && t->busy < t->nslot) {
		b = t->fifo;
		if (b->started < b->n && !b->finished) {
			start(t, b, b->started++);
			started++;
			continue;
		}
		t->fifo = b->next;
		if (!t->fifo)
			t->fifo_tail = &t->fifo;
	}
	for (unsigned int k = 0; k < t->nslot && t->busy; k++)
		if (t->slot[k].op && swapio_store_op_done(t->slot[k].op) > 0) {
			finish(t, &t->slot[k]);
			ended++;
		}
	/* The counters callers read, once a turn rather than per block. */
	if (started || ended) {
		pthread_mutex_lock(&t->qlock);
		t->info.queued -= started;
		t->info.inflight = t->busy;
		pthread_mutex_unlock(&t->qlock);
	}
	moved = started || ended;
	for (p = &t->all; (b = *p);) {
		if (settle(t, b)) {
			*p = b->anext;
			pthread_mutex_lock(&t->qlock);
			batch_put(b);
			pthread_mutex_unlock(&t->qlock);
			moved = true;
		} else {
			p = &b->anext;
		}
	}
	return moved;
}

static void *tier_thread(void *arg)
{
	swapio_tier *t = arg;
	uint64_t next, v;
	int ms;

	for (;;) {
		const bool stop = take(t);

		next = expire(t);
		if (turn(t))
			continue;
		if (stop && !t->all)
			break;
		if (next != UINT64_MAX)
			ms = (int)SWAPIO_MIN(next / 1000000u + 1, INT_MAX);
		else
			ms = -1;
		if (t->busy && (ms < 0 || ms > POLL_MS))
			ms = POLL_MS;
		if (t->fifo && t->busy < t->nslot)
			ms = 0;
		if (poll(t->pfd, t->npfd, ms) > 0)
			for (unsigned int k = 0; k < t->npfd; k++)
				if (t->pfd[k].revents & POLLIN)
					(void)!read(t->pfd[k].fd, &v, sizeof(v));
	}
	return NULL;
}

/* ---- the calls ---- */

static int ns_check(const char *ns)
{
	size_t n = ns ? strlen(ns) : 0;

	if (n < 1 || n > NS_MAX || ns[0] == '.')
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!((ns[i] >= 'a' && ns[i] <= 'z') ||
		      (ns[i] >= 'A' && ns[i] <= 'Z') ||
		      (ns[i] >= '0' && ns[i] <= '9') ||
		      ns[i] == '.' || ns[i] == '_' || ns[i] == '-'))
			goto bad;
	return 0;
bad:
	return swapio__detail(-EINVAL, "tier namespace \"%.80s\": 1 to %d "
			      "of [A-Za-z0-9._-], not starting with '.'",
			      ns ? ns : "(null)", NS_MAX);
}

/* Every key of the store into the map, oldest first as listed. */
static int load_keys(swapio_tier *t)
{
	char **keys;
	size_t n;
	int64_t len;
	struct tent *e;
	int ret = swapio_store_list(t->s, &keys, &n);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		len = swapio_store_size(t->s, keys[i]);
		if (len < 0)
			continue;
		e = map_get(t, keys[i]);
		if (!e) {
			ret = -ENOMEM;
			break;
		}
		map_present(t, e, (uint64_t)len, disk_of(t, (uint64_t)len));
	}
	free(keys);
	return ret;
}

/* @pct % of @v, without overflow. */
static uint64_t pct(uint64_t v, uint32_t pct)
{
	return v / 100 * pct + v % 100 * pct / 100;
}

static int add_efd(swapio_tier *t, swapio_handle *h)
{
	int fd = swapio_handle_eventfd(h);

	if (fd < 0)
		return fd;
	for (unsigned int k = 0; k < t->npfd; k++)
		if (t->pfd[k].fd == fd)
			return 0;
	t->pfd[t->npfd++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	return 0;
}

static void tier_free(swapio_tier *t)
{
	struct tent *e, *next;

	for (size_t i = 0; t->bucket && i < t->nbucket; i++)
		for (e = t->bucket[i]; e; e = next) {
			next = e->hnext;
			free(e);
		}
	free(t->bucket);
	free(t->slot);
	free(t->pfd);
	if (t->efd >= 0)
		close(t->efd);
	if (t->wake >= 0)
		close(t->wake);
	pthread_cond_destroy(&t->qcond);
	pthread_mutex_destroy(&t->mlock);
	pthread_mutex_destroy(&t->qlock);
	free(t);
}

int swapio_tier_open(const struct swapio_store_drive *drives, unsigned int nr,
		     const char *ns, const struct swapio_tier_config *cfg,
		     swapio_tier **out)
{
	SWAPIO_KEEP_ERRNO;
	static const struct swapio_tier_config defaults;
	struct swapio_store_drive dv[SWAPIO_STORE_DRIVES_MAX];
	char *paths[SWAPIO_STORE_DRIVES_MAX] = { NULL };
	struct swapio_store_config sc = { 0 };
	struct swapio_store_info si;
	pthread_condattr_t ca;
	swapio_tier *t;
	unsigned int i;
	int ret, fd;

	swapio__detail_clear();
	if (!cfg)
		cfg = &defaults;
	if (!drives || !out || nr == 0 || nr > SWAPIO_STORE_DRIVES_MAX ||
	    cfg->high_pct > 100 || cfg->low_pct > 100 ||
	    (cfg->high_pct && cfg->low_pct && cfg->low_pct > cfg->high_pct) ||
	    cfg->max_inflight > SLOTS_MAX ||
	    (cfg->flags & ~(uint32_t)(SWAPIO_STORE_NO_CHECKSUM |
				      SWAPIO_STORE_SHARED)))
		return -EINVAL;
	for (i = 0; i < SWAPIO_ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	ret = ns_check(ns);
	if (ret < 0)
		return ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->efd = t->wake = -1;
	pthread_mutex_init(&t->qlock, NULL);
	pthread_mutex_init(&t->mlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->qcond, &ca);
	pthread_condattr_destroy(&ca);
	t->gen = swapio__fork_gen();
	t->sub_tail = &t->sub;
	t->recs_tail = &t->recs;
	t->fifo_tail = &t->fifo;
	t->lru.next = t->lru.prev = &t->lru;
	t->next_id = 1;
	t->nslot = cfg->max_inflight ? cfg->max_inflight : SLOTS_DEFAULT;
	t->nbucket = 1024;
	t->bucket = calloc(t->nbucket, sizeof(*t->bucket));
	t->slot = calloc(t->nslot, sizeof(*t->slot));
	t->pfd = calloc(nr + 1, sizeof(*t->pfd));
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!t->bucket || !t->slot || !t->pfd) {
		ret = -ENOMEM;
		goto err;
	}
	if (t->efd < 0 || t->wake < 0) {
		ret = -errno;
		goto err;
	}
	t->pfd[t->npfd++] = (struct pollfd){ .fd = t->wake, .events = POLLIN };

	/* Each drive's root, vetted (and made) before the store goes in. */
	for (i = 0; i < nr; i++) {
		if (!drives[i].h || !drives[i].dir) {
			ret = -EINVAL;
			goto err;
		}
		fd = swapio__dir_open(drives[i].dir, true,
				      cfg->flags & SWAPIO_STORE_SHARED ?
				      SWAPIO_DIR_MODE_SHARED : SWAPIO_DIR_MODE);
		if (fd < 0) {
			ret = fd;
			goto err;
		}
		close(fd);
		paths[i] = malloc(strlen(drives[i].dir) + strlen(ns) + 2);
		if (!paths[i]) {
			ret = -ENOMEM;
			goto err;
		}
		strcpy(paths[i], drives[i].dir);
		strcat(paths[i], "/");
		strcat(paths[i], ns);
		dv[i] = (struct swapio_store_drive){ .h = drives[i].h,
						     .dir = paths[i] };
		ret = add_efd(t, drives[i].h);
		if (ret < 0)
			goto err;
	}
	sc.flags = cfg->flags;
	sc.stripe_unit = cfg->stripe_unit;
	ret = swapio_store_open_multi(dv, nr, &sc, &t->s, NULL);
	if (ret == SWAPIO_EBADSTORE) {
		/* A cache whose index is damaged is rebuilt from the blocks'
		 * own headers: every intact block comes back. */
		sc.flags |= SWAPIO_STORE_RECOVER;
		ret = swapio_store_open_multi(dv, nr, &sc, &t->s, NULL);
	}
	if (ret < 0)
		goto err;
	swapio_store_info(t->s, &si);
	t->block = si.block;
	t->capacity = cfg->capacity;
	t->high = pct(cfg->capacity, cfg->high_pct ? cfg->high_pct : 95);
	t->low = pct(cfg->capacity, cfg->low_pct ? cfg->low_pct : 90);
	if (t->low > t->high)
		t->low = t->high;
	ret = load_keys(t);
	if (ret < 0)
		goto err;
	ret = -pthread_create(&t->thread, NULL, tier_thread, t);
	if (ret < 0)
		goto err;
	for (i = 0; i < nr; i++)
		free(paths[i]);
	*out = t;
	return 0;

err:
	if (t->s)
		swapio_store_close(t->s);
	for (i = 0; i < nr; i++)
		free(paths[i]);
	tier_free(t);
	return ret;
}

void swapio_tier_close(swapio_tier *t)
{
	SWAPIO_KEEP_ERRNO;
	const uint64_t one = 1;
	struct rec *r, *next;

	if (!t || swapio__forked(t->gen))
		return;
	pthread_mutex_lock(&t->qlock);
	t->stop = true;
	pthread_mutex_unlock(&t->qlock);
	(void)!write(t->wake, &one, sizeof(one));
	pthread_join(t->thread, NULL);
	for (r = t->recs; r; r = next) {
		next = r->next;
		batch_put(r->b);
	}
	swapio_store_close(t->s);
	tier_free(t);
}

int64_t swapio_tier_submit(swapio_tier *t, unsigned int verb,
			   const struct swapio_tier_block *blocks,
			   unsigned int n, int32_t *results, int timeout_ms)
{
	SWAPIO_KEEP_ERRNO;
	const uint64_t one = 1;
	size_t keys = 0, len;
	struct batch *b;
	char *p;
	int64_t id;

	if (!t || !blocks || !results || n == 0 || n > BATCH_MAX ||
	    verb < SWAPIO_TIER_PUT || verb > SWAPIO_TIER_REMOVE)
		return -EINVAL;
	if (swapio__forked(t->gen))
		return SWAPIO_EFORKED;
	for (unsigned int i = 0; i < n; i++) {
		if (!blocks[i].key || ((verb == SWAPIO_TIER_PUT ||
		     verb == SWAPIO_TIER_GET) && !blocks[i].buf &&
		    blocks[i].len))
			return -EINVAL;
		keys += strnlen(blocks[i].key, SWAPIO_STORE_KEY_MAX + 1) + 1;
	}
	b = malloc(sizeof(*b) + n * sizeof(*b->v) + keys);
	if (!b)
		return -ENOMEM;
	*b = (struct batch){ .verb = verb, .n = n, .left = n, .refs = 1,
			     .res = results };
	b->v = (struct swapio_tier_block *)(b + 1);
	p = (char *)(b->v + n);
	for (unsigned int i = 0; i < n; i++) {
		/* A key too long is kept too long (cut, unterminated
		 * within bounds) so that the thread refuses it. */
		len = strnlen(blocks[i].key, SWAPIO_STORE_KEY_MAX + 1);
		memcpy(p, blocks[i].key, len);
		p[len] = '\0';
		b->v[i] = blocks[i];
		b->v[i].key = p;
		p += len + 1;
		results[i] = INT32_MIN;	/* not yet */
	}
	if (timeout_ms >= 0)
		b->deadline = swapio__now_ns() +
			      (uint64_t)timeout_ms * 1000000u + 1;
	pthread_mutex_lock(&t->qlock);
	id = (int64_t)t->next_id++;
	b->id = (uint64_t)id;
	*t->sub_tail = b;
	t->sub_tail = &b->next;
	t->info.queued += n;
	pthread_mutex_unlock(&t->qlock);
	(void)!write(t->wake, &one, sizeof(one));
	return id;
}

int swapio_tier_reap(swapio_tier *t, struct swapio_tier_done *out,
		     unsigned int max)
{
	SWAPIO_KEEP_ERRNO;
	struct rec *r;
	uint64_t v;
	bool more;
	int n = 0;

	if (!t || (!out && max))
		return -EINVAL;
	if (swapio__forked(t->gen))
		return SWAPIO_EFORKED;
	(void)!read(t->efd, &v, sizeof(v));
	pthread_mutex_lock(&t->qlock);
	while ((r = t->recs) && (unsigned int)n < max) {
		t->recs = r->next;
		out[n++] = r->d;
		batch_put(r->b);
	}
	if (!t->recs)
		t->recs_tail = &t->recs;
	more = t->recs != NULL;
	pthread_mutex_unlock(&t->qlock);
	/* More left than @max: keep the eventfd readable. */
	if (more) {
		v = 1;
		(void)!write(t->efd, &v, sizeof(v));
	}
	return n;
}

int swapio_tier_wait(swapio_tier *t, int timeout_ms)
{
	struct timespec dl = swapio__deadline(timeout_ms < 0 ? 0 : timeout_ms);
	int ret = 0;

	if (!t)
		return -EINVAL;
	if (swapio__forked(t->gen))
		return SWAPIO_EFORKED;
	pthread_mutex_lock(&t->qlock);
	while (!t->recs && ret == 0)
		ret = timeout_ms < 0 ? pthread_cond_wait(&t->qcond, &t->qlock)
		      : pthread_cond_timedwait(&t->qcond, &t->qlock, &dl);
	ret = t->recs ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&t->qlock);
	return ret;
}

int swapio_tier_eventfd(swapio_tier *t)
{
	if (!t)
		return -EINVAL;
	return swapio__forked(t->gen) ? SWAPIO_EFORKED : t->efd;
}

int swapio_tier_contains(swapio_tier *t, const char *key)
{
	struct tent *e;
	int ret;

	if (!t || !key || swapio__forked(t->gen) ||
	    strnlen(key, SWAPIO_STORE_KEY_MAX + 1) > SWAPIO_STORE_KEY_MAX)
		return 0;
	pthread_mutex_lock(&t->mlock);
	e = map_find(t, key);
	ret = e && e->present;
	pthread_mutex_unlock(&t->mlock);
	return ret;
}

void swapio_tier_info(swapio_tier *t, struct swapio_tier_info *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!t || swapio__forked(t->gen))
		return;
	pthread_mutex_lock(&t->qlock);
	*out = t->info;
	pthread_mutex_unlock(&t->qlock);
	pthread_mutex_lock(&t->mlock);
	out->blocks = t->nblocks;
	out->disk_bytes = t->disk;
	pthread_mutex_unlock(&t->mlock);
	out->capacity = t->capacity;
}
