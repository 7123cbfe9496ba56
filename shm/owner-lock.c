/* SPDX-License-Identifier: MIT */
/*
 * Owner locks: the locks in shared memory that the pool (its buddy lists)
 * and arrays (their writers) take, one AO_t each, 0 when free, else the
 * holder's owner word (brd__owner_word()).
 *
 * Not pthread mutexes: a robust one links itself into the locker's robust
 * list through pointers stored in the mutex, i.e. in memory a peer can
 * rewrite, and glibc (on unlock) and the kernel (at thread exit) then write
 * through them into our address space.  A word a peer scribbles can only
 * make us wait, bounded (-ETIMEDOUT), or report corruption (-EBADMSG).
 *
 * A holder whose process has exited (or is a zombie) is taken over: the
 * caller repairs what it may have left half done.  One that is alive is
 * waited for: spinning a little, then yielding, then sleeping with a
 * growing nap, so that a stopped holder costs its waiters no CPU to speak
 * of.  The wait is bounded by BRD__OWNER_LOCK_WAIT_NS.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "internal/brd-private.h"

#define OWNER_SPINS   64u               /* pause rounds, then yield */
#define OWNER_YIELDS  1024u             /* rounds before napping */
#define OWNER_CHECK   256u              /* rounds between looks while not napping */
#define OWNER_NAP_MAX 1000000l          /* ns: the longest nap */
#define OWNER_PID_MAX (1u << 22)        /* PID_MAX_LIMIT */

static void owner_nap(unsigned round)
{
        unsigned shift = round - OWNER_YIELDS;
        struct timespec ts = { 0, 0 };

        /* 10 us doubling to 1 ms: a holder that is merely slow is still
         * noticed soon, a stopped one is polled 1000 times a second. */
        ts.tv_nsec = shift >= 7 ? OWNER_NAP_MAX : 10000l << shift;
        nanosleep(&ts, NULL);   /* EINTR: one round sooner, harmless */
}

int brd__owner_lock(AO_t *lk)
{
        AO_t me = brd__owner_word();
        int64_t deadline = 0;
        unsigned round = 0;

        for (;;) {
                AO_t holder = AO_load(lk);
                uint32_t pid = (uint32_t)holder;

                /* Full barrier: pairs with the AO_store_release in
                 * brd__owner_unlock(); what the last holder wrote under the
                 * lock is visible to us. */
                if (holder == 0) {
                        if (AO_compare_and_swap_full(lk, 0, me))
                                return 0;
                        continue;
                }
                if (pid == 0 || pid > OWNER_PID_MAX)
                        return -EBADMSG;        /* no process has that pid */
                if (deadline == 0)
                        deadline = brd__now_ns() + BRD__OWNER_LOCK_WAIT_NS;
                round++;
                /* Look at /proc and the clock only now and then while
                 * spinning or yielding (a round is well under a microsecond,
                 * a look some), at every round once napping. */
                if (round >= OWNER_YIELDS || round % OWNER_CHECK == 0) {
                        /* Our own word is never taken over: another thread
                         * of ours holds it.  A gone holder's stores are all
                         * done; the full CAS keeps the caller's repair after
                         * them. */
                        if (holder != me && brd__owner_gone(holder) &&
                            AO_compare_and_swap_full(lk, holder, me))
                                return 1;
                        if (brd__now_ns() >= deadline)
                                return -ETIMEDOUT;
                }
                if (round < OWNER_SPINS)
                        brd__cpu_relax();
                else if (round < OWNER_YIELDS)
                        sched_yield();  /* the holder may need this CPU */
                else
                        owner_nap(round);
        }
}

void brd__owner_unlock(AO_t *lk)
{
        /* Pairs with the CAS in brd__owner_lock(): our stores under the
         * lock happen before the next holder's loads. */
        AO_store_release(lk, 0);
}
