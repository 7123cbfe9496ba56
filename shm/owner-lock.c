/* SPDX-License-Identifier: MIT */
/*
 * Owner locks: the locks in shared memory that the pool (its buddy lists)
 * and arrays (their writers) take, one AO_t each, 0 when free, else the
 * holder's owner word (brd__owner_word()), with BRD__OWNER_WAITERS set once
 * a waiter sleeps on it.
 *
 * Not pthread mutexes: a robust one links itself into the locker's robust
 * list through pointers stored in the mutex, i.e. in memory a peer can
 * rewrite, and glibc (on unlock) and the kernel (at thread exit) then write
 * through them into our address space.  A word a peer scribbles can only
 * make us wait, bounded (-ETIMEDOUT), or report corruption (-EBADMSG).
 *
 * A holder whose process has exited (or is a zombie) is taken over: the
 * caller repairs what it may have left half done.  One that is alive is
 * waited for: spinning a little, then yielding, then asleep in a shared
 * futex on the word's low half (pid and waiters bit), which the holder's
 * unlock wakes when the bit is set.  The sleep is cut into rounds of at
 * most OWNER_CHECK_MAX_NS to look for the holder's death, which no unlock
 * announces.  The wait is bounded by BRD__OWNER_LOCK_WAIT_NS.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal/brd-private.h"

#define OWNER_SPINS   64u               /* pause rounds, then yield */
/* How long a waiter yields before it sleeps: timed, not counted, for a
 * yield lasts ~1.5 us on an idle CPU and a scheduler slice (ms) on a busy
 * one, where 960 counted yields took seconds and put off the looks for a
 * dead holder and the deadline.  1.5 ms: what 960 took here, idle. */
#define OWNER_YIELD_NS 1500000ll
#define OWNER_CHECK   256u              /* rounds between looks while yielding */
#define OWNER_CHECK_MIN_NS 10000ll      /* the first sleep's bound, doubling */
/* The longest: a dead holder is seen within it.  Each look costs the waiter
 * a wake-up and a /proc read: with a 1 ms cap, a waiter behind a 100 ms hold
 * used 3.9-4.0% of a core, with this one 2.4-2.9% (pool-bench, two
 * interleaved full runs of each); the rest is the yield phase. */
#define OWNER_CHECK_MAX_NS 16000000ll
#define OWNER_PID_MAX (1u << 22)        /* PID_MAX_LIMIT */

_Static_assert(OWNER_PID_MAX <= BRD__OWNER_WAITERS, "a pid never sets the waiters bit");

/* The futex word: the lock word's low half (pid and waiters bit). */
static uint32_t *owner_futex(AO_t *lk)
{
        uint32_t *w = (uint32_t *)(void *)lk;

        return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? w + 1 : w;
}

/*
 * Sleep while the word's low half is @low, at most @ns.  Not
 * FUTEX_PRIVATE_FLAG: the word is shared between processes.  Every outcome
 * (woken, the word already changed, timed out, a signal) sends the caller
 * back to look at the word.
 */
static void owner_sleep(AO_t *lk, uint32_t low, int64_t ns)
{
        struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

        (void)syscall(SYS_futex, owner_futex(lk), FUTEX_WAIT, low, &ts, NULL, 0);
}

/* Wake every sleeper of owner_sleep(): they all look at the word again. */
static void owner_wake(AO_t *lk)
{
        (void)syscall(SYS_futex, owner_futex(lk), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int brd__owner_lock(AO_t *lk)
{
        int64_t deadline = 0, yield_end = 0, check = OWNER_CHECK_MIN_NS;
        unsigned round = 0;
        AO_t me, want;
        int e = brd__owner_word(&me);

        if (e < 0)
                return e;
        want = me;

        for (;;) {
                AO_t w = AO_load(lk);
                AO_t holder = w & ~(AO_t)BRD__OWNER_WAITERS;
                uint32_t pid = (uint32_t)holder;
                int64_t now;

                /* Full barrier: pairs with the release store in
                 * brd__owner_unlock(); what the last holder wrote under the
                 * lock is visible to us. */
                if (w == 0) {
                        if (AO_compare_and_swap_full(lk, 0, want))
                                return 0;
                        continue;
                }
                if (pid == 0 || pid > OWNER_PID_MAX)
                        return -EBADMSG;        /* no process has that pid */
                if (deadline == 0)
                        deadline = brd__now_ns() + BRD__OWNER_LOCK_WAIT_NS;
                round++;
                if (round < OWNER_SPINS) {
                        brd__cpu_relax();
                        continue;
                }
                /* Look at /proc only now and then while yielding (a yield
                 * is a microsecond or more, a look some), at the phase's
                 * end, and at every round once asleep. */
                now = brd__now_ns();
                if (yield_end == 0)
                        yield_end = now + OWNER_YIELD_NS;
                if (now < yield_end && round % OWNER_CHECK != 0) {
                        sched_yield();          /* the holder may need this CPU */
                        continue;
                }
                /* Our own word is never taken over: another thread of ours
                 * holds it.  A gone holder's stores are all done; the full
                 * CAS keeps the caller's repair after them.  The waiters bit
                 * stays: the sleepers it announced are woken by our unlock. */
                if (holder != me && brd__owner_gone(holder) &&
                    AO_compare_and_swap_full(lk, w, me | (w & BRD__OWNER_WAITERS)))
                        return 1;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (now < yield_end)
                        continue;
                /* Announce a sleeper, then sleep unless the word moved on.
                 * Having slept, take the lock with the bit set: other
                 * sleepers may remain, and our unlock must wake them. */
                if (!(w & BRD__OWNER_WAITERS) &&
                    !AO_compare_and_swap_full(lk, w, w | BRD__OWNER_WAITERS))
                        continue;
                want = me | BRD__OWNER_WAITERS;
                owner_sleep(lk, (uint32_t)(w | BRD__OWNER_WAITERS),
                            deadline - now < check ? deadline - now : check);
                check = check * 2 < OWNER_CHECK_MAX_NS ? check * 2 : OWNER_CHECK_MAX_NS;
        }
}

void brd__owner_unlock_mine(AO_t *lk)
{
        AO_t me, w;

        if (brd__owner_word(&me) < 0)
                return;         /* cached since our lock took it: never */
        do {
                w = AO_load(lk);
                if ((w & ~(AO_t)BRD__OWNER_WAITERS) != me)
                        return;
        } while (!AO_compare_and_swap_release(lk, w, 0));
        if (w & BRD__OWNER_WAITERS)
                owner_wake(lk);
}

void brd__owner_unlock(AO_t *lk)
{
        /*
         * A load and a store, not a CAS: a locked instruction here costs a
         * locked block's alloc + free 32 -> 44 ns, the load 1 ns (fastest of
         * 12 runs of 300,000, one process, Zen 5; the runs are bimodal).  A
         * waiter that sets the bit between the two (this thread preempted
         * right there) is not woken: it sleeps out its bound (10 us at its
         * first sleep, doubling up to OWNER_CHECK_MAX_NS in a long wait),
         * then sees the lock free.
         */
        AO_t w = AO_load(lk);

        /* Pairs with the CAS in brd__owner_lock(): our stores under the
         * lock happen before the next holder's loads. */
        AO_store_release(lk, 0);
        if (BRD_UNLIKELY(w & BRD__OWNER_WAITERS))
                owner_wake(lk);
}
