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
 *               spinning off, raw eventfd ping-pong, pipe, and the floors: a
 *               raw shared-memory ping-pong that spins on a word in each
 *               frame (see struct rt_raw), and the same frames woken by an
 *               eventfd, each side asleep in a read() of it or in epoll, or
 *               woken through a futex, as brood's waits sleep; p50 and p99.  Every peer runs in one
 *               pair of processes, in cycles of one ~10 ms round each, and
 *               two peers are compared within each cycle (struct
 *               rt_session): the host moves a sleeping round trip by ~10%
 *               every few hundred ms, more than the gaps being measured
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
 *               brd_ring_peek(), a sum of every word of the message in
 *               place, release (every other consumer reads every byte in its
 *               copy, then the first and last word of that copy)
 *   pipe        write() of the whole message / read() until S bytes arrived;
 *               pipe buffer sized like the ring, at most 1 MiB (F_SETPIPE_SZ)
 *   socketpair  SOCK_STREAM, the same exact-S reads (SEQPACKET cannot carry a
 *               1 MiB message through the default socket buffers); send and
 *               receive buffers asked as large as the pipe's (the kernel caps
 *               them at net.core.wmem_max/rmem_max).  The reader takes one
 *               message per read(), as the writer gives one per write(): a
 *               reader that drained several small messages per read() would
 *               make fewer system calls (the writer still one per message).
 *   seed        one shared buffer, u32 length header + payload written as a
 *               byte stream that splits at the buffer's end, one eventfd
 *               write per send (bytes written); at the end the writer waits
 *               on a second eventfd until the reader has consumed everything
 *               (lock-step wrap); the reader blocks in read() on the first
 *               eventfd and copies out.  EOF = a 0xffffffff header.
 *   raw ring    the floor: a hand-written spin-only ring with brood's
 *               frames and none of its checks, waiting or bookkeeping
 *               (bench-peers.h); brood/raw is what those cost, raw/pipe
 *               what a ring of this design reaches here.  Its copies are
 *               libc's memcpy at every size, where brood's send and recv
 *               copy 256 KiB and more a page at a time, and send may
 *               stream 1-256 KiB (ring.c): at those sizes brood/raw holds
 *               the copy routines' difference too
 * The first pass of every case checksums every byte received (an
 * order-sensitive hash compared with the sender's) and is not timed; timed
 * passes still check the message and byte counts.  Rates are taken by the
 * consumer after one full lap of the buffer (first-touch page faults are not
 * streaming cost).  brood's rings are created with BRD_RING_POPULATE, which
 * pays those at attach: a lap warms them only in part, since a consumer that
 * keeps up makes large frames wrap early (the producer reaches new pages only
 * as it gets ahead) and a frame that runs past the end touches the second
 * view (1 MiB, far: copy API 13.5-14.1 GB/s without, 15.7-16.3 with, two runs
 * each; --quick: 1.8-2.0 and 15.8-17.2).  Passes interleave the peers so
 * that every figure in a row is taken back to back, every other pass in
 * the reverse order; ratios are medians of per-pass ratios.  The JSON also has every pass with the cache-line
 * ping-pongs taken right before and after it, so that passes can be grouped
 * by placement across runs (the host may move the CPUs within a row).  The
 * producer's source and the consumer's buffer start at a page, or --offset
 * bytes past one (16: where malloc puts a large buffer), for every peer
 * alike.
 *
 * This file has the command line, the report and the JSON; rb-stream.c the
 * streaming, idle and paced cases, rb-rt.c the round trip, rb-case.c what
 * every case needs (ring-bench.h: what they share).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <brood/brood.h>

#include "bench-common.h"
#include "internal/brd-private.h"
#include "internal/brd-release.h"
#include "internal/brd-ring.h"
#include "ring-bench.h"

/* ------------------------------------------------------------- options */

/* Indexed by enum brd__release_policy. */
static const char *const release_name[] = { "auto", "off", "on" };
static const char *const zc_side_name[] = { "both", "producer", "consumer" };

/* The index of @s in @names (3 of them), or -1: the options' values. */
static int name_index(const char *const names[3], const char *s)
{
        for (int k = 0; k < 3; k++)
                if (!strcmp(s, names[k]))
                        return k;
        return -1;
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
        const char *pl;                 /* row_placement() of the ping-pongs */
        double foreign;                         /* other processes' CPUs during the row */
        struct stream_fig fig[NPEER];           /* medians */
        int verified[NPEER];
        int failed;                             /* failures (any peer) in the row: its targets MISS */
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
static struct {
        double p50, p99;        /* ns, medians of the passes' */
} rt_med[NRT];
static int rt_failed;                   /* failures in the round trip: its targets MISS */
static const char *rt_pl;
static double rt_pp, rt_pp_min, rt_pp_max, rt_ratio_pp, rt_ratio_efd, rt_ratio_raw, rt_ratio_raw_efd,
              rt_ratio_raw_epoll, rt_ratio_epoll_efd, rt_ratio_raw_futex, rt_ratio_futex_efd,
              clock_ns, rt_foreign;
static double run_foreign;
static double memcpy_1m, memcpy_16m, memcpy_1m_after, idle_pct, mb_idle_ns, mb_busy_ns;
/* Paced consumer: a message every paced_us[i], ring flags 0 and NOSPIN. */
static const int paced_us[] = { 50, 500 };
#define NPACED (sizeof(paced_us) / sizeof(paced_us[0]))
static double paced_cpu[NPACED][2], paced_bells[NPACED][2];
static struct target targets[16];
static int ntargets;

/* A round trip's p50 against the cache line's round trip (two one-way
 * hand-offs of @pp ns): the p50 less the clock read each sample holds
 * (rt_round()), which the ping-pong, timed over its whole run, does not. */
static double per_cl_rt(double p50, double pp)
{
        return (p50 - clock_ns) / (2 * pp);
}

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

/* Of @n <= MAXPASS + 1 values (a row's ping-pongs: one before each pass
 * and one after the last). */
static double med_finite(const double *v, int n)
{
        double tmp[MAXPASS + 1];
        int k = 0;

        for (int i = 0; i < n; i++)
                if (isfinite(v[i]))
                        tmp[k++] = v[i];
        return k ? bc_median(tmp, (size_t)k) : NAN;
}

/*
 * The placement of a row from its ping-pongs (one before every pass and one
 * after the last): "mixed" when the host moved the CPUs within it (some
 * near, some far), which is no placement a target can be judged by, so its
 * targets get the stricter threshold, as for an unknown one (NULL); else the
 * median's.  A row's median alone called a row with 3 near and 3 far
 * ping-pongs "near" and judged its far passes by the near targets.
 */
static const char *row_placement(double med, double min, double max)
{
        const char *lo = bc_placement(min), *hi = bc_placement(max);

        /* One end too close to call (NULL) and the other placed counts as
         * mixed too: 100 to 170 ns may be near and far.  (bc_placement()
         * gives one string per placement: the pointers tell.) */
        if (min > 0 && max > 0 && lo != hi)
                return "mixed";
        return bc_placement(med);
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
                int failed0 = failures;
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
                        for (int k = 0; k < NPEER; k++) {
                                /* every other pass backwards: no peer always
                                 * runs first or last */
                                int p = pass & 1 ? NPEER - 1 - k : k;
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
                r->pl = row_placement(r->pp_ns, r->pp_min, r->pp_max);
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
                memcpy(r->pass_pair, pair, sizeof(pair));
                r->pair_gbps = med_finite(pair, opt.passes);
                r->pair_ratio = med_finite(pair_rat, opt.passes);
                r->failed = failures - failed0;
        }
}

static void run_roundtrip(void)
{
        double p50[NRT][MAXPASS], p99[NRT][MAXPASS], pp[MAXPASS + 1];
        double rpp[MAXPASS], refd[MAXPASS], rraw[MAXPASS], rraw_efd[MAXPASS], rraw_ep[MAXPASS];
        double rep_efd[MAXPASS], rraw_fu[MAXPASS], rfu_efd[MAXPASS];
        struct bc_cpu_mark m0, m1;
        struct rt_session s;
        int failed0 = failures;

        bc_cpu_mark(&m0);

        fprintf(stderr, "  round trip ...\n");
        /* every sample holds one clock read: say what it costs */
        {
                int64_t t0 = bc_now_ns(), t = t0;

                for (int i = 0; i < 100000; i++)
                        t = bc_now_ns();
                clock_ns = (double)(t - t0) / 100000;
        }
        for (int pass = 0; pass < opt.passes; pass++) {
                pp[pass] = pingpong();
                /* A pass: one session, as long as a round of every peer
                 * of opt.rt_ns each (NaN figures if it failed). */
                run_rt_session(NRT * opt.rt_ns, &s);
                for (int p = 0; p < NRT; p++) {
                        p50[p][pass] = s.p50[p];
                        p99[p][pass] = s.p99[p];
                }
                /* A round trip against a round trip: the cache line's
                 * ping-pong is two one-way hand-offs. */
                rpp[pass] = per_cl_rt(p50[RT_BROOD][pass], pp[pass]);
                refd[pass] = rt_pair_ratio(&s, RT_BROOD_NOSPIN, RT_EVENTFD);
                rraw[pass] = rt_pair_ratio(&s, RT_BROOD, RT_RAW);
                rraw_efd[pass] = rt_pair_ratio(&s, RT_BROOD_NOSPIN, RT_RAW_EFD);
                rraw_ep[pass] = rt_pair_ratio(&s, RT_BROOD_NOSPIN, RT_RAW_EPOLL);
                rep_efd[pass] = rt_pair_ratio(&s, RT_RAW_EPOLL, RT_EVENTFD);
                rraw_fu[pass] = rt_pair_ratio(&s, RT_BROOD_NOSPIN, RT_RAW_FUTEX);
                rfu_efd[pass] = rt_pair_ratio(&s, RT_RAW_FUTEX, RT_EVENTFD);
        }
        pp[opt.passes] = pingpong();
        bc_cpu_mark(&m1);
        rt_foreign = bc_foreign_cpus(&m0, &m1);
        rt_pp = med_finite(pp, opt.passes + 1);
        rt_pp_min = rt_pp_max = pp[0];
        for (int i = 1; i <= opt.passes; i++) {
                if (pp[i] < rt_pp_min || !isfinite(rt_pp_min))
                        rt_pp_min = pp[i];
                if (pp[i] > rt_pp_max || !isfinite(rt_pp_max))
                        rt_pp_max = pp[i];
        }
        rt_pl = row_placement(rt_pp, rt_pp_min, rt_pp_max);
        for (int p = 0; p < NRT; p++) {
                rt_med[p].p50 = med_finite(p50[p], opt.passes);
                rt_med[p].p99 = med_finite(p99[p], opt.passes);
        }
        rt_failed = failures - failed0;
        rt_ratio_pp = med_finite(rpp, opt.passes);
        rt_ratio_efd = med_finite(refd, opt.passes);
        rt_ratio_raw = med_finite(rraw, opt.passes);
        rt_ratio_raw_efd = med_finite(rraw_efd, opt.passes);
        rt_ratio_raw_epoll = med_finite(rraw_ep, opt.passes);
        rt_ratio_epoll_efd = med_finite(rep_efd, opt.passes);
        rt_ratio_raw_futex = med_finite(rraw_fu, opt.passes);
        rt_ratio_futex_efd = med_finite(rfu_efd, opt.passes);
}

/* @raw: the figure the raw peer (spin ring; for the round trip raw shm spin,
 * or with spinning off raw shm+futex, asleep as brood's waits first are)
 * gets in the same place: what a plain ring reaches here. */
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

/* A figure of row @r, or NaN (a MISS) if anything failed in that row: a
 * median of the passes that did not fail is no figure of brood's. */
static double unfailed(const struct row *r, double v)
{
        return r->failed ? NAN : v;
}

static const struct row *row_of(size_t size)
{
        for (size_t i = 0; i < NSIZE; i++)
                if (rows[i].size == size)
                        return &rows[i];
        return NULL;
}

/*
 * memcpy(1 MiB), the peer of the 1 MiB row: the faster of the two
 * measurements, at the start and at the end of the run.  A host that slowed
 * the process down during one of them (one start gave 7.9 GB/s, the end
 * 42) would otherwise flatter brood 5x.
 */
static double memcpy_1m_ref(void)
{
        return memcpy_1m_after > memcpy_1m ? memcpy_1m_after : memcpy_1m;
}

static void eval_targets(void)
{
        const struct row *r64 = row_of(64), *r4k = row_of(4 * KiB), *r1m = row_of(MiB);
        const char *pl;
        const char *zname = "zero-copy >= copy at every size (min zc/copy)";
        char name[80];
        int zc_ok = 1;
        double zc_min = INFINITY;

        for (size_t i = 0; i < NSIZE; i++) {
                bool mib = rows[i].size == MiB;

                rows[i].memcpy_ratio = mib ? rows[i].fig[PEER_BROOD].gbps / memcpy_1m_ref() : NAN;
                rows[i].zc_memcpy_ratio = mib ? rows[i].fig[PEER_BROOD_ZC].gbps / memcpy_1m_ref() : NAN;
        }

        pl = r64->pl;
        /* A placement that could not be told gets the stricter threshold. */
        add_target("64 B: brood/pipe msgs/s >= 25x far, 40x near", unfailed(r64, r64->ratio[R_PIPE]),
                   pl && !strcmp(pl, "far") ? 25 : 40, 1, pl, r64->ratio[R_RAW_PIPE]);
        add_target("64 B: brood/seed msgs/s >= 10x", unfailed(r64, r64->ratio[R_SEED]), 10, 1, pl,
                   NAN);
        pl = r4k->pl;
        add_target("4 KiB: brood/pipe >= 2.5x near, 6x far", unfailed(r4k, r4k->ratio[R_PIPE]),
                   pl && !strcmp(pl, "near") ? 2.5 : 6, 1, pl, r4k->ratio[R_RAW_PIPE]);
        pl = r1m->pl;
        add_target("1 MiB: brood/pipe(1 MiB buffer) >= 2.5x", unfailed(r1m, r1m->ratio[R_PIPE]), 2.5,
                   1, pl, r1m->ratio[R_RAW_PIPE]);
        add_target("1 MiB: brood GB/s / memcpy(1 MiB) >= 0.15 far, 0.9 near",
                   unfailed(r1m, r1m->memcpy_ratio), pl && !strcmp(pl, "far") ? 0.15 : 0.9, 1, pl,
                   r1m->fig[PEER_RAW].gbps / memcpy_1m_ref());
        add_target("1 MiB: zero-copy GB/s / memcpy(1 MiB), the same",
                   unfailed(r1m, r1m->zc_memcpy_ratio), pl && !strcmp(pl, "far") ? 0.15 : 0.9, 1, pl,
                   NAN);
        for (size_t i = 0; i < NSIZE; i++) {
                if (!isfinite(unfailed(&rows[i], rows[i].ratio[R_ZC])))
                        zc_ok = 0;
                else if (rows[i].ratio[R_ZC] < zc_min)
                        zc_min = rows[i].ratio[R_ZC];
        }
        if (opt.zc_side != ZC_BOTH) {
                snprintf(name, sizeof(name), "zero-copy >= copy (min zc/copy; zc %s only)",
                         zc_side_name[opt.zc_side]);
                zname = name;
        }
        add_target(zname, zc_ok ? zc_min : NAN, 1.0, 1, NULL, NAN);
        pl = rt_pl;
        add_target("round trip p50 <= 2x cache-line ping-pong (round trip)",
                   rt_failed ? NAN : rt_ratio_pp, 2.0, 0, pl, per_cl_rt(rt_med[RT_RAW].p50, rt_pp));
        add_target("spin off p50 <= 1.1x raw eventfd p50", rt_failed ? NAN : rt_ratio_efd, 1.1, 0, pl,
                   rt_ratio_futex_efd);
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
        printf("memcpy 1 MiB %.2f GB/s (%.2f at the end; the ratios take the faster), 16 MiB %.2f GB/s\n",
               memcpy_1m, memcpy_1m_after, memcpy_16m);
        if (mb_idle_ns > 0 && mb_busy_ns > 0)
                printf("membarrier(GLOBAL_EXPEDITED) %.0f ns, %.0f ns while the other CPU runs a "
                       "registered process\n(a sleeping side pays one per sleep unless it asks "
                       "its peer to fence: --fence)\n", mb_idle_ns, mb_busy_ns);
        printf("cl-pp = cache-line ping-pong between the two processes, ns per one-way hand-off;\n"
               "placement \"near\" below 120 ns, \"far\" above 190 ns, \"unknown\" between (hosts' near\n"
               "and far overlap there); \"mixed\" when a row's ping-pongs were some near, some far;\n"
               "an unknown or mixed row's targets take the stricter threshold (targets depend on it)\n");

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
                snprintf(pp, sizeof(pp), "%.0f %-4s %5.2f", r->pp_ns, r->pl ? r->pl : "unknown",
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
               "pipe buffer = ring size up to 1 MiB, socket buffers asked the same;\n"
               " '!' = checksum pass failed (a failure in a row makes its targets MISS);\n"
               " brood rings BRD_RING_POPULATE: their first touches at attach, the others' in the "
               "warm-up lap;\n"
               " other CPUs = CPU time other processes and the host (steal) used during the row)\n");

        printf("\n-- ratios (msgs/s, brood = copy API; medians of per-pass ratios; raw = the raw spin\n"
               "   ring: hand-written, brood's frames, libc's memcpy, no sleep, no checks, no\n"
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
                               "that pair is its ceiling)\n", "", sz, r->pair_gbps, memcpy_1m_ref(),
                               r->pair_ratio, "");
        }

        if (opt.only)
                return;         /* --size: one streaming row, nothing else ran */
        printf("\n== 64-byte round trip (ping-pong over two channels), ns; median of %d passes ==\n"
               "(a pass: every peer in one pair of processes, cycles of one ~10 ms round each;\n"
               " a ratio of two peers: per cycle, of their rounds' p50s; its median over cycles)\n",
               opt.passes);
        printf("cache-line ping-pong: %.0f ns one-way, %.0f ns round trip, %s (one-way min %.0f, "
               "max %.0f)\n", rt_pp, 2 * rt_pp, rt_pl ? rt_pl : "unknown", rt_pp_min, rt_pp_max);
        printf("one clock read per sample (CLOCK_MONOTONIC; in p50 and p99, taken out of "
               "p50/cl-rt): %.1f ns; other processes used %.2f CPUs meanwhile\n", clock_ns,
               rt_foreign);
        printf("%-16s %10s %10s %12s\n", "peer", "p50", "p99", "p50/cl-rt");
        for (int p = 0; p < NRT; p++) {
                fmt_num(a, sizeof(a), rt_med[p].p50, 10, 0);
                fmt_num(b, sizeof(b), rt_med[p].p99, 10, 0);
                fmt_num(c, sizeof(c), per_cl_rt(rt_med[p].p50, rt_pp), 12, 2);
                printf("%-16s %s %s %s\n", rt_title[p], a, b, c);
        }
        printf("brood default p50 / cache-line round trip: %.2f;  spin-off p50 / eventfd p50: %.2f\n",
               rt_ratio_pp, rt_ratio_efd);
        printf("brood default p50 / raw shm spin p50 (the floor of any shared-memory message): %.2f\n",
               rt_ratio_raw);
        printf("brood spin-off p50 / raw shm+eventfd p50 (the floor of one that wakes a sleeper): "
               "%.2f\n", rt_ratio_raw_efd);
        printf("brood spin-off p50 / raw shm+futex p50 (the same, asleep in a futex as brood's "
               "waits first are): %.2f;  raw shm+futex / raw eventfd: %.2f\n", rt_ratio_raw_futex,
               rt_ratio_futex_efd);
        printf("brood spin-off p50 / raw shm+epoll p50 (the same, asleep in epoll as brood's "
               "waits are past 20 ms): %.2f;  raw shm+epoll / raw eventfd: %.2f\n",
               rt_ratio_raw_epoll, rt_ratio_epoll_efd);

        printf("\n== idle ==\nconsumer blocked on an empty brood ring for %.1f s: %.3f%% of a core\n",
               (double)opt.idle_ns / 1e9, idle_pct);
        printf("\n== paced: a 64 B message every P us for %.1f s (the producer spins on the clock) ==\n"
               "consumer CPU in %% of a core, doorbells the producer rang per message\n"
               "P us    brood default      spin off\n", (double)opt.idle_ns / 1e9);
        for (size_t i = 0; i < NPACED; i++)
                printf("%-6d  %6.1f%%  %5.2f    %6.1f%%  %5.2f\n", paced_us[i], paced_cpu[i][0],
                       paced_bells[i][0], paced_cpu[i][1], paced_bells[i][1]);

        printf("\n== targets of issue 3 (informational; raw = what the raw spin ring, or for the\n"
               "   round trip the raw shm spin (spin off: raw shm+futex), gets in the same place) ==\n");
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
        bc_json_str(&j, "stream_stores", release_name[brd__stream_policy]);
        bc_json_str(&j, "fence_requests", release_name[brd__fence_policy]);
        bc_json_int(&j, "buffer_offset", (int64_t)opt.offset);
        bc_json_str(&j, "zerocopy_sides", zc_side_name[opt.zc_side]);
        bc_json_str(&j, "brood_stream_ring_flags", "BRD_RING_POPULATE");
        bc_json_arr(&j, "cpus");
        bc_json_int(&j, NULL, opt.pin ? opt.cpu[0] : -1);
        bc_json_int(&j, NULL, opt.pin ? opt.cpu[1] : -1);
        bc_json_close(&j);
        bc_json_int(&j, "passes", opt.passes);
        bc_json_num(&j, "case_seconds", (double)opt.case_ns / 1e9);
        bc_json_num(&j, "other_processes_cpus", run_foreign);
        bc_json_obj(&j, "limits");
        bc_json_num(&j, "memcpy_1MiB_gbps", memcpy_1m);
        bc_json_num(&j, "memcpy_1MiB_gbps_ref", memcpy_1m_ref());
        bc_json_num(&j, "memcpy_1MiB_gbps_at_end", memcpy_1m_after);
        bc_json_num(&j, "memcpy_16MiB_gbps", memcpy_16m);
        bc_json_num(&j, "membarrier_ns", mb_idle_ns > 0 ? mb_idle_ns : NAN);
        bc_json_num(&j, "membarrier_ns_other_cpu_busy", mb_busy_ns > 0 ? mb_busy_ns : NAN);
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
                bc_json_str(&j, "placement", r->pl);
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
                        /* null: a ping-pong failed, or too close to call */
                        bc_json_str(&j, "placement", !a || !b ? NULL : !strcmp(a, b) ? a : "mixed");
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
        bc_json_str(&j, "placement", rt_pl);
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
        bc_json_num(&j, "nospin_p50_over_raw_shm_eventfd_p50", rt_ratio_raw_efd);
        bc_json_num(&j, "nospin_p50_over_raw_shm_epoll_p50", rt_ratio_raw_epoll);
        bc_json_num(&j, "raw_shm_epoll_p50_over_eventfd_p50", rt_ratio_epoll_efd);
        bc_json_num(&j, "nospin_p50_over_raw_shm_futex_p50", rt_ratio_raw_futex);
        bc_json_num(&j, "raw_shm_futex_p50_over_eventfd_p50", rt_ratio_futex_efd);
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
                "                  [--release auto|off|on] [--stream auto|off|on] [--fence auto|off|on]\n"
                "                  [--offset BYTES] [--zc-side both|producer|consumer]\n"
                "  --quick      short run (< 20 s); the default run takes about a minute\n"
                "  --json FILE  write every figure, the ratios and the machine to FILE\n"
                "  --no-pin     do not pin producer and consumer to two CPUs\n"
                "  --passes N   timed passes per case (median; default 5, quick 2)\n"
                "  --size BYTES stream messages of this size only (8, 64, 512, 4096, 65536 or\n"
                "               1048576); no round trip, no idle case: for tuning one row\n"
                "  --release P  how brood consumers release the lines they consumed: auto (the\n"
                "               library's controller, the default), off, or on (always while\n"
                "               streaming): to measure what the release does\n"
                "  --stream P   whether brood producers copy payloads of 1-256 KiB with\n"
                "               streaming stores: as the library's controller decides (auto,\n"
                "               the default), never (off) or always (on)\n"
                "  --fence P    whether a brood side about to sleep asks its peer to fence its\n"
                "               next few publishes instead of paying a membarrier: when\n"
                "               membarriers prove dear (auto, the default), never (off: a\n"
                "               membarrier at every sleep), or at every sleep (on)\n"
                "  --offset B   the producer's source and the consumer's buffer start B bytes\n"
                "               (0-4095) past a page, for every peer; default 0; 16 is where\n"
                "               malloc puts a large buffer\n"
                "  --zc-side S  which sides of the zero-copy peer call the zero-copy API: both\n"
                "               (the default), the producer only or the consumer only (the\n"
                "               other side sends or receives with copies): to tell where a\n"
                "               zero-copy/copy ratio comes from\n"
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
                { "stream", required_argument, NULL, 'S' },
                { "fence", required_argument, NULL, 'F' },
                { "offset", required_argument, NULL, 'o' },
                { "zc-side", required_argument, NULL, 'z' },
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
                case 'S':
                case 'F': {
                        int *policy = ch == 'r' ? &brd__release_policy :
                                      ch == 'S' ? &brd__stream_policy : &brd__fence_policy;
                        /* release_name[] indexes both enums alike. */
                        _Static_assert((int)BRD_FENCE_NEVER == (int)BRD_RELEASE_OFF &&
                                       (int)BRD_FENCE_ALWAYS == (int)BRD_RELEASE_ON, "policy values");
                        int v = name_index(release_name, optarg);

                        if (v < 0) {
                                fprintf(stderr, "ring-bench: --%s auto, off or on\n",
                                        ch == 'r' ? "release" : ch == 'S' ? "stream" : "fence");
                                return 2;
                        }
                        *policy = v;
                        break;
                }
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
                case 'z': {
                        int v = name_index(zc_side_name, optarg);

                        if (v < 0) {
                                fprintf(stderr, "ring-bench: --zc-side both, producer or consumer\n");
                                return 2;
                        }
                        opt.zc_side = v;
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
        src_buf = aligned_alloc(4096, MiB + 4096);
        rx_buf = aligned_alloc(4096, MiB + 4096);
        rt_samples = calloc(RT_MAX_SAMPLES, sizeof(*rt_samples));
        if (case_init() < 0 || !src_buf || !rx_buf || !rt_samples) {
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
                "release %s, stream %s, fence %s, buffers %zu B past a page, zero-copy sides %s\n",
                brd_version(), (int)sysconf(_SC_NPROCESSORS_ONLN),
                opt.pin ? "producer and consumer pinned to two CPUs" : "not pinned",
                opt.passes, (double)opt.case_ns / 1e9, opt.quick ? " (quick)" : "",
                release_name[brd__release_policy], release_name[brd__stream_policy],
                release_name[brd__fence_policy], opt.offset, zc_side_name[opt.zc_side]);
        if (opt.pin)
                printf("pinned: producer cpu %d, consumer cpu %d\n", opt.cpu[0], opt.cpu[1]);
        else
                printf("not pinned\n");
        if (opt.zc_side != ZC_BOTH)
                printf("zero-copy column: only the %s calls the zero-copy API (--zc-side)\n",
                       zc_side_name[opt.zc_side]);
        bc_cpu_mark(&m0);
        memcpy_1m = bc_memcpy_gbps(MiB, 5, opt.quick ? 20000000 : 50000000);
        memcpy_16m = bc_memcpy_gbps(16 * MiB, 5, opt.quick ? 20000000 : 50000000);
        mb_idle_ns = bc_membarrier_ns(2000, 0, -1, -1);
        mb_busy_ns = bc_membarrier_ns(2000, 1, opt.pin ? opt.cpu[0] : -1,
                                      opt.pin ? opt.cpu[1] : -1);
        run_streaming();
        if (opt.only) {
                rt_pp = rt_pp_min = rt_pp_max = rt_ratio_pp = rt_ratio_efd = rt_ratio_raw = NAN;
                rt_ratio_raw_efd = rt_ratio_raw_epoll = rt_ratio_epoll_efd = NAN;
                rt_ratio_raw_futex = rt_ratio_futex_efd = NAN;
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
        if (!opt.only)
                eval_targets();         /* --size: most were never measured */
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
