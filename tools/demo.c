/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cmd.h"

int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "swapio: demo: not built yet\n");
	return 1;
}
