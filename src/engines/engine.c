/* SPDX-License-Identifier: MIT */
/*
 * The engine registry: the one preference list that "auto" walks and the
 * names come from, cached probes, and the check that a table is complete.
 * The core's side of the contract (the wrappers through which workers
 * call engines) is src/core/engine_calls.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "swapio.h"

#ifdef SWAPIO_HAVE_LIBURING
#define URING_OPS	(&swapio__engine_uring)
#else
#define URING_OPS	NULL
#endif
#ifdef SWAPIO_HAVE_LIBAIO
#define AIO_OPS		(&swapio__engine_aio)
#else
#define AIO_OPS		NULL
#endif

/* In the order "auto" tries them; ops is NULL when not built in. */
static const struct {
	unsigned int			id;
	const char			*name;
	const struct swapio_engine_ops	*ops;
} engines[] = {
	{ SWAPIO_ENGINE_URING,	 "uring",   URING_OPS },
	{ SWAPIO_ENGINE_AIO,	 "aio",	    AIO_OPS },
	{ SWAPIO_ENGINE_THREADS, "threads", &swapio__engine_threads },
};

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result[SWAPIO_ARRAY_SIZE(engines)];

static void probe_all(void)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(engines); i++)
		probe_result[i] = engines[i].ops ? engines[i].ops->probe() :
						   -EOPNOTSUPP;
}

int swapio__engine_nth(size_t i)
{
	return i < SWAPIO_ARRAY_SIZE(engines) ? (int)engines[i].id : -1;
}

const struct swapio_engine_ops *swapio__engine_get(unsigned int id)
{
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(engines); i++)
		if (engines[i].id == id)
			return engines[i].ops;
	return NULL;
}

int swapio__engine_check(const struct swapio_engine_ops *ops)
{
	if (ops->version != SWAPIO_ENGINE_OPS_VERSION || !ops->probe ||
	    !ops->init || !ops->exit || !ops->queue || !ops->submit ||
	    !ops->reap || !ops->wake)
		return -ENOSYS;
	return 0;
}

int swapio_engine_probe(unsigned int engine)
{
	if (engine == SWAPIO_ENGINE_AUTO)
		return 0;
	pthread_once(&probe_once, probe_all);
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(engines); i++)
		if (engines[i].id == engine)
			return probe_result[i];
	return -EOPNOTSUPP;
}

const char *swapio_engine_name(unsigned int engine)
{
	if (engine == SWAPIO_ENGINE_AUTO)
		return "auto";
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(engines); i++)
		if (engines[i].id == engine)
			return engines[i].name;
	return NULL;
}

int swapio_engine_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "auto"))
		return SWAPIO_ENGINE_AUTO;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(engines); i++)
		if (!strcmp(name, engines[i].name))
			return (int)engines[i].id;
	return -EINVAL;
}
