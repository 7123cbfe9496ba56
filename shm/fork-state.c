/* SPDX-License-Identifier: MIT */
/*
 * The fork state: brood's only mutable globals.  A cached pid, a fork
 * generation and the registry of this process's segments under one lock,
 * kept right across fork() by pthread_atfork (systemd's getpid_cached,
 * libuv's threadpool reset).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

static pthread_once_t brd_fork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t brd_fork_mutex = PTHREAD_MUTEX_INITIALIZER;
/* AO_t so that racing readers in other threads are well defined; all of
 * these are process-local, never in shared memory. */
AO_t brd__pid_cache;                    /* 0: not cached yet */
/* The pid of this process when brood's fork handlers last ran for it (or
 * the library was loaded): another pid is a child they skipped. */
static AO_t brd_handlers_pid;
AO_t brd__fork_generation = 1;
AO_t brd__fds_closed_gen;               /* see brd__fork_fds_closed() */
static AO_t brd_start_time;             /* of brd_pid, normalised; 0: not read yet */
static AO_t brd_pid_ns;                 /* our pid namespace's inode; 0: not read yet */
/* Is /proc this pid namespace's (brd__proc_ours())?  PROC_UNREAD until looked at. */
static AO_t brd_proc_view;
/* Our time namespace's boottime offset in clock ticks (an int64_t), valid
 * once brd_timens_state is TIMENS_KNOWN (store-release, pairs with the
 * load-acquire in timens_offset()). */
static AO_t brd_timens_off;
static AO_t brd_timens_state;
/* The time namespace that state describes (/proc/self/ns/time), to see a
 * setns() into another one; 0 and 0: none seen (no time namespaces). */
static AO_t brd_timens_dev, brd_timens_ino;
static struct brd__link *brd_registry;  /* struct brd_seg's reg, under brd_fork_mutex */
static unsigned brd_registry_count;

/* -errno of a failed pthread_atfork(), set once (brd_fork_once): then
 * nothing fork-aware may be made (brd__fork_ready()). */
static int brd_fork_err;

/* Under the lock (or single-threaded in the child): plain stores only. */
static void registry_unlink(struct brd_seg *s)
{
        brd__link_del(&brd_registry, &s->reg);
        brd_registry_count--;
}

static struct brd_seg *registry_seg(struct brd__link *l)
{
        return l ? BRD__LINK_ENTRY(l, struct brd_seg, reg) : NULL;
}

/* A segment gone from this child: its range is not ours (not mapped, or
 * unmapped by the caller), nor its guard slot; off the registry.  The
 * object stays for its owner's brd_seg_close(), which then only frees.
 * Only in a forked child, single-threaded. */
static void registry_forget(struct brd_seg *s)
{
        s->addr = NULL;
        brd__guard_forget(s->guard);
        s->guard = -1;
        registry_unlink(s);
}

static void brd_fork_prepare(void)
{
        /* fork() waits here for any thread inside the registry, so the child
         * never inherits a held lock or a half-linked list. */
        pthread_mutex_lock(&brd_fork_mutex);
        brd__guard_fork_prepare();
}

static void brd_fork_parent(void)
{
        brd__guard_fork_parent();
        pthread_mutex_unlock(&brd_fork_mutex);
}

static void brd_fork_child(void)
{
        struct brd_seg *s, *next;

        /* Single-threaded, async-signal context: plain stores only. */
        AO_store(&brd__pid_cache, 0);
        AO_store(&brd_handlers_pid, (AO_t)getpid());
        AO_store(&brd_start_time, 0);
        /* The parent may have called unshare(CLONE_NEWPID): a child can be
         * in another pid namespace than its parent. */
        AO_store(&brd_pid_ns, 0);
        /* A new pid (brd__proc_ours() compares it), and a parent that called
         * unshare(CLONE_NEWTIME) forks its children into that time
         * namespace: both are looked at again. */
        AO_store(&brd_proc_view, 0);
        AO_store(&brd_timens_state, 0);
        AO_store(&brd__fork_generation, AO_load(&brd__fork_generation) + 1);
        for (s = registry_seg(brd_registry); s; s = next) {
                next = registry_seg(s->reg.next);
                s->inherited = true;
                s->creator = false;     /* the parent unlinks its names, never the child */
                /* MADV_DONTFORK, the SIGBUS guard's cover too (marked
                 * before it takes the range): the range is a hole here,
                 * which a child handler registered before ours may have
                 * filled already (another component's malloc): not ours to
                 * munmap. */
                if (s->flags & BRD_SEG_NOFORK)
                        registry_forget(s);
        }
        brd__guard_fork_child();
        /* The lock was taken by prepare in the parent's forking thread, which
         * is this thread in the child: unlock is defined.  Re-initialising
         * would also do, but unlock keeps the mutex's invariants. */
        pthread_mutex_unlock(&brd_fork_mutex);
}

static void brd_fork_init(void)
{
        int e = pthread_atfork(brd_fork_prepare, brd_fork_parent, brd_fork_child);

        if (e)
                brd_fork_err = -e;
}

static void brd_fork_ensure(void)
{
        pthread_once(&brd_fork_once, brd_fork_init);
}

int brd__fork_ready(void)
{
        /* pthread_once orders brd_fork_init()'s store before this load. */
        brd_fork_ensure();
        return brd_fork_err;
}

/* Register the handlers when the library is loaded, so that the hot paths
 * can read the fork generation and the cached pid without a pthread_once
 * (brd__fork_gen() and brd__getpid() are inline loads). */
__attribute__((constructor)) static void brd_fork_load(void)
{
        AO_store(&brd_handlers_pid, (AO_t)getpid());
        brd_fork_ensure();
}

bool brd__handlers_skipped(void)
{
        return (pid_t)AO_load(&brd_handlers_pid) != getpid();
}

void brd__fork_lock(void)
{
        brd_fork_ensure();
        pthread_mutex_lock(&brd_fork_mutex);
}

void brd__fork_unlock(void)
{
        pthread_mutex_unlock(&brd_fork_mutex);
}

void brd__fork_fds_closed(void)
{
        /* Async-signal-safe: one store, in the forkserver's child prelude. */
        AO_store(&brd__fds_closed_gen, AO_load(&brd__fork_generation));
}

void brd__fork_drop_unhanded(int first, int n)
{
        struct { uint64_t dev, ino; } kept[BRD__FORK_KEEP_MAX];
        struct brd_seg *s, *next;
        struct stat st;
        int i, m = 0;

        for (i = 0; i < n && i < BRD__FORK_KEEP_MAX; i++) {
                if (fstat(first + i, &st) == 0 && S_ISREG(st.st_mode)) {
                        kept[m].dev = st.st_dev;
                        kept[m].ino = st.st_ino;
                        m++;
                }
        }
        for (s = registry_seg(brd_registry); s; s = next) {
                next = registry_seg(s->reg.next);
                for (i = 0; i < m; i++)
                        if (kept[i].dev == s->dev && kept[i].ino == s->ino)
                                break;
                if (i < m)
                        continue;
                (void)munmap(s->addr, s->size);
                registry_forget(s);
        }
}

pid_t brd__getpid_slow(void)
{
        pid_t p;

        brd_fork_ensure();
        /* Every thread computes the same value, and the child handler resets
         * it before any other thread exists. */
        p = getpid();
        AO_store(&brd__pid_cache, (AO_t)p);
        return p;
}

enum { PROC_UNREAD = 0, PROC_OURS, PROC_FOREIGN };
enum { TIMENS_UNREAD = 0, TIMENS_KNOWN, TIMENS_UNKNOWN };

/* -errno of a failed look at /proc (-EAGAIN for a signal). */
static int proc_err(int e)
{
        return e == EINTR ? -EAGAIN : e > 0 ? -e : -EIO;
}

/* Is @e, a proc_err(), a failure that may not happen again: out of fds or
 * memory (which it names), a signal? */
static bool proc_passing(int e)
{
        return e == -EMFILE || e == -ENFILE || e == -ENOMEM || e == -EAGAIN;
}

/* The start of the /proc file @path, NUL-terminated in @buf (@cap bytes):
 * its length, or proc_err() when it cannot be read (-EIO: it was empty). */
static ssize_t proc_read(const char *path, char *buf, size_t cap)
{
        ssize_t n = -1;
        int fd, cancel, e;

        /* No cancellation point: the caller may hold a pool's lock, which
         * names the process (a thread cancelled here would keep it held
         * for as long as the process lives). */
        cancel = brd__nocancel();
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                n = read(fd, buf, cap - 1);
                e = n < 0 ? errno : EIO;
                brd__close(fd);
        } else {
                e = errno;
        }
        brd__cancel_restore(cancel);
        if (n <= 0)
                return proc_err(e);
        buf[n] = '\0';
        return n;
}

/* @line (NUL-terminated, no '\n') for the first of @k it starts with and
 * that is not found yet: 1 if one took it. */
static int status_take(const char *line, struct brd__status_key *k, size_t nk)
{
        for (size_t i = 0; i < nk; i++) {
                size_t kl = strlen(k[i].key);

                if (!k[i].found && !strncmp(line, k[i].key, kl)) {
                        snprintf(k[i].out, k[i].cap, "%s", line + kl);
                        k[i].found = true;
                        return 1;
                }
        }
        return 0;
}

int brd__proc_status(const char *path, struct brd__status_key *k, size_t nk)
{
        char buf[4096], *line, *nl;
        size_t have = 0, found = 0, i;
        bool skip = false;              /* in a line longer than buf: no key's */
        ssize_t n;
        int fd, cancel, r = 0;

        for (i = 0; i < nk; i++)
                k[i].found = false;
        cancel = brd__nocancel();       /* as proc_read() */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = proc_err(errno);
                brd__cancel_restore(cancel);
                return r;
        }
        while (found < nk) {
                n = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (n <= 0) {
                        if (n < 0)
                                r = proc_err(errno);
                        break;
                }
                have += (size_t)n;
                buf[have] = '\0';
                for (line = buf; (nl = memchr(line, '\n', (size_t)(buf + have - line))); line = nl + 1) {
                        *nl = '\0';
                        if (!skip)
                                found += (size_t)status_take(line, k, nk);
                        skip = false;
                }
                /* The line begun is kept for the next piece; one that fills
                 * buf (the Groups line, with hundreds of groups) is no
                 * key's: dropped, the rest of it skipped. */
                have = (size_t)(buf + have - line);
                if (have == sizeof(buf) - 1) {
                        have = 0;
                        skip = true;
                } else {
                        memmove(buf, line, have);
                }
        }
        brd__close(fd);
        brd__cancel_restore(cancel);
        return r < 0 ? r : (int)found;
}

/* Does /proc/self/status end its NSpid line (pids from the /proc's pid
 * namespace down to ours) with one field, @pid?  1 yes, 0 no, -1 when it
 * has no such line (kernels before 4.1), proc_err() when it cannot be
 * read. */
static int proc_nspid_ours(pid_t pid)
{
        char line[512], *end;
        struct brd__status_key k = { "NSpid:", line, sizeof(line), false };
        int r = brd__proc_status("/proc/self/status", &k, 1);
        long v;

        if (r <= 0)
                return r == 0 ? -1 : r;
        v = strtol(line, &end, 10);
        while (*end == ' ' || *end == '\t')
                end++;
        return v == (long)pid && *end == '\0';
}

/*
 * Does /proc describe our pid namespace (proc_view(): PROC_OURS, PROC_FOREIGN,
 * or a passing proc_err())?  Not when it was mounted for
 * another one (unshare -pf without --mount-proc): kill() reaches our pid N
 * while /proc/N is an unrelated process.  /proc/self (and NSpid's first
 * field) are our pid as that /proc numbers it, and NSpid lists one pid only
 * when that /proc is of our own namespace.  A /proc where we are not
 * visible at all has no /proc/self.  Read once per process: the answer
 * changes only with the pid, i.e. across fork() (brd_fork_child() forgets
 * it), or with a mount, which we do not follow.
 */
static int proc_view(void)
{
        AO_t v = AO_load(&brd_proc_view);
        pid_t me;
        char buf[32];
        ssize_t n;
        int r;

        if (v == PROC_UNREAD) {
                me = brd__getpid();
                n = readlink("/proc/self", buf, sizeof(buf) - 1);
                if (n < 0 && proc_passing(proc_err(errno)))
                        return proc_err(errno);         /* looked at again next time */
                v = PROC_FOREIGN;
                if (n > 0) {
                        buf[n] = '\0';
                        r = strtol(buf, NULL, 10) == (long)me ? proc_nspid_ours(me) : 0;
                        if (proc_passing(r))
                                return r;
                        if (r != 0)
                                v = PROC_OURS;
                }
                /* Racing threads compute the same answer. */
                AO_store(&brd_proc_view, v);
        }
        return (int)v;
}

bool brd__proc_ours(void)
{
        return proc_view() == PROC_OURS;
}

/* The identity of /proc/self/ns/@name: 0 and *ret_dev, *ret_ino; -ENOENT
 * (a kernel without that namespace), or another proc_err() (< 0 on every
 * failure: a "-errno" of 0 would pass for success with *ret_dev and
 * *ret_ino never written, and callers compare them). */
static int ns_id(const char *name, dev_t *ret_dev, ino_t *ret_ino)
{
        char path[64];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
        if (stat(path, &st) < 0)
                return proc_err(errno);
        *ret_dev = st.st_dev;
        *ret_ino = st.st_ino;
        return 0;
}

/* Our time namespace's and our children's the same one?  1 yes, 0 no (we
 * called unshare(CLONE_NEWTIME)), -ENOENT without time namespaces, or
 * proc_err(). */
static int timens_same(dev_t *dev, ino_t *ino)
{
        dev_t d2;
        ino_t i2;
        int r = ns_id("time", dev, ino);

        if (r < 0)
                return r;
        r = ns_id("time_for_children", &d2, &i2);
        if (r < 0)
                return r == -ENOENT ? -EIO : r;
        return *dev == d2 && *ino == i2;
}

/*
 * Read our time namespace's boottime offset, in clock ticks, from
 * /proc/self/timens_offsets: 0 and *ret_ticks (and the namespace's
 * identity, for timens_moved()); a proc_passing() error when it could not
 * be read for now; another value < 0 when it cannot be known.  That file
 * shows the namespace of our future children, which is
 * ours unless we called unshare(CLONE_NEWTIME): then our own offset cannot
 * be read, and a thread may do that while we read, so the namespaces are
 * compared before and after.  An offset that is not a whole number of
 * ticks would shift a start time by a tick or not depending on its
 * fraction: not known either.
 */
static int timens_read(int64_t *ret_ticks)
{
        char buf[256], name[32], *line, *save = NULL;
        long long sec = 0, nsec = 0, hz = sysconf(_SC_CLK_TCK);
        bool found = false;
        dev_t dev = 0, dev2;
        ino_t ino = 0, ino2;
        ssize_t n;
        int r;

        r = timens_same(&dev, &ino);
        if (r == -ENOENT) {
                AO_store(&brd_timens_dev, 0);
                AO_store(&brd_timens_ino, 0);
                *ret_ticks = 0;         /* no time namespaces: no offset */
                return 0;
        }
        if (r < 0)
                return r;
        if (r != 1 || hz <= 0 || 1000000000 % hz)
                return -1;
        n = proc_read("/proc/self/timens_offsets", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                long long s, ns;

                /* "boottime <secs> <nsecs>", nsecs in [0, 1e9). */
                if (sscanf(line, "%31s %lld %lld", name, &s, &ns) == 3 &&
                    !strcmp(name, "boottime")) {
                        sec = s;
                        nsec = ns;
                        found = true;
                }
        }
        r = timens_same(&dev2, &ino2);
        if (r < 0)
                return r;
        if (r != 1 || dev2 != dev || ino2 != ino)
                return -1;
        /* |sec| < 2^31 keeps sec * hz (hz <= 1e9) far from overflow. */
        if (!found || nsec < 0 || nsec >= 1000000000 || sec > INT32_MAX || sec < INT32_MIN ||
            nsec % (1000000000 / hz))
                return -1;
        /* Only now: an identity kept from a failed read would pair this
         * namespace with the offset of the one we left. */
        AO_store(&brd_timens_dev, (AO_t)dev);
        AO_store(&brd_timens_ino, (AO_t)ino);
        *ret_ticks = sec * hz + nsec / (1000000000 / hz);
        return 0;
}

/*
 * Since we read the offset, did we setns() into another time namespace?
 * (A process may only while single-threaded: no thread reads meanwhile.)
 * A stat() per look, beside the /proc read of the caller.
 */
static bool timens_moved(void)
{
        dev_t dev;
        ino_t ino;

        if (ns_id("time", &dev, &ino) < 0)
                return false;   /* no time namespaces, or no /proc: nothing moves */
        return (AO_t)dev != AO_load(&brd_timens_dev) || (AO_t)ino != AO_load(&brd_timens_ino);
}

/* Our time namespace's boottime offset in ticks: 0 and *ret_ticks, a
 * proc_passing() error when unknown for now, -ENODATA for good.  Read once per time
 * namespace: a running process changes it only with setns()
 * (timens_moved()), and brd_fork_child() forgets it for a child
 * of an unshare(CLONE_NEWTIME).  A read that failed for now (out of fds,
 * say) is not remembered: a verdict of unknown would keep this process from
 * telling a reused pid from its dead owner for as long as it lives. */
static int timens_offset(int64_t *ret_ticks)
{
        /* Pairs with the store-release below (another thread's). */
        AO_t st = AO_load_acquire(&brd_timens_state);
        int64_t t;
        int r;

        /* Known only: an unknown offset judges nothing, and costs no
         * system call (the owner lock asks at every lock). */
        if (st == TIMENS_KNOWN && timens_moved())
                st = TIMENS_UNREAD;
        if (st == TIMENS_UNREAD) {
                r = timens_read(&t);
                if (proc_passing(r))
                        return r;       /* read again next time: not known for now */
                if (r == 0) {
                        AO_store(&brd_timens_off, (AO_t)t);
                        st = TIMENS_KNOWN;
                } else {
                        st = TIMENS_UNKNOWN;
                }
                /* Racing threads store the same values. */
                AO_store_release(&brd_timens_state, st);
        }
        if (st != TIMENS_KNOWN)
                return -ENODATA;
        *ret_ticks = (int64_t)AO_load(&brd_timens_off);
        return 0;
}

/* @raw, a start time as /proc showed it to us (shifted by @off, our time
 * namespace's boottime offset), as the initial time namespace sees it; 0
 * when unknown. */
static uint64_t start_normalise(uint64_t raw, int64_t off)
{
        if (!raw || raw > INT64_MAX)
                return 0;
        if ((off > 0 && (int64_t)raw <= off) || (off < 0 && (int64_t)raw > INT64_MAX + off))
                return 0;
        return (uint64_t)((int64_t)raw - off);
}

/*
 * Read /proc/@pid/stat: its start time (field 22, raw: shifted by our time
 * namespace's boottime offset) and whether the process has exited but is
 * not reaped yet (a zombie: state Z or X with one thread counted, the
 * leader; a leader that called pthread_exit() shows Z too, but with its
 * live threads counted).  0, proc_err() when it cannot be read, -EIO when
 * it cannot be parsed.  Only for a /proc of our pid namespace
 * (brd__proc_ours()).
 */
static int proc_stat(pid_t pid, uint64_t *ret_start, bool *ret_exited)
{
        char path[64], buf[1024], *p, state;
        unsigned long threads = 0;
        ssize_t n;
        int field;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        n = proc_read(path, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        /* comm (field 2) may hold spaces and parentheses: start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EIO;
        /* p+2 is field 3 (state); num_threads is field 20, starttime 22. */
        p += 2;
        state = *p;
        for (field = 3; field < 22 && *p; p++) {
                if (*p != ' ')
                        continue;
                if (++field == 20)
                        threads = strtoul(p + 1, NULL, 10);
        }
        if (field != 22)
                return -EIO;
        *ret_start = strtoull(p, NULL, 10);
        *ret_exited = (state == 'Z' || state == 'X') && threads <= 1;
        return 0;
}

bool brd__pid_gone(uint64_t pid, uint64_t start, uint64_t mask)
{
        uint64_t now;
        int64_t off;
        bool exited;

        if (pid == 0 || pid > INT_MAX)
                return false;
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
                return true;
        /* A /proc of another pid namespace describes some other process
         * under that number: it tells nothing about this one. */
        if (!brd__proc_ours() || proc_stat((pid_t)pid, &now, &exited) < 0)
                return false;
        /* A zombie is gone, whoever it is: it will never run again, though
         * its parent (perhaps the very process asking) has not reaped it.
         * Otherwise alive under that pid: the same process only if it
         * started then (both normalised; an unknown one proves nothing). */
        if (exited)
                return true;
        now = timens_offset(&off) < 0 ? 0 : start_normalise(now, off) & mask;
        return start && now && now != start;
}

int brd__proc_start_time_of(pid_t pid, uint64_t *ret_start)
{
        uint64_t st = 0;
        int64_t off = 0;
        bool exited;
        int e;

        *ret_start = 0;
        if (pid == brd__getpid()) {
                uint64_t c = AO_load(&brd_start_time);

                if (c) {
                        *ret_start = c;
                        return 0;
                }
        }
        /* Both verdicts are cached: an unknown start time costs no /proc
         * read (the owner lock asks at every lock). */
        e = proc_view();
        if (e != PROC_OURS)
                return e < 0 ? e : 0;
        e = timens_offset(&off);
        if (e == 0)
                e = proc_stat(pid, &st, &exited);
        if (e < 0)
                return proc_passing(e) ? e : 0;
        st = start_normalise(st, off);
        /* Not cached when 0: a passing failure is worth retrying. */
        if (st && pid == brd__getpid())
                AO_store(&brd_start_time, (AO_t)st);
        *ret_start = st;
        return 0;
}

uint64_t brd__proc_start_time(pid_t pid)
{
        uint64_t st;

        (void)brd__proc_start_time_of(pid, &st);
        return st;
}

/* PIDFD_GET_PID_NAMESPACE (Linux 6.11), which older uapi headers lack. */
#define PIDFD_PID_NS_IOCTL _IO(0xFF, 5)

/* Our pid namespace's nsfs inode into @st without /proc: through a pidfd of
 * ourselves (Linux 6.11 and later).  false where that cannot be had. */
static bool pid_ns_by_pidfd(struct stat *st)
{
        int pfd = (int)syscall(SYS_pidfd_open, brd__getpid(), 0), nsfd;
        bool ok;

        if (pfd < 0)
                return false;
        nsfd = ioctl(pfd, PIDFD_PID_NS_IOCTL, 0);
        brd__close(pfd);
        if (nsfd < 0)
                return false;
        ok = fstat(nsfd, st) == 0;
        brd__close(nsfd);
        return ok;
}

uint64_t brd__pid_ns(void)
{
        uint64_t ns = AO_load(&brd_pid_ns);
        struct stat st;

        if (ns)
                return ns;
        /* The same nsfs inode either way.  Without /proc (a sandbox, a
         * chroot) the pidfd still tells: a process of another namespace
         * taken for one of ours would judge its pids, and take a live lock
         * holder for dead. */
        if (stat("/proc/self/ns/pid", &st) < 0 && !pid_ns_by_pidfd(&st))
                return 0;
        AO_store(&brd_pid_ns, (AO_t)st.st_ino);
        return (uint64_t)st.st_ino;
}

bool brd__pid_ns_ours(uint64_t ns)
{
        uint64_t me = brd__pid_ns();

        /* Ours unknown while the stamp is known: not ours for sure, and a
         * holder's pid that kill() finds nowhere here would be taken for a
         * dead one (a live lock taken over). */
        return !ns || ns == me;
}

AO_t brd__owner_word_of(pid_t pid)
{
        return (AO_t)(uint32_t)pid | (AO_t)(uint32_t)brd__proc_start_time(pid) << 32;
}

int brd__owner_word(AO_t *ret_word)
{
        pid_t pid = brd__getpid();
        uint64_t st;
        int e = brd__proc_start_time_of(pid, &st);

        if (e < 0)
                return e;
        *ret_word = (AO_t)(uint32_t)pid | (AO_t)(uint32_t)st << 32;
        return 0;
}

bool brd__owner_gone(AO_t word)
{
        return brd__pid_gone((uint32_t)word, word >> 32, UINT32_MAX);
}

int brd__registry_add(struct brd_seg *s)
{
        /* brd__fork_lock() ran brd_fork_ensure(): brd_fork_err is final. */
        if (brd_fork_err)
                return brd_fork_err;
        if (brd_registry_count >= BRD_SEG_MAX)
                return -EMFILE;
        brd__link_push(&brd_registry, &s->reg);
        brd_registry_count++;
        return 0;
}

bool brd__registry_created(uint64_t dev, uint64_t ino)
{
        struct brd_seg *s;
        bool found = false;

        brd__fork_lock();
        for (s = registry_seg(brd_registry); s && !found; s = registry_seg(s->reg.next))
                found = s->creator && (s->flags & BRD_SEG_NAMED) && s->dev == dev && s->ino == ino;
        brd__fork_unlock();
        return found;
}

void brd__registry_del(struct brd_seg *s)
{
        if (brd__link_listed(&brd_registry, &s->reg))
                registry_unlink(s);
}
