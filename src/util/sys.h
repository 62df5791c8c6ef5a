/* SPDX-License-Identifier: MIT */
/*
 * The store's system calls on its own files (index writes, fdatasync,
 * ftruncate, fallocate; and, through swapio__sys_pick(), the data file's
 * sync and allocation through the public API) go through these wrappers,
 * so that a test can make any one of them fail or stall: sqlite's
 * aSyscall[] table in miniature. The switch is the environment variable
 * SWAPIO_FAULT_FD, read when a store opens (docs/RELIABILITY.md has the
 * grammar). Off, each wrapper is one branch in front of the real call.
 * It calls nothing of swapio's, so it sits in util/, where the
 * environment table (core/env.c) can check a value with its parser.
 */
#ifndef SWAPIO_STORE_SYS_H
#define SWAPIO_STORE_SYS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "swapio.h"

enum sys_call { SYS_PWRITE, SYS_FDATASYNC, SYS_FTRUNCATE, SYS_FALLOCATE,
		SYS_NR_CALLS };
enum sys_file { SYS_ANY, SYS_INDEX, SYS_TMP, SYS_DATA, SYS_NR_FILES };

struct store_sys {
	bool		on;
	int		call;		/* enum sys_call */
	int		file;		/* enum sys_file; SYS_ANY: all */
	int		err;		/* errno to return (> 0); 0: none */
	unsigned int	delay_ms;	/* sleep before a picked call */
	uint64_t	nth;		/* first picked call, from 1; 0: all */
	uint64_t	count;		/* calls picked from nth on; 0: all */
	atomic_uint_least64_t seen;	/* matching calls so far */
};

/* Parse @spec (NULL or "": off). 0, or -EINVAL for a spec that does not
 * parse, so that a typo never turns injection silently off. */
int swapio__sys_init(struct store_sys *sys, const char *spec);

/* The whole buffer or -errno (a short write is retried, EINTR too). */
int swapio__sys_pwrite(struct store_sys *sys, int file, int fd,
		       const void *buf, size_t n, uint64_t off);
/* The same, and *@wrote: the bytes that reached the file, also on error. */
int swapio__sys_pwrite_part(struct store_sys *sys, int file, int fd,
			    const void *buf, size_t n, uint64_t off,
			    size_t *wrote);
int swapio__sys_fdatasync(struct store_sys *sys, int file, int fd);
int swapio__sys_ftruncate(struct store_sys *sys, int file, int fd,
			  uint64_t size);
int swapio__sys_fallocate(struct store_sys *sys, int file, int fd, int mode,
			  uint64_t off, uint64_t len);
/* Is this call (enum sys_call) on this file (enum sys_file) picked? Then
 * sleep as told and return the errno to fail it with, or 0. For calls made
 * elsewhere (the store's data file, through the public API). */
int swapio__sys_pick(struct store_sys *sys, int call, int file);

#endif /* SWAPIO_STORE_SYS_H */
