/* SPDX-License-Identifier: MIT */
/*
 * brood demo: the main job.  A forkserver spawns an actor tree
 *
 *      producer --ring--> stage --ring--> consumer-0
 *                               \--ring--> consumer-1 ...
 *
 * all sharing one pool, in which every actor appends progress rows to one
 * shared array.  The producer generates pseudo-random words straight into
 * its ring (reserve/commit), the stage transforms them while copying from its
 * input ring into an output ring (peek -> reserve -> commit -> release), and
 * the consumers check sequence numbers and fold every word into a
 * position-sensitive checksum.  The producer computes, for each consumer,
 * the checksum of what that consumer must see; the root compares them.
 * Before the stream, the root measures the round trip to consumer-0 through
 * a pair of rings.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <brood/brood.h>
#include "brood.h"

#define DEMO_MAX_CONSUMERS 8
#define DEMO_RING_CAP (4u << 20)
#define DEMO_MIN_MSG 8u
#define DEMO_MAX_MSG (DEMO_RING_CAP / 4)        /* 1 MiB */
#define DEMO_PING_CAP (64u << 10)
#define DEMO_PINGS 20000
#define DEMO_POOL_SIZE (4u << 20)
#define DEMO_ROWS 8192
#define DEMO_XFORM 0xa5a5a5a55a5a5a5aULL
/* After an actor failed, how long the others have to end on their own (a
 * peer that attached sees the death at once; one whose peer died before
 * attaching has nothing to watch) before they are stopped. */
#define DEMO_FAIL_GRACE_MS 3000
#define DEMO_EXIT_LOST_ROW 40           /* an actor's report row could not be pushed */

enum { ROLE_PRODUCER = 0, ROLE_STAGE = 1, ROLE_CONSUMER = 2 };
enum { ROW_PROGRESS = 1, ROW_FINAL = 2, ROW_EXPECT = 3, ROW_ERROR = 4 };

/* A row of the shared array: fixed width, no pointers. */
struct demo_row {
        uint32_t role;
        uint32_t index;         /* consumer index, or the consumer an EXPECT row is for */
        uint32_t kind;
        int32_t  err;           /* ROW_ERROR: -errno */
        uint64_t msgs;
        uint64_t bytes;
        uint64_t t_ns;          /* CLOCK_MONOTONIC at the row */
        uint64_t t0_ns;         /* first message */
        uint64_t sum;           /* checksum (FINAL, EXPECT) */
};

struct demo_cfg {
        uint64_t bytes;
        size_t msg_size;
        unsigned consumers;
        uint64_t array_off;
        unsigned index;         /* consumer index in the child */
        pid_t interrupt_pid;    /* --inject interrupt: consumer-0 sends SIGINT here */
        bool fail_stage;        /* --inject fail-stage: the stage fails before attaching */
        bool corrupt;           /* --inject corrupt: the stage flips a bit of its first message */
        unsigned ignored;       /* of terminal_sigs[]: ignored when brood started, so by the actors too */
};

/* What a terminal sends a job, and that nohup, or a shell that starts a
 * job in the background without job control, has it ignore.  The
 * forkserver starts every actor with default dispositions: those that
 * brood inherited ignored are ignored by the actors again. */
static const int terminal_sigs[] = { SIGHUP, SIGINT, SIGQUIT };

/* Message header in front of every payload. */
struct demo_hdr {
        uint64_t seq;
        uint64_t len;
};

static volatile sig_atomic_t demo_interrupted;

static void on_sigint(int sig)
{
        (void)sig;
        demo_interrupted = 1;
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t word_of(uint64_t seq, uint64_t k)
{
        uint64_t x = seq * 0x9E3779B97F4A7C15ULL + k * 0xD1B54A32D192ED03ULL + 1;

        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ULL;
        return x ^ (x >> 29);
}

static inline uint64_t fold(uint64_t h, uint64_t w)
{
        return (h ^ w) * 0x100000001B3ULL + (h >> 29);
}

/* ------------------------------------------------------------- actors */

static const char *role_name(uint32_t role)
{
        return role == ROLE_PRODUCER ? "producer" : role == ROLE_STAGE ? "stage" : "consumer";
}

struct actor {
        struct brd_pool *pool;
        struct brd_array *array;
        const struct demo_cfg *cfg;
        uint32_t role, index;
        uint64_t msgs, bytes, t0, last_row;
        int lost;                       /* a report row the array refused */
};

static int actor_open(struct actor *a, const struct demo_cfg *cfg, uint32_t role,
                      struct brd_handle *pool_h)
{
        int r;

        for (size_t i = 0; i < BRD_ARRAY_LEN(terminal_sigs); i++)
                if (cfg->ignored & 1u << i)
                        signal(terminal_sigs[i], SIG_IGN);
        memset(a, 0, sizeof(*a));
        a->cfg = cfg;
        a->role = role;
        a->index = cfg->index;
        r = brd_pool_attach(pool_h, &a->pool);
        brd_handle_close(pool_h);
        if (r < 0)
                return r;
        return brd_array_open(a->pool, cfg->array_off, &a->array);
}

static void actor_row(struct actor *a, uint32_t kind, uint32_t index, uint64_t sum, int err)
{
        struct demo_row row = {
                .role = a->role, .index = index, .kind = kind, .err = err, .msgs = a->msgs,
                .bytes = a->bytes, .t_ns = now_ns(), .t0_ns = a->t0, .sum = sum,
        };

        int r;

        /* A full array in RING mode overwrites the oldest rows: an error is
         * a writer lock held by a stopped peer, no fds, a poisoned array.
         * Progress rows may go; a lost report is said here, and in the exit
         * code (the root would otherwise find the actor's rows missing
         * while every actor exited 0). */
        r = brd_array_push(a->array, &row, 1);
        if (r < 0 && kind != ROW_PROGRESS) {
                if (a->role == ROLE_CONSUMER)
                        fprintf(stderr, "brood: demo: consumer-%u: a report row was lost: %s\n",
                                a->index, strerror(-r));
                else
                        fprintf(stderr, "brood: demo: %s: a report row was lost: %s\n",
                                role_name(a->role), strerror(-r));
                a->lost = r;
        }
        a->last_row = row.t_ns;
}

static void actor_progress(struct actor *a)
{
        if ((a->msgs & 255) == 0 && now_ns() - a->last_row > 100000000u)
                actor_row(a, ROW_PROGRESS, a->index, 0, 0);
}

static int actor_fail(struct actor *a, int err, int code)
{
        actor_row(a, ROW_ERROR, a->index, 0, err);
        brd_array_close(a->array);
        brd_pool_close(a->pool);
        return code;
}

static int actor_done(struct actor *a)
{
        brd_array_close(a->array);
        brd_pool_close(a->pool);
        return a->lost ? DEMO_EXIT_LOST_ROW : 0;
}

/* handles: pool, out ring */
static int producer_main(void *arg, struct brd_handle *h, size_t n)
{
        const struct demo_cfg *cfg = arg;
        uint64_t sums[DEMO_MAX_CONSUMERS] = { 0 }, seq = 0, left = cfg->bytes;
        struct brd_ring *out;
        struct actor a;
        unsigned c;
        int r;

        if (n != 2 || actor_open(&a, cfg, ROLE_PRODUCER, &h[0]) < 0)
                return 10;
        r = brd_ring_attach(&h[1], &out);
        brd_handle_close(&h[1]);
        if (r < 0)
                return actor_fail(&a, r, 11);
        a.t0 = now_ns();
        while (left) {
                size_t len = left < cfg->msg_size ? (size_t)left : cfg->msg_size;
                size_t words = len / 8, k;
                struct demo_hdr *hd;
                uint64_t *w, s;
                void *buf;

                r = brd_ring_reserve(out, sizeof(*hd) + words * 8, &buf, -1);
                if (r < 0) {
                        brd_ring_close(out);
                        return actor_fail(&a, r, 12);
                }
                hd = buf;
                hd->seq = seq;
                hd->len = words * 8;
                w = (uint64_t *)(hd + 1);
                c = (unsigned)(seq % cfg->consumers);
                s = sums[c];
                for (k = 0; k < words; k++) {
                        w[k] = word_of(seq, k);
                        s = fold(s, w[k] ^ DEMO_XFORM);  /* what the consumer will see */
                }
                sums[c] = s;
                r = brd_ring_commit(out, sizeof(*hd) + words * 8);
                if (r < 0) {
                        brd_ring_close(out);
                        return actor_fail(&a, r, 13);
                }
                seq++;
                a.msgs++;
                a.bytes += words * 8;
                left -= len;            /* --bytes and --msg-size are whole words */
                actor_progress(&a);
        }
        brd_ring_close(out);            /* EOF after the stage drains it */
        for (c = 0; c < cfg->consumers; c++)
                actor_row(&a, ROW_EXPECT, c, sums[c], 0);
        actor_row(&a, ROW_FINAL, 0, 0, 0);
        return actor_done(&a);
}

/* handles: pool, in ring, out rings... */
static int stage_main(void *arg, struct brd_handle *h, size_t n)
{
        const struct demo_cfg *cfg = arg;
        struct brd_ring *in = NULL, *out[DEMO_MAX_CONSUMERS] = { 0 };
        struct actor a;
        unsigned c;
        int r, code = 0;

        if (n != 2 + cfg->consumers || cfg->fail_stage ||
            actor_open(&a, cfg, ROLE_STAGE, &h[0]) < 0)
                return 20;
        r = brd_ring_attach(&h[1], &in);
        brd_handle_close(&h[1]);
        for (c = 0; c < cfg->consumers; c++) {
                int rr = brd_ring_attach(&h[2 + c], &out[c]);

                brd_handle_close(&h[2 + c]);
                if (rr < 0 && r >= 0)
                        r = rr;
        }
        if (r < 0) {
                code = 21;
                goto out;
        }
        for (;;) {
                const void *msg;
                const struct demo_hdr *hd;
                struct demo_hdr *oh;
                const uint64_t *w;
                uint64_t *o;
                void *buf;
                size_t k, words;
                ssize_t len = brd_ring_peek(in, &msg, -1);

                if (len == -EPIPE)
                        break;                  /* the producer finished */
                if (len < (ssize_t)sizeof(*hd)) {
                        r = len < 0 ? (int)len : -EBADMSG;
                        code = 22;
                        goto out;
                }
                if (!a.t0)
                        a.t0 = now_ns();
                hd = msg;
                words = (size_t)(len - (ssize_t)sizeof(*hd)) / 8;
                c = (unsigned)(hd->seq % cfg->consumers);
                r = brd_ring_reserve(out[c], (size_t)len, &buf, -1);
                if (r < 0) {
                        code = 23;              /* a consumer is gone */
                        goto out;
                }
                oh = buf;
                *oh = *hd;
                w = (const uint64_t *)(hd + 1);
                o = (uint64_t *)(oh + 1);
                for (k = 0; k < words; k++)
                        o[k] = w[k] ^ DEMO_XFORM;
                if (cfg->corrupt && a.msgs == 0 && words)
                        o[0] ^= 1;      /* what the checksums are there to catch */
                r = brd_ring_commit(out[c], (size_t)len);
                if (r == 0)
                        r = brd_ring_release(in);
                if (r < 0) {
                        code = 24;
                        goto out;
                }
                a.msgs++;
                a.bytes += words * 8;
                actor_progress(&a);
        }
        actor_row(&a, ROW_FINAL, 0, 0, 0);
out:
        if (code)
                actor_row(&a, ROW_ERROR, 0, 0, r);
        brd_ring_close(in);
        for (c = 0; c < cfg->consumers; c++)
                brd_ring_close(out[c]);
        r = actor_done(&a);
        return code ? code : r;
}

/* handles: pool, in ring [, ping in, pong out] */
static int consumer_main(void *arg, struct brd_handle *h, size_t n)
{
        const struct demo_cfg *cfg = arg;
        uint64_t sum = 0, expect_seq = cfg->index;
        struct brd_ring *in;
        struct actor a;
        int r;

        if ((n != 2 && n != 4) || actor_open(&a, cfg, ROLE_CONSUMER, &h[0]) < 0)
                return 30;
        if (n == 4) {
                struct brd_ring *ping, *pong;
                pid_t interrupt_pid = cfg->interrupt_pid;
                char buf[64];
                ssize_t got;

                r = brd_ring_attach(&h[2], &ping);
                brd_handle_close(&h[2]);
                if (r == 0) {
                        r = brd_ring_attach(&h[3], &pong);
                        if (r < 0)
                                brd_ring_close(ping);
                }
                brd_handle_close(&h[3]);
                if (r < 0)
                        return actor_fail(&a, r, 31);
                while ((got = brd_ring_recv(ping, buf, sizeof(buf), -1)) >= 0) {
                        /* --inject interrupt: Ctrl-C during the probe, at a
                         * known step (the root waits for this answer). */
                        if (interrupt_pid > 0) {
                                kill(interrupt_pid, SIGINT);
                                interrupt_pid = 0;
                        }
                        if (brd_ring_send(pong, buf, (size_t)got, -1) < 0)
                                break;
                }
                brd_ring_close(ping);
                brd_ring_close(pong);
        }
        r = brd_ring_attach(&h[1], &in);
        brd_handle_close(&h[1]);
        if (r < 0)
                return actor_fail(&a, r, 32);
        for (;;) {
                const void *msg;
                const struct demo_hdr *hd;
                const uint64_t *w;
                size_t k, words;
                ssize_t len = brd_ring_peek(in, &msg, -1);

                if (len == -EPIPE)
                        break;
                if (len < (ssize_t)sizeof(*hd)) {
                        brd_ring_close(in);
                        return actor_fail(&a, len < 0 ? (int)len : -EBADMSG, 33);
                }
                if (!a.t0)
                        a.t0 = now_ns();
                hd = msg;
                words = (size_t)(len - (ssize_t)sizeof(*hd)) / 8;
                /* Every byte is a checked word: no tail that no check reads. */
                if (hd->seq != expect_seq || hd->len != words * 8 ||
                    (size_t)len != sizeof(*hd) + hd->len) {
                        brd_ring_close(in);
                        return actor_fail(&a, -EBADMSG, 34);
                }
                expect_seq += cfg->consumers;
                w = (const uint64_t *)(hd + 1);
                for (k = 0; k < words; k++)
                        sum = fold(sum, w[k]);
                brd_ring_release(in);
                a.msgs++;
                a.bytes += words * 8;
                actor_progress(&a);
        }
        brd_ring_close(in);
        actor_row(&a, ROW_FINAL, a.index, sum, 0);
        return actor_done(&a);
}

/* --------------------------------------------------------------- root */

struct demo {
        struct demo_cfg cfg;
        struct brd_fsrv *fs;
        struct brd_pool *pool;
        struct brd_array *array;
        struct brd_child *child[2 + DEMO_MAX_CONSUMERS];
        const char *name[2 + DEMO_MAX_CONSUMERS];
        unsigned nchild;
        bool tty;
        double next_line_s;             /* next plain progress line (not a terminal) */
        const char *inject;
};

/* Slots: producer 0, stage 1, consumer k at 2 + k. */
static int spawn(struct demo *d, unsigned slot, const char *name, brd_child_fn fn,
                 struct demo_cfg *cfg, struct brd_handle *h, size_t n)
{
        struct brd_spawn_opts o = {
                .fn = fn, .arg = cfg, .handles = h, .nhandles = n, .name = name,
        };
        int r;
        size_t i;

        r = brd_fsrv_spawn(d->fs, &o, &d->child[slot]);
        /* The child has its copies now: ours would only keep the ring alive. */
        for (i = 0; i < n; i++)
                brd_handle_close(&h[i]);
        if (r < 0)
                return r;
        d->name[slot] = name;
        return 0;
}

/* Move a handle out of @h, leaving @h empty (closing it then touches nothing). */
static struct brd_handle take(struct brd_handle *h)
{
        struct brd_handle c = *h;

        *h = (struct brd_handle){ .fds = { -1, -1, -1, -1 } };
        return c;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static int measure_rtt(struct brd_handle *ping_h, struct brd_handle *pong_h, uint64_t *p50,
                       uint64_t *p99)
{
        struct brd_ring *ping, *pong;
        static uint64_t rtt[DEMO_PINGS];
        char msg[64] = "ping", back[64];
        int i, r;

        r = brd_ring_attach(ping_h, &ping);
        if (r < 0)
                return r;
        r = brd_ring_attach(pong_h, &pong);
        if (r < 0) {
                brd_ring_close(ping);
                return r;
        }
        for (i = 0; i < DEMO_PINGS && !demo_interrupted; i++) {
                uint64_t t = now_ns();

                r = brd_ring_send(ping, msg, sizeof(msg), 5000);
                if (r == 0) {
                        ssize_t got = brd_ring_recv(pong, back, sizeof(back), 5000);

                        r = got == (ssize_t)sizeof(msg) ? 0 : got < 0 ? (int)got : -EBADMSG;
                }
                if (r < 0)
                        break;
                rtt[i] = now_ns() - t;
        }
        brd_ring_close(ping);           /* consumer-0 moves on to the stream */
        brd_ring_close(pong);
        if (r < 0)
                return r;
        if (demo_interrupted)
                return -EINTR;
        qsort(rtt, DEMO_PINGS, sizeof(rtt[0]), cmp_u64);
        *p50 = rtt[DEMO_PINGS / 2];
        *p99 = rtt[(DEMO_PINGS * 99 + 99) / 100 - 1];   /* nearest rank */
        return 0;
}

/* The unit @total is shown in (the run's size: GiB down to B), its size in
 * bytes in *@div. */
static const char *unit_of(uint64_t total, double *div)
{
        static const char *const name[] = { "B", "KiB", "MiB", "GiB" };
        unsigned u = 3;

        while (u > 0 && total < (1ull << (10 * u)))
                u--;
        *div = (double)(1ull << (10 * u));
        return name[u];
}

static void progress_line(struct demo *d, uint64_t t0)
{
        static struct demo_row rows[64];
        uint64_t first, bytes[2 + DEMO_MAX_CONSUMERS] = { 0 }, done = 0;
        ssize_t n = brd_array_read(d->array, &first, rows, 64);
        double secs = (now_ns() - t0) / 1e9;
        double div;
        const char *unit = unit_of(d->cfg.bytes, &div);
        ssize_t i;

        for (i = 0; i < n; i++)
                if (rows[i].role == ROLE_CONSUMER && rows[i].index < DEMO_MAX_CONSUMERS &&
                    rows[i].bytes > bytes[rows[i].index])
                        bytes[rows[i].index] = rows[i].bytes;
        for (i = 0; i < (ssize_t)d->cfg.consumers; i++)
                done += bytes[i];
        if (d->tty) {
                printf("\r  streaming: %6.2f / %.2f %s received, %5.1f s  ", done / div,
                       d->cfg.bytes / div, unit, secs);
                fflush(stdout);
        } else if (secs >= d->next_line_s) {
                /* Not a terminal: a plain line a second, for logs. */
                d->next_line_s = secs + 1.0;
                if (secs >= 1.0) {
                        printf("  streaming: %.2f / %.2f %s received after %.1f s\n",
                               done / div, d->cfg.bytes / div, unit, secs);
                        fflush(stdout);
                }
        }
}

/* Wait for every actor; on Ctrl-C stop them with the ladder, and those
 * still running DEMO_FAIL_GRACE_MS after one failed too. */
static int wait_all(struct demo *d, uint64_t t0, int *status)
{
        unsigned i, left = d->nchild;
        uint64_t fail_end = 0;
        bool killed = false;
        int r = 0;

        while (left) {
                struct pollfd p[2 + DEMO_MAX_CONSUMERS];
                unsigned map[2 + DEMO_MAX_CONSUMERS], k = 0;
                int pr;

                for (i = 0; i < d->nchild; i++)
                        if (status[i] == -1) {
                                p[k] = (struct pollfd){ .fd = brd_child_fd(d->child[i]), .events = POLLIN };
                                map[k++] = i;
                        }
                pr = poll(p, k, 200);
                if (demo_interrupted) {
                        for (i = 0; i < d->nchild; i++)
                                if (status[i] == -1)
                                        brd_child_stop(d->child[i], 500, &status[i]);
                        return -EINTR;
                }
                if (pr < 0 && errno != EINTR)
                        return -errno;
                for (i = 0; i < k && pr > 0; i++) {
                        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        r = brd_child_wait(d->child[map[i]], 0, &status[map[i]]);
                        if (r < 0)
                                return r;
                        left--;
                        if (!fail_end && status[map[i]] != 0)
                                fail_end = now_ns() + DEMO_FAIL_GRACE_MS * 1000000ull;
                }
                if (fail_end && left && now_ns() >= fail_end) {
                        for (i = 0; i < d->nchild; i++) {
                                if (status[i] != -1)
                                        continue;
                                fprintf(stderr, "brood: demo: %s still running %d s after an "
                                        "actor failed: stopping it\n", d->name[i],
                                        DEMO_FAIL_GRACE_MS / 1000);
                                brd_child_stop(d->child[i], 500, &status[i]);
                        }
                        return 0;
                }
                if (d->inject && !killed) {
                        /* --inject kill-consumer: SIGKILL consumer-1 once data flows. */
                        static struct demo_row rows[16];
                        uint64_t first;
                        ssize_t n = brd_array_read(d->array, &first, rows, 16);

                        while (n-- > 0)
                                if (rows[n].role == ROLE_CONSUMER && rows[n].bytes) {
                                        brd_child_kill(d->child[3], SIGKILL);
                                        killed = true;
                                        break;
                                }
                }
                progress_line(d, t0);
        }
        return 0;
}

/* Bytes that reached the consumers: each one's last count in the rows (its
 * final row, or the last progress of one that died). */
static uint64_t delivered(const struct demo_row *rows, ssize_t n, unsigned consumers)
{
        uint64_t got[DEMO_MAX_CONSUMERS] = { 0 }, sum = 0;
        ssize_t i;
        unsigned c;

        for (i = 0; i < n; i++)
                if (rows[i].role == ROLE_CONSUMER && rows[i].index < consumers &&
                    rows[i].bytes > got[rows[i].index])
                        got[rows[i].index] = rows[i].bytes;
        for (c = 0; c < consumers; c++)
                sum += got[c];
        return sum;
}

/* The summary's first line: what was asked for, or, when less reached the
 * consumers, how much did. */
static void headline(const struct demo *d, uint64_t got, double secs)
{
        double div;
        const char *unit = unit_of(d->cfg.bytes, &div);

        printf("brood demo: %u actors forked by the forkserver, ", d->nchild);
        if (got != d->cfg.bytes)
                printf("%.2f %s of %.2f %s reached the consumers (%llu bytes)", got / div, unit,
                       d->cfg.bytes / div, unit, (unsigned long long)got);
        else
                printf("%.2f %s", d->cfg.bytes / div, unit);
        printf(" in %zu-byte messages, %.2f s\n", d->cfg.msg_size, secs);
}

static void report(struct demo *d, const int *status, uint64_t t0, uint64_t t1, uint64_t p50,
                   uint64_t p99, int *rc)
{
        static struct demo_row rows[DEMO_ROWS];
        struct demo_row *fin[2 + DEMO_MAX_CONSUMERS] = { 0 };
        uint64_t expect[DEMO_MAX_CONSUMERS] = { 0 }, first, received = 0;
        bool have_expect[DEMO_MAX_CONSUMERS] = { false };
        ssize_t n = brd_array_read(d->array, &first, rows, DEMO_ROWS), i;
        unsigned c, nprog = 0, nerr = 0;
        double secs = (t1 - t0) / 1e9;

        if (n < 0) {
                /* The actors' reports are lost: nothing can be verified. */
                tool_err("demo", "shared array", (int)-n);
                *rc = BRD_EXIT_FAIL;
                n = 0;
                first = 0;
        }
        if (d->tty)
                printf("\r%*s\r", 60, "");
        for (i = 0; i < n; i++) {
                struct demo_row *r = &rows[i];
                unsigned slot = r->role == ROLE_CONSUMER ? 2 + r->index : r->role;

                if (r->role > ROLE_CONSUMER || slot >= 2 + d->cfg.consumers)
                        continue;
                if (r->kind == ROW_PROGRESS)
                        nprog++;
                else if (r->kind == ROW_FINAL)
                        fin[slot] = r;
                else if (r->kind == ROW_EXPECT && r->index < d->cfg.consumers) {
                        expect[r->index] = r->sum;
                        have_expect[r->index] = true;
                } else if (r->kind == ROW_ERROR) {
                        nerr++;
                        if (r->role == ROLE_CONSUMER)
                                fprintf(stderr, "brood: demo: consumer-%u: %s\n", r->index,
                                        strerror(-r->err));
                        else
                                fprintf(stderr, "brood: demo: %s: %s\n", role_name(r->role),
                                        strerror(-r->err));
                }
        }
        fflush(stdout);
        for (c = 0; c < d->nchild; c++) {
                if (WIFEXITED(status[c]) && WEXITSTATUS(status[c]) == 0)
                        continue;
                *rc = BRD_EXIT_FAIL;
                if (WIFSIGNALED(status[c]))
                        fprintf(stderr, "brood: demo: %s (pid %d) was killed by signal %d (%s)\n",
                                d->name[c], (int)brd_child_pid(d->child[c]), WTERMSIG(status[c]),
                                strsignal(WTERMSIG(status[c])));
                else
                        fprintf(stderr, "brood: demo: %s (pid %d) failed with exit code %d\n",
                                d->name[c], (int)brd_child_pid(d->child[c]), WEXITSTATUS(status[c]));
        }
        fflush(stderr);
        headline(d, delivered(rows, n, d->cfg.consumers), secs);
        printf("  round trip root <-> consumer-0 (64 B, two rings): p50 %.2f us, p99 %.2f us\n",
               p50 / 1e3, p99 / 1e3);
        printf("  %-22s %12s %12s %10s %10s\n", "link", "messages", "bytes", "GB/s", "Mmsg/s");
        for (c = 0; c < 2 + d->cfg.consumers; c++) {
                struct demo_row *r = fin[c];
                uint64_t end;
                double s;
                char link[32];

                if (!r)
                        continue;
                /* A link's time runs until its receiver has read it all:
                 * the producer's own end would time its writes into a ring
                 * nobody had read yet (all of a run smaller than the ring).
                 * One clock for every actor (CLOCK_MONOTONIC).  A stage
                 * that never finished gives the producer's link no end. */
                if (c == 0 && !fin[1]) {
                        printf("  %-22s %12llu %12llu %10s %10s  (not read to the end: the stage "
                               "failed)\n", "producer -> stage", (unsigned long long)r->msgs,
                               (unsigned long long)r->bytes, "-", "-");
                        continue;
                }
                end = r->t_ns;
                if (c == 0 && fin[1]->t_ns > end)
                        end = fin[1]->t_ns;
                s = (end - r->t0_ns) / 1e9;
                if (c == 0)
                        snprintf(link, sizeof(link), "producer -> stage");
                else if (c == 1)
                        snprintf(link, sizeof(link), "stage (transform)");
                else
                        snprintf(link, sizeof(link), "stage -> consumer-%u", c - 2);
                printf("  %-22s %12llu %12llu %10.2f %10.3f\n", link, (unsigned long long)r->msgs,
                       (unsigned long long)r->bytes, s > 0 ? r->bytes / s / 1e9 : 0.0,
                       s > 0 ? r->msgs / s / 1e6 : 0.0);
        }
        for (c = 0; c < d->cfg.consumers; c++) {
                struct demo_row *r = fin[2 + c];

                if (!r || !have_expect[c]) {
                        printf("  consumer-%u: incomplete, nothing to compare (an actor failed)\n", c);
                        *rc = BRD_EXIT_FAIL;
                        continue;
                }
                printf("  consumer-%u checksum %016llx, producer expected %016llx: %s\n", c,
                       (unsigned long long)r->sum, (unsigned long long)expect[c],
                       r->sum == expect[c] ? "match" : "MISMATCH");
                if (r->sum != expect[c])
                        *rc = BRD_EXIT_FAIL;
                received += r->bytes;
        }
        if (*rc == BRD_EXIT_OK && received != d->cfg.bytes) {
                fprintf(stderr, "brood: demo: the consumers received %llu bytes, not the %llu sent\n",
                        (unsigned long long)received, (unsigned long long)d->cfg.bytes);
                *rc = BRD_EXIT_FAIL;
        }
        if (n > 0)
                printf("  shared array: %zd rows (positions %llu..%llu): %u progress, %u errors\n", n,
                       (unsigned long long)first, (unsigned long long)(first + (uint64_t)n - 1),
                       nprog, nerr);
        else
                printf("  shared array: no rows\n");
        if (*rc == BRD_EXIT_OK)
                printf("  every byte verified end to end: %llu bytes\n",
                       (unsigned long long)received);
        else
                fprintf(stderr, "brood: demo: FAILED (see above): the stream was not verified\n");
}

static int parse_size(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;
        unsigned shift = 0;

        /* strtoull() would skip blanks and wrap "-1" to 2^64 - 1. */
        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        default: break;
        }
        if (v > (UINT64_MAX >> shift))
                return -EINVAL;
        v <<= shift;
        if (*end || v == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int usage(FILE *f)
{
        fprintf(f, "usage: brood demo [--bytes N[KMG]] [--msg-size N[KMG]] [--actors N]\n"
                   "  A forkserver spawns a producer, a transforming stage and N consumers\n"
                   "  connected by rings; every actor appends progress rows to one shared\n"
                   "  array in one shared pool.  Streams --bytes, verifies every byte end to\n"
                   "  end, prints per-link throughput and the round-trip latency.\n"
                   "  --bytes N[KMG]     how much to stream (default 12G, ~5 s of streaming); rounded\n"
                   "                     up to a multiple of 8 (the stream is 8-byte words)\n"
                   "  --msg-size N[KMG]  bytes per message: 8 to 1M, a multiple of 8\n"
                   "                     (default 16K)\n"
                   "  --actors N         the number of consumers: 1 to 8 (default 2); the\n"
                   "                     producer and the stage are forked beside them\n"
                   "  Exit 0 when everything matched, 1 on a mismatch or a failed actor, 2 on\n"
                   "  bad usage, 130 on Ctrl-C (the whole tree is stopped: SIGINT, SIGTERM,\n"
                   "  SIGKILL).\n"
                   "  --inject kill-consumer   (testing) SIGKILL consumer-1 once data flows\n"
                   "                           (--actors 2 or more)\n"
                   "  --inject interrupt       (testing) consumer-0 sends brood a SIGINT\n"
                   "                           during the round-trip probe\n"
                   "  --inject fail-stage      (testing) the stage fails before it attaches\n"
                   "                           its rings: its peers are stopped after %d s\n"
                   "  --inject corrupt         (testing) the stage flips one bit of its first\n"
                   "                           message: consumer-0's checksum must not match\n",
                   DEMO_FAIL_GRACE_MS / 1000);
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

/* Bad usage: the reason on one line, then the usage; exit code 2. */
__attribute__((format(printf, 1, 2)))
static int bad_usage(const char *fmt, ...)
{
        va_list ap;

        fputs("brood demo: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return usage(stderr);
}

int cmd_demo(int argc, char **argv)
{
        static const struct option opts[] = {
                { "bytes", required_argument, NULL, 'b' },
                { "msg-size", required_argument, NULL, 'm' },
                { "actors", required_argument, NULL, 'a' },
                { "inject", required_argument, NULL, 'i' },
                { "help", no_argument, NULL, 'h' },
                { 0 }
        };
        struct demo d = { .cfg = { .bytes = 12ull << 30, .msg_size = 16384, .consumers = 2 } };
        static char cname[DEMO_MAX_CONSUMERS][24];
        struct demo_cfg ccfg[DEMO_MAX_CONSUMERS];
        /* Zeroed handles hold no fds: closing them is a no-op. */
        struct brd_handle hp[2] = { 0 }, hs[2 + DEMO_MAX_CONSUMERS] = { 0 }, hc[4] = { 0 };
        struct brd_handle a_prod = { 0 }, a_cons = { 0 };
        struct brd_handle b_prod[DEMO_MAX_CONSUMERS] = { 0 }, b_cons[DEMO_MAX_CONSUMERS] = { 0 };
        struct brd_handle ping_p = { 0 }, ping_c = { 0 }, pong_p = { 0 }, pong_c = { 0 };
        int status[2 + DEMO_MAX_CONSUMERS];
        struct sigaction sa = { .sa_handler = on_sigint }, old_int;
        uint64_t v, p50 = 0, p99 = 0, t0, t1;
        const char *bytes_arg = NULL;
        bool inject_interrupt = false;
        int c, r, rc = BRD_EXIT_OK;
        unsigned i;

        while ((c = getopt_long(argc, argv, "b:m:a:i:h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (parse_size(optarg, &v) < 0 || v > UINT64_MAX - 7)
                                return bad_usage("--bytes must be a size (a positive number, "
                                                 "optionally followed by K, M or G), not '%s'",
                                                 optarg);
                        d.cfg.bytes = v;
                        bytes_arg = optarg;
                        break;
                case 'm':
                        if (parse_size(optarg, &v) < 0 || v < DEMO_MIN_MSG || v > DEMO_MAX_MSG ||
                            v % 8)
                                return bad_usage("--msg-size must be 8 B..1 MiB and a multiple "
                                                 "of 8, not '%s'", optarg);
                        d.cfg.msg_size = (size_t)v;
                        break;
                case 'a':
                        if (parse_size(optarg, &v) < 0 || v > DEMO_MAX_CONSUMERS)
                                return bad_usage("--actors (the number of consumers) must be "
                                                 "1..%d, not '%s'", DEMO_MAX_CONSUMERS, optarg);
                        d.cfg.consumers = (unsigned)v;
                        break;
                case 'i':
                        if (!strcmp(optarg, "kill-consumer"))
                                d.inject = optarg;
                        else if (!strcmp(optarg, "interrupt"))
                                inject_interrupt = true;
                        else if (!strcmp(optarg, "fail-stage"))
                                d.cfg.fail_stage = true;
                        else if (!strcmp(optarg, "corrupt"))
                                d.cfg.corrupt = true;
                        else
                                return bad_usage("--inject must be kill-consumer, interrupt, "
                                                 "fail-stage or corrupt, not '%s'", optarg);
                        break;
                case 'h':
                        return usage(stdout);
                default:
                        return usage(stderr);   /* getopt said why */
                }
        }
        if (optind != argc)
                return bad_usage("unexpected argument '%s'", argv[optind]);
        if (d.inject && d.cfg.consumers < 2)
                return bad_usage("--inject kill-consumer kills consumer-1: it needs --actors 2 "
                                 "or more, not %u", d.cfg.consumers);
        if (d.cfg.bytes % 8) {
                /* The stream is made of 8-byte words: send (and verify) whole ones. */
                d.cfg.bytes = (d.cfg.bytes + 7) & ~(uint64_t)7;
                fprintf(stderr, "brood demo: --bytes %s rounded up to %llu (a multiple of 8)\n",
                        bytes_arg, (unsigned long long)d.cfg.bytes);
        }
        if (inject_interrupt)
                d.cfg.interrupt_pid = getpid();
        d.tty = isatty(STDOUT_FILENO);
        for (i = 0; i < 2 + DEMO_MAX_CONSUMERS; i++)
                status[i] = -1;
        sigemptyset(&sa.sa_mask);
        for (i = 0; i < BRD_ARRAY_LEN(terminal_sigs); i++) {
                struct sigaction cur;

                if (sigaction(terminal_sigs[i], NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
                        d.cfg.ignored |= 1u << i;
        }
        /* Started with SIGINT ignored (a background job of a shell without
         * job control): a Ctrl-C at the terminal is not for this run. */
        sigaction(SIGINT, NULL, &old_int);
        if (old_int.sa_handler != SIG_IGN)
                sigaction(SIGINT, &sa, NULL);

/* A step failed, or Ctrl-C came during one (then whatever it answered,
 * -EINTR or a peer killed by the same Ctrl-C, is the interrupt's): out, and
 * brd_fsrv_stop() stops the actors already forked. */
#define TRY(what, call)                                                         \
        do {                                                                    \
                r = (call);                                                     \
                if (r < 0 || demo_interrupted) {                                \
                        if (r == -EINTR || demo_interrupted)                    \
                                goto interrupted;                               \
                        tool_err("demo", what, -r);                             \
                        rc = BRD_EXIT_FAIL;                                     \
                        goto out;                                               \
                }                                                               \
        } while (0)
        TRY("pool", brd_pool_create(DEMO_POOL_SIZE, 0, &d.pool));
        TRY("array", brd_array_create(d.pool, sizeof(struct demo_row), DEMO_ROWS, 0, BRD_ARRAY_RING,
                                      &d.array));
        d.cfg.array_off = brd_array_offset(d.array);
        TRY("forkserver", brd_fsrv_start(0, &d.fs));

        TRY("ring", brd_ring_create(DEMO_RING_CAP, 0, &a_prod, &a_cons));
        for (i = 0; i < d.cfg.consumers; i++)
                TRY("ring", brd_ring_create(DEMO_RING_CAP, 0, &b_prod[i], &b_cons[i]));
        /* Interruptible: Ctrl-C during the probe is seen at once (-EINTR). */
        TRY("ring", brd_ring_create(DEMO_PING_CAP, BRD_RING_EINTR, &ping_p, &ping_c));
        TRY("ring", brd_ring_create(DEMO_PING_CAP, BRD_RING_EINTR, &pong_p, &pong_c));

        /* Consumers first: consumer-0 serves the round-trip probe before the stream. */
        for (i = 0; i < d.cfg.consumers; i++) {
                size_t n = 2;

                ccfg[i] = d.cfg;
                ccfg[i].index = i;
                snprintf(cname[i], sizeof(cname[i]), "consumer-%u", i);
                TRY("pool handle", brd_pool_export(d.pool, &hc[0]));
                hc[1] = take(&b_cons[i]);
                if (i == 0) {
                        hc[2] = take(&ping_c);
                        hc[3] = take(&pong_p);
                        n = 4;
                }
                TRY("spawn consumer", spawn(&d, 2 + i, cname[i], consumer_main, &ccfg[i], hc, n));
        }

        TRY("round trip", measure_rtt(&ping_p, &pong_c, &p50, &p99));
        brd_handle_close(&ping_p);
        brd_handle_close(&pong_c);

        t0 = now_ns();
        TRY("pool handle", brd_pool_export(d.pool, &hp[0]));
        hp[1] = take(&a_prod);
        TRY("spawn producer", spawn(&d, 0, "producer", producer_main, &d.cfg, hp, 2));
        TRY("pool handle", brd_pool_export(d.pool, &hs[0]));
        hs[1] = take(&a_cons);
        for (i = 0; i < d.cfg.consumers; i++)
                hs[2 + i] = take(&b_prod[i]);
        TRY("spawn stage", spawn(&d, 1, "stage", stage_main, &d.cfg, hs, 2 + d.cfg.consumers));
        d.nchild = 2 + d.cfg.consumers;

        r = wait_all(&d, t0, status);
        t1 = now_ns();
        if (r == -EINTR)
                goto interrupted;
        if (r < 0) {
                tool_err("demo", "wait", -r);
                rc = BRD_EXIT_FAIL;
                goto out;
        }
        report(&d, status, t0, t1, p50, p99, &rc);
        goto out;
interrupted:
        rc = BRD_EXIT_INTR;
out:
        brd_handle_close(&a_prod);
        brd_handle_close(&a_cons);
        for (i = 0; i < DEMO_MAX_CONSUMERS; i++) {
                brd_handle_close(&b_prod[i]);
                brd_handle_close(&b_cons[i]);
        }
        brd_handle_close(&ping_p);
        brd_handle_close(&ping_c);
        brd_handle_close(&pong_p);
        brd_handle_close(&pong_c);
        /* Exported for an actor that a failure or Ctrl-C kept from being
         * spawned (spawn() closes them otherwise). */
        for (i = 0; i < BRD_ARRAY_LEN(hs); i++)
                brd_handle_close(&hs[i]);
        for (i = 0; i < BRD_ARRAY_LEN(hc); i++)
                brd_handle_close(&hc[i]);
        brd_handle_close(&hp[0]);
        brd_handle_close(&hp[1]);
        brd_fsrv_stop(d.fs);            /* stops and reaps whatever still runs */
        if (demo_interrupted)
                rc = BRD_EXIT_INTR;     /* a Ctrl-C after the actors ended, too */
        for (i = 0; i < 2 + DEMO_MAX_CONSUMERS; i++)
                brd_child_free(d.child[i]);
        brd_array_close(d.array);
        brd_pool_close(d.pool);
        sigaction(SIGINT, &old_int, NULL);
        if (rc == BRD_EXIT_INTR)
                fprintf(stderr, "\nbrood: demo: interrupted: every actor stopped\n");
        return rc;
}
