/* SPDX-License-Identifier: MIT */
/*
 * No head-of-line blocking. On one worker, a 4 KiB read submitted just
 * after a large read must complete before the large one does:
 *   - a 512 MiB buffered read of a sparse file as one request (the page
 *     cache copies zeros for a long time, which an engine must not do
 *     inside its submit call, and the worker must wake for the new op
 *     while it waits);
 *   - a 64 MiB direct read of data on the disk as one request, against a
 *     4 KiB read from a file in memory;
 *   - a 256 MiB buffered read in 1 MiB requests at queue depth 4: the
 *     small op must not wait until the large one is all planned, so it
 *     completes before half of the large one has moved.
 * Orderings only, never times. An ordering that the scheduler can upset
 * (a loaded machine may not run the worker while a fast device finishes
 * the large read) is tried up to ROUNDS times and must hold in one: a
 * worker that holds the small op back fails every round.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>

#include "testing.h"

#define KiB		1024ull
#define MiB		(1024ull * KiB)
#define ROUNDS		5

static struct swapio_config cfg_of(uint64_t block, uint32_t qd, bool direct)
{
	return (struct swapio_config){
		.block_size = block,
		.queue_depth = qd,
		.threads = 1,
		.flags = direct ? 0 : SWAPIO_CFG_BUFFERED,
	};
}

/*
 * Read @big bytes at 0 of @path, then 4 KiB at @small_off of @small_path,
 * on handle @cfg. Whether the small read finished first; *@moved is the
 * bytes the handle had read when it did.
 */
static bool small_first(const char *path, const char *small_path,
			struct swapio_config cfg, size_t big,
			uint64_t small_off, uint64_t *moved)
{
	swapio_handle *h = t_handle(cfg);
	unsigned char *mem = t_page_alloc(big, 0);
	unsigned char *small = t_page_alloc(4 * KiB, 0);
	struct swapio_stats st;
	swapio_file *f, *sf;
	swapio_op *big_op, *small_op;
	bool first;

	/* Touched, as a tensor's memory is: faulting in 64 MiB of fresh
	 * pages happens inside the call that pins them (io_submit here). */
	memset(mem, 0, big);
	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ, &f), 0);
	assert_int_equal(swapio_file_open(h, small_path, SWAPIO_O_READ, &sf),
			 0);
	assert_int_equal(swapio_submit_read(h, f, mem, big, 0, &big_op), 0);
	assert_int_equal(swapio_submit_read(h, sf, small, 4 * KiB, small_off,
					    &small_op), 0);
	assert_int_equal(swapio_op_wait(small_op, -1), 4 * KiB);
	swapio_handle_stats(h, &st);
	first = !swapio_op_done(big_op);
	assert_int_equal(swapio_op_wait(big_op, -1), big);
	swapio_op_free(small_op);
	swapio_op_free(big_op);
	swapio_file_close(sf);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(small);
	free(mem);
	*moved = st.bytes_read - 4 * KiB;
	return first;
}

/*
 * small_first() must hold in one of ROUNDS tries, with fewer than
 * @max_moved bytes of the large read moved by then.
 */
static void small_after_big(const char *path, const char *small_path,
			    struct swapio_config cfg, size_t big,
			    uint64_t small_off, uint64_t max_moved)
{
	uint64_t moved;

	for (int i = 0; i < ROUNDS; i++)
		if (small_first(path, small_path, cfg, big, small_off,
				&moved) && moved < max_moved)
			return;
	fail_msg("the 4 KiB read did not finish first, with under %llu "
		 "bytes of the %zu-byte one moved, in any of %d rounds",
		 (unsigned long long)max_moved, big, ROUNDS);
}

static void sparse_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || ftruncate(fd, (off_t)size))
		t_die("%s: %s", path, strerror(errno));
	close(fd);
}

/* One 512 MiB buffered request against a 4 KiB one. */
static void buffered_one_big_request(void **state)
{
	struct t_env *env = *state;

	sparse_file(env->path, 640 * MiB);
	small_after_big(env->path, env->path, cfg_of(512 * MiB, 32, false),
			512 * MiB, 600 * MiB, UINT64_MAX);
}

/*
 * One 64 MiB direct request of data on the disk against a 4 KiB one from
 * a file in memory (tmpfs). A disk serves its queue in order, so a 4 KiB
 * read queued behind 64 MiB on the same disk finishes with it; what must
 * not happen is that the worker holds the small read back until the big
 * one is done.
 */
static void direct_one_big_request(void **state)
{
	struct t_env *env = *state;
	unsigned char *data = t_random_buf(64 * MiB, 1);
	char *mem_dir, *small;
	int fd;

	t_write_file(env->path, data, 64 * MiB);
	/* On the disk and out of the page cache, so that the direct read
	 * neither writes back nor finds pages to drop inline. */
	fd = open(env->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) ||
	    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		t_die("%s: %s", env->path, strerror(errno));
	close(fd);
	setenv("SWAPIO_TEST_DIR", "/dev/shm", 1);
	mem_dir = t_tmpdir();
	unsetenv("SWAPIO_TEST_DIR");
	small = t_path(mem_dir, "small");
	t_write_file(small, data, 64 * KiB);
	small_after_big(env->path, small, cfg_of(64 * MiB, 32, true),
			64 * MiB, 4 * KiB, UINT64_MAX);
	free(small);
	t_rmdir(mem_dir);
	free(data);
}

/* 1 MiB requests, QD 4: the small op is planned in turn, not last. */
static void many_requests_in_turn(void **state)
{
	struct t_env *env = *state;
	sparse_file(env->path, 320 * MiB);
	small_after_big(env->path, env->path, cfg_of(1 * MiB, 4, false),
			256 * MiB, 300 * MiB, 128 * MiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(buffered_one_big_request,
						t_env_setup, t_env_teardown),
		cmocka_unit_test_setup_teardown(direct_one_big_request,
						t_env_setup, t_env_teardown),
		cmocka_unit_test_setup_teardown(many_requests_in_turn,
						t_env_setup, t_env_teardown),
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
