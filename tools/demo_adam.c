/* SPDX-License-Identifier: MIT */
/*
 * swapio demo adam: Adam optimizer steps over N fp32
 * parameters whose states live on disk in a swapio store, the way
 * ZeRO-Infinity offloads optimizer states to NVMe. Per parameter: weight,
 * m and v are read and written back, the gradient is read (16 bytes read
 * and 12 written per step). They stream through a pipeline whose buffers stay within
 * --budget bytes, so the step runs at the speed of the slower of the I/O
 * and the compute when the two overlap.
 *
 * Three kinds of pass, alternated over the rounds: I/O only (each group
 * read and written back unchanged), compute only (Adam on groups already
 * in memory) and the real, pipelined step. Overlap efficiency is
 * max(I/O only, compute only) / pipelined: 1.0 is perfect overlap. A
 * small run is checked bit for bit against an in-memory Adam.
 *
 * Uses only swapio.h and the command's helpers (cmd.h). examples/adam.c
 * is the same pattern as a short example, without the timing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* asprintf */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#else
#include <math.h>
#endif

#include <swapio.h>

#include "cmd.h"

/* Small helpers: errors and the clock. */

static int fail(const char *what, int err)
{
	const char *detail = swapio_error_detail();

	fprintf(stderr, "swapio demo adam: %s: %s%s%s%s\n", what,
		swapio_strerror(err), *detail ? " (" : "", detail,
		*detail ? ")" : "");
	return 1;
}

static int usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("swapio demo adam: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage, stderr);
	return EXIT_USAGE;
}

/* Monotonic seconds. */
static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define NSTATE		4		/* w, m, v, g */
#define BYTES_PER_PARAM	(NSTATE * sizeof(float))
#define PARAM_ALIGN	1024u	/* 4 KiB of fp32: tensors stay aligned */
#define VERIFY_PARAMS	(1u << 20)
#define MAX_ROUNDS	101
#define MAX_PARAMS	(64ull << 30)	/* 1 TiB of state: no overflow */

static const char usage[] =
"usage: swapio demo adam [options]\n"
"\n"
"Adam steps over N fp32 parameters whose optimizer states (weights, m, v,\n"
"gradients: 16 bytes per parameter) live in a swapio store on disk and\n"
"stream through a pipeline within a memory budget, overlapping I/O and\n"
"compute. Runs an I/O-only pass, a compute-only pass and the pipelined\n"
"step in turn for each round, reports the medians and the overlap\n"
"efficiency max(io, compute) / pipelined, and checks a small run against\n"
"an in-memory Adam.\n"
"\n"
"  -n, --params N     parameters (K/M/G suffixes, x1024; default 32M,\n"
"                     at most 64G)\n"
"  -b, --budget BYTES pipeline buffer memory (default 256M)\n"
"  -d, --dir DIR      store directory (default: a fresh one under $TMPDIR\n"
"                     or /tmp, removed afterwards)\n"
"  -s, --steps N      optimizer steps per pass (default 2)\n"
"  -r, --rounds N     rounds of the three passes (default 5)\n"
"  -x, --compute-x K  run the Adam kernel K times per group in the timed\n"
"                     passes, as a slower CPU or a heavier optimizer would\n"
"                     (default 1; the check always uses 1)\n"
"      --no-checksum  store without checksums\n"
"  -j, --json         one JSON object on stdout\n"
"  -h, --help         this help\n";

struct adam_hp {
	float	lr;
	float	beta1;
	float	beta2;
	float	eps;
};

static const struct adam_hp hp = {
	.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
};

/* Tensors of one run, as store keys grouped for the pipeline. */
struct layout {
	uint64_t			params;
	uint64_t			gparams; /* per group (last: less) */
	unsigned int			ngroups;
	char				(*keys)[48];
	struct swapio_pipeline_tensor	*t;
	struct swapio_pipeline_group	*g;
};

struct demo {
	uint64_t	params;
	uint64_t	budget;
	unsigned int	steps;
	unsigned int	rounds;
	unsigned int	compute_x;	/* kernel runs per group, timed */
	bool		json;
	bool		no_checksum;
	const char	*dir;
	char		*tmpdir;	/* ours to remove */

	swapio_handle	*h;
	swapio_store	*s;
	swapio_pipeline	*p;
	struct layout	L;
	float		*scratch;	/* one group: w, m, v, g */
	unsigned int	t;		/* Adam step of the stored state */

	double		io_s[MAX_ROUNDS];
	double		compute_s[MAX_ROUNDS];
	double		pipe_s[MAX_ROUNDS];
	double		stall_s[MAX_ROUNDS];
	double		sum_gbps;
	bool		verified;
	bool		locked;
	unsigned int	buffers;
	unsigned int	depth;
};

/* ------------------------------------------------------------------ */
/* Adam                                                                */
/* ------------------------------------------------------------------ */

/* sqrtf without libm (and without its errno path in the loop). */
static inline float fsqrt(float x)
{
#if defined(__SSE__)
	return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x)));
#else
	return sqrtf(x);
#endif
}

/*
 * One Adam step (Kingma & Ba, with bias correction, as PyTorch computes
 * it) over @n parameters at step @t (from 1). Plain C on purpose: this is
 * the compute the I/O has to hide.
 */
static void adam_step(float *w, float *m, float *v, const float *g,
		      size_t n, unsigned int t)
{
	double bc1 = 1.0, bc2 = 1.0;
	float step_size, inv_sqrt_bc2;

	for (unsigned int i = 0; i < t; i++) {
		bc1 *= hp.beta1;
		bc2 *= hp.beta2;
	}
	step_size = hp.lr / (float)(1.0 - bc1);
	inv_sqrt_bc2 = 1.0f / fsqrt((float)(1.0 - bc2));
	for (size_t i = 0; i < n; i++) {
		float gi = g[i];
		float mi = hp.beta1 * m[i] + (1.0f - hp.beta1) * gi;
		float vi = hp.beta2 * v[i] + (1.0f - hp.beta2) * gi * gi;
		float denom = fsqrt(vi) * inv_sqrt_bc2 + hp.eps;

		m[i] = mi;
		v[i] = vi;
		w[i] -= step_size * mi / denom;
	}
}

/*
 * The step @x times over: a slower CPU or a heavier optimizer. In chunks
 * that stay in cache, so that the extra work costs compute, not memory
 * bandwidth (which the I/O needs too).
 */
static void adam_step_x(float *w, float *m, float *v, const float *g,
			size_t n, unsigned int t, unsigned int x)
{
	const size_t chunk = 8192;	/* 128 KiB of state */

	if (x == 1) {
		adam_step(w, m, v, g, n, t);
		return;
	}
	for (size_t i = 0; i < n; i += chunk) {
		size_t len = n - i < chunk ? n - i : chunk;

		for (unsigned int k = 0; k < x; k++)
			adam_step(w + i, m + i, v + i, g + i, len, t);
	}
}

/* Deterministic start values from the global index: -0.5..0.5 scaled. */
static float start_value(uint64_t idx, unsigned int which)
{
	uint64_t z = idx * 0x9e3779b97f4a7c15ull + which;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return ((float)(z >> 40) / 16777216.0f - 0.5f) *
	       (which == 3 ? 0.02f : 1.0f);
}

/* State @which (0 w, 1 m, 2 v, 3 g) of parameters [first, first+n). */
static void fill_state(float *buf, size_t n, uint64_t first,
		       unsigned int which)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = which == 1 || which == 2 ? 0.0f :
			 start_value(first + i, which);
}

/* ------------------------------------------------------------------ */
/* Layout and store                                                    */
/* ------------------------------------------------------------------ */

static void layout_free(struct layout *L)
{
	free(L->keys);
	free(L->t);
	free(L->g);
	memset(L, 0, sizeof(*L));
}

static uint64_t group_len(const struct layout *L, unsigned int i)
{
	uint64_t first = (uint64_t)i * L->gparams;

	return L->params - first < L->gparams ? L->params - first : L->gparams;
}

static int layout_make(struct layout *L, const char *prefix,
		       uint64_t params, uint64_t gparams)
{
	static const char *const names[NSTATE] = { "w", "m", "v", "g" };

	L->params = params;
	L->gparams = gparams;
	L->ngroups = (unsigned int)((params + gparams - 1) / gparams);
	L->keys = calloc((size_t)L->ngroups * NSTATE, sizeof(*L->keys));
	L->t = calloc((size_t)L->ngroups * NSTATE, sizeof(*L->t));
	L->g = calloc(L->ngroups, sizeof(*L->g));
	if (!L->keys || !L->t || !L->g)
		return -ENOMEM;
	for (unsigned int i = 0; i < L->ngroups; i++) {
		for (unsigned int k = 0; k < NSTATE; k++) {
			unsigned int j = i * NSTATE + k;

			snprintf(L->keys[j], sizeof(L->keys[j]), "%s/%u/%s",
				 prefix, i, names[k]);
			L->t[j].key = L->keys[j];
			L->t[j].len = group_len(L, i) * sizeof(float);
			/* Gradients come from backward: read, never written. */
			L->t[j].flags = k == 3 ? SWAPIO_PIPELINE_READ_ONLY : 0;
		}
		L->g[i].tensors = &L->t[i * NSTATE];
		L->g[i].nr_tensors = NSTATE;
	}
	return 0;
}

/* Write every group's start state; @buf holds one group. */
static int store_fill(swapio_store *s, const struct layout *L, float *buf)
{
	for (unsigned int i = 0; i < L->ngroups; i++) {
		uint64_t n = group_len(L, i);

		for (unsigned int k = 0; k < NSTATE; k++) {
			const struct swapio_pipeline_tensor *t =
				&L->t[i * NSTATE + k];
			int ret;

			fill_state(buf, n, (uint64_t)i * L->gparams, k);
			ret = swapio_store_put(s, t->key, buf, t->len);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Passes                                                              */
/* ------------------------------------------------------------------ */

/*
 * One pass through the pipeline: every group read, then written back.
 * With @t, an Adam step at step @t on each group in between (@x times);
 * without, the data goes back unchanged (the I/O-only pass).
 */
static int pass_stream(swapio_pipeline *p, unsigned int t, unsigned int x,
		       double *stall_s)
{
	struct swapio_pipeline_stats st;
	struct swapio_pipeline_view v;
	int ret, err = 0;

	ret = swapio_pipeline_begin(p);
	if (ret)
		return ret;
	while ((ret = swapio_pipeline_next(p, &v)) == 1) {
		if (t)
			adam_step_x(v.bufs[0], v.bufs[1], v.bufs[2], v.bufs[3],
				    v.tensors[0].len / sizeof(float), t, x);
		ret = swapio_pipeline_release(p, v.group, 1);
		if (ret && !err)
			err = ret;
	}
	swapio_pipeline_stats(p, &st);
	if (stall_s)
		*stall_s += (double)st.stall_ns * 1e-9;
	return ret < 0 ? ret : err;
}

/* The same Adam work on one group's worth of memory, no I/O at all. */
static void pass_compute(struct demo *d, unsigned int t)
{
	const uint64_t gp = d->L.gparams;
	float *w = d->scratch, *m = w + gp, *v = m + gp, *g = v + gp;

	for (unsigned int i = 0; i < d->L.ngroups; i++)
		adam_step_x(w, m, v, g, group_len(&d->L, i), t, d->compute_x);
}

/* @kind: 0 I/O only, 1 compute only, 2 pipelined. Seconds per step. */
static int timed_pass(struct demo *d, unsigned int kind, unsigned int r,
		      unsigned int *tc)
{
	double t0 = seconds_now(), stall = 0;
	int ret = 0;

	/* Passes overlap: a step's last writes go on as the next reads. */
	for (unsigned int i = 0; i < d->steps && !ret; i++) {
		if (kind == 0)
			ret = pass_stream(d->p, 0, 0, NULL);
		else if (kind == 1)
			pass_compute(d, (*tc)++);
		else
			ret = pass_stream(d->p, d->t++, d->compute_x, &stall);
	}
	if (!ret && kind != 1)
		ret = swapio_pipeline_flush(d->p);
	t0 = (seconds_now() - t0) / d->steps;
	if (kind == 0)
		d->io_s[r] = t0;
	else if (kind == 1)
		d->compute_s[r] = t0;
	else
		d->pipe_s[r] = t0, d->stall_s[r] = stall / d->steps;
	return ret;
}

/* Rounds of the three passes, each round in a rotated order. */
static int run_rounds(struct demo *d)
{
	unsigned int tc = 1;
	int ret;

	for (unsigned int r = 0; r < d->rounds; r++)
		for (unsigned int k = 0; k < 3; k++) {
			ret = timed_pass(d, (r + k) % 3, r, &tc);
			if (ret)
				return ret;
		}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/* In-memory Adam over the same start state, group by group. */
static float *reference(const struct layout *V, unsigned int steps)
{
	const uint64_t n = V->params;
	float *ref = malloc(n * BYTES_PER_PARAM);

	if (!ref)
		return NULL;
	for (unsigned int k = 0; k < NSTATE; k++)
		fill_state(ref + k * n, n, 0, k);
	for (unsigned int t = 1; t <= steps; t++)
		for (unsigned int i = 0; i < V->ngroups; i++) {
			uint64_t o = (uint64_t)i * V->gparams;

			adam_step(ref + o, ref + n + o, ref + 2 * n + o,
				  ref + 3 * n + o, group_len(V, i), t);
		}
	return ref;
}

/* Do the stored w, m, v equal @ref bit for bit? */
static int compare(struct demo *d, const struct layout *V, const float *ref,
		   bool *ok)
{
	*ok = true;
	for (unsigned int i = 0; i < V->ngroups; i++)
		for (unsigned int k = 0; k < 3; k++) {
			const struct swapio_pipeline_tensor *t =
				&V->t[i * NSTATE + k];
			int ret = swapio_store_get(d->s, t->key, d->scratch,
						   t->len);

			if (ret)
				return ret;
			if (memcmp(d->scratch, ref + k * V->params +
				   (uint64_t)i * V->gparams, t->len))
				*ok = false;
		}
	return 0;
}

static void remove_keys(swapio_store *s, const struct layout *L)
{
	for (unsigned int j = 0; j < L->ngroups * NSTATE; j++)
		(void)swapio_store_remove(s, L->t[j].key);
}

/* A small run through store and pipeline against an in-memory Adam. */
static int verify(struct demo *d)
{
	const uint64_t n = d->params < VERIFY_PARAMS ? d->params :
			   VERIFY_PARAMS;
	uint64_t gp = (n / 4 + PARAM_ALIGN) / PARAM_ALIGN * PARAM_ALIGN;
	struct swapio_pipeline_config cfg = { .budget_bytes = d->budget };
	struct layout V = { 0 };
	swapio_pipeline *p = NULL;
	float *ref = NULL;
	int ret;

	if (gp > d->L.gparams)
		gp = d->L.gparams;
	ret = layout_make(&V, "verify", n, gp);
	if (!ret)
		ret = store_fill(d->s, &V, d->scratch);
	if (!ret)
		ret = swapio_pipeline_create(d->s, V.g, V.ngroups, &cfg, &p);
	for (unsigned int t = 1; !ret && t <= d->steps; t++)
		ret = pass_stream(p, t, 1, NULL);
	if (!ret)
		ret = swapio_pipeline_flush(p);
	if (!ret) {
		ref = reference(&V, d->steps);
		ret = ref ? compare(d, &V, ref, &d->verified) : -ENOMEM;
	}
	swapio_pipeline_destroy(p);
	remove_keys(d->s, &V);
	free(ref);
	layout_free(&V);
	return ret;
}

/* XXH3-64 throughput on this machine, over one group of memory. */
static double checksum_gbps(const void *buf, size_t len)
{
	volatile uint64_t sink = 0;
	double t0 = seconds_now();

	for (int i = 0; i < 3; i++)
		sink ^= swapio_store_checksum(buf, len);
	(void)sink;
	return 3.0 * (double)len / (seconds_now() - t0) / 1e9;
}

/* ------------------------------------------------------------------ */
/* Set-up and tear-down                                                */
/* ------------------------------------------------------------------ */

/*
 * Parameters per group: four groups' buffers in the budget (one being
 * read, one computed, one written, one spare), and at least four groups.
 */
static uint64_t group_params(const struct demo *d)
{
	uint64_t per = d->budget / (BYTES_PER_PARAM * 4);
	uint64_t quarter = (d->params + 3) / 4;

	per -= per % PARAM_ALIGN;
	quarter = (quarter + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
	if (!per)	/* a small budget: one buffer, no overlap */
		per = d->budget / BYTES_PER_PARAM / PARAM_ALIGN * PARAM_ALIGN;
	return per < quarter ? per : quarter;
}

static int make_dir(struct demo *d)
{
	const char *base = getenv("TMPDIR");

	if (d->dir)
		return 0;
	if (asprintf(&d->tmpdir, "%s/swapio-demo-XXXXXX",
		     base && *base ? base : "/tmp") < 0)
		return -ENOMEM;
	if (!mkdtemp(d->tmpdir)) {
		free(d->tmpdir);
		d->tmpdir = NULL;
		return -errno;
	}
	d->dir = d->tmpdir;
	return 0;
}

/*
 * The directory make_dir() made, with whatever the store put in it: all
 * of it is ours, since mkdtemp() made it private (0700). Entries go by
 * name relative to it, a link as a link, never followed.
 */
static void remove_dir(struct demo *d)
{
	struct dirent *de;
	DIR *dir = NULL;
	int dfd;

	if (!d->tmpdir)
		return;
	dfd = open(d->tmpdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0)
		dir = fdopendir(dfd);
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	if (dir)
		closedir(dir);	/* closes dfd */
	else if (dfd >= 0)
		close(dfd);
	rmdir(d->tmpdir);
	free(d->tmpdir);
	d->tmpdir = NULL;
}

static int open_pipeline(struct demo *d)
{
	struct swapio_pipeline_config cfg = {
		.budget_bytes = d->budget, .buf_flags = SWAPIO_BUF_LOCKED,
	};
	struct swapio_pipeline_stats st;
	int ret;

	ret = swapio_pipeline_create(d->s, d->L.g, d->L.ngroups, &cfg, &d->p);
	if (ret)
		return ret;
	swapio_pipeline_stats(d->p, &st);
	d->buffers = st.buffers;
	d->depth = st.depth;
	d->locked = st.locked;
	return 0;
}

static int setup(struct demo *d)
{
	struct swapio_store_config scfg = {
		.flags = d->no_checksum ? SWAPIO_STORE_NO_CHECKSUM : 0,
	};
	const uint64_t gp = group_params(d);
	int ret;

	if (!gp)
		return -EINVAL;
	ret = make_dir(d);
	if (!ret)
		ret = swapio_handle_create(&(struct swapio_config){ 0 }, &d->h);
	if (!ret)
		ret = swapio_store_open(d->h, d->dir, &scfg, &d->s);
	if (!ret)
		ret = layout_make(&d->L, "adam", d->params, gp);
	if (!ret)
		ret = swapio_buf_alloc(gp * BYTES_PER_PARAM, 0,
				       (void **)&d->scratch);
	if (!ret)
		ret = store_fill(d->s, &d->L, d->scratch);
	return ret ? ret : open_pipeline(d);
}

static void teardown(struct demo *d)
{
	swapio_pipeline_destroy(d->p);
	swapio_store_close(d->s);
	swapio_handle_destroy(d->h);
	if (d->scratch)
		swapio_buf_free(d->scratch, d->L.gparams * BYTES_PER_PARAM);
	layout_free(&d->L);
	remove_dir(d);
}

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned int n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct result {
	double	io_s, compute_s, pipe_s, stall_s;
	double	io_gbps, pipe_gbps, eff, sum_ms;
};

static void summarize(const struct demo *d, struct result *r)
{
	const double bytes = (double)d->params * (16 + 12);
	const double sum_bytes = d->no_checksum ? 0 : bytes;

	r->io_s = median(d->io_s, d->rounds);
	r->compute_s = median(d->compute_s, d->rounds);
	r->pipe_s = median(d->pipe_s, d->rounds);
	r->stall_s = median(d->stall_s, d->rounds);
	r->io_gbps = bytes / r->io_s / 1e9;
	r->pipe_gbps = bytes / r->pipe_s / 1e9;
	r->eff = (r->io_s > r->compute_s ? r->io_s : r->compute_s) /
		 r->pipe_s;
	/* Verify on get (16 B) and hash on put (12 B), caller's thread. */
	r->sum_ms = sum_bytes / (d->sum_gbps * 1e9) * 1e3;
}

static void print_json(const struct demo *d, const struct result *r)
{
	printf("{\"params\": %llu, \"steps\": %u, \"rounds\": %u, "
	       "\"compute_x\": %u, \"budget\": %llu, "
	       "\"group_params\": %llu, \"groups\": %u, "
	       "\"buffers\": %u, \"depth\": %u, \"pinned\": %s, "
	       "\"engine\": \"%s\", \"checksums\": %s, "
	       "\"io_s\": %.6f, \"compute_s\": %.6f, \"pipelined_s\": %.6f, "
	       "\"stall_s\": %.6f, \"io_gbps\": %.3f, "
	       "\"pipelined_gbps\": %.3f, \"overlap_efficiency\": %.3f, "
	       "\"checksum_gbps\": %.2f, \"checksum_ms_per_step\": %.2f, "
	       "\"verified\": %s}\n",
	       (unsigned long long)d->params, d->steps, d->rounds,
	       d->compute_x, (unsigned long long)d->budget,
	       (unsigned long long)d->L.gparams, d->L.ngroups, d->buffers,
	       d->depth, d->locked ? "true" : "false",
	       swapio_handle_engine(d->h), d->no_checksum ? "false" : "true",
	       r->io_s, r->compute_s, r->pipe_s, r->stall_s, r->io_gbps,
	       r->pipe_gbps, r->eff, d->sum_gbps, r->sum_ms,
	       d->verified ? "true" : "false");
}

static void print_head(const struct demo *d)
{
	char b[32], g[32], t[32];

	tool_format_size(b, sizeof(b), d->budget);
	tool_format_size(g, sizeof(g), d->L.gparams * BYTES_PER_PARAM);
	tool_format_size(t, sizeof(t), d->params * BYTES_PER_PARAM);
	printf("swapio demo adam: %llu fp32 parameters, %s of optimizer "
	       "state in %s\n", (unsigned long long)d->params, t, d->dir);
	printf("  engine %s; %u groups of %llu parameters (%s per buffer); "
	       "budget %s: %u %s buffers, %u read ahead\n",
	       swapio_handle_engine(d->h), d->L.ngroups,
	       (unsigned long long)d->L.gparams, g, b, d->buffers,
	       d->locked ? "pinned" : "unpinned", d->depth);
	printf("  per step: %.0f MB read, %.0f MB written; steps per "
	       "pass: %u; Adam kernel runs per group: %u\n\n",
	       (double)d->params * 16 / 1e6, (double)d->params * 12 / 1e6,
	       d->steps, d->compute_x);
	printf("  round   io-only   compute   pipelined   (s per step)\n");
}

static void print_text(const struct demo *d, const struct result *r)
{
	for (unsigned int i = 0; i < d->rounds; i++)
		printf("  %5u   %7.3f   %7.3f   %9.3f\n", i + 1, d->io_s[i],
		       d->compute_s[i], d->pipe_s[i]);
	printf("  median  %7.3f   %7.3f   %9.3f\n\n", r->io_s, r->compute_s,
	       r->pipe_s);
	printf("  I/O: %.2f GB/s alone, %.2f GB/s pipelined; next() waited "
	       "%.3f s per step\n", r->io_gbps, r->pipe_gbps, r->stall_s);
	printf("  overlap efficiency %.2f = max(io %.3f, compute %.3f) / "
	       "pipelined %.3f (1.0 = perfect)\n", r->eff, r->io_s,
	       r->compute_s, r->pipe_s);
	if (!d->no_checksum)
		printf("  checksums: XXH3-64 at %.1f GB/s here, %.0f ms of "
		       "each step on the caller's thread\n", d->sum_gbps,
		       r->sum_ms);
	printf("  verified: %s (%llu parameters, steps: %u, bit for bit "
	       "against an in-memory Adam)\n", d->verified ? "yes" : "NO",
	       (unsigned long long)(d->params < VERIFY_PARAMS ? d->params :
				    VERIFY_PARAMS), d->steps);
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

/* One option; nonzero for a bad value. */
static int parse_one(struct demo *d, int c)
{
	switch (c) {
	case 'n':
		return tool_parse_size(optarg, &d->params) || !d->params ||
		       d->params > MAX_PARAMS;
	case 'b':
		return tool_parse_size(optarg, &d->budget);
	case 'd':
		d->dir = optarg;
		return 0;
	case 's':
		return tool_parse_uint(optarg, 1, 1000, &d->steps);
	case 'r':
		return tool_parse_uint(optarg, 1, MAX_ROUNDS, &d->rounds);
	case 'x':
		return tool_parse_uint(optarg, 1, 1000, &d->compute_x);
	case 'C':
		d->no_checksum = true;
		return 0;
	case 'j':
		d->json = true;
		return 0;
	}
	return -1;
}

/* 0, 1 for --help, or EXIT_USAGE after the message. */
static int parse(struct demo *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "params", required_argument, NULL, 'n' },
		{ "budget", required_argument, NULL, 'b' },
		{ "dir", required_argument, NULL, 'd' },
		{ "steps", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "compute-x", required_argument, NULL, 'x' },
		{ "no-checksum", no_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "n:b:d:s:r:x:jh", opts, NULL)) !=
	       -1) {
		if (c == 'h')
			return 1;
		if (c == '?' || c == ':')
			return usage_error(usage, "bad option: %s",
					   argv[optind - 1]);
		if (parse_one(d, c))
			return usage_error(usage, "bad value: %s",
					   argv[optind - 1]);
	}
	if (optind < argc)
		return usage_error(usage, "unexpected: %s", argv[optind]);
	return 0;
}

/* Compute-only passes work on one group's start state, in scratch. */
static void compute_init(struct demo *d)
{
	for (unsigned int k = 0; k < NSTATE; k++)
		fill_state(d->scratch + k * d->L.gparams, d->L.gparams, 0, k);
}

static int run(struct demo *d)
{
	struct result r;
	int ret;

	ret = setup(d);
	if (ret)
		return fail(ret == -EINVAL ? "budget too small" : "set-up",
			    ret);
	ret = verify(d);
	if (ret)
		return fail("verification run", ret);
	compute_init(d);
	d->sum_gbps = checksum_gbps(d->scratch,
				    d->L.gparams * BYTES_PER_PARAM);
	if (!d->json) {
		print_head(d);
		fflush(stdout);
	}
	ret = run_rounds(d);
	if (ret)
		return fail("pass", ret);
	summarize(d, &r);
	if (d->json)
		print_json(d, &r);
	else
		print_text(d, &r);
	return d->verified ? 0 : 1;
}

/*
 * The program: argv[0] is its name, options follow. `swapio demo adam`
 * calls this with argv[0] "adam".
 */
int adam_main(int argc, char **argv)
{
	struct demo d = {
		.params = 32ull << 20, .budget = 256ull << 20,
		.steps = 2, .rounds = 5, .compute_x = 1, .t = 1,
	};
	int rc;

	rc = parse(&d, argc, argv);
	if (rc)
		return rc == 1 ? (fputs(usage, stdout), 0) : rc;
	if (d.budget < PARAM_ALIGN * BYTES_PER_PARAM)
		return usage_error(usage, "--budget below one group of %u "
				   "parameters (%zu bytes)", PARAM_ALIGN,
				   PARAM_ALIGN * BYTES_PER_PARAM);
	rc = run(&d);
	teardown(&d);
	return rc;
}
