/* SPDX-License-Identifier: MIT */
/*
 * ring-bench's round trip: 64-byte ping-pongs over two channels between this
 * process and a forked child (brood default and with spinning off, a raw
 * eventfd ping-pong, a pipe, a raw shared-memory spin, the floor of the
 * default, and the same frames woken by an eventfd, read, waited for in
 * epoll, or in a futex as brood's waits sleep, the floors of spinning off),
 * one clock read per sample.  What is measured and how: ring-bench.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <brood/handle.h>
#include <brood/ringbuf.h>

#include "bench-common.h"
#include "bench-peers.h"
#include "internal/brd-private.h"
#include "ring-bench.h"

const char *const rt_name[NRT] = { "brood_default", "brood_nospin", "eventfd", "pipe", "raw_shm",
                                   "raw_shm_eventfd", "raw_shm_epoll", "raw_shm_futex" };
const char *const rt_title[NRT] = { "brood default", "brood spin off", "raw eventfd", "pipe",
                                    "raw shm spin", "raw shm+eventfd", "raw shm+epoll",
                                    "raw shm+futex" };

#define RT_MSG 64

/* ------------------------------------------------------------ round trip */

/*
 * The floor of any shared-memory ping-pong (RT_RAW): two shared areas, in
 * each 72-byte frames packed back to back like brood's (a word, then the
 * 64-byte payload), the word = message number + 1 stored last with release;
 * the reader spins on that word alone (no index, no sleep, no checks, no
 * peer-death care, a spin that never gives up).  What the CPUs' cache-line
 * transfers allow a message, measured beside brood in the same run.
 * RT_RAW_EFD: the same frames, but each side sleeps in a blocking read() of
 * an eventfd that the other writes after every frame (the raw eventfd
 * ping-pong's wake-ups, plus the frames' cache lines): the floor of a
 * message that wakes a sleeper, which brood with spinning off is.
 * RT_RAW_EPOLL: the same again, but each side sleeps as the contract has
 * brood sleep: in epoll_wait() on a set of the eventfd (edge-triggered, never
 * drained, as brood's doorbell), a pidfd of the other side and a third
 * eventfd (brood's interrupt): the floor of that wait.
 * RT_RAW_FUTEX: the same frames, each side asleep in futex(FUTEX_WAIT) on a
 * word that the other moves and wakes after every frame: the floor of the
 * futex sleep that brood's waits begin with.
 */
#define RT_RAW_AREA  (64 * KiB)
#define RT_RAW_FRAME (8 + RT_MSG)
#define RT_RAW_SLOTS (RT_RAW_AREA / RT_RAW_FRAME)
#define RT_RAW_STOP  (~(AO_t)0)

struct rt_raw {
        _Alignas(4096) unsigned char area[2][RT_RAW_AREA];      /* a: parent -> child, b: back */
        _Alignas(64) unsigned futex[2][16];     /* RT_RAW_FUTEX: a word per direction, a line each */
};

struct rt_chan {
        enum rt_peer     peer;
        struct brd_handle h[4];         /* a producer, a consumer, b producer, b consumer */
        struct brd_ring *tx, *rx;
        int              a[2], b[2];    /* pipe pairs / eventfds in a[0], b[0] */
        struct rt_raw   *raw;           /* RT_RAW: shared, mapped before the fork */
        int              ep, pidfd, intr;       /* RT_RAW_EPOLL: this side's set and its fds */
        uint64_t         seq;           /* RT_RAW: messages sent (parent) / echoed (child) */
        unsigned char    buf[RT_MSG];
};

static ALWAYS_INLINE AO_t *raw_word(struct rt_chan *c, int dir, uint64_t seq)
{
        return (AO_t *)(void *)&c->raw->area[dir][(seq % RT_RAW_SLOTS) * RT_RAW_FRAME];
}

static ALWAYS_INLINE void raw_put(struct rt_chan *c, int dir, uint64_t seq, AO_t word)
{
        AO_t *w = raw_word(c, dir, seq);

        memcpy(w + 1, c->buf, RT_MSG);
        AO_store_release(w, word);      /* pairs with raw_get's load_acquire */
}

/* Message @seq in direction @dir: 0, or 1 for the stop word. */
static ALWAYS_INLINE int raw_get(struct rt_chan *c, int dir, uint64_t seq)
{
        AO_t *w = raw_word(c, dir, seq), v;

        while ((v = AO_load_acquire(w)) != seq + 1 && v != RT_RAW_STOP)
                brd__cpu_relax();
        if (v == RT_RAW_STOP)
                return 1;
        memcpy(c->buf, w + 1, RT_MSG);
        return 0;
}

/* RT_RAW_FUTEX: after a frame in direction @dir, move its word and wake. */
static ALWAYS_INLINE void raw_futex_ring(struct rt_chan *c, int dir)
{
        unsigned *w = &c->raw->futex[dir][0];

        AO_int_fetch_and_add1_release(w);
        (void)syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* RT_RAW_FUTEX: sleep until message @seq (or the stop word) is in direction
 * @dir: the word read before the frame, so a ring after that read either
 * changed it (FUTEX_WAIT returns at once) or finds us queued. */
static ALWAYS_INLINE void raw_futex_sleep(struct rt_chan *c, int dir, uint64_t seq)
{
        unsigned *w = &c->raw->futex[dir][0];
        AO_t v;
        unsigned f;

        for (;;) {
                f = AO_int_load_acquire(w);
                v = AO_load_acquire(raw_word(c, dir, seq));
                if (v == seq + 1 || v == RT_RAW_STOP)
                        return;
                (void)syscall(SYS_futex, w, FUTEX_WAIT, f, NULL, NULL, 0);
        }
}

/* The two eventfds of RT_EVENTFD and RT_RAW_EFD, in a[0] (to the child)
 * and b[0] (back). */
static int rt_efds(struct rt_chan *c)
{
        c->a[0] = eventfd(0, EFD_CLOEXEC);
        c->b[0] = eventfd(0, EFD_CLOEXEC);
        return c->a[0] < 0 || c->b[0] < 0 ? -errno : 0;
}

/* A channel of peer @p that holds nothing yet: rt_close() may take it. */
static void rt_init(struct rt_chan *c, enum rt_peer p)
{
        *c = (struct rt_chan){ .peer = p };
        c->a[0] = c->a[1] = c->b[0] = c->b[1] = -1;
        c->ep = c->pidfd = c->intr = -1;
}

static int rt_setup(struct rt_chan *c)
{
        switch (c->peer) {
        case RT_BROOD:
        case RT_BROOD_NOSPIN: {
                unsigned fl = c->peer == RT_BROOD_NOSPIN ? BRD_RING_NOSPIN : 0;
                int e;

                e = brd_ring_create(64 * KiB, fl, &c->h[0], &c->h[1]);
                return e < 0 ? e : brd_ring_create(64 * KiB, fl, &c->h[2], &c->h[3]);
        }
        case RT_EVENTFD:
                return rt_efds(c);
        case RT_PIPE:
                return pipe2(c->a, O_CLOEXEC) < 0 || pipe2(c->b, O_CLOEXEC) < 0 ? -errno : 0;
        case RT_RAW:
        case RT_RAW_EFD:
        case RT_RAW_EPOLL:
        case RT_RAW_FUTEX: {
                void *m = mmap(NULL, sizeof(struct rt_raw), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

                if (m == MAP_FAILED)
                        return -errno;
                c->raw = m;
                return c->peer == RT_RAW_EFD || c->peer == RT_RAW_EPOLL ? rt_efds(c) : 0;
        }
        default:
                return -EINVAL;
        }
}

/* RT_RAW_EPOLL, after the fork: this side's set, watching @peer. */
static int rt_epoll(struct rt_chan *c, int child, pid_t peer)
{
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET };

        c->ep = epoll_create1(EPOLL_CLOEXEC);
        c->pidfd = (int)syscall(SYS_pidfd_open, peer, 0);
        c->intr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->ep < 0 || c->pidfd < 0 || c->intr < 0)
                return -errno;
        ev.data.fd = child ? c->a[0] : c->b[0];
        if (epoll_ctl(c->ep, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
                return -errno;
        ev.events = EPOLLIN;
        ev.data.fd = c->pidfd;
        if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->pidfd, &ev) < 0)
                return -errno;
        ev.data.fd = c->intr;
        return epoll_ctl(c->ep, EPOLL_CTL_ADD, c->intr, &ev) < 0 ? -errno : 0;
}

/* RT_RAW_EPOLL: sleep until the other side writes our eventfd; -EPIPE when
 * it died (its pidfd), as brood's wait would answer. */
static ALWAYS_INLINE int rt_epoll_wait(struct rt_chan *c)
{
        struct epoll_event ev[3];
        int n;

        do
                n = epoll_wait(c->ep, ev, 3, -1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++)
                if (ev[i].data.fd == c->pidfd)
                        return -EPIPE;
        return 0;
}

/* RT_RAW_EFD, RT_RAW_EPOLL: sleep until the other side writes @efd. */
static ALWAYS_INLINE int rt_raw_sleep(struct rt_chan *c, enum rt_peer p, int efd)
{
        uint64_t v;

        return p == RT_RAW_EPOLL ? rt_epoll_wait(c) : efd_read(efd, &v);
}

static int rt_side(struct rt_chan *c, int child, pid_t peer)
{
        int e = 0, e2;

        switch (c->peer) {
        case RT_BROOD:
        case RT_BROOD_NOSPIN:
                /* parent: produces on a, consumes b; child the other way round */
                e = brd_ring_attach(&c->h[child ? 1 : 0], child ? &c->rx : &c->tx);
                e2 = brd_ring_attach(&c->h[child ? 2 : 3], child ? &c->tx : &c->rx);
                for (int i = 0; i < 4; i++)
                        brd_handle_close(&c->h[i]);
                return e < 0 ? e : e2;
        case RT_RAW_EPOLL:
                return rt_epoll(c, child, peer);
        case RT_PIPE:
                close_fd(child ? &c->a[1] : &c->a[0]);
                close_fd(child ? &c->b[0] : &c->b[1]);
                return 0;
        default:
                return 0;
        }
}

static void rt_close(struct rt_chan *c)
{
        if (c->tx)
                brd_ring_close(c->tx);
        if (c->rx)
                brd_ring_close(c->rx);
        c->tx = c->rx = NULL;
        for (int i = 0; i < 4; i++)
                brd_handle_close(&c->h[i]);
        close_fd(&c->a[0]);
        close_fd(&c->a[1]);
        close_fd(&c->b[0]);
        close_fd(&c->b[1]);
        close_fd(&c->ep);
        close_fd(&c->pidfd);
        close_fd(&c->intr);
        if (c->raw)
                munmap(c->raw, sizeof(*c->raw));
        c->raw = NULL;
}

/* One message from parent to child and back.  Brood publication may be
 * batched, so a ping-pong flushes after each send (the contract's call for
 * "publish now"). */
static ALWAYS_INLINE int rt_ping(struct rt_chan *c, enum rt_peer p)
{
        uint64_t v;
        ssize_t n;
        int e;

        switch (p) {
        case RT_BROOD:
        case RT_BROOD_NOSPIN:
                e = brd_ring_send(c->tx, c->buf, RT_MSG, -1);
                if (e == 0)
                        e = brd_ring_flush(c->tx);
                if (e < 0)
                        return e;
                n = brd_ring_recv(c->rx, c->buf, RT_MSG, -1);
                return n == RT_MSG ? 0 : (n < 0 ? (int)n : -EPROTO);
        case RT_EVENTFD:
                e = efd_write(c->a[0], 1);
                return e < 0 ? e : efd_read(c->b[0], &v);
        case RT_PIPE:
                e = write_full(c->a[1], c->buf, RT_MSG);
                if (e < 0)
                        return e;
                n = read_full(c->b[0], c->buf, RT_MSG);
                return n == RT_MSG ? 0 : (n < 0 ? (int)n : -EPROTO);
        case RT_RAW:
                raw_put(c, 0, c->seq, c->seq + 1);
                e = raw_get(c, 1, c->seq);
                c->seq++;
                return e ? -EPROTO : 0;
        case RT_RAW_EFD:
        case RT_RAW_EPOLL:
                /* The write's eventfd lock orders the frame before it; the
                 * wake-up takes it after: the frame is there when we wake. */
                raw_put(c, 0, c->seq, c->seq + 1);
                e = efd_write(c->a[0], 1);
                if (e == 0)
                        e = rt_raw_sleep(c, p, c->b[0]);
                if (e == 0)
                        e = raw_get(c, 1, c->seq) ? -EPROTO : 0;
                c->seq++;
                return e;
        case RT_RAW_FUTEX:
                raw_put(c, 0, c->seq, c->seq + 1);
                raw_futex_ring(c, 0);
                raw_futex_sleep(c, 1, c->seq);
                e = raw_get(c, 1, c->seq) ? -EPROTO : 0;
                c->seq++;
                return e;
        default:
                return -EINVAL;
        }
}

/* Child: echo @limit messages (0), or until EOF (1; eventfd: a value of 2
 * means stop), or -errno. */
static ALWAYS_INLINE int rt_echo(struct rt_chan *c, enum rt_peer p, unsigned limit)
{
        uint64_t v;
        ssize_t n;
        int e;

        for (unsigned k = 0; k < limit; k++) {
                switch (p) {
                case RT_BROOD:
                case RT_BROOD_NOSPIN:
                        n = brd_ring_recv(c->rx, c->buf, RT_MSG, -1);
                        if (n == -EPIPE)
                                return 1;
                        if (n < 0)
                                return (int)n;
                        e = brd_ring_send(c->tx, c->buf, (size_t)n, -1);
                        if (e == 0)
                                e = brd_ring_flush(c->tx);
                        break;
                case RT_EVENTFD:
                        e = efd_read(c->a[0], &v);
                        if (e == 0 && v >= 2)
                                return 1;
                        if (e == 0)
                                e = efd_write(c->b[0], 1);
                        break;
                case RT_PIPE:
                        n = read_full(c->a[0], c->buf, RT_MSG);
                        if (n == 0)
                                return 1;
                        if (n < 0)
                                return (int)n;
                        e = write_full(c->b[1], c->buf, RT_MSG);
                        break;
                case RT_RAW:
                        if (raw_get(c, 0, c->seq))
                                return 1;
                        raw_put(c, 1, c->seq, c->seq + 1);
                        c->seq++;
                        e = 0;
                        break;
                case RT_RAW_EFD:
                case RT_RAW_EPOLL:
                        e = rt_raw_sleep(c, p, c->a[0]);
                        if (e < 0)
                                return e;
                        if (raw_get(c, 0, c->seq))
                                return 1;
                        raw_put(c, 1, c->seq, c->seq + 1);
                        c->seq++;
                        e = efd_write(c->b[0], 1);
                        break;
                case RT_RAW_FUTEX:
                        raw_futex_sleep(c, 0, c->seq);
                        if (raw_get(c, 0, c->seq))
                                return 1;
                        raw_put(c, 1, c->seq, c->seq + 1);
                        raw_futex_ring(c, 1);
                        c->seq++;
                        e = 0;
                        break;
                default:
                        return -EINVAL;
                }
                if (e < 0)
                        return e;
        }
        return 0;
}

uint64_t *rt_samples;

/* Parent: @n ping-pongs, each one's time (one clock read included) in @out. */
static ALWAYS_INLINE int rt_round(struct rt_chan *c, enum rt_peer p, uint64_t *out, unsigned n)
{
        int64_t t = bc_now_ns(), t1;
        int e;

        for (unsigned i = 0; i < n; i++) {
                e = rt_ping(c, p);
                t1 = bc_now_ns();
                if (e < 0)
                        return e;
                out[i] = (uint64_t)(t1 - t);
                t = t1;
        }
        return 0;
}

/* The switches below hand each peer's loop a constant peer, so that the
 * compiler drops the other peers' branches from it. */
static int rt_round_any(struct rt_chan *c, uint64_t *out, unsigned n)
{
        switch (c->peer) {
        case RT_BROOD:        return rt_round(c, RT_BROOD, out, n);
        case RT_BROOD_NOSPIN: return rt_round(c, RT_BROOD_NOSPIN, out, n);
        case RT_EVENTFD:      return rt_round(c, RT_EVENTFD, out, n);
        case RT_PIPE:         return rt_round(c, RT_PIPE, out, n);
        case RT_RAW:          return rt_round(c, RT_RAW, out, n);
        case RT_RAW_EFD:      return rt_round(c, RT_RAW_EFD, out, n);
        case RT_RAW_EPOLL:    return rt_round(c, RT_RAW_EPOLL, out, n);
        case RT_RAW_FUTEX:    return rt_round(c, RT_RAW_FUTEX, out, n);
        default:              return -EINVAL;
        }
}

static int rt_echo_any(struct rt_chan *c, unsigned limit)
{
        switch (c->peer) {
        case RT_BROOD:        return rt_echo(c, RT_BROOD, limit);
        case RT_BROOD_NOSPIN: return rt_echo(c, RT_BROOD_NOSPIN, limit);
        case RT_EVENTFD:      return rt_echo(c, RT_EVENTFD, limit);
        case RT_PIPE:         return rt_echo(c, RT_PIPE, limit);
        case RT_RAW:          return rt_echo(c, RT_RAW, limit);
        case RT_RAW_EFD:      return rt_echo(c, RT_RAW_EFD, limit);
        case RT_RAW_EPOLL:    return rt_echo(c, RT_RAW_EPOLL, limit);
        case RT_RAW_FUTEX:    return rt_echo(c, RT_RAW_FUTEX, limit);
        default:              return -EINVAL;
        }
}

/* Ping-pongs per round: about 10 ms here, where the spinning peers take
 * ~0.6 us a round trip and the sleeping ones ~20 us. */
static unsigned rt_round_len(enum rt_peer p)
{
        return p == RT_BROOD || p == RT_RAW ? 16384 : 512;
}

/* Parent: tell the child to stop, on every channel (it waits on the first
 * peer's, having echoed whole cycles), then close this side. */
static int rt_stop(struct rt_chan *c)
{
        int e = 0;

        switch (c->peer) {
        case RT_EVENTFD:
                e = efd_write(c->a[0], 2);
                break;
        case RT_RAW:
        case RT_RAW_EFD:
        case RT_RAW_EPOLL:
        case RT_RAW_FUTEX:
                raw_put(c, 0, c->seq, RT_RAW_STOP);
                if (c->peer == RT_RAW_FUTEX)
                        raw_futex_ring(c, 0);
                else if (c->peer != RT_RAW)
                        e = efd_write(c->a[0], 1);
                break;
        default:
                break;          /* brood, pipe: closing is EOF */
        }
        rt_close(c);
        return e;
}

/* Child: echo whole cycles of rounds until EOF. */
static int rt_echo_cycles(struct rt_chan *c)
{
        for (;;) {
                for (int p = 0; p < NRT; p++) {
                        int e = rt_echo_any(&c[p], rt_round_len((enum rt_peer)p));

                        if (e)
                                return e < 0 ? e : 0;
                }
        }
}

int run_rt_session(int64_t budget, struct rt_session *s)
{
        struct rt_chan c[NRT];
        uint64_t *at[NRT];
        size_t cycle_len = 0;
        int ready = -1, ready_w = -1, e = 0, e2, p, maxc;
        const char *what = "setup";
        int64_t deadline;
        pid_t pid;

        s->cycles = 0;
        for (p = 0; p < NRT; p++) {
                s->p50[p] = s->p99[p] = NAN;
                rt_init(&c[p], (enum rt_peer)p);
                cycle_len += rt_round_len((enum rt_peer)p);
        }
        /* Each peer's samples in a region of its own, room for maxc cycles. */
        maxc = (int)(RT_MAX_SAMPLES / cycle_len);
        maxc = maxc < RT_MAX_CYCLES ? maxc : RT_MAX_CYCLES;
        at[0] = rt_samples;
        for (p = 1; p < NRT; p++)
                at[p] = at[p - 1] + (size_t)maxc * rt_round_len((enum rt_peer)(p - 1));
        for (p = 0; p < NRT && e == 0; p++)
                e = rt_setup(&c[p]);
        if (e < 0)
                goto fail;
        pid = fork_child(&ready, &ready_w);
        if (pid < 0) {
                e = pid;
                goto fail;
        }
        if (pid == 0) {
                for (p = 0; p < NRT && e == 0; p++)
                        e = rt_side(&c[p], 1, getppid());
                child_ready(ready_w, e);
                res->err = rt_echo_cycles(c);
                for (p = 0; p < NRT; p++)
                        rt_close(&c[p]);
                _exit(0);
        }
        what = "attach";
        for (p = 0; p < NRT && e == 0; p++)
                e = rt_side(&c[p], 0, pid);
        if (e == 0)
                e = wait_ready(ready);
        else
                close(ready);
        if (e == 0)
                what = "ping-pong";
        deadline = bc_now_ns() + budget;
        /* Cycle -1 warms every peer up, in the slots of cycle 0; two
         * counted cycles at least, however long they take (a loaded
         * machine), within fork_child()'s alarm. */
        for (int k = -1; e == 0 && k < maxc; k++) {
                int slot = k < 0 ? 0 : k;

                for (p = 0; p < NRT && e == 0; p++) {
                        unsigned n = rt_round_len((enum rt_peer)p);
                        uint64_t *v = at[p] + (size_t)slot * n;

                        e = rt_round_any(&c[p], v, n);
                        if (e == 0 && k >= 0)
                                s->round_p50[k][p] = (double)bc_percentile_u64(v, n, 50);
                }
                if (e == 0 && k >= 0)
                        s->cycles = k + 1;
                if (k >= 1 && bc_now_ns() >= deadline)
                        break;
        }
        for (p = 0; p < NRT; p++) {
                e2 = rt_stop(&c[p]);
                e = e < 0 ? e : e2;
        }
        e2 = reap(pid, e < 0);
        if (e == 0 && e2 < 0) {
                what = "echo child";
                e = e2;
        }
        if (e < 0)
                goto fail;
        for (p = 0; p < NRT; p++) {
                size_t n = (size_t)s->cycles * rt_round_len((enum rt_peer)p);

                s->p50[p] = (double)bc_percentile_u64(at[p], n, 50);
                s->p99[p] = (double)bc_rank_u64(at[p], n, 99);
        }
        return 0;
fail:
        s->cycles = 0;
        for (p = 0; p < NRT; p++)
                rt_close(&c[p]);
        return case_failed(e, "round trip: %s failed", what);
}

double rt_pair_ratio(const struct rt_session *s, enum rt_peer a, enum rt_peer b)
{
        double r[RT_MAX_CYCLES];

        for (int k = 0; k < s->cycles; k++)
                r[k] = s->round_p50[k][a] / s->round_p50[k][b];
        return s->cycles ? bc_median(r, (size_t)s->cycles) : NAN;
}
