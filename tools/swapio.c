/* SPDX-License-Identifier: MIT */
/* swapio: the command. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "swapio.h"
#include "cmd.h"

static const struct {
	const char	*name;
	int		(*run)(int argc, char **argv);
	const char	*what;
} cmds[] = {
	{ "bench", cmd_bench, "write a file, read it back: GB/s, CPU s/GB, "
			      "latency" },
	{ "sweep", cmd_sweep, "bench over a grid of settings; save the best "
			      "as a config" },
	{ "info",  cmd_info,  "engines, filesystem, O_DIRECT alignment, "
			      "memory limits" },
	{ "demo",  cmd_demo,  "a worked example of the library" },
};

#define NR_CMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *fp)
{
	fputs("usage: swapio COMMAND [OPTIONS]\n"
	      "       swapio COMMAND --help\n"
	      "       swapio --version\n\n"
	      "Move large buffers between memory and files at device "
	      "speed.\n\ncommands:\n", fp);
	for (size_t i = 0; i < NR_CMDS; i++)
		fprintf(fp, "  %-7s %s\n", cmds[i].name, cmds[i].what);
	fputs("\nSizes take K, M, G or T suffixes (powers of 1024). Exit "
	      "status: 0 ok,\n1 runtime error, 2 bad arguments.\n", fp);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	unsigned int v = swapio_version();
	char *help[] = { argv[0], NULL, "--help", NULL };

	if (name && (!strcmp(name, "--help") || !strcmp(name, "-h") ||
		     (!strcmp(name, "help") && argc == 2))) {
		usage(stdout);
		return 0;
	}
	if (name && (!strcmp(name, "--version") || !strcmp(name, "-V"))) {
		printf("swapio %u.%u.%u\n", v / 10000, v / 100 % 100, v % 100);
		return 0;
	}
	/* "swapio help bench" is "swapio bench --help". */
	if (name && !strcmp(name, "help") && argc == 3) {
		help[1] = argv[2];
		argc = 3;
		argv = help;
		name = argv[1];
	}
	for (size_t i = 0; name && i < NR_CMDS; i++)
		if (!strcmp(name, cmds[i].name))
			return cmds[i].run(argc - 1, argv + 1);
	if (name)
		fprintf(stderr, "swapio: unknown command '%s'\n", name);
	usage(stderr);
	return EXIT_USAGE;
}
