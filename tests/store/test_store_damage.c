/* SPDX-License-Identifier: MIT */
/*
 * A damaged index never loses an acknowledged key without saying so.
 *
 * A small log (puts, a sync, a put, a remove, a replace, a put) is built
 * once; then for every 64-byte-aligned range of its index (five per
 * 320-byte record, so every record is hit at its start, middle and end)
 * a copy of the store gets 64 bytes of garbage there and is opened:
 *
 * - closed cleanly: the close vouched for the whole log, so a plain open
 *   says SWAPIO_EBADSTORE and names the record, unless the damage is in
 *   the close's own record, the last (then the log ends one record early,
 *   nothing is lost, and info says 1 record dropped);
 * - as a crash leaves it (no close record): damage the mid-log sync
 *   vouched for is SWAPIO_EBADSTORE; damage after it ends the log there,
 *   the store opens with exactly the keys of the records before it, and
 *   info reports every record dropped (a key whose remove or replace
 *   was dropped may read -EBADMSG where later puts reused its space,
 *   never wrong bytes); RECOVER after that open and a clean close still
 *   brings every value back;
 * - either way, SWAPIO_STORE_RECOVER gives back every key with the bytes
 *   of its last put (checked byte for byte), the removed key stays removed
 *   wherever its DEL record survived, and info counts the keys it found
 *   beyond the plain open's exactly; the rebuilt store then opens plainly.
 *
 * Then: a value whose payload is damaged as well is reported lost; a
 * process killed while it holds the store leaves a tail that opens with
 * its records counted; a key removed before a compaction stays removed
 * through RECOVER.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_store_common.h"

#define REC	320u	/* the index's record size */
#define NKEYS	6
#define NOPS	9

struct env {
	swapio_handle	*h;
	char		*dir;
	char		*idx;
};

/* The log's operations, in order: key, generation (0: remove), size. */
static const struct op {
	unsigned int	id;
	uint64_t	gen;	/* 0: remove; UINT64_MAX: swapio_store_sync */
	size_t		len;
} ops[NOPS] = {
	{ 0, 1, 5000 }, { 1, 1, 70000 }, { 2, 1, 1 }, { 3, 1, 100000 },
	{ 0, UINT64_MAX, 0 },		/* a sync: vouches for the above */
	{ 4, 1, 4096 }, { 1, 0, 0 },	/* remove 1 */
	{ 2, 2, 33333 },		/* replace 2 */
	{ 5, 1, 12345 },
};

/* The state after the first @n operations: generation per key (0: none). */
static void state_after(unsigned int n, uint64_t gen[NKEYS],
			size_t len[NKEYS])
{
	memset(gen, 0, NKEYS * sizeof(*gen));
	for (unsigned int i = 0; i < n; i++) {
		if (ops[i].gen == UINT64_MAX)
			continue;
		gen[ops[i].id] = ops[i].gen;
		len[ops[i].id] = ops[i].len;
	}
}

static int setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));

	env->h = t_handle((struct swapio_config){ 0 });
	env->dir = t_tmpdir();
	env->idx = t_path(env->dir, "index");
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	swapio_handle_destroy(env->h);
	t_rmdir(env->dir);
	free(env->idx);
	free(env);
	return 0;
}

/* A small data file, so that RECOVER's scan of it is quick. */
static int open_cfg(struct env *env, uint32_t flags, swapio_store **s)
{
	struct swapio_store_config cfg = { .flags = flags,
					   .grow_bytes = 1u << 20 };

	return ts_store_open(env->h, env->dir, &cfg, s);
}

static uint64_t index_size(struct env *env)
{
	struct stat st;

	if (stat(env->idx, &st))
		t_die("%s: %s", env->idx, strerror(errno));
	return (uint64_t)st.st_size;
}

/*
 * Build the log; @end[i]: the index's size once operation i was done (its
 * records end there). Closed cleanly, or as a crash leaves it.
 */
static void build(struct env *env, bool clean, uint64_t end[NOPS])
{
	swapio_store *s;
	char key[64];

	assert_int_equal(open_cfg(env, 0, &s), 0);
	for (unsigned int i = 0; i < NOPS; i++) {
		if (ops[i].gen == UINT64_MAX) {
			assert_int_equal(swapio_store_sync(s), 0);
		} else if (!ops[i].gen) {
			ts_key(key, sizeof(key), ops[i].id);
			assert_int_equal(swapio_store_remove(s, key), 0);
		} else {
			assert_int_equal(ts_put(s, ops[i].id, ops[i].gen,
						ops[i].len), 0);
		}
		end[i] = index_size(env);
	}
	if (clean)
		swapio_store_close(s);
	else
		ts_close_crashed(s, env->dir);
}

/*
 * Every key holds what @gen/@len say, byte for byte; absent ones -ENOENT.
 * Keys in @stale may read -EBADMSG instead: a log cut short forgets the
 * remove or replace that freed their space, which later puts reused.
 */
static void check_keys_stale(swapio_store *s, const uint64_t gen[NKEYS],
			     const size_t len[NKEYS], const char *what,
			     uint64_t off, unsigned int stale)
{
	struct swapio_store_info in;
	uint64_t n = 0;

	for (unsigned int id = 0; id < NKEYS; id++) {
		int ret = gen[id] ? ts_get_check(s, id, gen[id], len[id]) :
			  ts_get_check(s, id, 1, 1);

		if (ret == -EBADMSG && (stale & (1u << id)))
			ret = 0;
		if (ret != (gen[id] ? 0 : -ENOENT))
			t_die("%s, damage at %llu: key %u: %s (want gen %llu)",
			      what, (unsigned long long)off, id,
			      swapio_errname(ret),
			      (unsigned long long)gen[id]);
		n += gen[id] != 0;
	}
	swapio_store_info(s, &in);
	assert_int_equal(in.keys, n);
}

static void check_keys(swapio_store *s, const uint64_t gen[NKEYS],
		       const size_t len[NKEYS], const char *what, uint64_t off)
{
	check_keys_stale(s, gen, len, what, off, 0);
}

/* Keys that operation @from or later removes or replaces. */
static unsigned int changed_from(unsigned int from)
{
	unsigned int m = 0;

	for (unsigned int i = from; i < NOPS; i++)
		if (ops[i].gen != UINT64_MAX)
			m |= 1u << ops[i].id;
	return m;
}

/* The first record at or after byte @off that the damage hits. */
static unsigned int rec_of(uint64_t off)
{
	return (unsigned int)(off / REC);
}

/* Does record @bad hold (part of) what operation @op logged? */
static bool rec_holds(const uint64_t end[NOPS], unsigned int bad,
		      unsigned int op)
{
	return end[op - 1] <= (uint64_t)bad * REC &&
	       (uint64_t)bad * REC < end[op];
}

/* The operations whose records all lie before record @bad. */
static unsigned int ops_before(const uint64_t end[NOPS], unsigned int bad)
{
	unsigned int n = 0;

	while (n < NOPS && end[n] <= (uint64_t)bad * REC)
		n++;
	return n;
}

/*
 * RECOVER: everything back; then a plain reopen. @plain_ops: the ops a
 * plain open had (whose keys do not count as found). @del_lost: the
 * remove's DEL record is gone. @wiped: a plain open zeroed the damage
 * (no bad record left to count).
 */
static void recover_all(struct env *env, uint64_t off,
			unsigned int plain_ops, bool del_lost, bool wiped)
{
	uint64_t want[NKEYS], pre[NKEYS], found = 0;
	size_t len[NKEYS], plen[NKEYS];
	struct swapio_store_info in;
	swapio_store *s;
	int ret;

	state_after(NOPS, want, len);
	state_after(plain_ops, pre, plen);
	ret = open_cfg(env, SWAPIO_STORE_RECOVER, &s);
	if (ret)
		t_die("RECOVER, damage at %llu: %s", (unsigned long long)off,
		      swapio_errname(ret));
	/* A removed key whose DEL record is gone may come back whole. */
	if (del_lost && swapio_store_size(s, "layer.1/weights") >= 0) {
		want[1] = 1;
		len[1] = 70000;
	}
	check_keys(s, want, len, "RECOVER", off);
	for (unsigned int id = 0; id < NKEYS; id++)
		found += want[id] && pre[id] != want[id];
	swapio_store_info(s, &in);
	assert_int_equal(in.recovered_keys, found);
	assert_int_equal(in.lost_values, 0);
	assert_true(wiped ? !in.dropped_records : in.dropped_records >= 1);
	swapio_store_close(s);
	/* The rebuilt log is whole. */
	assert_int_equal(open_cfg(env, 0, &s), 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 0);
	check_keys(s, want, len, "after RECOVER", off);
	swapio_store_close(s);
}

static void damage(struct env *env, const unsigned char *orig, size_t n,
		   uint64_t off)
{
	unsigned char *junk = t_malloc(n);

	memcpy(junk, orig, n);
	t_fill_random(junk + off, 64, off + 1);
	t_write_file(env->idx, junk, n);
	free(junk);
}

/* A cleanly closed log: damage before its end is an error, said so. */
static void damage_after_clean_close(void **state)
{
	struct env *env = *state;
	uint64_t end[NOPS], want[NKEYS];
	size_t n, len[NKEYS];
	unsigned char *orig;

	build(env, true, end);
	orig = t_read_file(env->idx, &n);
	/* The close appended a record of its own after the last op's. */
	assert_int_equal(n, end[NOPS - 1] + REC);
	state_after(NOPS, want, len);
	for (uint64_t off = 0; off < n; off += 64) {
		const unsigned int bad = rec_of(off);
		struct swapio_store_info in;
		swapio_store *s;
		char name[64];
		int ret;

		damage(env, orig, n, off);
		ret = open_cfg(env, 0, &s);
		if (bad == n / REC - 1) {
			/* The close's own record: the log ends before it. */
			assert_int_equal(ret, 0);
			swapio_store_info(s, &in);
			assert_int_equal(in.dropped_records, 1);
			check_keys(s, want, len, "plain", off);
			swapio_store_close(s);
			t_write_file(env->idx, orig, n);
			continue;
		}
		assert_int_equal(ret, SWAPIO_EBADSTORE);
		if (bad) {
			snprintf(name, sizeof(name), "record %u of %zu", bad,
				 n / REC);
			/* The first record that vouches is named: the sync's
			 * (op 4), or the close's. */
			if (!strstr(swapio_error_detail(), name) ||
			    !strstr(swapio_error_detail(),
				    (uint64_t)bad * REC < end[3] ?
				    "written by a sync" :
				    "written by a clean close"))
				t_die("damage at %llu: detail '%s'",
				      (unsigned long long)off,
				      swapio_error_detail());
		}
		recover_all(env, off, ops_before(end, bad),
			    rec_holds(end, bad, 6), false);
		t_write_file(env->idx, orig, n);
	}
	free(orig);
}

/* As a crash leaves it: the sync vouches for its part, the rest is tail. */
static void damage_after_crash(void **state)
{
	struct env *env = *state;
	uint64_t end[NOPS], want[NKEYS];
	size_t n, len[NKEYS];
	unsigned char *orig;
	/* The sync (op 4) appended one record, which ends at end[4]. */
	unsigned int sync_rec;

	build(env, false, end);
	orig = t_read_file(env->idx, &n);
	assert_int_equal(n, end[NOPS - 1]);
	sync_rec = (unsigned int)(end[4] / REC) - 1;
	assert_int_equal(end[4], end[3] + REC);
	for (uint64_t off = 0; off < n; off += 64) {
		const unsigned int bad = rec_of(off);
		const unsigned int before = ops_before(end, bad);
		struct swapio_store_info in;
		swapio_store *s;
		int ret;

		damage(env, orig, n, off);
		ret = open_cfg(env, 0, &s);
		if (!bad || bad < sync_rec) {
			/* The HEAD, or a record the sync vouched for. */
			assert_int_equal(ret, SWAPIO_EBADSTORE);
		} else {
			if (ret)
				t_die("damage at %llu: %s",
				      (unsigned long long)off,
				      swapio_errname(ret));
			swapio_store_info(s, &in);
			assert_int_equal(in.dropped_records, n / REC - bad);
			state_after(before, want, len);
			check_keys_stale(s, want, len, "plain", off,
					 changed_from(before));
			swapio_store_close(s);
			/* Warned, closed cleanly, then RECOVER: the values
			 * whose records that open dropped come back. */
			recover_all(env, off, before,
				    end[6] > (uint64_t)bad * REC, true);
			damage(env, orig, n, off);
		}
		recover_all(env, off, !bad ? 0 : before,
			    rec_holds(end, bad, 6), false);
		t_write_file(env->idx, orig, n);
	}
	free(orig);
}

/* A value's payload damaged too: RECOVER says it could not bring it back. */
static void damaged_value_reported_lost(void **state)
{
	struct env *env = *state;
	uint64_t end[NOPS], want[NKEYS];
	size_t n, len[NKEYS];
	unsigned char *data, probe[64], *hit;
	struct swapio_store_info in;
	swapio_store *s;
	char *path;
	int fd;

	if (ts_stripe(NULL) > 1)
		skip();		/* the payload is found in one data file */
	build(env, true, end);
	/* Flip a byte in the middle of key 3's payload. */
	path = t_path(env->dir, "data");
	data = t_read_file(path, &n);
	ts_fill(probe, sizeof(probe), 3, 1);
	hit = memmem(data, n, probe, sizeof(probe));
	assert_non_null(hit);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	hit[50000] ^= 0x40;
	assert_int_equal(pwrite(fd, hit + 50000, 1, hit + 50000 - data), 1);
	close(fd);
	free(data);
	free(path);
	/* A whole log is believed: the get finds the damage. */
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	assert_int_equal(ts_get_check(s, 3, 1, 100000), -EBADMSG);
	swapio_store_close(s);
	/* Damage in the index too: the rebuild reports the value lost. */
	data = t_read_file(env->idx, &n);
	damage(env, data, n, REC * 2 + 128);
	free(data);
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	state_after(NOPS, want, len);
	want[3] = 0;
	check_keys(s, want, len, "RECOVER", 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.lost_values, 1);
	swapio_store_close(s);
}

#define OWNER_ENV	"SWAPIO_TEST_DAMAGE_OWNER"

/*
 * The owner's life, in a process of its own: open the store in @dir, put
 * the first four values, and die by SIGKILL while it holds the store.
 */
static int owner_main(const char *dir)
{
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	struct swapio_store_config cfg = { .grow_bytes = 1u << 20 };
	swapio_store *s;

	if (ts_store_open(h, dir, &cfg, &s))
		return 2;
	for (unsigned int i = 0; i < 4; i++)
		if (ts_put(s, i, 1, ops[i].len))
			return 3;
	raise(SIGKILL);
	return 4;
}

/*
 * Run owner_main() in a new process: this program again, started by
 * posix_spawn(), not a fork that goes on running. The parent has the
 * fixture's worker threads, and a fork's child could inherit a lock one
 * of them held (the allocator's: a hang under AddressSanitizer).
 */
static pid_t owner_spawn(const char *dir)
{
	char *argv[] = { "test_store_damage", NULL };
	size_t n = 0;
	char **envp;
	char *var;
	pid_t pid;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	assert_non_null(envp);
	assert_true(asprintf(&var, "%s=%s", OWNER_ENV, dir) > 0);
	memcpy(envp, environ, n * sizeof(*envp));
	envp[n] = var;
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv,
				     envp), 0);
	free(var);
	free(envp);
	return pid;
}

/* A process killed while it holds the store; then its last record torn. */
static void killed_owner_tail(void **state)
{
	struct env *env = *state;
	uint64_t end[1], want[NKEYS];
	size_t len[NKEYS];
	struct swapio_store_info in;
	swapio_store *s;
	int status, fd;
	pid_t pid;

	pid = owner_spawn(env->dir);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* Tear the last record (key 3's PUT) as a power loss could. */
	end[0] = index_size(env);
	fd = open(env->idx, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "torn", 4, (off_t)(end[0] - 100)), 4);
	close(fd);
	assert_int_equal(open_cfg(env, 0, &s), 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 1);
	state_after(3, want, len);
	check_keys(s, want, len, "plain", end[0] - 100);
	swapio_store_close(s);
	/* A plain open again: that open zeroed the tail, nothing more is
	 * dropped; the keys are what it left. */
	assert_int_equal(open_cfg(env, 0, &s), 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 0);
	check_keys(s, want, len, "reopen", 0);
	swapio_store_close(s);
	/* RECOVER after the warning, clean closes in between: the log still
	 * says records were dropped, and key 3 comes back from the data. */
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.recovered_keys, 1);
	state_after(4, want, len);
	check_keys(s, want, len, "RECOVER", 0);
	swapio_store_close(s);
	/* Rebuilt and closed: a log that vouches for all of itself, which
	 * RECOVER believes. */
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	swapio_store_info(s, &in);
	assert_int_equal(in.recovered_keys, 0);
	assert_int_equal(in.dropped_records, 0);
	check_keys(s, want, len, "RECOVER again", 0);
	swapio_store_close(s);
}

/* The same torn record, RECOVER first: key 3 comes back from the data. */
static void killed_owner_recover(void **state)
{
	struct env *env = *state;
	uint64_t want[NKEYS];
	size_t len[NKEYS];
	struct swapio_store_info in;
	swapio_store *s;
	uint64_t size;
	int status, fd;
	pid_t pid;

	pid = owner_spawn(env->dir);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	size = index_size(env);
	fd = open(env->idx, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "torn", 4, (off_t)(size - 100)), 4);
	close(fd);
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	state_after(4, want, len);
	check_keys(s, want, len, "RECOVER", size - 100);
	swapio_store_info(s, &in);
	assert_int_equal(in.dropped_records, 1);
	assert_int_equal(in.recovered_keys, 1);
	swapio_store_close(s);
}

/*
 * A key removed before a compaction (which drops its DEL record), the
 * store then left as a crash leaves it: RECOVER scans the data file, finds
 * the removed value intact there, and must not bring it back.
 */
static void removed_before_compaction_stays_removed(void **state)
{
	struct env *env = *state;
	uint64_t want[NKEYS] = { 0 };
	size_t len[NKEYS] = { 0 };
	swapio_store *s;

	assert_int_equal(open_cfg(env, 0, &s), 0);
	assert_int_equal(ts_put(s, 0, 1, 300000), 0);
	/* A long log: the next open compacts it. */
	for (unsigned int g = 1; g <= 80; g++)
		assert_int_equal(ts_put(s, 1, g, 100), 0);
	assert_int_equal(swapio_store_remove(s, "layer.0/weights"), 0);
	swapio_store_close(s);
	assert_int_equal(open_cfg(env, 0, &s), 0);	/* compacts */
	assert_true(index_size(env) < 10 * REC);
	/* Larger than the removed extent: it goes elsewhere. */
	assert_int_equal(ts_put(s, 2, 1, 400000), 0);
	ts_close_crashed(s, env->dir);
	assert_int_equal(open_cfg(env, SWAPIO_STORE_RECOVER, &s), 0);
	want[1] = 80;
	len[1] = 100;
	want[2] = 1;
	len[2] = 400000;
	check_keys(s, want, len, "RECOVER", 0);
	swapio_store_close(s);
}

int main(void)
{
	const char *owner = getenv(OWNER_ENV);
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(damage_after_clean_close),
		T(damage_after_crash),
		T(damaged_value_reported_lost),
		T(killed_owner_tail),
		T(killed_owner_recover),
		T(removed_before_compaction_stays_removed),
#undef T
	};

	if (owner)
		return owner_main(owner);
	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
