/* SPDX-License-Identifier: MIT */
/* brood bench stopped while a benchmark runs (SIGTERM, SIGINT, SIGHUP, and
 * SIGKILL): the benchmark program dies too and nothing of the run is left.
 * A stand-in program takes the benchmark's place: no benchmark runs here. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fork-util.h"
#include "helpers.h"

/* Found by brood as $BROOD_BENCH_DIR/pool-bench: starts the JSON file it is
 * given (the last argument, in brood's temporary directory), tells its pid
 * and that path on fd 9, and waits to be killed. */
static const char fake_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "echo '{' > \"$json\" || exit 1\n"
        "echo \"$$ $json\" >&9\n"
        "exec 9>&-\n"
        "exec sleep 600\n";

struct bench_run {
        pid_t brood, bench;
        char json[256];
};

/* A stand-in that finishes at once: a whole JSON document, exit 0. */
static const char done_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "echo '{\"done\": 1}' > \"$json\"\n";

/* @script as the program @name in @dir. */
static void fake_script(const char *dir, const char *name, const char *script)
{
        char path[128];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(script, f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, 0755), 0);
}

/* A directory with @script in it as pool-bench, for BROOD_BENCH_DIR. */
static void fake_dir_with(char *dir, const char *script)
{
        assert_non_null(mkdtemp(dir));
        fake_script(dir, "pool-bench", script);
}

/* In a forked child: `brood @args` with the stand-ins of @dir, @fd as fd
 * @as, stdout on @out (-1: /dev/null), stderr on /dev/null. */
static void exec_brood(const char *dir, char **args, int fd, int as, int out)
{
        char *argv[8] = { getenv("BRD_BROOD") };
        int nul = open("/dev/null", O_WRONLY | O_CLOEXEC), i;

        for (i = 0; args[i] && i < 6; i++)
                argv[i + 1] = args[i];
        if (nul < 0 || dup2(fd, as) < 0 || dup2(out < 0 ? nul : out, 1) < 0 || dup2(nul, 2) < 0 ||
            setenv("BROOD_BENCH_DIR", dir, 1) < 0)
                _exit(127);
        execv(argv[0], argv);
        _exit(127);
}

/* ... with the stand-in that waits to be killed. */
static void fake_dir(char *dir)
{
        fake_dir_with(dir, fake_bench);
}

static void fake_dir_remove(const char *dir)
{
        char path[128];

        snprintf(path, sizeof(path), "%s/pool-bench", dir);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* `brood bench pool --quick` with the stand-in, once the stand-in runs;
 * with pidfd_open() refused to brood where @no_pidfd (a seccomp filter; the
 * test skips where there is none). */
static void bench_start_as(const char *dir, struct bench_run *b, bool no_pidfd)
{
        char *args[] = { "bench", "pool", "--quick", NULL };
        char line[320];
        int rep[2];
        ssize_t n;

        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        b->brood = t_fork();
        assert_true(b->brood >= 0);
        if (b->brood == 0) {
                if (no_pidfd && tf_deny_syscall(SYS_pidfd_open, ENOSYS) < 0)
                        _exit(T_EXIT_SKIP);
                exec_brood(dir, args, rep[1], 9, -1);
        }
        close(rep[1]);
        n = read(rep[0], line, sizeof(line) - 1);
        close(rep[0]);
        if (n == 0 && no_pidfd && t_wait_child(b->brood) == T_EXIT_SKIP)
                skip();
        assert_true(n > 0);
        line[n] = '\0';
        assert_int_equal(sscanf(line, "%d %255s", &b->bench, b->json), 2);
        assert_memory_equal(b->json, "/tmp/brood-bench-", 17);
}

static void bench_start(const char *dir, struct bench_run *b)
{
        bench_start_as(dir, b, false);
}

/* Is process @pid gone (reaped, or dead and awaiting its reaper), within
 * @ms?  A survivor is killed, so that it outlives no test. */
static bool gone_within(pid_t pid, int ms)
{
        struct pollfd p = { .fd = pidfd_open(pid, 0), .events = POLLIN };
        int n;

        if (p.fd < 0)
                return errno == ESRCH;
        while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
                ;
        if (n == 0)
                kill(pid, SIGKILL);
        close(p.fd);
        return n > 0;
}

static bool dir_exists(const char *path)
{
        char copy[256];
        struct stat st;

        snprintf(copy, sizeof(copy), "%s", path);
        return stat(dirname(copy), &st) == 0;
}

/*
 * A stopping signal to brood only (kill, not the terminal's Ctrl-C to the
 * whole group): it kills and reaps the benchmark, removes its temporary
 * directory, and exits 128 + the signal.  It died of the signal before,
 * and the benchmark ran on, reparented, into the leftover directory.
 */
static void test_bench_stopped_by_signal(void **state)
{
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
        char dir[] = "/tmp/brood-test-stop-XXXXXX";
        struct bench_run b;
        size_t i;

        fake_dir(dir);
        for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                bool gone, left;

                bench_start(dir, &b);
                assert_int_equal(kill(b.brood, sigs[i]), 0);
                assert_int_equal(t_wait_child(b.brood), 128 + sigs[i]);
                gone = gone_within(b.bench, 0);
                left = dir_exists(b.json);
                if (left) {
                        unlink(b.json);
                        rmdir(dirname(b.json));
                }
                assert_true(gone);
                assert_false(left);
        }
        fake_dir_remove(dir);
}

/*
 * brood SIGKILLed: nothing of its own can run, but the benchmark dies with
 * it (PR_SET_PDEATHSIG) instead of running on.  Its temporary directory
 * stays; nothing writes to it any more.
 */
static void test_bench_dies_with_brood(void **state)
{
        char dir[] = "/tmp/brood-test-stop-XXXXXX";
        struct bench_run b;
        bool gone;

        fake_dir(dir);
        bench_start(dir, &b);
        assert_int_equal(kill(b.brood, SIGKILL), 0);
        assert_int_equal(t_wait_child(b.brood), 128 + SIGKILL);
        gone = gone_within(b.bench, 10000);
        assert_int_equal(unlink(b.json), 0);
        assert_int_equal(rmdir(dirname(b.json)), 0);
        fake_dir_remove(dir);
        assert_true(gone);
}

/*
 * --json naming a file that brood's stdout or another of its fds appends
 * to (a log: >>): the run's JSON is appended too, and what the log held
 * stays (it was truncated by the JSON's open).
 */
static void test_bench_json_to_own_fd(void **state)
{
        char dir[] = "/tmp/brood-test-benchjson-XXXXXX", log[128], cmd[512], text[4096];
        const char *exe = getenv("BRD_BROOD");
        FILE *f;
        size_t n;

        (void)state;
        assert_non_null(exe);
        fake_dir_with(dir, done_bench);
        snprintf(log, sizeof(log), "%s/log", dir);
        for (int fd = 1; fd <= 3; fd += 2) {
                f = fopen(log, "we");
                assert_non_null(f);
                assert_true(fputs("kept\n", f) >= 0);
                assert_int_equal(fclose(f), 0);
                snprintf(cmd, sizeof(cmd), "BROOD_BENCH_DIR=%s '%s' bench pool --quick --json %s %d>>%s %s",
                         dir, exe, fd == 1 ? "/dev/stdout" : "/dev/fd/3", fd, log,
                         fd == 1 ? "" : ">/dev/null");
                assert_int_equal(system(cmd), 0);
                f = fopen(log, "re");
                assert_non_null(f);
                n = fread(text, 1, sizeof(text) - 1, f);
                fclose(f);
                text[n] = '\0';
                assert_memory_equal(text, "kept\n", 5);
                assert_non_null(strstr(text, "\"brood_version\""));
                assert_non_null(strstr(text, "\"done\": 1"));
        }
        assert_int_equal(unlink(log), 0);
        fake_dir_remove(dir);
}

/* A stand-in ring benchmark that says where its JSON goes (fd 9) and
 * then writes to stdout without end. */
static const char chatty_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "echo '{' > \"$json\" || exit 1\n"
        "echo \"$$ $json\" >&9\n"
        "exec 9>&-\n"
        "while :; do echo line; done\n";

/*
 * `brood bench all | head -1`: the benchmark dies of SIGPIPE (its default
 * action, not the SIG_IGN brood runs with), and brood stops as for a
 * signal: no more groups, its temporary directory removed, exit 128 +
 * SIGPIPE.  It took the benchmark's death for a failure and went on to the
 * next group, whose header killed brood itself (SIGPIPE), the temporary
 * directory left behind.
 */
static void test_bench_stdout_reader_gone(void **state)
{
        static const char *const names[] = { "ring-bench", "spawn-bench", "pool-bench" };
        char dir[] = "/tmp/brood-test-pipe-XXXXXX", path[128], line[320], buf[64];
        char *args[] = { "bench", "all", "--quick", NULL };
        struct bench_run b;
        int rep[2], out[2], i;
        bool left;
        ssize_t n;

        (void)state;
        assert_non_null(mkdtemp(dir));
        for (i = 0; i < 3; i++)
                fake_script(dir, names[i], i ? done_bench : chatty_bench);
        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        b.brood = t_fork();
        assert_true(b.brood >= 0);
        if (b.brood == 0)
                exec_brood(dir, args, rep[1], 9, out[1]);
        close(rep[1]);
        close(out[1]);
        n = read(rep[0], line, sizeof(line) - 1);
        close(rep[0]);
        assert_true(n > 0);
        line[n] = '\0';
        assert_int_equal(sscanf(line, "%d %255s", &b.bench, b.json), 2);
        assert_true(read(out[0], buf, sizeof(buf)) > 0);
        close(out[0]);                          /* head -1 is done */
        assert_true(gone_within(b.brood, 10000));
        assert_int_equal(t_wait_child(b.brood), 128 + SIGPIPE);
        assert_true(gone_within(b.bench, 0));
        left = dir_exists(b.json);
        if (left) {
                unlink(b.json);
                rmdir(dirname(b.json));
        }
        assert_false(left);
        for (i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(rmdir(dir), 0);
}

/* A stand-in pool benchmark that waits for a byte on fd 8, then writes a
 * whole JSON document and exits 0. */
static const char gated_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "read -r x <&8\n"
        "echo '{\"done\": 1}' > \"$json\"\n";

/*
 * `brood bench pool --json /dev/stdout | head -1`: the reader leaves after
 * the group's header, before the run's JSON goes out through brood's own
 * stdout: brood stops as for SIGPIPE (exit 141).  It reported the write's
 * EPIPE as a failure (exit 1).
 */
static void test_bench_json_reader_gone(void **state)
{
        char dir[] = "/tmp/brood-test-jsonpipe-XXXXXX", buf[256];
        char *args[] = { "bench", "pool", "--json", "/dev/stdout", NULL };
        int out[2], go[2], st;
        pid_t brood;

        (void)state;
        fake_dir_with(dir, gated_bench);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        brood = t_fork();
        assert_true(brood >= 0);
        if (brood == 0)
                exec_brood(dir, args, go[0], 8, out[1]);
        close(go[0]);
        close(out[1]);
        assert_true(read(out[0], buf, sizeof(buf)) > 0);       /* the header */
        close(out[0]);                                          /* head -1 is done */
        assert_int_equal(write(go[1], "g\n", 2), 2);
        close(go[1]);
        assert_true(gone_within(brood, 10000));
        st = t_wait_child(brood);
        fake_dir_remove(dir);
        assert_int_equal(st, 128 + SIGPIPE);
}

/* A stand-in that leaves a file "ran" in its own directory when run. */
static const char marking_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "touch \"$(dirname \"$0\")/ran\"\n"
        "echo '{\"done\": 1}' > \"$json\"\n";

/*
 * brood bench's own options checked before anything runs: output files
 * that cannot be written (it ran for minutes, then lost the figures), a
 * --json meant for the program (brood's own, given after it, won: the
 * user's file was never written), both options on one file (the SVG was
 * renamed over the JSON), empty names; a bare "--" passes nothing.  The
 * look leaves no file behind (it makes and removes the output's
 * temporary file).
 */
static void test_bench_options_checked_first(void **state)
{
        static const char *const bad[][2] = {
                { "bench pool --json /nonexistent-dir/x.json", "1" },
                { "bench pool --json /tmp", "1" },
                { "bench pool --plot /nonexistent-dir/x.svg", "1" },
                { "bench pool -- --json x.json", "2" },
                { "bench pool -- --json=x.json", "2" },
                { "bench pool -- -jx.json", "2" },
                { "bench pool --json /tmp/same --plot /tmp/same", "2" },
                { "bench pool --json ''", "2" },
                /* Passed the look before (root's access() says yes in
                 * /proc; a trailing slash's dirname is the parent; one file
                 * by two names). */
                { "bench pool --json /proc/brood-x.json", "1" },
                { "bench pool --json /tmp/brood-test-no-such-dir/", "1" },
                { "bench pool --json /tmp/same --plot /tmp/../tmp/same", "2" },
        };
        char dir[] = "/tmp/brood-test-opts-XXXXXX", ran[64], cmd[512];
        static char out[1 << 16];       /* all it prints: a reader gone would stop it */
        size_t i;

        (void)state;
        fake_dir_with(dir, marking_bench);
        snprintf(ran, sizeof(ran), "%s/ran", dir);
        assert_int_equal(setenv("BROOD_BENCH_DIR", dir, 1), 0);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(cmd, sizeof(cmd), "%s 2>/dev/null", bad[i][0]);
                if (t_run_brood(cmd, false, out, sizeof(out)) != atoi(bad[i][1]) ||
                    access(ran, F_OK) == 0) {
                        unlink(ran);
                        fail_msg("%s: wrong exit, or the benchmark ran", bad[i][0]);
                }
        }
        /* A bare "--": as if none, the run goes on. */
        assert_int_equal(t_run_brood("bench pool --quick --", false, out, sizeof(out)), 0);
        assert_int_equal(unlink(ran), 0);
        assert_int_equal(unsetenv("BROOD_BENCH_DIR"), 0);
        fake_dir_remove(dir);
}

/* A stand-in that tells its pid and JSON path on fd 9 (as fake_bench),
 * waits for a byte on fd 8, then writes a whole JSON document and exits 0. */
static const char told_gated_bench[] =
        "#!/bin/sh\n"
        "for a; do json=$a; done\n"
        "echo '{' > \"$json\" || exit 1\n"
        "echo \"$$ $json\" >&9\n"
        "exec 9>&-\n"
        "read -r x <&8\n"
        "echo '{\"done\": 1}' > \"$json\"\n";

/*
 * pidfd_open() refused to brood (a seccomp filter, a sandbox, Linux < 5.3):
 * brood waits for its benchmark by looking at it, and a stop still ends
 * both.  It killed the benchmark as soon as it had started (before it
 * could tell its pid) and reported a failed run.
 */
static void test_bench_without_pidfd(void **state)
{
        char dir[] = "/tmp/brood-test-nopidfd-XXXXXX", dir2[] = "/tmp/brood-test-nopidfd-XXXXXX";
        struct bench_run b;
        int go[2];
        bool gone;

        /* A run that ends: the benchmark's exit is seen, brood exits 0. */
        fake_dir_with(dir, told_gated_bench);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(dup2(go[0], 8), 8);   /* brood's fd 8, passed on */
        close(go[0]);
        bench_start_as(dir, &b, true);
        close(8);
        assert_int_equal(write(go[1], "g\n", 2), 2);
        close(go[1]);
        gone = gone_within(b.brood, 10000);
        assert_true(gone);
        assert_int_equal(t_wait_child(b.brood), 0);
        fake_dir_remove(dir);
        /* A stop: the benchmark dies too, nothing is left. */
        fake_dir(dir2);
        bench_start_as(dir2, &b, true);
        assert_int_equal(kill(b.brood, SIGTERM), 0);
        assert_int_equal(t_wait_child(b.brood), 128 + SIGTERM);
        gone = gone_within(b.bench, 0);
        assert_true(gone);
        assert_false(dir_exists(b.json));
        fake_dir_remove(dir2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bench_stopped_by_signal, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test(test_bench_json_to_own_fd),
                cmocka_unit_test(test_bench_stdout_reader_gone),
                cmocka_unit_test(test_bench_json_reader_gone),
                cmocka_unit_test_setup_teardown(test_bench_without_pidfd, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_bench_options_checked_first, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_bench_dies_with_brood, t_leak_setup,
                                                t_leak_teardown),
        };

        return cmocka_run_group_tests_name("tools-bench-stop", tests, NULL, NULL);
}
