/* SPDX-License-Identifier: MIT */
/*
 * The ring's wait.
 *
 * A call that cannot progress spins for a budget, then sleeps (Dekker's
 * protocol, see ring.c): it arms SLEEPING in its side, fences, re-checks
 * the ring, and waits.  For its first RING_FUTEX_MS it waits in
 * futex_waitv() on the peer's bell word and its interrupt generation; then
 * (or where futexes fail, in BRD_RING_EINTR mode, and for brd_ring_fd()
 * users) in the endpoint's epoll set on the doorbell, the interrupt eventfd
 * and the peer's pidfd.  A futex sleep wakes sooner than one in an epoll
 * set (docs/bench-log.md, tenth session), but only the set watches the
 * peer's death.  The peer is watched through a
 * pidfd of the pid stamped in its side, checked against its /proc start
 * time (pid reuse), or with brd__pid_gone() (kill(0), /proc: a zombie is
 * gone) where no pidfd can be had; a peer gone for good ends the endpoint
 * (brd__ring_gone()).  Also the lag wait
 * (brd__ring_lag_wait()), which lets the other side get ahead without a
 * system call.
 */
#include <errno.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "io.h"

static int sys_pidfd_open(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* ------------------------------------------------------------- waiting */

/* 1 when the call can progress: a frame to read, or room up to @end. */
static int ring_ready(struct brd_ring *r, uint64_t end)
{
        int e;

        if (r->role == RING_CONS) {
                e = cons_refresh(r);
                return e < 0 ? e : r->peer - r->pos >= BRD_RING_FRAME_HDR;
        }
        e = prod_refresh(r);
        return e < 0 ? e : end - r->peer <= r->cap;
}

int brd__fence_policy = BRD_FENCE_AUTO;
int brd__ring_futex_ms = RING_FUTEX_MS;

/* The membarrier of an arm, timed for the fence mode (brd-ring.h). */
static void ring_membarrier(struct brd_ring *r)
{
        int64_t t = brd__now_ns();

        if (brd__membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) < 0) {
                r->mb_failed = true;    /* poll with a short bound while the peer skips fences */
                return;
        }
        r->mb_ns = brd__ring_mb_avg(r->mb_ns, brd__now_ns() - t);
}

/* Arm a sleep; @futex: in futex_waitv() (the peer rings our futex). */
static void ring_arm(struct brd_ring *r, bool futex)
{
        /* Only we write our side: what we ask now, read back (a scribbled
         * value only makes us ask, or not, until the next arm). */
        bool asking = AO_load(&r->own->fence_req) != 0, req;

        ring_stamp_cpu(r);
        /* Ask the peer to fence, or stop asking (brd-ring.h).  Before the
         * state store: a publisher that sees us asleep reads it after. */
        if (brd__fence_policy != BRD_FENCE_AUTO)
                req = brd__fence_policy == BRD_FENCE_ALWAYS;
        else
                req = r->mb_failed || brd__ring_fence_want(r->mb_ns, asking);
        if (req != asking)
                AO_store(&r->own->fence_req, req);
        r->seq++;
        AO_store(&r->own->state, r->seq * BRD_RING_ST_SEQ1 | BRD_RING_ST_SLEEPING |
                                         (futex ? BRD_RING_ST_FUTEX : 0));
        r->armed = true;
        /* Dekker, sleeper half: SLEEPING must be visible before we re-read
         * the peer's index; pairs with the fence in ring_publish_quiet().  If
         * the peer skips that fence (asym), force one on its CPU.  Acquire:
         * pairs with the release of asym 0 in brd__ring_bell_for(), after
         * which the peer's unfenced publishes are visible to us. */
        AO_nop_full();
        r->arm_asym = AO_load_acquire(&r->peer_side->asym) != 0;
        if (r->arm_asym && !r->mb_failed)
                ring_membarrier(r);
}

static void ring_disarm(struct brd_ring *r)
{
        if (r->armed) {
                AO_store(&r->own->state, r->seq * BRD_RING_ST_SEQ1);
                r->armed = false;
        }
}

static void peer_unwatch(struct brd_ring *r)
{
        if (r->pidfd >= 0) {
                (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->pidfd, NULL);
                brd__close(r->pidfd);
                r->pidfd = -1;
        }
}

/* Where no pidfd watches the peer, its death is polled: is the stamped
 * process gone now (brd__pid_gone(): exited, a zombie, or its pid reused)? */
static bool peer_gone_polled(const struct brd_ring *r)
{
        return r->no_pidfd && r->peer_pid > 0 &&
               brd__pid_gone((uint64_t)r->peer_pid, r->peer_start, UINT64_MAX);
}

/*
 * After the pidfd pins the process: is it still the one stamped, or its pid
 * reused?  A start time that cannot be read for now (out of fds or memory,
 * a signal) is no verdict: every watch looks again, and meanwhile a sleep
 * is bounded (wait_bound_ms()), or the pidfd of a pid reused by a living
 * process would hold the wait until that one ends.  One unknown for good
 * (no /proc of ours) proves nothing, as when the peer stamped none.
 */
static void peer_check_start(struct brd_ring *r)
{
        uint64_t now;

        r->peer_unsure = brd__proc_start_time_of(r->peer_pid, &now) < 0 && r->peer_start;
        r->peer_dead = r->peer_start && now && now != r->peer_start;
}

/*
 * Watch the process stamped in the peer's side: a pidfd, opened lazily and
 * checked against the stamped start time (pid reuse).  1: that peer is dead;
 * 0: alive, or not attached yet (a peer that never attached is not dead).
 */
static int peer_watch(struct brd_ring *r)
{
        /* Acquire: pairs with the release of the pid in attach. */
        uint64_t pid = AO_load_acquire(&r->peer_side->pid);
        uint64_t start = AO_load(&r->peer_side->start_time);
        int fd;

        if (pid == 0 || pid > INT_MAX) {
                /* Never attached: not dead.  A stamp that vanishes after we
                 * saw one is corruption: a pidfd of the old peer would keep
                 * the poll set readable with nobody to blame. */
                return r->peer_pid > 0 ? ring_poison(r) : 0;
        }
        if ((pid_t)pid == r->peer_pid && start == r->peer_start) {
                if (r->peer_unsure && !r->peer_dead)
                        peer_check_start(r);
                return r->peer_dead;
        }
        /* A new peer (first sight, or the role was attached elsewhere). */
        peer_unwatch(r);
        r->peer_pid = (pid_t)pid;
        r->peer_start = start;
        r->peer_dead = false;
        r->peer_unsure = false;
        fd = r->no_pidfd ? -ENOSYS : sys_pidfd_open((pid_t)pid);
        if (fd < 0) {
                fd = r->no_pidfd ? fd : -errno;
                /* No such process: gone.  -ENOENT (-EINVAL before Linux
                 * 6.9): that number is a thread's now, not a process's (a
                 * peer only stamps its process id): the stamped one is
                 * gone too, its pid reused. */
                if (fd == -ESRCH || fd == -ENOENT || fd == -EINVAL) {
                        r->peer_dead = true;
                        return 1;
                }
                if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
                        r->peer_pid = 0;        /* retry next time */
                        return fd;
                }
                /* -ENOSYS, -EPERM (seccomp) or any other refusal (an LSM's
                 * -EACCES, say): this process cannot have pidfds, which says
                 * nothing about the ring.  Watch with brd__pid_gone()
                 * instead, polled. */
                r->no_pidfd = true;
        } else {
                /* The waiter sleeps in epfd: a pidfd it cannot add there
                 * (ENOMEM, the epoll watch limit) is no watch at all, so
                 * fall back to brd__pid_gone(), polled. */
                if (ring_epoll_add(r->epfd, fd, EPOLLIN) < 0) {
                        brd__close(fd);
                        r->no_pidfd = true;
                } else {
                        r->pidfd = fd;
                }
        }
        if (r->no_pidfd)
                r->peer_dead = peer_gone_polled(r);
        else
                peer_check_start(r);
        return r->peer_dead;
}

/* Is the watched peer dead right now?  On the would-block path, and after
 * a ring that could not tell (brd__ring_bell_for()). */
int brd__ring_peer_probe(struct brd_ring *r)
{
        struct pollfd p = { .events = POLLIN };
        int e = peer_watch(r), cancel;

        if (e != 0)
                return e;
        /* The watch may have opened the pidfd just now. */
        p.fd = r->pidfd;
        if (p.fd >= 0) {
                cancel = brd__nocancel();       /* poll() is a cancellation point */
                if (poll(&p, 1, 0) > 0)
                        r->peer_dead = true;
                brd__cancel_restore(cancel);
        } else if (peer_gone_polled(r)) {
                r->peer_dead = true;
        }
        return r->peer_dead;
}

/* Interrupts still inside ring_intr() may take this many yields to end
 * before a cancel re-checks the flag without them (one stopped there,
 * SIGSTOP or a debugger, must not stop us for good). */
#define CANCEL_WAIT_YIELDS 1000

static int ring_cancel(struct brd_ring *r)
{
        unsigned k;

        /*
         * Consume the latched interrupt: flag first, then the eventfd, so an
         * interrupt() racing with us stays pending (the flag is the truth).
         * The drain may take the eventfd write of an interrupt whose flag
         * store comes after ours: once the interrupts in flight are done,
         * a flag found set gets its write again, or a brd_ring_fd() user
         * would not be woken for it.
         */
        AO_store(&r->intr, 0);
        efd_drain(r->efd_intr);
        for (k = 0; AO_load_acquire(&r->intr_busy) && k < CANCEL_WAIT_YIELDS; k++)
                sched_yield();
        AO_nop_full();
        if (AO_load(&r->intr))
                efd_signal(r->efd_intr);
        ring_disarm(r);
        return -ECANCELED;
}

int brd__ring_stop_due(struct brd_ring *r, int timeout_ms, int64_t deadline)
{
        /* The call goes on as a wait does, up to its timeout: close may
         * begin meanwhile, and the hold ends with a CAS (brd__ring_wait()). */
        r->hold_waited = true;
        if (AO_load(&r->intr))
                return ring_cancel(r);
        if (timeout_ms == 0)
                return -EAGAIN;
        return deadline != INT64_MAX && brd__now_ns() >= deadline ? -ETIMEDOUT : 0;
}

/*
 * How long a sleep may last before the ring is looked at again (-1: no
 * bound), where nothing would wake it: the peer watched without a pidfd
 * (its death is polled), a peer that skips its fence while our membarrier
 * failed (its ring may miss our arm), or no peer watched yet (one that died
 * in its attach, between its pid stamp and its ring, rings nobody).  The
 * peer's skipping as our arm saw it too (arm_asym): a publisher that read
 * our previous arm's state (no fence orders its load after its store) and
 * our asking for fences clears asym, then rings that previous arm's way (a
 * futex nobody sleeps on); read only now, asym 0 left this sleep unbounded.
 */
static int wait_bound_ms(const struct brd_ring *r)
{
        if ((r->mb_failed && (r->arm_asym || AO_load(&r->peer_side->asym))) ||
            (r->no_pidfd && r->peer_pid > 0) || r->peer_unsure)
                return RING_FALLBACK_MS;
        if (r->peer_pid == 0)
                return RING_UNATTACHED_MS;
        return -1;
}

/*
 * A brd_ring_fd() user sleeps in its own poll() on the set, so the wait's
 * bound is a timer in the set: one-shot, edge-triggered and never read (as
 * the doorbell), made at the first need.  It wakes that poll(), and the
 * next call looks again.  Without a bound, a timer still set is stopped: an
 * idle fd stays quiet.
 */
static int fd_bound(struct brd_ring *r)
{
        struct itimerspec its = { 0 };
        int ms = wait_bound_ms(r), e;

        if (ms < 0) {
                if (r->tfd_set && timerfd_settime(r->tfd, 0, &its, NULL) < 0)
                        return -errno;
                r->tfd_set = false;
                return 0;
        }
        if (r->tfd < 0) {
                r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                if (r->tfd < 0)
                        return -errno;
                e = ring_epoll_add(r->epfd, r->tfd, EPOLLIN | EPOLLET);
                if (e < 0) {
                        brd__close(r->tfd);
                        r->tfd = -1;
                        return e;
                }
        }
        its.it_value.tv_nsec = (long)ms * 1000000;
        if (timerfd_settime(r->tfd, 0, &its, NULL) < 0)
                return -errno;
        r->tfd_set = true;
        return 0;
}

#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 FUTEX_32
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE FUTEX_PRIVATE_FLAG
#endif
/* Within a futex sleep's RING_FUTEX_MS every bound of wait_bound_ms() holds. */
_Static_assert(RING_FUTEX_MS <= RING_FALLBACK_MS && RING_FUTEX_MS <= RING_UNATTACHED_MS,
               "a futex sleep is within the poll bounds");

/*
 * Sleep until the peer's bell word moves from @bell or our interrupt
 * generation from @gen (ring_futex(), ring_intr()), at most until @end (ns,
 * CLOCK_MONOTONIC).  Woken, a word that had moved already, the end, a
 * signal, a passing shortage: the caller looks again (a peer that keeps
 * waking us costs it a system call per wake-up, as a doorbell flood does;
 * one that moves its word without waking us costs it nothing, so a wait
 * takes RING_FUTEX_SLEEPS of them at most).
 * The call refused (ENOSYS: Linux < 5.16; EPERM, ENOSYS: a seccomp filter):
 * this endpoint sleeps in its epoll set from then on.
 */
static void ring_futex_sleep(struct brd_ring *r, unsigned bell, unsigned gen, int64_t end)
{
#ifdef SYS_futex_waitv
        struct futex_waitv w[2] = {
                { .val = bell, .uaddr = (uintptr_t)&r->peer_side->bell, .flags = FUTEX2_SIZE_U32 },
                { .val = gen, .uaddr = (uintptr_t)&r->intr_gen,
                  .flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE },
        };
        struct timespec ts = { .tv_sec = end / 1000000000, .tv_nsec = end % 1000000000 };

        if (syscall(SYS_futex_waitv, w, 2u, 0u, &ts, CLOCK_MONOTONIC) >= 0 ||
            (errno != ENOSYS && errno != EPERM && errno != EINVAL))
                return;
#else
        (void)bell, (void)gen, (void)end;
#endif
        r->no_futex = true;
}

/* The peer is gone for good: what this endpoint answers from now on. */
int brd__ring_gone(struct brd_ring *r, bool died)
{
        if (r->role == RING_PROD)
                return brd__ring_final(r, -EPIPE);
        return brd__ring_final(r, died ? -ECONNRESET : -EPIPE);
}

/* The wait found the peer dead: whatever a producer committed before
 * dying is ours first (0: ready), then its death is the answer for good;
 * an end it closed first is an orderly one (its CLOSED may be newer than
 * the state the wait last read: a close, then an exit, between that read
 * and the look at its pidfd).  A producer's answer is -EPIPE at once, also
 * where room the consumer freed before dying shows too: sends that went on
 * into that room would keep succeeding, the death seen and forgotten,
 * until the ring filled again (RELIABILITY A3). */
static int wait_peer_dead(struct brd_ring *r, uint64_t end)
{
        bool closed;
        int e;

        if (r->role == RING_PROD)
                return brd__ring_gone(r, true);
        /* Pairs with AO_store_release(state) in brd_ring_close(), as in
         * the wait: CLOSED here means its final tail shows below. */
        closed = AO_load_acquire(&r->peer_side->state) & BRD_RING_ST_CLOSED;
        e = ring_ready(r, end);
        if (e) {
                ring_disarm(r);
                return e < 0 ? e : 0;
        }
        return brd__ring_gone(r, !closed);
}

/* Does @e, a look at the peer (peer_watch(), or brd__ring_peer_probe()),
 * end the wait?  false: the peer lives, go on; true: return *@ret (a dead
 * peer's answer, 0 where a dead producer left a message ready, or the
 * look's error). */
static bool wait_peer_verdict(struct brd_ring *r, int e, uint64_t end, int *ret)
{
        if (e > 0) {
                *ret = wait_peer_dead(r, end);
        } else if (e < 0) {
                ring_disarm(r);
                *ret = e;
        }
        return e != 0;
}

/*
 * A producer's wait whose sleep saw its consumer's pidfd turn readable
 * answers for that death (-EPIPE from now on), also where the room it
 * waited for came with it (a release, then the SIGKILL).  The showing is
 * checked against the stamp first (a new consumer may have taken the role
 * over).  (Within a wait's futex phase the pidfd is not watched: a death
 * then is seen only where the room does not come.)  As wait_peer_verdict().
 */
static bool prod_death_seen(struct brd_ring *r, uint64_t end, int *ret)
{
        return r->role == RING_PROD && r->peer_dead &&
               wait_peer_verdict(r, peer_watch(r), end, ret);
}

/*
 * brd__ring_wait()'s work.  *@drained: an epoll_wait() of ours took what the
 * set showed of the doorbell (a drain, or a wake-up).
 */
static int ring_wait_drain(struct brd_ring *r, uint64_t end, int timeout_ms, int64_t deadline,
                           bool *drained)
{
        struct epoll_event ev[4];
        int64_t spin = 0, t0 = 0, now = 0, fut_end = 0;
        uint64_t pst;
        unsigned bell = 0, gen = 0, fut_sleeps = 0;
        int e, k, n, tmo, bound;
        bool arm, woke, fut, intr_shown = false;

        /* Hand back / publish what we hold before we could sleep. */
        if (r->pos != ring_pub(r))
                ring_publish(r);

        if (timeout_ms != 0 && !(r->flags & BRD_RING_NOSPIN)) {
                int64_t stop = 0;
                bool yield = false;
                unsigned i;

                /*
                 * A budget longer than the base is for a peer that streams
                 * on another CPU: one that shares ours cannot progress while
                 * we spin (its stamp is from its last sleep or its attach;
                 * a hostile value only changes how long we spin).
                 */
                spin = r->spin_ns;
                if (spin > BRD_RING_SPIN_NS &&
                    AO_load(&r->peer_side->cpu) == ring_stamp_cpu(r))
                        spin = BRD_RING_SPIN_NS;
                for (i = 1;; i++) {
                        e = ring_ready(r, end);
                        if (e)
                                return e < 0 ? e : 0;
                        if ((AO_load(&r->peer_side->state) & BRD_RING_ST_CLOSED) ||
                            AO_load(&r->intr))
                                break;
                        if (yield || (i & 63) == 0) {
                                now = brd__now_ns();
                                if (!stop) {
                                        t0 = now;
                                        stop = now + spin;
                                } else if (now >= stop || now >= deadline) {
                                        break;
                                }
                                /*
                                 * Past the base budget, each poll yields
                                 * the CPU: spun, the longer budget took it
                                 * from the other processes that wanted it
                                 * (4 actors on 2 CPUs: the demo ran 10%
                                 * slower); yielded, it costs a system call
                                 * per poll when nobody else wants it.
                                 */
                                yield = now - t0 >= BRD_RING_SPIN_NS;
                        }
                        if (yield) {
                                sched_yield();
                                continue;
                        }
                        /*
                         * Consumer: ask for the next frame's two lines with
                         * every read of the tail, so that when a message
                         * comes its lines cross with the tail's instead of
                         * after it (64 B round trip, CPUs far apart: 740 ->
                         * 600 ns, measured).  The producer pays nothing: its
                         * stores need the tail's line back from us anyway,
                         * and the two fetches overlap.  Not while streaming
                         * (lag on, see cons_lag()): the producer is filling
                         * those lines, and every fetch would take one from
                         * under its next store.
                         */
                        if (r->role == RING_CONS && !r->lag_on) {
                                __builtin_prefetch(payload(r, r->pos), 0, 3);
                                __builtin_prefetch(payload(r, r->pos + BRD_CACHELINE), 0, 3);
                        }
                        brd__cpu_relax();
                }
        }

        for (woke = false;; woke = true) {
                /* Back from a sleep: most wake-ups are the peer's progress;
                 * take it without paying for another drain and arm. */
                if (woke) {
                        if (prod_death_seen(r, end, &e))
                                return e;
                        e = ring_ready(r, end);
                        if (e) {
                                ring_disarm(r);
                                /* t0: the wait spun the base budget. */
                                if (e > 0 && t0)
                                        r->spin_ns = brd__ring_spin_next(brd__now_ns() - t0);
                                return e < 0 ? e : 0;
                        }
                }
                /* Timeout 0 arms only for brd_ring_fd() users: they poll the
                 * doorbell next, and it must ring. */
                arm = timeout_ms != 0 || AO_load(&r->fd_used);
                /* Sleep on futexes for the wait's first RING_FUTEX_MS (the
                 * top of this file), but where the call must see signals
                 * (futex_waitv() restarts after an SA_RESTART handler) or
                 * the doorbell must show to a brd_ring_fd() user. */
                fut = false;
                if (timeout_ms != 0 && !r->no_futex && !AO_load(&r->fd_used) &&
                    !(r->flags & BRD_RING_EINTR)) {
                        now = brd__now_ns();
                        if (!fut_end)
                                fut_end = now + brd__ring_futex_ms * INT64_C(1000000);
                        fut = now < fut_end;
                }
                if (arm) {
                        /*
                         * The doorbell is edge-triggered in the set and
                         * never read (bell_ring()): epoll_wait() returns
                         * for the rings that came after the last one it
                         * reported, and our own sleeps need no drain.  A
                         * ring meant for an arm we left (the re-check
                         * found progress) costs at most one wake-up that
                         * finds nothing, never a poll loop.
                         * A brd_ring_fd() user polls the set: take what it
                         * shows first (an epoll_wait() of timeout 0), then
                         * arm, so that a ring meant for this arm can only
                         * come after and still shows to poll().  Taken
                         * after arming, it could be lost while the
                         * re-check below still finds too little.
                         */
                        if (AO_load(&r->fd_used)) {
                                n = epoll_wait(r->epfd, ev, (int)BRD_ARRAY_SIZE(ev), 0);
                                for (k = 0; k < n; k++)
                                        intr_shown |= ev[k].data.fd == r->efd_intr;
                                *drained = true;
                        }
                        /* Before the arm.  Acquire: pairs with the releases
                         * in ring_futex() (a ring for this arm comes after
                         * the bell read here) and ring_intr() (a generation
                         * read here that is new shows its flag below). */
                        if (fut) {
                                bell = AO_int_load_acquire(&r->peer_side->bell);
                                gen = AO_int_load_acquire(&r->intr_gen);
                        }
                        ring_arm(r, fut);
                }
                /* Pairs with AO_store_release(state) in brd_ring_close():
                 * a CLOSED seen here means the final tail is visible to
                 * ring_ready() below. */
                pst = AO_load_acquire(&r->peer_side->state);
                if (r->role == RING_PROD && (pst & BRD_RING_ST_CLOSED))
                        return brd__ring_gone(r, false);
                e = ring_ready(r, end);
                if (e) {
                        ring_disarm(r);
                        return e < 0 ? e : 0;
                }
                if (pst & BRD_RING_ST_CLOSED)
                        return brd__ring_gone(r, false);
                if (AO_load(&r->intr))
                        return ring_cancel(r);
                /* The interrupt eventfd showed (before this look), and no
                 * flag: an interrupt between its write and its flag store
                 * (ring_intr()).  Taken, it wakes us no more, which it
                 * would until that store (a stalled or preempted thread);
                 * the doorbell rung after the flag wakes us for it. */
                if (intr_shown) {
                        efd_drain(r->efd_intr);
                        intr_shown = false;
                }
                if (wait_peer_verdict(r, timeout_ms == 0 ? brd__ring_peer_probe(r) : peer_watch(r),
                                      end, &e))
                        return e;
                if (timeout_ms == 0) {
                        if (!AO_load(&r->fd_used)) {
                                ring_disarm(r);
                                return -EAGAIN;
                        }
                        e = fd_bound(r);
                        if (e < 0)
                                ring_disarm(r);
                        return e < 0 ? e : -EAGAIN;
                }

                /* A longer budget did not cover this wait: the cadence
                 * broke (idle, or a slower peer), back to the base, and
                 * no growth when it wakes (t0 = 0). */
                if (spin > BRD_RING_SPIN_NS) {
                        r->spin_ns = BRD_RING_SPIN_NS;
                        t0 = 0;
                }
                r->st.waits++;
                if (fut) {
                        ring_futex_sleep(r, bell, gen, deadline < fut_end ? deadline : fut_end);
                        if (++fut_sleeps >= RING_FUTEX_SLEEPS)
                                fut_end = 1;    /* the futex phase is over */
                } else {
                        /* Sleep in the endpoint's epoll set (doorbell,
                         * interrupt eventfd, and the peer's pidfd once
                         * watched): the set is built once, where poll()
                         * would register and unregister a wait-queue entry
                         * on three files at every sleep. */
                        tmo = brd__poll_timeout(deadline);
                        bound = wait_bound_ms(r);
                        if (bound >= 0 && (tmo < 0 || tmo > bound))
                                tmo = bound;
                        n = epoll_wait(r->epfd, ev, (int)BRD_ARRAY_SIZE(ev), tmo);
                        if (n < 0) {
                                /* BRD_RING_EINTR: -EINTR, nothing taken or given. */
                                if (errno != EINTR || (r->flags & BRD_RING_EINTR)) {
                                        e = -errno;
                                        ring_disarm(r);
                                        return e;
                                }
                                /* Same deadline, re-armed above; the looks
                                 * below still come (signals faster than the
                                 * polled bound must not hide a death). */
                                n = 0;
                        }
                        for (k = 0; k < n; k++) {
                                /* Re-checked against the stamp above. */
                                if (r->pidfd >= 0 && ev[k].data.fd == r->pidfd)
                                        r->peer_dead = true;
                                intr_shown |= ev[k].data.fd == r->efd_intr;
                                /* Taken from a brd_ring_fd() user, as a
                                 * drain does. */
                                if (ev[k].data.fd == r->efd_own)
                                        *drained = true;
                        }
                }
                if (peer_gone_polled(r))
                        r->peer_dead = true;
                /* Checked after every wake-up, not only on poll's timeout:
                 * a peer that keeps a doorbell or pidfd readable must not
                 * extend the wait (RELIABILITY B18). */
                if (deadline != INT64_MAX && brd__now_ns() >= deadline) {
                        if (prod_death_seen(r, end, &e))
                                return e;
                        e = ring_ready(r, end);
                        /* A wait as short as its futex phase never slept on
                         * the pidfd: look at it before a timeout, or a dead
                         * peer would answer -ETIMEDOUT for good. */
                        if (!e && wait_peer_verdict(r, brd__ring_peer_probe(r), end, &e))
                                return e;
                        ring_disarm(r);
                        if (e)
                                return e < 0 ? e : 0;
                        return -ETIMEDOUT;
                }
        }
}

/*
 * brd_ring_fd() promises POLLIN until a call with timeout 0 answered
 * -EAGAIN, and only that answer leaves the endpoint armed (a read() that
 * brd__ring_stop_due() stops with -EAGAIN drained nothing, and rings our
 * own doorbell: the fd shows again).  Every other way
 * out of a wait that took the doorbell's showing (the re-check found
 * progress, a wake-up, a timeout, an interrupt) can leave with the arm gone
 * and nothing left in the set, while the peer rings no more for what it
 * publishes next: those ring our own doorbell to show again.
 */
int brd__ring_wait(struct brd_ring *r, uint64_t end, int timeout_ms, int64_t deadline)
{
        bool drained = false;
        int cancel, e;

        /* What close's mark must turn into -ECANCELED is the answer of a
         * wait: the hold of this call ends with a CAS. */
        r->hold_waited = true;
        cancel = brd__nocancel();       /* epoll_wait() and poll() are cancellation points */
        e = ring_wait_drain(r, end, timeout_ms, deadline, &drained);

        if (drained && AO_load(&r->fd_used) && !(e == -EAGAIN && timeout_ms == 0))
                bell_ring(r->efd_own);
        brd__cancel_restore(cancel);
        return e;
}

/* One shared read per poll, the interval adapted to what each poll finds
 * (RING_LAG_* in endpoint.h). */
int brd__ring_lag_wait(struct brd_ring *r, uint64_t want)
{
        uint64_t seen = r->peer, gained;
        unsigned spent = 0, k;
        int i, moves = 0, e;

        for (i = 0; i < RING_LAG_POLLS && spent < RING_LAG_BUDGET; i++) {
                for (k = 0; k < r->lag_pauses; k++)
                        brd__cpu_relax();
                spent += r->lag_pauses;
                e = r->role == RING_CONS ? cons_refresh(r) : prod_refresh(r);
                if (e)
                        return e;
                gained = r->peer - seen;
                if (!gained) {
                        /* Stopped (or never streamed): poll sooner next time. */
                        if (r->lag_pauses > RING_LAG_PAUSES_INIT)
                                r->lag_pauses = RING_LAG_PAUSES_INIT;
                        break;
                }
                if (gained < r->lag_bytes / 2 && r->lag_pauses < RING_LAG_PAUSES_MAX)
                        r->lag_pauses *= 2;
                else if (gained > 2 * r->lag_bytes && r->lag_pauses > RING_LAG_PAUSES_MIN)
                        r->lag_pauses /= 2;
                moves++;
                seen = r->peer;
                if ((r->role == RING_CONS ? r->peer : r->peer + r->cap) - r->pos >= want)
                        break;
        }
        return moves;
}
