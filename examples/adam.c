/* SPDX-License-Identifier: MIT */
/*
 * swapio-adam: Adam optimizer states on disk, streamed through a pipeline.
 *
 *   swapio-adam DIR [GROUPS]
 *
 * The pattern ZeRO-Infinity uses to keep optimizer states on NVMe: each of
 * GROUPS parameter groups (default 8, 256K fp32 parameters each) has its
 * weights w, Adam moments m and v, and gradient g as four keys in a swapio
 * store in DIR. Each optimizer step is one pass of a swapio pipeline: it
 * reads groups ahead while the caller runs Adam on the current one and
 * writes the one before back, all overlapped, within a memory budget.
 *
 * At the end it runs the same steps in memory and compares w, m and v
 * with the store's, bit for bit. Exit 0 only when every byte matches.
 * `swapio demo adam` is the full benchmark built on the same pattern.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <swapio.h>

#define NSTATE		4			/* w, m, v, g */
#define GROUP_PARAMS	(256u << 10)		/* 1 MiB per tensor */
#define TENSOR_BYTES	(GROUP_PARAMS * sizeof(float))
#define STEPS		3
#define MAX_GROUPS	1024

static const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;

static int fail(const char *what, int err)
{
	fprintf(stderr, "swapio-adam: %s: %s (%s)%s%s\n", what,
		swapio_strerror(err), swapio_errname(err),
		*swapio_error_detail() ? ": " : "", swapio_error_detail());
	return 1;
}

/* One Adam step at step @t (from 1), with bias correction, as PyTorch. */
static void adam_step(float *w, float *m, float *v, const float *g,
		      size_t n, unsigned int t)
{
	double bc1 = 1.0, bc2 = 1.0;
	float step_size, inv_sqrt_bc2;

	for (unsigned int i = 0; i < t; i++) {
		bc1 *= beta1;
		bc2 *= beta2;
	}
	step_size = lr / (float)(1.0 - bc1);
	inv_sqrt_bc2 = 1.0f / sqrtf((float)(1.0 - bc2));
	for (size_t i = 0; i < n; i++) {
		m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
		v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
		w[i] -= step_size * m[i] /
			(sqrtf(v[i]) * inv_sqrt_bc2 + eps);
	}
}

/* Start state @k (0 w, 1 m, 2 v, 3 g) of tensor @j: m and v start at 0. */
static void fill(float *buf, unsigned int j, unsigned int k)
{
	uint64_t z = j + 1;

	for (size_t i = 0; i < GROUP_PARAMS; i++) {
		z ^= z << 13, z ^= z >> 7, z ^= z << 17;	/* xorshift */
		buf[i] = k == 1 || k == 2 ? 0.0f :
			 ((float)(z >> 40) / 16777216.0f - 0.5f) *
			 (k == 3 ? 0.02f : 1.0f);
	}
}

/* One optimizer step: one pass of the pipeline over every group. */
static int step(swapio_pipeline *p, unsigned int t)
{
	struct swapio_pipeline_view v;
	int ret, err;

	ret = swapio_pipeline_begin(p);
	if (ret)
		return ret;
	/* While Adam runs here, later groups are read, earlier written. */
	while ((ret = swapio_pipeline_next(p, &v)) == 1) {
		adam_step(v.bufs[0], v.bufs[1], v.bufs[2], v.bufs[3],
			  GROUP_PARAMS, t);
		err = swapio_pipeline_release(p, v.group, 1);
		if (err)
			return err;	/* next() reports it too */
	}
	return ret;
}

/* Do the store's w, m and v equal @ref's? Counts the tensors that differ. */
static int compare(swapio_store *s, const struct swapio_pipeline_tensor *t,
		   unsigned int ngroups, const float *ref, float *buf,
		   unsigned int *bad)
{
	for (unsigned int j = 0; j < ngroups * NSTATE; j++) {
		int ret;

		if (j % NSTATE == 3)
			continue;	/* the gradient is read-only */
		ret = swapio_store_get(s, t[j].key, buf, TENSOR_BYTES);
		if (ret)
			return ret;
		if (memcmp(buf, ref + (size_t)j * GROUP_PARAMS, TENSOR_BYTES))
			(*bad)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const names[NSTATE] = { "w", "m", "v", "g" };
	struct swapio_pipeline_tensor *t = NULL;
	struct swapio_pipeline_group *g = NULL;
	struct swapio_pipeline_config cfg = {
		/* Four groups in memory: one read, one computed, one written
		 * back, one spare. The store holds all of them. */
		.budget_bytes = 4 * NSTATE * TENSOR_BYTES,
	};
	unsigned int ngroups = 8, bad = 0;
	char (*keys)[32] = NULL;
	swapio_pipeline *p = NULL;
	swapio_handle *h = NULL;
	swapio_store *s = NULL;
	float *ref = NULL, *buf = NULL;
	int ret, rc = 1;

	if (argc < 2 || argc > 3 || (argc == 3 &&
	    (sscanf(argv[2], "%u", &ngroups) != 1 || !ngroups ||
	     ngroups > MAX_GROUPS))) {
		fprintf(stderr, "usage: swapio-adam DIR [GROUPS (1-%u)]\n",
			MAX_GROUPS);
		return 2;
	}

	/* Each group: its four tensors, each a key in the store. */
	keys = calloc((size_t)ngroups * NSTATE, sizeof(*keys));
	t = calloc((size_t)ngroups * NSTATE, sizeof(*t));
	g = calloc(ngroups, sizeof(*g));
	ref = malloc((size_t)ngroups * NSTATE * TENSOR_BYTES);
	buf = malloc(TENSOR_BYTES);
	if (!keys || !t || !g || !ref || !buf) {
		fail("memory", -ENOMEM);
		goto out_free;
	}
	for (unsigned int j = 0; j < ngroups * NSTATE; j++) {
		snprintf(keys[j], sizeof(keys[j]), "adam/%u/%s", j / NSTATE,
			 names[j % NSTATE]);
		t[j].key = keys[j];
		t[j].len = TENSOR_BYTES;
		/* Gradients come from backward: read, never written back. */
		t[j].flags = j % NSTATE == 3 ? SWAPIO_PIPELINE_READ_ONLY : 0;
		g[j / NSTATE].tensors = &t[j / NSTATE * NSTATE];
		g[j / NSTATE].nr_tensors = NSTATE;
		fill(ref + (size_t)j * GROUP_PARAMS, j, j % NSTATE);
	}

	ret = swapio_handle_create(NULL, &h);
	if (ret) {
		fail("handle", ret);
		goto out_free;
	}
	ret = swapio_store_open(h, argv[1], NULL, &s);
	if (ret) {
		fail(argv[1], ret);
		goto out_handle;
	}
	for (unsigned int j = 0; j < ngroups * NSTATE && !ret; j++)
		ret = swapio_store_put(s, t[j].key,
				       ref + (size_t)j * GROUP_PARAMS,
				       TENSOR_BYTES);
	if (!ret)
		ret = swapio_pipeline_create(s, g, ngroups, &cfg, &p);
	if (ret) {
		fail("set-up", ret);
		goto out_store;
	}

	/* The steps on disk; flush() commits the last write-backs. */
	for (unsigned int i = 1; i <= STEPS && !ret; i++)
		ret = step(p, i);
	if (!ret)
		ret = swapio_pipeline_flush(p);
	if (ret) {
		fail("step", ret);
		goto out_pipeline;
	}

	/* The same steps in memory, then every byte compared. */
	for (unsigned int i = 1; i <= STEPS; i++)
		for (unsigned int k = 0; k < ngroups; k++) {
			float *w = ref + (size_t)k * NSTATE * GROUP_PARAMS;

			adam_step(w, w + GROUP_PARAMS, w + 2 * GROUP_PARAMS,
				  w + 3 * GROUP_PARAMS, GROUP_PARAMS, i);
		}
	ret = compare(s, t, ngroups, ref, buf, &bad);
	if (ret) {
		fail("read back", ret);
		goto out_pipeline;
	}
	printf("swapio-adam: %u steps over %u groups of %u parameters "
	       "(engine %s)\nverified: %s (%u of %u tensors differ from an "
	       "in-memory Adam)\n", STEPS, ngroups, GROUP_PARAMS,
	       swapio_handle_engine(h), bad ? "NO" : "yes", bad,
	       ngroups * 3);
	rc = bad ? 1 : 0;

out_pipeline:
	swapio_pipeline_destroy(p);
out_store:
	swapio_store_close(s);
out_handle:
	swapio_handle_destroy(h);
out_free:
	free(buf);
	free(ref);
	free(g);
	free(t);
	free(keys);
	return rc;
}
