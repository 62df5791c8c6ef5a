/* SPDX-License-Identifier: MIT */
/*
 * Concurrent puts, gets, removes and lists from several threads on one
 * store: each thread replaces its own keys and checks them byte for byte,
 * and all of them race on a few shared keys, where every read must return
 * one complete value (the generation is stored in its first 8 bytes and
 * the rest must match it). Run under ThreadSanitizer too (label "tsan").
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test_store_common.h"

#define THREADS		4
#define ROUNDS		150
#define SHARED		3
#define OWN_BASE	100

static swapio_store *store;
static atomic_long next_gen = 1;
static atomic_long shared_reads, shared_misses;

static size_t shared_len(int64_t gen)
{
	return 8 + (size_t)(gen * 2654435761u % 40000);
}

/* Shared values: 8 bytes of generation, then bytes derived from it. */
static void put_shared(unsigned int id)
{
	int64_t gen = atomic_fetch_add(&next_gen, 1);
	size_t len = shared_len(gen);
	unsigned char *buf = t_malloc(len);
	char key[64];
	int ret;

	memcpy(buf, &gen, 8);
	ts_fill(buf + 8, len - 8, id, (uint64_t)gen);
	ts_key(key, sizeof(key), id);
	ret = swapio_store_put(store, key, buf, len);
	if (ret)
		t_die("put shared: %s", swapio_strerror(ret));
	free(buf);
}

static void get_shared(unsigned int id)
{
	unsigned char *buf;
	int64_t size, gen;
	char key[64];
	int ret;

	ts_key(key, sizeof(key), id);
	size = swapio_store_size(store, key);
	if (size < 0)
		return;
	buf = t_malloc((size_t)size);
	ret = swapio_store_get(store, key, buf, (uint64_t)size);
	atomic_fetch_add(&shared_reads, 1);
	/* Replaced by another size, or removed, since we asked: fine. */
	if (ret == -EMSGSIZE || ret == -ENOENT) {
		atomic_fetch_add(&shared_misses, 1);
	} else if (ret) {
		t_die("get shared: %s", swapio_strerror(ret));
	} else {
		memcpy(&gen, buf, 8);
		if ((size_t)size != shared_len(gen) ||
		    ts_check(buf + 8, (size_t)size - 8, id, (uint64_t)gen))
			t_die("shared key %u: a mixed or wrong value", id);
	}
	free(buf);
}

/* Async put then get of one's own key, checked against its generation. */
static void own_round(unsigned int id, uint64_t gen)
{
	size_t len = 1 + (size_t)((id * 131 + gen * 7919) % 100000);
	unsigned char *src = t_malloc(len), *dst = t_malloc(len);
	swapio_store_op *op;
	char key[64];

	ts_key(key, sizeof(key), id);
	ts_fill(src, len, id, gen);
	if (swapio_store_submit_put(store, key, src, len, &op))
		t_die("submit put");
	if (swapio_store_op_wait(op, -1) != (int64_t)len)
		t_die("put wait");
	swapio_store_op_free(op);
	if (swapio_store_get(store, key, dst, len))
		t_die("get own");
	if (ts_check(dst, len, id, gen))
		t_die("own key %u gen %llu: wrong data", id,
		      (unsigned long long)gen);
	free(src);
	free(dst);
}

static void *worker(void *arg)
{
	const unsigned int t = (unsigned int)(uintptr_t)arg;
	char **keys;
	size_t n;

	for (uint64_t r = 1; r <= ROUNDS; r++) {
		own_round(OWN_BASE + t * 10 + (unsigned int)(r % 3), r);
		put_shared((unsigned int)(r + t) % SHARED);
		get_shared((unsigned int)(r * 7 + t) % SHARED);
		if (t == 0 && r % 10 == 0) {
			char key[64];

			ts_key(key, sizeof(key), (unsigned int)(r % SHARED));
			(void)swapio_store_remove(store, key);
		}
		if (t == 1 && r % 25 == 0) {
			if (swapio_store_list(store, &keys, &n))
				t_die("list");
			free(keys);
		}
	}
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	struct swapio_store_info info;
	swapio_handle *h;
	char *dir;

	t_engine();
	dir = t_tmpdir();
	h = t_handle((struct swapio_config){ .threads = 2 });
	store = ts_open(h, dir, NULL);
	for (uintptr_t i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			t_die("pthread_create");
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	swapio_store_info(store, &info);
	if (info.used_bytes + info.free_bytes != info.file_bytes)
		t_die("space accounting is off");
	/* Every own key ends at its last generation, also after a reopen. */
	swapio_store_close(store);
	store = ts_open(h, dir, NULL);
	for (unsigned int t = 0; t < THREADS; t++)
		for (uint64_t r = ROUNDS - 2; r <= ROUNDS; r++) {
			unsigned int id = OWN_BASE + t * 10 +
					  (unsigned int)(r % 3);
			size_t len = 1 + (size_t)((id * 131 + r * 7919) %
						  100000);

			if (ts_get_check(store, id, r, len))
				t_die("own key %u after reopen", id);
		}
	swapio_store_close(store);
	swapio_handle_destroy(h);
	t_rmdir(dir);
	printf("ok: %d threads x %d rounds; %ld shared reads (%ld raced)\n",
	       THREADS, ROUNDS, atomic_load(&shared_reads),
	       atomic_load(&shared_misses));
	return 0;
}
