/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "swapio.h"
#include "util.h"

#define SWAPIO_OWN_ERRORS(X)						\
	X(SWAPIO_EMEMLOCK, "memory could not be locked (RLIMIT_MEMLOCK "	\
			   "too low, or no CAP_IPC_LOCK)")			\
	X(SWAPIO_EBADSTORE, "store index damaged, or not a swapio store")	\
	X(SWAPIO_EFORKED, "object belongs to the process that created it "	\
			  "(inherited across fork)")				\
	X(SWAPIO_ENOCUDA, "device memory, but no CUDA runtime that finds a "	\
			  "device (libcudart.so not loaded, or no driver or "	\
			  "GPU; set SWAPIO_CUDA_LIBRARY)")			\
	X(SWAPIO_ECUDA, "a CUDA runtime call failed (the handle's GPU "	\
			"note names it)")			\
	X(SWAPIO_EDRIVES, "store opened with drives other than its own "	\
			  "(count, order, stripe unit or store)")

const char *swapio_strerror(int err)
{
	SWAPIO_KEEP_ERRNO;
	const char *msg;

	if (err >= 0)
		return "success";
	switch (err) {
#define X(code, text)	case code: return text;
	SWAPIO_OWN_ERRORS(X)
#undef X
	}
	/* -INT_MIN does not exist; no errno comes near it anyway. */
	if (err == INT_MIN)
		return "unknown error";
	msg = strerrordesc_np(-err);	/* glibc: static text, thread-safe */
	return msg ? msg : "unknown error";
}

const char *swapio_errname(int err)
{
	SWAPIO_KEEP_ERRNO;
	const char *name;

	if (err >= 0)
		return "OK";
	switch (err) {
#define X(code, text)	case code: return #code;
	SWAPIO_OWN_ERRORS(X)
#undef X
	}
	if (err == INT_MIN)
		return "UNKNOWN";
	name = strerrorname_np(-err);	/* glibc 2.32: static, thread-safe */
	return name ? name : "UNKNOWN";
}

/* The detail of this thread's last failed call; see swapio_error_detail(). */
static __thread char detail[512];

void swapio__detail_clear(void)
{
	detail[0] = '\0';
}

int swapio__detail(int err, const char *fmt, ...)
{
	SWAPIO_KEEP_ERRNO;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return err;
}

const char *swapio_error_detail(void)
{
	return detail;
}

unsigned int swapio_version(void)
{
	return SWAPIO_VERSION_NUMBER;
}
