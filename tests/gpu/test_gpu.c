/* SPDX-License-Identifier: MIT */
/*
 * Device memory through the CUDA stand-in (tests/gpu/cuda_standin.c, loaded
 * by SWAPIO_CUDA_LIBRARY and SWAPIO_CUFILE_LIBRARY as swapio loads the
 * real libraries): odd sizes and offsets byte for byte both ways, async
 * ops in flight together and from four threads, copies overlapping file
 * I/O, staging buffers never reused before their events completed (the
 * stand-in checks every copy's source), the caller's stream waited for,
 * CUDA errors and a missing device reported with the failed call named,
 * cuFile used when asked, its errors falling back to staging with a note,
 * the auto probe, and the override by config and environment.
 *
 * With SWAPIO_TEST_GPU set (each its own ctest, a process of its own,
 * since the runtime is chosen once per process): "missing", the CUDA
 * library cannot be loaded, every device call says SWAPIO_ENOCUDA and host
 * I/O still works; "choice", the first candidate runtime answers 35
 * (driver too old) and the next is used; "loaded", a runtime already in
 * the process is used before the candidates in order; "nodevice", no
 * device: SWAPIO_ENOCUDA at once, the note said once; "real", the real
 * libcudart.so of this machine, where there is no driver; "stall", a
 * cuFileDriverOpen() that does not come back; "compat", cuFile without
 * nvidia-fs; "nocufile", no cuFile by its usual names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <pthread.h>

#include "gpu.h"
#include "testing.h"
#include "util.h"

#define KiB	1024u
#define CHUNK	(64u * KiB)

/* The stand-in, reached the way a test program reaches CUDA. */
static struct {
	void *lib;
	int (*malloc_)(void **p, size_t n);
	int (*free_)(void *p);
	int (*set)(const char *name, long v);
	long (*get)(const char *name);
	int (*stream_create)(void **s);
	int (*memcpy_async)(void *d, const void *s, size_t n, int kind,
			    void *st);
	int (*stream_sync)(void *s);
	int (*stream_destroy)(void *s);
	int (*malloc_managed)(void **p, size_t n, unsigned int flags);
	int (*set_device)(int dev);
} sd;

static void *sym(const char *name)
{
	void *p = dlsym(sd.lib, name);

	if (!p)
		t_die("stand-in lacks %s", name);
	return p;
}

/* The stand-in: SWAPIO_CUDA_LIBRARY's last candidate, or @path. */
static void standin_load_from(const char *path)
{
	void *p;

	sd.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!sd.lib)
		t_die("dlopen %s: %s", path, dlerror());
#define LOAD(field, name)	(p = sym(name), memcpy(&sd.field, &p, sizeof(p)))
	LOAD(malloc_, "cudaMalloc");
	LOAD(free_, "cudaFree");
	LOAD(set, "swapio_standin_set");
	LOAD(get, "swapio_standin_get");
	LOAD(stream_create, "cudaStreamCreate");
	LOAD(memcpy_async, "cudaMemcpyAsync");
	LOAD(stream_sync, "cudaStreamSynchronize");
	LOAD(stream_destroy, "cudaStreamDestroy");
	LOAD(malloc_managed, "cudaMallocManaged");
	LOAD(set_device, "cudaSetDevice");
#undef LOAD
}

static void standin_load(void)
{
	const char *path = getenv("SWAPIO_CUDA_LIBRARY");

	if (!path)
		t_die("SWAPIO_CUDA_LIBRARY is not set (run under ctest)");
	if (strrchr(path, ':'))
		path = strrchr(path, ':') + 1;
	standin_load_from(path);
}

static void knobs_reset(void)
{
	static const char *const names[] = {
		"copy_delay_us", "fail_memcpy", "fail_register",
		"fail_event_record", "cufile_fail", "cufile_delay_us",
		"violations", "copies", "unpinned_copies", "cufile_calls",
		"waits", "cufile_races", "cufile_refuse", "cufile_fail_errno",
		"cufile_registers", "cufile_deregisters", "buf_registers",
		"managed_explicit", "stream_syncs", "cufile_register_delay_us",
	};

	for (size_t i = 0; i < T_ARRAY_SIZE(names); i++)
		sd.set(names[i], 0);
	sd.set("devices", 1);
	setenv("SWAPIO_GPU_CHUNK", "65536", 1);
	setenv("SWAPIO_GPU_PATH", "staging", 1);
	unsetenv("SWAPIO_FAULT");
}

static unsigned char *dev_alloc(size_t n)
{
	void *p;

	assert_int_equal(sd.malloc_(&p, n), 0);
	return p;
}

static unsigned char *dev_random(size_t n, uint64_t seed)
{
	unsigned char *p = dev_alloc(n);

	t_fill_random(p, n, seed);
	return p;
}

static swapio_handle *handle(unsigned int gpu_path, uint32_t flags)
{
	struct swapio_config cfg = { .block_size = 16 * KiB, .flags = flags,
				     .gpu_path = gpu_path };

	return t_handle(cfg);
}

static swapio_file *open_rw(swapio_handle *h, const char *path)
{
	swapio_file *f;

	assert_int_equal(swapio_file_open(h, path, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	return f;
}

static swapio_file *direct_or_skip(swapio_handle *h, const char *path)
{
	swapio_file *f = open_rw(h, path);

	if (!swapio_file_direct(f)) {
		swapio_file_close(f);
		swapio_handle_destroy(h);
		skip();
	}
	return f;
}

/*
 * What most tests share: a handle, a file open on it, and device buffers
 * the test allocates (fx_down frees those it finds set).
 */
struct fx {
	swapio_handle	*h;
	swapio_file	*f;
	unsigned char	*src, *dst;
};

/* A handle on @gpu_path, @path open on it (direct, else skip, if @direct). */
static void fx_up(struct fx *x, unsigned int gpu_path, const char *path,
		  bool direct)
{
	x->h = handle(gpu_path, 0);
	x->f = direct ? direct_or_skip(x->h, path) : open_rw(x->h, path);
}

/* Closes the file, destroys the handle, frees src and dst if set. */
static void fx_down(struct fx *x)
{
	swapio_file_close(x->f);
	swapio_handle_destroy(x->h);
	if (x->src)
		sd.free_(x->src);
	if (x->dst)
		sd.free_(x->dst);
	*x = (struct fx){ 0 };
}

static char *note(swapio_handle *h)
{
	static char buf[1024];

	swapio_handle_gpu_note(h, buf, sizeof(buf));
	return buf;
}

static void expect_note(swapio_handle *h, const char *what)
{
	const char *n = note(h);

	if (!strstr(n, what))
		fail_msg("note \"%s\" lacks \"%s\"", n, what);
}

/* Write @src from "device" memory, check the file, read it back. */
static void roundtrip(swapio_handle *h, swapio_file *f, const char *path,
		      size_t n, uint64_t off, uint64_t seed)
{
	unsigned char *src = dev_random(n, seed), *dst = dev_alloc(n);
	unsigned char *disk;
	size_t size;

	ssize_t got = swapio_dev_pwrite(h, f, 0, src, n, off, NULL);

	if (got != (ssize_t)n)
		fail_msg("dev_pwrite of %zu at %llu: %zd (%s); note: %s", n,
			 (unsigned long long)off, got, swapio_strerror((int)got),
			 note(h));
	disk = t_read_file(path, &size);
	assert_true(size >= off + n);
	assert_int_equal(t_first_diff(disk + off, src, n), SIZE_MAX);
	assert_int_equal(swapio_dev_pread(h, f, 0, dst, n, off, NULL), n);
	assert_int_equal(t_first_diff(dst, src, n), SIZE_MAX);
	free(disk);
	sd.free_(src);
	sd.free_(dst);
}

/* ------------------------------------------------------------------ */

static void odd_sizes_both_ways(void **state)
{
	static const size_t sizes[] = { 1, 4095, 4097, CHUNK, CHUNK + 1,
					3 * CHUNK + 17, 9 * CHUNK - 5 };
	static const uint64_t offs[] = { 0, 7, 4096, 65536 + 511 };
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	sd.set("copy_delay_us", 100);
	fx_up(&x, 0, env->path, false);
	for (size_t i = 0; i < T_ARRAY_SIZE(sizes); i++)
		for (size_t j = 0; j < T_ARRAY_SIZE(offs); j++)
			roundtrip(x.h, x.f, env->path, sizes[i], offs[j],
				  i * 10 + j);
	assert_int_equal(sd.get("violations"), 0);
	assert_int_equal(sd.get("unpinned_copies"), 0);
	assert_int_equal(swapio_dev_path(x.h, 0, 1), SWAPIO_GPU_STAGING);
	assert_int_equal(swapio_dev_path(x.h, 1, 1), -ENODEV);
	fx_down(&x);
	assert_int_equal(sd.get("registered"), 0);	/* all unregistered */
}

static void read_past_end_is_short(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };
	char *path = t_path(env->dir, "short");

	x.src = dev_random(3 * CHUNK + 100, 5);
	x.dst = dev_alloc(8 * CHUNK);
	knobs_reset();
	fx_up(&x, 0, path, false);
	free(path);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, 3 * CHUNK + 100,
					   0, NULL), 3 * CHUNK + 100);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, 8 * CHUNK, 0,
					  NULL), 3 * CHUNK + 100);
	assert_int_equal(t_first_diff(x.dst, x.src, 3 * CHUNK + 100), SIZE_MAX);
	assert_int_equal(x.dst[3 * CHUNK + 100], 0xa5);	/* untouched */
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, 100,
					  4 * CHUNK, NULL), 0);
	fx_down(&x);
}

/*
 * Slow copies and slow writes: each chunk's copy must be queued while
 * file ops of the same op are still running, both ways, and no staging
 * buffer may be refilled before its copy ran (the stand-in counts).
 */
static void copies_overlap_file_io(void **state)
{
	struct t_env *env = *state;
	const size_t n = 16 * CHUNK;
	struct swapio__gpu_stats st;
	uint64_t w_overlapped;
	struct fx x = { 0 };

	x.src = dev_random(n, 11);
	x.dst = dev_alloc(n);
	knobs_reset();
	sd.set("copy_delay_us", 5000);
	setenv("SWAPIO_FAULT", "delay_ms=20", 1);
	x.h = handle(0, 0);
	unsetenv("SWAPIO_FAULT");
	x.f = open_rw(x.h, env->path);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL), n);
	swapio__gpu_stats(x.h, &st);
	print_message("overlapped: %llu of 16\n",
		      (unsigned long long)st.overlapped);
	w_overlapped = st.overlapped;
	assert_int_equal(st.copies, 16);
	/* Copies run beside earlier writes (all but two, unless slowed). */
	assert_true(st.overlapped >= 8);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, n, 0, NULL), n);
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.copies, 32);
	/* Most copies run beside reads ahead. */
	print_message("overlapped: %llu of 32\n",
		      (unsigned long long)st.overlapped);
	assert_true(st.overlapped >= w_overlapped + 8);
	assert_int_equal(t_first_diff(x.dst, x.src, n), SIZE_MAX);
	assert_int_equal(sd.get("violations"), 0);
	assert_int_equal(st.staged_bytes, 2 * n);
	assert_int_equal(st.jobs, 2);
	fx_down(&x);
}

/* The stand-in's own check can fail: a source changed before its copy. */
static void standin_detects_early_reuse(void **state)
{
	unsigned char *host = t_random_buf(4096, 3), *dev = dev_alloc(4096);
	void *s;

	(void)state;
	knobs_reset();
	sd.set("copy_hold", 1);
	assert_int_equal(sd.stream_create(&s), 0);
	assert_int_equal(sd.memcpy_async(dev, host, 4096, 1, s), 0);
	host[17] ^= 1;	/* reused before the copy's event completed */
	sd.set("copy_hold", 0);
	assert_int_equal(sd.stream_sync(s), 0);
	assert_int_equal(sd.get("violations"), 1);
	assert_int_equal(sd.get("unpinned_copies"), 1);
	sd.stream_destroy(s);
	sd.free_(dev);
	free(host);
}

/*
 * The caller's stream is still filling the buffer (a slow copy queued on
 * it) when the write is submitted: what reaches the file is what the
 * stream wrote, not what was there before.
 */
static void caller_stream_is_waited_for(void **state)
{
	struct t_env *env = *state;
	const size_t n = 5 * CHUNK + 3;
	unsigned char *want = t_random_buf(n, 21), *dev = dev_alloc(n);
	unsigned char *disk;
	size_t size;
	struct fx x = { 0 };
	void *s;

	knobs_reset();
	fx_up(&x, 0, env->path, false);
	assert_int_equal(sd.stream_create(&s), 0);
	sd.set("copy_delay_us", 50000);
	assert_int_equal(sd.memcpy_async(dev, want, n, 1, s), 0);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev, n, 0, s), n);
	sd.set("copy_delay_us", 0);
	assert_true(sd.get("waits") >= 1);
	disk = t_read_file(env->path, &size);
	assert_true(size >= n);
	assert_int_equal(t_first_diff(disk, want, n), SIZE_MAX);
	free(disk);
	sd.stream_destroy(s);
	fx_down(&x);
	sd.free_(dev);
	free(want);
}

static void own_stream_needs_no_event(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };
	void *s, *s2;

	x.src = dev_random(CHUNK, 2);
	knobs_reset();
	fx_up(&x, 0, env->path, false);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s), 0);
	assert_non_null(s);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s2), 0);
	assert_ptr_equal(s, s2);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, CHUNK, 0, s),
			 CHUNK);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, CHUNK, 0,
					   SWAPIO_DEV_NO_SYNC), CHUNK);
	assert_int_equal(sd.get("waits"), 0);
	fx_down(&x);
}

#define NR_ASYNC	12

static void async_ops_in_flight(void **state)
{
	struct t_env *env = *state;
	unsigned char *src[NR_ASYNC], *dst[NR_ASYNC];
	swapio_op *op[NR_ASYNC];
	size_t len[NR_ASYNC];
	struct fx x = { 0 };
	char *path2 = t_path(env->dir, "bypath");

	knobs_reset();
	sd.set("copy_delay_us", 200);
	fx_up(&x, 0, env->path, false);
	for (int i = 0; i < NR_ASYNC; i++) {
		len[i] = (size_t)(i + 1) * 9000 + 13;
		src[i] = dev_random(len[i], 100 + i);
		dst[i] = dev_alloc(len[i]);
		assert_int_equal(swapio_dev_submit_write(x.h, x.f, 0, src[i],
							 len[i], (uint64_t)i *
							 200000 + 3, NULL,
							 &op[i]), 0);
	}
	for (int i = NR_ASYNC - 1; i >= 0; i--) {
		assert_int_equal(swapio_op_wait(op[i], -1), len[i]);
		swapio_op_free(op[i]);
	}
	for (int i = 0; i < NR_ASYNC; i++)
		assert_int_equal(swapio_dev_submit_read(x.h, x.f, 0, dst[i],
							len[i], (uint64_t)i *
							200000 + 3, NULL,
							&op[i]), 0);
	assert_int_equal(swapio_wait_all(x.h, -1), 0);
	for (int i = 0; i < NR_ASYNC; i++) {
		assert_int_equal(swapio_op_done(op[i]), 1);
		assert_int_equal(swapio_op_wait(op[i], 0), len[i]);
		assert_int_equal(t_first_diff(dst[i], src[i], len[i]), SIZE_MAX);
		swapio_op_free(op[i]);
	}
	/* By path: the file is opened at submission, closed at the end. */
	assert_int_equal(swapio_dev_submit_write_path(x.h, path2, 0, src[3],
						      len[3], 5, NULL, &op[0]),
			 0);
	assert_int_equal(swapio_op_wait(op[0], -1), len[3]);
	swapio_op_free(op[0]);
	memset(dst[3], 0, len[3]);
	assert_int_equal(swapio_dev_submit_read_path(x.h, path2, 0, dst[3],
						     len[3], 5, NULL, &op[0]),
			 0);
	assert_int_equal(swapio_op_wait(op[0], -1), len[3]);
	swapio_op_free(op[0]);
	assert_int_equal(t_first_diff(dst[3], src[3], len[3]), SIZE_MAX);
	assert_int_equal(swapio_dev_submit_read_path(x.h, "/nonexistent/x", 0,
						     dst[3], 1, 0, NULL,
						     &op[0]), -ENOENT);
	assert_null(op[0]);
	assert_int_equal(sd.get("violations"), 0);
	fx_down(&x);
	for (int i = 0; i < NR_ASYNC; i++) {
		sd.free_(src[i]);
		sd.free_(dst[i]);
	}
	free(path2);
}

struct mt_arg {
	swapio_handle	*h;
	swapio_file	*f;
	unsigned int	id;
	int		bad;
};

static void *mt_main(void *p)
{
	struct mt_arg *a = p;
	size_t n = 3 * CHUNK + a->id * 1000 + 1;
	uint64_t off = (uint64_t)a->id * 1000000 + a->id;
	unsigned char *src, *dst;

	for (unsigned int round = 0; round < 6; round++) {
		src = dev_random(n, a->id * 100 + round);
		dst = dev_alloc(n);
		if (swapio_dev_pwrite(a->h, a->f, 0, src, n, off, NULL) !=
		    (ssize_t)n ||
		    swapio_dev_pread(a->h, a->f, 0, dst, n, off, NULL) !=
		    (ssize_t)n || t_first_diff(dst, src, n) != SIZE_MAX)
			a->bad++;
		sd.free_(src);
		sd.free_(dst);
	}
	return NULL;
}

static void threads_share_a_handle(void **state)
{
	struct t_env *env = *state;
	struct mt_arg args[4];
	pthread_t th[4];
	struct fx x = { 0 };

	knobs_reset();
	sd.set("copy_delay_us", 50);
	fx_up(&x, 0, env->path, false);
	for (unsigned int i = 0; i < 4; i++) {
		args[i] = (struct mt_arg){ x.h, x.f, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, mt_main,
						&args[i]), 0);
	}
	for (unsigned int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	assert_int_equal(sd.get("violations"), 0);
	fx_down(&x);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static void bad_arguments(void **state)
{
	struct t_env *env = *state;
	unsigned char *dev = dev_alloc(4096);
	struct fx x = { 0 };
	swapio_file *ro;
	swapio_op *op = (swapio_op *)1;
	void *s;

	knobs_reset();
	fx_up(&x, 0, env->path, false);
	assert_int_equal(swapio_file_open(x.h, env->path, SWAPIO_O_READ, &ro),
			 0);
	assert_int_equal(swapio_dev_submit_write(x.h, x.f, -1, dev, 1, 0, NULL,
						 &op), -EINVAL);
	assert_null(op);
	assert_int_equal(swapio_dev_submit_write(x.h, x.f, SWAPIO_DEV_MAX, dev,
						 1, 0, NULL, &op), -EINVAL);
	assert_int_equal(swapio_dev_submit_write(x.h, NULL, 0, dev, 1, 0, NULL,
						 &op), -EINVAL);
	assert_int_equal(swapio_dev_submit_write(NULL, x.f, 0, dev, 1, 0, NULL,
						 &op), -EINVAL);
	assert_int_equal(swapio_dev_submit_write(x.h, x.f, 0, dev, 1, 0, NULL,
						 NULL), -EINVAL);
	assert_int_equal(swapio_dev_pwrite(x.h, ro, 0, dev, 1, 0, NULL),
			 -EBADF);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, NULL, 1, 0, NULL),
			 -EINVAL);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, dev, 1, INT64_MAX, NULL),
			 -EINVAL);
	assert_int_equal(swapio_dev_stream(x.h, 0, NULL), -EINVAL);
	assert_int_equal(swapio_dev_path(x.h, -1, 0), -EINVAL);
	/* A device the stand-in does not have: the call is named. */
	assert_int_equal(swapio_dev_stream(x.h, 3, &s), SWAPIO_ECUDA);
	expect_note(x.h, "cudaSetDevice: invalid device ordinal");
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev, 0, 0, NULL), 0);
	swapio_file_close(ro);
	fx_down(&x);
	sd.free_(dev);
}

static void failed_copy_fails_the_op(void **state)
{
	struct t_env *env = *state;
	const size_t n = 6 * CHUNK;
	struct fx x = { 0 };

	x.src = dev_random(n, 31);
	x.dst = dev_alloc(n);
	knobs_reset();
	fx_up(&x, 0, env->path, false);
	sd.set("fail_memcpy", 3);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL),
			 SWAPIO_ECUDA);
	expect_note(x.h, "cudaMemcpyAsync: invalid argument");
	assert_non_null(strstr(swapio_strerror(SWAPIO_ECUDA), "CUDA"));
	/* The handle goes on working. */
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL), n);
	sd.set("fail_memcpy", 2);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, n, 0, NULL),
			 SWAPIO_ECUDA);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, n, 0, NULL), n);
	assert_int_equal(t_first_diff(x.dst, x.src, n), SIZE_MAX);
	/* A failing stream event fails the submit, and nothing runs. */
	sd.set("fail_event_record", 1);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL),
			 SWAPIO_ECUDA);
	expect_note(x.h, "cudaEventRecord");
	assert_int_equal(swapio_wait_all(x.h, 0), 0);
	fx_down(&x);
}

static void io_error_fails_the_op(void **state)
{
	struct t_env *env = *state;
	const size_t n = 6 * CHUNK;
	struct fx x = { 0 };

	x.src = dev_random(n, 32);
	knobs_reset();
	setenv("SWAPIO_FAULT", "errno=EIO,nth=3", 1);
	x.h = handle(0, 0);
	unsetenv("SWAPIO_FAULT");
	x.f = open_rw(x.h, env->path);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL),
			 -EIO);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 0, NULL), n);
	fx_down(&x);
}

static void unpinned_staging_still_works(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	sd.set("fail_register", 1);
	fx_up(&x, 0, env->path, false);
	roundtrip(x.h, x.f, env->path, 3 * CHUNK + 9, 1, 40);
	expect_note(x.h, "cudaHostRegister: out of memory");
	expect_note(x.h, "staging left unpinned");
	assert_true(sd.get("unpinned_copies") > 0);
	fx_down(&x);
}

static void no_device(void **state)
{
	struct t_env *env = *state;
	unsigned char *dev = dev_alloc(4096);
	struct fx x = { 0 };
	void *s;

	knobs_reset();
	sd.set("devices", 0);
	fx_up(&x, 0, env->path, false);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev, 4096, 0, NULL),
			 SWAPIO_ECUDA);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s), SWAPIO_ECUDA);
	expect_note(x.h, "cudaGetDevice: no CUDA-capable device");
	assert_int_equal(swapio_dev_path(x.h, 0, 0), -ENODEV);
	sd.set("devices", 1);
	fx_down(&x);
	sd.free_(dev);
}

/* A failed cudaHostRegister() is tolerated, and not left pending. */
static void tolerated_error_is_cleared(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	sd.set("fail_register", 1);
	fx_up(&x, 0, env->path, false);
	roundtrip(x.h, x.f, env->path, CHUNK + 9, 1, 41);
	expect_note(x.h, "cudaHostRegister: out of memory");
	/* The caller's next CUDA call must not see swapio's error. */
	assert_int_equal(sd.get("last_error"), 0);
	fx_down(&x);
}

/* Managed memory is copied with cudaMemcpyDefault, both ways. */
static void managed_memory(void **state)
{
	struct t_env *env = *state;
	const size_t n = 3 * CHUNK + 5;
	unsigned char *disk;
	struct fx x = { 0 };
	size_t size;

	knobs_reset();
	assert_int_equal(sd.malloc_managed((void **)&x.src, n, 1), 0);
	assert_int_equal(sd.malloc_managed((void **)&x.dst, n, 1), 0);
	t_fill_random(x.src, n, 42);
	fx_up(&x, 0, env->path, false);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, n, 3, NULL), n);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, x.dst, n, 3, NULL), n);
	assert_int_equal(t_first_diff(x.dst, x.src, n), SIZE_MAX);
	disk = t_read_file(env->path, &size);
	assert_int_equal(t_first_diff(disk + 3, x.src, n), SIZE_MAX);
	assert_int_equal(sd.get("managed_explicit"), 0);
	assert_int_equal(sd.get("violations"), 0);
	free(disk);
	fx_down(&x);
}

/* Memory of another device, or host memory: a clear error at submit. */
static void pointer_checked(void **state)
{
	struct t_env *env = *state;
	unsigned char *host = t_random_buf(4096, 1);
	unsigned char *dev0 = dev_alloc(4096);
	struct fx x = { 0 };

	knobs_reset();
	fx_up(&x, 0, env->path, false);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, host, 4096, 0, NULL),
			 -EINVAL);
	assert_non_null(strstr(swapio_error_detail(), "host memory"));
	sd.set("devices", 2);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 1, dev0, 4096, 0, NULL),
			 -EINVAL);
	assert_non_null(strstr(swapio_error_detail(),
			       "CUDA device 0, not of device 1"));
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev0, 4096, 0, NULL),
			 4096);
	assert_string_equal(swapio_error_detail(), "");
	assert_int_equal(swapio_wait_all(x.h, 0), 0);
	fx_down(&x);
	sd.free_(dev0);
	free(host);
}

struct ctx_arg {
	swapio_handle	*h;
	swapio_file	*f;
	const char	*path;
	unsigned char	*dev1;
	int		start;	/* device the thread sets first; -1: none */
	long		seen[4];
};

/*
 * A thread that never chose a device submits on device 1, then enters
 * and leaves device 1: it must end with no device current, not with a
 * context on device 0 made by a restore. A thread on device 0 that
 * submits on device 1 gets device 0 back. A thread that makes, uses and
 * destroys a handle keeps no context either (the stand-in, as the
 * runtime does, binds device 0 to a thread that calls without one).
 */
static void *ctx_main(void *p)
{
	struct ctx_arg *a = p;
	struct swapio_dev_saved sv;

	if (a->start >= 0)
		sd.set_device(a->start);
	a->seen[0] = sd.get("current");
	if (swapio_dev_pwrite(a->h, a->f, 1, a->dev1, CHUNK, 0, NULL) !=
	    (ssize_t)CHUNK)
		a->seen[0] = -100;
	a->seen[1] = sd.get("current");
	if (swapio_dev_enter(a->h, 1, &sv))
		a->seen[2] = -100;
	else
		a->seen[2] = sd.get("current");
	swapio_dev_leave(a->h, &sv);
	a->seen[3] = sd.get("current");
	return NULL;
}

/* A handle made, used on device 1 and destroyed in a fresh thread. */
static void *ctx_destroy_main(void *p)
{
	struct ctx_arg *a = p;
	swapio_handle *h = handle(0, 0);
	swapio_file *f = open_rw(h, a->path);

	if (swapio_dev_pwrite(h, f, 1, a->dev1, CHUNK, 0, NULL) !=
	    (ssize_t)CHUNK)
		a->seen[0] = -100;
	swapio_file_close(f);
	swapio_handle_destroy(h);
	a->seen[1] = sd.get("current");
	return NULL;
}

static void thread_device_restored(void **state)
{
	struct t_env *env = *state;
	unsigned char *dev1;
	struct ctx_arg a;
	struct fx x = { 0 };
	pthread_t t;

	knobs_reset();
	sd.set("devices", 2);
	fx_up(&x, 0, env->path, false);
	assert_int_equal(sd.set_device(1), 0);	/* allocate on device 1 */
	dev1 = dev_random(CHUNK, 130);
	assert_int_equal(sd.set_device(0), 0);
	for (int start = -1; start <= 0; start++) {
		a = (struct ctx_arg){ x.h, x.f, env->path, dev1, start, { 0 } };
		assert_int_equal(pthread_create(&t, NULL, ctx_main, &a), 0);
		pthread_join(t, NULL);
		assert_int_equal(a.seen[0], start);
		assert_int_equal(a.seen[1], start);	/* as it was */
		assert_int_equal(a.seen[2], 1);
		assert_int_equal(a.seen[3], start);
	}
	a = (struct ctx_arg){ x.h, x.f, env->path, dev1, -1, { 0 } };
	assert_int_equal(pthread_create(&t, NULL, ctx_destroy_main, &a), 0);
	pthread_join(t, NULL);
	assert_int_equal(a.seen[0], 0);
	assert_int_equal(a.seen[1], -1);	/* its teardown made none */
	/* Device 0 still works. */
	roundtrip(x.h, x.f, env->path, 1, 0, 131);
	fx_down(&x);
	sd.free_(dev1);
}

/* The note: no clause twice, the newest last. */
static void note_keeps_newest_once(void **state)
{
	struct t_env *env = *state;
	const char *n, *tail = "cudaSetDevice: invalid device ordinal "
			       "(stand-in) (101)";
	struct fx x = { 0 };
	size_t len;
	void *s;

	x.src = dev_random(2 * CHUNK, 140);
	knobs_reset();
	fx_up(&x, 0, env->path, false);
	for (int i = 0; i < 20; i++)
		assert_int_equal(swapio_dev_stream(x.h, 5, &s), SWAPIO_ECUDA);
	len = swapio_handle_gpu_note(x.h, NULL, 0);
	sd.set("fail_memcpy", 1);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, x.src, 2 * CHUNK, 0,
					   NULL), SWAPIO_ECUDA);
	assert_int_equal(swapio_dev_stream(x.h, 5, &s), SWAPIO_ECUDA);
	n = note(x.h);
	assert_non_null(strstr(n, "cudaMemcpyAsync"));
	assert_ptr_equal(strstr(n, tail), strrchr(n, ';') + 2);
	assert_ptr_equal(strstr(n, tail), n + strlen(n) - strlen(tail));
	assert_true(swapio_handle_gpu_note(x.h, NULL, 0) > len);
	assert_int_equal(swapio_handle_gpu_note(x.h, NULL, 0),
			 len + strlen("; cudaMemcpyAsync: invalid argument "
				      "(stand-in) (1)"));
	fx_down(&x);
}

/* A malformed SWAPIO_GPU_PATH or _CHUNK is an error that names it. */
static void bad_environment(void **state)
{
	swapio_handle *h;
	void *s;

	(void)state;
	knobs_reset();
	/*
	 * swapio_handle_create() refuses these too (tests/core/test_env.c); the
	 * device layer reads them again at its first call, so set them after.
	 */
	h = handle(0, 0);
	setenv("SWAPIO_GPU_CHUNK", "12345", 1);
	assert_int_equal(swapio_dev_stream(h, 0, &s), -EINVAL);
	assert_string_equal(swapio_error_detail(), "SWAPIO_GPU_CHUNK='12345': "
			    "not a multiple of 4096 from 4096 to 1073741824");
	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "fast", 1);
	assert_int_equal(swapio_dev_stream(h, 0, &s), -EINVAL);
	assert_string_equal(swapio_error_detail(), "SWAPIO_GPU_PATH='fast': "
			    "not auto, staging or gds");
	knobs_reset();
	assert_int_equal(swapio_dev_stream(h, 0, &s), 0);
	assert_string_equal(swapio_error_detail(), "");
	swapio_handle_destroy(h);
}

/* ------------------------------------------------------------------ */
/* GPUDirect Storage and the choice of path                            */
/* ------------------------------------------------------------------ */

static void gds_when_asked(void **state)
{
	struct t_env *env = *state;
	struct swapio__gpu_stats st;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	roundtrip(x.h, x.f, env->path, 5 * CHUNK, 8192, 50);
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.gds_bytes, 2 * 5 * CHUNK);
	assert_int_equal(st.staged_bytes, 0);
	assert_true(sd.get("cufile_calls") >= 2);
	assert_int_equal(swapio_dev_path(x.h, 0, 0), SWAPIO_GPU_GDS);
	/* Unaligned: staging, whatever was asked. */
	roundtrip(x.h, x.f, env->path, 5 * CHUNK + 1, 8192, 51);
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.staged_bytes, 2 * (5 * CHUNK + 1));
	fx_down(&x);
}

static void gds_error_falls_back(void **state)
{
	struct t_env *env = *state;
	struct swapio__gpu_stats st;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	sd.set("cufile_fail", 1);
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 60);
	expect_note(x.h, "cuFileWrite: error -5011; gds off for this file, "
		    "staging used");
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.gds_fallbacks, 1);
	assert_int_equal(st.gds_bytes, 0);
	assert_int_equal(st.staged_bytes, 2 * 4 * CHUNK);
	assert_int_equal(sd.get("cufile_calls"), 1);	/* never again */
	fx_down(&x);
}

/*
 * The caller passes swapio's own stream, as Python always does: a slow
 * copy queued there still fills the buffer when a GDS write is submitted.
 * cuFile is outside every stream, so the file must get what the stream
 * wrote, and no cuFile call may run while the copy is pending.
 */
static void gds_write_waits_for_own_stream(void **state)
{
	struct t_env *env = *state;
	const size_t n = 4 * CHUNK;
	unsigned char *want = t_random_buf(n, 90), *dev = dev_random(n, 91);
	struct swapio__gpu_stats st;
	unsigned char *disk;
	struct fx x = { 0 };
	size_t size;
	void *s;

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s), 0);
	sd.set("copy_delay_us", 50000);
	assert_int_equal(sd.memcpy_async(dev, want, n, 1, s), 0);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev, n, 0, s), n);
	sd.set("copy_delay_us", 0);
	disk = t_read_file(env->path, &size);
	assert_true(size >= n);
	assert_int_equal(t_first_diff(disk, want, n), SIZE_MAX);
	assert_int_equal(sd.get("cufile_races"), 0);
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.gds_bytes, n);
	free(disk);
	fx_down(&x);
	sd.free_(dev);
	free(want);
}

/*
 * The mirror: a slow copy queued on swapio's stream still reads the
 * buffer (device to host) when a GDS read into it is submitted. The copy
 * must see the old bytes, and the op, once done, the file's.
 */
static void gds_read_waits_for_own_stream(void **state)
{
	struct t_env *env = *state;
	const size_t n = 4 * CHUNK;
	unsigned char *file = t_random_buf(n, 92), *dev = dev_random(n, 93);
	unsigned char *old = t_zalloc(n), *snap = t_zalloc(n);
	struct fx x = { 0 };
	void *s;

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	memcpy(old, dev, n);
	assert_int_equal(swapio_pwrite(x.h, x.f, file, n, 0), n);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s), 0);
	sd.set("copy_delay_us", 50000);
	assert_int_equal(sd.memcpy_async(snap, dev, n, 2, s), 0);
	assert_int_equal(swapio_dev_pread(x.h, x.f, 0, dev, n, 0, s), n);
	sd.set("copy_delay_us", 0);
	assert_int_equal(t_first_diff(dev, file, n), SIZE_MAX);
	assert_int_equal(t_first_diff(snap, old, n), SIZE_MAX);
	assert_int_equal(sd.get("cufile_races"), 0);
	fx_down(&x);
	sd.free_(dev);
	free(file);
	free(old);
	free(snap);
}

/*
 * cuFile refuses one file (IO not supported there): that file is staged
 * from then on, the other keeps GDS. Each file is registered once for
 * its life, not per op, and deregistered when closed; device memory is
 * never registered per op.
 */
static void gds_falls_back_per_file(void **state)
{
	struct t_env *env = *state;
	const size_t n = 2 * CHUNK;
	struct swapio__gpu_stats st;
	char *pb = t_path(env->dir, "other");
	swapio_handle *h;
	swapio_file *a, *b;

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	h = handle(0, 0);
	a = direct_or_skip(h, env->path);
	b = open_rw(h, pb);
	sd.set("cufile_refuse", 1);
	for (int round = 0; round < 3; round++) {
		roundtrip(h, a, env->path, n, 0, 100 + round);
		roundtrip(h, b, pb, n, 4096, 110 + round);
	}
	expect_note(h, "cuFileHandleRegister: error 5030; gds off for this "
		    "file, staging used");
	swapio__gpu_stats(h, &st);
	assert_int_equal(st.gds_fallbacks, 1);
	assert_int_equal(st.gds_bytes, 3 * 2 * n);	/* b, both ways */
	assert_int_equal(st.staged_bytes, 3 * 2 * n);	/* a, both ways */
	assert_int_equal(swapio_dev_path(h, 0, 1), SWAPIO_GPU_GDS);
	assert_int_equal(sd.get("cufile_registers"), 2);
	assert_int_equal(sd.get("buf_registers"), 0);
	swapio_file_close(a);
	swapio_file_close(b);
	assert_int_equal(sd.get("cufile_deregisters"), 1);
	swapio_handle_destroy(h);
	free(pb);
}

/* A cuFile call that returns -1 leaves errno: the note keeps it. */
static void gds_errno_in_note(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	sd.set("cufile_fail_errno", 1);
	roundtrip(x.h, x.f, env->path, CHUNK, 0, 120);
	expect_note(x.h, "cuFileWrite: Input/output error (errno 5)");
	swapio_file_close(x.f);
	/* Registered before it failed: still deregistered at close. */
	assert_int_equal(sd.get("cufile_deregisters"), 1);
	swapio_handle_destroy(x.h);
}

/* Auto: cuFile made slow here, so the probe must keep staging. */
static void auto_probe_keeps_the_faster(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "auto", 1);
	sd.set("cufile_delay_us", 200000);
	/* The environment wins over the config. */
	fx_up(&x, SWAPIO_GPU_STAGING, env->path, true);
	assert_int_equal(swapio_dev_path(x.h, 0, 1), -ENODEV);
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 70);
	assert_int_equal(swapio_dev_path(x.h, 0, 1), SWAPIO_GPU_STAGING);
	assert_int_equal(swapio_dev_path(x.h, 0, 0), SWAPIO_GPU_STAGING);
	expect_note(x.h, "auto: writes gds");
	expect_note(x.h, "chose staging");
	assert_int_equal(sd.get("cufile_calls"), 2);	/* one probe each */
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 71);
	assert_int_equal(sd.get("cufile_calls"), 2);
	fx_down(&x);
}

/*
 * Auto: registering the file with cuFile is slow here, the transfer
 * itself fast, staging's copy slow. Registration is once per file, not
 * part of the transfer: the probe must not time it, and keeps gds.
 */
static void auto_probe_excludes_registration(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "auto", 1);
	sd.set("cufile_register_delay_us", 300000);
	sd.set("copy_delay_us", 30000);
	fx_up(&x, 0, env->path, true);
	roundtrip(x.h, x.f, env->path, 2 * CHUNK, 0, 75);
	expect_note(x.h, "auto: writes gds");
	assert_int_equal(swapio_dev_path(x.h, 0, 1), SWAPIO_GPU_GDS);
	assert_int_equal(swapio_dev_path(x.h, 0, 0), SWAPIO_GPU_GDS);
	assert_int_equal(sd.get("cufile_registers"), 1);
	fx_down(&x);
}

static void config_path_override(void **state)
{
	struct t_env *env = *state;
	struct swapio_config cfg;
	struct fx x = { 0 };
	static const char text[] = "gpu_path = gds\n";

	knobs_reset();
	unsetenv("SWAPIO_GPU_PATH");
	assert_int_equal(swapio_config_parse(text, sizeof(text) - 1, &cfg), 0);
	assert_int_equal(cfg.gpu_path, SWAPIO_GPU_GDS);
	assert_int_equal(swapio_config_parse("gpu_path = fast", 15, &cfg),
			 -EINVAL);
	cfg = (struct swapio_config){ .gpu_path = 3 };
	assert_int_equal(swapio_handle_create(&cfg, &x.h), -EINVAL);
	cfg = (struct swapio_config){ .reserved32 = 1 };
	assert_int_equal(swapio_handle_create(&cfg, &x.h), -EINVAL);

	fx_up(&x, SWAPIO_GPU_STAGING, env->path, false);
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 80);
	assert_int_equal(sd.get("cufile_calls"), 0);
	fx_down(&x);
}

/* ------------------------------------------------------------------ */
/* Without CUDA (SWAPIO_TEST_GPU=missing)                              */
/* ------------------------------------------------------------------ */

static void missing_cuda(void **state)
{
	struct t_env *env = *state;
	unsigned char *buf = t_random_buf(8192, 1), *back = t_zalloc(8192);
	char text[512];
	swapio_handle *h = handle(0, 0);
	swapio_file *f = open_rw(h, env->path);
	swapio_op *op;
	void *s;

	assert_int_equal(swapio_handle_gpu_note(h, text, sizeof(text)), 0);
	assert_int_equal(swapio_dev_pwrite(h, f, 0, buf, 8192, 0, NULL),
			 SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_submit_read(h, f, 0, buf, 1, 0, NULL,
						&op), SWAPIO_ENOCUDA);
	assert_null(op);
	assert_int_equal(swapio_dev_stream(h, 0, &s), SWAPIO_ENOCUDA);
	assert_non_null(strstr(swapio_strerror(SWAPIO_ENOCUDA),
			       "SWAPIO_CUDA_LIBRARY"));
	expect_note(h, "CUDA runtime not loaded");
	expect_note(h, "/nonexistent/libcudart.so");
	/* Host memory is unaffected. */
	assert_int_equal(swapio_pwrite(h, f, buf, 8192, 0), 8192);
	assert_int_equal(swapio_pread(h, f, back, 8192, 0), 8192);
	assert_memory_equal(buf, back, 8192);
	swapio_file_close(f);
	swapio_handle_destroy(h);
	free(buf);
	free(back);
}

/* ------------------------------------------------------------------ */
/* Choosing the runtime, each in a process of its own                  */
/* ------------------------------------------------------------------ */

/* SWAPIO_CUDA_LIBRARY's candidate @i (0-based), for dlopen. */
static char *candidate(int i)
{
	char *list = strdup(getenv("SWAPIO_CUDA_LIBRARY")), *save = NULL;
	char *p = strtok_r(list, ":", &save), *out;

	while (p && i--)
		p = strtok_r(NULL, ":", &save);
	if (!p)
		t_die("SWAPIO_CUDA_LIBRARY lacks a candidate");
	out = strdup(p);
	free(list);
	return out;
}

/*
 * The first candidate answers 35 (too old a driver): the next is used.
 * The stand-in is loaded here only after swapio chose, so that it is not
 * the runtime already in the process.
 */
static void runtime_choice(void **state)
{
	struct t_env *env = *state;
	char *old = candidate(0);
	struct fx x = { 0 };
	void *s;

	setenv("SWAPIO_GPU_CHUNK", "65536", 1);
	setenv("SWAPIO_GPU_PATH", "staging", 1);
	x.h = handle(0, 0);
	assert_int_equal(swapio_dev_stream(x.h, 0, &s), 0);
	expect_note(x.h, "cudaGetDeviceCount: CUDA driver version is "
		    "insufficient for CUDA runtime version (35)");
	expect_note(x.h, old);
	expect_note(x.h, "; using ");
	assert_null(dlopen(old, RTLD_NOW | RTLD_NOLOAD));	/* let go */
	standin_load();
	knobs_reset();
	x.f = open_rw(x.h, env->path);
	roundtrip(x.h, x.f, env->path, 3 * CHUNK + 1, 5, 150);
	assert_true(sd.get("copies") > 0);
	free(old);
	fx_down(&x);
}

/* A runtime already in the process wins over the candidates' order. */
static void runtime_already_loaded(void **state)
{
	struct t_env *env = *state;
	char *first = candidate(0);
	struct fx x = { 0 };

	knobs_reset();	/* sd is candidate 1, loaded by the test itself */
	fx_up(&x, 0, env->path, false);
	roundtrip(x.h, x.f, env->path, 2 * CHUNK, 0, 151);
	assert_true(sd.get("copies") > 0);	/* swapio used this one */
	assert_null(dlopen(first, RTLD_NOW | RTLD_NOLOAD));	/* never tried */
	free(first);
	fx_down(&x);
}

/* No device: SWAPIO_ENOCUDA at once, said once, cuFile never touched. */
static void no_device_at_load(void **state)
{
	struct t_env *env = *state;
	unsigned char *dev = dev_alloc(4096);
	struct fx x = { 0 };
	size_t len;
	void *s;

	knobs_reset();
	sd.set("devices", 0);
	x.h = handle(SWAPIO_GPU_AUTO, 0);
	unsetenv("SWAPIO_GPU_PATH");
	x.f = open_rw(x.h, env->path);
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, dev, 4096, 0, NULL),
			 SWAPIO_ENOCUDA);
	expect_note(x.h, "cudaGetDeviceCount: no CUDA-capable device");
	len = swapio_handle_gpu_note(x.h, NULL, 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(swapio_dev_stream(x.h, 0, &s), SWAPIO_ENOCUDA);
		assert_int_equal(swapio_dev_pread(x.h, x.f, 0, dev, 4096, 0,
						  NULL), SWAPIO_ENOCUDA);
	}
	assert_int_equal(swapio_handle_gpu_note(x.h, NULL, 0), len);
	assert_int_equal(sd.get("count_calls"), 1);
	assert_int_equal(sd.get("driver_opens"), 0);
	fx_down(&x);
	sd.free_(dev);
}

/*
 * The machine's real libcudart.so (SWAPIO_CUDA_LIBRARY, found at
 * configure time), where no driver is installed: SWAPIO_ENOCUDA from the
 * first call, a note that does not grow, and cuFile never loaded.
 */
static void real_runtime_without_driver(void **state)
{
	struct t_env *env = *state;
	const char *cufile = getenv("SWAPIO_CUFILE_LIBRARY");
	unsigned char buf[4096];
	struct fx x = { 0 };
	uint64_t t0;
	size_t len;

	fx_up(&x, SWAPIO_GPU_AUTO, env->path, false);
	t0 = swapio__now_ns();
	assert_int_equal(swapio_dev_pwrite(x.h, x.f, 0, buf, 4096, 0, NULL),
			 SWAPIO_ENOCUDA);
	assert_true(swapio__now_ns() - t0 < 2000000000ull);
	expect_note(x.h, "cudaGetDeviceCount: ");
	len = swapio_handle_gpu_note(x.h, NULL, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(swapio_dev_pread(x.h, x.f, 0, buf, 4096, 0,
						  NULL), SWAPIO_ENOCUDA);
	assert_int_equal(swapio_handle_gpu_note(x.h, NULL, 0), len);
	print_message("note: %s\n", note(x.h));
	assert_null(dlopen(cufile, RTLD_NOW | RTLD_NOLOAD));
	fx_down(&x);
}

/*
 * cuFileDriverOpen() stalls: staging never waits for it (cuFile is not
 * even opened for it), and an op that may use GDS waits a bounded time,
 * then is staged; later ops do not wait again.
 */
static void cufile_stall_is_bounded(void **state)
{
	struct t_env *env = *state;
	struct swapio__gpu_stats st;
	struct fx x = { 0 };
	uint64_t t0;

	knobs_reset();
	fx_up(&x, 0, env->path, false);
	t0 = swapio__now_ns();
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 160);
	assert_true(swapio__now_ns() - t0 < 2000000000ull);
	assert_int_equal(sd.get("driver_opens"), 0);
	fx_down(&x);

	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	t0 = swapio__now_ns();
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 161);
	assert_true(swapio__now_ns() - t0 < 10000000000ull);
	expect_note(x.h, "cuFileDriverOpen: no answer after 3 s");
	t0 = swapio__now_ns();
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 162);
	assert_true(swapio__now_ns() - t0 < 2000000000ull);
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.gds_bytes, 0);
	assert_int_equal(sd.get("driver_opens"), 1);
	fx_down(&x);
}

/*
 * cuFile without nvidia-fs (compatibility mode): asked for gds, it is
 * used and the note says so; under auto, staging without a probe.
 */
static void cufile_compat_mode(void **state)
{
	struct t_env *env = *state;
	struct swapio__gpu_stats st;
	struct fx x = { 0 };

	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 170);
	expect_note(x.h, "gds (compat mode)");
	swapio__gpu_stats(x.h, &st);
	assert_int_equal(st.gds_bytes, 2 * 4 * CHUNK);
	assert_int_equal(swapio_dev_path(x.h, 0, 1), SWAPIO_GPU_GDS);
	fx_down(&x);

	setenv("SWAPIO_GPU_PATH", "auto", 1);
	sd.set("cufile_calls", 0);
	fx_up(&x, 0, env->path, false);
	roundtrip(x.h, x.f, env->path, 4 * CHUNK, 0, 171);
	expect_note(x.h, "auto: writes by staging (cuFile in compat mode)");
	assert_int_equal(swapio_dev_path(x.h, 0, 1), SWAPIO_GPU_STAGING);
	assert_int_equal(swapio_dev_path(x.h, 0, 0), SWAPIO_GPU_STAGING);
	assert_int_equal(sd.get("cufile_calls"), 0);
	fx_down(&x);
}

/*
 * cuFile by its usual names, where none loads: the note gives the reason
 * for the first name (libcufile.so.0), not the last one tried.
 */
static void cufile_not_found(void **state)
{
	struct t_env *env = *state;
	struct fx x = { 0 };
	void *lib = dlopen("libcufile.so.0", RTLD_NOW | RTLD_LOCAL);

	if (lib) {
		dlclose(lib);
		skip();	/* a real cuFile here: not this test's case */
	}
	knobs_reset();
	setenv("SWAPIO_GPU_PATH", "gds", 1);
	fx_up(&x, 0, env->path, true);
	roundtrip(x.h, x.f, env->path, 2 * CHUNK, 0, 180);
	expect_note(x.h, "cuFile not loaded (libcufile.so.0: ");
	assert_int_equal(sd.get("cufile_calls"), 0);
	fx_down(&x);
}

static int run_mode(const char *mode)
{
	const struct CMUnitTest missing[] = {
		cmocka_unit_test(missing_cuda),
	};
	const struct CMUnitTest choice[] = {
		cmocka_unit_test(runtime_choice),
	};
	const struct CMUnitTest loaded[] = {
		cmocka_unit_test(runtime_already_loaded),
	};
	const struct CMUnitTest nodevice[] = {
		cmocka_unit_test(no_device_at_load),
	};
	const struct CMUnitTest real[] = {
		cmocka_unit_test(real_runtime_without_driver),
	};
	const struct CMUnitTest stall[] = {
		cmocka_unit_test(cufile_stall_is_bounded),
	};
	const struct CMUnitTest compat[] = {
		cmocka_unit_test(cufile_compat_mode),
	};
	const struct CMUnitTest nocufile[] = {
		cmocka_unit_test(cufile_not_found),
	};
	const char *lib = getenv("SWAPIO_CUDA_LIBRARY");

#define GROUP(t)	cmocka_run_group_tests(t, t_env_setup, t_env_teardown)
	if (!strcmp(mode, "missing"))
		return GROUP(missing);
	if (!strcmp(mode, "real")) {
		if (!lib || !*lib)
			t_skip("no libcudart.so found on this machine");
		if (dlopen(lib, RTLD_NOW | RTLD_LOCAL) == NULL)
			t_skip("%s does not load: %s", lib, dlerror());
		return GROUP(real);
	}
	if (!strcmp(mode, "choice"))
		return GROUP(choice);
	standin_load();
	if (!strcmp(mode, "loaded"))
		return GROUP(loaded);
	if (!strcmp(mode, "nodevice"))
		return GROUP(nodevice);
	if (!strcmp(mode, "stall"))
		return GROUP(stall);
	if (!strcmp(mode, "compat"))
		return GROUP(compat);
	if (!strcmp(mode, "nocufile"))
		return GROUP(nocufile);
#undef GROUP
	t_die("SWAPIO_TEST_GPU=%s: unknown", mode);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(odd_sizes_both_ways),
		cmocka_unit_test(read_past_end_is_short),
		cmocka_unit_test(copies_overlap_file_io),
		cmocka_unit_test(standin_detects_early_reuse),
		cmocka_unit_test(caller_stream_is_waited_for),
		cmocka_unit_test(own_stream_needs_no_event),
		cmocka_unit_test(async_ops_in_flight),
		cmocka_unit_test(threads_share_a_handle),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(failed_copy_fails_the_op),
		cmocka_unit_test(io_error_fails_the_op),
		cmocka_unit_test(unpinned_staging_still_works),
		cmocka_unit_test(no_device),
		cmocka_unit_test(tolerated_error_is_cleared),
		cmocka_unit_test(managed_memory),
		cmocka_unit_test(pointer_checked),
		cmocka_unit_test(thread_device_restored),
		cmocka_unit_test(note_keeps_newest_once),
		cmocka_unit_test(bad_environment),
		cmocka_unit_test(gds_when_asked),
		cmocka_unit_test(gds_error_falls_back),
		cmocka_unit_test(gds_write_waits_for_own_stream),
		cmocka_unit_test(gds_read_waits_for_own_stream),
		cmocka_unit_test(gds_falls_back_per_file),
		cmocka_unit_test(gds_errno_in_note),
		cmocka_unit_test(auto_probe_keeps_the_faster),
		cmocka_unit_test(auto_probe_excludes_registration),
		cmocka_unit_test(config_path_override),
	};
	const char *mode = getenv("SWAPIO_TEST_GPU");

	if (mode)
		return run_mode(mode);
	standin_load();
	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
