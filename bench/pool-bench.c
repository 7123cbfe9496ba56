/* SPDX-License-Identifier: MIT */
/*
 * pool-bench: alloc+free pairs per second of brood's shared pool, beside
 * glibc malloc/free and beside the seed's way of sharing an object (a POSIX
 * shm segment per object: shm_open + shm_unlink + ftruncate + mmap + munmap),
 * all in the same run, for 64 B ... 64 KiB, with 1 and 2 processes.
 * (Its per-object names avoid the "brood." prefix so that the leak checks of
 * tests running at the same time do not count them.)
 *
 * Pattern: a window of WINDOW live blocks; each step frees the oldest and
 * allocates a new one, and writes its first and last byte.  Two processes
 * share one pool (they contend on its free stacks); for malloc each has its
 * own heap, which is the bar a shared allocator is measured against.
 *
 * Then the lock that large blocks take, beside a bare futex lock (pb-lock.c).
 *
 *   pool-bench [--quick] [--json FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/shm.h>
#include "bench-common.h"
#include "pb-lock.h"

#define WINDOW 16
#define MAXPROCS 2

static const size_t sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

enum way { WAY_POOL, WAY_MALLOC, WAY_SEGOBJ };

struct opts {
        int quick;
        const char *json;
        int64_t run_ns;
        int reps;
};

static struct brd_pool *g_pool;

static inline void touch(volatile unsigned char *p, size_t size)
{
        p[0] = 1;
        p[size - 1] = 2;
}

/* Run pairs of @way for @run_ns; returns the pairs done (< 0 on error). */
static long run_pool(size_t size, int64_t run_ns)
{
        int64_t win[WINDOW] = { 0 };
        int64_t end = bc_now_ns() + run_ns;
        long pairs = 0;
        unsigned k;

        for (k = 0; k < WINDOW; k++) {
                win[k] = brd_pool_alloc(g_pool, size);
                if (win[k] < 0)
                        return -1;
        }
        for (;;) {
                for (k = 0; k < WINDOW; k++) {
                        if (brd_pool_free(g_pool, (uint64_t)win[k]) < 0)
                                return -1;
                        win[k] = brd_pool_alloc(g_pool, size);
                        if (win[k] < 0)
                                return -1;
                        touch(brd_pool_ptr(g_pool, (uint64_t)win[k]), size);
                }
                pairs += WINDOW;
                if ((pairs & 1023) == 0 && bc_now_ns() >= end)
                        break;
        }
        for (k = 0; k < WINDOW; k++)
                brd_pool_free(g_pool, (uint64_t)win[k]);
        return pairs;
}

static long run_malloc(size_t size, int64_t run_ns)
{
        void *win[WINDOW];
        int64_t end = bc_now_ns() + run_ns;
        long pairs = 0;
        unsigned k;

        for (k = 0; k < WINDOW; k++)
                if (!(win[k] = malloc(size)))
                        return -1;
        for (;;) {
                for (k = 0; k < WINDOW; k++) {
                        free(win[k]);
                        win[k] = malloc(size);
                        if (!win[k])
                                return -1;
                        touch(win[k], size);
                }
                pairs += WINDOW;
                if ((pairs & 1023) == 0 && bc_now_ns() >= end)
                        break;
        }
        for (k = 0; k < WINDOW; k++)
                free(win[k]);
        return pairs;
}

/* The seed's way: a named segment per object (a name is what it measures:
 * shm_open() by name), created, sized, mapped, written, unmapped and
 * unlinked.  Unlinked at once after the create, the same calls in another
 * order: a worker killed mid-loop (brood bench interrupted) leaves no name
 * in /dev/shm but for the instant between those two calls. */
static long run_segobj(size_t size, int64_t run_ns)
{
        int64_t end = bc_now_ns() + run_ns;
        char name[64];
        long pairs = 0;

        for (;;) {
                void *p;
                int fd;

                snprintf(name, sizeof(name), "/pool-bench.%d.%ld", (int)getpid(), pairs);
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
                if (fd < 0)
                        return -1;
                shm_unlink(name);
                if (ftruncate(fd, (off_t)size) < 0) {
                        close(fd);
                        return -1;
                }
                p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                close(fd);
                if (p == MAP_FAILED)
                        return -1;
                touch(p, size);
                munmap(p, size);
                pairs++;
                if ((pairs & 63) == 0 && bc_now_ns() >= end)
                        break;
        }
        return pairs;
}

static long run_way(enum way w, size_t size, int64_t run_ns)
{
        switch (w) {
        case WAY_POOL:   return run_pool(size, run_ns);
        case WAY_MALLOC: return run_malloc(size, run_ns);
        default:         return run_segobj(size, run_ns);
        }
}

/* @nproc forked workers (pinned to CPUs 0, 1) start together; pairs/s summed. */
static double measure(enum way w, size_t size, int nproc, const struct opts *o)
{
        struct shared { volatile long ready, go; volatile long pairs[MAXPROCS];
                        volatile int64_t ns[MAXPROCS]; } *sh;
        double v[16];
        bool failed = false;
        int rep, i, k;

        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
                return -1;
        for (rep = 0; rep < o->reps && !failed; rep++) {
                pid_t pid[MAXPROCS];
                double rate = 0;

                memset((void *)sh, 0, sizeof(*sh));
                for (i = 0; i < nproc; i++) {
                        pid[i] = bc_fork_tied(SIGKILL);
                        if (pid[i] < 0) {
                                /* The ones started spin on go: not left to
                                 * load the CPUs under every later figure. */
                                for (k = 0; k < i; k++) {
                                        kill(pid[k], SIGKILL);
                                        (void)bc_wait_child(pid[k]);
                                }
                                munmap((void *)sh, sizeof(*sh));
                                return -1;
                        }
                        if (pid[i] == 0) {
                                int64_t t0;
                                long n;

                                if (nproc > 1 && bc_ncpus() > 1)
                                        bc_pin_cpu(i);
                                /* Warm up (first touch of the pages), then line up. */
                                run_way(w, size, o->run_ns / 10);
                                __sync_fetch_and_add(&sh->ready, 1);
                                while (!sh->go)
                                        ;
                                t0 = bc_now_ns();
                                n = run_way(w, size, o->run_ns);
                                sh->ns[i] = bc_now_ns() - t0;
                                sh->pairs[i] = n;
                                _exit(n < 0 ? 1 : 0);
                        }
                }
                while (sh->ready < nproc)
                        ;
                sh->go = 1;
                for (i = 0; i < nproc; i++)
                        if (bc_wait_child(pid[i]) != 0)
                                rate = -1;
                for (i = 0; i < nproc && rate >= 0; i++) {
                        if (sh->pairs[i] < 0 || sh->ns[i] <= 0) {
                                rate = -1;
                                break;
                        }
                        rate += (double)sh->pairs[i] * 1e9 / (double)sh->ns[i];
                }
                v[rep] = rate;
                failed = rate < 0;
        }
        munmap((void *)sh, sizeof(*sh));
        /* A repetition that failed fails the figure: its -1 in the median
         * only lowered it, and the run passed. */
        return failed ? -1 : bc_median(v, (size_t)o->reps);
}

int main(int argc, char **argv)
{
        struct opts o = { 0, NULL, 200000000, 5 };
        double res[3][NSIZES][MAXPROCS];
        struct pb_lock_res lk;
        double pingpong;
        FILE *jf = NULL;
        size_t s;
        int i, np, ok = 1, lock_ok;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        o.quick = 1;
                } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
                        o.json = argv[++i];
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        printf("usage: pool-bench [--quick] [--json FILE]\n"
                               "  --quick      short runs (seconds)\n"
                               "  --json FILE  write every figure to FILE\n");
                        return 0;
                } else {
                        fprintf(stderr, "usage: pool-bench [--quick] [--json FILE]\n");
                        return 2;
                }
        }
        if (o.quick) {
                o.run_ns = 40000000;
                o.reps = 3;
        }
        if (brd_pool_create(64u << 20, BRD_POOL_POPULATE, &g_pool) < 0) {
                fprintf(stderr, "pool-bench: cannot create a pool\n");
                return 1;
        }
        pingpong = bc_cacheline_pingpong_ns(o.quick ? 20000 : 100000, 3, 0, 1);
        if (pingpong <= 0)
                pingpong = NAN;         /* a -errno: not a time (JSON null) */
        printf("pool-bench: alloc+free pairs/s (window %d live blocks, first+last byte written)\n",
               WINDOW);
        printf("cache-line ping-pong between the 2 CPUs: %.0f ns (%s)\n\n", pingpong,
               bc_placement_name(pingpong));
        for (s = 0; s < NSIZES; s++)
                for (np = 1; np <= MAXPROCS; np++) {
                        res[WAY_POOL][s][np - 1] = measure(WAY_POOL, sizes[s], np, &o);
                        res[WAY_MALLOC][s][np - 1] = measure(WAY_MALLOC, sizes[s], np, &o);
                        /* The segment-per-object way is measured with one process:
                         * it is syscall-bound and two would only share the kernel. */
                        res[WAY_SEGOBJ][s][np - 1] = np == 1 ?
                                measure(WAY_SEGOBJ, sizes[s], 1, &o) : 0;
                }
        printf("%8s %6s %14s %14s %14s %10s %10s\n", "size", "procs", "pool M/s", "malloc M/s",
               "seg/obj M/s", "pool/mall", "pool/seg");
        for (s = 0; s < NSIZES; s++)
                for (np = 1; np <= MAXPROCS; np++) {
                        double p = res[WAY_POOL][s][np - 1], m = res[WAY_MALLOC][s][np - 1];
                        double g = res[WAY_SEGOBJ][s][0];

                        if (p <= 0 || m <= 0 || g <= 0)
                                ok = 0;
                        if (np == 1)
                                printf("%8zu %6d %14.2f %14.2f %14.4f %9.2fx %9.0fx\n", sizes[s], np,
                                       p / 1e6, m / 1e6, g / 1e6, p / m, p / g);
                        else
                                printf("%8zu %6d %14.2f %14.2f %14s %9.2fx %10s\n", sizes[s], np,
                                       p / 1e6, m / 1e6, "-", p / m, "-");
                }
        printf("\ntargets: pool >= 0.5x malloc/free (1 process), >= 100x seg-per-object\n");
        lock_ok = pb_lock_measure(o.quick, &lk) == 0;
        if (!lock_ok) {
                fprintf(stderr, "pool-bench: the lock rows failed\n");
                ok = 0;
        } else {
                printf("\nthe pool's lock (large blocks), beside a bare futex lock in shared memory:\n");
                printf("%-44s %10s %10s %9s\n", "", "owner", "futex", "ratio");
                printf("%-44s %10.1f %10.1f %8.2fx\n", "lock+unlock, uncontended (ns)",
                       lk.pair_ns[0], lk.pair_ns[1], lk.pair_ns[0] / lk.pair_ns[1]);
                for (int h = 0; h < PB_LOCK_HOLDS; h++) {
                        printf("held %3lld ms: %-31s %10.1f %10.1f %8.3gx\n",
                               (long long)(lk.hold_ns[h] / 1000000), "unlock -> waiter has it, p50 (us)",
                               lk.handoff_us[h][0], lk.handoff_us[h][1],
                               lk.handoff_us[h][0] / lk.handoff_us[h][1]);
                        printf("%-44s %10.2f %10.2f\n", "  waiter's CPU while it waited (% of the hold)",
                               lk.waiter_cpu_pct[h][0], lk.waiter_cpu_pct[h][1]);
                }
                printf("(%d hand-offs per hold; the owner lock's waiter yields ~1.5 ms, then sleeps and"
                       " looks for\n a dead holder up to every 16 ms; the bare lock's sleeps at once"
                       " and never looks)\n", lk.handoffs);
        }
        if (o.json) {
                struct bc_json j;

                jf = fopen(o.json, "w");
                if (!jf) {
                        perror("pool-bench: --json");
                        ok = 0;
                } else {
                        bc_json_begin(&j, jf);
                        bc_json_str(&j, "bench", "pool");
                        bc_json_machine(&j);
                        bc_json_bool(&j, "quick", o.quick);
                        bc_json_num(&j, "pingpong_ns", pingpong);
                        bc_json_str(&j, "placement", bc_placement(pingpong));
                        bc_json_int(&j, "window", WINDOW);
                        bc_json_arr(&j, "results");
                        for (s = 0; s < NSIZES; s++)
                                for (np = 1; np <= MAXPROCS; np++) {
                                        double p = res[WAY_POOL][s][np - 1];
                                        double m = res[WAY_MALLOC][s][np - 1];

                                        bc_json_obj(&j, NULL);
                                        bc_json_int(&j, "size", (int64_t)sizes[s]);
                                        bc_json_int(&j, "procs", np);
                                        bc_json_num(&j, "pool_pairs_per_s", p);
                                        bc_json_num(&j, "malloc_pairs_per_s", m);
                                        bc_json_num(&j, "ratio_pool_malloc", p / m);
                                        if (np == 1) {
                                                double g = res[WAY_SEGOBJ][s][0];

                                                bc_json_num(&j, "segobj_pairs_per_s", g);
                                                bc_json_num(&j, "ratio_pool_segobj", p / g);
                                        }
                                        bc_json_close(&j);
                                }
                        bc_json_close(&j);
                        if (lock_ok) {
                                bc_json_obj(&j, "lock");
                                bc_json_int(&j, "handoffs", lk.handoffs);
                                bc_json_num(&j, "owner_pair_ns", lk.pair_ns[0]);
                                bc_json_num(&j, "futex_pair_ns", lk.pair_ns[1]);
                                bc_json_arr(&j, "holds");
                                for (int h = 0; h < PB_LOCK_HOLDS; h++) {
                                        bc_json_obj(&j, NULL);
                                        bc_json_int(&j, "hold_ns", lk.hold_ns[h]);
                                        bc_json_num(&j, "owner_handoff_us", lk.handoff_us[h][0]);
                                        bc_json_num(&j, "futex_handoff_us", lk.handoff_us[h][1]);
                                        bc_json_num(&j, "owner_waiter_cpu_pct", lk.waiter_cpu_pct[h][0]);
                                        bc_json_num(&j, "futex_waiter_cpu_pct", lk.waiter_cpu_pct[h][1]);
                                        bc_json_close(&j);
                                }
                                bc_json_close(&j);
                                bc_json_close(&j);
                        }
                        if (bc_json_end(&j) < 0 || fclose(jf))
                                ok = 0;
                }
        }
        brd_pool_close(g_pool);
        return ok ? 0 : 1;
}
