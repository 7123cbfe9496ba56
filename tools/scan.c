/* SPDX-License-Identifier: MIT */
/*
 * Finding brood's segments from outside: named ones by their /dev/shm names,
 * holders (and anonymous memfds) through /proc/PID/fd and /proc/PID/maps,
 * and the fds of its threads that have a table of their own
 * (/proc/PID/task/TID/fd).  A process we may not read by privilege
 * (another user's, without root; one with capabilities we lack) is skipped:
 * no scan of ours could ever see it.  One hidden by its own choice (not
 * dumpable) could hold our segments unseen: the scan counts it (struct
 * seg_blind, may_hold_ours()) and reap then removes nothing on its word.
 * A /proc of another pid namespace (brd__proc_ours()) names other
 * processes: nothing found through it is judged.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include <brood/shm.h>
#include "internal/brd-pool.h"
#include "internal/brd-ring.h"
#include "brood.h"

/* A label brood makes (brd_seg_create()): 1..BRD_SEG_LABEL_MAX of
 * [A-Za-z0-9_.-].  Anything else is not brood's, whatever its prefix (and
 * is never printed: a name in /dev/shm may hold escape sequences). */
_Static_assert(BRD_SEG_LABEL_MAX < sizeof(((struct seg_entry *)0)->label), "label fits");

static bool label_ok(const char *l, size_t n)
{
        size_t i;

        if (n == 0 || n > BRD_SEG_LABEL_MAX)
                return false;
        for (i = 0; i < n; i++)
                if (!isalnum((unsigned char)l[i]) && l[i] != '_' && l[i] != '-' && l[i] != '.')
                        return false;
        return true;
}

/* 32 lowercase hex digits, then a '.'. */
static bool hex32(const char *p)
{
        int i;

        for (i = 0; i < 32; i++)
                if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
                        return false;
        return p[32] == '.';
}

/*
 * A decimal field of a name, as brood prints it (%d, %llu): at most @digits
 * digits, no leading zero (a lone 0 when @zero), within @max, then a '.'.
 * Another spelling of the same number ("0123") is another name, which
 * brood never made.  Advances *@p past the '.'; false for anything else.
 */
static bool dec_field(const char **p, unsigned digits, bool zero, unsigned long long max,
                      unsigned long long *ret)
{
        const char *s = *p;
        unsigned long long v = 0;
        unsigned n;

        for (n = 0; isdigit((unsigned char)s[n]); n++) {
                unsigned d = (unsigned)(s[n] - '0');

                if (n == digits || v > (max - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        if (n == 0 || s[n] != '.' || (s[0] == '0' && (n > 1 || !zero)))
                return false;
        *p = s + n + 1;
        *ret = v;
        return true;
}

/*
 * "/brood.<pid>.<start>.<pidns>.<32 hex>.<label>" (create_named() in
 * shm/seg.c), or the older form without <pidns>.  Exactly the digits brood
 * writes: pid_t for %d (1..2^31-1, 10 digits), uint64_t for %llu (20).
 */
bool seg_parse_name(const char *name, struct seg_entry *e)
{
        const char *p = name[0] == '/' ? name + 1 : name;
        unsigned long long pid, st, ns = 0;
        bool with_ns;

        if (strncmp(p, BRD_SEG_NAME_PREFIX, strlen(BRD_SEG_NAME_PREFIX)))
                return false;
        p += strlen(BRD_SEG_NAME_PREFIX);
        if (!dec_field(&p, 10, false, 0x7fffffff, &pid) ||
            !dec_field(&p, 20, true, UINT64_MAX, &st))
                return false;
        /* Then the creator's pid namespace, unless the name predates it:
         * the 32 hex digits come at once. */
        with_ns = !hex32(p);
        if (with_ns && (!dec_field(&p, 20, true, UINT64_MAX, &ns) || !hex32(p)))
                return false;
        if (!label_ok(p + 33, strlen(p + 33)))
                return false;
        memset(e, 0, sizeof(*e));
        /* Cut short, it would name another file, which reap would unlink. */
        if (snprintf(e->name, sizeof(e->name), "/%s", name[0] == '/' ? name + 1 : name) >=
            (int)sizeof(e->name))
                return false;
        snprintf(e->label, sizeof(e->label), "%s", p + 33);
        e->creator = (pid_t)pid;
        e->start_time = st;
        e->pid_ns = ns;
        e->ns_unknown = with_ns && !ns;
        return true;
}

/*
 * The scan reads one process at a time, all of it (fds, maps, threads'
 * fds) before the next: a holder seen again is the one added last, whether
 * or not the array had room for it (past the array, a holder with an fd and
 * a mapping was counted twice).
 */
static void add_holder(struct seg_entry *e, pid_t pid)
{
        if (e->nholders && e->holder_last == pid)
                return;
        if (e->nholders < BRD_ARRAY_LEN(e->holders))
                e->holders[e->nholders] = pid;
        e->nholders++;
        e->holder_last = pid;
}

struct vec {
        struct seg_entry *v;
        size_t n, cap;
};

/*
 * Count @pid as a holder of every named entry that file @dev:@ino is (one
 * file may have two brood-looking names, hard links): true if any.  By the
 * file, not its path: a process in a chroot, behind a bind mount of
 * /dev/shm, or through a symlinked /dev/shm shows the same file under
 * another path, and missing such a holder would let reap unlink a name in
 * use.
 */
static bool credit_named(struct vec *x, uint64_t dev, uint64_t ino, pid_t pid)
{
        bool any = false;
        size_t i;

        for (i = 0; i < x->n; i++)
                if (!x->v[i].anon && x->v[i].dev == dev && x->v[i].ino == ino) {
                        add_holder(&x->v[i], pid);
                        any = true;
                }
        return any;
}

/* Could @path be a named segment's, under whatever directory the holder
 * sees /dev/shm as?  Only those are looked at (a stat each). */
static bool named_path(const char *path)
{
        const char *b = strrchr(path, '/');

        return b && !strncmp(b + 1, "brood.", 6);
}

static struct seg_entry *vec_push(struct vec *x)
{
        if (x->n == x->cap) {
                size_t cap = x->cap ? 2 * x->cap : 16;
                struct seg_entry *nv = realloc(x->v, cap * sizeof(*nv));

                if (!nv)
                        return NULL;
                x->v = nv;
                x->cap = cap;
        }
        memset(&x->v[x->n], 0, sizeof(x->v[0]));
        return &x->v[x->n++];
}

/* One scan of /proc: what it found, and what it could not read. */
struct scan {
        struct vec x;
        bool anon;              /* anonymous memfds too */
        int r;                  /* -ENOMEM once an entry was lost */
        struct seg_blind blind;
        pid_t blind_last;       /* the process counted last in @blind */
        unsigned long long mycap;       /* our permitted capabilities */
        bool mycap_ok;                  /* read from /proc/self/status, once */
};

/* @st's size, mode and owner (and @path to open it by) into @e. */
static void anon_stat(struct seg_entry *e, const struct stat *st, const char *path)
{
        snprintf(e->path, sizeof(e->path), "%s", path);
        e->size = (uint64_t)st->st_size;
        e->mode = st->st_mode & 07777;
        e->uid = st->st_uid;
        e->stat_ok = true;
}

/* Anonymous brood memfds: "/memfd:brood:<label> (deleted)", grouped by file
 * (st_dev, st_ino).  @stat_ok: @st and @path are usable, else only st_dev
 * and st_ino are known. */
static int note_anon(struct vec *x, pid_t pid, const char *target, const struct stat *st,
                     const char *path, bool stat_ok)
{
        const char *lab;
        struct seg_entry *e;
        size_t i, len;

        if (strncmp(target, "/memfd:brood:", 13))
                return 0;
        lab = target + 13;
        len = strcspn(lab, " ");
        /* The label, and then nothing or the kernel's " (deleted)". */
        if (!label_ok(lab, len) || (lab[len] && strcmp(lab + len, " (deleted)")))
                return 0;
        for (i = 0; i < x->n; i++)
                if (x->v[i].anon && x->v[i].dev == (uint64_t)st->st_dev &&
                    x->v[i].ino == (uint64_t)st->st_ino) {
                        add_holder(&x->v[i], pid);
                        if (!x->v[i].stat_ok && stat_ok)
                                anon_stat(&x->v[i], st, path);
                        return 0;
                }
        e = vec_push(x);
        if (!e)
                return -ENOMEM;
        e->anon = true;
        e->dev = st->st_dev;
        e->ino = st->st_ino;
        if (stat_ok)
                anon_stat(e, st, path);
        memcpy(e->label, lab, len);     /* len <= BRD_SEG_LABEL_MAX < sizeof(e->label) */
        snprintf(e->name, sizeof(e->name), "memfd:brood:%s", e->label);
        e->creator = 0;
        add_holder(e, pid);
        return 0;
}

/* Is fd @fd of @dir (/proc/PID, or one of its tasks) on a tmpfs mount, as
 * named segments are?  1, 0, or -1 when that cannot be read.  By the mount
 * id that fdinfo shows (Linux 3.15) and the file system type that the
 * process's mountinfo gives it: nothing the file's own file system says,
 * which a FUSE server could make up. */
static int fd_on_tmpfs(const char *dir, const char *fd)
{
        char path[160], line[128], *mi = NULL;
        int mnt = -1, id, r = -1;
        const char *sep;
        size_t cap = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/fdinfo/%.16s", dir, fd);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "mnt_id: %d", &mnt) == 1)
                        break;
        fclose(f);
        if (mnt < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/mountinfo", dir);
        f = fopen(path, "re");
        if (!f)
                return -1;
        /* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE ...",
         * whole lines (getline()): a mount point's path has no bound, and
         * the rest of a line cut short would be read as a line of its own. */
        while (r < 0 && getline(&mi, &cap, f) > 0)
                if (sscanf(mi, "%d ", &id) == 1 && id == mnt && (sep = strstr(mi, " - ")))
                        r = !strncmp(sep + 3, "tmpfs ", 6);
        free(mi);
        fclose(f);
        return r;
}

/*
 * Holders among the fds of process @pid, listed under @dir (/proc/PID, or
 * /proc/PID/task/TID for one of its threads).  The number of fds seen, or
 * -errno when the list, or one of them, cannot be read (not for an fd
 * closed meanwhile: -ENOENT then only if the process is gone).
 */
static int scan_fds(struct scan *s, pid_t pid, const char *dir)
{
        char path[96], link[128], target[PATH_MAX];
        struct vec *x = &s->x;
        struct dirent *f;
        DIR *fdd;
        int seen = 0, err = 0;

        snprintf(path, sizeof(path), "%s/fd", dir);
        fdd = opendir(path);
        if (!fdd)
                return -errno;
        while ((f = readdir(fdd))) {
                ssize_t n;

                if (f->d_name[0] == '.')
                        continue;
                seen++;
                snprintf(link, sizeof(link), "%s/%.16s", path, f->d_name);
                n = readlink(link, target, sizeof(target) - 1);
                if (n < 0 && errno == ENAMETOOLONG) {
                        struct stat st;

                        /* A path longer than PATH_MAX, which the kernel
                         * will not print (any user can make one), yet the
                         * file is there: a segment (seen through a deep
                         * bind mount) by its device and inode.  Only one
                         * on a tmpfs is asked for them (a FUSE server
                         * could make the stat() wait forever). */
                        int t = fd_on_tmpfs(dir, f->d_name);

                        if (t > 0 && stat(link, &st) == 0)
                                credit_named(x, (uint64_t)st.st_dev, (uint64_t)st.st_ino, pid);
                        else if (t != 0 && errno != ENOENT)
                                err = -ENAMETOOLONG;
                        continue;
                }
                if (n <= 0) {
                        /* Not readable now (the process turned
                         * non-dumpable meanwhile, say): it may be ours. */
                        if (n < 0 && errno != ENOENT)
                                err = -errno;
                        continue;
                }
                target[n] = '\0';
                if (named_path(target)) {
                        struct stat st;

                        if (stat(link, &st) < 0) {
                                int se = errno;

                                if (se == ENOENT)
                                        continue;
                                /* A file that refuses us its attributes (a
                                 * FUSE mount without allow_other refuses
                                 * even root) and is on no tmpfs is none of
                                 * ours: any user could otherwise keep every
                                 * dead segment from being reaped. */
                                if (fd_on_tmpfs(dir, f->d_name) != 0)
                                        err = -se;
                                continue;
                        }
                        credit_named(x, (uint64_t)st.st_dev, (uint64_t)st.st_ino, pid);
                } else if (s->anon && !strncmp(target, "/memfd:brood:", 13)) {
                        struct stat st;

                        /* A memfd is a regular file.  A FIFO or a device
                         * can carry the same path (made on a tmpfs of
                         * another mount namespace, it reads from that
                         * mount's root): not ours, and opening it could
                         * block or act on it.  A path too long to keep (a
                         * thread's) is not kept: the entry is then opened
                         * through another holder's. */
                        if (stat(link, &st) == 0 && S_ISREG(st.st_mode) &&
                            note_anon(x, pid, target, &st, link,
                                      strlen(link) < sizeof(x->v[0].path)) < 0)
                                s->r = -ENOMEM;
                }
        }
        closedir(fdd);
        return err ? err : seen;
}

/* Holders among the mappings of process @pid, listed in @dir/maps: the
 * number of lines seen, or -errno when unreadable. */
static int scan_maps(struct scan *s, pid_t pid, const char *dir)
{
        char path[96], *line = NULL;
        struct vec *x = &s->x;
        size_t cap = 0;
        FILE *maps;
        int seen = 0;

        snprintf(path, sizeof(path), "%s/maps", dir);
        maps = fopen(path, "re");
        if (!maps)
                return -errno;
        while (getline(&line, &cap, maps) > 0) {
                /* "start-end perms off dev inode path": a mapping whose fd
                 * was closed is found here only.  The path, not the line:
                 * a directory a holder sees /dev/shm under may be called
                 * anything, "/memfd:brood:" too.  Whole lines: a path has
                 * no bound, and the rest of one cut short would be read
                 * as a line of its own, made up by whoever named it. */
                unsigned long lo, hi, ino;
                unsigned maj, min;
                char *m;
                int at = -1;

                seen++;
                if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu %n", &lo, &hi, &maj, &min, &ino,
                           &at) != 5 || at < 0)
                        continue;
                m = line + at;
                m[strcspn(m, "\n")] = '\0';
                /* By the file first: a named segment's is matched whatever
                 * its path looks like. */
                if (strstr(m, "/brood.") &&
                    credit_named(x, (uint64_t)makedev(maj, min), (uint64_t)ino, pid))
                        continue;
                if (s->anon && !strncmp(m, "/memfd:brood:", 13)) {
                        char mf[128];
                        struct stat st = { 0 };
                        bool ok;

                        snprintf(mf, sizeof(mf), "%s/map_files/%lx-%lx", dir, lo, hi);
                        ok = strlen(mf) < sizeof(x->v[0].path) && stat(mf, &st) == 0;
                        if (ok && !S_ISREG(st.st_mode))
                                continue;       /* a device named like a memfd */
                        if (!ok) {
                                st.st_dev = makedev(maj, min);
                                st.st_ino = ino;
                        }
                        if (note_anon(x, pid, m, &st, mf, ok) < 0)
                                s->r = -ENOMEM;
                }
        }
        if (!feof(maps) && errno == ENOMEM)
                s->r = -ENOMEM;         /* lines left unread */
        free(line);
        fclose(maps);
        return seen;
}

/* The uids (real, effective, saved, fs) and permitted capabilities in
 * /proc/@who/status, which anyone may read, even of a process that is not
 * dumpable.  0, or -errno (-ENOENT: gone). */
static int proc_creds(const char *who, unsigned long uid[4], unsigned long long *ret_cap)
{
        char path[64], line[256];
        int found = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%s/status", who);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (found != 3 && fgets(line, sizeof(line), f)) {
                if (sscanf(line, "Uid: %lu %lu %lu %lu", &uid[0], &uid[1], &uid[2], &uid[3]) == 4)
                        found |= 1;
                else if (sscanf(line, "CapPrm: %llx", ret_cap) == 1)
                        found |= 2;
        }
        fclose(f);
        return found == 3 ? 0 : -EPROTO;
}

/*
 * Could process @pid hold our segments, and is it hidden from us by its own
 * choice (PR_SET_DUMPABLE 0) rather than by privilege?  Without root, one of
 * its uids must be ours: another user's processes are never ours to see,
 * and reap leaves that user's segments alone.  And it has no capability
 * that we lack: a process more privileged than us (root's pid 1, to a root
 * without CAP_SYS_PTRACE) is out of our sight like another user's, always.
 * One whose status cannot be read, and that is not gone, could; so could
 * any, when our own capabilities could not be read (@s->mycap_ok).
 */
static bool may_hold_ours(const struct scan *s, pid_t pid)
{
        unsigned long uid[4];
        unsigned long long cap;
        char who[16];
        int k, r;

        snprintf(who, sizeof(who), "%d", (int)pid);
        r = proc_creds(who, uid, &cap);
        if (r < 0)
                return r != -ENOENT && r != -ESRCH;
        if (!s->mycap_ok)
                return true;
        if (cap & ~s->mycap)
                return false;
        if (geteuid() == 0)
                return true;
        for (k = 0; k < 4; k++)
                if (uid[k] == (unsigned long)geteuid())
                        return true;
        return false;
}

/* @err from reading process @pid's fds or maps.  A process gone meanwhile
 * holds nothing; one that could hold ours hides what it holds. */
static void note_unreadable(struct scan *s, pid_t pid, int err)
{
        if (err >= 0 || err == -ENOENT || err == -ESRCH || s->blind_last == pid ||
            !may_hold_ours(s, pid))
                return;
        if (!s->blind.procs++)
                s->blind.first = pid;
        s->blind_last = pid;
}

/* Do threads @a and @b share one fd table?  false when it cannot be told
 * (no kcmp(): a kernel without CONFIG_KCMP; or not allowed). */
static bool same_fd_table(pid_t a, pid_t b)
{
        return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

/*
 * The threads of process @pid.  One whose fd table is not the leader's (a
 * clone() without CLONE_FILES, an unshare(CLONE_FILES)) can hold a segment
 * by an fd that the leader's /proc/PID/fd never shows: its own table is
 * read.  kcmp() tells which share the leader's, mostly all: those are not
 * read again.  A leader that has exited (pthread_exit()) has none, so every
 * other thread's is read.  With @maps (the leader showed no mapping: it has
 * exited), the mappings too, once, from the first thread that shows any
 * (threads share them).  Holders are counted once per process anyway.
 */
static void scan_tasks(struct scan *s, pid_t pid, bool maps)
{
        char path[48], dir[80];
        struct dirent *t;
        DIR *task;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        task = opendir(path);
        if (!task)
                return;         /* gone: a task list is everyone's to read */
        while ((t = readdir(task))) {
                pid_t tid;

                if (!isdigit((unsigned char)t->d_name[0]))
                        continue;
                tid = (pid_t)atoi(t->d_name);
                if (tid == pid)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%.16s", path, t->d_name);
                if (!same_fd_table(pid, tid))
                        note_unreadable(s, pid, scan_fds(s, pid, dir));
                if (maps)
                        maps = scan_maps(s, pid, dir) <= 0;
        }
        closedir(task);
}

static bool gone(int err)
{
        return err == -ENOENT || err == -ESRCH;
}

static void scan_process(struct scan *s, pid_t pid)
{
        char dir[32];
        int fds, maps;

        snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
        fds = scan_fds(s, pid, dir);
        maps = scan_maps(s, pid, dir);
        /* A leader that has exited (pthread_exit()) has no memory: no
         * mappings, and its fd list turns root's (0500), which its own user
         * cannot read.  Its threads can be read, and are (scan_tasks()
         * counts those that cannot). */
        if (fds == -EACCES && maps == 0) {
                scan_tasks(s, pid, true);
                return;
        }
        if ((fds < 0 && !gone(fds)) || (maps < 0 && !gone(maps))) {
                /* Its threads are no more readable than its leader. */
                note_unreadable(s, pid, fds < 0 && !gone(fds) ? fds : maps);
                return;
        }
        scan_tasks(s, pid, maps <= 0);
}

static int scan_proc(struct scan *s)
{
        DIR *proc = opendir("/proc");
        struct dirent *d;

        if (!proc)
                return -errno;
        while ((d = readdir(proc)))
                if (isdigit((unsigned char)d->d_name[0]))
                        scan_process(s, (pid_t)atoi(d->d_name));
        closedir(proc);
        return s->r;
}

/*
 * Is process @pid of pid namespace @ns (started at @start) alive?  Ours: by
 * brd__pid_gone().  Another namespace's: its pid names another process here,
 * or none, so it is looked up in that namespace (pidns_has()); when that
 * cannot be told, *ret_unjudged and true, so that nothing is removed or
 * reported dead on a guess; likewise with a /proc of another pid namespace.
 */
static bool judge_pid(struct pidns_table *nst, uint64_t ns, pid_t pid, uint64_t start,
                      bool *ret_unjudged)
{
        int has;

        /* Our pids' processes are not the ones that /proc shows, nor may
         * their holders be: nothing can be told. */
        *ret_unjudged = !brd__proc_ours();
        if (*ret_unjudged)
                return true;
        if (brd__pid_ns_ours(ns))
                return !brd__pid_gone((uint64_t)pid, start, UINT64_MAX);
        has = pidns_has(nst, ns, pid, start);
        *ret_unjudged = has < 0;
        return has != 0;
}

/*
 * A read-only look at a ring's header: fill level, pids, closed flags.  A
 * copy read with pread(), never a mapping: the memfd is anyone's to
 * truncate (attach demands seals, we do not), and a mapped page past the end
 * of the file is SIGBUS.  A short read is no ring.
 */
static void inspect_ring(struct seg_entry *e, int fd, struct pidns_table *nst)
{
        struct brd_ring_hdr h;
        const struct brd_ring_side *side[2] = { &h.prod, &h.cons };
        uint64_t tail, head;
        int k;

        if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
                return;
        if (h.magic != BRD_RING_MAGIC || h.version != BRD_RING_VERSION)
                return;
        e->kind = SEG_RING;
        e->ring.capacity = h.capacity;
        tail = h.tail.idx;
        head = h.head.idx;
        e->ring.fill = tail >= head && tail - head <= h.capacity ? tail - head : 0;
        for (k = 0; k < 2; k++) {
                AO_t pid = side[k]->pid;

                e->ring.pid[k] = pid > 0 && pid < 0x7fffffff ? (pid_t)pid : 0;
                if (e->ring.pid[k])
                        e->ring.alive[k] = judge_pid(nst, h.pid_ns, e->ring.pid[k],
                                                     side[k]->start_time, &e->ring.unjudged[k]);
                e->ring.closed[k] = side[k]->state & BRD_RING_ST_CLOSED;
        }
}

/* A pool's accounting, from a private copy of its metadata: no lock taken,
 * nothing written to a pool of another process (brd__pool_peek_stats()). */
static void inspect_pool(struct seg_entry *e, int fd)
{
        struct brd_pool_stats st;
        int r = brd__pool_peek_stats(fd, e->size, &st);

        if (r == -EPROTO)
                return;                 /* not a pool of ours */
        e->kind = SEG_POOL;
        if (r == 0) {
                e->pool.capacity = st.capacity;
                e->pool.used = st.used;
                e->pool.blocks = st.blocks;
                e->pool.ok = true;
        }
}

static bool same_file(const struct seg_entry *e, int fd)
{
        struct stat st;

        return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_dev == e->dev &&
               (uint64_t)st.st_ino == e->ino;
}

/*
 * Opens the file that the scan saw at @e->path, or returns -ESTALE.  By now
 * the process may have put anything at that fd number: a FIFO would block a
 * plain open() for good, a device could act on being opened.  O_PATH runs no
 * open method and never blocks; the inode it pins is checked against the
 * scan's, and only that very inode is opened for I/O, through our own fd.
 */
static int open_scanned(const struct seg_entry *e, int flags)
{
        char self[32];
        int pfd, fd;

        pfd = open(e->path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return -errno;
        if (!same_file(e, pfd)) {
                close(pfd);
                return -ESTALE;
        }
        snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
        fd = open(self, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        close(pfd);
        if (fd < 0)
                return -errno;
        return fd;
}

static void inspect(struct seg_entry *e, struct pidns_table *nst, unsigned flags)
{
        bool ring = !strcmp(e->label, "ring");
        bool pool = (flags & SCAN_POOLS) && !strcmp(e->label, "pool");
        int fd;

        if (!e->anon || (!ring && !pool) || !e->path[0])
                return;
        fd = open_scanned(e, O_RDONLY);
        if (fd < 0)
                return;
        if (ring)
                inspect_ring(e, fd, nst);
        else
                inspect_pool(e, fd);
        close(fd);
}

int seg_scan(unsigned flags, struct seg_entry **ret_list, struct seg_blind *ret_blind)
{
        struct pidns_table nst = { 0 };
        struct scan sc = { .anon = flags & SCAN_ANON };
        unsigned long me[4];
        struct vec *x = &sc.x;
        DIR *shm = opendir("/dev/shm");
        struct dirent *d;
        size_t i;
        int r;

        if (!shm)
                return -errno;
        sc.mycap_ok = proc_creds("self", me, &sc.mycap) == 0;
        while ((d = readdir(shm))) {
                struct seg_entry tmp, *e;
                char path[300];
                struct stat st;

                if (!seg_parse_name(d->d_name, &tmp))
                        continue;
                snprintf(path, sizeof(path), "/dev/shm/%s", d->d_name);
                /* brood makes regular files of mode 0600 (umask may narrow
                 * it between the create and the fchmod, never widen it). */
                if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777 & ~0600u))
                        continue;
                e = vec_push(x);
                if (!e) {
                        closedir(shm);
                        free(x->v);
                        return -ENOMEM;
                }
                *e = tmp;
                e->dev = (uint64_t)st.st_dev;
                e->ino = (uint64_t)st.st_ino;
                e->size = (uint64_t)st.st_size;
                e->mode = st.st_mode & 07777;
                e->uid = st.st_uid;
                e->stat_ok = true;
        }
        closedir(shm);
        r = scan_proc(&sc);
        if (r < 0) {
                free(x->v);
                return r;
        }
        for (i = 0; i < x->n; i++) {
                if (!x->v[i].anon && x->v[i].ns_unknown) {
                        /* The creator could not tell its pid namespace (no
                         * /proc there): its pid may be another namespace's.
                         * Alive if ours with that start time is; else
                         * nothing can be told. */
                        x->v[i].creator_alive = true;
                        x->v[i].unjudged = !brd__proc_ours() ||
                                           brd__pid_gone((uint64_t)x->v[i].creator,
                                                         x->v[i].start_time, UINT64_MAX);
                } else if (!x->v[i].anon) {
                        x->v[i].other_ns = !brd__pid_ns_ours(x->v[i].pid_ns);
                        x->v[i].creator_alive = judge_pid(&nst, x->v[i].pid_ns, x->v[i].creator,
                                                         x->v[i].start_time, &x->v[i].unjudged);
                } else {
                        inspect(&x->v[i], &nst, flags);
                }
        }
        pidns_table_free(&nst);
        *ret_list = x->v;
        *ret_blind = sc.blind;
        return (int)x->n;
}
