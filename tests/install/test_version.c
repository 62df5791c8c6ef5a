/* SPDX-License-Identifier: MIT */
/*
 * The version the header states is project()'s (passed in by CMake as
 * T_PROJECT_MAJOR/MINOR/PATCH), the library reports it, and
 * SWAPIO_CHECK_VERSION() compares against it; swapio_errname() names
 * every code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "swapio.h"

static void header_matches_project(void **state)
{
	(void)state;
	assert_int_equal(SWAPIO_VERSION_MAJOR, T_PROJECT_MAJOR);
	assert_int_equal(SWAPIO_VERSION_MINOR, T_PROJECT_MINOR);
	assert_int_equal(SWAPIO_VERSION_PATCH, T_PROJECT_PATCH);
	assert_int_equal(swapio_version(), SWAPIO_VERSION_NUMBER);
}

static void check_version(void **state)
{
	const int M = SWAPIO_VERSION_MAJOR, m = SWAPIO_VERSION_MINOR;
	const int p = SWAPIO_VERSION_PATCH;

	(void)state;
	assert_true(SWAPIO_CHECK_VERSION(0, 0, 0));
	assert_true(SWAPIO_CHECK_VERSION(M, m, p));
	assert_false(SWAPIO_CHECK_VERSION(M, m, p + 1));
	assert_false(SWAPIO_CHECK_VERSION(M, m + 1, 0));
	assert_false(SWAPIO_CHECK_VERSION(M + 1, 0, 0));
	if (p > 0)
		assert_true(SWAPIO_CHECK_VERSION(M, m, p - 1));
	if (m > 0)
		assert_true(SWAPIO_CHECK_VERSION(M, m - 1, 99));
#if !SWAPIO_CHECK_VERSION(0, 1, 0)
	fail_msg("SWAPIO_CHECK_VERSION does not work in #if");
#endif
}

static void errname(void **state)
{
	static const struct { int err; const char *name; } cases[] = {
		{ SWAPIO_EMEMLOCK, "SWAPIO_EMEMLOCK" },
		{ SWAPIO_EBADSTORE, "SWAPIO_EBADSTORE" },
		{ SWAPIO_EFORKED, "SWAPIO_EFORKED" },
		{ -ENOSPC, "ENOSPC" },
		{ -EIO, "EIO" },
		{ -EBADMSG, "EBADMSG" },
		{ -ETIMEDOUT, "ETIMEDOUT" },
		{ -EOPNOTSUPP, "EOPNOTSUPP" },
		{ 0, "OK" },
		{ 4096, "OK" },
		{ -2999, "UNKNOWN" },
		{ SWAPIO_ERRNO_BASE - 100, "UNKNOWN" },
		{ INT_MIN, "UNKNOWN" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 4242;
		assert_string_equal(swapio_errname(cases[i].err),
				    cases[i].name);
		assert_int_equal(errno, 4242);
		/* The message and the name describe the same code. */
		assert_non_null(swapio_strerror(cases[i].err));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_matches_project),
		cmocka_unit_test(check_version),
		cmocka_unit_test(errname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
