/* SPDX-License-Identifier: MIT */
/*
 * Ranks sharing a node: four processes at once, one per GPU as torchrun
 * starts them (LOCAL_WORLD_SIZE=4, LOCAL_RANK=i), each with a store of
 * its own striped over two directories on the same drive, and
 * SWAPIO_SHARE_NODE=1 so each handle takes a quarter of the node's
 * queue depth. For SWAPIO_TEST_RANKS_SECS (default 20) each rank replaces
 * values of odd sizes and reads them back, checking every byte; then it
 * reopens its store and checks the last value of every key. The parent
 * prints the aggregate GB/s and each rank's share, and fails if a rank
 * failed, checked wrong bytes, or got less than a tenth of the total
 * (a fair share is a quarter; the machine is shared, so the bound is
 * loose, but a rank starved by the others fails it).
 *
 * The children fork before the parent has any library thread, so the
 * test also runs under the sanitizers.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "test_store_common.h"

#define RANKS		4
#define KEYS		8
#define NODE_QD		32
#define MAX_VAL		(3u << 20)

struct report {
	uint64_t	bytes;		/* put + got */
	uint64_t	values;
	double		secs;
	uint32_t	qd;		/* the queue depth the handle took */
	int		status;		/* 0, or what went wrong */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t len_of(unsigned int rank, uint64_t gen)
{
	return 1 + (size_t)((rank * 7919u + gen * 104729u) % MAX_VAL);
}

static swapio_store *rank_open(swapio_handle *const *h, char *const *dirs)
{
	const struct swapio_store_config cfg = { .stripe_unit = 256u << 10 };
	struct swapio_store_drive dv[2] = {
		{ .h = h[0], .dir = dirs[0] }, { .h = h[1], .dir = dirs[1] },
	};
	swapio_store *s;

	return swapio_store_open_multi(dv, 2, &cfg, &s, NULL) ? NULL : s;
}

/* One round: replace a key, read it back, compare. 0, or a status. */
static int rank_round(swapio_store *s, unsigned int rank, uint64_t gen,
		      unsigned char *buf, struct report *r)
{
	const unsigned int id = rank * 100 + (unsigned int)(gen % KEYS);
	const size_t len = len_of(rank, gen);

	ts_fill(buf, len, id, gen);
	if (ts_put(s, id, gen, len))
		return 3;
	switch (ts_get_check(s, id, gen, len)) {
	case 0:
		break;
	case 1:
		return 4;	/* wrong bytes */
	default:
		return 5;
	}
	r->bytes += 2 * len;
	r->values++;
	return 0;
}

static int rank_main(unsigned int rank, const char *root, double secs,
		     struct report *r)
{
	swapio_handle *h[2];
	struct swapio_config got;
	char *dirs[2], name[32];
	unsigned char *buf = t_malloc(MAX_VAL);
	swapio_store *s;
	uint64_t gen = 1;
	double t0;
	int ret = 0;

	for (unsigned int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "rank%u.drive%u", rank, i);
		dirs[i] = t_path(root, name);
		if (swapio_handle_create(&(struct swapio_config){
				.queue_depth = NODE_QD,
				.engine = t_engine() }, &h[i]))
			return 2;
	}
	swapio_handle_config(h[0], &got);
	r->qd = got.queue_depth;
	s = rank_open(h, dirs);
	if (!s)
		return 2;
	t0 = now();
	while (!ret && now() - t0 < secs)
		ret = rank_round(s, rank, gen++, buf, r);
	r->secs = now() - t0;
	swapio_store_close(s);
	/* Reopened, every key holds its last value. */
	s = ret ? NULL : rank_open(h, dirs);
	for (uint64_t g = gen > KEYS ? gen - KEYS : 1; s && !ret && g < gen;
	     g++)
		if (ts_get_check(s, rank * 100 + (unsigned int)(g % KEYS), g,
				 len_of(rank, g)))
			ret = 6;
	if (!ret && !s)
		ret = 2;
	swapio_store_close(s);
	for (unsigned int i = 0; i < 2; i++) {
		swapio_handle_destroy(h[i]);
		free(dirs[i]);
	}
	free(buf);
	return ret;
}

static pid_t spawn(unsigned int rank, const char *root, double secs,
		   int fd)
{
	struct report r = { 0 };
	char v[16];
	pid_t pid = fork();

	if (pid)
		return pid;
	snprintf(v, sizeof(v), "%u", rank);
	setenv("LOCAL_RANK", v, 1);
	setenv("LOCAL_WORLD_SIZE", "4", 1);
	setenv("SWAPIO_SHARE_NODE", "1", 1);
	alarm((unsigned int)secs + 60);	/* a hang fails, not stalls */
	r.status = rank_main(rank, root, secs, &r);
	_exit(write(fd, &r, sizeof(r)) == sizeof(r) ? 0 : 1);
}

int main(void)
{
	const char *env = getenv("SWAPIO_TEST_RANKS_SECS");
	const double secs = env ? atof(env) : 20.0;
	struct report r[RANKS];
	uint64_t total = 0;
	double wall = 0;
	int fds[RANKS][2], status, bad = 0;
	pid_t pid[RANKS];
	char *root;

	t_engine();
	if (!(secs > 0 && secs <= 20))
		t_die("SWAPIO_TEST_RANKS_SECS=%s: want (0, 20]", env);
	root = t_tmpdir();
	for (unsigned int i = 0; i < RANKS; i++) {
		if (pipe(fds[i]))
			t_die("pipe: %s", strerror(errno));
		pid[i] = spawn(i, root, secs, fds[i][1]);
		if (pid[i] < 0)
			t_die("fork: %s", strerror(errno));
		close(fds[i][1]);
	}
	for (unsigned int i = 0; i < RANKS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		if (read(fds[i][0], &r[i], sizeof(r[i])) != sizeof(r[i]))
			r[i].status = 7;	/* died */
		close(fds[i][0]);
		if (waitpid(pid[i], &status, 0) != pid[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			r[i].status = r[i].status ? r[i].status : 7;
		total += r[i].bytes;
		wall = r[i].secs > wall ? r[i].secs : wall;
	}
	printf("4 ranks, %.1f s each: %.3f GB/s together (put + get, every "
	       "byte checked)\n", secs, wall > 0 ? total / 1e9 / wall : 0);
	for (unsigned int i = 0; i < RANKS; i++) {
		double share = total ? (double)r[i].bytes / total : 0;

		printf("rank %u: %6.3f GB/s, %5.1f %% of the node, %llu "
		       "values, queue depth %u of %u, status %d\n", i,
		       r[i].secs > 0 ? r[i].bytes / 1e9 / r[i].secs : 0,
		       100 * share, (unsigned long long)r[i].values, r[i].qd,
		       NODE_QD, r[i].status);
		if (r[i].status || r[i].qd != NODE_QD / RANKS || share < 0.10)
			bad = 1;
	}
	t_rmdir(root);
	return bad;
}
