/* SPDX-License-Identifier: MIT */
/* brood bench: runs the benchmark programs built beside the command. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brood.h"

static const char *const groups[] = { "ring", "spawn", "pool" };

static int bench_path(const char *group, char *out, size_t cap)
{
        char self[PATH_MAX];
        const char *dir = getenv("BROOD_BENCH_DIR");
        ssize_t n;

        if (!dir) {
                n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n <= 0)
                        return -errno;
                self[n] = '\0';
                snprintf(out, cap, "%s/../bench/%s-bench", dirname(self), group);
                if (access(out, X_OK) == 0)
                        return 0;
                dir = BROOD_LIBEXECDIR;
        }
        snprintf(out, cap, "%s/%s-bench", dir, group);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

static int run_group(const char *group, int argc, char **argv)
{
        char path[PATH_MAX];
        char *args[64];
        int i, n = 0, st, r;
        pid_t pid;

        r = bench_path(group, path, sizeof(path));
        if (r < 0) {
                tool_err("bench", group, -r);
                return BRD_EXIT_FAIL;
        }
        args[n++] = path;
        for (i = 0; i < argc && n < 62; i++)
                args[n++] = argv[i];
        args[n] = NULL;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                tool_err("bench", "fork", errno);
                return BRD_EXIT_FAIL;
        }
        if (pid == 0) {
                execv(path, args);
                _exit(127);
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return BRD_EXIT_FAIL;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? BRD_EXIT_OK : BRD_EXIT_FAIL;
}

int cmd_bench(int argc, char **argv)
{
        const char *which = argc > 1 && argv[1][0] != '-' ? argv[1] : "all";
        int first = argc > 1 && argv[1][0] != '-' ? 2 : 1;
        int rc = BRD_EXIT_OK;
        size_t i;

        if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                printf("usage: brood bench [ring|spawn|pool|all] [--quick] [--json FILE]\n"
                       "  Runs brood's benchmarks beside their peers in one run and prints ratios.\n");
                return BRD_EXIT_OK;
        }
        for (i = 0; i < BRD_ARRAY_LEN(groups); i++) {
                if (strcmp(which, "all") && strcmp(which, groups[i]))
                        continue;
                if (run_group(groups[i], argc - first, argv + first) != BRD_EXIT_OK)
                        rc = BRD_EXIT_FAIL;
                if (strcmp(which, "all"))
                        return rc;
        }
        if (strcmp(which, "all")) {
                fprintf(stderr, "brood: bench: unknown group '%s'\n", which);
                return BRD_EXIT_USAGE;
        }
        return rc;
}
