/* SPDX-License-Identifier: MIT */
/*
 * ring-bench: brood's SPSC ring against the other ways two processes stream
 * bytes, in one run, side by side (issue 3, "Benchmark").
 *
 *   streaming   sizes 8, 64, 512 B, 4, 64 KiB, 1 MiB; producer = this process,
 *               consumer = a forked child; peers: brood copy API (send/recv),
 *               brood zero-copy (reserve/commit + peek/release), pipe,
 *               AF_UNIX socketpair, and a C port of the seed's eventfd protocol
 *   round trip  64-byte ping-pong over two channels: brood default, brood with
 *               spinning off, raw eventfd ping-pong, pipe, and the floor: a
 *               raw shared-memory ping-pong that spins on a word in each
 *               frame (see struct rt_raw); p50 and p99
 *   limits      memcpy bandwidth (1 and 16 MiB) and a cache-line ping-pong
 *               between the two processes, measured beside every group
 *   idle        CPU used by a consumer blocked on an empty brood ring
 *   paced       CPU used by a consumer fed a 64 B message every 50 and every
 *               500 us, and doorbells per message: brood default and with
 *               spinning off (what the adaptive spin costs and saves)
 *
 * How each peer moves a message (fixed-size messages of S bytes per case):
 *   brood copy  brd_ring_send(S) / brd_ring_recv() into a private buffer;
 *               default flags (the figure the ratios use), and once more with
 *               BRD_RING_BATCH (publication held back up to a bound)
 *   brood zc    brd_ring_reserve(S) + memcpy of the payload + commit /
 *               brd_ring_peek(), read the first and last word, release
 *   pipe        write() of the whole message / read() until S bytes arrived;
 *               pipe buffer sized like the ring, at most 1 MiB (F_SETPIPE_SZ)
 *   socketpair  SOCK_STREAM, the same exact-S reads (SEQPACKET cannot carry a
 *               1 MiB message through the default socket buffers); default
 *               buffers.  Fixed-size framing is the cheapest framing there
 *               is, so pipe and socketpair are shown at their best.
 *   seed        one shared buffer, u32 length header + payload written as a
 *               byte stream that splits at the buffer's end, one eventfd
 *               write per send (bytes written); at the end the writer waits
 *               on a second eventfd until the reader has consumed everything
 *               (lock-step wrap); the reader blocks in read() on the first
 *               eventfd and copies out.  EOF = a 0xffffffff header.
 *   raw ring    the floor: a hand-written spin-only ring with brood's
 *               frames and copies and none of its checks, waiting or
 *               bookkeeping (bench-peers.h); brood/raw is what those
 *               cost, raw/pipe what a ring of this design reaches here
 * The first pass of every case checksums every byte received (an
 * order-sensitive hash compared with the sender's) and is not timed; timed
 * passes still check the message and byte counts.  Rates are taken by the
 * consumer after one full lap of the buffer (first-touch page faults are not
 * streaming cost).  Passes interleave the peers so that every figure in a row
 * is taken back to back; ratios are medians of per-pass ratios.  The JSON
 * also has every pass with the cache-line ping-pongs taken right before and
 * after it, so that passes can be grouped by placement across runs (the
 * host may move the CPUs within a row).  The producer's source and the
 * consumer's buffer start at a page, or --offset bytes past one (16: where
 * malloc puts a large buffer), for every peer alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <brood/brood.h>
#include <brood/handle.h>
#include <brood/ringbuf.h>

#include "bench-common.h"
#include "bench-peers.h"
#include "internal/brd-private.h"
#include "internal/brd-release.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define MAXPASS 32

/* ------------------------------------------------------------- options */

static struct {
        int      quick;
        int      pin;
        int      passes;                /* timed passes (the verify pass is extra) */
        int64_t  case_ns;               /* time bound of one timed pass */
        int64_t  verify_ns;             /* time bound of the verify pass */
        int64_t  rt_ns;                 /* time bound of one round-trip pass */
        int64_t  idle_ns;
        const char *json;
        size_t   only;                  /* --size: stream this size only, nothing else */
        size_t   offset;                /* --offset: the peers' buffers start this far past a page */
        int      cpu[2];                /* producer / consumer CPUs when pinned */
} opt = { .pin = 1, .cpu = { -1, -1 } };

/* Indexed by enum brd__release_policy. */
static const char *const release_name[] = { "auto", "off", "on" };

static int failures;                    /* errors and checksum mismatches (not misses) */
static pid_t bench_pid;

/* ------------------------------------------------- shared result page */

/* Written by the child before _exit, read by the parent after waitpid():
 * the wait is the synchronisation, no atomics needed. */
struct child_res {
        int      err;                   /* 0 or -errno: where the child failed */
        int      stage;
        uint64_t count, bytes, hash;
        int64_t  t_first, t_end;        /* consumer's clock after warm-up / at the end */
        uint64_t warm;                  /* messages received before t_first */
        int64_t  cpu_ns, wall_ns;       /* idle test */
};

static struct child_res *res;

static void on_alarm(int sig)
{
        static const char msg[] = "ring-bench: a case hung for 60 s, giving up\n";

        (void)sig;
        if (write(2, msg, sizeof(msg) - 1) < 0)
                _exit(1);
        _exit(1);       /* children follow by PDEATHSIG */
}

static void child_setup(void)
{
        signal(SIGALRM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != bench_pid)    /* the parent died before PDEATHSIG was armed */
                _exit(3);
        if (opt.pin && opt.cpu[1] >= 0)
                bc_pin_cpu(opt.cpu[1]);
}

/* Runs @fn in a forked child, the child signals readiness on a pipe.  Returns
 * the pid and fills *ret_ready with the read end, or -errno. */
static pid_t fork_child(int *ret_ready, int *ret_ready_w)
{
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        memset(res, 0, sizeof(*res));
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int e = -errno;

                close(p[0]);
                close(p[1]);
                return e;
        }
        if (pid == 0) {
                close(p[0]);
                child_setup();
                *ret_ready_w = p[1];
                return 0;
        }
        close(p[1]);
        *ret_ready = p[0];
        return pid;
}

static void child_ready(int fd)
{
        char c = 'r';

        if (write(fd, &c, 1) != 1)
                _exit(4);
        close(fd);
}

/* Wait (bounded) for the child's ready byte; 0, or -EPROTO if it died first. */
static int wait_ready(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;
        int n;

        do
                n = poll(&p, 1, 10000);
        while (n < 0 && errno == EINTR);
        n = n == 1 ? (int)read(fd, &c, 1) : -1;
        close(fd);
        return n == 1 ? 0 : -EPROTO;
}

static int reap(pid_t pid, int kill_it)
{
        int st;

        if (kill_it)
                kill(pid, SIGKILL);
        st = bc_wait_child(pid);
        if (kill_it)
                return -ECANCELED;
        if (st < 0)
                return st;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return -EPROTO;
        return res->err;
}

/* ------------------------------------------------------ streaming peers */

enum peer {
        PEER_BROOD, PEER_BROOD_ZC, PEER_BROOD_BATCH, PEER_PIPE, PEER_SOCK, PEER_SEED, PEER_RAW,
        NPEER
};

static const char *const peer_name[NPEER] = {
        "brood_copy", "brood_zerocopy", "brood_copy_batch", "pipe", "socketpair", "seed", "raw_ring",
};
static const char *const peer_title[NPEER] = {
        "brood copy", "brood zero-copy", "brood copy+BATCH", "pipe", "socketpair", "seed port",
        "raw spin ring",
};

struct chan {
        enum peer        peer;
        size_t           size;          /* message size */
        size_t           cap;           /* ring / shared buffer bytes */
        size_t           pipe_sz;
        struct brd_handle hp, hc;       /* brood: producer and consumer handles */
        struct brd_ring *r;
        unsigned         ring_flags;    /* brd_ring_create() flags of PEER_BROOD / _ZC */
        int              fd[2];         /* pipe: [0] read, [1] write; socketpair: [0] prod, [1] cons */
        struct seed      seed;
        struct raw_ring  raw;
        unsigned char   *rx;            /* consumer's private buffer */
        uint64_t         sink;
        uint64_t         nmin;          /* messages sent before the deadline may end the case */
};

static int chan_setup(struct chan *c)
{
        int e;

        c->fd[0] = c->fd[1] = -1;
        c->seed.memfd = c->seed.efd_data = c->seed.efd_wrap = -1;
        c->hp.nfds = c->hc.nfds = 0;
        c->raw.ctl = NULL;
        switch (c->peer) {
        case PEER_BROOD:
        case PEER_BROOD_ZC:
                return brd_ring_create(c->cap, c->ring_flags, &c->hp, &c->hc);
        case PEER_BROOD_BATCH:
                return brd_ring_create(c->cap, BRD_RING_BATCH, &c->hp, &c->hc);
        case PEER_PIPE:
                if (pipe2(c->fd, O_CLOEXEC) < 0)
                        return -errno;
                if (fcntl(c->fd[1], F_SETPIPE_SZ, (int)c->pipe_sz) < 0)
                        return -errno;
                e = fcntl(c->fd[1], F_GETPIPE_SZ);
                c->pipe_sz = e > 0 ? (size_t)e : c->pipe_sz;
                return 0;
        case PEER_SOCK:
                return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd) < 0 ? -errno : 0;
        case PEER_SEED:
                return seed_create(&c->seed, c->cap);
        case PEER_RAW:
                return raw_setup(&c->raw, c->cap);
        default:
                return -EINVAL;
        }
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/* After fork: each side takes its end and drops the other. */
static int chan_side(struct chan *c, int consumer)
{
        switch (c->peer) {
        case PEER_BROOD:
        case PEER_BROOD_ZC:
        case PEER_BROOD_BATCH: {
                int e = brd_ring_attach(consumer ? &c->hc : &c->hp, &c->r);

                brd_handle_close(&c->hp);
                brd_handle_close(&c->hc);
                return e;
        }
        case PEER_PIPE:
                close_fd(&c->fd[consumer ? 1 : 0]);
                return 0;
        case PEER_SOCK:
                close_fd(&c->fd[consumer ? 0 : 1]);
                return 0;
        case PEER_SEED:
                if (consumer)
                        c->seed.ptr = 0;
                return seed_map(&c->seed);
        case PEER_RAW:
                return 0;
        default:
                return -EINVAL;
        }
}

/* Producer: EOF.  Consumer: done.  Parent: everything it still holds. */
static void chan_close(struct chan *c)
{
        if (c->r)
                brd_ring_close(c->r);
        c->r = NULL;
        brd_handle_close(&c->hp);
        brd_handle_close(&c->hc);
        close_fd(&c->fd[0]);
        close_fd(&c->fd[1]);
        seed_destroy(&c->seed);
        raw_destroy(&c->raw);
}

static ALWAYS_INLINE int x_send(struct chan *c, enum peer p, const unsigned char *src, size_t n)
{
        void *b;
        int e;

        switch (p) {
        case PEER_BROOD:
        case PEER_BROOD_BATCH:
                return brd_ring_send(c->r, src, n, -1);
        case PEER_BROOD_ZC:
                e = brd_ring_reserve(c->r, n, &b, -1);
                if (e < 0)
                        return e;
                brd__copy(b, src, n);        /* the copy send does inside */
                return brd_ring_commit(c->r, n);
        case PEER_PIPE:
                return write_full(c->fd[1], src, n);
        case PEER_SOCK:
                return write_full(c->fd[0], src, n);
        case PEER_SEED:
                return seed_send(&c->seed, src, (uint32_t)n);
        case PEER_RAW:
                return raw_send(&c->raw, c->cap, src, n);
        default:
                return -EINVAL;
        }
}

static int x_eof(struct chan *c)
{
        uint32_t eof = SEED_EOF;
        int e = 0;

        if (c->peer == PEER_SEED) {
                e = seed_put(&c->seed, &eof, sizeof(eof));
                if (e == 0 && c->seed.pending)
                        e = efd_write(c->seed.efd_data, c->seed.pending);
        }
        if (c->peer == PEER_RAW && c->raw.ctl)
                raw_eof(&c->raw);
        chan_close(c);
        return e;
}

/* Length of the next message (its bytes at *ret_msg), -EPIPE at EOF. */
static ALWAYS_INLINE ssize_t x_recv(struct chan *c, enum peer p, const void **ret_msg)
{
        ssize_t n;

        switch (p) {
        case PEER_BROOD:
        case PEER_BROOD_BATCH:
                *ret_msg = c->rx;
                return brd_ring_recv(c->r, c->rx, c->size, -1);
        case PEER_BROOD_ZC:
                return brd_ring_peek(c->r, ret_msg, -1);
        case PEER_PIPE:
        case PEER_SOCK:
                *ret_msg = c->rx;
                n = read_full(c->fd[p == PEER_PIPE ? 0 : 1], c->rx, c->size);
                return n == 0 ? -EPIPE : n;
        case PEER_SEED:
                *ret_msg = c->rx;
                return seed_recv(&c->seed, c->rx, c->size);
        case PEER_RAW:
                *ret_msg = c->rx;
                return raw_recv(&c->raw, c->cap, c->rx);
        default:
                return -EINVAL;
        }
}

static ALWAYS_INLINE int x_done(struct chan *c, enum peer p)
{
        return p == PEER_BROOD_ZC ? brd_ring_release(c->r) : 0;
}

/*
 * Message i = slot i % nslot of the random source buffer, with i in its
 * first 8 bytes.  The stamp is written half a lap of slots ahead of the send:
 * stamped right before it, the send's (vector) loads of the slot would have
 * to wait for the 8-byte store to retire (a store-forwarding stall, ~1.6 ns
 * a message here): a cost of this harness, not of any peer, and invisible
 * next to a syscall but a fifth of a small brood send.  The slots stay
 * within 16 KiB (one slot from 16 KiB up, where the stall is noise), so the
 * source is as hot as the single buffer every peer copied from before:
 * spread over 256 KiB, it cost the 4 KiB row a quarter, every peer alike.
 */
#define SLOTS_MAX   64u
#define SLOTS_BYTES (16 * KiB)

static size_t slot_count(size_t size)
{
        size_t n = SLOTS_MAX;

        while (n > 1 && n * size > SLOTS_BYTES)
                n /= 2;
        return n;
}

static ALWAYS_INLINE unsigned char *slot(unsigned char *src, size_t n, size_t nslot, uint64_t i)
{
        return src + (i & (nslot - 1)) * n;
}

static ALWAYS_INLINE void stamp(unsigned char *m, size_t n, uint64_t i)
{
        /* i's address must not escape (a memcpy of variable size would take
         * it): the loop counter would live in memory, a store and a reload
         * per message on the loop's critical path (the 8 B row: 78 against
         * 99 M/s far apart, measured). */
        uint64_t v = i;

        if (__builtin_expect(n >= 8, 1)) {
                memcpy(m, &v, 8);
        } else {
                for (size_t k = 0; k < n; k++, v >>= 8)
                        m[k] = (unsigned char)v;
        }
}

static ALWAYS_INLINE int produce(struct chan *c, enum peer p, unsigned char *src,
                                 uint64_t nmax, int64_t deadline, uint64_t *ret_sent)
{
        /*
         * Lean on purpose: with the two CPUs far apart, a fast producer is
         * bound by how many messages fit its out-of-order window, and a
         * multiply or two per message here cost brood's 8 B row a fifth
         * (measured).  Pointers step through the slots; the clock is read
         * every 4096 small messages (~15 us at the fastest).
         */
        const uint64_t mask = c->size >= 4096 ? 0 : 4095;
        size_t n = c->size, nslot = slot_count(n);
        unsigned char *end = src + nslot * n, *m = src, *next = src + nslot / 2 * n;
        uint64_t i;
        int e = 0;

        for (i = 0; i < nslot / 2; i++)
                stamp(slot(src, n, nslot, i), n, i);
        for (i = 0; i < nmax; i++) {
                if (!(i & mask) && i >= c->nmin && bc_now_ns() >= deadline)
                        break;
                stamp(next, n, i + nslot / 2);  /* == slot(i + nslot / 2) */
                e = x_send(c, p, m, n);
                if (e < 0)
                        break;
                m += n;
                if (m == end)
                        m = src;
                next += n;
                if (next == end)
                        next = src;
        }
        *ret_sent = i;
        return e;
}

static ALWAYS_INLINE int consume(struct chan *c, enum peer p, int verify, uint64_t warm)
{
        uint64_t count = 0, bytes = 0, h = 0xcbf29ce484222325ull, sink = 0;
        const void *m;
        ssize_t n;
        int e;

        for (;;) {
                n = x_recv(c, p, &m);
                if (n < 0)
                        break;
                if (verify) {
                        h = bc_hash(h ^ (uint64_t)n, m, (size_t)n);
                } else if (n >= 8) {
                        uint64_t a, b;

                        memcpy(&a, m, 8);
                        memcpy(&b, (const unsigned char *)m + n - 8, 8);
                        sink ^= a + b;
                }
                e = x_done(c, p);
                if (e < 0) {
                        n = e;
                        break;
                }
                count++;
                bytes += (size_t)n;
                if (count == warm)
                        res->t_first = bc_now_ns();
        }
        res->t_end = bc_now_ns();
        res->count = count;
        res->bytes = bytes;
        res->hash = h;
        res->warm = warm;
        c->sink = sink;
        bc_sink(sink);
        return n == -EPIPE ? 0 : (int)n;
}

static int produce_any(struct chan *c, unsigned char *src, uint64_t nmax, int64_t deadline,
                       uint64_t *ret_sent)
{
        switch (c->peer) {
        case PEER_BROOD:    return produce(c, PEER_BROOD, src, nmax, deadline, ret_sent);
        case PEER_BROOD_ZC: return produce(c, PEER_BROOD_ZC, src, nmax, deadline, ret_sent);
        case PEER_BROOD_BATCH:
                return produce(c, PEER_BROOD_BATCH, src, nmax, deadline, ret_sent);
        case PEER_PIPE:     return produce(c, PEER_PIPE, src, nmax, deadline, ret_sent);
        case PEER_SOCK:     return produce(c, PEER_SOCK, src, nmax, deadline, ret_sent);
        case PEER_SEED:     return produce(c, PEER_SEED, src, nmax, deadline, ret_sent);
        case PEER_RAW:      return produce(c, PEER_RAW, src, nmax, deadline, ret_sent);
        default:            return -EINVAL;
        }
}

static int consume_any(struct chan *c, int verify, uint64_t warm)
{
        switch (c->peer) {
        case PEER_BROOD:    return consume(c, PEER_BROOD, verify, warm);
        case PEER_BROOD_ZC: return consume(c, PEER_BROOD_ZC, verify, warm);
        case PEER_BROOD_BATCH: return consume(c, PEER_BROOD_BATCH, verify, warm);
        case PEER_PIPE:     return consume(c, PEER_PIPE, verify, warm);
        case PEER_SOCK:     return consume(c, PEER_SOCK, verify, warm);
        case PEER_SEED:     return consume(c, PEER_SEED, verify, warm);
        case PEER_RAW:      return consume(c, PEER_RAW, verify, warm);
        default:            return -EINVAL;
        }
}

static unsigned char *src_buf, *rx_buf;        /* 1 MiB each, allocated once */

struct stream_fig {
        double mps, gbps;               /* NaN when the case failed */
        uint64_t count;
};

static size_t ring_cap_for(size_t size)
{
        return size * 16 > 256 * KiB ? size * 16 : 256 * KiB;
}

static size_t pipe_sz_for(size_t size)
{
        size_t c = ring_cap_for(size);

        return c > MiB ? MiB : c;
}

/* Messages the consumer receives before it starts its clock: one lap of the
 * shared buffer (first-touch faults), a few for the kernel peers. */
static uint64_t warm_for(const struct chan *c)
{
        if (c->peer == PEER_PIPE || c->peer == PEER_SOCK)
                return 16;
        return c->cap / (c->size + 8) + 1;
}

static int run_stream(enum peer p, size_t size, int verify, struct stream_fig *f)
{
        struct chan c = { .peer = p, .size = size, .cap = ring_cap_for(size),
                          .pipe_sz = pipe_sz_for(size), .rx = rx_buf };
        int64_t budget = verify ? opt.verify_ns : opt.case_ns;
        uint64_t nmax = (uint64_t)(verify ? 512 * MiB : 64ull << 30) / size, sent = 0;
        int ready = -1, ready_w = -1, e, e2;
        const char *what = "setup";
        pid_t pid;

        if (nmax > (64u << 20))
                nmax = 64u << 20;
        /* Enough for a rate after the warm-up (see below), however slowly a
         * loaded machine runs the case: a peer that spins (the raw ring)
         * can move 1 MiB messages at a crawl when the two CPUs are shared. */
        c.nmin = 2 * warm_for(&c) + 2;
        f->mps = f->gbps = NAN;
        f->count = 0;
        e = chan_setup(&c);
        if (e < 0)
                goto fail;
        alarm(60);      /* a hung peer kills the run (children follow by PDEATHSIG) */
        pid = fork_child(&ready, &ready_w);
        if (pid < 0) {
                e = pid;
                goto fail;
        }
        if (pid == 0) {
                e = chan_side(&c, 1);
                if (e < 0) {
                        res->err = e;
                        _exit(2);
                }
                child_ready(ready_w);
                e = consume_any(&c, verify, warm_for(&c));
                chan_close(&c);
                res->err = e;
                _exit(0);
        }
        what = "producer attach";
        e = chan_side(&c, 0);
        if (e == 0) {
                what = "consumer start";
                e = wait_ready(ready);
        } else {
                close(ready);
        }
        if (e == 0) {
                what = "send";
                e = produce_any(&c, src_buf, nmax, bc_now_ns() + budget, &sent);
                e2 = x_eof(&c);
                if (e == 0)
                        e = e2;
        }
        chan_close(&c);
        e2 = reap(pid, e < 0);
        alarm(0);
        if (e == 0 && e2 < 0) {
                what = "consumer";
                e = e2;
        }
        if (e < 0)
                goto fail;
        if (res->count != sent || res->bytes != sent * size) {
                fprintf(stderr, "ring-bench: %s %zu B: sent %llu messages, received %llu (%llu bytes)\n",
                        peer_name[p], size, (unsigned long long)sent,
                        (unsigned long long)res->count, (unsigned long long)res->bytes);
                failures++;
                return -EBADMSG;
        }
        if (verify) {
                uint64_t h = 0xcbf29ce484222325ull;

                for (uint64_t i = 0; i < sent; i++) {
                        unsigned char *m = slot(src_buf, size, slot_count(size), i);

                        stamp(m, size, i);
                        h = bc_hash(h ^ size, m, size);
                }
                if (h != res->hash) {
                        fprintf(stderr, "ring-bench: %s %zu B: CHECKSUM MISMATCH over %llu messages\n",
                                peer_name[p], size, (unsigned long long)sent);
                        failures++;
                        return -EBADMSG;
                }
        }
        f->count = sent;
        if (res->t_first && sent > 2 * res->warm && res->t_end > res->t_first) {
                double secs = (double)(res->t_end - res->t_first) / 1e9;

                f->mps = (double)(sent - res->warm) / secs;
        } else {
                f->mps = NAN;   /* too few messages for a rate after warm-up */
        }
        f->gbps = f->mps * (double)size / 1e9;
        return 0;
fail:
        chan_close(&c);
        if (ready_w >= 0)
                close(ready_w);
        alarm(0);
        fprintf(stderr, "ring-bench: %s %zu B: %s failed: %s\n", peer_name[p], size, what,
                strerror(-e));
        failures++;
        return e;
}

/* ------------------------------------------------------------ round trip */

enum rt_peer { RT_BROOD, RT_BROOD_NOSPIN, RT_EVENTFD, RT_PIPE, RT_RAW, NRT };

static const char *const rt_name[NRT] = { "brood_default", "brood_nospin", "eventfd", "pipe",
                                          "raw_shm" };
static const char *const rt_title[NRT] = { "brood default", "brood spin off", "raw eventfd", "pipe",
                                           "raw shm spin" };

#define RT_MSG 64
#define RT_MAX_SAMPLES (1u << 21)

/*
 * The floor of any shared-memory ping-pong (RT_RAW): two shared areas, in
 * each 72-byte frames packed back to back like brood's (a word, then the
 * 64-byte payload), the word = message number + 1 stored last with release;
 * the reader spins on that word alone (no index, no sleep, no checks, no
 * peer-death care, a spin that never gives up).  What the CPUs' cache-line
 * transfers allow a message, measured beside brood in the same run.
 */
#define RT_RAW_AREA  (64 * KiB)
#define RT_RAW_FRAME (8 + RT_MSG)
#define RT_RAW_SLOTS (RT_RAW_AREA / RT_RAW_FRAME)
#define RT_RAW_STOP  (~(AO_t)0)

struct rt_raw {
        _Alignas(4096) unsigned char area[2][RT_RAW_AREA];      /* a: parent -> child, b: back */
};

struct rt_chan {
        enum rt_peer     peer;
        struct brd_handle h[4];         /* a producer, a consumer, b producer, b consumer */
        struct brd_ring *tx, *rx;
        int              a[2], b[2];    /* pipe pairs / eventfds in a[0], b[0] */
        struct rt_raw   *raw;           /* RT_RAW: shared, mapped before the fork */
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

static int rt_setup(struct rt_chan *c)
{
        for (int i = 0; i < 4; i++)
                c->h[i].nfds = 0;
        c->a[0] = c->a[1] = c->b[0] = c->b[1] = -1;
        c->raw = NULL;
        c->seq = 0;
        switch (c->peer) {
        case RT_BROOD:
        case RT_BROOD_NOSPIN: {
                unsigned fl = c->peer == RT_BROOD_NOSPIN ? BRD_RING_NOSPIN : 0;
                int e;

                e = brd_ring_create(64 * KiB, fl, &c->h[0], &c->h[1]);
                return e < 0 ? e : brd_ring_create(64 * KiB, fl, &c->h[2], &c->h[3]);
        }
        case RT_EVENTFD:
                c->a[0] = eventfd(0, EFD_CLOEXEC);
                c->b[0] = eventfd(0, EFD_CLOEXEC);
                return c->a[0] < 0 || c->b[0] < 0 ? -errno : 0;
        case RT_PIPE:
                return pipe2(c->a, O_CLOEXEC) < 0 || pipe2(c->b, O_CLOEXEC) < 0 ? -errno : 0;
        case RT_RAW: {
                void *m = mmap(NULL, sizeof(struct rt_raw), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

                if (m == MAP_FAILED)
                        return -errno;
                c->raw = m;
                return 0;
        }
        default:
                return -EINVAL;
        }
}

static int rt_side(struct rt_chan *c, int child)
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
        default:
                return -EINVAL;
        }
}

/* Child: echo until EOF (eventfd: a value of 2 means stop). */
static ALWAYS_INLINE int rt_echo(struct rt_chan *c, enum rt_peer p)
{
        uint64_t v, count = 0;
        ssize_t n;
        int e;

        for (;;) {
                switch (p) {
                case RT_BROOD:
                case RT_BROOD_NOSPIN:
                        n = brd_ring_recv(c->rx, c->buf, RT_MSG, -1);
                        if (n == -EPIPE)
                                goto out;
                        if (n < 0)
                                return (int)n;
                        e = brd_ring_send(c->tx, c->buf, (size_t)n, -1);
                        if (e == 0)
                                e = brd_ring_flush(c->tx);
                        break;
                case RT_EVENTFD:
                        e = efd_read(c->a[0], &v);
                        if (e == 0 && v >= 2)
                                goto out;
                        if (e == 0)
                                e = efd_write(c->b[0], 1);
                        break;
                case RT_PIPE:
                        n = read_full(c->a[0], c->buf, RT_MSG);
                        if (n == 0)
                                goto out;
                        if (n < 0)
                                return (int)n;
                        e = write_full(c->b[1], c->buf, RT_MSG);
                        break;
                case RT_RAW:
                        if (raw_get(c, 0, c->seq))
                                goto out;
                        raw_put(c, 1, c->seq, c->seq + 1);
                        c->seq++;
                        e = 0;
                        break;
                default:
                        return -EINVAL;
                }
                if (e < 0)
                        return e;
                count++;
        }
out:
        res->count = count;
        return 0;
}

static uint64_t *rt_samples;

static ALWAYS_INLINE int rt_loop(struct rt_chan *c, enum rt_peer p, int64_t deadline, size_t *ret_n)
{
        size_t i;
        int64_t t = bc_now_ns(), t1;
        int e = 0;

        for (i = 0; i < RT_MAX_SAMPLES; i++) {
                e = rt_ping(c, p);
                t1 = bc_now_ns();
                if (e < 0)
                        break;
                rt_samples[i] = (uint64_t)(t1 - t);
                t = t1;
                if (t >= deadline)
                        break;
        }
        *ret_n = i;
        return e;
}

static int rt_loop_any(struct rt_chan *c, int64_t deadline, size_t *ret_n)
{
        switch (c->peer) {
        case RT_BROOD:        return rt_loop(c, RT_BROOD, deadline, ret_n);
        case RT_BROOD_NOSPIN: return rt_loop(c, RT_BROOD_NOSPIN, deadline, ret_n);
        case RT_EVENTFD:      return rt_loop(c, RT_EVENTFD, deadline, ret_n);
        case RT_PIPE:         return rt_loop(c, RT_PIPE, deadline, ret_n);
        case RT_RAW:          return rt_loop(c, RT_RAW, deadline, ret_n);
        default:              return -EINVAL;
        }
}

static int rt_echo_any(struct rt_chan *c)
{
        switch (c->peer) {
        case RT_BROOD:        return rt_echo(c, RT_BROOD);
        case RT_BROOD_NOSPIN: return rt_echo(c, RT_BROOD_NOSPIN);
        case RT_EVENTFD:      return rt_echo(c, RT_EVENTFD);
        case RT_PIPE:         return rt_echo(c, RT_PIPE);
        case RT_RAW:          return rt_echo(c, RT_RAW);
        default:              return -EINVAL;
        }
}

struct rt_fig {
        double p50, p99;                /* ns, NaN when not measured */
        size_t n;
};

static int run_rt(enum rt_peer p, int64_t budget, struct rt_fig *f)
{
        struct rt_chan c = { .peer = p };
        int ready = -1, ready_w = -1, e, e2;
        const char *what = "setup";
        size_t n = 0, skip;
        pid_t pid;

        f->p50 = f->p99 = NAN;
        f->n = 0;
        e = rt_setup(&c);
        if (e < 0)
                goto fail;
        alarm(60);
        pid = fork_child(&ready, &ready_w);
        if (pid < 0) {
                e = pid;
                goto fail;
        }
        if (pid == 0) {
                e = rt_side(&c, 1);
                if (e < 0) {
                        res->err = e;
                        _exit(2);
                }
                child_ready(ready_w);
                res->err = rt_echo_any(&c);
                rt_close(&c);
                _exit(0);
        }
        what = "attach";
        e = rt_side(&c, 0);
        if (e == 0)
                e = wait_ready(ready);
        else
                close(ready);
        if (e == 0) {
                what = "ping-pong";
                e = rt_loop_any(&c, bc_now_ns() + budget, &n);
                if (p == RT_EVENTFD && e == 0)
                        e = efd_write(c.a[0], 2);
                if (p == RT_RAW && e == 0)
                        raw_put(&c, 0, c.seq, RT_RAW_STOP);
        }
        rt_close(&c);
        e2 = reap(pid, e < 0);
        alarm(0);
        if (e == 0 && e2 < 0) {
                what = "echo child";
                e = e2;
        }
        if (e < 0)
                goto fail;
        /* the first 1% (and 100) round trips warm caches and branch predictors */
        skip = n / 100 + 100;
        if (n <= skip + 100) {
                fprintf(stderr, "ring-bench: round trip %s: only %zu samples\n", rt_name[p], n);
                return -EAGAIN;
        }
        f->n = n - skip;
        f->p50 = (double)bc_percentile_u64(rt_samples + skip, n - skip, 50);
        f->p99 = (double)bc_percentile_u64(rt_samples + skip, n - skip, 99);
        return 0;
fail:
        rt_close(&c);
        if (ready_w >= 0)
                close(ready_w);
        alarm(0);
        fprintf(stderr, "ring-bench: round trip %s: %s failed: %s\n", rt_name[p], what,
                strerror(-e));
        failures++;
        return e;
}

/* ------------------------------------------------------------ idle CPU */

static int64_t rusage_cpu_ns(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
               ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/*
 * A consumer fed a 64-byte message every @period_ns (0: none, it stays
 * blocked on an empty ring) for opt.idle_ns, on a ring created with
 * @flags: its CPU use in % of a core (*ret_cpu), and the doorbells the
 * producer rang per message (*ret_bells; NaN without messages).  The
 * producer paces by spinning on the clock, so that only the consumer's
 * waits are measured.  0, or -errno (the figures are then NaN).
 */
static int run_paced(int64_t period_ns, unsigned flags, double *ret_cpu, double *ret_bells)
{
        struct chan c = { .peer = PEER_BROOD, .size = 64, .cap = 64 * KiB, .rx = rx_buf,
                          .ring_flags = flags };
        int ready = -1, ready_w = -1, e;
        struct brd_ring_stats st = { 0 };
        uint64_t sent = 0;
        pid_t pid;

        *ret_cpu = *ret_bells = NAN;
        e = chan_setup(&c);
        if (e < 0)
                goto fail;
        alarm(60);
        pid = fork_child(&ready, &ready_w);
        if (pid < 0) {
                e = pid;
                goto fail;
        }
        if (pid == 0) {
                uint64_t n_msgs = 0;
                int64_t c0, t0;
                const void *m;
                ssize_t n;

                e = chan_side(&c, 1);
                if (e < 0) {
                        res->err = e;
                        _exit(2);
                }
                c0 = rusage_cpu_ns();
                t0 = bc_now_ns();
                child_ready(ready_w);
                while ((n = x_recv(&c, PEER_BROOD, &m)) >= 0)   /* until the producer closes */
                        n_msgs++;
                res->wall_ns = bc_now_ns() - t0;
                res->cpu_ns = rusage_cpu_ns() - c0;
                res->count = n_msgs;
                res->err = n == -EPIPE ? 0 : (int)n;
                chan_close(&c);
                _exit(0);
        }
        e = chan_side(&c, 0);
        if (e == 0)
                e = wait_ready(ready);
        else
                close(ready);
        if (e == 0 && period_ns == 0) {
                struct timespec ts = { .tv_sec = opt.idle_ns / 1000000000,
                                       .tv_nsec = opt.idle_ns % 1000000000 };

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        } else if (e == 0) {
                int64_t next = bc_now_ns(), end = next + opt.idle_ns;

                for (; next < end && e == 0; next += period_ns) {
                        while (bc_now_ns() < next)
                                brd__cpu_relax();
                        e = x_send(&c, PEER_BROOD, src_buf, c.size);
                        sent++;
                }
                if (e == 0)
                        brd_ring_stats(c.r, &st);
        }
        chan_close(&c);         /* EOF wakes the consumer */
        e = e < 0 ? (reap(pid, 1), e) : reap(pid, 0);
        alarm(0);
        if (e == 0 && res->count != sent)
                e = -EPROTO;    /* a message lost or made up */
        if (e < 0)
                goto fail;
        if (res->wall_ns > 0)
                *ret_cpu = 100.0 * (double)res->cpu_ns / (double)res->wall_ns;
        if (sent)
                *ret_bells = (double)st.doorbells / (double)sent;
        return 0;
fail:
        chan_close(&c);
        if (ready_w >= 0)
                close(ready_w);
        alarm(0);
        fprintf(stderr, "ring-bench: %s consumer: %s\n", period_ns ? "paced" : "idle",
                strerror(-e));
        failures++;
        return e;
}

/* A consumer blocked on an empty ring for opt.idle_ns: its CPU use in % of a
 * core, or NaN. */
static double run_idle(void)
{
        double cpu, bells;

        run_paced(0, 0, &cpu, &bells);
        return cpu;
}

/* ---------------------------------------------------------------- report */

static const size_t sizes[] = { 8, 64, 512, 4 * KiB, 64 * KiB, MiB };
#define NSIZE (sizeof(sizes) / sizeof(sizes[0]))

enum ratio { R_PIPE, R_SOCK, R_SEED, R_ZC, R_RAW, R_RAW_PIPE, NRATIO };
static const char *const ratio_name[NRATIO] = {
        "brood_over_pipe", "brood_over_socketpair", "brood_over_seed", "zerocopy_over_copy",
        "brood_over_raw_ring", "raw_ring_over_pipe",
};

struct row {
        size_t size, cap, pipe_sz;
        double pp_ns, pp_min, pp_max;
        double foreign;                         /* other processes' CPUs during the row */
        struct stream_fig fig[NPEER];           /* medians */
        int verified[NPEER];
        double ratio[NRATIO];                   /* medians of per-pass ratios */
        double memcpy_ratio;                    /* brood copy GB/s / memcpy(1 MiB) */
        double zc_memcpy_ratio;                 /* brood zero-copy GB/s / memcpy(1 MiB) */
        /* 1 MiB row: memcpy(1 MiB) on both CPUs at once, taken before every
         * pass (the slower CPU's GB/s), and brood copy GB/s over it, the
         * median of per-pass ratios. */
        double pair_gbps, pair_ratio;
        double pass_pair[MAXPASS];
        /* Each pass, with the ping-pongs right before and after it: the
         * host can move the CPUs within a row, so the JSON lets passes be
         * grouped by placement across runs. */
        double pass_pp[MAXPASS + 1];
        double pass_mps[NPEER][MAXPASS];
        double pass_rat[NRATIO][MAXPASS];
};

struct target {
        char   name[96];
        double value, threshold;
        double raw;                     /* the same figure for the raw peer, NaN if none */
        int    pass, higher_is_better;
        char   placement[8];
};

static struct row rows[NSIZE];
static struct rt_fig rt_med[NRT];
static double rt_pp, rt_pp_min, rt_pp_max, rt_ratio_pp, rt_ratio_efd, rt_ratio_raw, clock_ns,
              rt_foreign;
static double run_foreign;
static double memcpy_1m, memcpy_16m, memcpy_1m_after, idle_pct;
/* Paced consumer: a message every paced_us[i], ring flags 0 and NOSPIN. */
static const int paced_us[] = { 50, 500 };
#define NPACED (sizeof(paced_us) / sizeof(paced_us[0]))
static double paced_cpu[NPACED][2], paced_bells[NPACED][2];
static struct target targets[16];
static int ntargets;

static double pingpong(void)
{
        double v = bc_cacheline_pingpong_ns(opt.quick ? 20000 : 40000, 3,
                                            opt.pin ? opt.cpu[0] : -1,
                                            opt.pin ? opt.cpu[1] : -1);

        if (v < 0) {
                fprintf(stderr, "ring-bench: cache-line ping-pong: %s\n", strerror((int)-v));
                return NAN;
        }
        return v;
}

/* memcpy(@size) on both CPUs at once, GB/s of the slower; NaN on failure. */
static double memcpy_pair(size_t size)
{
        double v = bc_memcpy_pair_gbps(size, opt.quick ? 10000000 : 20000000,
                                       opt.pin ? opt.cpu[0] : -1, opt.pin ? opt.cpu[1] : -1);

        if (v < 0) {
                fprintf(stderr, "ring-bench: memcpy on both CPUs: %s\n", strerror((int)-v));
                return NAN;
        }
        return v;
}

static double med_finite(const double *v, int n)
{
        double tmp[MAXPASS];
        int k = 0;

        for (int i = 0; i < n; i++)
                if (isfinite(v[i]))
                        tmp[k++] = v[i];
        return k ? bc_median(tmp, (size_t)k) : NAN;
}

static void size_str(char *b, size_t cap, size_t s)
{
        if (s >= MiB)
                snprintf(b, cap, "%zu MiB", s / MiB);
        else if (s >= KiB)
                snprintf(b, cap, "%zu KiB", s / KiB);
        else
                snprintf(b, cap, "%zu B", s);
}

static void run_streaming(void)
{
        for (size_t si = 0; si < NSIZE; si++) {
                struct row *r = &rows[si];
                double mps[NPEER][MAXPASS], gbps[NPEER][MAXPASS], rat[NRATIO][MAXPASS];
                double pp[MAXPASS + 1], pair[MAXPASS], pair_rat[MAXPASS];
                uint64_t cnt[NPEER] = { 0 };
                struct bc_cpu_mark m0, m1;
                char sz[24];

                r->size = sizes[si];
                if (opt.only && r->size != opt.only) {
                        r->pp_ns = r->pp_min = r->pp_max = r->foreign = r->memcpy_ratio = NAN;
                        r->zc_memcpy_ratio = r->pair_gbps = r->pair_ratio = NAN;
                        for (int p = 0; p < NPEER; p++)
                                r->fig[p].mps = r->fig[p].gbps = NAN;
                        for (int k = 0; k < NRATIO; k++)
                                r->ratio[k] = NAN;
                        continue;
                }
                bc_cpu_mark(&m0);

                r->cap = ring_cap_for(r->size);
                r->pipe_sz = pipe_sz_for(r->size);
                size_str(sz, sizeof(sz), r->size);
                fprintf(stderr, "  streaming %s ...\n", sz);
                /* verify pass: every byte checksummed, not timed */
                for (int p = 0; p < NPEER; p++) {
                        struct stream_fig f;

                        r->verified[p] = run_stream((enum peer)p, r->size, 1, &f) == 0;
                }
                for (int pass = 0; pass < opt.passes; pass++) {
                        pp[pass] = pingpong();
                        pair[pass] = r->size == MiB ? memcpy_pair(r->size) : NAN;
                        for (int p = 0; p < NPEER; p++) {
                                struct stream_fig f;

                                run_stream((enum peer)p, r->size, 0, &f);
                                mps[p][pass] = f.mps;
                                gbps[p][pass] = f.gbps;
                                cnt[p] += f.count;
                        }
                        rat[R_PIPE][pass] = mps[PEER_BROOD][pass] / mps[PEER_PIPE][pass];
                        rat[R_SOCK][pass] = mps[PEER_BROOD][pass] / mps[PEER_SOCK][pass];
                        rat[R_SEED][pass] = mps[PEER_BROOD][pass] / mps[PEER_SEED][pass];
                        rat[R_ZC][pass] = mps[PEER_BROOD_ZC][pass] / mps[PEER_BROOD][pass];
                        rat[R_RAW][pass] = mps[PEER_BROOD][pass] / mps[PEER_RAW][pass];
                        rat[R_RAW_PIPE][pass] = mps[PEER_RAW][pass] / mps[PEER_PIPE][pass];
                        pair_rat[pass] = gbps[PEER_BROOD][pass] / pair[pass];
                }
                pp[opt.passes] = pingpong();
                bc_cpu_mark(&m1);
                r->foreign = bc_foreign_cpus(&m0, &m1);
                r->pp_min = r->pp_max = pp[0];
                for (int i = 1; i <= opt.passes; i++) {
                        if (pp[i] < r->pp_min || !isfinite(r->pp_min))
                                r->pp_min = pp[i];
                        if (pp[i] > r->pp_max || !isfinite(r->pp_max))
                                r->pp_max = pp[i];
                }
                r->pp_ns = med_finite(pp, opt.passes + 1);
                for (int p = 0; p < NPEER; p++) {
                        r->fig[p].mps = med_finite(mps[p], opt.passes);
                        r->fig[p].gbps = med_finite(gbps[p], opt.passes);
                        r->fig[p].count = cnt[p];
                }
                for (int k = 0; k < NRATIO; k++)
                        r->ratio[k] = med_finite(rat[k], opt.passes);
                memcpy(r->pass_pp, pp, sizeof(pp));
                memcpy(r->pass_mps, mps, sizeof(mps));
                memcpy(r->pass_rat, rat, sizeof(rat));
                r->memcpy_ratio = r->size == MiB ? r->fig[PEER_BROOD].gbps / memcpy_1m : NAN;
                r->zc_memcpy_ratio = r->size == MiB ? r->fig[PEER_BROOD_ZC].gbps / memcpy_1m : NAN;
                memcpy(r->pass_pair, pair, sizeof(pair));
                r->pair_gbps = med_finite(pair, opt.passes);
                r->pair_ratio = med_finite(pair_rat, opt.passes);
        }
}

static void run_roundtrip(void)
{
        double p50[NRT][MAXPASS], p99[NRT][MAXPASS], pp[MAXPASS + 1];
        double rpp[MAXPASS], refd[MAXPASS], rraw[MAXPASS];
        struct bc_cpu_mark m0, m1;
        struct rt_fig f;

        bc_cpu_mark(&m0);

        fprintf(stderr, "  round trip ...\n");
        /* every sample holds one clock read: say what it costs */
        {
                int64_t t0 = bc_now_ns(), t = t0;

                for (int i = 0; i < 100000; i++)
                        t = bc_now_ns();
                clock_ns = (double)(t - t0) / 100000;
        }
        /* warm-up pass of each peer, not counted */
        for (int p = 0; p < NRT; p++)
                run_rt((enum rt_peer)p, opt.rt_ns / 3, &f);
        for (int pass = 0; pass < opt.passes; pass++) {
                pp[pass] = pingpong();
                for (int p = 0; p < NRT; p++) {
                        run_rt((enum rt_peer)p, opt.rt_ns, &f);
                        p50[p][pass] = f.p50;
                        p99[p][pass] = f.p99;
                }
                /* A round trip against a round trip: the cache line's
                 * ping-pong is two one-way hand-offs. */
                rpp[pass] = p50[RT_BROOD][pass] / (2 * pp[pass]);
                refd[pass] = p50[RT_BROOD_NOSPIN][pass] / p50[RT_EVENTFD][pass];
                rraw[pass] = p50[RT_BROOD][pass] / p50[RT_RAW][pass];
        }
        pp[opt.passes] = pingpong();
        bc_cpu_mark(&m1);
        rt_foreign = bc_foreign_cpus(&m0, &m1);
        rt_pp = med_finite(pp, opt.passes + 1);
        rt_pp_min = rt_pp_max = pp[0];
        for (int i = 1; i <= opt.passes; i++) {
                rt_pp_min = pp[i] < rt_pp_min ? pp[i] : rt_pp_min;
                rt_pp_max = pp[i] > rt_pp_max ? pp[i] : rt_pp_max;
        }
        for (int p = 0; p < NRT; p++) {
                rt_med[p].p50 = med_finite(p50[p], opt.passes);
                rt_med[p].p99 = med_finite(p99[p], opt.passes);
        }
        rt_ratio_pp = med_finite(rpp, opt.passes);
        rt_ratio_efd = med_finite(refd, opt.passes);
        rt_ratio_raw = med_finite(rraw, opt.passes);
}

/* @raw: the figure the raw peer (spin ring, or raw shm spin for the round
 * trip) gets in the same place: what a plain ring reaches here. */
static void add_target(const char *name, double value, double threshold, int higher,
                       const char *placement, double raw)
{
        struct target *t;

        if (ntargets >= (int)(sizeof(targets) / sizeof(targets[0])))
                return;
        t = &targets[ntargets++];
        snprintf(t->name, sizeof(t->name), "%s", name);
        t->value = value;
        t->raw = raw;
        t->threshold = threshold;
        t->higher_is_better = higher;
        t->pass = isfinite(value) && (higher ? value >= threshold : value <= threshold);
        snprintf(t->placement, sizeof(t->placement), "%s", placement ? placement : "");
}

static const struct row *row_of(size_t size)
{
        for (size_t i = 0; i < NSIZE; i++)
                if (rows[i].size == size)
                        return &rows[i];
        return NULL;
}

static void eval_targets(void)
{
        const struct row *r64 = row_of(64), *r4k = row_of(4 * KiB), *r1m = row_of(MiB);
        const char *pl;
        int zc_ok = 1;
        double zc_min = INFINITY;

        pl = bc_placement(r64->pp_ns);
        add_target("64 B: brood/pipe msgs/s >= 25x far, 40x near", r64->ratio[R_PIPE],
                   pl && !strcmp(pl, "near") ? 40 : 25, 1, pl, r64->ratio[R_RAW_PIPE]);
        add_target("64 B: brood/seed msgs/s >= 10x", r64->ratio[R_SEED], 10, 1, pl, NAN);
        pl = bc_placement(r4k->pp_ns);
        add_target("4 KiB: brood/pipe >= 2.5x near, 6x far", r4k->ratio[R_PIPE],
                   pl && !strcmp(pl, "far") ? 6 : 2.5, 1, pl, r4k->ratio[R_RAW_PIPE]);
        pl = bc_placement(r1m->pp_ns);
        add_target("1 MiB: brood/pipe(1 MiB buffer) >= 2.5x", r1m->ratio[R_PIPE], 2.5, 1, pl,
                   r1m->ratio[R_RAW_PIPE]);
        add_target("1 MiB: brood GB/s / memcpy(1 MiB) >= 0.15 far, 0.9 near", r1m->memcpy_ratio,
                   pl && !strcmp(pl, "near") ? 0.9 : 0.15, 1, pl, r1m->fig[PEER_RAW].gbps / memcpy_1m);
        add_target("1 MiB: zero-copy GB/s / memcpy(1 MiB), the same", r1m->zc_memcpy_ratio,
                   pl && !strcmp(pl, "near") ? 0.9 : 0.15, 1, pl, NAN);
        for (size_t i = 0; i < NSIZE; i++) {
                if (!isfinite(rows[i].ratio[R_ZC]))
                        zc_ok = 0;
                else if (rows[i].ratio[R_ZC] < zc_min)
                        zc_min = rows[i].ratio[R_ZC];
        }
        add_target("zero-copy >= copy at every size (min zc/copy)", zc_ok ? zc_min : NAN, 1.0, 1,
                   NULL, NAN);
        pl = bc_placement(rt_pp);
        add_target("round trip p50 <= 2x cache-line ping-pong (round trip)", rt_ratio_pp, 2.0, 0, pl,
                   rt_med[RT_RAW].p50 / (2 * rt_pp));
        add_target("spin off p50 <= 1.1x raw eventfd p50", rt_ratio_efd, 1.1, 0, pl, NAN);
        add_target("idle blocked consumer < 1% of a core", idle_pct, 1.0, 0, NULL, NAN);
}

static void fmt_num(char *b, size_t cap, double v, int width, int prec)
{
        if (isfinite(v))
                snprintf(b, cap, "%*.*f", width, prec, v);
        else
                snprintf(b, cap, "%*s", width, "-");
}

static void print_report(void)
{
        char a[32], b[32], c[32], d[32], e[32], f[32], g[32];

        printf("\n== limits (one process) ==\n");
        printf("memcpy 1 MiB %.2f GB/s (%.2f at the end), 16 MiB %.2f GB/s\n", memcpy_1m,
               memcpy_1m_after, memcpy_16m);
        printf("cl-pp = cache-line ping-pong between the two processes, ns per one-way hand-off;\n"
               "placement \"near\" when < 150 ns, else \"far\" (targets depend on it)\n");

        printf("\n== streaming: producer -> consumer in two processes; M/s = 10^6 messages/s, "
               "GB/s = 10^9 payload B/s; median of %d passes ==\n", opt.passes);
        printf("%-7s %-20s", "size", "cl-pp ns  other");
        for (int p = 0; p < NPEER; p++)
                printf(" | %-18s", peer_title[p]);
        printf("\n%-7s %-20s", "", "(min-max)  CPUs");
        for (int p = 0; p < NPEER; p++)
                printf(" | %9s %7s ", "M/s", "GB/s");
        printf("\n");
        for (size_t i = 0; i < NSIZE; i++) {
                const struct row *r = &rows[i];
                char sz[24], pp[32];

                if (opt.only && r->size != opt.only)
                        continue;
                size_str(sz, sizeof(sz), r->size);
                snprintf(pp, sizeof(pp), "%.0f %-4s %5.2f", r->pp_ns, bc_placement(r->pp_ns),
                         r->foreign);
                printf("%-7s %-20s", sz, pp);
                for (int p = 0; p < NPEER; p++) {
                        fmt_num(a, sizeof(a), r->fig[p].mps / 1e6, 9, r->fig[p].mps >= 1e7 ? 2 : 3);
                        fmt_num(b, sizeof(b), r->fig[p].gbps, 7, 3);
                        printf(" | %s %s%c", a, b, r->verified[p] ? ' ' : '!');
                }
                snprintf(pp, sizeof(pp), "(%.0f-%.0f)", r->pp_min, r->pp_max);
                printf("\n%-7s %-20s\n", "", pp);
        }
        printf("(ring = max(256 KiB, 16 x size): 16 MiB for 1 MiB; same size for the seed buffer; "
               "pipe buffer = ring size up to 1 MiB; '!' = checksum pass failed;\n"
               " other CPUs = CPU time other processes and the host (steal) used during the row)\n");

        printf("\n-- ratios (msgs/s, brood = copy API; medians of per-pass ratios; raw = the raw spin\n"
               "   ring: hand-written, brood's frames and copies, no sleep, no checks, no\n"
               "   bookkeeping, so raw/pipe is what a ring of this design reaches here) --\n");
        printf("%-7s %10s %12s %10s %9s %16s %10s %9s\n", "size", "brood/pipe", "brood/socket",
               "brood/seed", "zc/copy", "brood/memcpy1M", "brood/raw", "raw/pipe");
        for (size_t i = 0; i < NSIZE; i++) {
                const struct row *r = &rows[i];
                char sz[24];

                if (opt.only && r->size != opt.only)
                        continue;
                size_str(sz, sizeof(sz), r->size);
                fmt_num(a, sizeof(a), r->ratio[R_PIPE], 10, 2);
                fmt_num(b, sizeof(b), r->ratio[R_SOCK], 12, 2);
                fmt_num(c, sizeof(c), r->ratio[R_SEED], 10, 2);
                fmt_num(d, sizeof(d), r->ratio[R_ZC], 9, 2);
                fmt_num(e, sizeof(e), r->memcpy_ratio, 16, 3);
                fmt_num(f, sizeof(f), r->ratio[R_RAW], 10, 2);
                fmt_num(g, sizeof(g), r->ratio[R_RAW_PIPE], 9, 2);
                printf("%-7s %s %s %s %s %s %s %s\n", sz, a, b, c, d, e, f, g);
                if (isfinite(r->pair_gbps))
                        printf("%-7s memcpy(%s) on both CPUs at once: %.2f GB/s each (%.2f alone); "
                               "brood copy / that: %.3f\n"
                               "%-7s (the copy API copies every byte twice, once on each CPU; "
                               "that pair is its ceiling)\n", "", sz, r->pair_gbps, memcpy_1m,
                               r->pair_ratio, "");
        }

        if (opt.only)
                return;         /* --size: one streaming row, nothing else ran */
        printf("\n== 64-byte round trip (ping-pong over two channels), ns; median of %d passes ==\n",
               opt.passes);
        printf("cache-line ping-pong: %.0f ns one-way, %.0f ns round trip, %s (one-way min %.0f, "
               "max %.0f)\n", rt_pp, 2 * rt_pp, bc_placement(rt_pp), rt_pp_min, rt_pp_max);
        printf("one clock read per sample (CLOCK_MONOTONIC, included): %.1f ns; other processes "
               "used %.2f CPUs meanwhile\n", clock_ns, rt_foreign);
        printf("%-16s %10s %10s %12s\n", "peer", "p50", "p99", "p50/cl-rt");
        for (int p = 0; p < NRT; p++) {
                fmt_num(a, sizeof(a), rt_med[p].p50, 10, 0);
                fmt_num(b, sizeof(b), rt_med[p].p99, 10, 0);
                fmt_num(c, sizeof(c), rt_med[p].p50 / (2 * rt_pp), 12, 2);
                printf("%-16s %s %s %s\n", rt_title[p], a, b, c);
        }
        printf("brood default p50 / cache-line round trip: %.2f;  spin-off p50 / eventfd p50: %.2f\n",
               rt_ratio_pp, rt_ratio_efd);
        printf("brood default p50 / raw shm spin p50 (the floor of any shared-memory message): %.2f\n",
               rt_ratio_raw);

        printf("\n== idle ==\nconsumer blocked on an empty brood ring for %.1f s: %.3f%% of a core\n",
               (double)opt.idle_ns / 1e9, idle_pct);
        printf("\n== paced: a 64 B message every P us for %.1f s (the producer spins on the clock) ==\n"
               "consumer CPU in %% of a core, doorbells the producer rang per message\n"
               "P us    brood default      spin off\n", (double)opt.idle_ns / 1e9);
        for (size_t i = 0; i < NPACED; i++)
                printf("%-6d  %6.1f%%  %5.2f    %6.1f%%  %5.2f\n", paced_us[i], paced_cpu[i][0],
                       paced_bells[i][0], paced_cpu[i][1], paced_bells[i][1]);

        printf("\n== targets of issue 3 (informational; raw = what the raw spin ring, or for the\n"
               "   round trip the raw shm spin, gets in the same place) ==\n");
        if (run_foreign > 0.1)
                printf("WARNING: other processes used %.2f CPUs during this run (of %ld): every "
                       "figure is disturbed, rerun on a quiet machine\n", run_foreign,
                       sysconf(_SC_NPROCESSORS_ONLN));
        for (int i = 0; i < ntargets; i++) {
                const struct target *t = &targets[i];

                char raw[48] = "";

                if (isfinite(t->raw))
                        snprintf(raw, sizeof(raw), "  (raw: %.3f)", t->raw);
                printf("%-4s %-58s %8.3f %s %-6g%s%s%s%s\n", t->pass ? "PASS" : "MISS", t->name,
                       t->value, t->higher_is_better ? ">=" : "<=", t->threshold,
                       t->placement[0] ? " [" : "", t->placement, t->placement[0] ? "]" : "", raw);
        }
}

static int write_json(const char *path)
{
        struct bc_json j;
        FILE *f = fopen(path, "we");
        int e;

        if (!f)
                return -errno;
        bc_json_begin(&j, f);
        bc_json_str(&j, "benchmark", "ring-bench");
        bc_json_str(&j, "brood_version", brd_version());
        bc_json_machine(&j);
        bc_json_bool(&j, "quick", opt.quick);
        bc_json_bool(&j, "pinned", opt.pin);
        bc_json_str(&j, "line_release", release_name[brd__release_policy]);
        bc_json_int(&j, "buffer_offset", (int64_t)opt.offset);
        bc_json_arr(&j, "cpus");
        bc_json_int(&j, NULL, opt.pin ? opt.cpu[0] : -1);
        bc_json_int(&j, NULL, opt.pin ? opt.cpu[1] : -1);
        bc_json_close(&j);
        bc_json_int(&j, "passes", opt.passes);
        bc_json_num(&j, "case_seconds", (double)opt.case_ns / 1e9);
        bc_json_num(&j, "other_processes_cpus", run_foreign);
        bc_json_obj(&j, "limits");
        bc_json_num(&j, "memcpy_1MiB_gbps", memcpy_1m);
        bc_json_num(&j, "memcpy_1MiB_gbps_at_end", memcpy_1m_after);
        bc_json_num(&j, "memcpy_16MiB_gbps", memcpy_16m);
        bc_json_close(&j);
        bc_json_arr(&j, "streaming");
        for (size_t i = 0; i < NSIZE; i++) {
                const struct row *r = &rows[i];

                bc_json_obj(&j, NULL);
                bc_json_int(&j, "size", (int64_t)r->size);
                bc_json_int(&j, "ring_capacity", (int64_t)r->cap);
                bc_json_int(&j, "pipe_buffer", (int64_t)r->pipe_sz);
                bc_json_num(&j, "cacheline_pingpong_ns", r->pp_ns);
                bc_json_num(&j, "cacheline_pingpong_min_ns", r->pp_min);
                bc_json_num(&j, "cacheline_pingpong_max_ns", r->pp_max);
                bc_json_num(&j, "other_processes_cpus", r->foreign);
                bc_json_str(&j, "placement", bc_placement(r->pp_ns));
                bc_json_obj(&j, "peers");
                for (int p = 0; p < NPEER; p++) {
                        bc_json_obj(&j, peer_name[p]);
                        bc_json_num(&j, "msgs_per_s", r->fig[p].mps);
                        bc_json_num(&j, "gbps", r->fig[p].gbps);
                        bc_json_int(&j, "messages_timed", (int64_t)r->fig[p].count);
                        bc_json_bool(&j, "checksum_verified", r->verified[p]);
                        bc_json_close(&j);
                }
                bc_json_close(&j);
                bc_json_obj(&j, "ratios");
                for (int k = 0; k < NRATIO; k++)
                        bc_json_num(&j, ratio_name[k], r->ratio[k]);
                if (r->size == MiB) {
                        bc_json_num(&j, "brood_over_memcpy_1MiB", r->memcpy_ratio);
                        bc_json_num(&j, "zerocopy_over_memcpy_1MiB", r->zc_memcpy_ratio);
                        bc_json_num(&j, "memcpy_1MiB_both_cpus_gbps", r->pair_gbps);
                        bc_json_num(&j, "brood_over_memcpy_1MiB_both_cpus", r->pair_ratio);
                }
                bc_json_close(&j);
                bc_json_arr(&j, "passes");
                for (int q = 0; isfinite(r->pp_ns) && q < opt.passes; q++) {
                        const char *a = bc_placement(r->pass_pp[q]);
                        const char *b = bc_placement(r->pass_pp[q + 1]);

                        bc_json_obj(&j, NULL);
                        bc_json_num(&j, "pingpong_before_ns", r->pass_pp[q]);
                        bc_json_num(&j, "pingpong_after_ns", r->pass_pp[q + 1]);
                        bc_json_str(&j, "placement", a && b && !strcmp(a, b) ? a : "mixed");
                        for (int p = 0; p < NPEER; p++) {
                                char key[48];

                                snprintf(key, sizeof(key), "%s_msgs_per_s", peer_name[p]);
                                bc_json_num(&j, key, r->pass_mps[p][q]);
                        }
                        for (int k = 0; k < NRATIO; k++)
                                bc_json_num(&j, ratio_name[k], r->pass_rat[k][q]);
                        if (r->size == MiB)
                                bc_json_num(&j, "memcpy_1MiB_both_cpus_gbps", r->pass_pair[q]);
                        bc_json_close(&j);
                }
                bc_json_close(&j);
                bc_json_close(&j);
        }
        bc_json_close(&j);
        bc_json_obj(&j, "roundtrip_64B");
        bc_json_num(&j, "cacheline_pingpong_ns", rt_pp);
        bc_json_num(&j, "cacheline_pingpong_min_ns", rt_pp_min);
        bc_json_num(&j, "cacheline_pingpong_max_ns", rt_pp_max);
        bc_json_num(&j, "clock_read_ns", clock_ns);
        bc_json_num(&j, "other_processes_cpus", rt_foreign);
        bc_json_str(&j, "placement", bc_placement(rt_pp));
        bc_json_obj(&j, "peers");
        for (int p = 0; p < NRT; p++) {
                bc_json_obj(&j, rt_name[p]);
                bc_json_num(&j, "p50_ns", rt_med[p].p50);
                bc_json_num(&j, "p99_ns", rt_med[p].p99);
                bc_json_close(&j);
        }
        bc_json_close(&j);
        bc_json_obj(&j, "ratios");
        bc_json_num(&j, "brood_p50_over_cacheline_roundtrip", rt_ratio_pp);
        bc_json_num(&j, "nospin_p50_over_eventfd_p50", rt_ratio_efd);
        bc_json_num(&j, "brood_p50_over_raw_shm_p50", rt_ratio_raw);
        bc_json_close(&j);
        bc_json_close(&j);
        bc_json_obj(&j, "idle");
        bc_json_num(&j, "seconds", (double)opt.idle_ns / 1e9);
        bc_json_num(&j, "consumer_cpu_percent", idle_pct);
        bc_json_close(&j);
        bc_json_arr(&j, "paced_64B");
        for (size_t i = 0; i < NPACED; i++) {
                bc_json_obj(&j, NULL);
                bc_json_int(&j, "period_us", paced_us[i]);
                bc_json_num(&j, "seconds", (double)opt.idle_ns / 1e9);
                bc_json_num(&j, "consumer_cpu_percent", paced_cpu[i][0]);
                bc_json_num(&j, "doorbells_per_message", paced_bells[i][0]);
                bc_json_num(&j, "nospin_consumer_cpu_percent", paced_cpu[i][1]);
                bc_json_num(&j, "nospin_doorbells_per_message", paced_bells[i][1]);
                bc_json_close(&j);
        }
        bc_json_close(&j);
        bc_json_arr(&j, "targets");
        for (int i = 0; i < ntargets; i++) {
                bc_json_obj(&j, NULL);
                bc_json_str(&j, "name", targets[i].name);
                bc_json_num(&j, "value", targets[i].value);
                bc_json_num(&j, "threshold", targets[i].threshold);
                bc_json_num(&j, "raw_value", targets[i].raw);
                bc_json_str(&j, "placement", targets[i].placement[0] ? targets[i].placement : NULL);
                bc_json_bool(&j, "pass", targets[i].pass);
                bc_json_close(&j);
        }
        bc_json_close(&j);
        bc_json_int(&j, "failures", failures);
        e = bc_json_end(&j);
        if (fclose(f) != 0 && e == 0)
                e = -errno;
        return e;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: ring-bench [--quick] [--json FILE] [--no-pin] [--passes N] [--size BYTES]\n"
                "                  [--release auto|off|on] [--offset BYTES]\n"
                "  --quick      short run (< 20 s); the default run takes about a minute\n"
                "  --json FILE  write every figure, the ratios and the machine to FILE\n"
                "  --no-pin     do not pin producer and consumer to two CPUs\n"
                "  --passes N   timed passes per case (median; default 5, quick 2)\n"
                "  --size BYTES stream messages of this size only (8, 64, 512, 4096, 65536 or\n"
                "               1048576); no round trip, no idle case: for tuning one row\n"
                "  --release P  how brood consumers release the lines they consumed: auto (the\n"
                "               library's controller, the default), off, or on (always while\n"
                "               streaming): to measure what the release does\n"
                "  --offset B   the producer's source and the consumer's buffer start B bytes\n"
                "               (0-4095) past a page, for every peer; default 0; 16 is where\n"
                "               malloc puts a large buffer\n"
                "Exit status: 0, or 1 when a case failed or lost data (a missed target is not\n"
                "a failure), 2 on bad usage.\n");
}

int main(int argc, char **argv)
{
        static const struct option lo[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", required_argument, NULL, 'j' },
                { "no-pin", no_argument, NULL, 'P' },
                { "passes", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 's' },
                { "release", required_argument, NULL, 'r' },
                { "offset", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int ch, passes = 0;
        int64_t t_start = bc_now_ns();
        struct bc_cpu_mark m0, m1;

        while ((ch = getopt_long(argc, argv, "qj:n:s:h", lo, NULL)) != -1) {
                switch (ch) {
                case 'q': opt.quick = 1; break;
                case 'j': opt.json = optarg; break;
                case 'P': opt.pin = 0; break;
                case 'n':
                        passes = atoi(optarg);
                        if (passes < 1 || passes > MAXPASS) {
                                fprintf(stderr, "ring-bench: --passes 1..%d\n", MAXPASS);
                                return 2;
                        }
                        break;
                case 's':
                        opt.only = 0;
                        for (size_t i = 0; i < NSIZE; i++)
                                if (sizes[i] == strtoul(optarg, NULL, 10))
                                        opt.only = sizes[i];
                        if (!opt.only) {
                                fprintf(stderr, "ring-bench: --size is one of the table's sizes\n");
                                return 2;
                        }
                        break;
                case 'r':
                        if (!strcmp(optarg, "auto"))
                                brd__release_policy = BRD_RELEASE_AUTO;
                        else if (!strcmp(optarg, "off"))
                                brd__release_policy = BRD_RELEASE_OFF;
                        else if (!strcmp(optarg, "on"))
                                brd__release_policy = BRD_RELEASE_ON;
                        else {
                                fprintf(stderr, "ring-bench: --release auto, off or on\n");
                                return 2;
                        }
                        break;
                case 'o': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (*optarg < '0' || *optarg > '9' || *end || v > 4095) {
                                fprintf(stderr, "ring-bench: --offset 0..4095\n");
                                return 2;
                        }
                        opt.offset = v;
                        break;
                }
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        opt.passes = passes ? passes : (opt.quick ? 2 : 5);
        opt.case_ns = opt.quick ? 50000000 : 300000000;
        opt.verify_ns = opt.quick ? 30000000 : 100000000;
        opt.rt_ns = opt.quick ? 100000000 : 300000000;
        opt.idle_ns = opt.quick ? 500000000 : 1000000000;

        signal(SIGPIPE, SIG_IGN);       /* a dead peer is -EPIPE, not a signal */
        signal(SIGALRM, on_alarm);
        bench_pid = getpid();
        if (opt.pin) {
                cpu_set_t set;
                int k = 0;

                if (sched_getaffinity(0, sizeof(set), &set) == 0)
                        for (int cpu = 0; cpu < CPU_SETSIZE && k < 2; cpu++)
                                if (CPU_ISSET(cpu, &set))
                                        opt.cpu[k++] = cpu;
                if (k < 2 || bc_pin_cpu(opt.cpu[0]) < 0)
                        opt.pin = 0;
        }
        res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        src_buf = aligned_alloc(4096, MiB + 4096);
        rx_buf = aligned_alloc(4096, MiB + 4096);
        rt_samples = calloc(RT_MAX_SAMPLES, sizeof(*rt_samples));
        if (res == MAP_FAILED || !src_buf || !rx_buf || !rt_samples) {
                fprintf(stderr, "ring-bench: out of memory\n");
                return 1;
        }
        src_buf += opt.offset;          /* never freed: the process ends with them */
        rx_buf += opt.offset;
        srand(12345);
        for (size_t i = 0; i < MiB; i++)
                src_buf[i] = (unsigned char)rand();
        memset(rx_buf, 0, MiB);

        fprintf(stderr, "ring-bench: brood %s, %d CPUs, %s, %d timed passes of <= %.2f s%s, "
                "release %s, buffers %zu B past a page\n",
                brd_version(), (int)sysconf(_SC_NPROCESSORS_ONLN),
                opt.pin ? "producer and consumer pinned to two CPUs" : "not pinned",
                opt.passes, (double)opt.case_ns / 1e9, opt.quick ? " (quick)" : "",
                release_name[brd__release_policy], opt.offset);
        if (opt.pin)
                printf("pinned: producer cpu %d, consumer cpu %d\n", opt.cpu[0], opt.cpu[1]);
        else
                printf("not pinned\n");
        bc_cpu_mark(&m0);
        memcpy_1m = bc_memcpy_gbps(MiB, 5, opt.quick ? 20000000 : 50000000);
        memcpy_16m = bc_memcpy_gbps(16 * MiB, 5, opt.quick ? 20000000 : 50000000);
        run_streaming();
        if (opt.only) {
                rt_pp = rt_pp_min = rt_pp_max = rt_ratio_pp = rt_ratio_efd = rt_ratio_raw = NAN;
                rt_foreign = NAN;
                idle_pct = NAN;
                for (size_t i = 0; i < NPACED; i++)
                        for (int k = 0; k < 2; k++)
                                paced_cpu[i][k] = paced_bells[i][k] = NAN;
        } else {
                run_roundtrip();
                fprintf(stderr, "  idle ...\n");
                idle_pct = run_idle();
                fprintf(stderr, "  paced ...\n");
                for (size_t i = 0; i < NPACED; i++)
                        for (int k = 0; k < 2; k++)
                                run_paced(paced_us[i] * 1000ll, k ? BRD_RING_NOSPIN : 0,
                                          &paced_cpu[i][k], &paced_bells[i][k]);
        }
        memcpy_1m_after = bc_memcpy_gbps(MiB, 3, opt.quick ? 20000000 : 50000000);
        bc_cpu_mark(&m1);
        run_foreign = bc_foreign_cpus(&m0, &m1);
        eval_targets();
        print_report();
        printf("\n(%.1f s; %d failure%s)\n", (double)(bc_now_ns() - t_start) / 1e9, failures,
               failures == 1 ? "" : "s");
        if (opt.json) {
                int e = write_json(opt.json);

                if (e < 0) {
                        fprintf(stderr, "ring-bench: %s: %s\n", opt.json, strerror(-e));
                        return 1;
                }
        }
        return failures ? 1 : 0;
}
