/* SPDX-License-Identifier: MIT */
/*
 * swapio_buf_alloc(): page alignment, zero fill, locking (checked in
 * /proc/self/status), huge-page advice, argument errors, SWAPIO_EMEMLOCK
 * when RLIMIT_MEMLOCK forbids the lock, and I/O through such buffers with
 * the engine under test; registered buffers on io_uring across free and
 * reuse; swapio_mem_hugepages() on the caller's memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "testing.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)

/*
 * The sanitizers intercept mlock() and make it a no-op that succeeds, so
 * what locking does cannot be seen under them.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MLOCK_REAL	0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define MLOCK_REAL	0
#endif
#endif
#ifndef MLOCK_REAL
#define MLOCK_REAL	1
#endif

static int not_null_target;
#define NOT_NULL	((void *)&not_null_target)

/* VmLck of this process in KiB, from /proc/self/status. */
static long locked_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *fp = fopen("/proc/self/status", "re");

	if (!fp)
		t_die("/proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmLck: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	if (kib < 0)
		t_die("no VmLck in /proc/self/status");
	return kib;
}

static void check_buffer(void *p, size_t size)
{
	const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);

	assert_non_null(p);
	assert_int_equal((uintptr_t)p % page, 0);
	assert_int_equal(t_first_nonzero(p, size), SIZE_MAX);
	/* Every byte is ours to write. */
	memset(p, 0xa5, size);
}

static void aligned_and_zeroed(void **state)
{
	static const size_t sizes[] = {
		1, 4095, 4096, 4097, 1 * MiB + 1, 8 * MiB,
	};
	static const unsigned int flags[] = { 0, SWAPIO_BUF_HUGE };
	void *a, *b;

	(void)state;
	for (size_t f = 0; f < T_ARRAY_SIZE(flags); f++) {
		for (size_t i = 0; i < T_ARRAY_SIZE(sizes); i++) {
			a = b = NULL;
			assert_int_equal(swapio_buf_alloc(sizes[i], flags[f],
							  &a), 0);
			check_buffer(a, sizes[i]);
			assert_int_equal(swapio_buf_alloc(sizes[i], flags[f],
							  &b), 0);
			check_buffer(b, sizes[i]);
			/* Two live buffers never overlap. */
			assert_true((char *)a + sizes[i] <= (char *)b ||
				    (char *)b + sizes[i] <= (char *)a);
			swapio_buf_free(a, sizes[i]);
			/* Memory handed back and taken again is zero again. */
			assert_int_equal(swapio_buf_alloc(sizes[i], flags[f],
							  &a), 0);
			check_buffer(a, sizes[i]);
			swapio_buf_free(a, sizes[i]);
			swapio_buf_free(b, sizes[i]);
		}
	}
}

/* LOCKED pins the pages (VmLck grows by the size), free unpins them. */
static void locked(void **state)
{
	static const unsigned int flags[] = {
		SWAPIO_BUF_LOCKED, SWAPIO_BUF_LOCKED | SWAPIO_BUF_HUGE,
	};
	const size_t size = 4 * MiB + 1;
	long before;
	void *p;

	(void)state;
	if (!MLOCK_REAL) {
		printf("SKIP: mlock() is a no-op under the sanitizers\n");
		skip();
	}
	if (geteuid() != 0) {
		printf("SKIP: locking 4 MiB needs root here\n");
		skip();
	}
	for (size_t f = 0; f < T_ARRAY_SIZE(flags); f++) {
		before = locked_kib();
		p = NULL;
		assert_int_equal(swapio_buf_alloc(size, flags[f], &p), 0);
		check_buffer(p, size);
		assert_true(locked_kib() >= before + (long)(size / KiB));
		swapio_buf_free(p, size);
		assert_int_equal(locked_kib(), before);
	}
}

static void invalid_arguments(void **state)
{
	void *p;

	(void)state;
	p = NOT_NULL;
	assert_int_equal(swapio_buf_alloc(0, 0, &p), -EINVAL);
	assert_null(p);
	p = NOT_NULL;
	assert_int_equal(swapio_buf_alloc(0, SWAPIO_BUF_LOCKED, &p), -EINVAL);
	assert_null(p);
	p = NOT_NULL;
	assert_int_equal(swapio_buf_alloc(4096, 1u << 2, &p), -EINVAL);
	assert_null(p);
	p = NOT_NULL;
	assert_int_equal(swapio_buf_alloc(4096, ~0u, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(swapio_buf_alloc(4096, 0, NULL), -EINVAL);
	/* More than the address space: -ENOMEM, nothing allocated. */
	p = NOT_NULL;
	assert_int_equal(swapio_buf_alloc(SIZE_MAX - 4095, 0, &p), -ENOMEM);
	assert_null(p);
	swapio_buf_free(NULL, 4096);
}

/*
 * In a child limited to 64 KiB of locked memory and without privileges:
 * a 1 MiB locked buffer is refused with SWAPIO_EMEMLOCK and nothing stays
 * allocated or locked, while what fits under the limit is locked, and
 * unlocked buffers are unaffected. Returns a bitmask of failed checks.
 */
static int lock_refused_child(void)
{
	const struct rlimit lim = { 64 * KiB, 64 * KiB };
	long before;
	void *p = NOT_NULL;
	int bad = 0;

	if (setrlimit(RLIMIT_MEMLOCK, &lim))
		return 64;
	if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
		return 65;
	before = locked_kib();
	if (swapio_buf_alloc(1 * MiB, SWAPIO_BUF_LOCKED, &p) !=
	    SWAPIO_EMEMLOCK)
		bad |= 1;
	if (p)
		bad |= 2;
	if (locked_kib() != before)
		bad |= 4;
	/* The refused buffer holds no share of the limit: 48 KiB fits. */
	if (swapio_buf_alloc(48 * KiB, SWAPIO_BUF_LOCKED, &p) || !p ||
	    locked_kib() < before + 48)
		bad |= 8;
	swapio_buf_free(p, 48 * KiB);
	if (swapio_buf_alloc(1 * MiB, SWAPIO_BUF_HUGE, &p) || !p)
		bad |= 16;
	swapio_buf_free(p, 1 * MiB);
	return bad;
}

static void lock_refused(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (!MLOCK_REAL) {
		printf("SKIP: mlock() is a no-op under the sanitizers\n");
		skip();
	}
	if (geteuid() != 0) {
		printf("SKIP: dropping privileges needs root\n");
		skip();
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(lock_refused_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Locked, huge-page buffers carry I/O like any other memory. */
static void io_through_buffers(void **state)
{
	const size_t n = 4 * MiB + 5;
	const unsigned int flags = geteuid() == 0 ?
				   SWAPIO_BUF_LOCKED | SWAPIO_BUF_HUGE :
				   SWAPIO_BUF_HUGE;
	struct swapio_config cfg = { .block_size = 256 * KiB, .threads = 2 };
	char *dir = t_tmpdir(), *path = t_path(dir, "data");
	unsigned char *src, *dst;
	swapio_handle *h;
	swapio_file *f;
	void *a, *b;

	(void)state;
	assert_int_equal(swapio_buf_alloc(n, flags, &a), 0);
	assert_int_equal(swapio_buf_alloc(n, flags, &b), 0);
	src = a;
	dst = b;
	t_fill_random(src, n, 17);
	h = t_handle(cfg);
	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	assert_int_equal(swapio_pwrite(h, f, src, n, 0), n);
	assert_int_equal(swapio_pread(h, f, dst, n, 0), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	swapio_buf_free(src, n);
	swapio_buf_free(dst, n);
	free(path);
	t_rmdir(dir);
}

/*
 * Locked buffers go to io_uring as registered (fixed) buffers; freeing one
 * and getting the same address back for new memory must never let a ring
 * use the old pages: each round writes fresh data from a buffer that
 * replaced the last one, reads it back into another, and checks both
 * against the file with plain pread(2).
 */
static void registered_buffers_follow_free(void **state)
{
	const size_t n = 2 * MiB + 4096;
	struct swapio_config cfg = { .block_size = 256 * KiB, .threads = 2 };
	char *dir = t_tmpdir(), *path = t_path(dir, "data");
	unsigned char *want = malloc(n);
	bool root = geteuid() == 0, uring = t_engine() == SWAPIO_ENGINE_URING;
	void *last = NULL;
	unsigned int reused = 0;
	struct swapio_stats st;
	swapio_handle *h;
	swapio_file *f;
	int fd;

	(void)state;
	assert_non_null(want);
	h = t_handle(cfg);
	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (unsigned int round = 0; round < 8; round++) {
		void *a, *b;
		int ret = swapio_buf_alloc(n, SWAPIO_BUF_LOCKED, &a);

		if (ret == SWAPIO_EMEMLOCK) {
			print_message("no locked memory here: skipped\n");
			break;
		}
		assert_int_equal(ret, 0);
		reused += a == last;
		t_fill_random(a, n, 100 + round);
		memcpy(want, a, n);
		assert_int_equal(swapio_pwrite(h, f, a, n, 0), n);
		assert_int_equal(pread(fd, want, n, 0), (ssize_t)n);
		assert_int_equal(t_first_diff(want, a, n), SIZE_MAX);
		swapio_buf_free(a, n);
		assert_int_equal(swapio_buf_alloc(n, SWAPIO_BUF_LOCKED, &b), 0);
		memset(b, 0xa5, n);
		assert_int_equal(swapio_pread(h, f, b, n, 0), n);
		assert_int_equal(t_first_diff(b, want, n), SIZE_MAX);
		last = b;
		swapio_buf_free(b, n);
	}
	swapio_handle_stats(h, &st);
	if (uring && root) {
		/* Every request came from registered memory, and the test
		 * really moved new memory to old addresses. */
		assert_int_equal(st.registered, st.requests);
		assert_true(reused > 0);
	} else if (!uring) {
		assert_int_equal(st.registered, 0);
	}
	close(fd);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);

	/* SWAPIO_CFG_NO_REGISTER: the same I/O, nothing registered. */
	cfg.flags = SWAPIO_CFG_NO_REGISTER;
	h = t_handle(cfg);
	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ, &f), 0);
	{
		void *a;

		if (swapio_buf_alloc(n, SWAPIO_BUF_LOCKED, &a) == 0) {
			assert_int_equal(swapio_pread(h, f, a, n, 0), n);
			assert_int_equal(t_first_diff(a, want, n), SIZE_MAX);
			swapio_buf_free(a, n);
		}
	}
	swapio_handle_stats(h, &st);
	assert_int_equal(st.registered, 0);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(want);
	free(path);
	t_rmdir(dir);
}

/* Whether the kernel collapses anonymous memory on request: THP not
 * "never" (MADV_COLLAPSE works in "madvise" mode too). */
static bool thp_available(void)
{
	char line[128] = "";
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

	if (!fp)
		return false;
	if (!fgets(line, sizeof(line), fp))
		line[0] = 0;
	fclose(fp);
	return line[0] && !strstr(line, "[never]");
}

/* AnonHugePages, in bytes, of the mappings inside [lo, hi). */
static uint64_t huge_bytes_in(uintptr_t lo, uintptr_t hi)
{
	char line[512];
	uint64_t sum = 0;
	bool inside = false;
	FILE *fp = fopen("/proc/self/smaps", "re");

	if (!fp)
		t_die("/proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), fp)) {
		unsigned long a, b, kib;

		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') <
		    strchr(line, ' '))
			inside = a >= lo && b <= hi;
		else if (inside &&
			 sscanf(line, "AnonHugePages: %lu kB", &kib) == 1)
			sum += (uint64_t)kib * 1024;
	}
	fclose(fp);
	return sum;
}

/*
 * The caller's own malloc memory, collapsed into huge pages in place: the
 * whole 2 MiB pages inside the range become huge pages, the content does
 * not change, and I/O through it (at an odd offset too) is exact.
 */
static void caller_memory_hugepages(void **state)
{
	const size_t n = 9 * MiB + 123, hp = 2 * MiB;
	struct swapio_config cfg = { .block_size = 1 * MiB, .threads = 2 };
	char *dir, *path;
	unsigned char *mem = malloc(n), *copy = t_random_buf(n, 5), *back;
	uintptr_t lo, hi;
	swapio_handle *h;
	swapio_file *f;
	int64_t got;

	(void)state;
	assert_non_null(mem);
	memcpy(mem, copy, n);
	lo = ((uintptr_t)mem + hp - 1) & ~(uintptr_t)(hp - 1);
	hi = ((uintptr_t)mem + n) & ~(uintptr_t)(hp - 1);
	got = swapio_mem_hugepages(mem, n);
	if (!thp_available()) {
		assert_int_equal(got, -EINVAL);
	} else {
		assert_int_equal(got, (int64_t)(hi - lo));
		assert_int_equal(huge_bytes_in(lo, hi), hi - lo);
	}
	assert_int_equal(t_first_diff(mem, copy, n), SIZE_MAX);

	/* Memory never touched: faulted in as huge pages, still zero. */
	back = mmap(NULL, n, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(back != MAP_FAILED);
	lo = ((uintptr_t)back + hp - 1) & ~(uintptr_t)(hp - 1);
	hi = ((uintptr_t)back + n) & ~(uintptr_t)(hp - 1);
	got = swapio_mem_hugepages(back, n);
	if (thp_available()) {
		assert_int_equal(got, (int64_t)(hi - lo));
		assert_int_equal(huge_bytes_in(lo, hi), hi - lo);
	}
	for (size_t i = 0; i < n; i += 4096)
		assert_int_equal(back[i], 0);
	assert_int_equal(munmap(back, n), 0);

	dir = t_tmpdir();
	path = t_path(dir, "data");
	back = malloc(n);
	assert_non_null(back);
	h = t_handle(cfg);
	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	assert_int_equal(swapio_pwrite(h, f, mem + 1, n - 1, 4096), n - 1);
	assert_int_equal(swapio_pread(h, f, back, n - 1, 4096), n - 1);
	assert_int_equal(t_first_diff(back, copy + 1, n - 1), SIZE_MAX);
	assert_int_equal(swapio_file_close(f), 0);
	swapio_handle_destroy(h);
	free(back);
	free(mem);
	free(copy);
	free(path);
	t_rmdir(dir);
}

static void hugepages_arguments(void **state)
{
	const size_t hp = 2 * MiB;
	char small[64];
	void *p;
	uintptr_t aligned;

	(void)state;
	assert_int_equal(swapio_mem_hugepages(NULL, 4096), -EINVAL);
	assert_int_equal(swapio_mem_hugepages(small, 0), 0);
	/* No whole huge page inside: nothing to do. */
	assert_int_equal(swapio_mem_hugepages(small, sizeof(small)), 0);
	assert_int_equal(swapio_mem_hugepages((void *)(UINTPTR_MAX - 10), 4096),
			 -EINVAL);
	/* A hole in the address space. */
	p = mmap(NULL, 3 * hp, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	aligned = ((uintptr_t)p + hp - 1) & ~(uintptr_t)(hp - 1);
	assert_int_equal(munmap(p, 3 * hp), 0);
	assert_int_equal(swapio_mem_hugepages((void *)aligned, hp), -ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aligned_and_zeroed),
		cmocka_unit_test(locked),
		cmocka_unit_test(invalid_arguments),
		cmocka_unit_test(lock_refused),
		cmocka_unit_test(io_through_buffers),
		cmocka_unit_test(caller_memory_hugepages),
		cmocka_unit_test(hugepages_arguments),
		cmocka_unit_test(registered_buffers_follow_free),
	};

	t_engine();	/* exit 77 now if the engine cannot run here */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
