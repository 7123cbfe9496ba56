/* SPDX-License-Identifier: MIT */
/* pool-bench's lock rows (pb-lock.c): [0] the owner lock, [1] a bare futex lock. */
#ifndef BRD_BENCH_PB_LOCK_H
#define BRD_BENCH_PB_LOCK_H

#include <stdint.h>

struct pb_lock_res {
        double pair_ns[2];              /* lock + unlock, uncontended, fastest run */
        double handoff_us[2];           /* unlock -> the sleeping waiter has it, p50 */
        double waiter_cpu_pct[2];       /* the waiter's CPU time / the hold, p50 */
        int64_t hold_ns;
        int handoffs;
};

/* Measure both locks (forks the hand-off's two processes); 0 or -1. */
int pb_lock_measure(int quick, struct pb_lock_res *res);

#endif
