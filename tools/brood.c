/* SPDX-License-Identifier: MIT */
/* brood: the command.  demo, bench, ls, reap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brood/brood.h>
#include "brood.h"

void tool_err(const char *cmd, const char *what, int err)
{
        fprintf(stderr, "brood: %s: %s: %s\n", cmd, what, strerror(err));
}

void json_str(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} cmds[] = {
        { "demo",  cmd_demo,  "actors forked by the forkserver stream data through rings and share an array" },
        { "bench", cmd_bench, "benchmarks: brood beside its peers (pipe, socketpair, memcpy, fork...)" },
        { "ls",    cmd_ls,    "list brood's shared-memory segments and who holds them" },
        { "reap",  cmd_reap,  "unlink named segments whose creator is dead and nobody holds" },
};

static int usage(FILE *f)
{
        size_t i;

        fprintf(f, "usage: brood COMMAND [ARGS]   (brood COMMAND --help for its options)\n\n");
        for (i = 0; i < BRD_ARRAY_LEN(cmds); i++)
                fprintf(f, "  %-6s %s\n", cmds[i].name, cmds[i].help);
        fprintf(f, "\n  version  print the library version\n\n"
                   "exit codes: 0 success, 1 the job failed (a checksum mismatch, a segment\n"
                   "that could not be removed, a dead actor), 2 bad usage, 130 interrupted\n");
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

int main(int argc, char **argv)
{
        size_t i;

        if (argc < 2)
                return usage(stderr);
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
                return usage(stdout);
        if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
                printf("brood %s\n", brd_version());
                return BRD_EXIT_OK;
        }
        for (i = 0; i < BRD_ARRAY_LEN(cmds); i++)
                if (!strcmp(argv[1], cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "brood: unknown command '%s'\n", argv[1]);
        return usage(stderr);
}
