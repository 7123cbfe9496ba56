/* SPDX-License-Identifier: MIT */
/*
 * pool-bench's lock rows: the owner lock (shm/owner-lock.c: the pool's
 * large blocks, arrays' writers) beside a bare futex lock in shared memory
 * (three states, FUTEX_WAIT / FUTEX_WAKE: what the kernel offers, with no
 * dead-holder detection).  Two figures each:
 *
 *  - lock + unlock with nobody else wanting it, one process;
 *  - a hand-off: a holder pinned to one CPU takes the lock, a waiter
 *    pinned to the other comes to take it too, and the holder keeps it
 *    @hold ns from then on while the waiter waits (the
 *    owner lock: spins, yields about 1.5 ms, then sleeps in a futex the
 *    unlock wakes, looking for a dead holder after 10 us, then twice as long
 *    each time, up to every 16 ms; the bare lock sleeps at once).  Two
 *    holds: 1 ms (a holder preempted for a tick: the waiter is still
 *    yielding) and 100 ms (asleep).  Measured: unlock -> the waiter has the
 *    lock (p50), and the waiter's CPU time while it waited, as a share of
 *    the hold.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/brd-private.h"
#include "bench-common.h"
#include "pb-lock.h"

#define HANDOFFS_MAX 15

/* The bare lock: 0 free, 1 held, 2 held with (possibly) sleepers. */
static void fx_lock(uint32_t *f)
{
        uint32_t c = 0;

        if (__atomic_compare_exchange_n(f, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
        if (c != 2)
                c = __atomic_exchange_n(f, 2, __ATOMIC_ACQUIRE);
        while (c != 0) {
                (void)syscall(SYS_futex, f, FUTEX_WAIT, 2, NULL, NULL, 0);
                c = __atomic_exchange_n(f, 2, __ATOMIC_ACQUIRE);
        }
}

static void fx_unlock(uint32_t *f)
{
        if (__atomic_exchange_n(f, 0, __ATOMIC_RELEASE) == 2)
                (void)syscall(SYS_futex, f, FUTEX_WAKE, 1, NULL, NULL, 0);
}

struct page {
        AO_t owner;                     /* the owner lock */
        uint32_t fx;                    /* the bare lock */
        volatile int held;              /* the holder has it */
        volatile int waiting;           /* the waiter is about to take it */
        volatile int64_t t_unlock, t_got, cpu_ns;
};

static int take(struct page *pg, int bare)
{
        if (bare) {
                fx_lock(&pg->fx);
                return 0;
        }
        return brd__owner_lock(&pg->owner);
}

static void give(struct page *pg, int bare)
{
        if (bare)
                fx_unlock(&pg->fx);
        else
                brd__owner_unlock(&pg->owner);
}

static int64_t cpu_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Fastest of @reps runs of @n uncontended pairs, ns a pair. */
static double pair_ns(struct page *pg, int bare, long n, int reps)
{
        double best = 0;

        for (int r = 0; r < reps; r++) {
                int64_t t = bc_now_ns();

                for (long i = 0; i < n; i++) {
                        if (take(pg, bare) != 0)
                                return -1;
                        give(pg, bare);
                }
                t = bc_now_ns() - t;
                if (r == 0 || (double)t / (double)n < best)
                        best = (double)t / (double)n;
        }
        return best;
}

/* One hand-off; 0, or -1 when a process failed. */
static int handoff(struct page *pg, int bare, int64_t hold, int pin)
{
        pid_t holder, waiter;
        int ok;

        pg->held = 0;
        pg->waiting = 0;
        holder = bc_fork_tied(SIGKILL);
        if (holder < 0)
                return -1;
        if (holder == 0) {
                int64_t end;

                if (pin)
                        bc_pin_cpu(0);
                if (take(pg, bare) != 0)
                        _exit(1);
                pg->held = 1;
                /* The hold starts when the waiter waits: its fork and
                 * migration are no part of the hand-off. */
                while (!pg->waiting)
                        ;
                end = bc_now_ns() + hold;
                while (bc_now_ns() < end)
                        ;
                pg->t_unlock = bc_now_ns();
                give(pg, bare);
                _exit(0);
        }
        while (!pg->held) {
                if (waitpid(holder, NULL, WNOHANG) == holder)
                        return -1;      /* it could not take the lock */
                sched_yield();
        }
        waiter = bc_fork_tied(SIGKILL);
        if (waiter < 0) {
                pg->waiting = 1;        /* no waiter: the holder's hold starts anyway */
                bc_wait_child(holder);
                return -1;
        }
        if (waiter == 0) {
                int64_t c0;

                if (pin)
                        bc_pin_cpu(1);
                c0 = cpu_ns();
                pg->waiting = 1;
                if (take(pg, bare) != 0)
                        _exit(1);
                pg->t_got = bc_now_ns();
                pg->cpu_ns = cpu_ns() - c0;
                give(pg, bare);
                _exit(0);
        }
        /* The waiter first: one that died before it waited must not leave
         * the holder waiting for it. */
        ok = bc_wait_child(waiter) == 0;
        pg->waiting = 1;
        ok = bc_wait_child(holder) == 0 && ok;
        return ok ? 0 : -1;
}

int pb_lock_measure(int quick, struct pb_lock_res *res)
{
        struct page *pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        int pin = bc_ncpus() > 1, bare, h, n = quick ? 5 : HANDOFFS_MAX;
        double lat[HANDOFFS_MAX], cpu[HANDOFFS_MAX];

        if (pg == MAP_FAILED)
                return -1;
        res->hold_ns[0] = 1000000;
        res->hold_ns[1] = quick ? 20000000 : 100000000;
        res->handoffs = n;
        for (bare = 0; bare <= 1; bare++) {
                res->pair_ns[bare] = pair_ns(pg, bare, quick ? 200000 : 1000000, quick ? 3 : 7);
                for (h = 0; h < PB_LOCK_HOLDS; h++) {
                        for (int i = 0; i < n; i++) {
                                if (handoff(pg, bare, res->hold_ns[h], pin) < 0) {
                                        munmap(pg, 4096);
                                        return -1;
                                }
                                lat[i] = (double)(pg->t_got - pg->t_unlock) / 1e3;
                                cpu[i] = 100.0 * (double)pg->cpu_ns / (double)res->hold_ns[h];
                        }
                        res->handoff_us[h][bare] = bc_median(lat, (size_t)n);
                        res->waiter_cpu_pct[h][bare] = bc_median(cpu, (size_t)n);
                }
        }
        munmap(pg, 4096);
        return res->pair_ns[0] > 0 && res->pair_ns[1] > 0 ? 0 : -1;
}
