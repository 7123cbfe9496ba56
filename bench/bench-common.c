/* SPDX-License-Identifier: MIT */
#include "bench-common.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The ping-pong line lives in shared memory, so its atomics go through the
 * same gate as the library's (brd-private.h refuses lock-emulated AO_t).
 */
#include <internal/brd-private.h>

int64_t bc_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return (x > y) - (x < y);
}

double bc_median(double *v, size_t n)
{
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t bc_rank_u64(const uint64_t *sorted, size_t n, double pct)
{
        size_t k;

        if (n == 0)
                return 0;
        k = (size_t)ceil(pct / 100.0 * (double)n);
        return sorted[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

uint64_t bc_percentile_u64(uint64_t *v, size_t n, double pct)
{
        qsort(v, n, sizeof(*v), cmp_u64);
        return bc_rank_u64(v, n, pct);
}

int bc_pin_cpu(int cpu)
{
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int bc_ncpus(void)
{
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return (int)sysconf(_SC_NPROCESSORS_ONLN);
        return CPU_COUNT(&set);
}

uint64_t bc_hash(uint64_t h, const void *p, size_t n)
{
        const unsigned char *b = p;
        uint64_t w;

        /* FNV-1a over 64-bit words: order-sensitive, ~8 GB/s, good enough to
         * catch a dropped, duplicated, reordered or torn message. */
        for (; n >= 8; n -= 8, b += 8) {
                memcpy(&w, b, 8);
                h = (h ^ w) * 0x100000001b3ull;
        }
        for (; n; n--, b++)
                h = (h ^ *b) * 0x100000001b3ull;
        return h;
}

/* GB/s of back-to-back @size-byte copies src -> dst for at least @run_ns. */
static double memcpy_run(unsigned char *dst, const unsigned char *src, size_t size,
                         int64_t run_ns)
{
        int64_t t0 = bc_now_ns(), t;
        uint64_t bytes = 0;

        do {
                for (int k = 0; k < 4; k++) {
                        memcpy(dst, src, size);
                        __asm__ __volatile__("" : : "r"(dst) : "memory");
                        bytes += size;
                }
                t = bc_now_ns() - t0;
        } while (t < run_ns);
        return (double)bytes / (double)t;
}

/* Two private buffers of @size, touched and copied once. */
static int memcpy_bufs(size_t size, unsigned char **src, unsigned char **dst)
{
        *src = aligned_alloc(4096, size);
        *dst = aligned_alloc(4096, size);
        if (!*src || !*dst) {
                free(*src);
                free(*dst);
                return -ENOMEM;
        }
        memset(*src, 0x5a, size);
        memset(*dst, 0, size);
        memcpy(*dst, *src, size);               /* warm */
        return 0;
}

double bc_memcpy_gbps(size_t size, int reps, int64_t run_ns)
{
        unsigned char *src, *dst;
        double *res, m = -1;

        res = calloc((size_t)reps, sizeof(*res));
        if (!res || memcpy_bufs(size, &src, &dst) < 0) {
                free(res);
                return -1;
        }
        for (int r = 0; r < reps; r++)
                res[r] = memcpy_run(dst, src, size, run_ns);
        m = bc_median(res, (size_t)reps);
        free(src);
        free(dst);
        free(res);
        return m;
}

/*
 * The two processes of a two-CPU measurement: the caller pinned to
 * @cpu_parent, a forked child to @cpu_child (< 0: not pinned), killed when
 * the caller dies.  Returns the child's pid in the caller, 0 in the child,
 * or -errno (affinity restored).  pair_end() reaps it.
 */
struct pair_pin {
        cpu_set_t saved;
        int have_saved;
};

static pid_t pair_fork(int cpu_parent, int cpu_child, struct pair_pin *pin)
{
        pid_t pid;

        pin->have_saved = 0;
        if (cpu_parent >= 0) {
                pin->have_saved = sched_getaffinity(0, sizeof(pin->saved), &pin->saved) == 0;
                bc_pin_cpu(cpu_parent);
        }
        pid = fork();
        if (pid < 0) {
                pid = -errno;
                if (pin->have_saved)
                        sched_setaffinity(0, sizeof(pin->saved), &pin->saved);
        } else if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (cpu_child >= 0)
                        bc_pin_cpu(cpu_child);
        }
        return pid;
}

/* Reap the child (killed first when @e is an error) and restore the
 * caller's affinity.  Returns @e, or -EPROTO when the child failed. */
static int pair_end(pid_t pid, int e, struct pair_pin *pin)
{
        int st;

        if (e)
                kill(pid, SIGKILL);
        st = bc_wait_child(pid);
        if (!e && (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
                e = -EPROTO;
        if (pin->have_saved)
                sched_setaffinity(0, sizeof(pin->saved), &pin->saved);
        return e;
}

struct pair_page {
        AO_t   ready;   char pad0[BRD_CACHELINE - sizeof(AO_t)];
        AO_t   go;      char pad1[BRD_CACHELINE - sizeof(AO_t)];
        double child_gbps;
};

static int pp_wait(AO_t *a, AO_t want);

double bc_memcpy_pair_gbps(size_t size, int64_t run_ns, int cpu_parent, int cpu_child)
{
        unsigned char *src, *dst;
        struct pair_page *pg;
        struct pair_pin pin;
        double mine = -1;
        int e = 0;
        pid_t pid;

        pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (pg == MAP_FAILED)
                return -errno;
        pid = pair_fork(cpu_parent, cpu_child, &pin);
        if (pid < 0) {
                e = (int)pid;
                goto out;
        }
        if (pid == 0) {
                if (memcpy_bufs(size, &src, &dst) < 0)
                        _exit(1);
                AO_store_release(&pg->ready, 1);        /* pairs with pp_wait below */
                if (pp_wait(&pg->go, 1) < 0)
                        _exit(1);
                pg->child_gbps = memcpy_run(dst, src, size, run_ns);
                _exit(0);
        }
        if (memcpy_bufs(size, &src, &dst) < 0) {
                e = -ENOMEM;
        } else {
                if (pp_wait(&pg->ready, 1) < 0) {
                        e = -ETIMEDOUT;
                } else {
                        AO_store_release(&pg->go, 1);   /* both copy from here on */
                        mine = memcpy_run(dst, src, size, run_ns);
                }
                free(src);
                free(dst);
        }
        e = pair_end(pid, e, &pin);
out:
        {
                /* The child's figure: its exit (waited for above) ordered
                 * its store before our read. */
                double m = e ? e : (pg->child_gbps < mine ? pg->child_gbps : mine);

                munmap(pg, sizeof(*pg));
                return m;
        }
}

const char *bc_placement(double pingpong_ns)
{
        /* Hosts seen so far: near 34-135 ns (170 on a Zen 4), far 167-500
         * ns.  Between 120 and 190 ns a figure is too close to call: no
         * placement, so that a target takes the stricter of its two
         * thresholds there.  NaN: the row did not run (ring-bench --size);
         * not above 0: the ping-pong failed (a -errno), which is no
         * placement either. */
        if (isnan(pingpong_ns) || pingpong_ns <= 0)
                return NULL;
        if (pingpong_ns < 120)
                return "near";
        return pingpong_ns > 190 ? "far" : NULL;
}

const char *bc_placement_name(double pingpong_ns)
{
        const char *p = bc_placement(pingpong_ns);

        return p ? p : "unknown";
}

void bc_cpu_mark(struct bc_cpu_mark *m)
{
        unsigned long long v[8] = { 0 };
        struct rusage self, kids;
        long hz = sysconf(_SC_CLK_TCK);
        FILE *f = fopen("/proc/stat", "re");

        m->t_ns = bc_now_ns();
        m->busy_ns = -1;
        /* cpu  user nice system idle iowait irq softirq steal */
        if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                        &v[3], &v[4], &v[5], &v[6], &v[7]) == 8 && hz > 0)
                m->busy_ns = (int64_t)((v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) *
                                       (1000000000ull / (unsigned long long)hz));
        if (f)
                fclose(f);
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &kids);
        m->own_ns = ((int64_t)self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                     kids.ru_stime.tv_sec) * 1000000000 +
                    ((int64_t)self.ru_utime.tv_usec + self.ru_stime.tv_usec +
                     kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) * 1000;
}

double bc_foreign_cpus(const struct bc_cpu_mark *a, const struct bc_cpu_mark *b)
{
        double f;

        if (a->busy_ns < 0 || b->busy_ns < 0 || b->t_ns <= a->t_ns)
                return NAN;
        f = (double)((b->busy_ns - a->busy_ns) - (b->own_ns - a->own_ns)) /
            (double)(b->t_ns - a->t_ns);
        return f < 0 ? 0 : f;
}

pid_t bc_fork_tied(int sig)
{
        pid_t parent = getpid(), pid = fork();

        /* The parent may have died before PDEATHSIG was armed. */
        if (pid == 0 && (prctl(PR_SET_PDEATHSIG, sig) < 0 || getppid() != parent))
                _exit(1);
        return pid;
}

int bc_wait_child(pid_t pid)
{
        int st;

        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return st;
}

/* ------------------------------------------------------ cache-line ping-pong */

struct pp_line {
        AO_t ready;     char pad0[BRD_CACHELINE - sizeof(AO_t)];
        AO_t turn;      char pad1[BRD_CACHELINE - sizeof(AO_t)];
};

double bc_membarrier_ns(int calls, int busy, int cpu_parent, int cpu_child)
{
        struct pair_page *pg;
        struct pair_pin pin;
        int64_t t0, t = 0;
        int e = 0;
        pid_t pid = 0;

        if (calls < 1 || brd__membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) < 0)
                return calls < 1 ? -EINVAL : -errno;
        pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (pg == MAP_FAILED)
                return -errno;
        pin.have_saved = 0;
        if (busy) {
                pid = pair_fork(cpu_parent, cpu_child, &pin);
                if (pid < 0) {
                        e = (int)pid;
                        goto out;
                }
                if (pid == 0) {
                        /* Registered and running: every call must reach us. */
                        if (brd__membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) < 0)
                                _exit(1);
                        AO_store_release(&pg->ready, 1);        /* pairs with pp_wait below */
                        _exit(pp_wait(&pg->go, 1) < 0);
                }
                if (pp_wait(&pg->ready, 1) < 0)
                        e = -ETIMEDOUT;
        }
        t0 = bc_now_ns();
        for (int i = 0; i < calls && !e; i++)
                if (brd__membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) < 0)
                        e = -errno;
        t = bc_now_ns() - t0;
        if (busy) {
                AO_store_release(&pg->go, 1);   /* pairs with the child's pp_wait */
                e = pair_end(pid, e, &pin);
        }
out:
        munmap(pg, sizeof(*pg));
        return e ? e : (double)t / calls;
}

/* Spin until *a == want; give up after ~2 s so that a lost peer cannot hang
 * the benchmark.  No pause instruction: the figure is the hardware's hand-off
 * cost, not a spin policy's. */
static int pp_wait(AO_t *a, AO_t want)
{
        unsigned long spins = 0;
        int64_t t0 = 0;

        while (AO_load_acquire(a) != want) {    /* pairs with the peer's store_release */
                if ((++spins & 0xfffff) == 0) {
                        int64_t t = bc_now_ns();

                        if (!t0)
                                t0 = t;
                        else if (t - t0 > 2000000000)
                                return -ETIMEDOUT;
                }
        }
        return 0;
}

double bc_cacheline_pingpong_ns(long handoffs, int reps, int cpu_parent, int cpu_child)
{
        struct pp_line *l;
        struct pair_pin pin;
        int r, e = 0;
        long rounds = handoffs / 2 > 0 ? handoffs / 2 : 1;
        double *res;
        pid_t pid;

        res = calloc((size_t)reps, sizeof(*res));
        if (!res)
                return -ENOMEM;
        l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (l == MAP_FAILED) {
                free(res);
                return -errno;
        }
        pid = pair_fork(cpu_parent, cpu_child, &pin);
        if (pid < 0) {
                e = (int)pid;
                goto out;
        }
        if (pid == 0) {
                AO_t v = 0;

                AO_store_release(&l->ready, 1);
                for (r = 0; r < reps; r++)
                        for (long k = 0; k < rounds; k++) {
                                v += 2;
                                if (pp_wait(&l->turn, v - 1) < 0)
                                        _exit(1);
                                AO_store_release(&l->turn, v);  /* pairs with pp_wait */
                        }
                _exit(0);
        }
        if (pp_wait(&l->ready, 1) < 0) {
                e = -ETIMEDOUT;
        } else {
                AO_t v = 0;

                for (r = 0; r < reps && !e; r++) {
                        int64_t t0 = bc_now_ns();

                        for (long k = 0; k < rounds; k++) {
                                AO_store_release(&l->turn, v + 1);      /* pairs with pp_wait */
                                v += 2;
                                if (pp_wait(&l->turn, v) < 0) {
                                        e = -ETIMEDOUT;
                                        break;
                                }
                        }
                        res[r] = (double)(bc_now_ns() - t0) / (double)(2 * rounds);
                }
        }
        e = pair_end(pid, e, &pin);
out:
        munmap(l, sizeof(*l));
        {
                double m = e ? e : bc_median(res, (size_t)reps);

                free(res);
                return m;
        }
}

/* ------------------------------------------------------------------ JSON */

static void json_escape(FILE *f, const char *s);

static void json_sep(struct bc_json *j, const char *key)
{
        if (j->count[j->depth]++)
                fputc(',', j->f);
        fputc('\n', j->f);
        for (int i = 0; i <= j->depth; i++)
                fputs("  ", j->f);
        if (key) {
                json_escape(j->f, key);
                fputs(": ", j->f);
        }
}

static void json_escape(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

void bc_json_begin(struct bc_json *j, FILE *f)
{
        memset(j, 0, sizeof(*j));
        j->f = f;
        fputc('{', f);
}

int bc_json_end(struct bc_json *j)
{
        while (j->depth > 0)
                bc_json_close(j);
        fputs("\n}\n", j->f);
        return ferror(j->f) ? -EIO : 0;
}

static void json_open(struct bc_json *j, const char *key, char c)
{
        json_sep(j, key);
        fputc(c, j->f);
        if (j->depth + 1 < BC_JSON_MAX_DEPTH) {
                j->closer[j->depth] = c == '{' ? '}' : ']';
                j->depth++;
        }
        j->count[j->depth] = 0;
}

void bc_json_obj(struct bc_json *j, const char *key)
{
        json_open(j, key, '{');
}

void bc_json_arr(struct bc_json *j, const char *key)
{
        json_open(j, key, '[');
}

void bc_json_close(struct bc_json *j)
{
        if (j->depth == 0)
                return;
        j->depth--;
        fputc('\n', j->f);
        for (int i = 0; i <= j->depth; i++)
                fputs("  ", j->f);
        fputc(j->closer[j->depth], j->f);
}

void bc_json_num(struct bc_json *j, const char *key, double v)
{
        json_sep(j, key);
        if (isfinite(v))
                fprintf(j->f, "%.6g", v);
        else
                fputs("null", j->f);
}

void bc_json_int(struct bc_json *j, const char *key, int64_t v)
{
        json_sep(j, key);
        fprintf(j->f, "%lld", (long long)v);
}

void bc_json_str(struct bc_json *j, const char *key, const char *s)
{
        json_sep(j, key);
        if (s)
                json_escape(j->f, s);
        else
                fputs("null", j->f);
}

void bc_json_bool(struct bc_json *j, const char *key, int v)
{
        json_sep(j, key);
        fputs(v ? "true" : "false", j->f);
}

void bc_json_machine(struct bc_json *j)
{
        struct utsname u;
        char date[64] = "";
        time_t now = time(NULL);
        struct tm tm;

        if (gmtime_r(&now, &tm))
                strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
        bc_json_str(j, "date", date);
        if (uname(&u) == 0) {
                char buf[sizeof(u.sysname) + sizeof(u.release) + sizeof(u.version) +
                         sizeof(u.machine) + 8];

                snprintf(buf, sizeof(buf), "%s %s %s %s", u.sysname, u.release, u.version,
                         u.machine);
                bc_json_str(j, "uname", buf);
                bc_json_str(j, "hostname", u.nodename);
        }
        bc_json_int(j, "nproc", sysconf(_SC_NPROCESSORS_ONLN));
}
