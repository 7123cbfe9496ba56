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
 * application asks (brd_seg_sigbus_guard()).  Until then open and attach
 * refuse (-EPERM) a named segment that this process did not create and
 * still hold (its dev:ino in the registry; a name proves nothing, anyone
 * may make a file called anything).
 *
 * Every named mapping has a slot in a fixed table, whatever the guard's
 * state: the handler cannot take locks or walk the registry, so it reads
 * slots with plain atomic loads.  A slot is claimed with a CAS on @used and
 * filled and emptied under a sequence count (@gen: odd while it changes;
 * a handler that read it odd, or changed by the time it read the range,
 * passes the slot by), so that no handler takes one segment's address
 * with another's size.  The state in @faulted carries the generation it
 * is of: a handler late for a segment that was closed since cannot claim
 * the slot's next one, and drop waits for a cover already claimed, before
 * the range is unmapped: zero pages never land on memory reused meanwhile.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

struct guard_slot {
        AO_t used;              /* claimed */
        AO_t gen;               /* sequence count: odd while addr and size change */
        AO_t addr;              /* 0: nothing to guard (yet, or any more) */
        AO_t size;
        AO_t dontfork;          /* the range is MADV_DONTFORK (BRD_SEG_NOFORK): its cover too */
        AO_t faulted;           /* gen << 2 | FAULT_*: the handler put zero pages here */
};

enum { FAULT_NONE, FAULT_MAPPING, FAULT_DONE };
#define FAULT_STATE(w)  ((w) & 3)
#define FAULT_WORD(g, state) ((AO_t)(g) << 2 | (state))

static struct guard_slot slots[BRD_SEG_MAX];
static AO_t slots_high;                         /* slots [0, high) were ever claimed */
/* The SIGBUS action the guard replaced, in one of two copies: a second
 * install writes the other and then switches, so that a handler running
 * meanwhile never reads a copy half written. */
static struct sigaction chained[2];
static AO_t chained_cur;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
/* The chained actions this thread is inside (nested: deliveries that
 * SA_NODEFER let in), and the context of the innermost delivery
 * (initial-exec: no allocation on first use, safe in a handler).  That
 * action calling the guard's handler again with that context, or with
 * none, handed the signal back (ping-pong); a handler that hands it back
 * with contexts of its own is stopped by the depth. */
static __thread int chain_depth __attribute__((tls_model("initial-exec")));
static __thread void *chain_uc __attribute__((tls_model("initial-exec")));
#define CHAIN_DEPTH_MAX 8
/* The last fault this thread handed on whose action returned, when it
 * returned, and how many times in a row it came straight back.  An action
 * that returns from a fault it did not cure makes the access fault again:
 * a crash reporter that "restores its predecessor" (the guard, put back
 * over it) and returns, expecting the next delivery to end the process,
 * would be called again for ever.  The same address and code coming back
 * that often, each within REFAULT_WINDOW_NS of the last return, with no
 * other SIGBUS between, is taken as that loop; a fault the action cured
 * that comes back later is a new one.  (clock_gettime() is
 * async-signal-safe; the coarse clock costs a few ns.) */
static __thread uintptr_t refault_addr __attribute__((tls_model("initial-exec")));
static __thread int64_t refault_ns __attribute__((tls_model("initial-exec")));
static __thread int refault_code __attribute__((tls_model("initial-exec")));
static __thread int refault_n __attribute__((tls_model("initial-exec")));
#define REFAULT_MAX 8
#define REFAULT_WINDOW_NS 1000000000ll

/* The default action (a fault cannot be ignored): pending while this
 * handler runs with SIGBUS blocked, taken on its return.  Queued again
 * with its own siginfo (a process may queue any code to itself), so a
 * core dump or a tracer sees the fault and its address, not a raise(). */
static void take_default(int sig, siginfo_t *si)
{
        signal(sig, SIG_DFL);
        if (syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, si) != 0)
                raise(sig);
}

/*
 * Private zero pages over @s's range: true once mapped.  NORESERVE: no commit charge for the whole range at once (a
 * sparse file may be far larger than RAM + swap, which the heuristic
 * overcommit refuses in one mapping); pages are charged as they are
 * written.  A new mapping does not carry the old one's MADV_DONTFORK, so a
 * NOFORK segment's cover is made elsewhere, marked, and only then moved
 * over the range (mremap() replaces it at once): no fork ever copies it
 * into a child, where the range is a hole that a child handler registered
 * before ours may fill (brd_fork_child() leaves it alone).  Marked after
 * the mmap in place instead, a fork in between gave the child a copy, and
 * the child could not tell that copy from another component's mapping.
 */
static bool guard_cover(const struct guard_slot *s, uintptr_t base, size_t size)
{
        void *p;

        if (!AO_load(&s->dontfork))
                return mmap((void *)base, size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) != MAP_FAILED;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                return false;
        if (madvise(p, size, MADV_DONTFORK) < 0 ||
            mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)base) == MAP_FAILED) {
                (void)munmap(p, size);
                return false;
        }
        return true;
}

/* The thread's signal mask as the kernel keeps it (_NSIG / 8 bytes of the
 * sigset_t), no signal left out. */
static void sig_mask(int how, const sigset_t *set, sigset_t *old)
{
        (void)syscall(SYS_rt_sigprocmask, how, set, old, _NSIG / 8);
}

/*
 * A fault the kernel raised at @a inside a guarded segment: zero pages over
 * all of it, once.  Threads that fault in it meanwhile return and fault
 * again until they are there: a second mapping over the first would wipe
 * what the first thread wrote since.  false if @a is in none, or the zero
 * pages could not be mapped.
 */
static bool guard_fault(uintptr_t a)
{
        size_t i, n = AO_load_acquire(&slots_high);
        sigset_t all, old;
        bool done;

        for (i = 0; i < n; i++) {
                struct guard_slot *s = &slots[i];
                /* Pairs with the release stores of gen in brd__guard_add()
                 * and slot_drop(). */
                AO_t g = AO_load_acquire(&s->gen);
                uintptr_t base = AO_load(&s->addr);
                size_t size = AO_load(&s->size);

                /* The range read before gen is read again. */
                AO_nop_read();
                if ((g & 1) || AO_load(&s->gen) != g || !base || a - base >= size)
                        continue;
                /* No signal between the claim and its end: a handler that
                 * never returned here (a siglongjmp() out of it) would leave
                 * the slot claimed for good, and slot_drop(), under the fork
                 * lock, waits for it: every fork() of the process would hang.
                 * Every signal, glibc's too, so through the system call: an
                 * asynchronous cancel (SIGCANCEL) unwinds, and a setuid() in
                 * another thread (SIGSETXID) then waits for the mapping.
                 * Only here: a chained action still runs with its own mask.
                 * Filled by hand: sigfillset() leaves those two out. */
                memset(&all, 0xff, sizeof(all));
                sig_mask(SIG_BLOCK, &all, &old);
                done = AO_compare_and_swap_full(&s->faulted, FAULT_WORD(g, FAULT_NONE),
                                                FAULT_WORD(g, FAULT_MAPPING));
                if (done) {
                        done = guard_cover(s, base, size);
                        /* Not covered: the next fault tries again (or dies). */
                        AO_store_release(&s->faulted, FAULT_WORD(g, done ? FAULT_DONE : FAULT_NONE));
                        sig_mask(SIG_SETMASK, &old, NULL);
                        return done;
                }
                sig_mask(SIG_SETMASK, &old, NULL);
                /* Covered or being covered by another thread; or the slot
                 * moved on to another segment meanwhile: not ours. */
                return AO_load(&s->faulted) >> 2 == g;
        }
        return false;
}

/* Hand the signal to the action the guard replaced, as the kernel would
 * have delivered it there: with its mask, SA_NODEFER and SA_RESETHAND. */
static void chain(int sig, siginfo_t *si, void *uc)
{
        AO_t cur = AO_load_acquire(&chained_cur);
        struct sigaction *c = &chained[cur];
        void (*handler)(int) = c->sa_handler;
        void (*action)(int, siginfo_t *, void *) = c->sa_sigaction;
        int flags = c->sa_flags;
        /* Forced by the kernel at an access, which runs again if the
         * action returns. */
        bool fault = si->si_code > 0 && si->si_code != BUS_MCEERR_AO;
        sigset_t mask, old;
        void *prev;

        if (fault && refault_n && refault_addr == (uintptr_t)si->si_addr &&
            refault_code == si->si_code &&
            brd__clock_ns(CLOCK_MONOTONIC_COARSE) - refault_ns < REFAULT_WINDOW_NS) {
                if (++refault_n > REFAULT_MAX) {
                        refault_n = 0;
                        take_default(sig, si);
                        return;
                }
        } else {
                refault_n = 0;
        }
        if ((chain_depth && (!uc || uc == chain_uc)) || chain_depth >= CHAIN_DEPTH_MAX ||
            handler == SIG_DFL) {
                /* That action handed it back to us (it saved the guard as
                 * its own predecessor): no endless ping-pong. */
                take_default(sig, si);
                return;
        }
        if (handler == SIG_IGN) {
                /* A fault is forced past SIG_IGN; a kill() the host
                 * ignores, or an early memory-failure warning (BUS_MCEERR_AO,
                 * sent, not forced), is dropped as the kernel drops it. */
                if (fault)
                        take_default(sig, si);
                return;
        }
        /* SA_RESETHAND resets the action it was delivered to: that one,
         * whose copy we hold, not the guard, which still covers its
         * segments.  Taken, as the kernel does at delivery, before the
         * signal may come in again: of two deliveries one runs it, the
         * other finds the default. */
        if ((flags & SA_RESETHAND) &&
            !__atomic_compare_exchange_n(&c->sa_handler, &handler, SIG_DFL, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                take_default(sig, si);
                return;
        }
        /* The mask the kernel would have set: what is blocked now (the
         * interrupted code's, and whatever a handler that called us
         * blocks), its action's, and the signal itself unless SA_NODEFER
         * (ours blocks it while the guard runs: a NODEFER handler must not
         * run with it blocked). */
        pthread_sigmask(SIG_BLOCK, NULL, &mask);
        sigorset(&mask, &mask, &c->sa_mask);
        if (!(flags & SA_NODEFER))
                sigaddset(&mask, sig);
        else
                sigdelset(&mask, sig);
        pthread_sigmask(SIG_SETMASK, &mask, &old);
        prev = chain_uc;
        chain_uc = uc;
        chain_depth++;
        if (flags & SA_SIGINFO)
                action(sig, si, uc);
        else
                handler(sig);
        chain_depth--;
        chain_uc = prev;
        if (fault) {
                if (!refault_n) {
                        refault_addr = (uintptr_t)si->si_addr;
                        refault_code = si->si_code;
                        refault_n = 1;
                }
                refault_ns = brd__clock_ns(CLOCK_MONOTONIC_COARSE);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
        int saved = errno;

        /* BUS_ADRERR: an access past the file's end, what a truncation
         * causes (not a kill(), whose si_addr means nothing, nor an
         * alignment or memory error, which zero pages would not cure). */
        if (!(si->si_code == BUS_ADRERR && guard_fault((uintptr_t)si->si_addr)))
                chain(sig, si, uc);
        errno = saved;          /* else the access runs again, on zeros */
}

BRD_EXPORT int brd_seg_sigbus_guard(void)
{
        struct sigaction sa = { .sa_sigaction = on_sigbus,
                                .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART };
        struct sigaction old, prev;
        AO_t next;
        int r = 0;

        sigemptyset(&sa.sa_mask);
        pthread_mutex_lock(&install_lock);
        if (sigaction(SIGBUS, NULL, &old) < 0) {
                r = -errno;
        } else if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigbus)) {
                next = !AO_load(&chained_cur);
                chained[next] = old;
                AO_store_release(&chained_cur, next);
                if (sigaction(SIGBUS, &sa, &prev) < 0) {
                        r = -errno;
                } else if (prev.sa_handler != old.sa_handler || prev.sa_flags != old.sa_flags ||
                           memcmp(&prev.sa_mask, &old.sa_mask, sizeof(old.sa_mask))) {
                        /* Another thread's sigaction() came between the
                         * look and the install: what it installed is what
                         * we replaced, and what a SIGBUS not ours goes to. */
                        next = !next;
                        chained[next] = prev;
                        AO_store_release(&chained_cur, next);
                }
        }
        pthread_mutex_unlock(&install_lock);
        return r;
}

/*
 * Around fork() (shm/fork-state.c's handlers).  The install lock is held
 * across it, so that no child inherits it held by a thread it does not
 * have.  A slot that another thread's handler had claimed (FAULT_MAPPING)
 * but not yet covered is covered in the child, where that thread is not:
 * left so, every fault there would run again forever.  (Had that handler
 * mapped the zero pages already, mapping them again loses, in the child,
 * what another thread wrote there in the instant before the fork.)
 * Async-signal-safe, as a child handler must be.
 */
void brd__guard_fork_prepare(void)
{
        pthread_mutex_lock(&install_lock);
}

void brd__guard_fork_parent(void)
{
        pthread_mutex_unlock(&install_lock);
}

void brd__guard_fork_child(void)
{
        size_t i, n = AO_load(&slots_high);

        for (i = 0; i < n; i++) {
                uintptr_t base = AO_load(&slots[i].addr);
                AO_t w = AO_load(&slots[i].faulted);

                if (!base || FAULT_STATE(w) != FAULT_MAPPING)
                        continue;
                /* Not covered: the next fault tries again, and dies of
                 * SIGBUS if it cannot either. */
                AO_store(&slots[i].faulted,
                         FAULT_WORD(w >> 2, guard_cover(&slots[i], base, AO_load(&slots[i].size)) ?
                                                    FAULT_DONE : FAULT_NONE));
        }
        pthread_mutex_unlock(&install_lock);
}

bool brd__guard_on(void)
{
        struct sigaction cur;

        /* Asked each time: the host may have put its own handler back. */
        return sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
               cur.sa_sigaction == on_sigbus;
}

int brd__guard_add(void *addr, size_t size, bool dontfork)
{
        AO_t i, high, g;

        for (i = 0; i < BRD_SEG_MAX; i++) {
                if (AO_load(&slots[i].used) || !AO_compare_and_swap_full(&slots[i].used, 0, 1))
                        continue;
                /* Odd while it changes (the full barrier keeps the stores
                 * below after it), even and released once filled. */
                g = AO_load(&slots[i].gen) + 1;
                AO_store(&slots[i].gen, g);
                AO_nop_full();
                AO_store(&slots[i].size, size);
                AO_store(&slots[i].dontfork, dontfork);
                AO_store(&slots[i].addr, (AO_t)addr);
                AO_store(&slots[i].faulted, FAULT_WORD(g + 1, FAULT_NONE));
                AO_store_release(&slots[i].gen, g + 1);
                while ((high = AO_load(&slots_high)) <= i &&
                       !AO_compare_and_swap_full(&slots_high, high, i + 1))
                        ;
                return (int)i;
        }
        return -EMFILE;
}

/*
 * Empty @slot (-1: none) for brd__guard_add() again, at the next even
 * generation.  Odd first: a handler from now on passes the slot by.  One
 * that read it before loses its CAS on faulted to ours, which moves the
 * word to the next generation; a cover it already claimed is waited for
 * if @wait (it maps over our range, which is unmapped after), not in a
 * forked child, where no thread would ever end it.
 */
static void slot_drop(int slot, bool wait)
{
        struct guard_slot *s;
        AO_t g;

        if (slot < 0)
                return;
        s = &slots[slot];
        g = AO_load(&s->gen);
        AO_store(&s->gen, g + 1);
        AO_nop_full();
        for (;;) {
                AO_t w = AO_load_acquire(&s->faulted);

                if (wait && w == FAULT_WORD(g, FAULT_MAPPING))
                        sched_yield();
                else if (AO_compare_and_swap_full(&s->faulted, w, FAULT_WORD(g + 2, FAULT_NONE)))
                        break;
        }
        AO_store(&s->addr, 0);
        AO_store_release(&s->gen, g + 2);
        AO_store_release(&s->used, 0);
}

void brd__guard_drop(int slot)
{
        slot_drop(slot, true);
}

void brd__guard_forget(int slot)
{
        slot_drop(slot, false);
}

void brd__guard_test_claim(const struct brd_seg *seg)
{
        struct guard_slot *s = &slots[seg->guard];

        AO_store(&s->faulted, FAULT_WORD(AO_load(&s->gen), FAULT_MAPPING));
}

bool brd__guard_faulted(int slot)
{
        return slot >= 0 && FAULT_STATE(AO_load_acquire(&slots[slot].faulted)) != FAULT_NONE;
}
