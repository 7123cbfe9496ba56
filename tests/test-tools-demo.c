/* SPDX-License-Identifier: MIT */
/* brood demo end to end: a verified run, a run that loses a consumer, one
 * interrupted during the round-trip probe; its options' limits; the
 * command's usage errors (getopt's messages, version, help). */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static int run_brood(const char *args, char *out, size_t cap)
{
        return t_run_brood(args, true, out, cap);
}

/*
 * Processes named like the demo's actors ("producer", "stage",
 * "consumer-N"): those whose parent is @ppid (any: 0) that ignore @sig
 * (any disposition: 0).
 */
static int actors_where(pid_t ppid, int sig)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d))) {
                char path[300], line[256];
                unsigned long long ign = 0;
                bool actor = false;
                long pp = -1;
                FILE *f;

                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        if (!strncmp(line, "Name:\t", 6))
                                actor = !strcmp(line + 6, "producer\n") ||
                                        !strcmp(line + 6, "stage\n") ||
                                        !strncmp(line + 6, "consumer-", 9);
                        sscanf(line, "PPid: %ld", &pp);
                        sscanf(line, "SigIgn: %llx", &ign);
                }
                fclose(f);
                if (actor && (!ppid || pp == ppid) && (!sig || (ign >> (sig - 1) & 1)))
                        n++;
        }
        closedir(d);
        return n;
}

static int actors_alive(void)
{
        return actors_where(0, 0);
}

static bool link_figures(const char *out, const char *link, unsigned long long *ret_bytes,
                         double *ret_gbps, double *ret_mmsg);

/* 64 MiB: every byte verified, and every figure printed is one (a rate
 * of 0, inf or nan, a link that carried the wrong amount, fails). */
static void test_demo_verifies(void **state)
{
        static const char *const links[] = { "producer -> stage", "stage (transform)",
                                             "stage -> consumer-0", "stage -> consumer-1" };
        static char out[16384];
        unsigned long long bytes, to_consumers = 0;
        double gbps, mmsg, p50, p99;
        int shm = t_shm_count();
        const char *rt;

        assert_int_equal(run_brood("demo --bytes 64M", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "every byte verified end to end: 67108864 bytes"));
        assert_null(strstr(out, "MISMATCH"));
        assert_non_null(strstr(out, "consumer-1 checksum"));
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
                assert_true(link_figures(out, links[i], &bytes, &gbps, &mmsg));
                assert_true(isfinite(gbps) && gbps > 0);
                assert_true(isfinite(mmsg) && mmsg > 0);
                if (i < 2)
                        assert_int_equal(bytes, 64ull << 20);
                else
                        to_consumers += bytes;
        }
        assert_int_equal(to_consumers, 64ull << 20);
        rt = strstr(out, "(64 B, two rings): p50 ");
        assert_non_null(rt);
        assert_int_equal(sscanf(rt, "(64 B, two rings): p50 %lf us, p99 %lf us", &p50, &p99), 2);
        assert_true(p50 > 0 && p99 >= p50 && isfinite(p99));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/* A bit flipped by the stage (--inject corrupt): the checksums catch it,
 * exit 1, and nothing claims the stream was verified. */
static void test_demo_corruption_caught(void **state)
{
        static char out[16384];

        (void)state;
        assert_int_equal(run_brood("demo --bytes 1M --inject corrupt", out, sizeof(out)), 1);
        assert_non_null(strstr(out, "consumer-0 checksum"));
        assert_non_null(strstr(out, ": MISMATCH"));
        assert_non_null(strstr(out, "consumer-1 checksum"));
        assert_non_null(strstr(out, "the stream was not verified"));
        assert_null(strstr(out, "every byte verified"));
        assert_int_equal(actors_alive(), 0);
}

/*
 * With stdout closed (`brood demo >&-`) the demo runs whole, its output
 * on /dev/null, and then says that its output reached nobody: exit 1 and
 * that one line on stderr, as for /dev/full (the man page's exit status 1;
 * it exited 0 before).  The first fd brood opens must not take number 1:
 * it did once, stdout's writes went into the pool's memfd and the run
 * failed on its own; nothing but the line about stdout says it did not.
 */
static void test_demo_stdout_closed(void **state)
{
        static char out[16384];

        (void)state;
        assert_int_equal(t_run_brood("demo --bytes 3G 2>&1 >&-", false, out, sizeof(out)), 1);
        assert_string_equal(out, "brood: standard output: Bad file descriptor\n");
        assert_int_equal(actors_alive(), 0);
}

static void test_demo_consumer_killed(void **state)
{
        static char out[16384];
        int shm = t_shm_count();

        const char *got;
        double gib;

        assert_int_equal(run_brood("demo --bytes 4G --inject kill-consumer", out, sizeof(out)), 1);
        assert_non_null(strstr(out, "consumer-1 (pid"));
        assert_non_null(strstr(out, "killed by signal 9"));
        /* The summary says how much arrived, not the 4 GiB asked for as
         * if they had (it did). */
        assert_null(strstr(out, "4.00 GiB in"));
        got = strstr(out, "actors forked by the forkserver, ");
        assert_non_null(got);
        assert_int_equal(sscanf(got, "actors forked by the forkserver, %lf GiB of 4.00 GiB reached "
                                "the consumers", &gib), 1);
        assert_true(gib < 4.0);
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/* The figures of the table line of @link: bytes, GB/s and Mmsg/s. */
static bool link_figures(const char *out, const char *link, unsigned long long *ret_bytes,
                         double *ret_gbps, double *ret_mmsg)
{
        char pat[64];
        const char *l;
        unsigned long long msgs;

        snprintf(pat, sizeof(pat), "\n  %s ", link);
        l = strstr(out, pat);
        return l && sscanf(l + strlen(pat), "%llu %llu %lf %lf", &msgs, ret_bytes, ret_gbps,
                           ret_mmsg) == 4;
}

/* Bytes of the table line that starts with @link ("stage -> consumer-0"),
 * -1 if there is none. */
static long long link_bytes(const char *out, const char *link)
{
        unsigned long long bytes;
        double gbps, mmsg;

        return link_figures(out, link, &bytes, &gbps, &mmsg) ? (long long)bytes : -1;
}

/* Bad usage: exit 2, @reason on stderr, and nothing was run. */
static void assert_bad_usage(const char *args, const char *reason)
{
        static char out[8192];
        int shm = t_shm_count();

        print_message("brood %s\n", args);
        assert_int_equal(run_brood(args, out, sizeof(out)), 2);
        assert_non_null(strstr(out, reason));
        assert_non_null(strstr(out, "usage: brood demo"));
        assert_null(strstr(out, "round trip"));
        assert_int_equal(t_shm_count(), shm);
}

/* strtoull() wrapped "-1" to 2^64 - 1 and skipped blanks: a size starts
 * with a digit. */
static void test_demo_bytes_not_negative(void **state)
{
        static const char *bad[] = {
                "--bytes -1", "--bytes -0", "--bytes ' -5'", "--bytes ' 5'", "--bytes '\t5'",
                "--bytes +5", "--bytes 0", "--bytes ''", "--bytes 5X", "--bytes 18446744073709551615",
                "--bytes=-1",
        };
        char args[128];
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(args, sizeof(args), "demo %s", bad[i]);
                assert_bad_usage(args, "brood demo: --bytes must be a size");
        }
}

/* The stream is 8-byte words: --bytes is rounded up, and what the summary
 * prints is what was sent, received and verified. */
static void test_demo_bytes_rounded_up(void **state)
{
        static char out[16384];
        int shm = t_shm_count();

        assert_int_equal(run_brood("demo --bytes 1 --actors 1", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "--bytes 1 rounded up to 8"));
        assert_int_equal(link_bytes(out, "producer -> stage"), 8);
        assert_int_equal(link_bytes(out, "stage -> consumer-0"), 8);
        assert_non_null(strstr(out, "every byte verified end to end: 8 bytes"));

        assert_int_equal(run_brood("demo --bytes 12 --msg-size 8 --actors 1", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "--bytes 12 rounded up to 16"));
        assert_int_equal(link_bytes(out, "producer -> stage"), 16);
        assert_int_equal(link_bytes(out, "stage -> consumer-0"), 16);
        assert_non_null(strstr(out, "every byte verified end to end: 16 bytes"));

        /* 13 words of 8 bytes dealt to 3 consumers: 5, 4, 4. */
        assert_int_equal(run_brood("demo --bytes 100 --msg-size 8 --actors 3", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "rounded up to 104"));
        assert_int_equal(link_bytes(out, "producer -> stage"), 104);
        assert_int_equal(link_bytes(out, "stage -> consumer-0"), 40);
        assert_int_equal(link_bytes(out, "stage -> consumer-1"), 32);
        assert_int_equal(link_bytes(out, "stage -> consumer-2"), 32);
        assert_non_null(strstr(out, "every byte verified end to end: 104 bytes"));

        /* A multiple of 8 is kept as it is, silently. */
        assert_int_equal(run_brood("demo --bytes 64K --msg-size 4K --actors 2", out, sizeof(out)), 0);
        assert_null(strstr(out, "rounded"));
        assert_int_equal(link_bytes(out, "producer -> stage"), 65536);
        assert_non_null(strstr(out, "every byte verified end to end: 65536 bytes"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/* --msg-size 8 B..1 MiB, a multiple of 8; --actors 1..8: a reason, exit 2. */
static void test_demo_limits(void **state)
{
        static char out[16384];

        assert_bad_usage("demo --msg-size 12", "brood demo: --msg-size must be 8 B..1 MiB and a multiple of 8, not '12'");
        assert_bad_usage("demo --msg-size 4", "brood demo: --msg-size must be");
        assert_bad_usage("demo --msg-size 2M", "brood demo: --msg-size must be");
        assert_bad_usage("demo --msg-size 1048584", "brood demo: --msg-size must be");
        assert_bad_usage("demo --actors 9", "brood demo: --actors (the number of consumers) must be 1..8, not '9'");
        assert_bad_usage("demo --actors 0", "brood demo: --actors (the number of consumers) must be 1..8");
        assert_bad_usage("demo --actors -1", "brood demo: --actors (the number of consumers) must be 1..8");
        assert_bad_usage("demo --inject nothing", "brood demo: --inject must be");
        /* No consumer-1 to kill: it ran and did nothing. */
        assert_bad_usage("demo --actors 1 --inject kill-consumer",
                         "brood demo: --inject kill-consumer kills consumer-1: it needs --actors 2 "
                         "or more, not 1");
        assert_bad_usage("demo --inject kill-consumer --actors 1", "it needs --actors 2");
        assert_bad_usage("demo extra", "brood demo: unexpected argument 'extra'");

        /* The limits themselves are good. */
        assert_int_equal(run_brood("demo --bytes 2M --msg-size 1M --actors 8", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "10 actors forked"));
        assert_non_null(strstr(out, "in 1048576-byte messages"));
        assert_non_null(strstr(out, "consumer-7 checksum"));
        assert_non_null(strstr(out, "every byte verified end to end: 2097152 bytes"));
        assert_int_equal(run_brood("demo --bytes 64 --msg-size 8 --actors 1", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "3 actors forked"));
        assert_non_null(strstr(out, "in 8-byte messages"));
        assert_int_equal(link_bytes(out, "producer -> stage"), 64);
        assert_int_equal(actors_alive(), 0);

        /* --help says what the numbers mean. */
        assert_int_equal(t_run_brood("demo --help", false, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "the number of consumers: 1 to 8"));
        assert_non_null(strstr(out, "8 to 1M, a multiple of 8"));
        assert_non_null(strstr(out, "rounded"));
}

/* SIGINT during the round-trip probe (consumer-0 sends it after the first
 * ping, before its answer: the root is waiting for that answer or about to)
 * is an interrupt, exit 130, not a failed step, and leaves nothing behind. */
static void test_demo_interrupted_in_probe(void **state)
{
        static char out[16384];
        int shm = t_shm_count();
        void (*old)(int) = signal(SIGINT, SIG_DFL);     /* a run started in the background ignores it */

        assert_true(old != SIG_ERR);
        assert_int_equal(run_brood("demo --bytes 1G --inject interrupt", out, sizeof(out)), 130);
        signal(SIGINT, old);
        assert_non_null(strstr(out, "brood: demo: interrupted: every actor stopped"));
        assert_null(strstr(out, "Interrupted system call"));
        assert_null(strstr(out, "round trip:"));
        assert_null(strstr(out, "every byte verified"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/*
 * Started with SIGINT ignored (a background job of a shell without job
 * control), the demo leaves it so, its actors too: the same SIGINT during
 * the probe is nothing, and the run ends verified.  Before, the demo
 * caught it and stopped.
 */
static void test_demo_keeps_sigint_ignored(void **state)
{
        static char out[16384];
        int shm = t_shm_count();
        void (*old)(int) = signal(SIGINT, SIG_IGN);

        (void)state;
        assert_true(old != SIG_ERR);
        assert_int_equal(run_brood("demo --bytes 64M --inject interrupt", out, sizeof(out)), 0);
        signal(SIGINT, old);
        assert_non_null(strstr(out, "every byte verified end to end: 67108864 bytes"));
        assert_null(strstr(out, "interrupted"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
}

/* Reads @fd to its end into @out, closes it, reaps @pid: its exit code. */
static int finish_brood(pid_t pid, int fd, char *out, size_t cap)
{
        size_t n = 0;
        ssize_t got;
        int st;

        while ((got = read(fd, out + n, cap - 1 - n)) != 0) {
                if (got < 0) {
                        assert_int_equal(errno, EINTR);
                        continue;
                }
                n += (size_t)got;
                if (n == cap - 1)
                        break;
        }
        out[n] = '\0';
        close(fd);
        while (waitpid(pid, &st, 0) < 0)
                assert_int_equal(errno, EINTR);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Started with SIGCHLD ignored (a parent that set it so, as a Python
 * subprocess with preexec_fn may), the demo still waits for its actors and
 * ends verified.  Before, the kernel reaped them, every wait said ECHILD
 * and the demo failed ("wait: No child processes").
 */
static void test_demo_sigchld_ignored(void **state)
{
        static char out[16384];
        int fd;
        pid_t pid;

        (void)state;
        pid = t_start_brood((const char *const[]){ "demo", "--bytes", "16M", NULL },
                            (const int[]){ SIGCHLD, 0 }, &fd);
        assert_int_equal(finish_brood(pid, fd, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "every byte verified end to end: 16777216 bytes"));
        assert_int_equal(actors_alive(), 0);
}

/*
 * Started with SIGHUP ignored (nohup), the demo's actors ignore it too: a
 * hangup does not end the run.  Before, the forkserver's default
 * dispositions left them to die of it ("killed by signal 1 (Hangup)").
 * Seen in their /proc status while they stream, then Ctrl-C ends it.
 */
static void test_demo_keeps_sighup_ignored(void **state)
{
        static char out[16384];
        struct pollfd p;
        int64_t end = t_now_ms() + 20000;
        int fd, n = 0;
        pid_t pid;

        (void)state;
        pid = t_start_brood((const char *const[]){ "demo", "--bytes", "4000G", NULL },
                            (const int[]){ SIGHUP, 0 }, &fd);
        p.fd = pidfd_open(pid, 0);
        p.events = POLLIN;
        assert_true(p.fd >= 0);
        /* All four (producer, stage, two consumers), or brood ended first. */
        while ((n = actors_where(pid, SIGHUP)) < 4 && t_now_ms() < end &&
               poll(&p, 1, 2) == 0)
                ;
        close(p.fd);
        assert_int_equal(kill(pid, SIGINT), 0);
        assert_int_equal(finish_brood(pid, fd, out, sizeof(out)), 130);
        assert_int_equal(n, 4);
        assert_null(strstr(out, "Hangup"));
        assert_int_equal(actors_alive(), 0);
}

/*
 * An actor that fails before it attaches its rings (the stage here) leaves
 * its peers nothing to watch: the producer fills its ring and waits, the
 * consumers wait for data.  The root stops whoever still runs 3 s after
 * the failure, reports each by name and exits 1, leaving nothing behind.
 * Before, the demo waited for them for ever.
 */
static void test_demo_actor_fails_before_attaching(void **state)
{
        static char out[16384];
        int shm = t_shm_count();
        int64_t t0 = t_now_ms();

        assert_int_equal(run_brood("demo --bytes 1G --inject fail-stage", out, sizeof(out)), 1);
        assert_true(t_now_ms() - t0 < 20000);
        assert_non_null(strstr(out, "stage (pid"));
        assert_non_null(strstr(out, "failed with exit code 20"));
        assert_non_null(strstr(out, "brood: demo: producer still running 3 s after an actor "
                                    "failed: stopping it"));
        assert_null(strstr(out, "every byte verified"));
        assert_int_equal(t_shm_count(), shm);
        assert_int_equal(actors_alive(), 0);
        /* A run that fits in the producer's ring: the producer ends on its
         * own, but nobody read its link, which gets no rate.  Before, it
         * was timed to the producer's own end. */
        assert_int_equal(run_brood("demo --bytes 1M --actors 1 --inject fail-stage", out, sizeof(out)), 1);
        assert_non_null(strstr(out, "(not read to the end: the stage failed)"));
        assert_non_null(strstr(out, "1.00 MiB reached the consumers"));
        assert_int_equal(actors_alive(), 0);
}

/* getopt names the program "brood CMD" in its messages, for every command,
 * and so does a stray argument's (ls, reap and bench said only their usage). */
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

                /* bench takes one benchmark's name: the stray is the next */
                snprintf(args, sizeof(args), "%s %sstray", cmd[i], strcmp(cmd[i], "bench") ? "" : "ring ");
                assert_int_equal(run_brood(args, out, sizeof(out)), 2);
                snprintf(want, sizeof(want), "brood %s: unexpected argument 'stray'\n", cmd[i]);
                assert_memory_equal(out, want, strlen(want));
        }
        assert_int_equal(run_brood("demo --bytes", out, sizeof(out)), 2);
        assert_non_null(strstr(out, "brood demo: option '--bytes' requires an argument\n"));
}

/* version takes no argument but --help; help CMD is CMD's help. */
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
        /* COMMAND --help for every command, version too (it was a usage
         * error: "takes no arguments"). */
        assert_int_equal(t_run_brood("version --help", false, want, sizeof(want)), 0);
        assert_string_equal(want, out);
}

/*
 * Output that cannot be written fails the command, whichever it is: exit 1
 * and a word on stderr (each exited 0, its output lost).  stderr goes to the
 * test's pipe, stdout to /dev/full, or nowhere (closed: each exited 0).
 */
static void test_write_error_fails(void **state)
{
        static const char *args[] = {
                "ls --json", "reap", "version", "help", "help ls",
                "demo --bytes 64 --msg-size 8 --actors 1",
        };
        static const char *const to[][2] = {
                { ">/dev/full", "brood: standard output: No space left on device\n" },
                { ">&-", "brood: standard output: Bad file descriptor\n" },
        };
        static char out[8192];
        char cmd[128];
        size_t i, k;

        for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
                for (k = 0; k < 2; k++) {
                        snprintf(cmd, sizeof(cmd), "%s 2>&1 %s", args[i], to[k][0]);
                        print_message("brood %s\n", cmd);
                        assert_int_equal(t_run_brood(cmd, false, out, sizeof(out)), 1);
                        assert_non_null(strstr(out, to[k][1]));
                }
        }
        assert_int_equal(actors_alive(), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_demo_verifies),
                cmocka_unit_test(test_demo_corruption_caught),
                cmocka_unit_test(test_demo_stdout_closed),
                cmocka_unit_test(test_demo_consumer_killed),
                cmocka_unit_test(test_demo_bytes_not_negative),
                cmocka_unit_test(test_demo_bytes_rounded_up),
                cmocka_unit_test(test_demo_limits),
                cmocka_unit_test(test_demo_interrupted_in_probe),
                cmocka_unit_test(test_demo_keeps_sigint_ignored),
                cmocka_unit_test(test_demo_sigchld_ignored),
                cmocka_unit_test(test_demo_keeps_sighup_ignored),
                cmocka_unit_test(test_demo_actor_fails_before_attaching),
                cmocka_unit_test(test_getopt_names_the_command),
                cmocka_unit_test(test_version_and_help),
                cmocka_unit_test_setup_teardown(test_write_error_fails, t_leak_setup,
                                                t_leak_teardown),
        };

        return cmocka_run_group_tests_name("tools-demo", tests, NULL, NULL);
}
