/* SPDX-License-Identifier: MIT */
/*
 * swapio sweep: bench over a grid of settings on one file, then name the
 * best for writes, for reads and for both (the highest sum of the two, as
 * DeepSpeed's ds_nvme_tune picks its "aio" section), and save that one as
 * a config file the library loads.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

#define MAX_AXIS	16

static const char usage[] =
"usage: swapio sweep --file PATH [options]\n"
"\n"
"Run bench (write, then read) for every combination of the lists below,\n"
"print a table and name the best setting for writes, for reads and for\n"
"both (highest write + read GB/s). The file is written once before the\n"
"grid, so every point overwrites it alike, and deleted at the end if\n"
"sweep created it.\n"
"\n"
"  -f, --file PATH            file to write and read (required)\n"
"  -s, --size SIZE            bytes per point (K/M/G suffixes; default 1G)\n"
"  -b, --block-sizes LIST     default 128K,1M,8M\n"
"  -q, --queue-depths LIST    default 1,8,32,128\n"
"  -t, --threads LIST         default 1,2\n"
"  -e, --engines LIST         auto, uring, aio, threads (default auto);\n"
"                             engines that cannot run here are skipped\n"
"      --no-direct            through the page cache\n"
"      --json                 print one JSON object\n"
"      --save FILE            write the best setting as a config file\n"
"                             (swapio_config_load, swapio bench --config)\n"
"      --png FILE             draw GB/s over block size x queue depth,\n"
"                             write and read side by side, as a PNG\n"
"                             heatmap (the best over threads and engines\n"
"                             per cell; needs gnuplot)\n"
"  -h, --help                 this help\n";

enum { OPT_NO_DIRECT = 256, OPT_JSON, OPT_SAVE, OPT_PNG };

static const struct option long_opts[] = {
	{ "file",	  required_argument, NULL, 'f' },
	{ "size",	  required_argument, NULL, 's' },
	{ "block-sizes",  required_argument, NULL, 'b' },
	{ "queue-depths", required_argument, NULL, 'q' },
	{ "threads",	  required_argument, NULL, 't' },
	{ "engines",	  required_argument, NULL, 'e' },
	{ "no-direct",	  no_argument,	     NULL, OPT_NO_DIRECT },
	{ "json",	  no_argument,	     NULL, OPT_JSON },
	{ "save",	  required_argument, NULL, OPT_SAVE },
	{ "png",	  required_argument, NULL, OPT_PNG },
	{ "help",	  no_argument,	     NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct sweep {
	const char		*path;
	const char		*save;
	const char		*png;
	uint64_t		size;
	uint64_t		bs[MAX_AXIS];
	unsigned int		qd[MAX_AXIS], thr[MAX_AXIS], eng[MAX_AXIS];
	unsigned int		nbs, nqd, nthr, neng;
	bool			buffered, json, help;
	struct bench_result	*res;	/* one per point, grid order */
	unsigned int		npoints;
};

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static int parse_engines(struct sweep *s, const char *arg)
{
	char *copy = strdup(arg), *item, *save = NULL;
	int e, ret = 0;

	if (!copy)
		return -1;
	s->neng = 0;
	for (item = strtok_r(copy, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		e = swapio_engine_parse(item);
		if (e < 0 || s->neng == MAX_AXIS)
			ret = -1;
		else
			s->eng[s->neng++] = (unsigned int)e;
	}
	free(copy);
	return s->neng ? ret : -1;
}

static bool block_sizes_ok(const struct sweep *s)
{
	for (unsigned int i = 0; i < s->nbs; i++)
		if (!s->bs[i] || s->bs[i] % 4096 || s->bs[i] > 1u << 30)
			return false;
	return true;
}

static int parse_opt(struct sweep *s, int c, const char *arg)
{
	switch (c) {
	case 'f': s->path = arg; return 0;
	case 'h': s->help = true; return 0;
	case OPT_NO_DIRECT: s->buffered = true; return 0;
	case OPT_JSON: s->json = true; return 0;
	case OPT_SAVE: s->save = arg; return 0;
	case OPT_PNG: s->png = arg; return 0;
	case 's': return tool_parse_size(arg, &s->size) || !s->size ? -1 : 0;
	case 'e': return parse_engines(s, arg);
	case 'b':
		if (tool_parse_size_list(arg, s->bs, MAX_AXIS, &s->nbs))
			return -1;
		return block_sizes_ok(s) ? 0 : -1;
	case 'q':
		return tool_parse_uint_list(arg, 1, 4096, s->qd, MAX_AXIS,
					    &s->nqd);
	case 't':
		return tool_parse_uint_list(arg, 1, 64, s->thr, MAX_AXIS,
					    &s->nthr);
	}
	return -1;
}

static void set_defaults(struct sweep *s)
{
	static const uint64_t bs[] = { 128 << 10, 1 << 20, 8 << 20 };
	static const unsigned int qd[] = { 1, 8, 32, 128 };
	static const unsigned int thr[] = { 1, 2 };

	memset(s, 0, sizeof(*s));
	s->size = 1ull << 30;
	memcpy(s->bs, bs, sizeof(bs));
	s->nbs = 3;
	memcpy(s->qd, qd, sizeof(qd));
	s->nqd = 4;
	memcpy(s->thr, thr, sizeof(thr));
	s->nthr = 2;
	s->eng[0] = SWAPIO_ENGINE_AUTO;
	s->neng = 1;
}

static int parse_args(struct sweep *s, int argc, char **argv)
{
	int c;

	set_defaults(s);
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "f:s:b:q:t:e:h", long_opts,
				NULL)) != -1) {
		if (c == '?' || c == ':')
			return tool_usage_error("sweep", usage,
				"bad option or missing value: %s",
				argv[optind - 1]);
		if (parse_opt(s, c, optarg))
			return tool_usage_error("sweep", usage,
				"bad value for --%s: '%s'",
				tool_option_name(long_opts, c), optarg);
	}
	if (s->help)
		return 0;
	if (optind < argc)
		return tool_usage_error("sweep", usage,
					"unexpected argument: %s",
					argv[optind]);
	if (!s->path)
		return tool_usage_error("sweep", usage, "--file is required");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Running the grid                                                    */
/* ------------------------------------------------------------------ */

/* Drop engines that cannot run here, saying why. 0, or 1 if none left. */
static int filter_engines(struct sweep *s)
{
	unsigned int kept = 0;
	char what[64];
	int ret;

	for (unsigned int i = 0; i < s->neng; i++) {
		ret = swapio_engine_probe(s->eng[i]);
		if (!ret) {
			s->eng[kept++] = s->eng[i];
			continue;
		}
		snprintf(what, sizeof(what), "sweep: engine %s (skipped)",
			 swapio_engine_name(s->eng[i]));
		tool_fail(what, ret);
	}
	s->neng = kept;
	if (!kept)
		fprintf(stderr, "swapio: sweep: no engine can run here\n");
	return kept ? 0 : 1;
}

static void point_opts(const struct sweep *s, unsigned int i,
		       struct bench_opts *o)
{
	unsigned int t = i % s->nthr, q = i / s->nthr % s->nqd;
	unsigned int b = i / s->nthr / s->nqd % s->nbs;
	unsigned int e = i / s->nthr / s->nqd / s->nbs;

	memset(o, 0, sizeof(*o));
	o->path = s->path;
	o->size = s->size;
	o->modes = BENCH_WRITE | BENCH_READ;
	o->keep = true;
	o->quiet = true;
	o->cfg.engine = s->eng[e];
	o->cfg.block_size = s->bs[b];
	o->cfg.queue_depth = s->qd[q];
	o->cfg.threads = s->thr[t];
	if (s->buffered)
		o->cfg.flags |= SWAPIO_CFG_BUFFERED;
}

static void print_header(void)
{
	printf("%-8s %6s %5s %4s | %10s %9s %8s | %10s %9s %8s\n", "engine",
	       "block", "qd", "thr", "write GB/s", "CPU s/GB", "p99 us",
	       "read GB/s", "CPU s/GB", "p99 us");
}

static void print_row(const struct bench_result *r)
{
	const struct bench_phase *w = &r->ph[PH_WRITE], *rd = &r->ph[PH_READ];
	char bs[32];

	tool_format_size(bs, sizeof(bs), r->cfg.block_size);
	printf("%-8s %6s %5u %4u | %10.3f %9.4f %8.0f | %10.3f %9.4f %8.0f\n",
	       r->engine, bs, r->cfg.queue_depth, r->cfg.threads,
	       bench_gbps(w), bench_cpu_per_gb(w),
	       (double)w->st.lat_p99_ns / 1e3, bench_gbps(rd),
	       bench_cpu_per_gb(rd), (double)rd->st.lat_p99_ns / 1e3);
	fflush(stdout);
}

static int run_grid(struct sweep *s)
{
	struct bench_opts o;
	int rc;

	s->npoints = s->neng * s->nbs * s->nqd * s->nthr;
	s->res = calloc(s->npoints, sizeof(*s->res));
	if (!s->res)
		return tool_fail("sweep", -ENOMEM);
	if (!s->json)
		print_header();
	for (unsigned int i = 0; i < s->npoints; i++) {
		if (s->json && isatty(STDERR_FILENO))
			fprintf(stderr, "\rsweep: point %u of %u ", i + 1,
				s->npoints);
		point_opts(s, i, &o);
		rc = bench_run(&o, &s->res[i]);
		if (rc)
			return rc;
		if (!s->json)
			print_row(&s->res[i]);
	}
	if (s->json && isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The best                                                            */
/* ------------------------------------------------------------------ */

enum { BEST_WRITE, BEST_READ, BEST_BOTH, NR_BEST };

static const char *const best_name[NR_BEST] = {
	"best_write", "best_read", "best",
};

static double score(const struct bench_result *r, unsigned int which)
{
	double w = bench_gbps(&r->ph[PH_WRITE]);
	double rd = bench_gbps(&r->ph[PH_READ]);

	return which == BEST_WRITE ? w : which == BEST_READ ? rd : w + rd;
}

static unsigned int find_best(const struct sweep *s, unsigned int which)
{
	unsigned int best = 0;

	for (unsigned int i = 1; i < s->npoints; i++)
		if (score(&s->res[i], which) > score(&s->res[best], which))
			best = i;
	return best;
}

static void print_best_text(const struct sweep *s, const unsigned int *best)
{
	static const char *const label[NR_BEST] = {
		"best write:", "best read: ", "best both: ",
	};
	const struct bench_result *r;
	char bs[32];

	putchar('\n');
	for (unsigned int k = 0; k < NR_BEST; k++) {
		r = &s->res[best[k]];
		tool_format_size(bs, sizeof(bs), r->cfg.block_size);
		printf("%s engine %s, block %s, queue depth %u, threads %u: "
		       "%.3f GB/s%s\n", label[k], r->engine, bs,
		       r->cfg.queue_depth, r->cfg.threads, score(r, k),
		       k == BEST_BOTH ? " (write + read)" : "");
	}
	if (s->save)
		printf("saved the best for both to %s (swapio bench --config "
		       "%s)\n", s->save, s->save);
}

static void print_json(const struct sweep *s, const unsigned int *best)
{
	printf("{\"size\": %llu, \"points\": [", (unsigned long long)s->size);
	for (unsigned int i = 0; i < s->npoints; i++) {
		fputs(i ? ", " : "", stdout);
		bench_print_json(stdout, &s->res[i]);
	}
	fputs("]", stdout);
	for (unsigned int k = 0; k < NR_BEST; k++)
		printf(", \"%s\": {\"index\": %u, \"gbps\": %.4f}",
		       best_name[k], best[k], score(&s->res[best[k]], k));
	fputs(", \"saved\": ", stdout);
	if (s->save)
		bench_json_string(stdout, s->save);
	else
		fputs("null", stdout);
	fputs("}\n", stdout);
}

static int save_best(const struct sweep *s, const struct bench_result *r)
{
	struct swapio_config c = r->cfg;
	int ret;

	/* Pin what was measured: the engine auto chose, not "auto". */
	c.engine = (uint32_t)swapio_engine_parse(r->engine);
	ret = swapio_config_save(s->save, &c);
	return ret ? tool_fail(s->save, ret) : 0;
}

/* ------------------------------------------------------------------ */
/* Heatmap                                                             */
/* ------------------------------------------------------------------ */

/* The best GB/s of phase @ph at block size @b, queue depth @q. */
static double cell_gbps(const struct sweep *s, unsigned int ph,
			unsigned int b, unsigned int q)
{
	double best = 0, g;

	for (unsigned int i = 0; i < s->npoints; i++) {
		const struct bench_result *r = &s->res[i];

		if (r->cfg.block_size != s->bs[b] ||
		    r->cfg.queue_depth != s->qd[q])
			continue;
		g = bench_gbps(&r->ph[ph]);
		best = g > best ? g : best;
	}
	return best;
}

/* One inline data block per phase: "x y gbps" for "with image". */
static void plot_data(FILE *fp, const struct sweep *s, unsigned int ph)
{
	fprintf(fp, "$%s << EOD\n", bench_phase_name[ph]);
	for (unsigned int b = 0; b < s->nbs; b++)
		for (unsigned int q = 0; q < s->nqd; q++)
			fprintf(fp, "%u %u %.4f\n", b, q,
				cell_gbps(s, ph, b, q));
	fputs("EOD\n", fp);
}

static void plot_axes(FILE *fp, const struct sweep *s)
{
	char bs[32];

	fputs("set xtics (", fp);
	for (unsigned int b = 0; b < s->nbs; b++) {
		tool_format_size(bs, sizeof(bs), s->bs[b]);
		fprintf(fp, "%s\"%s\" %u", b ? ", " : "", bs, b);
	}
	fputs(")\nset ytics (", fp);
	for (unsigned int q = 0; q < s->nqd; q++)
		fprintf(fp, "%s\"%u\" %u", q ? ", " : "", s->qd[q], q);
	fprintf(fp, ")\nset xrange [-0.5:%u.5]\nset yrange [-0.5:%u.5]\n",
		s->nbs - 1, s->nqd - 1);
}

/*
 * Draw the grid with gnuplot, fed a script on its standard input: the
 * command stays free of any plotting library. 0, or 1 after a message.
 */
static int write_png(const struct sweep *s)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct stat sb;
	FILE *fp;
	int st;

	/* A missing gnuplot must be an error message, not a SIGPIPE. */
	/* So that a file gnuplot could not open shows, whatever it says. */
	if (unlink(s->png) && errno != ENOENT)
		return tool_fail(s->png, -errno);
	sigaction(SIGPIPE, &ign, &old);
	fp = popen("gnuplot >/dev/null", "w");
	if (!fp) {
		sigaction(SIGPIPE, &old, NULL);
		return tool_fail("sweep: gnuplot", -errno);
	}
	fputs("set terminal pngcairo size 1200,520 font \"sans,10\"\n", fp);
	fputs("set output ", fp);
	bench_json_string(fp, s->png);	/* a gnuplot string as well */
	fputs("\nset multiplot layout 1,2 title \"swapio sweep: GB/s, best "
	      "over threads and engines\"\n"
	      "set xlabel \"block size\"\nset ylabel \"queue depth\"\n"
	      "set cblabel \"GB/s\"\nset palette rgbformulae 33,13,10\n"
	      "set cbrange [0:*]\n", fp);
	plot_axes(fp, s);
	for (unsigned int ph = PH_WRITE; ph <= PH_READ; ph++) {
		plot_data(fp, s, ph);
		fprintf(fp, "set title \"%s\"\nplot $%s using 1:2:3 with "
			"image notitle, $%s using 1:2:(sprintf(\"%%.2f\",$3)) "
			"with labels notitle\n", bench_phase_name[ph],
			bench_phase_name[ph], bench_phase_name[ph]);
	}
	fputs("unset multiplot\nset output\n", fp);
	st = pclose(fp);
	sigaction(SIGPIPE, &old, NULL);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) ||
	    stat(s->png, &sb) || !sb.st_size) {
		fprintf(stderr, "swapio: sweep: gnuplot failed to write %s%s\n",
			s->png, WIFEXITED(st) && WEXITSTATUS(st) == 127 ?
			" (not installed? Debian: gnuplot-nox)" : "");
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

/* Lay the file out once, so that the first point overwrites as all do. */
static int lay_out(const struct sweep *s, struct stat *made, bool *created)
{
	struct bench_opts o = {
		.path = s->path, .size = s->size, .modes = BENCH_WRITE,
		.keep = true, .quiet = true,
	};
	struct bench_result r;
	struct stat st;
	int rc;

	*created = false;
	if (!stat(s->path, &st) && (uint64_t)st.st_size >= s->size)
		return 0;
	rc = bench_run(&o, &r);
	/* Only a file bench made here, never one that turned up meanwhile. */
	*created = !rc && r.created;
	if (*created && lstat(s->path, made))
		*created = false;
	return rc;
}

int cmd_sweep(int argc, char **argv)
{
	unsigned int best[NR_BEST];
	bool created = false;
	struct stat made, now;
	struct sweep s;
	int rc;

	rc = parse_args(&s, argc, argv);
	if (rc || s.help) {
		if (s.help)
			fputs(usage, stdout);
		return rc;
	}
	rc = filter_engines(&s);
	if (!rc)
		rc = lay_out(&s, &made, &created);
	if (!rc)
		rc = run_grid(&s);
	if (!rc) {
		for (unsigned int k = 0; k < NR_BEST; k++)
			best[k] = find_best(&s, k);
		if (s.save)
			rc = save_best(&s, &s.res[best[BEST_BOTH]]);
	}
	if (!rc && s.png)
		rc = write_png(&s);
	if (!rc && s.json)
		print_json(&s, best);
	else if (!rc)
		print_best_text(&s, best);
	/* Only while the name still names the file sweep made. */
	if (created && (lstat(s.path, &now) || now.st_dev != made.st_dev ||
			now.st_ino != made.st_ino))
		created = false;
	if (created && unlink(s.path) && errno != ENOENT && !rc)
		rc = tool_fail(s.path, -errno);
	free(s.res);
	return rc;
}
