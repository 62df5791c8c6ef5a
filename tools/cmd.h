/* SPDX-License-Identifier: MIT */
/* Subcommands of the swapio tool, one file each; they use only swapio.h. */
#ifndef SWAPIO_TOOLS_CMD_H
#define SWAPIO_TOOLS_CMD_H

/* Each returns the process exit code: 0 ok, 1 runtime error, 2 usage. */
int cmd_demo(int argc, char **argv);	/* tools/demo.c */

#endif
