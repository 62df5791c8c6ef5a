/* SPDX-License-Identifier: MIT */
/*
 * The SWAPIO_FAULT grammar: every documented form is accepted, anything
 * else makes swapio_handle_create() fail with -EINVAL (a typo must not
 * turn fault injection silently off), and an empty variable or one that
 * concerns another engine leaves the handle on its bare engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_fault.h"

static const char *const good[] = {
	"errno=EIO,nth=5",
	"errno=EINTR,every=3",
	"short=1,every=2",
	"delay_ms=20,every=4",
	"seed=7,prob=0.1,errno=EAGAIN",
	"setup=uring:EPERM,aio:EAGAIN",
	"setup=uring:ENOSYS",
	"setup=threads:ENOMEM,errno=EIO",
	"errno=EIO,setup=aio:EAGAIN,uring:EPERM,nth=2",
	"errno=ENOSPC,dir=write",
	"errno=EIO,dir=read,every=1",
	"errno=EAGAIN,nth=1,sticky=1",
	"delay_ms=5,errno=EIO",
	"delay_ms=60000",
	"prob=0,errno=EDQUOT",
	"prob=1,short=1",
	"prob=.5,errno=EROFS,seed=18446744073709551615",
	"short=1,delay_ms=1,nth=18446744073709551615",
};

static const char *const bad[] = {
	"",			/* does nothing */
	"nth=5",		/* picks, but injects nothing */
	"errno=EFOO",
	"errno=eio",
	"errno=",
	"errno",
	"=EIO",
	"bogus=1",
	"errno=EIO,nth=0",
	"errno=EIO,every=0",
	"errno=EIO,every=-1",
	"errno=EIO,every=3x",
	"errno=EIO,every= 3",
	"errno=EIO,nth=99999999999999999999999",
	"errno=EIO,prob=1.5",
	"errno=EIO,prob=-0.1",
	"errno=EIO,prob=nan",
	"errno=EIO,prob=inf",
	"errno=EIO,nth=1,every=2",	/* one way of picking */
	"errno=EIO,errno=EIO",		/* each key once */
	"errno=EIO,nth=1,nth=1",
	"short=2",
	"short=1,errno=EIO",		/* contradictory */
	"errno=EIO,sticky=1",		/* sticky only for EINTR/EAGAIN */
	"delay_ms=0",
	"delay_ms=60001",
	"errno=EIO,dir=both",
	"setup=auto:EPERM",
	"setup=uring",
	"setup=uring:",
	"setup=uring:EPERM,uring:EIO",
	"setup=uring:EPERM,every=2",	/* picking needs an I/O fault */
	"aio:EAGAIN",			/* continues nothing */
	"errno=EIO,aio:EAGAIN",
};

static void grammar(void **state)
{
	char long_spec[400];

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(good); i++)
		if (swapio__fault_check(good[i]))
			fail_msg("refused: \"%s\"", good[i]);
	for (size_t i = 0; i < T_ARRAY_SIZE(bad); i++)
		if (swapio__fault_check(bad[i]) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	assert_int_equal(swapio__fault_check(NULL), -EINVAL);
	/* Longer than any real spec: refused, not truncated. */
	strcpy(long_spec, "errno=EIO,nth=");
	memset(long_spec + strlen(long_spec), '0', 300);
	strcpy(long_spec + 314, "1");
	assert_int_equal(swapio__fault_check(long_spec), -EINVAL);
	assert_int_equal(swapio__fault_check("errno=EIO,nth=0001"), 0);
}

/* A bad SWAPIO_FAULT fails swapio_handle_create(), named engine or auto. */
static void create_refuses_bad_spec(void **state)
{
	struct swapio_config cfg = { .engine = t_engine() };
	swapio_handle *h = (swapio_handle *)1;

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 1; i < T_ARRAY_SIZE(bad); i++) {
			setenv("SWAPIO_FAULT", bad[i], 1);
			assert_int_equal(swapio_handle_create(&cfg, &h),
					 -EINVAL);
			assert_null(h);
		}
		cfg.engine = SWAPIO_ENGINE_AUTO;
	}
	unsetenv("SWAPIO_FAULT");
}

/* Off means off: no wrapper, so nothing on the hot path either. */
static void off_means_bare(void **state)
{
	static const char *const off[] = { NULL, "" };
	struct swapio_config cfg = { 0 };
	unsigned int e = t_engine();
	char other[64];
	swapio_handle *h;

	(void)state;
	for (size_t i = 0; i < T_ARRAY_SIZE(off); i++) {
		if (off[i])
			setenv("SWAPIO_FAULT", off[i], 1);
		h = t_handle(cfg);
		assert_int_equal(swapio__fault_injected(h), -1);
		swapio_handle_destroy(h);
	}
	/* A setup fault for another engine leaves this one bare. */
	snprintf(other, sizeof(other), "setup=%s:EPERM",
		 e == SWAPIO_ENGINE_THREADS ? "uring" : "threads");
	setenv("SWAPIO_FAULT", other, 1);
	h = t_handle(cfg);
	assert_int_equal(swapio__fault_injected(h), -1);
	swapio_handle_destroy(h);
	unsetenv("SWAPIO_FAULT");
	/* And a wrapped handle reports the real engine's name. */
	h = tf_handle("errno=EIO,nth=1000000", cfg);
	if (e != SWAPIO_ENGINE_AUTO)
		assert_string_equal(swapio_handle_engine(h),
				    swapio_engine_name(e));
	assert_int_equal(swapio__fault_injected(h), 0);
	swapio_handle_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grammar),
		cmocka_unit_test(create_refuses_bad_spec),
		cmocka_unit_test(off_means_bare),
	};

	t_engine();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
