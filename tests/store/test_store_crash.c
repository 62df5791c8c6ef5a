/* SPDX-License-Identifier: MIT */
/*
 * Crash safety: a child process puts, replaces and removes values (several
 * in flight at once, with the odd sync) until it is killed with SIGKILL at
 * a random moment. The store is reopened and every key must read back,
 * byte for byte, either the value of its last completed operation or of
 * the one in flight at the kill: never a mix, never garbage. Repeated on
 * the same store, so later children also recover after earlier kills.
 *
 * The child is this program run again (fork + exec, so it starts clean),
 * and tells the parent what it did through a small shared file: for each
 * key the generation whose put completed last (0: absent) and the
 * operation in flight (a generation, -1 for a remove, 0 for none).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "test_store_common.h"

#define NKEYS		48
#define INFLIGHT	4
#define ITERATIONS	16

struct shared {
	_Atomic int64_t		done[NKEYS];
	_Atomic int64_t		pending[NKEYS];
	_Atomic int64_t		next_gen;
	_Atomic uint64_t	ops;
};

/* The length of value @gen of key @id: mostly small, sometimes 1 MiB+. */
static size_t val_len(unsigned int id, int64_t gen)
{
	uint64_t s = (uint64_t)id * 7777u + (uint64_t)gen;
	uint64_t r = t_rand64(&s);

	if (r % 16 == 0)
		return (1u << 20) + r % 300000;
	return 1 + r % 70000;
}

static struct shared *map_shared(const char *dir, bool create)
{
	char *path = t_path(dir, "crash-state");
	struct shared *sh;
	int fd;

	fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0 || (create && ftruncate(fd, sizeof(*sh))))
		t_die("%s: %s", path, strerror(errno));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  0);
	if (sh == MAP_FAILED)
		t_die("mmap: %s", strerror(errno));
	close(fd);
	free(path);
	return sh;
}

/* ------------------------------------------------------------------ */
/* The child: works until killed                                       */
/* ------------------------------------------------------------------ */

struct slot {
	unsigned int		id;
	int64_t			gen;	/* -1: a remove */
	unsigned char		*buf;
	swapio_store_op		*op;
};

static void child_start(swapio_store *s, struct shared *sh, struct slot *sl,
			uint64_t *rng)
{
	uint64_t r = t_rand64(rng);
	char key[64];
	size_t len;
	int ret;

	ts_key(key, sizeof(key), sl->id);
	if (r % 10 == 0 && atomic_load(&sh->done[sl->id])) {
		sl->gen = -1;
		atomic_store(&sh->pending[sl->id], -1);
		ret = swapio_store_remove(s, key);
		if (ret)
			t_die("child: remove: %s", swapio_strerror(ret));
		atomic_store(&sh->done[sl->id], 0);
		atomic_store(&sh->pending[sl->id], 0);
		return;
	}
	sl->gen = atomic_fetch_add(&sh->next_gen, 1);
	len = val_len(sl->id, sl->gen);
	sl->buf = t_malloc(len);
	ts_fill(sl->buf, len, sl->id, (uint64_t)sl->gen);
	atomic_store(&sh->pending[sl->id], sl->gen);
	ret = swapio_store_submit_put(s, key, sl->buf, len, &sl->op);
	if (ret)
		t_die("child: put: %s", swapio_strerror(ret));
}

static void child_finish(struct shared *sh, struct slot *sl)
{
	int64_t ret;

	if (sl->gen < 0)
		return;
	ret = swapio_store_op_wait(sl->op, -1);
	if (ret < 0)
		t_die("child: put wait: %s", swapio_strerror((int)ret));
	atomic_store(&sh->done[sl->id], sl->gen);
	atomic_store(&sh->pending[sl->id], 0);
	swapio_store_op_free(sl->op);
	free(sl->buf);
	sl->buf = NULL;
}

static int child_main(const char *dir)
{
	struct shared *sh = map_shared(dir, false);
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	swapio_store *s = ts_open(h, dir, NULL);
	uint64_t rng = (uint64_t)getpid() * 31u + (uint64_t)time(NULL);
	struct slot sl[INFLIGHT];

	for (;;) {
		/* INFLIGHT distinct keys, so each key has one op at a time. */
		for (unsigned int i = 0; i < INFLIGHT; i++) {
			sl[i].id = (unsigned int)(t_rand64(&rng) %
						  (NKEYS / INFLIGHT)) *
				   INFLIGHT + i;
			child_start(s, sh, &sl[i], &rng);
		}
		for (unsigned int i = 0; i < INFLIGHT; i++)
			child_finish(sh, &sl[i]);
		if (t_rand64(&rng) % 50 == 0) {
			int ret = swapio_store_sync(s);

			if (ret)
				t_die("child: sync: %s", swapio_strerror(ret));
		}
		atomic_fetch_add(&sh->ops, INFLIGHT);
	}
}

/* ------------------------------------------------------------------ */
/* The parent: kill, reopen, check                                     */
/* ------------------------------------------------------------------ */

/* Does key @id hold value @gen (0: absent)? */
static bool holds(swapio_store *s, unsigned int id, int64_t gen)
{
	char key[64];
	int64_t size;

	ts_key(key, sizeof(key), id);
	size = swapio_store_size(s, key);
	if (gen <= 0)
		return size == -ENOENT;
	if (size != (int64_t)val_len(id, gen))
		return false;
	return ts_get_check(s, id, (uint64_t)gen, (size_t)size) == 0;
}

static void check_key(swapio_store *s, struct shared *sh, unsigned int id)
{
	int64_t done = atomic_load(&sh->done[id]);
	int64_t pend = atomic_load(&sh->pending[id]);
	char key[64];

	if (holds(s, id, done)) {
		atomic_store(&sh->pending[id], 0);
		return;
	}
	if (pend && holds(s, id, pend > 0 ? pend : 0)) {
		atomic_store(&sh->done[id], pend > 0 ? pend : 0);
		atomic_store(&sh->pending[id], 0);
		return;
	}
	ts_key(key, sizeof(key), id);
	t_die("key %u: neither its completed value (gen %lld) nor the one in "
	      "flight (%lld); size %lld", id, (long long)done,
	      (long long)pend, (long long)swapio_store_size(s, key));
}

static void check_store(swapio_handle *h, const char *dir,
			struct shared *sh)
{
	swapio_store *s = ts_open(h, dir, NULL);
	struct swapio_store_info info;

	for (unsigned int id = 0; id < NKEYS; id++)
		check_key(s, sh, id);
	swapio_store_info(s, &info);
	if (info.used_bytes + info.free_bytes != info.file_bytes)
		t_die("space: used %llu + free %llu != file %llu",
		      (unsigned long long)info.used_bytes,
		      (unsigned long long)info.free_bytes,
		      (unsigned long long)info.file_bytes);
	printf("  %llu keys, %llu B of values, data %llu B, index %llu B\n",
	       (unsigned long long)info.keys,
	       (unsigned long long)info.value_bytes,
	       (unsigned long long)info.file_bytes,
	       (unsigned long long)info.index_bytes);
	swapio_store_close(s);
}

static void run_child(const char *dir, uint64_t *rng)
{
	struct timespec ts;
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		t_die("fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/proc/self/exe", "test_store_crash", "--child", dir,
		      (char *)NULL);
		_exit(126);
	}
	/* 30 to 400 ms: sometimes during its open, mostly mid-work. */
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(30 + t_rand64(rng) % 370) * 1000000L;
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		t_die("waitpid: %s", strerror(errno));
	if (!WIFSIGNALED(status))
		t_die("child ended by itself (status %d)", status);
}

int main(int argc, char **argv)
{
	uint64_t rng = (uint64_t)time(NULL);
	swapio_handle *h;
	struct shared *sh;
	char *dir;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	t_engine();
	dir = t_tmpdir();
	sh = map_shared(dir, true);
	atomic_store(&sh->next_gen, 1);
	h = t_handle((struct swapio_config){ 0 });
	for (unsigned int i = 0; i < ITERATIONS; i++) {
		uint64_t before = atomic_load(&sh->ops);

		run_child(dir, &rng);
		printf("kill %u: after %llu ops\n", i + 1,
		       (unsigned long long)(atomic_load(&sh->ops) - before));
		check_store(h, dir, sh);
	}
	swapio_handle_destroy(h);
	munmap(sh, sizeof(*sh));
	t_rmdir(dir);
	printf("ok: %d kills, every key old or new and intact\n", ITERATIONS);
	return 0;
}
