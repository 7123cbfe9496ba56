/* SPDX-License-Identifier: MIT */
/*
 * brood bench: runs the benchmark programs built beside the command (each
 * prints its own tables: brood beside its peers, with the ratios), merges
 * their JSON into one document (--json) and draws them (--plot, gnuplot).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <brood/brood.h>
#include "brood.h"
#include "json.h"

static const char *const groups[] = { "ring", "spawn", "pool" };
#define NGROUPS BRD_ARRAY_LEN(groups)

static int bench_path(const char *group, char *out, size_t cap)
{
        char self[PATH_MAX];
        const char *dir = getenv("BROOD_BENCH_DIR");
        ssize_t n;

        if (!dir) {
                /* In the build tree: tools/brood and bench/<group>-bench. */
                n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n <= 0)
                        return -errno;
                self[n] = '\0';
                snprintf(out, cap, "%s/../bench/%s-bench", dirname(self), group);
                if (access(out, X_OK) == 0)
                        return 0;
                dir = BROOD_LIBEXECDIR;
        }
        snprintf(out, cap, "%s/%s-bench", dir, group);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

#define BENCH_MAX_ARGS 64
/* How often a wait without a pidfd looks at the benchmark (wait_bench()). */
#define BENCH_WAIT_NAP_MS 50

/* Wait for our child @pid across EINTR: its wait status, or -1. */
static int child_reap(pid_t pid)
{
        int st;

        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return st;
}

/*
 * While a benchmark runs, SIGINT, SIGTERM and SIGHUP are blocked and read
 * from a signalfd.  Dying of one by default would leave the program running,
 * reparented, writing into our temporary directory: instead it is killed
 * and reaped, our files are removed, and brood exits 128 + the signal.
 * SIGPIPE is ignored: a closed stdout (brood bench | head) is EPIPE, which
 * stops the run the same way (stopped_by_pipe()), and a gnuplot that quits
 * early is EPIPE on its script.
 */
struct stopper {
        int sfd;
        sigset_t old;           /* the mask to restore, which the program gets */
        struct sigaction old_pipe;      /* SIGPIPE's action, which it gets too */
};

static int stopper_start(struct stopper *st)
{
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
        struct sigaction sa;
        sigset_t set;
        size_t i;
        int e;

        /* One that is ignored (nohup, a background job's SIGINT) stays
         * so: blocked, it would be queued for us instead of dropped. */
        sigemptyset(&set);
        for (i = 0; i < BRD_ARRAY_LEN(sigs); i++)
                if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
                        sigaddset(&set, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &set, &st->old) < 0)
                return -errno;
        st->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (st->sfd < 0) {
                e = -errno;
                sigprocmask(SIG_SETMASK, &st->old, NULL);
                return e;
        }
        sa = (struct sigaction){ .sa_handler = SIG_IGN };
        sigaction(SIGPIPE, &sa, &st->old_pipe);
        return 0;
}

/* A stopping signal that came: its number, or 0. */
static int stopper_take(struct stopper *st)
{
        struct signalfd_siginfo si;

        return read(st->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) ? (int)si.ssi_signo : 0;
}

/* One that comes after this dies by default: nothing of ours is left then. */
static void stopper_end(struct stopper *st)
{
        close(st->sfd);
        sigaction(SIGPIPE, &st->old_pipe, NULL);
        sigprocmask(SIG_SETMASK, &st->old, NULL);
}

/* In a forked child that execs: the caller's signal mask and SIGPIPE action
 * back (an ignored SIGPIPE would survive the exec).  Async-signal-safe. */
static void stopper_child(const struct stopper *st)
{
        sigaction(SIGPIPE, &st->old_pipe, NULL);
        sigprocmask(SIG_SETMASK, &st->old, NULL);
}

static int stopped(int sig)
{
        fprintf(stderr, "brood: bench: %s: the benchmark was stopped\n", strsignal(sig));
        return 128 + sig;
}

/* Our stdout's reader is gone (EPIPE on a flush): stopped as by SIGPIPE. */
static bool stdout_gone(void)
{
        return fflush(stdout) == EOF && errno == EPIPE;
}

/* In the forked child: die with brood (SIGKILL by PDEATHSIG, even if brood
 * is SIGKILLed itself), get the caller's signals back, run @path.
 * Async-signal-safe calls only. */
static void exec_bench(pid_t parent, const struct stopper *st, const char *path, char **args)
{
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);     /* brood died before PDEATHSIG was armed */
        stopper_child(st);
        execv(path, args);
        _exit(127);
}

/* Has our child @pid exited?  Left unreaped for child_reap(). */
static bool child_exited(pid_t pid)
{
        siginfo_t si = { 0 };

        return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Wait for our child @pid, or for a stopping signal: then kill it first.
 * Its wait status (-1 on error) and *ret_sig (0: none came).  Through its
 * pidfd; where none can be had (out of fds, a seccomp filter, Linux < 5.3)
 * by looking every BENCH_WAIT_NAP_MS, for a benchmark runs for minutes. */
static int wait_bench(pid_t pid, struct stopper *st, int *ret_sig)
{
        struct pollfd p[2] = { { .fd = pidfd_open(pid, 0), .events = POLLIN },
                               { .fd = st->sfd, .events = POLLIN } };
        bool by_fd = p[0].fd >= 0, exited = false;
        int n;

        *ret_sig = 0;
        while (!exited && !*ret_sig) {
                n = by_fd ? poll(p, 2, -1) : poll(p + 1, 1, BENCH_WAIT_NAP_MS);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                exited = by_fd ? p[0].revents & POLLIN : child_exited(pid);
                if (p[1].revents & POLLIN)
                        *ret_sig = stopper_take(st);
        }
        /* Ctrl-C signals the whole process group: the child may be seen
         * dead of it first, but ours was queued before it could die. */
        if (!*ret_sig)
                *ret_sig = stopper_take(st);
        /* Stopped, or poll failed: the child is not left behind. */
        if (*ret_sig || !exited)
                kill(pid, SIGKILL);
        if (by_fd)
                close(p[0].fd);
        return child_reap(pid);
}

/* Run one benchmark program with @pass, then @extra (the caller's
 * arguments after "--"), then --json @json unless it is NULL.  Its exit
 * code 2 (bad usage, as ours) is passed on; 128 + a signal that stopped
 * it. */
static int run_group(const char *group, char **pass, int npass, char **extra, int nextra,
                     const char *json, struct stopper *stop)
{
        char path[PATH_MAX];
        char *args[BENCH_MAX_ARGS + 4];
        int i, n = 0, st, r, sig;
        pid_t pid, self = getpid();

        r = bench_path(group, path, sizeof(path));
        if (r < 0) {
                tool_err("bench", group, -r);
                return BRD_EXIT_FAIL;
        }
        args[n++] = path;
        for (i = 0; i < npass; i++)
                args[n++] = pass[i];
        for (i = 0; i < nextra; i++)
                args[n++] = extra[i];
        if (json) {
                args[n++] = "--json";
                args[n++] = (char *)json;
        }
        args[n] = NULL;
        printf("\n######## brood bench %s\n", group);
        if (stdout_gone())
                return stopped(SIGPIPE);
        pid = fork();
        if (pid < 0) {
                tool_err("bench", "fork", errno);
                return BRD_EXIT_FAIL;
        }
        if (pid == 0)
                exec_bench(self, stop, path, args);
        st = wait_bench(pid, stop, &sig);
        if (sig)
                return stopped(sig);
        if (st < 0)
                return BRD_EXIT_FAIL;
        if (WIFEXITED(st) && WEXITSTATUS(st) == BRD_EXIT_USAGE)
                return BRD_EXIT_USAGE;  /* it said why */
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
                return stopped(SIGPIPE);        /* it wrote to our stdout, whose reader left */
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "brood: bench: %s: the benchmark failed (%s %d)\n", group,
                        WIFEXITED(st) ? "exit code" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                return BRD_EXIT_FAIL;
        }
        return BRD_EXIT_OK;
}

/* A whole file as a string; NULL with errno (EFBIG past SLURP_MAX: a run's
 * JSON is tens of KiB, and --from may be handed anything; a read error is
 * an error, never a shorter string). */
#define SLURP_MAX (16u << 20)

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL, *nb;
        size_t n = 0, cap = 0, got;
        int e = 0;

        if (!f)
                return NULL;
        do {
                if (cap - n < 4096) {
                        nb = cap < SLURP_MAX ? realloc(buf, cap + 65536) : NULL;
                        if (!nb) {
                                e = cap < SLURP_MAX ? ENOMEM : EFBIG;
                                break;
                        }
                        buf = nb;
                        cap += 65536;
                }
                got = fread(buf + n, 1, cap - n - 1, f);
                n += got;
        } while (got);
        if (!e && ferror(f))
                e = errno ? errno : EIO;
        fclose(f);
        if (e) {
                free(buf);
                errno = e;
                return NULL;
        }
        buf[n] = '\0';
        return buf;
}

/*
 * Is @path the file one of our fds writes to (stdout as /dev/stdout, an
 * inherited fd as /dev/fd/N, or the file's own name)?  Then 1 and
 * *ret_fd a duplicate of that fd, at 3 or above; 0 when it is not (or
 * cannot be told); -errno when the duplicate fails.  Opened again by name,
 * such a file (a log appended to with >>) would be truncated under what was
 * written around it, or replaced by a rename.
 */
static int own_target(const char *path, int *ret_fd)
{
        struct stat a, b;
        struct dirent *e;
        int fd = -1, fl;
        DIR *dir;

        if (stat(path, &a) < 0)
                return 0;
        dir = opendir("/proc/self/fd");
        if (!dir)
                return 0;
        while (fd < 0 && (e = readdir(dir))) {
                int n = atoi(e->d_name);

                if (e->d_name[0] == '.' || n == dirfd(dir))
                        continue;
                fl = fcntl(n, F_GETFL);
                if (fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && fstat(n, &b) == 0 &&
                    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                        fd = n;
        }
        closedir(dir);
        if (fd < 0)
                return 0;
        fflush(stdout);
        fflush(stderr);
        *ret_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return *ret_fd < 0 ? -errno : 1;
}

/*
 * Where an output (the JSON, the picture) goes: a regular file (or none
 * yet), or the regular file a symlink names, is written into a temporary
 * file beside it, renamed over it once whole (*ret_tmp and *ret_dest set:
 * the caller renames the one to the other, or unlinks the first, and frees
 * both), so that a failed or cut-short write leaves the old file whole;
 * anything else (a file one of our fds writes to, own_target(): our stdout
 * whatever it is; a FIFO, a device) is written in place and never removed.
 * A FIFO must have its reader already (-ENXIO): an open that waited for
 * one would wait with our stop signals blocked (stopper_start()).
 * The fd is 3 or above: gnuplot's stdin and stdout are put on 0 and 1 by
 * number.  -errno.
 */
static int out_open(const char *path, char **ret_tmp, char **ret_dest)
{
        struct stat st;
        mode_t mask;
        char *tmp = NULL, *dest = NULL;
        int fd, fd3, r;

        *ret_tmp = *ret_dest = NULL;
        r = own_target(path, &fd);
        if (r)
                return r < 0 ? r : fd;  /* written in place, through our own fd */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
                fd = open(path, O_WRONLY | O_TRUNC | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
                        close(fd);
                        fd = -1;
                }
        } else {
                /* A symlink's target is replaced, not the link. */
                dest = lstat(path, &st) == 0 && S_ISLNK(st.st_mode) ? realpath(path, NULL) : strdup(path);
                if (!dest)
                        return errno == ENOMEM || !errno ? -ENOMEM : -errno;
                if (asprintf(&tmp, "%s.XXXXXX", dest) < 0) {
                        free(dest);
                        return -ENOMEM;
                }
                fd = mkostemp(tmp, O_CLOEXEC);
                /* The mode open(0666) would have given the file. */
                mask = umask(0);
                umask(mask);
                if (fd >= 0 && fchmod(fd, 0666 & ~mask) < 0) {
                        close(fd);
                        unlink(tmp);
                        fd = -1;
                }
        }
        if (fd < 0) {
                fd = -errno;
                free(tmp);
                free(dest);
                return fd;
        }
        fd3 = fd >= 3 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd3 < 0) {
                fd3 = -errno;
                if (tmp)
                        unlink(tmp);
                free(tmp);
                free(dest);
        } else {
                *ret_tmp = tmp;
                *ret_dest = dest;
        }
        if (fd3 != fd)
                close(fd);
        return fd3;
}

/* The run as JSON into @path (out_open()): 0; 1 when written in place
 * (through one of our own fds, own_target(): our stdout, say; a FIFO),
 * where no "wrote" line may follow; -errno, the old file left whole. */
static int write_json(const char *path, char *const *text, struct json *const *parsed)
{
        struct utsname u;
        char date[32], *tmp, *dest;
        time_t now = time(NULL);
        int fd = out_open(path, &tmp, &dest), e = 0;
        bool first = true;
        FILE *f;
        size_t i;

        if (fd < 0)
                return fd;
        f = fdopen(fd, "w");
        if (!f) {
                e = errno;
                close(fd);
                goto done;
        }
        uname(&u);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        fprintf(f, "{\n\"brood_version\": \"%s\",\n\"date\": \"%s\",\n\"machine\": ", brd_version(), date);
        {
                char m[600];

                snprintf(m, sizeof(m), "%s %s %s, %ld CPUs", u.sysname, u.release, u.machine,
                         sysconf(_SC_NPROCESSORS_ONLN));
                json_str(f, m);
        }
        fprintf(f, ",\n\"groups\": {");
        for (i = 0; i < NGROUPS; i++) {
                if (!parsed[i])
                        continue;
                fprintf(f, "%s\n\"%s\": %s", first ? "" : ",", groups[i], text[i]);
                first = false;
        }
        fprintf(f, "\n}\n}\n");
        if (fclose(f) == EOF)
                e = errno;
done:
        if (tmp && !e && rename(tmp, dest) < 0)
                e = errno;
        if (tmp && e)
                unlink(tmp);    /* the old file stays as it was */
        free(tmp);
        free(dest);
        return e ? -e : !tmp;
}

static bool have_gnuplot(char *path, size_t cap)
{
        const char *p = getenv("PATH");
        char buf[4096];
        char *save = NULL, *dir;

        snprintf(buf, sizeof(buf), "%s", p ? p : "/usr/bin:/bin");
        for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                snprintf(path, cap, "%s/gnuplot", dir);
                if (access(path, X_OK) == 0)
                        return true;
        }
        return false;
}

/* The ring panel: payload GB/s against message size, brood and its peers. */
static void plot_ring(FILE *g, const struct json *ring)
{
        static const char *const peers[][2] = {
                { "brood_copy", "brood (copy)" }, { "brood_zerocopy", "brood (zero-copy)" },
                { "seed", "seed protocol" }, { "pipe", "pipe" }, { "socketpair", "socketpair" },
                { "raw_ring", "raw spin ring (no checks, no sleep)" },
        };
        const struct json *s = json_get(ring, "streaming");
        size_t i, k;

        for (k = 0; k < BRD_ARRAY_LEN(peers); k++) {
                fprintf(g, "$ring%zu << EOD\n", k);
                for (i = 0; s && i < s->nkids; i++) {
                        const struct json *row = json_at(s, i);
                        double gbps = json_num(row, -1, "peers", peers[k][0], "gbps", NULL);

                        if (gbps > 0)
                                fprintf(g, "%g %g\n", json_num(row, 0, "size", NULL), gbps);
                }
                fprintf(g, "EOD\n");
        }
        fprintf(g, "set title 'Ring throughput, producer and consumer in two processes'\n"
                   "set logscale xy\nset xlabel 'message size (bytes)'\nset ylabel 'GB/s (payload)'\n"
                   "set key bottom right\nset grid\nset xrange [5:2e6]\n"
                   "set xtics ('8' 8, '64' 64, '512' 512, '4K' 4096, '64K' 65536, '1M' 1048576)\n"
                   "plot ");
        for (k = 0; k < BRD_ARRAY_LEN(peers); k++)
                fprintf(g, "%s$ring%zu using 1:2 with linespoints lw %d pt 7 title '%s'",
                        k ? ", " : "", k, k < 2 ? 3 : 1, peers[k][1]);
        fprintf(g, "\nunset logscale\nunset xtics\nset xtics\nset autoscale x\n");
}

/* The spawn panel: p50 latency bars (log scale), drawn across so that the
 * peers' long names read level, the first at the top. */
static void plot_spawn(FILE *g, const struct json *spawn)
{
        const struct json *r = json_get(spawn, "results");
        size_t i, n = 0;

        fprintf(g, "$spawn << EOD\n");
        for (i = 0; r && i < r->nkids; i++) {
                const struct json *row = json_at(r, i);
                const struct json *name = json_get(row, "name");
                char label[96];
                size_t k;

                if (!name || name->type != JSON_STR)
                        continue;
                snprintf(label, sizeof(label), "%s", name->str);
                /* A saved run may hold anything: only printable characters
                 * stay, and no quote or backslash ends the label's string
                 * (nor a newline the data block, "EOD"). */
                for (k = 0; label[k]; k++)
                        if (label[k] == '"' || label[k] == '\\' || label[k] < 0x20 ||
                            label[k] > 0x7e)
                                label[k] = label[k] == '"' ? '\'' : '?';
                fprintf(g, "\"%s\" %g\n", label, json_num(row, 0, "p50_us", NULL));
                n++;
        }
        /* boxxyerror: x, y, x from 10 us to the value, y +- 0.35; the y axis
         * runs downwards, the first row on top. */
        fprintf(g, "EOD\n"
                   "set title 'Spawn and wait a child that exits at once (p50)'\n"
                   "set logscale x\nset xlabel 'microseconds'\nset ylabel ''\nunset key\nset grid x\n"
                   "set style fill solid 0.7\nset xrange [10:*]\nset yrange [%g:-0.6]\n"
                   "set ytics font ',10'\n"
                   "plot $spawn using 2:0:(10):2:($0-0.35):($0+0.35):ytic(1) with boxxyerror"
                   " lc rgb '#3070b0'\n"
                   "unset logscale\nunset grid\nset autoscale xy\n"
                   "set ytics font ''\n",
                (double)n - 0.4);
}

/* The pool panel: alloc+free pairs/s against block size, one process. */
static void plot_pool(FILE *g, const struct json *pool)
{
        static const char *const peers[][2] = {
                { "pool_pairs_per_s", "brood pool" }, { "malloc_pairs_per_s", "glibc malloc" },
                { "segobj_pairs_per_s", "a segment per object" },
        };
        const struct json *r = json_get(pool, "results");
        size_t i, k;

        for (k = 0; k < BRD_ARRAY_LEN(peers); k++) {
                fprintf(g, "$pool%zu << EOD\n", k);
                for (i = 0; r && i < r->nkids; i++) {
                        const struct json *row = json_at(r, i);
                        double v = json_num(row, -1, peers[k][0], NULL);

                        if (v > 0 && json_num(row, 0, "procs", NULL) == 1)
                                fprintf(g, "%g %g\n", json_num(row, 0, "size", NULL), v);
                }
                fprintf(g, "EOD\n");
        }
        fprintf(g, "set title 'Shared pool: alloc+free pairs per second (one process)'\n"
                   "set logscale xy\nset xlabel 'block size (bytes)'\nset ylabel 'pairs/s'\n"
                   "set key center right\nset grid\nset style fill empty\nset xrange [40:1e5]\n"
                   "set xtics ('64' 64, '256' 256, '1K' 1024, '4K' 4096, '16K' 16384, '64K' 65536)\n"
                   "plot ");
        for (k = 0; k < BRD_ARRAY_LEN(peers); k++)
                fprintf(g, "%s$pool%zu using 1:2 with linespoints lw %d pt 7 title '%s'",
                        k ? ", " : "", k, k == 0 ? 3 : 1, peers[k][1]);
        fprintf(g, "\nunset logscale\n");
}

/*
 * gnuplot reads the script on its stdin and writes the SVG to its stdout,
 * which is @svg_fd: no shell runs, and the script holds no path, so no file
 * name can turn into gnuplot commands (nor can a saved run's strings:
 * plot_spawn() keeps them inside their quotes).  Returns the script's
 * stream (*@ret_pid: gnuplot), or NULL with errno.
 */
static FILE *gnuplot_open(const char *gnuplot, int svg_fd, const struct stopper *st, pid_t *ret_pid)
{
        int p[2], e;
        pid_t pid;
        FILE *g;

        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        pid = fork();
        if (pid < 0) {
                e = errno;
                close(p[0]);
                close(p[1]);
                errno = e;
                return NULL;
        }
        if (pid == 0) {
                /* With stdin closed the pipe is fd 0 already: dup2() onto
                 * itself would leave it close-on-exec. */
                if ((p[0] == STDIN_FILENO ? fcntl(p[0], F_SETFD, 0) : dup2(p[0], STDIN_FILENO)) < 0 ||
                    dup2(svg_fd, STDOUT_FILENO) < 0)
                        _exit(127);
                /* The caller's signals: Ctrl-C ends a gnuplot that hangs. */
                stopper_child(st);
                execl(gnuplot, "gnuplot", (char *)NULL);
                _exit(127);
        }
        close(p[0]);
        g = fdopen(p[1], "w");
        if (!g) {
                e = errno;
                close(p[1]);
                (void)child_reap(pid);
                errno = e;
                return NULL;
        }
        *ret_pid = pid;
        return g;
}

/* The picture: 0; 1 when written in place (through one of our own fds,
 * or into a FIFO or a device: no "wrote" line, which could land in the
 * same file); -errno, or -EINTR with *@ret_sig the stopping signal that
 * came meanwhile (gnuplot killed, nothing left of the picture). */
static int write_plot(const char *gnuplot, const char *svg, const struct json *const *parsed,
                      struct stopper *stop, int *ret_sig)
{
        unsigned panels = 0, i;
        char *tmp = NULL, *dest = NULL;
        pid_t pid = 0;
        FILE *g;
        int fd, st, r, e = 0;

        for (i = 0; i < NGROUPS; i++)
                panels += parsed[i] != NULL;
        if (!panels)
                return -ENODATA;
        fd = out_open(svg, &tmp, &dest);
        if (fd < 0)
                return fd;
        g = gnuplot_open(gnuplot, fd, stop, &pid);
        if (!g) {
                e = errno;
                close(fd);
                if (tmp)
                        unlink(tmp);
                free(tmp);
                free(dest);
                return -e;
        }
        close(fd);
        fprintf(g, "set terminal svg size %u,520 dynamic noenhanced font 'Helvetica,12' background '#ffffff'\n"
                   "set multiplot layout 1,%u\n", 560 * panels, panels);
        if (parsed[0])
                plot_ring(g, parsed[0]);
        if (parsed[1])
                plot_spawn(g, parsed[1]);
        if (parsed[2])
                plot_pool(g, parsed[2]);
        fprintf(g, "unset multiplot\n");
        if (fclose(g) == EOF)
                e = errno ? errno : EIO;
        /* A signal for brood alone (kill PID, a CI timeout) ends a gnuplot
         * that hangs too. */
        st = wait_bench(pid, stop, ret_sig);
        if (*ret_sig)
                e = EINTR;
        else if (!e && !(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0))
                e = EIO;
        if (tmp && !e && rename(tmp, dest) < 0)
                e = errno;
        if (tmp && e)
                unlink(tmp);    /* no half-drawn picture */
        r = e ? -e : !tmp;
        free(tmp);
        free(dest);
        return r;
}

/* write_plot() and its report, for a run and for --from alike: exit code
 * (128 + a stopping signal that came meanwhile). */
static int plot_to(const char *gnuplot, const char *svg, const struct json *const *groups_json,
                   struct stopper *stop)
{
        int sig = 0, r = write_plot(gnuplot, svg, groups_json, stop, &sig);

        if (sig)
                return stopped(sig);
        if (r < 0) {
                tool_err("bench", svg, -r);
                return BRD_EXIT_FAIL;
        }
        if (r == 0)
                printf("brood bench: wrote %s\n", svg);
        return BRD_EXIT_OK;
}

/* --from: the plot of a run that --json saved.  Exit code. */
static int plot_saved(const char *gnuplot, const char *from, const char *svg, struct stopper *stop)
{
        const struct json *draw[NGROUPS] = { 0 }, *g;
        char *text = slurp(from);
        struct json *doc = text ? json_parse(text) : NULL;
        size_t i, n = 0;
        int rc;

        if (!text) {
                tool_err("bench", from, errno);
                return BRD_EXIT_FAIL;
        }
        g = json_get(doc, "groups");
        for (i = 0; g && i < NGROUPS; i++)
                n += (draw[i] = json_get(g, groups[i])) != NULL;
        if (!n) {
                fprintf(stderr, "brood: bench: %s: not a run saved by brood bench --json\n", from);
                json_free(doc);
                free(text);
                return BRD_EXIT_FAIL;
        }
        rc = plot_to(gnuplot, svg, draw, stop);
        json_free(doc);
        free(text);
        return rc;
}

/*
 * Can @path (an option's output file) be written?  Tried as the output
 * will be (out_open()): a regular file, or none yet, by making its
 * temporary file beside it, then removing it (root's access() says yes to
 * /proc and /sys); a FIFO or a device by access(); not a directory.  Said
 * on stderr when not.  The output is opened again after the run, so a path
 * that changes meanwhile still fails then.
 */
static bool out_path_ok(const char *opt, const char *path)
{
        size_t n = strlen(path);
        char *tmp, *dest;
        struct stat st;
        int e = 0, fd;

        if (n && path[n - 1] == '/')
                e = EISDIR;             /* a directory's name, made or not */
        else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                e = EISDIR;
        else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
                e = access(path, W_OK) < 0 ? errno : 0;
        else if ((fd = out_open(path, &tmp, &dest)) < 0)
                e = -fd;
        else {
                close(fd);
                if (tmp)
                        unlink(tmp);
                free(tmp);
                free(dest);
        }
        if (e)
                fprintf(stderr, "brood: bench: %s %s: %s\n", opt, path, strerror(e));
        return !e;
}

/* Do --json @a and --plot @b name one file (by its identity; for files
 * not made yet, one name in one directory)?  The plot's rename would
 * replace the JSON. */
static bool same_out(const char *a, const char *b)
{
        char da[PATH_MAX], db[PATH_MAX];
        struct stat sa, sb;
        bool ea, eb;

        if (!strcmp(a, b))
                return true;
        ea = stat(a, &sa) == 0;
        eb = stat(b, &sb) == 0;
        if (ea || eb)
                return ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
        if (snprintf(da, sizeof(da), "%s", a) >= (int)sizeof(da) ||
            snprintf(db, sizeof(db), "%s", b) >= (int)sizeof(db) ||
            strcmp(strrchr(a, '/') ? strrchr(a, '/') + 1 : a, strrchr(b, '/') ? strrchr(b, '/') + 1 : b))
                return false;
        return stat(dirname(da), &sa) == 0 && stat(dirname(db), &sb) == 0 &&
               sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int usage(FILE *f)
{
        fprintf(f, "usage: brood bench [ring|spawn|pool|all] [--quick] [--json FILE]\n"
                   "                   [--plot FILE.svg | -- PROGRAM-OPTIONS]\n"
                   "       brood bench --from FILE.json --plot FILE.svg\n"
                   "  Runs brood's benchmarks, each beside its peers in the same run (ring: pipe,\n"
                   "  socketpair, the seed protocol, a hand-written spin ring, eventfd, memcpy;\n"
                   "  spawn: fork+waitpid, posix_spawn, Python multiprocessing; pool: malloc,\n"
                   "  a segment per object), and prints one table per group with the ratios.\n"
                   "  --quick        short runs (seconds instead of minutes)\n"
                   "  --json FILE    every figure of every group in one JSON document\n"
                   "  --plot FILE    an SVG: ring throughput against message size, spawn latency\n"
                   "                 bars, pool pairs/s (needs gnuplot: apt-get install gnuplot-nox)\n"
                   "  --from FILE    run nothing: draw the --plot of a run saved with --json\n"
                   "  -- ...         the rest goes to one group's program, e.g.\n"
                   "                 brood bench ring -- --size 4096 --offset 16 (see its --help);\n"
                   "                 not with --plot (it draws whole runs), nor --json there\n"
                   "  Ctrl-C, SIGTERM or SIGHUP stops the run and its program: exit 128 + the\n"
                   "  signal (130, 143, 129); so does a closed stdout (brood bench | head): 141.\n");
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
        static const struct option opts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", required_argument, NULL, 'j' },
                { "plot", required_argument, NULL, 'p' },
                { "from", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { 0 }
        };
        char *text[NGROUPS] = { 0 };
        struct json *parsed[NGROUPS] = { 0 };
        char tmpdir[] = "/tmp/brood-bench-XXXXXX", gnuplot[PATH_MAX];
        const char *json = NULL, *plot = NULL, *from = NULL, *which = NULL;
        char *pass[1] = { "--quick" }, **extra = NULL;
        int c, npass = 0, nextra = 0, rc = BRD_EXIT_OK, r, sig;
        struct stopper stop;
        size_t i;

        /* What follows "--" is the program's own, not ours (none: as if
         * there were no "--"). */
        for (c = 1; c < argc; c++) {
                if (!strcmp(argv[c], "--")) {
                        nextra = argc - c - 1;
                        extra = nextra ? argv + c + 1 : NULL;
                        argc = c;
                        break;
                }
        }
        while ((c = getopt_long(argc, argv, "qj:p:f:h", opts, NULL)) != -1) {
                switch (c) {
                case 'q': npass = 1; break;     /* once, however often it is given */
                case 'j': json = optarg; break;
                case 'p': plot = optarg; break;
                case 'f': from = optarg; break;
                case 'h': return usage(stdout);
                default: return usage(stderr);
                }
        }
        if (optind < argc)
                which = argv[optind++];
        if (optind != argc) {
                fprintf(stderr, "brood bench: unexpected argument '%s'\n", argv[optind]);
                return usage(stderr);
        }
        if (from && (!plot || which || npass || json || extra)) {
                fprintf(stderr, "brood: bench: --from draws a saved run: --plot FILE, and nothing "
                                "that runs one\n");
                return BRD_EXIT_USAGE;
        }
        if (!which)
                which = "all";
        for (i = 0; i < NGROUPS; i++)
                if (!strcmp(which, groups[i]))
                        break;
        if (strcmp(which, "all") && i == NGROUPS) {
                fprintf(stderr, "brood: bench: unknown group '%s' (ring, spawn, pool, all)\n", which);
                return BRD_EXIT_USAGE;
        }
        if (extra && !strcmp(which, "all")) {
                fprintf(stderr, "brood: bench: options after -- go to one group's program: "
                                "name the group\n");
                return BRD_EXIT_USAGE;
        }
        if (extra && plot) {
                fprintf(stderr, "brood: bench: --plot draws whole runs, not with options after --\n");
                return BRD_EXIT_USAGE;
        }
        if (nextra > BENCH_MAX_ARGS - 1) {
                fprintf(stderr, "brood: bench: too many options after --\n");
                return BRD_EXIT_USAGE;
        }
        for (c = 0; c < nextra; c++)
                if (!strcmp(extra[c], "--json") || !strncmp(extra[c], "--json=", 7) ||
                    !strncmp(extra[c], "-j", 2)) {
                        /* Ours comes last and the program keeps the last. */
                        fprintf(stderr, "brood: bench: --json goes before --: brood writes "
                                        "the run's JSON\n");
                        return BRD_EXIT_USAGE;
                }
        if ((json && !*json) || (plot && !*plot)) {
                fprintf(stderr, "brood: bench: an empty file name\n");
                return BRD_EXIT_USAGE;
        }
        if (json && plot && same_out(json, plot)) {
                fprintf(stderr, "brood: bench: --json and --plot name the same file\n");
                return BRD_EXIT_USAGE;
        }
        /* Before a run of minutes, not after it: where nothing can be
         * written, the figures would be lost. */
        if ((json && !out_path_ok("--json", json)) || (plot && !out_path_ok("--plot", plot)))
                return BRD_EXIT_FAIL;
        if (plot && !have_gnuplot(gnuplot, sizeof(gnuplot))) {
                fprintf(stderr, "brood: bench: --plot needs gnuplot, which is not installed "
                                "(apt-get install gnuplot-nox)\n");
                return BRD_EXIT_FAIL;
        }
        /* Until the end: a signal while the JSON is being written waits
         * for it to be whole; one while gnuplot draws kills gnuplot and
         * removes its temporary file (no picture); then brood stops. */
        r = stopper_start(&stop);
        if (r < 0) {
                tool_err("bench", "signals", -r);
                return BRD_EXIT_FAIL;
        }
        if (from) {
                rc = plot_saved(gnuplot, from, plot, &stop);
                goto out;
        }
        /* The program's own help: it runs nothing and writes no JSON. */
        for (c = 0; c < nextra; c++)
                if (!strcmp(extra[c], "--help") || !strcmp(extra[c], "-h")) {
                        rc = run_group(which, pass, npass, extra, nextra, NULL, &stop);
                        stopper_end(&stop);
                        return rc;
                }
        if (!mkdtemp(tmpdir)) {
                tool_err("bench", "/tmp", errno);
                stopper_end(&stop);
                return BRD_EXIT_FAIL;
        }
        for (i = 0; i < NGROUPS; i++) {
                char path[64];

                if (strcmp(which, "all") && strcmp(which, groups[i]))
                        continue;
                snprintf(path, sizeof(path), "%s/%s.json", tmpdir, groups[i]);
                r = run_group(groups[i], pass, npass, extra, nextra, path, &stop);
                if (r > 128) {
                        unlink(path);
                        rc = r;         /* stopped by a signal: no more groups, no output */
                        break;
                }
                if (r != BRD_EXIT_OK) {
                        rc = rc == BRD_EXIT_USAGE ? rc : r;
                } else if (!(text[i] = slurp(path)) || !(parsed[i] = json_parse(text[i]))) {
                        fprintf(stderr, "brood: bench: %s: unreadable JSON output\n", groups[i]);
                        rc = BRD_EXIT_FAIL;
                }
                unlink(path);
        }
        rmdir(tmpdir);
        /* One that came between two groups, or after the last. */
        sig = rc > 128 ? 0 : stopper_take(&stop);
        if (sig)
                rc = stopped(sig);
        for (i = 0; i < NGROUPS && !parsed[i]; i++)
                ;
        if (i == NGROUPS || rc > 128)
                json = plot = NULL;     /* no run to save or draw */
        if (json) {
                r = write_json(json, text, parsed);
                if (r == -EPIPE) {
                        rc = stopped(SIGPIPE);  /* its reader left (our stdout, a FIFO) */
                } else if (r < 0) {
                        tool_err("bench", json, -r);
                        rc = BRD_EXIT_FAIL;
                } else if (r == 0) {
                        printf("\nbrood bench: wrote %s\n", json);
                }
        }
        if (plot && rc <= 128) {
                const struct json *draw[NGROUPS];

                for (i = 0; i < NGROUPS; i++)
                        draw[i] = parsed[i];
                r = plot_to(gnuplot, plot, draw, &stop);
                if (r != BRD_EXIT_OK)
                        rc = r > 128 ? r : BRD_EXIT_FAIL;
        }
        for (i = 0; i < NGROUPS; i++) {
                json_free(parsed[i]);
                free(text[i]);
        }
out:
        sig = rc > 128 ? 0 : stopper_take(&stop);
        stopper_end(&stop);
        return sig ? stopped(sig) : rc;
}
