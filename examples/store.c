/* SPDX-License-Identifier: MIT */
/*
 * swapio-store: tensors by key in a crash-safe store.
 *
 *   swapio-store DIR
 *
 * Opens (or creates) the store in DIR, puts eight 4 MiB "tensors" of
 * random floats asynchronously, syncs, closes, reopens it, lists the keys,
 * reads every tensor back and compares, replaces one, removes another and
 * prints the store's counters. Exit 0 when everything read back matches.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <swapio.h>

#define NR_TENSORS	8
#define TENSOR_FLOATS	(1u << 20)	/* 4 MiB of fp32 each */
#define TENSOR_BYTES	(TENSOR_FLOATS * sizeof(float))

static int fail(const char *what, int err)
{
	fprintf(stderr, "swapio-store: %s: %s (%s)\n", what,
		swapio_strerror(err), swapio_errname(err));
	return 1;
}

static void fill(float *t, unsigned int seed)
{
	srandom(seed);
	for (size_t i = 0; i < TENSOR_FLOATS; i++)
		t[i] = (float)random() / (float)RAND_MAX - 0.5f;
}

/* Put every tensor at once, then wait for all: the writes overlap. */
static int put_all(swapio_store *s, float *t[NR_TENSORS])
{
	swapio_store_op *op[NR_TENSORS] = { NULL };
	char key[32];
	int64_t n;
	int ret = 0;

	for (unsigned int i = 0; i < NR_TENSORS && !ret; i++) {
		snprintf(key, sizeof(key), "layer%u.weight", i);
		ret = swapio_store_submit_put(s, key, t[i], TENSOR_BYTES,
					      &op[i]);
	}
	for (unsigned int i = 0; i < NR_TENSORS; i++) {
		/* The put takes effect here, when its op is waited for. */
		if (op[i] && (n = swapio_store_op_wait(op[i], -1)) < 0 &&
		    !ret)
			ret = (int)n;
		swapio_store_op_free(op[i]);
	}
	return ret;
}

static int check_all(swapio_store *s, float *t[NR_TENSORS], float *back)
{
	char key[32];
	int ret;

	for (unsigned int i = 0; i < NR_TENSORS; i++) {
		snprintf(key, sizeof(key), "layer%u.weight", i);
		if (i == 1)	/* removed below, after the first check */
			continue;
		/* The length must be the stored one: ask if unknown. */
		if (swapio_store_size(s, key) != (int64_t)TENSOR_BYTES)
			return -EMSGSIZE;
		if ((ret = swapio_store_get(s, key, back, TENSOR_BYTES)))
			return ret;	/* -EBADMSG if the checksum fails */
		if (memcmp(back, t[i], TENSOR_BYTES)) {
			fprintf(stderr, "swapio-store: %s differs\n", key);
			return -EIO;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct swapio_store_info info;
	float *t[NR_TENSORS], *back;
	swapio_handle *h;
	swapio_store *s;
	char **keys;
	size_t nr;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: swapio-store DIR\n");
		return 2;
	}
	back = malloc(TENSOR_BYTES);
	for (unsigned int i = 0; i < NR_TENSORS; i++) {
		t[i] = malloc(TENSOR_BYTES);
		if (!t[i] || !back)
			return fail("memory", -ENOMEM);
		fill(t[i], i + 1);
	}
	if ((ret = swapio_handle_create(NULL, &h)))
		return fail("handle", ret);
	/* NULL config: grow on demand, checksums on, create if missing. */
	if ((ret = swapio_store_open(h, argv[1], NULL, &s)))
		return fail(argv[1], ret);
	if ((ret = put_all(s, t)) || (ret = swapio_store_sync(s)))
		return fail("put", ret);
	swapio_store_close(s);

	/* Everything synced survives a close, a crash or a power loss. */
	if ((ret = swapio_store_open(h, argv[1], NULL, &s)))
		return fail("reopen", ret);
	if ((ret = swapio_store_list(s, &keys, &nr)))
		return fail("list", ret);
	printf("%zu keys, from %s to %s\n", nr, nr ? keys[0] : "-",
	       nr ? keys[nr - 1] : "-");
	free(keys);		/* one block: the array and the strings */
	if (nr != NR_TENSORS)
		return fail("list", -EIO);
	fill(t[0], 100);	/* copy-on-write: never half old, half new */
	if ((ret = swapio_store_put(s, "layer0.weight", t[0], TENSOR_BYTES)))
		return fail("replace", ret);
	if ((ret = swapio_store_remove(s, "layer1.weight")))
		return fail("remove", ret);
	if (swapio_store_size(s, "layer1.weight") != -ENOENT)
		return fail("removed key", -EEXIST);
	if ((ret = check_all(s, t, back)))
		return fail("read back", ret);

	swapio_store_info(s, &info);
	printf("%llu values, %llu bytes in a %llu-byte data file: "
	       "all read back identical\n", (unsigned long long)info.keys,
	       (unsigned long long)info.value_bytes,
	       (unsigned long long)info.file_bytes);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	for (unsigned int i = 0; i < NR_TENSORS; i++)
		free(t[i]);
	free(back);
	return 0;
}
