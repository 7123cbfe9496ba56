/* SPDX-License-Identifier: MIT */
/*
 * What ring-bench's parts share: ring-bench.c (the command line, the report,
 * main), rb-stream.c (the streaming peers, and the idle and paced consumers),
 * rb-rt.c (the round trip) and rb-case.c (what every case needs: the options,
 * the forked child).  ring-bench.c says what the benchmark measures and how.
 */
#ifndef BROOD_RING_BENCH_H
#define BROOD_RING_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define MAXPASS 32

/* The command line (parsed by ring-bench.c). */
struct rb_opt {
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
        int      zc_side;               /* --zc-side: which sides of the zero-copy peer use it (ZC_*) */
        int      cpu[2];                /* producer / consumer CPUs when pinned */
};

/* opt.zc_side: the zero-copy peer's sides that call the zero-copy API; the
 * other side calls send or recv on the same ring. */
enum { ZC_BOTH, ZC_PRODUCER, ZC_CONSUMER };

extern struct rb_opt opt;
extern int failures;                    /* errors and checksum mismatches (not misses) */

/* ------------------------------------------- every case (rb-case.c) */

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

extern struct child_res *res;           /* a shared page, mapped by case_init() */

/* Once, before any case: the 60 s alarm that ends a hung run, this process
 * as the children's parent, and the result page.  0, or -ENOMEM. */
int case_init(void);

/* Fork a child for one case: 0 in the child (its ready pipe's write end in
 * *ret_ready_w), its pid in the parent (the read end in *ret_ready), or
 * -errno.  The child dies with the parent and runs on the consumer's CPU;
 * the parent's 60 s alarm runs until reap(). */
pid_t fork_child(int *ret_ready, int *ret_ready_w);
/* Child, once its side of the case is set up (@e: 0, or -errno): say so on
 * the ready pipe @fd, or exit 2 with @e left in res (exit 4 if it cannot). */
void child_ready(int fd, int e);
/* Parent: wait, bounded, for the ready byte; 0, or -EPROTO if the child died
 * first.  Closes @fd. */
int wait_ready(int fd);
/* Wait for the child (SIGKILL first if @kill_it: then -ECANCELED) and cancel
 * the alarm; 0, or -errno: -EPROTO when it did not exit 0, else the error it
 * left in res. */
int reap(pid_t pid, int kill_it);
/* Parent, when a case failed with @e (-errno), after reap() if it forked:
 * say on stderr what failed ("ring-bench: " @fmt ": " the error) and count
 * the failure.  Returns @e. */
int case_failed(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close *@fd if open, and mark it closed (-1). */
void close_fd(int *fd);

/* --------------------------------------------- streaming (rb-stream.c) */

enum peer {
        PEER_BROOD, PEER_BROOD_ZC, PEER_BROOD_BATCH, PEER_PIPE, PEER_SOCK, PEER_SEED, PEER_RAW,
        NPEER
};

extern const char *const peer_name[NPEER];      /* JSON keys */
extern const char *const peer_title[NPEER];     /* table headings */

struct stream_fig {
        double mps, gbps;               /* NaN when the case failed */
        uint64_t count;                 /* messages timed: after the warm-up */
};

/* The producer's source and the consumer's buffer: 1 MiB each (+ opt.offset),
 * allocated once by main(). */
extern unsigned char *src_buf, *rx_buf;

/* The ring (and seed buffer) capacity, and the pipe buffer, of a case. */
size_t ring_cap_for(size_t size);
size_t pipe_sz_for(size_t size);

/* Stream messages of @size bytes through peer @p to a forked consumer for
 * one pass (@verify: the untimed pass that checksums every byte): the
 * figures in *@f (NaN on failure).  0, or -errno (counted in failures). */
int run_stream(enum peer p, size_t size, int verify, struct stream_fig *f);

/*
 * A consumer fed a 64-byte message every @period_ns (0: none, it stays
 * blocked on an empty ring) for opt.idle_ns, on a ring created with
 * @flags: its CPU use in % of a core (*ret_cpu), and the doorbells the
 * producer rang per message (*ret_bells; NaN without messages).  The
 * producer paces by spinning on the clock, so that only the consumer's
 * waits are measured.  0, or -errno (the figures are then NaN).
 */
int run_paced(int64_t period_ns, unsigned flags, double *ret_cpu, double *ret_bells);
/* A consumer blocked on an empty ring for opt.idle_ns: its CPU use in % of a
 * core, or NaN. */
double run_idle(void);

/* --------------------------------------------- round trip (rb-rt.c) */

enum rt_peer { RT_BROOD, RT_BROOD_NOSPIN, RT_EVENTFD, RT_PIPE, RT_RAW, RT_RAW_EFD, RT_RAW_EPOLL,
              RT_RAW_FUTEX, NRT };

extern const char *const rt_name[NRT];          /* JSON keys */
extern const char *const rt_title[NRT];         /* table headings */

#define RT_MAX_SAMPLES (1u << 21)
extern uint64_t *rt_samples;            /* RT_MAX_SAMPLES, allocated once by main() */

/* Counted cycles of one session at most (fewer when the samples of that
 * many would not fit in rt_samples). */
#define RT_MAX_CYCLES 64

/*
 * One round-trip session: every peer's two channels set up in this process
 * and one forked child, then cycles of one round per peer, in peer order,
 * each round a fixed number of 64-byte ping-pongs (about 10 ms here), the
 * first cycle not counted.  Peers measured seconds apart may sit in
 * different states of the host (a halted vCPU's wake-up here moves by ~2 us
 * every few hundred ms, 10% of a sleeping round trip); rounds a few ms
 * apart share theirs, so a ratio of two peers is taken within each cycle
 * (rt_pair_ratio()).
 */
struct rt_session {
        double p50[NRT], p99[NRT];      /* ns, over every counted round; NaN when failed */
        double round_p50[RT_MAX_CYCLES][NRT];
        int cycles;                     /* counted */
};

/* A session in *@s: cycles until @budget ns have passed, two counted ones
 * at least.  0, or -errno (counted in failures; the figures are then NaN). */
int run_rt_session(int64_t budget, struct rt_session *s);
/* The median over @s's cycles of peer @a's round p50 / peer @b's; NaN when
 * the session failed. */
double rt_pair_ratio(const struct rt_session *s, enum rt_peer a, enum rt_peer b);

#endif /* BROOD_RING_BENCH_H */
