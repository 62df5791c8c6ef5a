/* SPDX-License-Identifier: MIT */
/*
 * Engine registry: the preference list that "auto" walks, cached probes and
 * the check that an engine's table is complete.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static const struct swapio_engine_ops *const engines[] = {
#ifdef SWAPIO_HAVE_LIBURING
	&swapio__engine_uring,
#endif
#ifdef SWAPIO_HAVE_LIBAIO
	&swapio__engine_aio,
#endif
	&swapio__engine_threads,	/* always built; the last resort */
};

#define NR_ENGINES	(SWAPIO_ARRAY_SIZE(engines))

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result[NR_ENGINES];

static void probe_all(void)
{
	for (size_t i = 0; i < NR_ENGINES; i++)
		probe_result[i] = engines[i]->probe();
}

const struct swapio_engine_ops *swapio__engine_get(unsigned int id)
{
	for (size_t i = 0; i < NR_ENGINES; i++)
		if (engines[i]->id == id)
			return engines[i];
	return NULL;
}

int swapio__engine_check(const struct swapio_engine_ops *ops)
{
	if (ops->version != SWAPIO_ENGINE_OPS_VERSION || !ops->probe ||
	    !ops->init || !ops->exit || !ops->queue || !ops->submit ||
	    !ops->reap)
		return -ENOSYS;
	return 0;
}

int swapio_engine_probe(unsigned int engine)
{
	pthread_once(&probe_once, probe_all);
	for (size_t i = 0; i < NR_ENGINES; i++)
		if (engines[i]->id == engine)
			return probe_result[i];
	return engine == SWAPIO_ENGINE_AUTO ? 0 : -EOPNOTSUPP;
}

static const char *const engine_names[] = {
	[SWAPIO_ENGINE_AUTO]	= "auto",
	[SWAPIO_ENGINE_URING]	= "uring",
	[SWAPIO_ENGINE_AIO]	= "aio",
	[SWAPIO_ENGINE_THREADS]	= "threads",
};

const char *swapio_engine_name(unsigned int engine)
{
	if (engine >= SWAPIO_ARRAY_SIZE(engine_names))
		return NULL;
	return engine_names[engine];
}

int swapio_engine_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	for (unsigned int i = 0;
	     i < SWAPIO_ARRAY_SIZE(engine_names); i++)
		if (!strcmp(name, engine_names[i]))
			return (int)i;
	return -EINVAL;
}
