/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration parser. Any input must parse or
 * be refused with -EINVAL, never crash or read past its end (libFuzzer
 * hands over an exact-size buffer; ASan watches the edge). What parses
 * must stay within the bounds of struct swapio_config and survive a save
 * and a load unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swapio.h"

static char path[128];

static void cleanup(void)
{
	unlink(path);
}

/* The round trip writes one small file; on tmpfs that costs little. */
static void pick_path(void)
{
	const char *dir = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/swapio-fuzz-config-%d.conf",
		 dir && *dir ? dir : "/tmp", (int)getpid());
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swapio_config c, back;
	int ret;

	if (!path[0])
		pick_path();
	ret = swapio_config_parse((const char *)data, size, &c);
	if (ret == -EINVAL)
		return 0;
	if (ret || c.queue_depth > 4096 || c.threads > 64 ||
	    c.block_size % 4096 || c.block_size > (1u << 30) ||
	    c.engine > SWAPIO_ENGINE_THREADS)
		abort();
	if (swapio_config_save(path, &c) || swapio_config_load(path, &back) ||
	    memcmp(&c, &back, sizeof(c)))
		abort();
	return 0;
}
