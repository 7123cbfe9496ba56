/* SPDX-License-Identifier: MIT */
/* pool-bench's lock rows (pb-lock.c): [0] the owner lock, [1] a bare futex lock. */
#ifndef BRD_BENCH_PB_LOCK_H
#define BRD_BENCH_PB_LOCK_H

#include <stdint.h>

/* The hand-offs' holds: a holder preempted for a tick or so, and a long
 * critical section (quick: 1 ms and 20 ms). */
#define PB_LOCK_HOLDS 2

struct pb_lock_res {
        double pair_ns[2];              /* lock + unlock, uncontended, fastest run */
        int64_t hold_ns[PB_LOCK_HOLDS];
        double handoff_us[PB_LOCK_HOLDS][2];     /* unlock -> the sleeping waiter has it, p50 */
        double waiter_cpu_pct[PB_LOCK_HOLDS][2]; /* the waiter's CPU time / the hold, p50 */
        int handoffs;                   /* per hold and lock */
};

/* Measure both locks (forks the hand-off's two processes); 0 or -1. */
int pb_lock_measure(int quick, struct pb_lock_res *res);

#endif
