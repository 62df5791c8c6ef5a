/* SPDX-License-Identifier: MIT */
/*
 * The fault filter: a table that forwards every hook to a real engine and
 * filters what flows through it. On command it answers a request with an
 * errno event of its own instead of sending it (as a kernel that refuses
 * a write with ENOSPC moves nothing), sends only half of a request so
 * that the kernel reports a short transfer, holds completions back, makes
 * a context fail to set up, or makes a reap fail as a broken ring would.
 * The real engine moves the data; the core sees exactly what it would see
 * from a failing device. sqlite's test_vfs.c wraps a parent VFS the same
 * way, and like it this file knows only the engine contract (engine.h).
 *
 * It is switched on per handle by SWAPIO_FAULT, read when the handle is
 * created (docs/RELIABILITY.md has the grammar; src/env.c checks it and
 * says on stderr, once per process, that faults are being injected).
 * Without it the handle runs the real engine's table directly: nothing
 * here is on the hot path.
 *
 * Each wrapped handle gets its own copy of the table, embedded in a
 * struct fault_engine, so that a hook finds its state from ctx->ops. Each
 * context keeps the real engine's context inside its own. The copy lives
 * as long as something uses it: the handle that wrapped it, and each
 * context that set up, until its ->exit().
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "swapio.h"

#define container_of(p, T, m)	((T *)((char *)(p) - offsetof(T, m)))

#define FAULT_DELAY_MAX	60000		/* ms */
#define NR_ENGINE_IDS	(SWAPIO_ENGINE_THREADS + 1)

enum { PICK_ALL, PICK_NTH, PICK_EVERY, PICK_PROB };
enum { DIR_BOTH, DIR_READ, DIR_WRITE };

struct fault_spec {
	int		err;		/* errno to inject (> 0); 0: none */
	bool		trim;		/* short transfers */
	bool		sticky;		/* retries of a pick fail too */
	unsigned int	delay_ms;	/* completion delay; 0: none */
	int		dir;		/* DIR_*: which requests count */
	int		pick;		/* PICK_* */
	uint64_t	n;		/* for nth= and every= */
	double		prob;		/* for prob= */
	uint64_t	seed;
	int		fatal;		/* errno for the first reap; 0: none */
	int		setup_err[NR_ENGINE_IDS];	/* positive errno */
};

struct fault_engine {
	/* First: the handle runs this table. */
	struct swapio_engine_ops	ops;
	const struct swapio_engine_ops	*real;
	unsigned int			id;	/* enum swapio_engine */
	unsigned int			nr_workers;
	struct fault_spec		spec;
	atomic_uint			refs;
	atomic_bool			fatal_done;
	atomic_uint_least64_t		seen;	/* requests counted */
	atomic_uint_least64_t		injected;
};

/* One context: the real engine's inside ours, and our own events. */
struct fault_ctx {
	struct swapio_ectx	real;
	bool			delay_due;
	unsigned int		nr_failed;
	struct swapio_event	failed[];	/* queue_depth of them */
};

/* ------------------------------------------------------------------ */
/* The spec                                                            */
/* ------------------------------------------------------------------ */

static int parse_prob(const char *s, double *out)
{
	char *end;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	/* The comparisons also refuse NaN. */
	if (errno || *end || !(*out >= 0.0 && *out <= 1.0))
		return -EINVAL;
	return 0;
}

/* "engine:ERRNO", e.g. "uring:EPERM". */
static int parse_setup(struct fault_spec *sp, char *s)
{
	char *colon = strchr(s, ':');
	int id, err;

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	id = swapio_engine_parse(s);
	err = swapio__kv_errno(colon + 1);
	if (id <= SWAPIO_ENGINE_AUTO || id >= NR_ENGINE_IDS || err < 0 ||
	    sp->setup_err[id])
		return -EINVAL;
	sp->setup_err[id] = err;
	return 0;
}

enum {
	KEY_ERRNO, KEY_SHORT, KEY_STICKY, KEY_DELAY, KEY_DIR, KEY_NTH,
	KEY_EVERY, KEY_PROB, KEY_SEED, KEY_SETUP, KEY_FATAL, NR_KEYS
};

static const char *const fault_keys[NR_KEYS] = {
	[KEY_ERRNO] = "errno",	[KEY_SHORT] = "short",
	[KEY_STICKY] = "sticky", [KEY_DELAY] = "delay_ms",
	[KEY_DIR] = "dir",	[KEY_NTH] = "nth",
	[KEY_EVERY] = "every",	[KEY_PROB] = "prob",
	[KEY_SEED] = "seed",	[KEY_SETUP] = "setup",
	[KEY_FATAL] = "fatal",
};

static int parse_pick(struct fault_spec *sp, int key, const char *val)
{
	if (sp->pick != PICK_ALL)
		return -EINVAL;	/* one way of picking at a time */
	if (key == KEY_PROB) {
		sp->pick = PICK_PROB;
		return parse_prob(val, &sp->prob);
	}
	sp->pick = key == KEY_NTH ? PICK_NTH : PICK_EVERY;
	return swapio__kv_u64(val, 1, UINT64_MAX, &sp->n);
}

static int parse_flag(const char *val, bool *out)
{
	uint64_t v = 0;
	int ret = swapio__kv_u64(val, 0, 1, &v);

	*out = v;
	return ret;
}

static int parse_item(struct fault_spec *sp, int key, char *val)
{
	uint64_t v = 0;
	int ret;

	switch (key) {
	case KEY_ERRNO:
	case KEY_FATAL:
		ret = swapio__kv_errno(val);
		*(key == KEY_ERRNO ? &sp->err : &sp->fatal) = ret > 0 ? ret : 0;
		return ret < 0 ? ret : 0;
	case KEY_SHORT:
		return parse_flag(val, &sp->trim);
	case KEY_STICKY:
		return parse_flag(val, &sp->sticky);
	case KEY_DELAY:
		ret = swapio__kv_u64(val, 1, FAULT_DELAY_MAX, &v);
		sp->delay_ms = (unsigned int)v;
		return ret;
	case KEY_DIR:
		sp->dir = !strcmp(val, "read") ? DIR_READ :
			  !strcmp(val, "write") ? DIR_WRITE : -1;
		return sp->dir < 0 ? -EINVAL : 0;
	case KEY_SEED:
		return swapio__kv_u64(val, 0, UINT64_MAX, &sp->seed);
	case KEY_SETUP:
		return parse_setup(sp, val);
	default:
		return parse_pick(sp, key, val);
	}
}

static bool spec_has_io(const struct fault_spec *sp)
{
	return sp->err || sp->trim || sp->delay_ms || sp->fatal;
}

/* Refuse what cannot mean anything, so that a typo is not a silent no-op. */
static int spec_validate(const struct fault_spec *sp, bool any_setup)
{
	bool transient = sp->err == EINTR || sp->err == EAGAIN;

	if (!spec_has_io(sp) && (!any_setup || sp->pick != PICK_ALL ||
				 sp->dir != DIR_BOTH))
		return -EINVAL;
	if ((sp->err && sp->trim) || (sp->sticky && !transient))
		return -EINVAL;
	return 0;
}

struct fault_parse_ctx {
	struct fault_spec	*sp;
	int			last;	/* the key of the last key=value */
};

/* One item of the spec (swapio__kv_parse()); key -1: a bare item. */
static int fault_item(void *ctx, int key, char *val)
{
	struct fault_parse_ctx *c = ctx;

	if (key < 0)
		return c->last == KEY_SETUP ? parse_setup(c->sp, val) : -EINVAL;
	c->last = key;
	return parse_item(c->sp, key, val);
}

/*
 * Items are "key=value", each key at most once; a bare "engine:ERRNO"
 * continues a setup= list ("setup=uring:EPERM,aio:EAGAIN").
 */
static int fault_parse(const char *spec, struct fault_spec *sp)
{
	struct fault_parse_ctx c = { sp, -1 };
	unsigned int seen;
	int ret;

	memset(sp, 0, sizeof(*sp));
	sp->seed = 1;
	ret = swapio__kv_parse(spec, fault_keys, NR_KEYS, fault_item, &c,
			       &seen);
	if (!ret)
		ret = spec_validate(sp, seen & (1u << KEY_SETUP));
	return ret;
}

int swapio__fault_check(const char *spec)
{
	struct fault_spec sp;

	return spec ? fault_parse(spec, &sp) : -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Picking requests                                                    */
/* ------------------------------------------------------------------ */

static struct fault_engine *fe_of(const struct swapio_ectx *ctx)
{
	return container_of(ctx->ops, struct fault_engine, ops);
}

static void fault_count(struct fault_engine *fe)
{
	atomic_fetch_add_explicit(&fe->injected, 1, memory_order_relaxed);
}

/* Request @n's draw for prob=: a hash, so no state is shared. */
static double fault_chance(uint64_t seed, uint64_t n)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + n;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

/* Counts every request the engine is given, retries and remainders. */
static bool fault_pick(struct fault_engine *fe, const struct swapio_req *rq)
{
	const struct fault_spec *sp = &fe->spec;
	uint64_t n;

	if (sp->dir != DIR_BOTH &&
	    sp->dir != (rq->write ? DIR_WRITE : DIR_READ))
		return false;
	n = atomic_fetch_add_explicit(&fe->seen, 1, memory_order_relaxed) + 1;
	switch (sp->pick) {
	case PICK_NTH:
		return n == sp->n;
	case PICK_EVERY:
		return n % sp->n == 0;
	case PICK_PROB:
		return fault_chance(sp->seed, n) < sp->prob;
	default:
		return true;
	}
}

/*
 * EINTR and EAGAIN are retried SWAPIO_MAX_RETRIES times per request (the
 * core's rule, stated in engine.h). Never injecting one into a request's
 * last chance makes every such fault recoverable, so "errno=EINTR,every=3"
 * ends with the full byte count. sticky=1 asks for the opposite: a picked
 * request keeps failing until the core gives up and fails the op.
 */
static bool fault_fails(const struct fault_spec *sp,
			const struct swapio_req *rq, bool hit)
{
	if (sp->err != EINTR && sp->err != EAGAIN)
		return hit;
	if (sp->sticky)
		return hit || rq->retries > 0;
	return hit && rq->retries < SWAPIO_MAX_RETRIES;
}

/*
 * Send only the first half of what is left of @rq, so that the kernel
 * reports a short transfer and the core must send the rest. On an
 * O_DIRECT descriptor the cut falls on 4 KiB, a multiple of every logical
 * block, as a real short direct transfer would. The real engine reads the
 * length when it queues (engine.h). false if @rq is too small to cut.
 */
static bool fault_trim(const struct fault_engine *fe,
		       struct swapio_ectx *real, struct swapio_req *rq)
{
	const size_t len = rq->len;
	size_t keep = swapio__req_len(rq) / 2;

	if (rq->direct)
		keep = SWAPIO_ALIGN_DOWN(keep, 4096u);
	if (!keep)
		return false;
	rq->len = rq->done + keep;
	fe->real->queue(real, rq);
	rq->len = len;
	return true;
}

/* ------------------------------------------------------------------ */
/* The hooks                                                           */
/* ------------------------------------------------------------------ */

static void fault_put(struct fault_engine *fe)
{
	if (atomic_fetch_sub(&fe->refs, 1) == 1)
		free(fe);
}

static struct swapio_ectx *real_of(struct swapio_ectx *ctx)
{
	return &((struct fault_ctx *)ctx->data)->real;
}

/*
 * A setup fault fails the handle's last worker only. The others set up
 * for real and must then be torn down by the core, which is the path
 * worth testing; to the caller the engine failed to start either way.
 */
static int fault_init(struct swapio_ectx *ctx)
{
	struct fault_engine *fe = fe_of(ctx);
	const int err = fe->spec.setup_err[fe->id];
	struct fault_ctx *fc;
	int ret;

	if (err && ctx->worker == fe->nr_workers - 1)
		return -err;
	fc = calloc(1, sizeof(*fc) + ctx->queue_depth * sizeof(fc->failed[0]));
	if (!fc)
		return -ENOMEM;
	fc->real = *ctx;
	fc->real.ops = fe->real;
	ret = fe->real->init(&fc->real);
	if (ret) {
		free(fc);
		return ret;
	}
	ctx->data = fc;
	atomic_fetch_add(&fe->refs, 1);
	return 0;
}

static void fault_exit(struct swapio_ectx *ctx)
{
	struct fault_engine *fe = fe_of(ctx);

	fe->real->exit(real_of(ctx));
	free(ctx->data);
	ctx->data = NULL;
	fault_put(fe);	/* may free the table ctx->ops points to */
}

static void fault_queue(struct swapio_ectx *ctx, struct swapio_req *rq)
{
	struct fault_engine *fe = fe_of(ctx);
	struct fault_ctx *fc = ctx->data;
	const struct fault_spec *sp = &fe->spec;
	const bool hit = fault_pick(fe, rq);

	if (hit && sp->delay_ms) {
		fc->delay_due = true;
		fault_count(fe);
	}
	if (sp->err && fault_fails(sp, rq, hit)) {
		fc->failed[fc->nr_failed++] =
			(struct swapio_event){ rq, -sp->err };
		fault_count(fe);
		return;
	}
	if (hit && sp->trim && fault_trim(fe, &fc->real, rq)) {
		fault_count(fe);
		return;
	}
	fe->real->queue(&fc->real, rq);
}

static void take_syscalls(struct swapio_ectx *ctx)
{
	struct swapio_ectx *real = real_of(ctx);

	ctx->syscalls += real->syscalls;
	real->syscalls = 0;
	ctx->registered += real->registered;
	real->registered = 0;
}

static int fault_submit(struct swapio_ectx *ctx)
{
	int ret = fe_of(ctx)->real->submit(real_of(ctx));

	take_syscalls(ctx);
	return ret;
}

static void fault_sleep(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	/* Worker threads block every signal, but be safe if one lands. */
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Our own events first: they may satisfy @min alone, and the real engine
 * must never be asked to wait for more requests than it holds.
 */
static int fault_reap(struct swapio_ectx *ctx, unsigned int min,
		      struct swapio_event *ev, unsigned int max)
{
	struct fault_engine *fe = fe_of(ctx);
	struct fault_ctx *fc = ctx->data;
	unsigned int n;
	int ret;

	if (fe->spec.fatal && !atomic_exchange(&fe->fatal_done, true)) {
		fault_count(fe);
		return -fe->spec.fatal;
	}
	if (fc->delay_due) {
		fc->delay_due = false;
		fault_sleep(fe->spec.delay_ms);
	}
	n = SWAPIO_MIN(fc->nr_failed, max);
	memcpy(ev, fc->failed, n * sizeof(*ev));
	fc->nr_failed -= n;
	memmove(fc->failed, fc->failed + n, fc->nr_failed * sizeof(*ev));
	ret = fe->real->reap(&fc->real, min > n ? min - n : 0, ev + n,
			     max - n);
	take_syscalls(ctx);
	return ret < 0 ? ret : ret + (int)n;
}

static void fault_wake(struct swapio_ectx *ctx)
{
	fe_of(ctx)->real->wake(real_of(ctx));
}

static void fault_flush(struct swapio_ectx *ctx)
{
	if (fe_of(ctx)->real->flush)
		fe_of(ctx)->real->flush(real_of(ctx));
}

/* ------------------------------------------------------------------ */
/* Wrapping                                                            */
/* ------------------------------------------------------------------ */

int swapio__fault_filter(const char *env, unsigned int id,
			 unsigned int nr_workers,
			 const struct swapio_engine_ops **e)
{
	struct fault_engine *fe;
	struct fault_spec sp;
	int ret;

	if (!env)
		return 0;
	ret = fault_parse(env, &sp);
	if (ret)	/* swapio_handle_create() checked it: changed since */
		return swapio__detail(ret, "SWAPIO_FAULT='%.256s': not a "
				      "fault spec", env);
	if (!spec_has_io(&sp) && !sp.setup_err[id])
		return 0;	/* nothing for this engine: run it bare */
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->ops = (struct swapio_engine_ops){
		.version	= SWAPIO_ENGINE_OPS_VERSION,
		.probe		= (*e)->probe,	/* cached per process anyway */
		.init		= fault_init,
		.exit		= fault_exit,
		.queue		= fault_queue,
		.submit		= fault_submit,
		.reap		= fault_reap,
		.wake		= fault_wake,
		.flush		= fault_flush,
	};
	fe->real = *e;
	fe->id = id;
	fe->nr_workers = nr_workers;
	fe->spec = sp;
	atomic_init(&fe->refs, 1);
	*e = &fe->ops;
	return 0;
}

void swapio__fault_unwrap(const struct swapio_engine_ops *e)
{
	if (e && e->init == fault_init)
		fault_put(container_of(e, struct fault_engine, ops));
}

int64_t swapio__fault_count(const struct swapio_engine_ops *e)
{
	if (!e || e->init != fault_init)
		return -1;
	return (int64_t)atomic_load(
		&container_of(e, struct fault_engine, ops)->injected);
}
