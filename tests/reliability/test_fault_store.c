/* SPDX-License-Identifier: MIT */
/*
 * The store under injected faults. Puts that fail with EIO or ENOSPC
 * (every one, or some of them, sync or async) change nothing: every key
 * stored before keeps reading back its last successful value, in the same
 * session and after a reopen, and the failed puts leave no space behind.
 * EINTR, EAGAIN and short transfers under puts and gets are invisible. A
 * get that fails reports the error and leaves the key intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_fault.h"
#include "test_store_common.h"

#define NR_KEYS		24
#define MAX_VAL		(300u << 10)

struct model {
	size_t		len[NR_KEYS];	/* 0: key absent */
	uint64_t	seed[NR_KEYS];	/* t_fill_random()'s seed */
};

struct env {
	char		*dir;
	char		*store;		/* new for each populate() */
	unsigned int	nr_stores;
	struct model	m;
};

static int env_setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->dir = t_tmpdir();
	*state = env;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *env = *state;

	free(env->store);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

static void key_of(char *key, size_t n, unsigned int i)
{
	snprintf(key, n, "layer.%u/param", i);
}

static size_t len_of(uint64_t seed)
{
	return 1 + (size_t)(seed * 7919u % MAX_VAL);	/* odd sizes too */
}

static swapio_store *store_open(swapio_handle *h, const char *dir)
{
	swapio_store *s;
	int ret = ts_store_open(h, dir, NULL, &s);

	if (ret)
		t_die("swapio_store_open(%s): %s", dir, swapio_strerror(ret));
	return s;
}

/* Put value @seed under key @i; on success the model follows. */
static int put(swapio_store *s, struct model *m, unsigned int i,
	       uint64_t seed)
{
	size_t len = len_of(seed);
	unsigned char *buf = t_random_buf(len, seed);
	char key[64];
	int ret;

	key_of(key, sizeof(key), i);
	ret = swapio_store_put(s, key, buf, len);
	if (!ret) {
		m->len[i] = len;
		m->seed[i] = seed;
	}
	free(buf);
	return ret;
}

static void check_key(swapio_store *s, const struct model *m,
		      unsigned int i)
{
	unsigned char *want, *got;
	char key[64];

	key_of(key, sizeof(key), i);
	if (!m->len[i]) {
		assert_int_equal(swapio_store_size(s, key), -ENOENT);
		return;
	}
	want = t_random_buf(m->len[i], m->seed[i]);
	got = t_zalloc(m->len[i]);
	assert_int_equal(swapio_store_size(s, key), m->len[i]);
	assert_int_equal(swapio_store_get(s, key, got, m->len[i]), 0);
	assert_memory_equal(want, got, m->len[i]);
	free(want), free(got);
}

/* Every key holds exactly what the model says, and no other key exists. */
static void check_model(swapio_store *s, const struct model *m)
{
	struct swapio_store_info info;
	unsigned int present = 0;

	for (unsigned int i = 0; i < NR_KEYS; i++) {
		check_key(s, m, i);
		present += m->len[i] != 0;
	}
	swapio_store_info(s, &info);
	assert_int_equal(info.keys, present);
}

/* A new store with every other key, through a handle without faults. */
static void populate(struct env *env)
{
	swapio_handle *h = tf_handle(NULL, (struct swapio_config){ 0 });
	struct model *m = &env->m;
	char name[32];
	swapio_store *s;

	snprintf(name, sizeof(name), "store%u", env->nr_stores++);
	free(env->store);
	env->store = t_path(env->dir, name);
	s = store_open(h, env->store);

	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < NR_KEYS; i += 2)
		assert_int_equal(put(s, m, i, 100 + i), 0);
	check_model(s, m);
	swapio_store_close(s);
	swapio_handle_destroy(h);
}

/* Reopen without faults: the store on disk agrees with the model. */
static void check_reopened(const char *dir, const struct model *m)
{
	swapio_handle *h = tf_handle(NULL, (struct swapio_config){ 0 });
	swapio_store *s = store_open(h, dir);

	check_model(s, m);
	swapio_store_close(s);
	swapio_handle_destroy(h);
}

/* Every data write fails: no put gets through, no key changes, and
 * the failed puts hold no space. */
static void puts_always_fail(void **state)
{
	static const char *const specs[] = {
		"errno=EIO,dir=write", "errno=ENOSPC,dir=write",
	};
	static const int errs[] = { -EIO, -ENOSPC };
	struct env *env = *state;

	for (size_t k = 0; k < T_ARRAY_SIZE(specs); k++) {
		struct swapio_store_info a, b;
		swapio_handle *h;
		swapio_store *s;

		populate(env);
		h = tf_handle(specs[k], (struct swapio_config){ 0 });
		s = store_open(h, env->store);
		swapio_store_info(s, &a);
		/* New keys and old. */
		for (unsigned int i = 0; i < NR_KEYS; i++)
			assert_int_equal(put(s, &env->m, i, 500 + i), errs[k]);
		swapio_store_info(s, &b);
		assert_int_equal(b.used_bytes, a.used_bytes);
		assert_int_equal(b.keys, a.keys);
		check_model(s, &env->m);	/* reads are not faulted */
		swapio_store_close(s);
		swapio_handle_destroy(h);
		check_reopened(env->store, &env->m);
	}
}

/* Some puts fail, at random requests; each key keeps its last good value. */
static void puts_sometimes_fail(void **state)
{
	/* Striped, a put is one request per stripe unit: pick fewer. */
	static const char *const specs[] = {
		"errno=EIO,dir=write,every=3",
		"seed=3,prob=0.2,errno=ENOSPC,dir=write",
		"errno=EIO,every=7",	/* gets may fail too */
	};
	struct env *env = *state;
	uint64_t seed = 1000;

	for (size_t k = 0; k < T_ARRAY_SIZE(specs); k++) {
		swapio_handle *h;
		swapio_store *s;
		int ok = 0, failed = 0, ret;

		populate(env);
		h = tf_handle(k == 0 && ts_stripe(NULL) > 1 ?
			      "errno=EIO,dir=write,every=29" : specs[k],
			      (struct swapio_config){ .threads = 2 });
		s = store_open(h, env->store);
		for (unsigned int round = 0; round < 3; round++)
			for (unsigned int i = 0; i < NR_KEYS; i++) {
				ret = put(s, &env->m, i, seed++);
				if (ret)
					assert_true(ret == -EIO ||
						    ret == -ENOSPC);
				ret ? failed++ : ok++;
			}
		assert_true(ok > 0 && failed > 0);
		swapio_store_close(s);
		swapio_handle_destroy(h);
		check_reopened(env->store, &env->m);
	}
}

/* Async puts, many in flight, some failing: each op completes once and
 * the outcome decides the key's value. */
static void async_puts_fail(void **state)
{
	struct env *env = *state;
	swapio_store_op *ops[NR_KEYS];
	unsigned char *bufs[NR_KEYS];
	swapio_handle *h;
	swapio_store *s;
	char key[64];
	int64_t res;

	populate(env);
	h = tf_handle("errno=EIO,dir=write,every=4",
		      (struct swapio_config){ .threads = 3 });
	s = store_open(h, env->store);
	for (unsigned int i = 0; i < NR_KEYS; i++) {
		key_of(key, sizeof(key), i);
		bufs[i] = t_random_buf(len_of(2000 + i), 2000 + i);
		assert_int_equal(swapio_store_submit_put(s, key, bufs[i],
				 len_of(2000 + i), &ops[i]), 0);
	}
	for (unsigned int i = 0; i < NR_KEYS; i++) {
		res = swapio_store_op_wait(ops[i], TF_WAIT_MS);
		assert_int_not_equal(res, -ETIMEDOUT);
		if (res >= 0) {
			assert_int_equal(res, len_of(2000 + i));
			env->m.len[i] = len_of(2000 + i);
			env->m.seed[i] = 2000 + i;
		} else {
			assert_int_equal(res, -EIO);
		}
		swapio_store_op_free(ops[i]);
		free(bufs[i]);
	}
	check_model(s, &env->m);
	swapio_store_close(s);
	swapio_handle_destroy(h);
	check_reopened(env->store, &env->m);
}

/* Retried errors and short transfers never reach the store's caller. */
static void transient_faults_invisible(void **state)
{
	static const char *const specs[] = {
		"errno=EINTR,every=2", "seed=9,prob=0.3,errno=EAGAIN",
		"short=1,every=2", "delay_ms=2,every=5",
	};
	struct env *env = *state;

	for (size_t k = 0; k < T_ARRAY_SIZE(specs); k++) {
		swapio_handle *h;
		swapio_store *s;

		populate(env);
		h = tf_handle(specs[k], (struct swapio_config){ .threads = 2 });
		s = store_open(h, env->store);
		for (unsigned int i = 0; i < NR_KEYS; i++)
			assert_int_equal(put(s, &env->m, i, 3000 + i), 0);
		check_model(s, &env->m);
		assert_true(swapio__fault_injected(h) > 0);
		swapio_store_close(s);
		swapio_handle_destroy(h);
		check_reopened(env->store, &env->m);
	}
}

/* A failed get reports the error; the key is intact for the next one. */
static void gets_fail(void **state)
{
	struct env *env = *state;
	swapio_handle *h;
	swapio_store *s;
	unsigned char *buf = t_zalloc(MAX_VAL + 1);
	char key[64];

	populate(env);
	h = tf_handle("errno=EIO,dir=read", (struct swapio_config){ 0 });
	s = store_open(h, env->store);
	for (unsigned int i = 0; i < NR_KEYS; i += 2) {
		key_of(key, sizeof(key), i);
		assert_int_equal(swapio_store_get(s, key, buf, env->m.len[i]),
				 -EIO);
	}
	swapio_store_close(s);
	swapio_handle_destroy(h);
	check_reopened(env->store, &env->m);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(puts_always_fail),
		cmocka_unit_test(puts_sometimes_fail),
		cmocka_unit_test(async_puts_fail),
		cmocka_unit_test(transient_faults_invisible),
		cmocka_unit_test(gets_fail),
	};

	t_engine();
	return cmocka_run_group_tests(tests, env_setup, env_teardown);
}
