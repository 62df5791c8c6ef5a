/* SPDX-License-Identifier: MIT */
/*
 * swapio demo: worked examples as subcommands. `swapio demo adam` is
 * tools/demo_adam.c (examples/adam.c is the same pattern, short).
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char usage[] =
"usage: swapio demo adam [options]\n"
"\n"
"Demos (see swapio demo adam --help):\n"
"  adam   Adam optimizer steps whose states live on disk in a swapio store\n"
"         (the benchmark of examples/adam.c)\n";

int cmd_demo(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "adam"))
		return adam_main(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	return tool_usage_error("demo", usage, "which demo? (adam)");
}
