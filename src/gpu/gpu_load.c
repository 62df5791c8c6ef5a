/* SPDX-License-Identifier: MIT */
/*
 * Loading the CUDA runtime and cuFile with dlopen(), for the device layer
 * (src/gpu/gpu.c). Neither is linked or included: the calls are declared by
 * hand in gpu_abi.h, which tests/gpu/gpu_abi_check.c checks against the real
 * headers.
 *
 * The runtime is chosen once per process, at the first device call: a
 * candidate already loaded in the process (torch's, say) before any
 * other, so that one process never runs two runtimes; then each candidate
 * in order. A runtime is kept only if cudaGetDeviceCount() finds a device:
 * a 13.x runtime on a driver older than 580 loads but answers 35
 * ("insufficient driver") to every call, and the next candidate may work.
 * Where none works, the device layer says SWAPIO_ENOCUDA with what each
 * candidate answered, once, and never calls CUDA again.
 *
 * cuFile is loaded later and apart: only for an op that may use GDS, on a
 * thread of its own, since cuFileDriverOpen() has been seen to spin for
 * good (reading a /proc/modules that is missing). Whoever asks waits a
 * bounded time; an answer that comes later is used from then on.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_load.h"
#include "util.h"

/* How long the first op that may use GDS waits for cuFileDriverOpen(). */
#define CUFILE_OPEN_WAIT_MS	3000

struct swapio__cuda swapio__cuda;
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

struct sym {
	const char	*name;
	size_t		off;
	bool		optional;
};

#define SYM_CU(name, ret, params)					\
	{ "cuda" #name, offsetof(struct cuda_api, name), false },
#define SYM_CU_OPT(name, ret, params)					\
	{ "cuda" #name, offsetof(struct cuda_api, name), true },
static const struct sym cuda_syms[] = {
	SWAPIO_CUDA_CALLS(SYM_CU, struct cu_ptr_attr)
	SWAPIO_CUDA_OPTIONAL(SYM_CU_OPT)
};

#define SYM_DRV(name, ret, params)					\
	{ "cu" #name, offsetof(struct cuda_api, name), true },
static const struct sym driver_syms[] = {
	SWAPIO_CUDA_DRIVER_CALLS(SYM_DRV)
};

#define SYM_CF(name, ret, params)					\
	{ "cuFile" #name, offsetof(struct cufile_api, name), false },
#define SYM_CF_OPT(name, ret, params)					\
	{ "cuFile" #name, offsetof(struct cufile_api, name), true },
static const struct sym cufile_syms[] = {
	SWAPIO_CUFILE_CALLS(SYM_CF, R, D)
	SWAPIO_CUFILE_OPTIONAL(SYM_CF_OPT, R, P)
};

static void __attribute__((format(printf, 3, 4)))
why_add(char *why, size_t len, const char *fmt, ...)
{
	size_t used = strlen(why);
	va_list ap;

	if (used && used + 2 < len) {
		memcpy(why + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(why + used, len - used, fmt, ap);
	va_end(ap);
}

/* Fills @table from @lib; false, and the first missing name, if one is. */
static bool syms_load(void *lib, const struct sym *syms, size_t n,
		      void *table, const char **missing)
{
	void *p;

	for (size_t i = 0; i < n; i++) {
		p = dlsym(lib, syms[i].name);
		if (!p && !syms[i].optional) {
			*missing = syms[i].name;
			return false;
		}
		/* POSIX: a function's address travels as a void *. */
		memcpy((char *)table + syms[i].off, &p, sizeof(p));
	}
	return true;
}

/* ---- the runtime ---------------------------------------------------- */

/* The driver's context calls, where the runtime hands them out. */
static void driver_load(struct cuda_api *cu)
{
	cu_entry_status st;
	void *p;

	if (!cu->GetDriverEntryPointByVersion)
		return;
	for (size_t i = 0; i < SWAPIO_ARRAY_SIZE(driver_syms); i++) {
		p = NULL;
		if (cu->GetDriverEntryPointByVersion(driver_syms[i].name, &p,
						     GPU_DRIVER_VERSION,
						     GPU_ENTRY_DEFAULT, &st) ||
		    st != GPU_ENTRY_SUCCESS)
			p = NULL;
		memcpy((char *)cu + driver_syms[i].off, &p, sizeof(p));
	}
	if (!cu->CtxGetCurrent || !cu->CtxSetCurrent)
		cu->CtxGetCurrent = NULL, cu->CtxSetCurrent = NULL;
	cu->GetLastError();	/* a refused entry point is no error of ours */
}

/* Does the runtime @lib, loaded as @name, find a device? */
static bool cuda_try(void *lib, const char *name)
{
	struct swapio__cuda *c = &swapio__cuda;
	const char *missing = NULL, *msg;
	int count = 0;
	cu_err e;

	if (!syms_load(lib, cuda_syms, SWAPIO_ARRAY_SIZE(cuda_syms), &c->cu,
		       &missing)) {
		why_add(c->why, sizeof(c->why), "%s: %s missing", name,
			missing);
		return false;
	}
	e = c->cu.GetDeviceCount(&count);
	if (e != GPU_SUCCESS || count <= 0) {
		if (e == GPU_SUCCESS)
			e = GPU_ERR_NO_DEVICE;
		msg = c->cu.GetErrorString(e);
		why_add(c->why, sizeof(c->why),
			"%s: cudaGetDeviceCount: %s (%u)", name,
			msg ? msg : "unknown error", e);
		c->cu.GetLastError();
		return false;
	}
	driver_load(&c->cu);
	return true;
}

#define CUDA_MAX_CANDIDATES	8

/* SWAPIO_CUDA_LIBRARY's ':'-separated paths, or the usual sonames. */
static size_t cuda_candidates(char *buf, size_t len, const char **names)
{
	static const char *const sonames[] = { "libcudart.so.13",
					       "libcudart.so.12",
					       "libcudart.so" };
	const char *env = swapio__env("SWAPIO_CUDA_LIBRARY");
	size_t n = 0;
	char *save, *p;

	if (!env || !*env) {
		for (; n < SWAPIO_ARRAY_SIZE(sonames); n++)
			names[n] = sonames[n];
		return n;
	}
	snprintf(buf, len, "%s", env);
	for (p = strtok_r(buf, ":", &save); p && n < CUDA_MAX_CANDIDATES;
	     p = strtok_r(NULL, ":", &save))
		names[n++] = p;
	return n;
}

static void cuda_load_once(void)
{
	struct swapio__cuda *c = &swapio__cuda;
	const char *names[CUDA_MAX_CANDIDATES], *err;
	bool tried[CUDA_MAX_CANDIDATES] = { false };
	char buf[1024], *first = NULL;
	size_t n = cuda_candidates(buf, sizeof(buf), names);
	void *lib;

	/* One already in the process first: never a second runtime. */
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if (tried[i])
				continue;
			lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL |
				     (pass ? 0 : RTLD_NOLOAD));
			if (!lib) {
				err = dlerror();
				if (pass)
					why_add(c->why, sizeof(c->why),
						"CUDA runtime not loaded (%s)",
						err ? err : names[i]);
				continue;
			}
			tried[i] = true;
			if (cuda_try(lib, names[i])) {
				c->ok = true;
				first = c->why[0] ? strdup(c->why) : NULL;
				if (first)
					snprintf(c->why, sizeof(c->why),
						 "%s; using %s", first,
						 names[i]);
				free(first);
				return;
			}
			memset(&c->cu, 0, sizeof(c->cu));
			dlclose(lib);
		}
	}
	if (!c->why[0])
		snprintf(c->why, sizeof(c->why), "no CUDA runtime named");
}

void swapio__cuda_load(void)
{
	pthread_once(&cuda_once, cuda_load_once);
}

/* ---- cuFile ---------------------------------------------------------- */

static struct {
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	pthread_once_t		once;
	enum cufile_state	state;
	struct timespec		deadline;	/* of the wait for the driver */
	struct cufile_api	api;
	char			why[320];
} cf = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.once = PTHREAD_ONCE_INIT,
};

static void cufile_cv_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cf.cv, &a);
	pthread_condattr_destroy(&a);
}

/* Load cuFile and open its driver; the state and why, into @api/@why. */
static enum cufile_state cufile_open(struct cufile_api *api, char *why,
				     size_t len)
{
	static const char *const names[] = { "libcufile.so.0",
					     "libcufile.so" };
	const char *env = swapio__env("SWAPIO_CUFILE_LIBRARY");
	struct cufile_props props;
	const char *missing = NULL, *err;
	char first[256] = "";
	struct cufile_err e;
	void *lib = NULL;

	if (env && !strcmp(env, "none")) {
		snprintf(why, len, "cuFile not loaded "
			 "(SWAPIO_CUFILE_LIBRARY=none)");
		return GDS_FAILED;
	}
	for (size_t i = 0; !lib && i < SWAPIO_ARRAY_SIZE(names); i++) {
		lib = dlopen(env && *env ? env : names[i],
			     RTLD_NOW | RTLD_LOCAL);
		/*
		 * The first name's reason, copied: the later names are
		 * fallbacks, and the next dlopen() reuses dlerror()'s text.
		 */
		err = lib ? NULL : dlerror();
		if (err && !first[0])
			snprintf(first, sizeof(first), "%s", err);
		if (env && *env)
			break;
	}
	if (!lib) {
		snprintf(why, len, "cuFile not loaded (%s)",
			 first[0] ? first : "not found");
		return GDS_FAILED;
	}
	if (!syms_load(lib, cufile_syms, SWAPIO_ARRAY_SIZE(cufile_syms), api,
		       &missing)) {
		snprintf(why, len, "cuFile not loaded (%s missing)", missing);
		dlclose(lib);
		return GDS_FAILED;
	}
	/* Opened once per process; closed by the process's exit. */
	e = api->DriverOpen();
	if (e.err) {
		snprintf(why, len, "cuFileDriverOpen: error %u (CUDA %u)",
			 e.err, e.cu_err);
		return GDS_FAILED;
	}
	/*
	 * nvidia-fs's version is 0.0 where its module is not loaded: cuFile
	 * then runs in compatibility mode, POSIX I/O through bounce buffers
	 * of its own, with no direct path to the device.
	 */
	memset(&props, 0, sizeof(props));
	if (api->DriverGetProperties &&
	    !api->DriverGetProperties(&props).err &&
	    !props.nvfs.major_version && !props.nvfs.minor_version)
		return GDS_COMPAT;
	return GDS_NVFS;
}

static void *cufile_main(void *arg)
{
	struct cufile_api api;
	enum cufile_state st;
	char why[sizeof(cf.why)] = "";

	(void)arg;
	memset(&api, 0, sizeof(api));
	st = cufile_open(&api, why, sizeof(why));
	pthread_mutex_lock(&cf.lock);
	cf.api = api;
	cf.state = st;
	memcpy(cf.why, why, sizeof(why));
	pthread_cond_broadcast(&cf.cv);
	pthread_mutex_unlock(&cf.lock);
	return NULL;
}

/* cf.lock held. The opener thread, detached: it may never come back. */
static void cufile_start(void)
{
	pthread_attr_t a;
	pthread_t t;
	int ret;

	cf.state = GDS_OPENING;
	cf.deadline = swapio__deadline(CUFILE_OPEN_WAIT_MS);
	ret = pthread_attr_init(&a);
	if (!ret) {
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&t, &a, cufile_main, NULL);
		pthread_attr_destroy(&a);
	}
	if (ret) {
		cf.state = GDS_FAILED;
		snprintf(cf.why, sizeof(cf.why), "cuFile not opened: no thread "
			 "(%s)", strerror(ret));
	}
}

enum cufile_state swapio__cufile_get(const struct cufile_api **api,
				     char *why, size_t len)
{
	enum cufile_state st;

	pthread_once(&cf.once, cufile_cv_init);
	pthread_mutex_lock(&cf.lock);
	if (cf.state == GDS_UNTRIED)
		cufile_start();
	while (cf.state == GDS_OPENING &&
	       pthread_cond_timedwait(&cf.cv, &cf.lock, &cf.deadline) == 0)
		;
	st = cf.state;
	*api = &cf.api;
	if (st == GDS_OPENING)
		snprintf(why, len, "cuFileDriverOpen: no answer after %d s; "
			 "gds unavailable until it answers",
			 CUFILE_OPEN_WAIT_MS / 1000);
	else
		snprintf(why, len, "%s", cf.why);
	pthread_mutex_unlock(&cf.lock);
	return st;
}
