/* SPDX-License-Identifier: MIT */
/*
 * Fork: objects belong to the process that made them. The parent forks
 * children the way a DataLoader forks its workers, while it has ops in
 * flight. In each child every call on an inherited handle, file, op or
 * pool answers SWAPIO_EFORKED at once (an alarm turns a hang into a
 * failure), the parent's pinned and pool memory is not mapped, the
 * parent's data file is not open, and a handle of the child's own works.
 * The parent's ops finish with the right bytes on the disk.
 *
 * The child allocates nothing on its way through the inherited objects:
 * only its own handle does, which is left out under AddressSanitizer and
 * ThreadSanitizer (see CHILD_OWN_HANDLE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testing.h"

#define KiB		1024u
#define NR_OPS		16
#define OP_SIZE		(256 * KiB)
#define NR_CHILDREN	4

struct fk_env {
	struct t_env	*t;
	swapio_handle	*h;
	swapio_file	*f;
	swapio_pool	*pool;
	void		*pool_buf;	/* taken from the pool */
	void		*pinned;	/* swapio_buf_alloc(LOCKED) */
	size_t		pinned_len;
	unsigned char	*src;		/* NR_OPS * OP_SIZE */
	swapio_op	*ops[NR_OPS];
	struct stat	data;		/* the data file's, before any fork */
};

/*
 * The child's verdict: the number of the first check that failed, said on
 * stderr with snprintf() and write(), which allocate nothing.
 */
#define CHECK(n, cond)							\
	do {								\
		if (!(cond))						\
			child_fail((n), #cond);				\
	} while (0)

static void __attribute__((noreturn)) child_fail(int n, const char *what)
{
	char msg[256];
	int len = snprintf(msg, sizeof(msg), "child: check %d failed: %s\n",
			   n, what);
	ssize_t w;

	if (len > (int)sizeof(msg) - 1)
		len = (int)sizeof(msg) - 1;
	w = write(2, msg, len > 0 ? (size_t)len : 0);
	(void)w;
	_exit(n);
}

/* Is [p, p + len) mapped in this process? */
static bool mapped(void *p, size_t len)
{
	unsigned char vec[4];

	return !mincore(p, len < 4 * 4096u ? len : 4 * 4096u, vec);
}

/*
 * Is the file @st describes open on any descriptor of this process? The
 * descriptors are read from /proc/self/fd with getdents64() on a buffer of
 * the stack, as opendir() would allocate.
 */
static bool file_open(const struct stat *st)
{
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	union {
		struct dirent64	de;
		char		bytes[4096];
	} buf;
	bool found = false;
	struct stat fst;
	ssize_t n;

	if (dfd < 0)
		return true;	/* cannot tell: fail the check */
	while (!found && (n = getdents64(dfd, buf.bytes, sizeof(buf))) > 0) {
		for (ssize_t at = 0; !found && at < n;) {
			const struct dirent64 *de =
				(const void *)(buf.bytes + at);
			const int fd = atoi(de->d_name);

			at += de->d_reclen;
			if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
			    fd == dfd || fstat(fd, &fst))
				continue;
			found = fst.st_dev == st->st_dev &&
				fst.st_ino == st->st_ino;
		}
	}
	close(dfd);
	return found;
}

/*
 * The child's own handle allocates memory and starts threads after fork().
 * With the C library's malloc that is safe (fork() holds its locks), but
 * AddressSanitizer's allocator is not held across fork(): a worker thread
 * of the parent may be inside it at that moment (one that is starting
 * allocates in pthread_getattr_np()), and the child would wait forever on
 * the lock it left held. ThreadSanitizer cannot follow a child of a
 * threaded parent that starts threads of its own ("dup thread with used
 * id": the parent's threads are still in its registry). So under either
 * the child's own handle is left out.
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CHILD_OWN_HANDLE	false
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CHILD_OWN_HANDLE	false
#endif
#endif
#ifndef CHILD_OWN_HANDLE
#define CHILD_OWN_HANDLE	true
#endif

/* The child's own handle: a round trip on a file of its own. */
static bool own_handle_works(const char *dir, int id)
{
	struct swapio_config cfg = { .block_size = 64 * KiB, .threads = 2 };
	unsigned char *src = t_random_buf(300 * KiB + 7, 100 + id);
	unsigned char *dst = t_zalloc(300 * KiB + 7);
	char name[32], *path;
	swapio_handle *h = NULL;
	bool ok;
	int ret;

	snprintf(name, sizeof(name), "child-%d", id);
	path = t_path(dir, name);
	cfg.engine = t_engine();
	ret = swapio_handle_create(&cfg, &h);
	if (ret)
		fprintf(stderr, "child: handle: %s\n", swapio_strerror(ret));
	ok = !ret && swapio_pwrite_path(h, path, src, 300 * KiB + 7, 5) ==
		   300 * KiB + 7;
	ok = ok && swapio_pread_path(h, path, dst, 300 * KiB + 7, 5) ==
		   300 * KiB + 7;
	ok = ok && !memcmp(src, dst, 300 * KiB + 7);
	if (h)
		swapio_handle_destroy(h);
	free(path), free(src), free(dst);
	return ok;
}

static void __attribute__((noreturn)) child_main(struct fk_env *e, int id)
{
	unsigned char buf[4096];
	swapio_op *op = NULL;
	void *b;

	alarm(20);	/* a hang dies by SIGALRM: the parent sees it */
	CHECK(2, swapio_pwrite(e->h, e->f, buf, 4096, 0) == SWAPIO_EFORKED);
	CHECK(3, swapio_pread(e->h, e->f, buf, 4096, 0) == SWAPIO_EFORKED);
	CHECK(4, swapio_submit_read(e->h, e->f, buf, 4096, 0, &op) ==
		 SWAPIO_EFORKED && !op);
	CHECK(5, swapio_pread_path(e->h, e->t->path, buf, 1, 0) ==
		 SWAPIO_EFORKED);
	CHECK(6, swapio_op_wait(e->ops[id], -1) == SWAPIO_EFORKED);
	CHECK(7, swapio_wait_any(e->ops, (unsigned int)id + 1, -1) ==
		 SWAPIO_EFORKED);
	CHECK(8, swapio_wait_all(e->h, -1) == SWAPIO_EFORKED);
	CHECK(9, swapio_handle_eventfd(e->h) == SWAPIO_EFORKED);
	CHECK(10, swapio_file_size(e->f) == SWAPIO_EFORKED);
	CHECK(11, swapio_pool_get(e->pool, -1, &b) == SWAPIO_EFORKED);
	CHECK(12, swapio_pool_put(e->pool, e->pool_buf) == SWAPIO_EFORKED);
	CHECK(13, !mapped(e->pool_buf, swapio_pool_buf_size(e->pool)));
	CHECK(14, !e->pinned || !mapped(e->pinned, e->pinned_len));
	CHECK(15, !file_open(&e->data));
	/* Releasing the parent's objects leaves them alone, and returns. */
	for (int i = 0; i <= id; i++)
		swapio_op_free(e->ops[i]);
	CHECK(16, swapio_file_close(e->f) == SWAPIO_EFORKED);
	swapio_pool_destroy(e->pool);
	swapio_handle_destroy(e->h);
	CHECK(17, !CHILD_OWN_HANDLE || own_handle_works(e->t->dir, id));
	_exit(0);
}

static void fk_start(struct fk_env *e)
{
	struct swapio_config cfg = { .block_size = 64 * KiB,
				     .queue_depth = 8, .threads = 2 };
	int ret;

	e->h = t_handle(cfg);
	assert_int_equal(swapio_file_open(e->h, e->t->path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &e->f), 0);
	assert_int_equal(stat(e->t->path, &e->data), 0);
	assert_true(file_open(&e->data));	/* the check can see it */
	assert_int_equal(swapio_pool_create(64 * KiB, 2, SWAPIO_BUF_LOCKED,
					    &e->pool), 0);
	assert_int_equal(swapio_pool_get(e->pool, 0, &e->pool_buf), 0);
	e->pinned_len = 64 * KiB;
	ret = swapio_buf_alloc(e->pinned_len, SWAPIO_BUF_LOCKED, &e->pinned);
	if (ret == SWAPIO_EMEMLOCK)	/* not allowed to pin: skip that */
		e->pinned = NULL;
	else
		assert_int_equal(ret, 0);
	e->src = t_random_buf((size_t)NR_OPS * OP_SIZE, 7);
}

/* Fork NR_CHILDREN while the ops are in flight, one after each batch. */
static void children_while_ops_in_flight(void **state)
{
	struct fk_env e = { .t = *state };
	unsigned char *got;
	pid_t pids[NR_CHILDREN];
	size_t size;
	int status;

	fk_start(&e);
	for (int i = 0; i < NR_OPS; i++) {
		const size_t at = (size_t)i * OP_SIZE;

		assert_int_equal(swapio_submit_write(e.h, e.f, e.src + at,
						     OP_SIZE, at, &e.ops[i]),
				 0);
		if (i % (NR_OPS / NR_CHILDREN) != NR_OPS / NR_CHILDREN - 1)
			continue;
		pids[i / (NR_OPS / NR_CHILDREN)] = fork();
		assert_true(pids[i / (NR_OPS / NR_CHILDREN)] >= 0);
		if (!pids[i / (NR_OPS / NR_CHILDREN)])
			child_main(&e, i);
	}
	for (int i = 0; i < NR_CHILDREN; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail_msg("child %d: %s %d", i,
				 WIFEXITED(status) ? "exit" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) :
						     WTERMSIG(status));
	}
	/* The parent's objects still work, and its data is all there. */
	assert_int_equal(swapio_wait_all(e.h, -1), 0);
	for (int i = 0; i < NR_OPS; i++) {
		assert_int_equal(swapio_op_wait(e.ops[i], 0), OP_SIZE);
		swapio_op_free(e.ops[i]);
	}
	assert_int_equal(swapio_pool_put(e.pool, e.pool_buf), 0);
	assert_int_equal(swapio_file_close(e.f), 0);
	swapio_pool_destroy(e.pool);
	swapio_buf_free(e.pinned, e.pinned_len);
	swapio_handle_destroy(e.h);
	got = t_read_file(e.t->path, &size);
	assert_int_equal(size, (size_t)NR_OPS * OP_SIZE);
	assert_int_equal(t_first_diff(got, e.src, size), SIZE_MAX);
	free(got);
	free(e.src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(children_while_ops_in_flight,
						t_env_setup, t_env_teardown),
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
