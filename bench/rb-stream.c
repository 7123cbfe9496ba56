/* SPDX-License-Identifier: MIT */
/*
 * ring-bench's streaming cases: every peer's channel (brood copy, zero-copy
 * and BATCH, pipe, socketpair, the seed port, the raw spin ring), one
 * producer in this process and one consumer in a forked child, checksummed
 * and timed; and the idle and paced brood consumers, whose CPU is measured.
 * What is measured and how: ring-bench.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <brood/handle.h>
#include <brood/ringbuf.h>

#include "bench-common.h"
#include "bench-peers.h"
#include "internal/brd-private.h"
#include "ring-bench.h"

const char *const peer_name[NPEER] = {
        "brood_copy", "brood_zerocopy", "brood_copy_batch", "pipe", "socketpair", "seed", "raw_ring",
};
const char *const peer_title[NPEER] = {
        "brood copy", "brood zero-copy", "brood copy+BATCH", "pipe", "socketpair", "seed port",
        "raw spin ring",
};

unsigned char *src_buf, *rx_buf;

/* ------------------------------------------------------ streaming peers */

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
                return brd_ring_create(c->cap, c->ring_flags | BRD_RING_BATCH, &c->hp, &c->hc);
        case PEER_PIPE:
                if (pipe2(c->fd, O_CLOEXEC) < 0)
                        return -errno;
                if (fcntl(c->fd[1], F_SETPIPE_SZ, (int)c->pipe_sz) < 0)
                        return -errno;
                e = fcntl(c->fd[1], F_GETPIPE_SZ);
                c->pipe_sz = e > 0 ? (size_t)e : c->pipe_sz;
                return 0;
        case PEER_SOCK:
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd) < 0)
                        return -errno;
                /* Buffers as large as the pipe's (the kernel caps them at
                 * net.core.wmem_max / rmem_max): the peer at its best. */
                e = (int)c->pipe_sz;
                for (int k = 0; k < 2; k++)
                        if (setsockopt(c->fd[k], SOL_SOCKET, SO_SNDBUF, &e, sizeof(e)) < 0 ||
                            setsockopt(c->fd[k], SOL_SOCKET, SO_RCVBUF, &e, sizeof(e)) < 0)
                                return -errno;
                return 0;
        case PEER_SEED:
                return seed_create(&c->seed, c->cap);
        case PEER_RAW:
                return raw_setup(&c->raw, c->cap);
        default:
                return -EINVAL;
        }
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
                /* As send copies (a page at a time from 256 KiB; one
                 * plain memcpy of 1 MiB ran at half send's rate far),
                 * but for send's streaming stores of 1-256 KiB. */
                brd__copy_payload(b, src, n);
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

/* The sum of @n bytes' 8-byte words (a tail of fewer than 8 bytes: one more
 * word, zero-padded), so that every byte is loaded: 16-byte loads into four
 * sums, independent as a copy's loads are, and as fast as memcpy reads
 * (one chain of 8-byte adds ran at a tenth of it: it timed the adds). */
typedef uint64_t fold_v __attribute__((vector_size(16)));
typedef uint64_t fold_vu __attribute__((vector_size(16), aligned(1), may_alias));

static uint64_t fold_words(const void *m, size_t n)
{
        const unsigned char *b = m;
        fold_v a[4] = { { 0 } };
        uint64_t s, w;
        size_t i = 0;

        for (; i + 64 <= n; i += 64) {
                const fold_vu *v = (const fold_vu *)(b + i);

                a[0] += v[0];
                a[1] += v[1];
                a[2] += v[2];
                a[3] += v[3];
        }
        a[0] += a[1] + a[2] + a[3];
        s = a[0][0] + a[0][1];
        for (; i + 8 <= n; i += 8) {
                memcpy(&w, b + i, 8);
                s += w;
        }
        if (i < n) {
                w = 0;
                memcpy(&w, b + i, n - i);
                s += w;
        }
        return s;
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
                } else if (p == PEER_BROOD_ZC) {
                        /* Zero-copy reads the message where it lies: every
                         * word, as every other peer's copy reads every byte
                         * (two words would leave the rest in the producer's
                         * cache and time a transfer that never happened). */
                        sink ^= fold_words(m, (size_t)n);
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
        case PEER_BROOD_ZC:
                if (opt.zc_side == ZC_CONSUMER)
                        return produce(c, PEER_BROOD, src, nmax, deadline, ret_sent);
                return produce(c, PEER_BROOD_ZC, src, nmax, deadline, ret_sent);
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
        case PEER_BROOD_ZC:
                if (opt.zc_side == ZC_PRODUCER)
                        return consume(c, PEER_BROOD, verify, warm);
                return consume(c, PEER_BROOD_ZC, verify, warm);
        case PEER_BROOD_BATCH: return consume(c, PEER_BROOD_BATCH, verify, warm);
        case PEER_PIPE:     return consume(c, PEER_PIPE, verify, warm);
        case PEER_SOCK:     return consume(c, PEER_SOCK, verify, warm);
        case PEER_SEED:     return consume(c, PEER_SEED, verify, warm);
        case PEER_RAW:      return consume(c, PEER_RAW, verify, warm);
        default:            return -EINVAL;
        }
}

size_t ring_cap_for(size_t size)
{
        return size * 16 > 256 * KiB ? size * 16 : 256 * KiB;
}

size_t pipe_sz_for(size_t size)
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

int run_stream(enum peer p, size_t size, int verify, struct stream_fig *f)
{
        /* Prefaulted: see "first-touch" in ring-bench.c. */
        struct chan c = { .peer = p, .size = size, .cap = ring_cap_for(size),
                          .pipe_sz = pipe_sz_for(size), .rx = rx_buf,
                          .ring_flags = BRD_RING_POPULATE };
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
        pid = fork_child(&ready, &ready_w);
        if (pid < 0) {
                e = pid;
                goto fail;
        }
        if (pid == 0) {
                e = chan_side(&c, 1);
                child_ready(ready_w, e);
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
        if (res->t_first && sent > 2 * res->warm && res->t_end > res->t_first) {
                double secs = (double)(res->t_end - res->t_first) / 1e9;

                f->count = sent - res->warm;    /* the messages the rate is of */
                f->mps = (double)f->count / secs;
        } else {
                f->mps = NAN;   /* too few messages for a rate after warm-up */
        }
        f->gbps = f->mps * (double)size / 1e9;
        return 0;
fail:
        chan_close(&c);
        return case_failed(e, "%s %zu B: %s failed", peer_name[p], size, what);
}

/* ------------------------------------------------------------ idle CPU */

static int64_t rusage_cpu_ns(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
               ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

int run_paced(int64_t period_ns, unsigned flags, double *ret_cpu, double *ret_bells)
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
                c0 = rusage_cpu_ns();
                t0 = bc_now_ns();
                child_ready(ready_w, e);
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
        return case_failed(e, "%s consumer", period_ns ? "paced" : "idle");
}

double run_idle(void)
{
        double cpu, bells;

        run_paced(0, 0, &cpu, &bells);
        return cpu;
}
