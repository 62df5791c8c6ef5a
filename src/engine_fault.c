/* SPDX-License-Identifier: MIT */
/*
 * The fault engine: a wrapper around a real engine that forwards every
 * hook, except that on command it fails requests with a chosen errno,
 * trims them so the kernel returns a short transfer, delays completions,
 * or refuses to set up. It exists so that tests (and the CLI, the stress
 * program and child processes, through the environment) can walk every
 * error path of the core with real I/O, the way sqlite's test_vfs.c wraps
 * a parent VFS.
 *
 * It is switched on per handle by SWAPIO_FAULT, read when the handle is
 * created (docs/RELIABILITY.md has the grammar). Without it the handle
 * runs the real engine's table directly: nothing here is on the hot path.
 *
 * Each wrapped handle gets its own copy of the real table, embedded in a
 * struct fault_engine, so that a hook finds its state from w->h->engine
 * and the real engine keeps w->engine_data to itself. The copy lives as
 * long as something uses it: the wrap while workers start, then each
 * worker whose engine is set up, until its ->exit().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

#define FAULT_SPEC_MAX	256		/* longer specs are refused */
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
	int		setup_err[NR_ENGINE_IDS];	/* positive errno */
};

/* Owned by one worker thread: faults waiting to be delivered. */
struct fault_worker {
	struct swapio_req	*failed;	/* to complete with -err */
	bool			delay_due;
};

struct fault_engine {
	/* First: h->engine points here. */
	struct swapio_engine_ops	ops;
	const struct swapio_engine_ops	*real;
	struct fault_spec		spec;
	atomic_uint			refs;
	atomic_uint_least64_t		seen;	/* requests counted */
	atomic_uint_least64_t		injected;
	struct fault_worker		workers[];	/* by worker id */
};

/* ------------------------------------------------------------------ */
/* The spec                                                            */
/* ------------------------------------------------------------------ */

static const struct {
	const char	*name;
	int		err;
} fault_errnos[] = {
	{ "EIO", EIO },		{ "ENOSPC", ENOSPC },
	{ "EINTR", EINTR },	{ "EAGAIN", EAGAIN },
	{ "EDQUOT", EDQUOT },	{ "EROFS", EROFS },
	{ "ENOMEM", ENOMEM },	{ "EPERM", EPERM },
	{ "ENOSYS", ENOSYS },	{ "EBADF", EBADF },
	{ "EOPNOTSUPP", EOPNOTSUPP },
};

static int parse_errno(const char *s)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(fault_errnos);
	     i++)
		if (!strcmp(s, fault_errnos[i].name))
			return fault_errnos[i].err;
	return -EINVAL;
}

/* A decimal number in [min, max], nothing else. */
static int parse_num(const char *s, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

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
	err = parse_errno(colon + 1);
	if (id <= SWAPIO_ENGINE_AUTO || id >= NR_ENGINE_IDS || err < 0 ||
	    sp->setup_err[id])
		return -EINVAL;
	sp->setup_err[id] = err;
	return 0;
}

enum {
	KEY_ERRNO, KEY_SHORT, KEY_STICKY, KEY_DELAY, KEY_DIR, KEY_NTH,
	KEY_EVERY, KEY_PROB, KEY_SEED, KEY_SETUP, NR_KEYS
};

static const char *const fault_keys[NR_KEYS] = {
	[KEY_ERRNO] = "errno",	[KEY_SHORT] = "short",
	[KEY_STICKY] = "sticky", [KEY_DELAY] = "delay_ms",
	[KEY_DIR] = "dir",	[KEY_NTH] = "nth",
	[KEY_EVERY] = "every",	[KEY_PROB] = "prob",
	[KEY_SEED] = "seed",	[KEY_SETUP] = "setup",
};

static int parse_key(const char *s)
{
	for (int k = 0; k < NR_KEYS; k++)
		if (!strcmp(s, fault_keys[k]))
			return k;
	return -EINVAL;
}

static int parse_pick(struct fault_spec *sp, int key, const char *val)
{
	if (sp->pick != PICK_ALL)
		return -EINVAL;	/* one way of picking at a time */
	if (key == KEY_PROB) {
		sp->pick = PICK_PROB;
		return parse_prob(val, &sp->prob);
	}
	sp->pick = key == KEY_NTH ? PICK_NTH : PICK_EVERY;
	return parse_num(val, 1, UINT64_MAX, &sp->n);
}

static int parse_flag(const char *val, bool *out)
{
	uint64_t v;
	int ret = parse_num(val, 0, 1, &v);

	*out = v;
	return ret;
}

static int parse_item(struct fault_spec *sp, int key, char *val)
{
	uint64_t v;
	int ret;

	switch (key) {
	case KEY_ERRNO:
		ret = parse_errno(val);
		sp->err = ret > 0 ? ret : 0;
		return ret < 0 ? ret : 0;
	case KEY_SHORT:
		return parse_flag(val, &sp->trim);
	case KEY_STICKY:
		return parse_flag(val, &sp->sticky);
	case KEY_DELAY:
		ret = parse_num(val, 1, FAULT_DELAY_MAX, &v);
		sp->delay_ms = (unsigned int)v;
		return ret;
	case KEY_DIR:
		sp->dir = !strcmp(val, "read") ? DIR_READ :
			  !strcmp(val, "write") ? DIR_WRITE : -1;
		return sp->dir < 0 ? -EINVAL : 0;
	case KEY_SEED:
		return parse_num(val, 0, UINT64_MAX, &sp->seed);
	case KEY_SETUP:
		return parse_setup(sp, val);
	default:
		return parse_pick(sp, key, val);
	}
}

static bool spec_has_io(const struct fault_spec *sp)
{
	return sp->err || sp->trim || sp->delay_ms;
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

/*
 * Items are "key=value", each key at most once; a bare "engine:ERRNO"
 * continues a setup= list ("setup=uring:EPERM,aio:EAGAIN").
 */
static int fault_parse(const char *spec, struct fault_spec *sp)
{
	char buf[FAULT_SPEC_MAX], *item, *save, *eq;
	unsigned int seen = 0;
	int key = -1, ret = 0;

	memset(sp, 0, sizeof(*sp));
	sp->seed = 1;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (item = strtok_r(buf, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		eq = strchr(item, '=');
		if (!eq) {
			ret = key == KEY_SETUP ? parse_setup(sp, item) :
						   -EINVAL;
			continue;
		}
		*eq = '\0';
		key = parse_key(item);
		if (key < 0 || (seen & (1u << key)))
			return -EINVAL;
		seen |= 1u << key;
		ret = parse_item(sp, key, eq + 1);
	}
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

static struct fault_engine *fe_of(const struct swapio_worker *w)
{
	return (struct fault_engine *)w->h->engine;
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

/* Counts every request the engine is given, retries and remainders too. */
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
 * EINTR and EAGAIN are retried by the core SWAPIO_MAX_RETRIES times. Never
 * injecting one into a request's last chance makes every such fault
 * recoverable, so "errno=EINTR,every=3" ends with the full byte count.
 * sticky=1 asks for the opposite: a picked request keeps failing until the
 * core gives up and fails the op with that errno.
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
 * Forward only the first half of what is left of @rq, so that the engine
 * reports a short transfer and the core must send the rest. A request on
 * the O_DIRECT descriptor is cut on the file's alignment, as a real short
 * direct transfer would be. Returns false if it is too small to cut.
 */
static bool fault_trim(struct fault_engine *fe, struct swapio_worker *w,
		       struct swapio_req *rq)
{
	const swapio_file *f = rq->part->op->f;
	const size_t len = rq->len;
	size_t keep = swapio__req_len(rq) / 2;

	if (rq->fd != f->bfd)
		keep = SWAPIO_ALIGN_DOWN(keep, f->off_align);
	if (!keep)
		return false;
	rq->len = rq->done + keep;
	fe->real->queue(w, rq);	/* reads the length now (engine.h) */
	rq->len = len;
	fault_count(fe);
	return true;
}

/* ------------------------------------------------------------------ */
/* The hooks                                                           */
/* ------------------------------------------------------------------ */

static int fault_probe(void)
{
	/* Never called: probes go to the real table, cached per process. */
	return 0;
}

static void fault_put(struct fault_engine *fe)
{
	if (atomic_fetch_sub(&fe->refs, 1) == 1)
		free(fe);
}

/*
 * A setup fault fails the handle's last worker only. The others set up
 * for real and must then be torn down by the core, which is the path
 * worth testing; to the caller the engine failed to start either way.
 */
static int fault_init(struct swapio_worker *w)
{
	struct fault_engine *fe = fe_of(w);
	const int err = fe->spec.setup_err[fe->real->id];
	int ret;

	if (err && w->id == w->h->cfg.threads - 1)
		return -err;
	ret = fe->real->init(w);
	if (!ret)
		atomic_fetch_add(&fe->refs, 1);
	return ret;
}

static void fault_exit(struct swapio_worker *w)
{
	struct fault_engine *fe = fe_of(w);

	fe->real->exit(w);
	fault_put(fe);	/* may free the table w->h->engine points to */
}

static void fault_queue(struct swapio_worker *w, struct swapio_req *rq)
{
	struct fault_engine *fe = fe_of(w);
	struct fault_worker *fw = &fe->workers[w->id];
	const struct fault_spec *sp = &fe->spec;
	const bool hit = fault_pick(fe, rq);

	if (hit && sp->delay_ms) {
		fw->delay_due = true;
		fault_count(fe);
	}
	if (sp->err && fault_fails(sp, rq, hit)) {
		/* In flight for the core, so rq->next is ours until reaped. */
		rq->next = fw->failed;
		fw->failed = rq;
		fault_count(fe);
		return;
	}
	if (hit && sp->trim && fault_trim(fe, w, rq))
		return;
	fe->real->queue(w, rq);
}

static int fault_submit(struct swapio_worker *w)
{
	return fe_of(w)->real->submit(w);
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
 * Deliver the delay and the injected errors first: they may satisfy @min
 * alone, and the real engine must never be asked to wait for more
 * requests than it holds (it holds w->inflight of them once ours are out).
 */
static int fault_reap(struct swapio_worker *w, unsigned int min)
{
	struct fault_engine *fe = fe_of(w);
	struct fault_worker *fw = &fe->workers[w->id];
	struct swapio_req *rq;
	unsigned int n = 0;
	int ret;

	if (fw->delay_due) {
		fw->delay_due = false;
		fault_sleep(fe->spec.delay_ms);
	}
	while ((rq = fw->failed)) {
		fw->failed = rq->next;
		/* After this call rq may be requeued and reused. */
		swapio__complete(w, rq, -fe->spec.err);
		n++;
	}
	ret = fe->real->reap(w, min > n ? min - n : 0);
	return ret < 0 ? ret : ret + (int)n;
}

/* ------------------------------------------------------------------ */
/* Wrapping                                                            */
/* ------------------------------------------------------------------ */

int swapio__fault_wrap(const swapio_handle *h,
		       const struct swapio_engine_ops **e)
{
	const char *env = getenv("SWAPIO_FAULT");
	const struct swapio_engine_ops *real = *e;
	struct fault_engine *fe;
	struct fault_spec sp;
	int ret;

	if (!env || !*env)
		return 0;
	ret = fault_parse(env, &sp);
	if (ret)
		return ret;
	if (!spec_has_io(&sp) && !sp.setup_err[real->id])
		return 0;	/* nothing for this engine: run it bare */
	fe = calloc(1, sizeof(*fe) + h->cfg.threads * sizeof(fe->workers[0]));
	if (!fe)
		return -ENOMEM;
	fe->ops = *real;	/* same name, id and caps as the real one */
	fe->ops.probe = fault_probe;
	fe->ops.init = fault_init;
	fe->ops.exit = fault_exit;
	fe->ops.queue = fault_queue;
	fe->ops.submit = fault_submit;
	fe->ops.reap = fault_reap;
	fe->real = real;
	fe->spec = sp;
	atomic_init(&fe->refs, 1);
	*e = &fe->ops;
	return 0;
}

void swapio__fault_unwrap(const struct swapio_engine_ops *e)
{
	if (e && e->init == fault_init)
		fault_put((struct fault_engine *)e);
}

int64_t swapio__fault_injected(const swapio_handle *h)
{
	const struct fault_engine *fe;

	if (!h || !h->engine || h->engine->init != fault_init)
		return -1;
	fe = (const struct fault_engine *)h->engine;
	return (int64_t)atomic_load(&fe->injected);
}
