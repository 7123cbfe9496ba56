/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the bench/ programs: a monotonic clock, order
 * statistics, a flat JSON writer, CPU pinning, and the two "limits" every
 * two-process figure is read against (memcpy bandwidth, and the cache-line
 * ping-pong between two processes, which tells where the host placed the
 * vCPUs: "near" ~110 ns, "far" ~500 ns).
 *
 * Not part of the library: nothing here is exported or installed.
 */
#ifndef BROOD_BENCH_COMMON_H
#define BROOD_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in ns: comparable between processes of one machine. */
int64_t bc_now_ns(void);

/* Median / percentile (0..100, nearest rank) of @n values; sorts @v in place.
 * Return 0 when n == 0. */
double bc_median(double *v, size_t n);
uint64_t bc_percentile_u64(uint64_t *v, size_t n, double pct);
/* The same percentile of @n values already sorted (by bc_percentile_u64()):
 * a second percentile of the same values without a second sort. */
uint64_t bc_rank_u64(const uint64_t *sorted, size_t n, double pct);

/* Pin the calling process to @cpu; -errno on failure (e.g. fewer CPUs). */
int bc_pin_cpu(int cpu);
/* Number of CPUs this process may run on. */
int bc_ncpus(void);

/* Keep the compiler from dropping a computation whose result is unused. */
static inline void bc_sink(uint64_t v)
{
        __asm__ __volatile__("" : : "r"(v) : "memory");
}

/* An order-sensitive 64-bit checksum: chain @h over @n bytes of @p. */
uint64_t bc_hash(uint64_t h, const void *p, size_t n);

/* memcpy bandwidth in GB/s (1e9 B/s, bytes copied) for a @size-byte copy
 * between two private, pre-touched buffers; median of @reps runs of @run_ns. */
double bc_memcpy_gbps(size_t size, int reps, int64_t run_ns);

/*
 * The same copy loop run at once on two CPUs, one per process (a forked
 * child on @cpu_child, the caller on @cpu_parent; < 0: not pinned; the
 * caller's affinity is restored after), for @run_ns each, started together.
 * Returns the slower side's GB/s, or a negative errno.  What a pipeline
 * that copies every byte once on each CPU (brood's copy API: send copies in,
 * recv copies out) can reach at most; where the two vCPUs share a core or
 * its memory path, it is well under bc_memcpy_gbps().
 */
double bc_memcpy_pair_gbps(size_t size, int64_t run_ns, int cpu_parent, int cpu_child);

/*
 * Cache-line ping-pong: a forked child and the caller share one cache line
 * and take turns bumping a counter in it.  Returns the median over @reps
 * runs of ns per one-way hand-off (a hand-off = one side's store seen by the
 * other side), or a negative errno.  @cpu_parent/@cpu_child >= 0 pin the two
 * sides for the measurement (the caller's affinity is restored after).
 */
double bc_cacheline_pingpong_ns(long handoffs, int reps, int cpu_parent, int cpu_child);

/*
 * What membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) costs the caller: the mean
 * ns of @calls calls, with the other CPUs idle (@busy 0) or while a forked
 * child, registered, spins on @cpu_child (the caller on @cpu_parent, its
 * affinity restored after; < 0: not pinned).  A ring's sleeper pays one per
 * sleep unless it asks its peer to fence (internal/brd-ring.h).  Negative
 * errno when membarrier cannot be used.
 */
double bc_membarrier_ns(int calls, int busy, int cpu_parent, int cpu_child);

/* Placement of the two vCPUs from a ping-pong figure (< 120 ns: "near",
 * > 190 ns: "far"); NULL between (too close to call), for NaN (not
 * measured) and for a failed one, which bc_json_str() writes as null. */
const char *bc_placement(double pingpong_ns);
/* bc_placement() for printing: "unknown" where it gives NULL. */
const char *bc_placement_name(double pingpong_ns);

/*
 * Interference: CPU time the rest of the machine (other processes, and the
 * host through steal time) used between two marks, from /proc/stat minus
 * this process and its reaped children.  On a shared 2-vCPU machine a busy
 * neighbour moves every figure; print it beside the figures.
 */
struct bc_cpu_mark {
        int64_t t_ns;           /* monotonic clock */
        int64_t busy_ns;        /* all CPUs, non-idle (incl. steal), from /proc/stat */
        int64_t own_ns;         /* this process + reaped children (getrusage) */
};
void bc_cpu_mark(struct bc_cpu_mark *m);
/* Foreign CPU use between @a and @b in CPUs (0.25 = a quarter of one CPU); NaN if unknown. */
double bc_foreign_cpus(const struct bc_cpu_mark *a, const struct bc_cpu_mark *b);

/* Wait for @pid, return its waitpid status, or -errno. */
int bc_wait_child(pid_t pid);
/* fork() for a worker that must not outlive this program: sent @sig
 * (SIGKILL; SIGTERM for one that cleans up after itself) when the forking
 * thread exits (a worker spinning on a flag of a parent that was killed
 * would spin for ever).  Fork from the main thread. */
pid_t bc_fork_tied(int sig);

/* ------------------------------------------------------------------ JSON
 * A tiny streaming writer for flat-ish documents: objects and arrays nest,
 * commas are placed for the caller.  Errors stick in the FILE (ferror).
 */
#define BC_JSON_MAX_DEPTH 16
struct bc_json {
        FILE *f;
        int   depth;
        int   count[BC_JSON_MAX_DEPTH];     /* members written at each level */
        char  closer[BC_JSON_MAX_DEPTH];    /* '}' or ']' for each open level */
};

void bc_json_begin(struct bc_json *j, FILE *f);      /* opens the top-level object */
int  bc_json_end(struct bc_json *j);                 /* closes it; 0 or -EIO */
void bc_json_obj(struct bc_json *j, const char *key);    /* key NULL inside arrays */
void bc_json_arr(struct bc_json *j, const char *key);
void bc_json_close(struct bc_json *j);               /* closes the innermost obj/arr */
void bc_json_num(struct bc_json *j, const char *key, double v);  /* NaN/inf -> null */
void bc_json_int(struct bc_json *j, const char *key, int64_t v);
void bc_json_str(struct bc_json *j, const char *key, const char *s);    /* NULL -> null */
void bc_json_bool(struct bc_json *j, const char *key, int v);
/* "date" (UTC ISO 8601), "uname", "hostname" and "nproc" members. */
void bc_json_machine(struct bc_json *j);

#endif /* BROOD_BENCH_COMMON_H */
