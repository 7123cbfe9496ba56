/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard for named segments (RELIABILITY B14).  A /dev/shm file
 * cannot be sealed, so any process of the user may shrink it under our
 * mapping; touching a page past the new end is then a SIGBUS.  Wayland's
 * answer (wl_shm_buffer_begin_access) is ours: the handler finds the
 * segment the fault hit, maps private zero pages over the whole of it, marks
 * it faulted and returns, so the access completes on zeros; the API then
 * says -EFAULT for it.  A fault anywhere else goes on to whatever handled
 * SIGBUS before.
 *
 * The host owns signal dispositions, so nothing is installed until the
 * application asks (brd_seg_sigbus_guard()).  Until then a named segment
 * that another process created is refused (-EPERM): the creator may trust
 * its own, nobody else may trust it unguarded.
 *
 * Every named mapping has a slot in a fixed table, whatever the guard's
 * state: the handler cannot take locks or walk the registry, so it reads
 * slots with plain atomic loads.  A slot is claimed with a CAS on @used,
 * published by a release store of @addr and withdrawn by storing 0 there
 * before the range is unmapped.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

struct guard_slot {
        AO_t used;              /* claimed */
        AO_t addr;              /* 0: nothing to guard (yet, or any more) */
        AO_t size;
        AO_t faulted;           /* the handler put zero pages here */
};

static struct guard_slot slots[BRD_SEG_MAX];
static AO_t slots_high;                         /* slots [0, high) were ever claimed */
static struct sigaction chained;                /* the SIGBUS action we replaced */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
        uintptr_t a = (uintptr_t)si->si_addr;
        size_t i, n = AO_load_acquire(&slots_high);
        int saved = errno;

        /* si_code > 0: a fault the kernel raised, not a kill() whose
         * si_addr means nothing. */
        for (i = 0; si->si_code > 0 && i < n; i++) {
                /* Pairs with the release store in brd__guard_add(): size
                 * is set before addr is published. */
                uintptr_t base = AO_load_acquire(&slots[i].addr);

                if (!base || a - base >= AO_load(&slots[i].size))
                        continue;
                if (mmap((void *)base, AO_load(&slots[i].size), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
                        break;
                AO_store_release(&slots[i].faulted, 1);
                errno = saved;
                return;         /* the access runs again, on zeros */
        }
        errno = saved;
        if (chained.sa_flags & SA_SIGINFO) {
                chained.sa_sigaction(sig, si, uc);
        } else if (chained.sa_handler == SIG_IGN && si->si_code <= 0) {
                return;         /* a kill() the host ignores */
        } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
                chained.sa_handler(sig);
        } else {
                /* The default action (a fault cannot be ignored): pending
                 * while this handler runs, taken on its return. */
                signal(SIGBUS, SIG_DFL);
                raise(SIGBUS);
        }
}

BRD_EXPORT int brd_seg_sigbus_guard(void)
{
        struct sigaction sa = { .sa_sigaction = on_sigbus,
                                .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART };
        struct sigaction old;
        int r = 0;

        sigemptyset(&sa.sa_mask);
        pthread_mutex_lock(&install_lock);
        if (sigaction(SIGBUS, NULL, &old) < 0)
                r = -errno;
        else if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigbus)) {
                /* @chained is read by the handler only once ours is in place. */
                chained = old;
                if (sigaction(SIGBUS, &sa, NULL) < 0)
                        r = -errno;
        }
        pthread_mutex_unlock(&install_lock);
        return r;
}

bool brd__guard_on(void)
{
        struct sigaction cur;

        /* Asked each time: the host may have put its own handler back. */
        return sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
               cur.sa_sigaction == on_sigbus;
}

int brd__guard_add(void *addr, size_t size)
{
        AO_t i, high;

        for (i = 0; i < BRD_SEG_MAX; i++) {
                if (AO_load(&slots[i].used) || !AO_compare_and_swap_full(&slots[i].used, 0, 1))
                        continue;
                AO_store(&slots[i].size, size);
                AO_store(&slots[i].faulted, 0);
                AO_store_release(&slots[i].addr, (AO_t)addr);
                while ((high = AO_load(&slots_high)) <= i &&
                       !AO_compare_and_swap_full(&slots_high, high, i + 1))
                        ;
                return (int)i;
        }
        return -EMFILE;
}

void brd__guard_drop(int slot)
{
        if (slot < 0)
                return;
        AO_store_release(&slots[slot].addr, 0);
        AO_store(&slots[slot].faulted, 0);
        AO_store_release(&slots[slot].used, 0);
}

bool brd__guard_faulted(int slot)
{
        return slot >= 0 && AO_load_acquire(&slots[slot].faulted);
}
