/* SPDX-License-Identifier: MIT */
/* brood: the command.  demo, bench, ls, reap. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
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
        fprintf(f, "\n  version         print the library version\n"
                   "  help [COMMAND]  this text, or COMMAND's options (brood COMMAND --help)\n\n"
                   "exit codes: 0 success, 1 the job failed (a checksum mismatch, a segment\n"
                   "that could not be removed, a dead actor, output that could not be\n"
                   "written), 2 bad usage, 130 interrupted (bench: 128 + the signal that\n"
                   "stopped it, 141 for a closed stdout)\n");
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

/* Runs command @i with argv[0] "brood NAME": getopt names the program so in
 * its messages ("brood ls: unrecognized option '--x'"). */
static int run(size_t i, int argc, char **argv)
{
        char prog[32];

        snprintf(prog, sizeof(prog), "brood %s", cmds[i].name);
        argv[0] = prog;
        return cmds[i].fn(argc, argv);
}

static int find_cmd(const char *name)
{
        size_t i;

        for (i = 0; i < BRD_ARRAY_LEN(cmds); i++)
                if (!strcmp(name, cmds[i].name))
                        return (int)i;
        return -1;
}

static bool is_help(const char *s)
{
        return !strcmp(s, "--help") || !strcmp(s, "-h") || !strcmp(s, "help");
}

static int version_usage(void)
{
        printf("usage: brood version\n  print the library version\n");
        return BRD_EXIT_OK;
}

static bool is_version(const char *s)
{
        return !strcmp(s, "version") || !strcmp(s, "--version");
}

/* brood help [CMD]: CMD's help, as brood CMD --help prints it. */
static int help(int argc, char **argv)
{
        static char opt_help[] = "--help";
        char *av[3];
        int i;

        if (argc == 2)
                return usage(stdout);
        if (argc > 3) {
                fprintf(stderr, "brood: help: one command at most\n");
                return usage(stderr);
        }
        if (is_help(argv[2]))
                return usage(stdout);
        if (is_version(argv[2]))
                return version_usage();
        i = find_cmd(argv[2]);
        if (i < 0) {
                fprintf(stderr, "brood: help: unknown command '%s'\n", argv[2]);
                return usage(stderr);
        }
        av[0] = argv[2];
        av[1] = opt_help;
        av[2] = NULL;
        return run((size_t)i, 2, av);
}

/* The command line's command: its exit code. */
static int dispatch(int argc, char **argv)
{
        int i;

        if (argc < 2)
                return usage(stderr);
        if (is_help(argv[1]))
                return help(argc, argv);
        if (is_version(argv[1])) {
                if (argc == 3 && is_help(argv[2]))
                        return version_usage();
                if (argc > 2) {
                        fprintf(stderr, "brood: version takes no arguments\n");
                        return usage(stderr);
                }
                printf("brood %s\n", brd_version());
                return BRD_EXIT_OK;
        }
        i = find_cmd(argv[1]);
        if (i >= 0)
                return run((size_t)i, argc - 1, argv + 1);
        fprintf(stderr, "brood: unknown command '%s'\n", argv[1]);
        return usage(stderr);
}

/* stdout was closed when we started (stdio_open()). */
static bool stdout_closed;

/*
 * What every command printed must have reached stdout: a full disk or
 * /dev/full, an I/O error, is a failed job (exit 1), said on stderr, for
 * every command alike.  stdio reports it only here, at the last flush, or
 * as the stream's error flag set by an earlier one.  A stdout closed
 * before we ran (stdio_open() put /dev/null there) reached nobody either:
 * EBADF, as every command prints something.
 */
static int close_stdout(int rc)
{
        int e = stdout_closed ? EBADF : 0;

        if (fflush(stdout) == EOF && !e)
                e = errno;
        if (!e && ferror(stdout))
                e = EIO;
        if (fclose(stdout) == EOF && !e && errno != EBADF)
                e = errno;
        if (!e)
                return rc;
        fprintf(stderr, "brood: standard output: %s\n", strerror(e));
        return rc == BRD_EXIT_OK ? BRD_EXIT_FAIL : rc;
}

/* Fds 0-2 that are closed get /dev/null: else the first fds brood opens
 * take their numbers (a pool's memfd as fd 1, and the demo's progress
 * lines written into the pool's header). */
static void stdio_open(void)
{
        int fd;

        for (fd = 0; fd < 3; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                stdout_closed |= fd == 1;
                if (open("/dev/null", O_RDWR) < 0)
                        return;
        }
}

int main(int argc, char **argv)
{
        /* Our children are ours to wait for: SIGCHLD ignored (inherited
         * from a parent that set it so) has the kernel reap them, and
         * every wait then fails (-ECHILD). */
        signal(SIGCHLD, SIG_DFL);
        stdio_open();
        return close_stdout(dispatch(argc, argv));
}
