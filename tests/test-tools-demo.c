/* SPDX-License-Identifier: MIT */
/* brood demo end to end: a verified run, a run that loses a consumer, one
 * interrupted during the round-trip probe; its options' limits; the
 * command's usage errors (getopt's messages, version, help). */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static int run_brood(const char *args, char *out, size_t cap)
{
        return t_run_brood(args, true, out, cap);
}

/* Processes named like the demo's actors (comm "producer", "stage", "consumer-N"). */
static int actors_alive(void)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d))) {
                char path[300], comm[64] = "";
                FILE *f;

                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (fgets(comm, sizeof(comm), f) &&
                    (!strncmp(comm, "producer", 8) || !strncmp(comm, "stage\n", 6) ||
                     !strncmp(comm, "consumer-", 9)))
                        n++;
                fclose(f);
        }
        closedir(d);
        return n;
}

static void test_demo_verifies(void **state)
{
        static char out[16384];
        int shm = t_shm_count();

        assert_int_equal(run_brood("demo --bytes 64M", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "every byte verified end to end"));
        assert_null(strstr(out, "MISMATCH"));
        assert_non_null(strstr(out, "consumer-1 checksum"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

static void test_demo_consumer_killed(void **state)
{
        static char out[16384];
        int shm = t_shm_count();

        assert_int_equal(run_brood("demo --bytes 4G --inject kill-consumer", out, sizeof(out)), 1);
        assert_non_null(strstr(out, "consumer-1 (pid"));
        assert_non_null(strstr(out, "killed by signal 9"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/* getopt names the program "brood CMD" in its messages, for every command. */
static void test_getopt_names_the_command(void **state)
{
        static const char *cmd[] = { "demo", "ls", "reap", "bench" };
        static char out[8192];
        char args[64], want[96];
        size_t i;

        for (i = 0; i < sizeof(cmd) / sizeof(cmd[0]); i++) {
                snprintf(args, sizeof(args), "%s --bogus", cmd[i]);
                assert_int_equal(run_brood(args, out, sizeof(out)), 2);
                snprintf(want, sizeof(want), "brood %s: unrecognized option '--bogus'\n", cmd[i]);
                assert_memory_equal(out, want, strlen(want));

                snprintf(args, sizeof(args), "%s -Z", cmd[i]);
                assert_int_equal(run_brood(args, out, sizeof(out)), 2);
                snprintf(want, sizeof(want), "brood %s: invalid option -- 'Z'\n", cmd[i]);
                assert_memory_equal(out, want, strlen(want));
        }
        assert_int_equal(run_brood("demo --bytes", out, sizeof(out)), 2);
        assert_non_null(strstr(out, "brood demo: option '--bytes' requires an argument\n"));
}

/* version takes no argument; help CMD is CMD's help. */
static void test_version_and_help(void **state)
{
        static char out[8192], want[8192];
        static const char *cmd[] = { "demo", "ls", "reap", "bench" };
        char args[64];
        size_t i;

        assert_int_equal(run_brood("version", out, sizeof(out)), 0);
        assert_memory_equal(out, "brood ", 6);
        assert_int_equal(run_brood("version extra", out, sizeof(out)), 2);
        assert_non_null(strstr(out, "brood: version takes no arguments"));
        assert_int_equal(run_brood("--version extra", out, sizeof(out)), 2);

        for (i = 0; i < sizeof(cmd) / sizeof(cmd[0]); i++) {
                snprintf(args, sizeof(args), "%s --help", cmd[i]);
                assert_int_equal(t_run_brood(args, false, want, sizeof(want)), 0);
                snprintf(args, sizeof(args), "help %s", cmd[i]);
                assert_int_equal(t_run_brood(args, false, out, sizeof(out)), 0);
                assert_string_equal(out, want);
                snprintf(args, sizeof(args), "usage: brood %s", cmd[i]);
                assert_memory_equal(out, args, strlen(args));
        }
        assert_int_equal(run_brood("help nope", out, sizeof(out)), 2);
        assert_non_null(strstr(out, "brood: help: unknown command 'nope'"));
        assert_int_equal(run_brood("help ls demo", out, sizeof(out)), 2);
        assert_int_equal(t_run_brood("help", false, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "usage: brood COMMAND"));
        assert_int_equal(t_run_brood("help version", false, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "usage: brood version"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_demo_verifies),
                cmocka_unit_test(test_demo_consumer_killed),
                cmocka_unit_test(test_getopt_names_the_command),
                cmocka_unit_test(test_version_and_help),
        };

        return cmocka_run_group_tests_name("tools-demo", tests, NULL, NULL);
}
