/* SPDX-License-Identifier: MIT */
/* One benchmark run, shared by `swapio bench` and `swapio sweep`. */
#ifndef SWAPIO_TOOLS_BENCH_H
#define SWAPIO_TOOLS_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "swapio.h"

enum { PH_WRITE, PH_READ, NR_PHASES };

#define BENCH_WRITE	(1u << PH_WRITE)
#define BENCH_READ	(1u << PH_READ)

#define BENCH_OP_BYTES		(64ull << 20)	/* --file's default op */
#define BENCH_OP_MIN		4096ull
#define BENCH_OP_MAX		(1ull << 30)
#define BENCH_WINDOW_MAX	1024		/* --in-flight's limit */
#define BENCH_WINDOW_MAX_BYTES	(1ull << 30)	/* every buffer, together */

/* Where the buffers come from. */
enum {
	BENCH_MEM_SWAPIO,	/* swapio_buf_alloc, one per op */
	BENCH_MEM_CALLER,	/* one malloc'd region, as a runtime's */
	BENCH_MEM_CALLER_HUGE,	/* that region after swapio_mem_hugepages */
};

struct bench_opts {
	const char *path;
	uint64_t size;			/* 0: file size (read) or 1 GiB */
	struct swapio_config cfg;
	unsigned int modes;		/* BENCH_WRITE | BENCH_READ */
	unsigned int loops;		/* passes per phase; 0: 1 */
	bool verify;			/* seeded pattern, read checked */
	bool keep;			/* keep a file this run created */
	bool quiet;			/* no progress line */
	bool no_pin;			/* do not mlock the buffers */
	bool no_huge;			/* do not ask for THP */
	unsigned int memory;		/* BENCH_MEM_* */
	bool no_prealloc;		/* let the writes grow the file */
	uint64_t op_bytes;		/* bytes per op; 0: BENCH_OP_BYTES */
	unsigned int in_flight;		/* ops in flight; 0: enough */
	bool random;			/* ops in a seeded random order */
};

struct bench_phase {
	bool ran;
	uint64_t bytes;
	double secs;
	double cpu_secs;		/* whole process */
	struct swapio_stats st;
	/* Each op from its submit to its wait's return, as bench sees it. */
	double op_p50_us, op_p99_us, op_mean_us;
};

struct bench_result {
	const char *engine;		/* static: "uring", ... */
	char note[256];			/* why that engine */
	struct swapio_config cfg;	/* in force, defaults filled */
	bool direct;			/* the file really is O_DIRECT */
	bool pinned;			/* buffers locked in memory */
	bool huge;			/* buffers advised MADV_HUGEPAGE */
	unsigned int memory;		/* BENCH_MEM_* */
	int64_t huge_bytes;		/* caller-huge: bytes collapsed */
	uint64_t size;
	uint64_t chunk;			/* bytes per op */
	unsigned int window;		/* ops in flight */
	bool random;			/* ops in a random order */
	bool created;			/* made the file, and kept it */
	struct bench_phase ph[NR_PHASES];
};

/* swapio bench --dir ...: a store striped over one directory per drive. */
struct bench_store_opts {
	const char *dirs[SWAPIO_STORE_DRIVES_MAX];
	unsigned int nr_dirs;		/* 0: bench a file, not a store */
	uint64_t stripe_unit;		/* 0: the store's default */
	uint64_t value_bytes;		/* bytes per put and get */
	unsigned int in_flight;		/* puts or gets in flight; 0: 4 */
	bool no_checksum;		/* SWAPIO_STORE_NO_CHECKSUM */
};

/* The phases of @o through a store over @so's directories (bench_store.c);
 * o->path is not used. Returns the exit code, as bench_run(). */
int bench_store_run(const struct bench_opts *o,
		    const struct bench_store_opts *so,
		    struct bench_result *r);

/*
 * Run the phases @o asks for, writes first. Prints "swapio: ..." on a
 * runtime error and returns the exit code: 0, or 1.
 */
int bench_run(const struct bench_opts *o, struct bench_result *r);

/*
 * @v[0..n) as 0..n-1 in a random order drawn from @seed (Fisher-Yates on
 * splitmix64): the same @seed gives the same order on every machine.
 */
void bench_shuffle(uint64_t *v, uint64_t n, uint64_t seed);

/* The op latencies of @ns[0..n) (sorted in place) into @ph; 0 if n is 0. */
void bench_op_latency(uint64_t *ns, uint64_t n, struct bench_phase *ph);

/*
 * SIGINT and SIGTERM set a flag instead of ending the process (@on), or
 * get their old handlers back: a run stops, and removes what it made.
 * bench_interrupted() says whether one came.
 */
void bench_catch_signals(bool on);
bool bench_interrupted(void);

/* Derived figures of a phase; 0 when it did not run. */
double bench_gbps(const struct bench_phase *p);
double bench_cpu_per_gb(const struct bench_phase *p);
double bench_syscalls_per_gb(const struct bench_phase *p);

/* @s as a JSON string, quotes included. */
void bench_json_string(FILE *fp, const char *s);

/* The result as one JSON object (no newline). */
void bench_print_json(FILE *fp, const struct bench_result *r);

extern const char *const bench_phase_name[NR_PHASES];
extern const char *const bench_memory_name[3];

#endif
