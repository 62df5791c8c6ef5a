/* SPDX-License-Identifier: MIT */
/* Subcommands of the swapio tool, one file each; they use only swapio.h. */
#ifndef SWAPIO_TOOLS_CMD_H
#define SWAPIO_TOOLS_CMD_H

#include <stdint.h>

#include "swapio.h"

/*
 * Each returns the process exit code: 0 ok, 1 runtime error, 2 usage.
 * argv[0] is the subcommand's name.
 */
int cmd_demo(int argc, char **argv);	/* tools/demo.c */
int cmd_bench(int argc, char **argv);	/* tools/bench_cmd.c */
int cmd_sweep(int argc, char **argv);	/* tools/sweep.c */
int cmd_info(int argc, char **argv);	/* tools/info.c */

/* `swapio demo adam` (tools/demo_adam.c); argv[0] is "adam". */
int adam_main(int argc, char **argv);

/* Shared helpers (tools/util.c). */
#define EXIT_USAGE	2

/*
 * "swapio: <what>: <swapio_strerror(err)>" on stderr, followed by
 * " (<swapio_error_detail()>)" when the library left one; returns 1.
 */
int tool_fail(const char *what, int err);
/* One line on stderr if opening @s in @dir dropped index records. */
void tool_store_note(swapio_store *s, const char *dir);

/*
 * "swapio <cmd>: <message>" and then @usage on stderr; returns EXIT_USAGE.
 * @fmt may be NULL for the usage alone.
 */
int tool_usage_error(const char *cmd, const char *usage, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

/*
 * A byte count: digits, then an optional K, M, G or T (x1024), at most
 * INT64_MAX (the range of a file offset). 0 or -1.
 */
int tool_parse_size(const char *s, uint64_t *out);

/* A decimal integer in [min, max]. 0 or -1. */
int tool_parse_uint(const char *s, unsigned long min, unsigned long max,
		    unsigned int *out);

/* The long name of option @val in @opts (a struct option array). */
struct option;
const char *tool_option_name(const struct option *opts, int val);

/* A comma-separated list of sizes (@sizes) or of numbers in [min, max]. */
int tool_parse_size_list(const char *s, uint64_t *out, unsigned int max_n,
			 unsigned int *n);
int tool_parse_uint_list(const char *s, unsigned long min, unsigned long max,
			 unsigned int *out, unsigned int max_n,
			 unsigned int *n);

/* 1M rather than 1048576 where the value allows it. */
void tool_format_size(char *buf, unsigned int n, uint64_t v);

/*
 * A fresh directory "@parent/@prefix.XXXXXX" of mkdtemp(3): made here,
 * never one that already existed, mode 0700. The malloc'd path, or NULL
 * with errno set.
 */
char *tool_mkdtemp(const char *parent, const char *prefix);

/*
 * Remove @dir and everything under it, each symbolic link as a link,
 * never followed. Only for a directory of the command's own, such as
 * tool_mkdtemp()'s: 0, or the first -errno.
 */
int tool_rmtree(const char *dir);

/* Monotonic seconds (and nanoseconds), and CPU seconds (user + system)
 * of the process. */
double tool_now(void);
uint64_t tool_now_ns(void);
double tool_cpu_seconds(void);

#endif
