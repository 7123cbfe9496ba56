/* SPDX-License-Identifier: MIT */
/*
 * spawn-bench: spawn-and-wait latency of a child that exits at once, p50 and
 * p99, side by side in one run: brood fork mode, brood exec mode (/bin/true),
 * raw fork+_exit+waitpid, posix_spawn (/bin/true), and Python's
 * multiprocessing with the forkserver, fork and spawn start methods; then the
 * same with the parent holding 1 GiB of touched private memory.
 *
 *   spawn-bench [--quick] [--json FILE] [--no-python] [--no-big]
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <brood/fork.h>

#include "bench-common.h"

extern char **environ;

struct result {
        char name[64];
        double p50_us, p99_us;
        int n;
};

static struct result results[32];
static int nresults;

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static void record(const char *name, double *t, int n)
{
        struct result *r = &results[nresults++];

        qsort(t, (size_t)n, sizeof(double), cmp_double);
        snprintf(r->name, sizeof(r->name), "%s", name);
        r->n = n;
        /* The median (the mean of the middle two of an even count) and
         * the nearest-rank p99 (the ceil(0.99 n)-th value). */
        r->p50_us = n < 1 ? NAN : n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
        r->p99_us = n < 1 ? NAN : t[(n * 99 + 99) / 100 - 1];
        printf("  %-34s n=%-5d p50 %10.1f us   p99 %10.1f us\n", name, n, r->p50_us, r->p99_us);
        fflush(stdout);
}

static const struct result *find(const char *name)
{
        int i;

        for (i = 0; i < nresults; i++)
                if (!strcmp(results[i].name, name))
                        return &results[i];
        return NULL;
}

static int fn_exit0(void *arg, struct brd_handle *h, size_t n)
{
        return 0;
}

/* Every child timed must have run to a clean exit: one that failed (an
 * exec that could not be done, a fork that died) was no spawn. */
static void check_exit(const char *name, int st)
{
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "%s: a child did not exit 0 (status %#x)\n", name, (unsigned)st);
                exit(1);
        }
}

/* Wait for @pid (a child of ours), EINTR aside; its status checked. */
static void reap_checked(const char *name, pid_t pid)
{
        int st;

        if (pid < 0) {
                fprintf(stderr, "%s: fork: %s\n", name, strerror(errno));
                exit(1);
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR) {
                        fprintf(stderr, "%s: waitpid: %s\n", name, strerror(errno));
                        exit(1);
                }
        check_exit(name, st);
}

static void bench_brood(struct brd_fsrv *fs, const char *name, bool exec, int n)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts o = { .fn = exec ? NULL : fn_exit0, .argv = exec ? argv : NULL };
        double *t = calloc((size_t)n, sizeof(double));
        int i, st;

        for (i = -n / 10; i < n; i++) {         /* a tenth as warm-up */
                struct brd_child *c;
                double t0 = now_us();

                if (brd_fsrv_spawn(fs, &o, &c) < 0 || brd_child_wait(c, -1, &st) < 0) {
                        fprintf(stderr, "%s: spawn failed\n", name);
                        exit(1);
                }
                check_exit(name, st);
                if (i >= 0)
                        t[i] = now_us() - t0;
                brd_child_free(c);
        }
        record(name, t, n);
        free(t);
}

static void bench_raw_fork(const char *name, int n)
{
        double *t = calloc((size_t)n, sizeof(double));
        int i;

        for (i = -n / 10; i < n; i++) {
                double t0 = now_us();
                pid_t pid = fork();

                if (pid == 0)
                        _exit(0);
                reap_checked(name, pid);
                if (i >= 0)
                        t[i] = now_us() - t0;
        }
        record(name, t, n);
        free(t);
}

static void bench_posix_spawn(const char *name, int n)
{
        char *argv[] = { "/bin/true", NULL };
        double *t = calloc((size_t)n, sizeof(double));
        int i;

        for (i = -n / 10; i < n; i++) {
                double t0 = now_us();
                pid_t pid;

                if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ)) {
                        perror("posix_spawn");
                        exit(1);
                }
                reap_checked(name, pid);
                if (i >= 0)
                        t[i] = now_us() - t0;
        }
        record(name, t, n);
        free(t);
}

/*
 * python3 @path with its stdout on a pipe, read from *ret_f (its pid in
 * *ret_pid).  It dies with us: killed (brood bench stopped), we could not
 * reap it, and it would run on with its gigabyte.  SIGTERM, not SIGKILL:
 * the script turns it into SystemExit and removes itself on the way out.
 */
static int python_start(const char *path, FILE **ret_f, pid_t *ret_pid)
{
        pid_t pid;
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid = bc_fork_tied(SIGTERM);
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -1;
        }
        if (pid == 0) {
                if (dup2(p[1], 1) < 0)
                        _exit(127);
                execlp("python3", "python3", path, (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        *ret_f = fdopen(p[0], "r");
        if (!*ret_f) {
                close(p[0]);
                kill(pid, SIGTERM);
                bc_wait_child(pid);
                return -1;
        }
        *ret_pid = pid;
        return 0;
}

/* Python: time Process(target=f).start(); join() in the interpreter itself. */
static void bench_python(const char *method, int n, bool big)
{
        char name[64], line[256];
        FILE *f;
        double *t = calloc((size_t)n, sizeof(double));
        int k = 0;
        pid_t py;

        char path[] = "/tmp/brood-spawn-bench-XXXXXX.py";
        int fd = mkstemps(path, 3);

        /* A real file: the forkserver and spawn methods re-import __main__ by path. */
        if (fd < 0) {
                free(t);
                return;
        }
        f = fdopen(fd, "w");
        fprintf(f,
                "import multiprocessing as mp, os, signal, sys, time\n"
                "def f():\n    pass\n"
                "def main():\n"
                "    big = bytearray(1 << 30) if %d else None\n"
                "    if big is not None:\n"
                "        for i in range(0, len(big), 4096): big[i] = 1\n"
                "    ctx = mp.get_context('%s')\n"
                "    for i in range(-max(1, %d // 10), %d):\n"
                "        t0 = time.perf_counter()\n"
                "        p = ctx.Process(target=f); p.start(); p.join()\n"
                "        dt = (time.perf_counter() - t0) * 1e6\n"
                "        if p.exitcode != 0: sys.exit(1)\n"
                "        if i >= 0: print(dt, flush=True)\n"
                /* Killed with us (our pipe broken, Ctrl-C, our death's
                 * SIGTERM), it still removes this file: we can no longer. */
                "if __name__ == '__main__':\n"
                "    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))\n"
                "    try:\n        main()\n"
                "    finally:\n        os.unlink(__file__)\n", big ? 1 : 0, method, n, n);
        fclose(f);
        snprintf(name, sizeof(name), "python mp %s%s", method, big ? " (1 GiB)" : "");
        if (python_start(path, &f, &py) < 0) {
                unlink(path);
                free(t);
                return;
        }
        while (k < n && fgets(line, sizeof(line), f))
                t[k++] = strtod(line, NULL);
        fclose(f);
        bc_wait_child(py);
        unlink(path);
        if (k > 0)
                record(name, t, k);
        else
                printf("  %-34s (python3 failed)\n", name);
        free(t);
}


/* @v as a JSON number in @buf (32 bytes) with @prec decimals, or null
 * where it is none (a ratio over a zero): "inf" and "nan" are no JSON. */
static const char *jnum(char *buf, double v, int prec)
{
        if (!isfinite(v))
                return "null";
        snprintf(buf, 32, "%.*f", prec, v);
        return buf;
}
static void ratio(const char *what, const char *a, const char *b, FILE *json, bool *first)
{
        const struct result *x = find(a), *y = find(b);

        if (!x || !y)
                return;
        printf("  %-52s p50 %7.2fx   p99 %7.2fx\n", what, x->p50_us / y->p50_us, x->p99_us / y->p99_us);
        if (json) {
                char n50[32], n99[32];

                fprintf(json, "%s\n    {\"ratio\": \"%s\", \"a\": \"%s\", \"b\": \"%s\", \"p50\": %s, \"p99\": %s}",
                        *first ? "" : ",", what, a, b, jnum(n50, x->p50_us / y->p50_us, 4),
                        jnum(n99, x->p99_us / y->p99_us, 4));
                *first = false;
        }
}

int main(int argc, char **argv)
{
        bool quick = false, python = true, big = true, first = true;
        const char *json_path = NULL;
        struct brd_fsrv *fs;
        FILE *json = NULL;
        int i, n, nbig, npy, npyspawn;
        char *mem = NULL;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        quick = true;
                else if (!strcmp(argv[i], "--json") && i + 1 < argc)
                        json_path = argv[++i];
                else if (!strcmp(argv[i], "--no-python"))
                        python = false;
                else if (!strcmp(argv[i], "--no-big"))
                        big = false;
                else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        printf("usage: spawn-bench [--quick] [--json FILE] [--no-python] [--no-big]\n"
                               "  --quick      fewer spawns (seconds)\n"
                               "  --json FILE  write every figure to FILE\n"
                               "  --no-python  leave out Python multiprocessing\n"
                               "  --no-big     leave out the spawns from a parent holding 1 GiB\n");
                        return 0;
                } else {
                        fprintf(stderr, "usage: spawn-bench [--quick] [--json FILE] [--no-python] [--no-big]\n");
                        return 2;
                }
        }
        n = quick ? 300 : 3000;
        nbig = quick ? 30 : 200;
        npy = quick ? 40 : 300;
        npyspawn = quick ? 15 : 60;

        if (brd_fsrv_start(0, &fs) < 0) {
                fprintf(stderr, "brd_fsrv_start failed\n");
                return 1;
        }
        printf("spawn-and-wait latency, child exits at once (%s)\n", quick ? "quick" : "full");
        bench_brood(fs, "brood fork mode", false, n);
        bench_raw_fork("raw fork+_exit+waitpid", n);
        bench_brood(fs, "brood exec /bin/true", true, n);
        bench_posix_spawn("posix_spawn /bin/true", n);
        if (python) {
                bench_python("forkserver", npy, false);
                bench_python("fork", npy, false);
                bench_python("spawn", npyspawn, false);
        }
        if (big) {
                size_t sz = (size_t)1 << 30, off;

                mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (mem == MAP_FAILED) {
                        mem = NULL;
                } else {
                        for (off = 0; off < sz; off += 4096)
                                mem[off] = 1;
                        printf("parent holds 1 GiB of touched private memory\n");
                        bench_brood(fs, "brood fork mode (1 GiB)", false, nbig);
                        bench_raw_fork("raw fork+_exit+waitpid (1 GiB)", nbig);
                        bench_brood(fs, "brood exec /bin/true (1 GiB)", true, nbig);
                        bench_posix_spawn("posix_spawn /bin/true (1 GiB)", nbig);
                        munmap(mem, sz);
                }
                if (python) {
                        bench_python("forkserver", quick ? 20 : 100, true);
                        bench_python("fork", quick ? 10 : 50, true);
                }
        }
        brd_fsrv_stop(fs);

        if (json_path) {
                json = fopen(json_path, "w");
                if (json) {
                        fprintf(json, "{\n  \"bench\": \"spawn\",\n  \"quick\": %s,\n  \"results\": [", quick ? "true" : "false");
                        for (i = 0; i < nresults; i++) {
                                char n50[32], n99[32];

                                fprintf(json, "%s\n    {\"name\": \"%s\", \"n\": %d, \"p50_us\": %s, \"p99_us\": %s}",
                                        i ? "," : "", results[i].name, results[i].n,
                                        jnum(n50, results[i].p50_us, 2), jnum(n99, results[i].p99_us, 2));
                        }
                        fprintf(json, "\n  ],\n  \"ratios\": [");
                }
        }
        printf("ratios (targets: fork mode <= 1.5x raw fork; exec <= 1.2x posix_spawn; python forkserver >= 30x brood fork)\n");
        ratio("brood fork / raw fork+waitpid", "brood fork mode", "raw fork+_exit+waitpid", json, &first);
        ratio("brood exec / posix_spawn", "brood exec /bin/true", "posix_spawn /bin/true", json, &first);
        ratio("python forkserver / brood fork", "python mp forkserver", "brood fork mode", json, &first);
        ratio("python fork / brood fork", "python mp fork", "brood fork mode", json, &first);
        ratio("python spawn / brood exec", "python mp spawn", "brood exec /bin/true", json, &first);
        ratio("brood fork / raw fork (1 GiB)", "brood fork mode (1 GiB)", "raw fork+_exit+waitpid (1 GiB)", json, &first);
        ratio("brood exec / posix_spawn (1 GiB)", "brood exec /bin/true (1 GiB)", "posix_spawn /bin/true (1 GiB)", json, &first);
        ratio("python forkserver / brood fork (1 GiB)", "python mp forkserver (1 GiB)", "brood fork mode (1 GiB)", json, &first);
        if (json) {
                fprintf(json, "\n  ]\n}\n");
                fclose(json);
        }
        return 0;
}
