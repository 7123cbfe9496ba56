/* SPDX-License-Identifier: MIT */
/* brood ls / brood reap: what brood left in /dev/shm, and sweeping the dead's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/brd-private.h"
#include "brood.h"

/* A /proc of another pid namespace (unshare -pf without --mount-proc) shows
 * other processes under our pids: liveness and holders cannot be told. */
static bool proc_foreign(const char *cmd)
{
        if (brd__proc_ours())
                return false;
        fprintf(stderr, "brood: %s: /proc is not this pid namespace's (mount one, e.g. "
                        "unshare --mount-proc): no process judged\n", cmd);
        return true;
}

/* Processes that could hold our segments were not readable: say which. */
static void blind_warn(const char *cmd, const struct seg_blind *b)
{
        if (!b->procs)
                return;
        fprintf(stderr, "brood: %s: %zu process%s that could hold segments could not be read "
                        "(pid %d%s; not dumpable?): %s\n", cmd, b->procs, b->procs > 1 ? "es" : "",
                (int)b->first, b->procs > 1 ? " and others" : "",
                strcmp(cmd, "reap") ? "holders may be missing" :
                                      "no segment is removed on a guess");
}

/* The table shows this many holders, then ",+N" for the rest. */
#define LS_HOLDERS_SHOWN 3

/* The holders known by pid (JSON: all of them; the count of all is
 * "holders_total"), or in the table the first few, then how many more. */
static void print_holders(FILE *f, const struct seg_entry *e, bool json)
{
        size_t i, n = e->nholders < BRD_ARRAY_LEN(e->holders) ? e->nholders : BRD_ARRAY_LEN(e->holders);

        if (!json && n > LS_HOLDERS_SHOWN)
                n = LS_HOLDERS_SHOWN;
        for (i = 0; i < n; i++)
                fprintf(f, "%s%d", i ? "," : "", (int)e->holders[i]);
        if (!json && e->nholders > n)
                fprintf(f, ",+%zu", e->nholders - n);
        if (!json && !e->nholders)
                fputc('-', f);
}

/* What is inside an anonymous segment, in words ("" when nothing is known). */
static void describe(const struct seg_entry *e, char *buf, size_t cap)
{
        static const char *const role[2] = { "producer", "consumer" };
        size_t n = 0;
        int k;

        buf[0] = '\0';
        if (e->kind == SEG_RING) {
                n += (size_t)snprintf(buf + n, cap - n, "ring %llu/%llu bytes filled",
                                      (unsigned long long)e->ring.fill,
                                      (unsigned long long)e->ring.capacity);
                for (k = 0; k < 2 && n < cap; k++) {
                        if (!e->ring.pid[k])
                                n += (size_t)snprintf(buf + n, cap - n, ", %s -", role[k]);
                        else
                                n += (size_t)snprintf(buf + n, cap - n, ", %s %d %s", role[k],
                                                      (int)e->ring.pid[k],
                                                      e->ring.closed[k] ? "closed" :
                                                      e->ring.unjudged[k] ? "other" :
                                                      e->ring.alive[k] ? "alive" : "DEAD");
                }
        } else if (e->kind == SEG_POOL && e->pool.ok) {
                snprintf(buf, cap, "pool %llu/%llu bytes used in %llu blocks",
                         (unsigned long long)e->pool.used, (unsigned long long)e->pool.capacity,
                         (unsigned long long)e->pool.blocks);
        }
}

static int usage_ls(FILE *f)
{
        fprintf(f, "usage: brood ls [--json] [--anon]\n"
                   "  List brood's named shared-memory segments (/dev/shm/brood.*): creator pid,\n"
                   "  whether it is alive (\"other\": made in another pid namespace, not judged;\n"
                   "  root in the initial namespaces judges it there; every one is \"other\"\n"
                   "  when /proc is another pid namespace's, and one whose creator could not\n"
                   "  tell its namespace unless that pid lives here, same start time),\n"
                   "  size, and the live processes that map or hold each one.\n"
                   "  --anon   also list anonymous brood memfds held by live processes, with\n"
                   "           rings' fill level and pids and pools' usage\n"
                   "  --json   one JSON document instead of a table\n");
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

int cmd_ls(int argc, char **argv)
{
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "anon", no_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                { 0 }
        };
        struct seg_entry *v = NULL;
        struct seg_blind blind;
        bool json = false, anon = false;
        int c, n, i;

        while ((c = getopt_long(argc, argv, "jah", opts, NULL)) != -1) {
                switch (c) {
                case 'j': json = true; break;
                case 'a': anon = true; break;
                case 'h': return usage_ls(stdout);
                default: return usage_ls(stderr);
                }
        }
        if (optind != argc) {
                fprintf(stderr, "brood ls: unexpected argument '%s'\n", argv[optind]);
                return usage_ls(stderr);
        }
        n = seg_scan(anon ? SCAN_ANON | SCAN_POOLS : 0, &v, &blind);
        if (n < 0) {
                tool_err("ls", "/dev/shm", -n);
                return BRD_EXIT_FAIL;
        }
        (void)proc_foreign("ls");       /* every state "other" (null) then */
        blind_warn("ls", &blind);
        if (json) {
                printf("{\"segments\":[");
                for (i = 0; i < n; i++) {
                        const struct seg_entry *e = &v[i];

                        printf("%s{\"name\":", i ? "," : "");
                        json_str(stdout, e->name);
                        printf(",\"label\":");
                        json_str(stdout, e->label);
                        printf(",\"anonymous\":%s,\"creator\":%d,\"creator_alive\":%s,"
                               "\"creator_pid_ns\":%llu,\"other_pid_ns\":%s,",
                               e->anon ? "true" : "false", (int)e->creator,
                               /* an anonymous memfd names no creator */
                               e->anon || e->unjudged ? "null" :
                               e->creator_alive ? "true" : "false",
                               /* a creator that could not tell its namespace: unknown */
                               (unsigned long long)e->pid_ns,
                               e->ns_unknown ? "null" : e->other_ns ? "true" : "false");
                        if (e->stat_ok)         /* else unknown: null */
                                printf("\"size\":%llu,\"mode\":\"%04o\",\"uid\":%u,",
                                       (unsigned long long)e->size, e->mode, (unsigned)e->uid);
                        else
                                printf("\"size\":null,\"mode\":null,\"uid\":null,");
                        printf("\"holders\":[");
                        print_holders(stdout, e, true);
                        printf("],\"holders_total\":%zu", e->nholders);
                        if (e->kind == SEG_RING)
                                printf(",\"ring\":{\"capacity\":%llu,\"fill\":%llu,"
                                       "\"producer\":{\"pid\":%d,\"alive\":%s,\"closed\":%s},"
                                       "\"consumer\":{\"pid\":%d,\"alive\":%s,\"closed\":%s}}",
                                       (unsigned long long)e->ring.capacity,
                                       (unsigned long long)e->ring.fill, (int)e->ring.pid[0],
                                       e->ring.unjudged[0] ? "null" : e->ring.alive[0] ? "true" : "false",
                                       e->ring.closed[0] ? "true" : "false", (int)e->ring.pid[1],
                                       e->ring.unjudged[1] ? "null" : e->ring.alive[1] ? "true" : "false",
                                       e->ring.closed[1] ? "true" : "false");
                        else if (e->kind == SEG_POOL && e->pool.ok)
                                printf(",\"pool\":{\"capacity\":%llu,\"used\":%llu,\"blocks\":%llu}",
                                       (unsigned long long)e->pool.capacity,
                                       (unsigned long long)e->pool.used,
                                       (unsigned long long)e->pool.blocks);
                        printf("}");
                }
                printf("],\"unreadable_processes\":%zu}\n", blind.procs);
        } else {
                printf("%-8s %-6s %12s  %-20s %-16s %s\n", "CREATOR", "STATE", "SIZE", "HOLDERS",
                       "LABEL", "NAME");
                for (i = 0; i < n; i++) {
                        const struct seg_entry *e = &v[i];

                        if (e->anon)
                                printf("%-8s %-6s", "-", "anon");
                        else
                                printf("%-8d %-6s", (int)e->creator,
                                       e->unjudged ? "other" :
                                       e->creator_alive ? "alive" : "dead");
                        if (e->stat_ok)
                                printf(" %12llu  ", (unsigned long long)e->size);
                        else
                                printf(" %12s  ", "?");     /* seen in maps only, unprivileged */
                        {
                                /* LS_HOLDERS_SHOWN pids and ",+N": room to spare. */
                                char buf[96];
                                FILE *m = fmemopen(buf, sizeof(buf), "w");

                                if (m) {
                                        print_holders(m, e, false);
                                        fclose(m);
                                        buf[sizeof(buf) - 1] = '\0';
                                        printf("%-20s", buf);
                                }
                        }
                        {
                                char what[160];

                                describe(e, what, sizeof(what));
                                printf(" %-16s %s%s%s\n", e->label, e->name, what[0] ? "  " : "", what);
                        }
                }
        }
        free(v);
        return BRD_EXIT_OK;
}

/*
 * Does any process hold @e's file right now, whether the scan saw it or
 * not?  The kernel refuses a write lease while another open file of the
 * inode exists, and a mapping keeps its file open (brood opens segments
 * read-write): that covers holders no /proc walk of ours sees (not
 * dumpable, of a pid namespace that shares this /dev/shm, an fd in flight)
 * and those that opened the name after the walk read them.  1: held, or
 * the name leads to another file now; 0: not, the lease taken in
 * *@ret_fd (closing it lets it go), so that an open racing with the unlink
 * waits for it; -EINVAL: leases are off (fs.leases-enable 0), the scan's
 * word stands; -ENOENT: the name is gone; another -errno: the kernel could
 * not be asked (no CAP_LEASE for another user's file, out of fds...), so
 * nothing proves the file unheld.  SIGIO, which a lease break sends, must
 * be blocked.
 */
static int held_now(const struct seg_entry *e, int *ret_fd)
{
        char path[sizeof(e->name) + 16];
        struct stat st;
        int fd, r;

        *ret_fd = -1;
        snprintf(path, sizeof(path), "/dev/shm%s", e->name);
        /* O_NONBLOCK: an open that meets someone else's lease starts its
         * break but does not wait for it: that lease's holder has the file
         * open, and we say so at once. */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        /* A mode that a umask narrowed to write only (0200): a write
         * lease takes any open mode.  Of 0000, the owner can ask nothing. */
        if (fd < 0 && errno == EACCES)
                fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return errno == EWOULDBLOCK ? 1 : -errno;
        if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != e->dev || (uint64_t)st.st_ino != e->ino) {
                close(fd);
                return 1;
        }
        if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
                *ret_fd = fd;
                return 0;
        }
        r = errno == EAGAIN ? 1 : -errno;
        close(fd);
        return r;
}

static int usage_reap(FILE *f)
{
        fprintf(f, "usage: brood reap [--dry-run]\n"
                   "  Unlink brood's named segments whose creator is dead and that no live\n"
                   "  process maps or holds.  Names brood did not make, segments of a live\n"
                   "  creator, and segments made in another pid namespace (whose pids mean\n"
                   "  other processes here) are never touched, unless run as root in the\n"
                   "  initial namespaces, which sees every process and judges such a creator\n"
                   "  in its own namespace.  Exit 1 if something could not be removed.\n"
                   "  Without root, another user's segments are left alone too: that user's\n"
                   "  processes, which may hold them, are hidden.\n"
                   "  It also reports rings (anonymous) whose producer or consumer died.\n"
                   "  With a /proc of another pid namespace it removes nothing (exit 1).\n"
                   "  A process that could hold segments (one of ours; any, as root) whose\n"
                   "  fds or mappings cannot be read (not dumpable, say) may hold any: then\n"
                   "  nothing is removed, what would have been is kept and named (exit 1).\n"
                   "  Right before each unlink the kernel is asked whether any process has\n"
                   "  the segment open or mapped (a write lease): if so, it is kept.\n"
                   "  --dry-run   only say what would be removed\n");
        return f == stderr ? BRD_EXIT_USAGE : BRD_EXIT_OK;
}

int cmd_reap(int argc, char **argv)
{
        static const struct option opts[] = {
                { "dry-run", no_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                { 0 }
        };
        struct seg_entry *v = NULL;
        struct seg_blind blind;
        bool dry = false;
        int c, n, i, removed = 0, kept = 0, other = 0, unknown_ns = 0, others_uid = 0, unproven = 0;
        int failed = 0;
        sigset_t sigio, old_mask;
        int lease, h, u;

        while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
                switch (c) {
                case 'n': dry = true; break;
                case 'h': return usage_reap(stdout);
                default: return usage_reap(stderr);
                }
        }
        if (optind != argc) {
                fprintf(stderr, "brood reap: unexpected argument '%s'\n", argv[optind]);
                return usage_reap(stderr);
        }
        if (proc_foreign("reap"))
                return BRD_EXIT_FAIL;
        /* Rings whose peer died are reported; pools are not looked into. */
        n = seg_scan(SCAN_ANON, &v, &blind);
        if (n < 0) {
                tool_err("reap", "/dev/shm", -n);
                return BRD_EXIT_FAIL;
        }
        blind_warn("reap", &blind);
        sigemptyset(&sigio);
        sigaddset(&sigio, SIGIO);
        sigprocmask(SIG_BLOCK, &sigio, &old_mask);
        for (i = 0; i < n; i++) {
                const struct seg_entry *e = &v[i];
                char who[96];

                if (e->anon) {
                        /* Nothing to unlink (a memfd goes with its last holder);
                         * a ring whose peer died is worth a word. */
                        static const char *const role[2] = { "producer", "consumer" };
                        int k;

                        for (k = 0; e->kind == SEG_RING && k < 2; k++)
                                if (e->ring.pid[k] && !e->ring.alive[k] && !e->ring.closed[k])
                                        printf("ring %s (inode %llu, held by %d): %s %d died "
                                               "without closing\n", e->name,
                                               (unsigned long long)e->ino, (int)e->holders[0],
                                               role[k], (int)e->ring.pid[k]);
                        continue;
                }
                if (e->unjudged) {
                        /* One whose creator could not tell its namespace is
                         * judged nowhere: reaping it "there" would not do. */
                        if (e->ns_unknown)
                                unknown_ns++;
                        else
                                other++;
                        continue;
                }
                /* Another user's processes are hidden from us (their
                 * /proc/PID/fd and maps): a holder may be among them. */
                if (geteuid() != 0 && e->stat_ok && e->uid != geteuid()) {
                        others_uid++;
                        continue;
                }
                if (e->creator_alive || e->nholders) {
                        kept++;
                        continue;
                }
                if (e->other_ns)        /* judged: its pid is of its namespace */
                        snprintf(who, sizeof(who), "creator %d of pid namespace %llu",
                                 (int)e->creator, (unsigned long long)e->pid_ns);
                else
                        snprintf(who, sizeof(who), "creator %d", (int)e->creator);
                /* A process we could not read may hold it. */
                if (blind.procs) {
                        printf("kept %s (%s dead, but process %d could not be read)\n", e->name,
                               who, (int)blind.first);
                        unproven++;
                        continue;
                }
                h = held_now(e, &lease);
                if (h > 0) {
                        printf("kept %s (%s dead, but held by a process the scan did not see)\n",
                               e->name, who);
                        kept++;
                        continue;
                }
                if (h == -ENOENT) {
                        printf("%s was removed meanwhile, not by us\n", e->name);
                        continue;
                }
                if (h < 0 && h != -EINVAL) {
                        printf("kept %s (%s dead, but the kernel could not be asked whether a "
                               "process holds it: %s)\n", e->name, who, strerror(-h));
                        unproven++;
                        continue;
                }
                u = dry || shm_unlink(e->name) == 0 ? 0 : errno;
                /* Before any output: a stalled reader of it (a pager)
                 * must not keep an open of the file waiting on our lease. */
                if (lease >= 0)
                        close(lease);
                if (!u) {
                        printf("%s %s (%s dead, %llu bytes)\n", dry ? "would remove" : "removed",
                               e->name, who, (unsigned long long)e->size);
                        removed++;
                } else if (u == ENOENT) {       /* by its owner, or another reap */
                        printf("%s was removed meanwhile, not by us\n", e->name);
                } else {
                        char what[300];

                        snprintf(what, sizeof(what), "/dev/shm%s", e->name);
                        tool_err("reap", what, u);
                        failed++;
                }
        }
        /* The SIGIOs of leases broken by opens that raced with us. */
        while (sigtimedwait(&sigio, NULL, &(struct timespec){ 0 }) > 0)
                ;
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        printf("%s%d, kept %d (live creator or holder)", dry ? "would remove " : "removed ",
               removed, kept);
        if (other)
                printf(", %d of another pid namespace (reap them there)", other);
        if (unknown_ns)
                printf(", %d whose creator could not tell its pid namespace (remove them by hand "
                       "once nothing holds them)", unknown_ns);
        if (others_uid)
                printf(", %d of another user (reap them as that user or root)", others_uid);
        if (unproven)
                printf(", %d not proven unheld (a process or the file could not be asked)",
                       unproven);
        printf("%s\n", failed ? ", some could not be removed" : "");
        free(v);
        return failed || unproven ? BRD_EXIT_FAIL : BRD_EXIT_OK;
}
