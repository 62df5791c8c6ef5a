/* SPDX-License-Identifier: MIT */
/* swapio bench: arguments and report. The measuring is in bench.c. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cmd.h"

static const char usage[] =
"usage: swapio bench --file PATH [options]\n"
"       swapio bench --dir DIR [--dir DIR]... [options]\n"
"\n"
"Write PATH, then read it back, and report GB/s (10^9 bytes/s), CPU\n"
"seconds per GB (whole process), system calls per GB, the latency of the\n"
"library's requests (req) and of each op, submit to wait's return (op).\n"
"A file bench creates is deleted afterwards unless --keep.\n"
"\n"
"With --dir instead of --file, bench puts values into a store striped over\n"
"the directories given (one per drive, each on a handle of its own, in a\n"
"new private swapio-bench.XXXXXX under each; removed unless --keep), then\n"
"gets them back: the path a runtime with several drives takes.\n"
"\n"
"  -f, --file PATH         file to write and read\n"
"  -d, --dir DIR           a drive's directory for a striped store; give\n"
"                          it once per drive (up to 64), in the same order\n"
"                          each time\n"
"      --stripe-unit SIZE  bytes each drive takes in turn, a multiple\n"
"                          of 4K up to 1T (default 1M)\n"
"      --value-size SIZE   bytes per put and get with --dir (default 64M)\n"
"      --no-checksum       a store without checksums (SWAPIO_STORE_NO_CHECKSUM)\n"
"                          (the store is allocated before the clock starts\n"
"                          unless --no-prealloc)\n"
"      --op-size SIZE      bytes per op with --file: 4K to 1G, a multiple\n"
"                          of 4K (default 64M, or block size x threads if\n"
"                          more); the last op of a pass may be shorter\n"
"      --in-flight N       ops (--file) or puts and gets (--dir) in\n"
"                          flight, 1 to 1024; default: with --file enough\n"
"                          to fill every queue, at most 16; with --dir 4.\n"
"                          With --file, N x op size is at most 1G\n"
"      --random            ops at the op-size-aligned offsets of the file\n"
"                          in a seeded random order, the same every pass\n"
"                          (with --dir: the gets, in a random order of the\n"
"                          keys; the puts stay in order)\n"
"  -s, --size SIZE         bytes to move (K/M/G/T suffixes, x1024; times\n"
"                          --loops at most 2^63 - 1); default 1G, or the\n"
"                          file's size with --mode read\n"
"  -e, --engine NAME       auto (default), uring, aio or threads\n"
"  -b, --block-size SIZE   bytes per request (default 1M)\n"
"  -q, --queue-depth N     requests in flight per thread (default 32)\n"
"  -t, --threads N         workers one transfer is split over (default 1)\n"
"      --direct            O_DIRECT (the default)\n"
"      --no-direct         through the page cache\n"
"  -m, --mode MODE         write, read (an existing file) or both (default)\n"
"  -l, --loops N           passes over the file per phase (default 1)\n"
"      --verify            write a seeded pattern and check every byte read\n"
"      --keep              keep the file\n"
"      --no-pin            do not lock the buffers in memory\n"
"      --no-huge           do not ask for transparent huge pages\n"
"      --no-register       do not register the buffers with io_uring\n"
"      --no-spin           never spin on a lone small op (SWAPIO_CFG_NO_SPIN)\n"
"      --bounce            copy every direct request through bounce blocks\n"
"                          (SWAPIO_CFG_BOUNCE)\n"
"      --memory KIND       swapio (default: swapio_buf_alloc buffers),\n"
"                          caller (one malloc'd region, 4 KiB pages, not\n"
"                          locked: a runtime's tensors) or caller-huge\n"
"                          (that region after swapio_mem_hugepages)\n"
"      --no-prealloc       do not allocate a new file before timing it:\n"
"                          the writes grow it, as a runtime's would\n"
"      --json              print one JSON object\n"
"  -c, --config FILE       settings from a swapio config file (see sweep\n"
"                          --save); options given here override it\n"
"  -h, --help              this help\n"
"\n"
"Several processes on one node (one per GPU): SWAPIO_SHARE_NODE=1 gives\n"
"each handle queue_depth / LOCAL_WORLD_SIZE (docs/SCALING.md).\n";

#define STRIPE_UNIT_MAX	(1ull << 40)

enum {
	OPT_DIRECT = 256, OPT_NO_DIRECT, OPT_VERIFY, OPT_KEEP, OPT_JSON,
	OPT_NO_PIN, OPT_NO_HUGE, OPT_NO_PREALLOC, OPT_MEMORY, OPT_NO_REGISTER, OPT_NO_SPIN,
	OPT_BOUNCE,
	OPT_STRIPE_UNIT, OPT_VALUE_SIZE, OPT_NO_CHECKSUM, OPT_IN_FLIGHT, OPT_OP_SIZE,
	OPT_RANDOM,
};

static const struct option long_opts[] = {
	{ "file",	 required_argument, NULL, 'f' },
	{ "dir",	 required_argument, NULL, 'd' },
	{ "stripe-unit", required_argument, NULL, OPT_STRIPE_UNIT },
	{ "value-size",	 required_argument, NULL, OPT_VALUE_SIZE },
	{ "no-checksum", no_argument,	    NULL, OPT_NO_CHECKSUM },
	{ "in-flight",	 required_argument, NULL, OPT_IN_FLIGHT },
	{ "op-size",	 required_argument, NULL, OPT_OP_SIZE },
	{ "random",	 no_argument,	    NULL, OPT_RANDOM },
	{ "size",	 required_argument, NULL, 's' },
	{ "engine",	 required_argument, NULL, 'e' },
	{ "block-size",	 required_argument, NULL, 'b' },
	{ "queue-depth", required_argument, NULL, 'q' },
	{ "threads",	 required_argument, NULL, 't' },
	{ "direct",	 no_argument,	    NULL, OPT_DIRECT },
	{ "no-direct",	 no_argument,	    NULL, OPT_NO_DIRECT },
	{ "mode",	 required_argument, NULL, 'm' },
	{ "loops",	 required_argument, NULL, 'l' },
	{ "verify",	 no_argument,	    NULL, OPT_VERIFY },
	{ "keep",	 no_argument,	    NULL, OPT_KEEP },
	{ "json",	 no_argument,	    NULL, OPT_JSON },
	{ "no-pin",	 no_argument,	    NULL, OPT_NO_PIN },
	{ "no-huge",	 no_argument,	    NULL, OPT_NO_HUGE },
	{ "memory",	 required_argument, NULL, OPT_MEMORY },
	{ "no-register", no_argument,	    NULL, OPT_NO_REGISTER },
	{ "no-spin",	 no_argument,	    NULL, OPT_NO_SPIN },
	{ "bounce",	 no_argument,	    NULL, OPT_BOUNCE },
	{ "no-prealloc", no_argument,	    NULL, OPT_NO_PREALLOC },
	{ "config",	 required_argument, NULL, 'c' },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Settings given on the command line win over those of --config. */
struct bench_args {
	struct bench_opts	o;
	struct bench_store_opts	so;
	struct swapio_config	set;	/* nonzero fields were given */
	const char		*config;
	int			engine;	/* -1: not given */
	int			direct;	/* -1: not given */
	bool			json;
	bool			help;
};

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

double bench_gbps(const struct bench_phase *p)
{
	return p->ran && p->secs > 0 ? (double)p->bytes / 1e9 / p->secs : 0;
}

double bench_cpu_per_gb(const struct bench_phase *p)
{
	return p->ran && p->bytes ? p->cpu_secs / ((double)p->bytes / 1e9) : 0;
}

double bench_syscalls_per_gb(const struct bench_phase *p)
{
	return p->ran && p->bytes ?
	       (double)p->st.syscalls / ((double)p->bytes / 1e9) : 0;
}

void bench_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

static void json_phase(FILE *fp, const struct bench_phase *p)
{
	if (!p->ran) {
		fputs("null", fp);
		return;
	}
	fprintf(fp, "{\"gbps\": %.4f, \"cpu_s_per_gb\": %.5f, "
		"\"syscalls_per_gb\": %.1f, \"p50_us\": %.1f, "
		"\"p99_us\": %.1f, \"max_us\": %.1f, \"bytes\": %llu, "
		"\"seconds\": %.5f, \"cpu_s\": %.5f, \"syscalls\": %llu, "
		"\"requests\": %llu, \"retries\": %llu, "
		"\"bounced_bytes\": %llu, \"registered\": %llu, "
		"\"op_p50_us\": %.2f, \"op_p99_us\": %.2f, "
		"\"op_mean_us\": %.2f}",
		bench_gbps(p), bench_cpu_per_gb(p), bench_syscalls_per_gb(p),
		(double)p->st.lat_p50_ns / 1e3, (double)p->st.lat_p99_ns / 1e3,
		(double)p->st.lat_max_ns / 1e3, (unsigned long long)p->bytes,
		p->secs, p->cpu_secs, (unsigned long long)p->st.syscalls,
		(unsigned long long)p->st.requests,
		(unsigned long long)p->st.retries,
		(unsigned long long)p->st.bounced_bytes,
		(unsigned long long)p->st.registered, p->op_p50_us,
		p->op_p99_us, p->op_mean_us);
}

void bench_print_json(FILE *fp, const struct bench_result *r)
{
	const uint32_t fl = r->cfg.flags;

	fputs("{\"engine\": ", fp);
	bench_json_string(fp, r->engine ? r->engine : "none");
	fputs(", \"engine_note\": ", fp);
	bench_json_string(fp, r->note);
	fprintf(fp, ", \"block_size\": %llu, \"queue_depth\": %u, "
		"\"threads\": %u, \"direct\": %s, \"single_submit\": %s, "
		"\"overlap_events\": %s, \"size\": %llu, \"op_bytes\": %llu, "
		"\"ops_in_flight\": %u, \"random\": %s, \"pinned\": %s, "
		"\"huge\": %s, "
		"\"memory\": \"%s\", \"huge_bytes\": %lld",
		(unsigned long long)r->cfg.block_size, r->cfg.queue_depth,
		r->cfg.threads, r->direct ? "true" : "false",
		fl & SWAPIO_CFG_SINGLE_SUBMIT ? "true" : "false",
		fl & SWAPIO_CFG_NO_OVERLAP ? "false" : "true",
		(unsigned long long)r->size, (unsigned long long)r->chunk,
		r->window, r->random ? "true" : "false",
		r->pinned ? "true" : "false",
		r->huge ? "true" : "false", bench_memory_name[r->memory],
		(long long)r->huge_bytes);
	for (unsigned int p = 0; p < NR_PHASES; p++) {
		fprintf(fp, ", \"%s\": ", bench_phase_name[p]);
		json_phase(fp, &r->ph[p]);
	}
	fputc('}', fp);
}

static void print_text(const struct bench_opts *o,
		       const struct bench_store_opts *so,
		       const struct bench_result *r)
{
	char bs[32], size[32], chunk[32];

	tool_format_size(bs, sizeof(bs), r->cfg.block_size);
	tool_format_size(size, sizeof(size), r->size);
	tool_format_size(chunk, sizeof(chunk), r->chunk);
	if (o->path) {
		printf("swapio bench: %s, %s bytes, engine %s (%s)\n",
		       o->path, size, r->engine, r->note);
	} else {
		printf("swapio bench: a store over");
		for (unsigned int i = 0; i < so->nr_dirs; i++)
			printf("%s %s", i ? "," : "", so->dirs[i]);
		printf(" (%u drives, a handle each), %s bytes, engine %s "
		       "(%s)\n", so->nr_dirs, size, r->engine, r->note);
	}
	printf("block %s, queue depth %u, threads %u, %s, ops of %s, %u in "
	       "flight%s, %s memory, %s%s%s\n", bs, r->cfg.queue_depth,
	       r->cfg.threads, r->direct ? "O_DIRECT" : "buffered (page cache)",
	       chunk, r->window, !r->random ? "" : o->path ?
	       " in a random order" : ", gets in a random order",
	       bench_memory_name[r->memory],
	       r->pinned ? "pinned" : "not pinned", r->huge ? ", THP" : "",
	       (r->cfg.flags & SWAPIO_CFG_BOUNCE) ? ", every request bounced" :
	       "");
	printf("%-6s %8s %9s %12s %10s %10s %10s %10s\n", "", "GB/s",
	       "CPU s/GB", "syscalls/GB", "req p50 us", "req p99 us",
	       "op p50 us", "op p99 us");
	for (unsigned int p = 0; p < NR_PHASES; p++) {
		const struct bench_phase *ph = &r->ph[p];

		if (!ph->ran)
			continue;
		printf("%-6s %8.3f %9.4f %12.0f %10.1f %10.1f %10.1f %10.1f\n",
		       bench_phase_name[p], bench_gbps(ph),
		       bench_cpu_per_gb(ph), bench_syscalls_per_gb(ph),
		       (double)ph->st.lat_p50_ns / 1e3,
		       (double)ph->st.lat_p99_ns / 1e3, ph->op_p50_us,
		       ph->op_p99_us);
	}
	if (o->verify && r->ph[PH_READ].ran)
		printf("verify: every byte read matched (GB/s include the "
		       "check)\n");
	else if (o->verify)
		printf("verify: pattern written; check it with --mode read "
		       "--verify\n");
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static int parse_mode(const char *s, unsigned int *modes)
{
	if (!strcmp(s, "write"))
		*modes = BENCH_WRITE;
	else if (!strcmp(s, "read"))
		*modes = BENCH_READ;
	else if (!strcmp(s, "both"))
		*modes = BENCH_WRITE | BENCH_READ;
	else
		return -1;
	return 0;
}

/* One option; a message for the user and -1 when its value is bad. */
static int parse_opt(struct bench_args *a, int c, const char *arg)
{
	struct swapio_config *s = &a->set;
	uint64_t v;

	switch (c) {
	case 'f': a->o.path = arg; return 0;
	case 'd':
		if (a->so.nr_dirs == SWAPIO_STORE_DRIVES_MAX)
			return -1;
		a->so.dirs[a->so.nr_dirs++] = arg;
		return 0;
	case OPT_STRIPE_UNIT:
		return tool_parse_size(arg, &a->so.stripe_unit) ||
		       !a->so.stripe_unit || a->so.stripe_unit % 4096 ||
		       a->so.stripe_unit > STRIPE_UNIT_MAX ? -1 : 0;
	case OPT_NO_CHECKSUM: a->so.no_checksum = true; return 0;
	case OPT_VALUE_SIZE:
		return tool_parse_size(arg, &a->so.value_bytes) ||
		       !a->so.value_bytes || a->so.value_bytes > 1ull << 32 ?
		       -1 : 0;
	case OPT_IN_FLIGHT:
		return tool_parse_uint(arg, 1, BENCH_WINDOW_MAX,
				       &a->o.in_flight);
	case OPT_OP_SIZE:
		return tool_parse_size(arg, &a->o.op_bytes) ||
		       a->o.op_bytes < BENCH_OP_MIN ||
		       a->o.op_bytes > BENCH_OP_MAX ||
		       a->o.op_bytes % BENCH_OP_MIN ? -1 : 0;
	case OPT_RANDOM: a->o.random = true; return 0;
	case 'c': a->config = arg; return 0;
	case 'h': a->help = true; return 0;
	case OPT_DIRECT: a->direct = 1; return 0;
	case OPT_NO_DIRECT: a->direct = 0; return 0;
	case OPT_VERIFY: a->o.verify = true; return 0;
	case OPT_KEEP: a->o.keep = true; return 0;
	case OPT_JSON: a->json = true; return 0;
	case OPT_NO_PIN: a->o.no_pin = true; return 0;
	case OPT_NO_HUGE: a->o.no_huge = true; return 0;
	case OPT_NO_PREALLOC: a->o.no_prealloc = true; return 0;
	case OPT_NO_REGISTER: s->flags |= SWAPIO_CFG_NO_REGISTER; return 0;
	case OPT_NO_SPIN: s->flags |= SWAPIO_CFG_NO_SPIN; return 0;
	case OPT_BOUNCE: s->flags |= SWAPIO_CFG_BOUNCE; return 0;
	case OPT_MEMORY:
		if (!strcmp(arg, "swapio"))
			a->o.memory = BENCH_MEM_SWAPIO;
		else if (!strcmp(arg, "caller"))
			a->o.memory = BENCH_MEM_CALLER;
		else if (!strcmp(arg, "caller-huge"))
			a->o.memory = BENCH_MEM_CALLER_HUGE;
		else
			return -1;
		return 0;
	case 'm': return parse_mode(arg, &a->o.modes);
	case 'l': return tool_parse_uint(arg, 1, 1000000, &a->o.loops);
	case 'q': return tool_parse_uint(arg, 1, 4096, &s->queue_depth);
	case 't': return tool_parse_uint(arg, 1, 64, &s->threads);
	case 'e':
		a->engine = swapio_engine_parse(arg);
		return a->engine < 0 ? -1 : 0;
	case 's':
		if (tool_parse_size(arg, &v) || !v)
			return -1;
		a->o.size = v;
		return 0;
	case 'b':
		if (tool_parse_size(arg, &v) || !v || v % 4096 || v > 1u << 30)
			return -1;
		s->block_size = v;
		return 0;
	}
	return -1;
}

/* --config first, then what the command line set on top of it. */
static int settle_config(struct bench_args *a)
{
	struct swapio_config *c = &a->o.cfg;
	int ret;

	if (a->config) {
		ret = swapio_config_load(a->config, c);
		if (ret)
			return tool_fail(a->config, ret);
	}
	if (a->set.block_size)
		c->block_size = a->set.block_size;
	if (a->set.queue_depth)
		c->queue_depth = a->set.queue_depth;
	if (a->set.threads)
		c->threads = a->set.threads;
	if (a->engine >= 0)
		c->engine = (uint32_t)a->engine;
	if (a->direct == 1)
		c->flags &= ~SWAPIO_CFG_BUFFERED;
	else if (a->direct == 0)
		c->flags |= SWAPIO_CFG_BUFFERED;
	c->flags |= a->set.flags & (SWAPIO_CFG_NO_REGISTER | SWAPIO_CFG_NO_SPIN |
				    SWAPIO_CFG_BOUNCE);
	return 0;
}

/* What only the options together can break. */
static int check_window(const struct bench_args *a)
{
	const uint64_t op = a->o.op_bytes ? a->o.op_bytes : BENCH_OP_BYTES;
	char ops[32], want[32], cap[32];

	if (a->so.nr_dirs && a->o.op_bytes)
		return tool_usage_error("bench", usage, "--op-size goes with "
					"--file; a store's ops are "
					"--value-size");
	if (!a->o.path || (uint64_t)a->o.in_flight * op <=
			  BENCH_WINDOW_MAX_BYTES)
		return 0;
	tool_format_size(ops, sizeof(ops), op);
	tool_format_size(want, sizeof(want), a->o.in_flight * op);
	tool_format_size(cap, sizeof(cap), BENCH_WINDOW_MAX_BYTES);
	return tool_usage_error("bench", usage, "--in-flight %u ops of %s "
				"need %s of buffers; bench allows %s in all",
				a->o.in_flight, ops, want, cap);
}

static int parse_args(struct bench_args *a, int argc, char **argv)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->engine = a->direct = -1;
	a->o.modes = BENCH_WRITE | BENCH_READ;
	opterr = 0;	/* our own messages, not getopt's */
	optind = 0;	/* glibc: restart the scan */
	while ((c = getopt_long(argc, argv, "f:d:s:e:b:q:t:m:l:c:h", long_opts,
				NULL)) != -1) {
		if (c == '?' || c == ':')
			return tool_usage_error("bench", usage,
				"bad option or missing value: %s",
				argv[optind - 1]);
		if (parse_opt(a, c, optarg))
			return tool_usage_error("bench", usage,
				"bad value for --%s: '%s'",
				tool_option_name(long_opts, c), optarg);
	}
	if (a->help)
		return 0;
	if (optind < argc)
		return tool_usage_error("bench", usage,
					"unexpected argument: %s",
					argv[optind]);
	if (!a->o.path && !a->so.nr_dirs)
		return tool_usage_error("bench", usage,
					"--file or --dir is required");
	if (a->o.path && a->so.nr_dirs)
		return tool_usage_error("bench", usage,
					"--file and --dir do not go together");
	/* A phase's byte count must stay within a file offset's range. */
	if (a->o.loops && a->o.size > INT64_MAX / a->o.loops)
		return tool_usage_error("bench", usage, "--size x --loops "
					"is past 2^63 - 1 bytes");
	if (!a->so.value_bytes)
		a->so.value_bytes = 64ull << 20;
	a->so.in_flight = a->o.in_flight;
	return check_window(a);
}

int cmd_bench(int argc, char **argv)
{
	struct bench_result r;
	struct bench_args a;
	int rc;

	rc = parse_args(&a, argc, argv);
	if (rc)
		return rc;
	if (a.help) {
		fputs(usage, stdout);
		return 0;
	}
	rc = settle_config(&a);
	if (rc)
		return rc;
	rc = a.so.nr_dirs ? bench_store_run(&a.o, &a.so, &r) :
			    bench_run(&a.o, &r);
	if (rc)
		return rc;
	if (a.json) {
		bench_print_json(stdout, &r);
		putchar('\n');
	} else {
		print_text(&a.o, &a.so, &r);
	}
	return fflush(stdout) ? tool_fail("stdout", -errno) : 0;
}
