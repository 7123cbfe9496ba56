/* SPDX-License-Identifier: MIT */
/* brood demo end to end: a verified run, and a run that loses a consumer. */
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_demo_verifies),
                cmocka_unit_test(test_demo_consumer_killed),
        };

        return cmocka_run_group_tests_name("tools-demo", tests, NULL, NULL);
}
