/* SPDX-License-Identifier: MIT */
/* brood ls / brood reap against a staged set of live and dead owners. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/fuse.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include <brood/shm.h>
#include "internal/brd-pool.h"


static int run_brood(const char *args, char *out, size_t cap)
{
        return t_run_brood(args, false, out, cap);
}

/* Be @uid (its group too), dumpable again after the change of credentials
 * as a process of that user's own would be (else /proc/PID/fd and maps
 * stay root's, and reap counts this process as one it cannot read). */
static int become(uid_t uid)
{
        return setgid(uid) < 0 || setuid(uid) < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 ? -1 : 0;
}

static bool exists(const char *name)
{
        char path[320];
        struct stat st;

        snprintf(path, sizeof(path), "/dev/shm%s", name);
        return stat(path, &st) == 0;
}

/* A child that creates a named segment, reports its name, and waits to be
 * killed (or for this program's end: t_fork()).  With @ret_release, a grandchild keeps the mapping after the child
 * dies, until *ret_release is closed (EOF on its pipe). */
static pid_t doomed_creator(char *name, size_t cap, int *ret_release)
{
        int p[2], q[2];
        pid_t pid;
        ssize_t n;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(pipe2(q, O_CLOEXEC), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct brd_seg *s;
                char c;

                close(p[0]);
                close(q[1]);
                if (brd_seg_create("doomed", 4096, BRD_SEG_NAMED, &s) < 0)
                        _exit(1);
                if (ret_release && fork() == 0) {
                        (void)!write(p[1], brd_seg_name(s), strlen(brd_seg_name(s)));
                        close(p[1]);
                        (void)!read(q[0], &c, 1);
                        _exit(0);
                }
                if (!ret_release)
                        (void)!write(p[1], brd_seg_name(s), strlen(brd_seg_name(s)));
                close(p[1]);
                for (;;)
                        pause();
        }
        close(p[1]);
        close(q[0]);
        n = read(p[0], name, cap - 1);
        assert_true(n > 0);
        name[n] = '\0';
        close(p[0]);
        if (ret_release)
                *ret_release = q[1];
        else
                close(q[1]);
        return pid;
}

/* A named segment whose creator is dead already (killed, reaped): its name
 * in @name. */
static void dead_creator(char *name, size_t cap)
{
        pid_t a = doomed_creator(name, cap, NULL);

        kill(a, SIGKILL);
        assert_int_equal(t_wait_child(a), 128 + SIGKILL);
}

static void test_reap_removes_only_dead_unheld(void **state)
{
        char dead[256], held[256], out[8192], badlabel[272], badmode[272];
        const char *foreign = "/brood-foreign-not-ours";
        const char *lookalike = "/brood.notapid.x";
        struct brd_seg *live;
        pid_t a, b;
        int release = -1;
        int fd;

        assert_int_equal(brd_seg_create("live", 4096, BRD_SEG_NAMED, &live), 0);
        fd = shm_open(foreign, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        fd = shm_open(lookalike, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);

        a = doomed_creator(dead, sizeof(dead), NULL);
        b = doomed_creator(held, sizeof(held), &release);
        kill(a, SIGKILL);
        kill(b, SIGKILL);
        assert_int_equal(t_wait_child(a), 128 + SIGKILL);
        assert_int_equal(t_wait_child(b), 128 + SIGKILL);
        assert_true(exists(dead));              /* E6: a name survives its creator */

        assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
        assert_non_null(strstr(out, dead + 1));
        assert_non_null(strstr(out, "dead"));
        assert_non_null(strstr(out, "alive"));
        assert_int_equal(run_brood("ls --json", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "\"creator_alive\":false"));

        assert_int_equal(run_brood("reap --dry-run", out, sizeof(out)), 0);
        assert_non_null(strstr(out, dead));
        assert_null(strstr(out, held));
        assert_true(exists(dead));

        /* Names of brood's form for the same dead creator, but no file
         * brood makes: a label with an escape sequence, a mode other than
         * 0600.  Neither listed nor removed (reap removed both before, and
         * ls printed the escape). */
        {
                char *dot = strrchr(dead, '.');

                assert_non_null(dot);
                snprintf(badlabel, sizeof(badlabel), "%.*s.x\033[31mRED", (int)(dot - dead), dead);
                snprintf(badmode, sizeof(badmode), "%.*s.wide", (int)(dot - dead), dead);
                fd = shm_open(badlabel, O_RDWR | O_CREAT | O_EXCL, 0600);
                assert_true(fd >= 0);
                close(fd);
                fd = shm_open(badmode, O_RDWR | O_CREAT | O_EXCL, 0600);
                assert_true(fd >= 0);
                assert_int_equal(fchmod(fd, 0666), 0);
                close(fd);
                assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
                assert_null(strstr(out, "\033"));
                assert_null(strstr(out, "RED"));
                assert_null(strstr(out, ".wide"));
        }

        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_false(exists(dead));
        assert_true(exists(badlabel));
        assert_true(exists(badmode));
        shm_unlink(badlabel);
        shm_unlink(badmode);
        assert_true(exists(held));              /* creator dead, but a live process maps it */
        assert_true(exists(brd_seg_name(live)));/* live creator */
        assert_true(exists(foreign));           /* not a brood name */
        assert_true(exists(lookalike));

        /* Let the holder go (EOF on its pipe): now the held one is reaped too. */
        close(release);
        {
                /* The grandchild was re-parented away from us; wait for its
                 * mapping to vanish by polling the reaper's view, bounded. */
                int64_t end = t_now_ms() + 5000;

                while (exists(held) && t_now_ms() < end)
                        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        }
        assert_false(exists(held));
        brd_seg_close(live);
        shm_unlink(foreign);
        shm_unlink(lookalike);
}

/* Send @fd over @sock (SCM_RIGHTS): in flight until received. */
static void send_fd(int sock, int fd)
{
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } ctl = { 0 };
        char b = 0;
        struct iovec iov = { &b, 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        assert_int_equal(sendmsg(sock, &m, 0), 1);
}

/*
 * A segment whose creator died, held only by an fd in flight (sent over a
 * socket, not yet received: in no process's /proc/PID/fd): kept, as the
 * kernel says it is open (a write lease is refused), and removed once the
 * fd is received and closed.  The scan alone judged it unheld, and reap
 * unlinked a name in use; the same for any holder the scan cannot see.
 */
static void test_reap_keeps_segment_held_unseen(void **state)
{
        char name[256], out[8192], b;
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = { &b, 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        int sp[2], fd;

        (void)state;
        dead_creator(name, sizeof(name));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        fd = shm_open(name, O_RDWR, 0);
        assert_true(fd >= 0);
        send_fd(sp[0], fd);
        close(fd);
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "held by a process the scan did not see"));
        assert_true(exists(name));

        assert_int_equal(recvmsg(sp[1], &m, MSG_CMSG_CLOEXEC), 1);
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
        close(fd);
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_false(exists(name));
        close(sp[0]);
        close(sp[1]);
}

/*
 * A holder that reaches /dev/shm/@name through a bind mount in a mount
 * namespace of its own (a container given -v /dev/shm:/shm, say): its fd,
 * or with @map_only its mapping, reads as /tmp/shm-bind/... from here.  Reports on @ready_w (a byte), holds
 * the file until @go_r's EOF.  0, T_EXIT_SKIP without the privilege to
 * mount, else the failed step.
 */
static int hold_through_bind_mount(const char *name, const char *dir, bool map_only, int ready_w,
                                   int go_r)
{
        char path[320];
        int fd;
        char c;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("brood-test", "/tmp", "tmpfs", 0, "mode=0700") < 0)
                return T_EXIT_SKIP;
        if (mkdir(dir, 0700) < 0 || mount("/dev/shm", dir, NULL, MS_BIND, NULL) < 0)
                return 10;
        snprintf(path, sizeof(path), "%s%s", dir, name);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return 11;
        /* @map_only: a mapping, its fd closed (seen in maps alone). */
        if (map_only && (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ||
                         close(fd) < 0))
                return 13;
        if (write(ready_w, "x", 1) != 1)
                return 12;
        while (read(go_r, &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

/*
 * reap keeps a segment whose dead creator's name a live process holds
 * under another path (a bind mount of /dev/shm in its own mount
 * namespace): holders are matched by the file, not by the path.  Matched
 * by path, that holder was missed, and reap unlinked a name in use.  The
 * scan finds it (the lease is not what keeps it): also under a directory
 * whose name holds what a memfd's mapping shows, "/memfd:brood:", which
 * made the line a memfd's and the holder one only the lease saw.
 */
static void reap_keeps_held_through_bind_mount(const char *dir, bool map_only)
{
        char name[256], out[8192], c;
        int ready[2], go[2];
        pid_t creator, holder;

        creator = doomed_creator(name, sizeof(name), NULL);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        holder = fork();
        assert_true(holder >= 0);
        if (holder == 0) {
                close(ready[0]);
                close(go[1]);
                _exit(hold_through_bind_mount(name, dir, map_only, ready[1], go[0]));
        }
        close(ready[1]);
        close(go[0]);
        kill(creator, SIGKILL);
        assert_int_equal(t_wait_child(creator), 128 + SIGKILL);
        if (read(ready[0], &c, 1) != 1) {
                int st = t_wait_child(holder);

                close(ready[0]);
                close(go[1]);
                shm_unlink(name);
                if (st == T_EXIT_SKIP)
                        skip();
                fail_msg("holder failed: %d", st);
        }
        close(ready[0]);
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_true(exists(name));
        assert_null(strstr(out, "the scan did not see"));
        close(go[1]);
        assert_int_equal(t_wait_child(holder), 0);
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_false(exists(name));
}

static void test_reap_keeps_segment_held_through_bind_mount(void **state)
{
        (void)state;
        reap_keeps_held_through_bind_mount("/tmp/shm-bind", false);      /* an fd */
        reap_keeps_held_through_bind_mount("/tmp/shm-bind", true);       /* a mapping only */
        reap_keeps_held_through_bind_mount("/tmp/memfd:brood:jail", true);
}

/* As uid 65534: reap leaves root's segment @name alone (its holders would be
 * hidden) and says so.  0, 77 when that user may not run the binary, else
 * the failed step. */
static int reap_as_nobody(const char *name)
{
        static char out[8192];
        int st;

        if (become(65534) < 0)
                return 100;
        st = run_brood("reap", out, sizeof(out));
        if (st == 126)
                return 77;
        if (st != 0)
                return 101;
        if (strstr(out, name) || !strstr(out, "1 of another user"))
                return 102;
        return 0;
}

/* @fn(@name) in a forked child: its exit code. */
static int in_child(int (*fn)(const char *name), const char *name)
{
        pid_t c = t_fork();

        assert_true(c >= 0);
        if (c == 0)
                _exit(fn(name));
        return t_wait_child(c);
}

/*
 * Another user's segment whose creator is dead: without root, reap cannot
 * see that user's processes, so it cannot know nobody holds it, and leaves
 * it (it said "would remove" with --dry-run, then failed with EACCES).
 */
static void test_reap_leaves_other_users_segments(void **state)
{
        char dead[256];
        int rc;

        (void)state;
        if (geteuid() != 0)
                skip();
        dead_creator(dead, sizeof(dead));
        rc = in_child(reap_as_nobody, dead);
        assert_true(exists(dead));
        shm_unlink(dead);
        if (rc == 77)
                skip();
        assert_int_equal(rc, 0);
}

/* reap run without CAP_LEASE (gone from the bounding set, so from what
 * the exec'd brood may have): 0 when it kept @name, unproven, and exit 1. */
static int reap_without_cap_lease(const char *name)
{
        static char out[8192];
        int st;

        if (prctl(PR_CAPBSET_DROP, CAP_LEASE, 0, 0, 0) < 0)
                return 77;
        st = run_brood("reap", out, sizeof(out));
        if (st != 1)
                return 100 + (st < 0 ? 0 : st);
        if (!strstr(out, name) || !strstr(out, "could not be asked whether a process holds it") ||
            !strstr(out, "1 not proven unheld"))
                return 110;
        return 0;
}

/*
 * A dead creator's segment of another user, held only by an fd in flight
 * (no scan sees it), reaped by root without CAP_LEASE: the kernel refuses
 * the lease for another user's file (EACCES), so it cannot say whether the
 * file is open, and the segment is kept (exit 1).  That EACCES counted as
 * "leases are off" and the name was unlinked under its holder.
 */
static void test_reap_keeps_segment_when_lease_refused(void **state)
{
        char name[256];
        int sp[2], fd, rc;

        (void)state;
        if (geteuid() != 0)
                skip();
        dead_creator(name, sizeof(name));
        fd = shm_open(name, O_RDWR, 0);
        assert_true(fd >= 0);
        assert_int_equal(fchown(fd, 65534, 65534), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        send_fd(sp[0], fd);
        close(fd);
        rc = in_child(reap_without_cap_lease, name);
        assert_true(exists(name));
        shm_unlink(name);
        close(sp[0]);
        close(sp[1]);
        if (rc == 77)
                skip();
        assert_int_equal(rc, 0);
}

/* @kids children that hold @s (its fd and its mapping, inherited) until
 * EOF on *@ret_go, which the caller closes; they are reaped then. */
static void fork_holders(int kids, pid_t *kid, int *ret_go)
{
        int go[2], ready[2], i;
        char c;

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        for (i = 0; i < kids; i++) {
                kid[i] = t_fork();
                assert_true(kid[i] >= 0);
                if (kid[i] == 0) {
                        close(go[1]);
                        close(ready[0]);
                        (void)!write(ready[1], "r", 1);
                        (void)!read(go[0], &c, 1);
                        _exit(0);
                }
        }
        close(go[0]);
        close(ready[1]);
        for (i = 0; i < kids; i++)
                assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        *ret_go = go[1];
}

/* More holders than the table shows: the first few, then how many more;
 * JSON gives the count of all. */
static void test_ls_many_holders(void **state)
{
        enum { KIDS = 5 };
        char out[16384], want[64];
        struct brd_seg *s;
        pid_t kid[KIDS];
        int go, i;

        (void)state;
        assert_int_equal(brd_seg_create("many", 4096, BRD_SEG_NAMED, &s), 0);
        fork_holders(KIDS, kid, &go);
        assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
        /* Us and the 5: 3 shown, ",+3". */
        snprintf(want, sizeof(want), ",+%d ", KIDS + 1 - 3);
        assert_non_null(strstr(out, want));
        assert_int_equal(run_brood("ls --json", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "\"holders_total\":%d", KIDS + 1);
        assert_non_null(strstr(out, want));
        close(go);
        for (i = 0; i < KIDS; i++)
                assert_int_equal(t_wait_child(kid[i]), 0);
        brd_seg_close(s);
}

/*
 * More holders than the 16 the scan keeps pids of, each with an fd and a
 * mapping: each is counted once (those past the 16th were counted twice,
 * for the fd and again for the mapping).
 */
static void test_ls_holders_total_past_the_array(void **state)
{
        enum { KIDS = 24 };
        static char out[65536];
        char want[64];
        struct brd_seg *s;
        pid_t kid[KIDS];
        int go, i;

        assert_int_equal(brd_seg_create("crowd", 4096, BRD_SEG_NAMED, &s), 0);
        fork_holders(KIDS, kid, &go);
        assert_int_equal(run_brood("ls --json", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "\"holders_total\":%d", KIDS + 1);
        if (!strstr(out, want))
                fail_msg("no %s in %s", want, out);
        assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), ",+%d ", KIDS + 1 - 3);
        assert_non_null(strstr(out, want));
        close(go);
        for (i = 0; i < KIDS; i++)
                assert_int_equal(t_wait_child(kid[i]), 0);
        brd_seg_close(s);
}

/* In a new pid namespace: make a named segment and leave it behind (exit
 * without closing it), its name in the shared page @arg. */
/* Shared with a creator that is pid 1 of a new pid namespace. */
struct other_ns {
        char name[256];
        int ready_w, go_r;              /* its ends of the two pipes */
        int ready_r, go_w;              /* the test's */
        pid_t h;                        /* the child that made the namespace */
};

/*
 * Run @fn as pid 1 of a new pid namespace, with @o (shared memory) as its
 * argument, and return once it wrote its first byte to ready_w.  Skips the
 * test without the privilege to make the namespace.  The test then writes
 * to go_w or closes it (other_ns_end()).
 */
static struct other_ns *other_ns_start(int (*fn)(void *arg))
{
        struct other_ns *o;
        int ready[2], go[2], rc;
        pid_t h;
        char c;

        o = mmap(NULL, sizeof(*o), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(o != MAP_FAILED);
        o->name[0] = '\0';
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(go), 0);
        o->ready_w = ready[1];
        o->go_r = go[0];
        o->ready_r = ready[0];
        o->go_w = go[1];
        /* fork()'s answer goes to a local: @o is shared, and a child that
         * stored its 0 there could read back the parent's pid (or the
         * parent the child's 0) and take the other branch. */
        h = t_fork();
        assert_true(h >= 0);
        if (h == 0) {
                close(ready[0]);
                close(go[1]);
                _exit(t_run_in_new_pidns(fn, o));
        }
        o->h = h;
        close(ready[1]);
        close(go[0]);
        if (read(o->ready_r, &c, 1) != 1) {
                close(o->ready_r);
                close(o->go_w);
                rc = t_wait_child(o->h);
                munmap(o, sizeof(*o));
                if (rc == T_EXIT_SKIP)
                        skip();
                fail_msg("pid 1 of a new pid namespace: exit %d", rc);
        }
        return o;
}

/* Close go: @o's namespace ends, and the child that made it exits 0. */
static void other_ns_end(struct other_ns *o)
{
        close(o->go_w);
        close(o->ready_r);
        assert_int_equal(t_wait_child(o->h), 0);
}

/* Make a named segment, say so, live until told (go closed), and leave the
 * name behind. */
static int make_named_and_wait(void *arg)
{
        struct other_ns *o = arg;
        struct brd_seg *s;
        char c;

        if (brd_seg_create("otherns", 4096, BRD_SEG_NAMED, &s) < 0)
                return 1;
        snprintf(o->name, sizeof(o->name), "%s", brd_seg_name(s));
        if (write(o->ready_w, "r", 1) != 1)
                return 2;
        while (read(o->go_r, &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

/* A process of a nested pid namespace (NSpid has two pids or more) whose
 * namespace we may not read. */
static bool nested_unreadable(const char *pid)
{
        char path[300], line[512];
        bool nested = false;
        struct stat st;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%s/status", pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "NSpid:", 6))
                        nested = strchr(line + 7, '\t') != NULL;
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%s/ns/pid", pid);
        return nested && stat(path, &st) < 0 && errno != ENOENT && errno != ESRCH;
}

/* Root in the initial pid and user namespaces (linux/proc_ns.h's inodes),
 * able to read the namespace of every process of a nested one: brood then
 * sees every process of the machine. */
static bool whole_machine(void)
{
        struct stat p, u;
        struct dirent *d;
        bool all = true;
        DIR *proc;

        if (geteuid() != 0 || stat("/proc/self/ns/pid", &p) < 0 || p.st_ino != 0xeffffffcu ||
            stat("/proc/self/ns/user", &u) < 0 || u.st_ino != 0xeffffffdu)
                return false;
        proc = opendir("/proc");
        assert_non_null(proc);
        while ((d = readdir(proc)))
                if (d->d_name[0] >= '1' && d->d_name[0] <= '9' && nested_unreadable(d->d_name))
                        all = false;
        closedir(proc);
        return all;
}

/* `brood ls` shows @name with STATE @want. */
static void ls_state_is(const char *name, const char *want)
{
        char out[8192];
        const char *line;

        assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
        line = strstr(out, name + 1);
        assert_non_null(line);
        while (line > out && line[-1] != '\n')
                line--;
        if (strncmp(line + 9, want, strlen(want)))      /* the STATE column */
                fail_msg("%s: state %.6s, want %s", name, line + 9, want);
}

/* `brood ls --json`: @name's entry holds @field (before the next entry). */
static void ls_json_has(const char *name, const char *field)
{
        char out[8192];
        const char *e, *next, *f;

        assert_int_equal(run_brood("ls --json", out, sizeof(out)), 0);
        e = strstr(out, name);
        assert_non_null(e);
        next = strstr(e, "{\"name\":");
        f = strstr(e, field);
        if (!f || (next && f > next))
                fail_msg("%s: no %s in its entry", name, field);
}

/*
 * A segment made in another pid namespace carries that namespace in its
 * name.  Root in the initial namespaces judges its creator by that
 * namespace and its pid there: alive, kept; dead (and with it the
 * namespace), reaped.  Anywhere else the creator may be hidden: ls shows
 * "other" and reap leaves it, dead or alive.  A name of the older format (no
 * namespace) whose creator is dead is reaped.
 */
static void test_reap_other_pidns(void **state)
{
        bool whole = whole_machine();
        struct other_ns *o;
        char old[256], out[8192];
        pid_t dead;
        int fd;

        (void)state;
        o = other_ns_start(make_named_and_wait);
        assert_true(o->name[0] == '/' && exists(o->name));

        /* The creator lives. */
        ls_state_is(o->name, whole ? "alive" : "other");
        ls_json_has(o->name, "\"other_pid_ns\":true");
        ls_json_has(o->name, whole ? "\"creator_alive\":true" : "\"creator_alive\":null");
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_null(strstr(out, o->name));
        assert_true(exists(o->name));

        /* The creator died, and its namespace with it. */
        other_ns_end(o);
        /* The old format: pid, start time, 32 hex digits, label. */
        dead = fork();
        assert_true(dead >= 0);
        if (dead == 0)
                _exit(0);
        assert_int_equal(t_wait_child(dead), 0);
        snprintf(old, sizeof(old), "/brood.%d.1.0123456789abcdef0123456789abcdef.oldfmt", (int)dead);
        fd = shm_open(old, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);

        ls_state_is(o->name, whole ? "dead" : "other");
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        if (whole) {
                assert_non_null(strstr(out, o->name));
                assert_non_null(strstr(out, "creator 1 of pid namespace"));
                assert_null(strstr(out, "of another pid namespace"));
                assert_false(exists(o->name));
        } else {
                assert_non_null(strstr(out, "of another pid namespace"));
                assert_null(strstr(out, o->name));
                assert_true(exists(o->name));
                assert_int_equal(shm_unlink(o->name), 0);
        }
        assert_false(exists(old));                  /* parsed, creator dead: reaped */
        munmap(o, sizeof(*o));
}

static int64_t boottime_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * As pid 1 of a new pid namespace, with a /proc of its own: a child makes a
 * named segment and exits, leaving the name; the next child is given the
 * dead one's pid (ns_last_pid), says so and lives until told (go closed).
 */
static int reuse_creator_pid(void *arg)
{
        struct other_ns *o = arg;
        int64_t t0, tick;
        char c, last[16];
        pid_t d, e;
        int fd;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return T_EXIT_SKIP;
        d = fork();
        if (d < 0)
                return 1;
        if (d == 0) {
                struct brd_seg *s;

                if (brd_seg_create("reused", 4096, BRD_SEG_NAMED, &s) < 0)
                        _exit(1);
                snprintf(o->name, sizeof(o->name), "%s", brd_seg_name(s));
                _exit(0);       /* the name stays */
        }
        if (t_wait_child(d) != 0)
                return 2;
        /* Start times count clock ticks: the next child starts a tick
         * later than the dead one at least, or the two look alike to
         * anyone (a reuse within one tick cannot be told). */
        tick = 1000000000 / sysconf(_SC_CLK_TCK);
        for (t0 = boottime_ns(); boottime_ns() / tick < t0 / tick + 2; )
                poll(NULL, 0, 1);
        snprintf(last, sizeof(last), "%d", (int)d - 1);
        fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, last, strlen(last)) < 0)
                return T_EXIT_SKIP;
        close(fd);
        e = fork();
        if (e < 0)
                return 3;
        if (e == 0) {
                if (getpid() != d)
                        _exit(T_EXIT_SKIP);
                if (write(o->ready_w, "r", 1) != 1)
                        _exit(4);
                while (read(o->go_r, &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        return t_wait_child(e);
}

/*
 * A creator in another pid namespace that died, its pid there since reused
 * by a live process: dead (the start times differ), and reaped.  Root
 * judged by the namespace and the pid alone: "alive", and the name was
 * kept for as long as the container lived.
 */
static void test_reap_creator_pid_reused_in_other_pidns(void **state)
{
        struct other_ns *o;
        char out[8192];
        bool reaped;

        (void)state;
        if (!whole_machine())
                skip();
        o = other_ns_start(reuse_creator_pid);
        assert_true(o->name[0] == '/' && exists(o->name));
        ls_state_is(o->name, "dead");
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        other_ns_end(o);
        reaped = !exists(o->name) && strstr(out, o->name);
        if (exists(o->name))
                shm_unlink(o->name);
        munmap(o, sizeof(*o));
        assert_true(reaped);
}

/*
 * A name whose pid-namespace field is 0 (its creator had no /proc to tell):
 * its pid may be another namespace's, so reap never judges it dead, and
 * only a live process of ours with that pid and start time makes it
 * "alive".  Judged in our namespace, a creator alive in a container
 * without /proc lost its segment to a host's reap.
 */
static void test_reap_keeps_name_of_unknown_pidns(void **state)
{
        char gone[256], mine[256], out[8192];
        pid_t dead;
        int fd;

        (void)state;
        dead = fork();
        assert_true(dead >= 0);
        if (dead == 0)
                _exit(0);
        assert_int_equal(t_wait_child(dead), 0);
        snprintf(gone, sizeof(gone), "/brood.%d.1.0.0123456789abcdef0123456789abcdef.nsless",
                 (int)dead);
        snprintf(mine, sizeof(mine), "/brood.%d.%llu.0.0123456789abcdef0123456789abcdef.nsless",
                 (int)getpid(), (unsigned long long)brd__proc_start_time(getpid()));
        fd = shm_open(gone, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        fd = shm_open(mine, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        ls_state_is(gone, "other");
        ls_state_is(mine, "alive");
        ls_json_has(gone, "\"other_pid_ns\":null");
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        /* Counted apart: no namespace judges it, so "reap them there"
         * would not do. */
        assert_non_null(strstr(out, ", 1 whose creator could not tell its pid namespace"));
        assert_null(strstr(out, "of another pid namespace"));
        assert_true(exists(gone));
        assert_true(exists(mine));
        assert_int_equal(shm_unlink(gone), 0);
        assert_int_equal(shm_unlink(mine), 0);
}

/*
 * pid 1 of a new pid namespace: a ring whose producer is its first child
 * (pid 2 there), which sent 5 messages of 200 B and says so.  The first go
 * byte kills that child (answered with a ready byte); go's close ends it.
 */
static int ring_in_other_ns(void *arg)
{
        struct other_ns *o = arg;
        struct brd_handle hp, hc;
        struct brd_ring *c, *p;
        char msg[200] = { 0 }, b;
        pid_t kid;
        int i;

        if (brd_ring_create(16384, 0, &hp, &hc) < 0 || brd_ring_attach(&hc, &c) < 0)
                return 1;
        kid = fork();
        if (kid < 0)
                return 2;
        if (kid == 0) {
                if (brd_ring_attach(&hp, &p) < 0)
                        _exit(1);
                for (i = 0; i < 5; i++)
                        if (brd_ring_send(p, msg, sizeof(msg), -1) < 0)
                                _exit(2);
                (void)!write(o->ready_w, "p", 1);
                for (;;)
                        pause();
        }
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        if (read(o->go_r, &b, 1) != 1)
                return 3;
        if (kill(kid, SIGKILL) < 0 || t_wait_child(kid) != 128 + SIGKILL)
                return 4;
        if (write(o->ready_w, "k", 1) != 1)
                return 5;
        while (read(o->go_r, &b, 1) < 0 && errno == EINTR)
                ;
        brd_ring_close(c);
        return 0;
}

/*
 * An anonymous ring of another pid namespace: its ends' pids are of that
 * namespace.  Root in the initial namespaces judges them there (alive, then
 * DEAD once the producer is killed, which reap reports); elsewhere ls says
 * "other" and reap reports nothing.  Before, they were judged as pids of
 * ours: pid 1 is init here, with another start time, so DEAD at once.
 */
static void test_ls_ring_other_pidns(void **state)
{
        static char out[65536];
        bool whole = whole_machine();
        const char *ring;
        struct other_ns *o;
        char c;

        (void)state;
        o = other_ns_start(ring_in_other_ns);

        assert_int_equal(run_brood("ls --anon", out, sizeof(out)), 0);
        ring = strstr(out, "ring 1040/16384 bytes filled");     /* 5 x (8 + 200) */
        assert_non_null(ring);
        assert_non_null(strstr(ring, whole ? "producer 2 alive, consumer 1 alive" :
                                             "producer 2 other, consumer 1 other"));
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_null(strstr(out, "died without closing"));

        assert_int_equal(write(o->go_w, "g", 1), 1);
        assert_int_equal(read(o->ready_r, &c, 1), 1);
        assert_int_equal(run_brood("ls --anon", out, sizeof(out)), 0);
        ring = strstr(out, "ring 1040/16384 bytes filled");
        assert_non_null(ring);
        assert_non_null(strstr(ring, whole ? "producer 2 DEAD, consumer 1 alive" :
                                             "producer 2 other, consumer 1 other"));
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        if (whole)
                assert_non_null(strstr(out, "producer 2 died without closing"));
        else
                assert_null(strstr(out, "died without closing"));

        other_ns_end(o);
        munmap(o, sizeof(*o));
}

/*
 * A memfd is brood's when its name is "brood:" and a label, nothing after
 * it: "brood:stray x" is another program's.  Before, anything after a
 * space was taken for the kernel's " (deleted)", and it was listed (and
 * inspected) as "memfd:brood:stray".
 */
static void test_ls_anon_takes_only_brood_names(void **state)
{
        static char out[65536];
        int kept, stray;

        (void)state;
        kept = memfd_create("brood:kept", MFD_CLOEXEC);
        stray = memfd_create("brood:stray x", MFD_CLOEXEC);
        assert_true(kept >= 0 && stray >= 0);
        assert_int_equal(run_brood("ls --anon --json", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "\"memfd:brood:kept\""));
        assert_null(strstr(out, "stray"));
        close(kept);
        close(stray);
}

/* In a child: become uid 65534, map a brood memfd and close its fd, and
 * run `brood ls --anon --json`.  Exit 0 when it lists the memfd with its
 * size, mode and owner as null (unknown), 77 when that user may not run the
 * checkout's binary, else a code naming the failed step. */
static int ls_maps_only_as_nobody(void)
{
        static char out[65536];
        const char *e;
        void *m;
        int fd, st;

        /* Dumpable again (become()), or /proc/PID/maps stays root's and
         * the memfd is invisible to that user too. */
        if (become(65534) < 0)
                return 100;
        fd = memfd_create("brood:maponly", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 8192) < 0)
                return 101;
        m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
                return 102;
        close(fd);
        st = run_brood("ls --anon --json", out, sizeof(out));
        if (st)
                return st == 126 ? 77 : 105;    /* 126: the shell may not run it */
        e = strstr(out, "\"memfd:brood:maponly\"");
        if (!e)
                return 106;
        if (!strstr(e, "\"size\":null,\"mode\":null,\"uid\":null"))
                return 107;
        munmap(m, 8192);
        return 0;
}

/* A child that runs @setup(@arg) and holds what it set up until it is
 * killed (it dies with the test, even one that fails before its kill):
 * its pid, once @setup is done. */
static pid_t holding_child(int (*setup)(void *arg), void *arg)
{
        int p[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || setup(arg) < 0)
                        _exit(1);
                (void)!write(p[1], "x", 1);
                for (;;)
                        pause();
        }
        close(p[1]);
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

static int hold_pool_lock(void *pool)
{
        return brd__pool_test_die_locked(pool, 0);
}

/* The producer of handle @prod: 3 messages of 100 B, then it holds on. */
static int produce_three(void *prod)
{
        struct brd_ring *w;
        char msg[100] = { 0 };
        int i;

        if (brd_ring_attach(prod, &w) < 0)
                return -1;
        for (i = 0; i < 3; i++)
                if (brd_ring_send(w, msg, sizeof(msg), -1) < 0)
                        return -1;
        return 0;
}

/*
 * ls --anon reads a pool without its lock, from a copy of its metadata:
 * with the lock held by a live process (one stopped inside a call, say),
 * its figures still show, and the lock word stays as that process left
 * it.  It took the lock: 2 s of waiting per such pool and no figures, and
 * as root it wrote into every user's pools.
 */
static void test_ls_anon_pool_needs_no_lock(void **state)
{
        static char out[65536];
        struct brd_pool_hdr *h;
        struct brd_pool *pool;
        AO_t before;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_pool_create(1 << 20, 0, &pool), 0);
        assert_true(brd_pool_alloc(pool, 100) > 0);
        assert_true(brd_pool_alloc(pool, 200) > 0);
        assert_true(brd_pool_alloc(pool, 5000) > 0);
        h = brd__pool_base(pool);
        pid = holding_child(hold_pool_lock, pool);
        before = AO_load(&h->lock);
        assert_true(before != 0);
        assert_int_equal(run_brood("ls --anon", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "in 3 blocks"));
        assert_int_equal(AO_load(&h->lock), before);
        kill(pid, SIGKILL);
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        brd_pool_close(pool);
}

static void test_ls_anon_rings_and_pools_reap_reports_dead_peer(void **state)
{
        static char out[65536];
        struct brd_handle prod, cons;
        struct brd_ring *r;
        struct brd_pool *pool;
        char want[128];
        pid_t pid;

        assert_int_equal(brd_pool_create(1 << 20, 0, &pool), 0);
        assert_true(brd_pool_alloc(pool, 100) > 0);
        assert_true(brd_pool_alloc(pool, 5000) > 0);
        assert_int_equal(brd_ring_create(16384, 0, &prod, &cons), 0);
        assert_int_equal(brd_ring_attach(&cons, &r), 0);
        pid = holding_child(produce_three, &prod);

        assert_int_equal(run_brood("ls --anon", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "producer %d alive, consumer %d alive", (int)pid, (int)getpid());
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "ring 336/16384 bytes filled"));   /* 3 x (8 + 100 -> 112) */
        assert_non_null(strstr(out, "in 2 blocks"));
        assert_int_equal(run_brood("ls --anon --json", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "\"fill\":336"));
        assert_non_null(strstr(out, "\"blocks\":2}"));
        /* No creator is named, so none is alive or dead (it said false). */
        {
                const char *e = strstr(out, "\"name\":\"memfd:brood:ring\"");

                assert_non_null(e);
                assert_non_null(strstr(e, "\"creator\":0,\"creator_alive\":null,"));
                assert_null(strstr(out, "\"anonymous\":true,\"creator\":0,\"creator_alive\":false"));
        }

        if (geteuid() == 0) {
                /* As another user: it works, on what that user may see
                 * (none of root's fds or maps), and says nothing of ours. */
                int q[2], st;
                pid_t who;
                ssize_t got;

                assert_int_equal(pipe2(q, O_CLOEXEC), 0);
                who = fork();
                assert_true(who >= 0);
                if (who == 0) {
                        char *argv[] = { (char *)getenv("BRD_BROOD"), "ls", "--anon", NULL };

                        if (dup2(q[1], 1) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(100);
                        execv(argv[0], argv);
                        /* A checkout that user may not enter: nothing to check. */
                        _exit(errno == EACCES ? 77 : 101);
                }
                close(q[1]);
                got = read(q[0], out, sizeof(out) - 1);
                close(q[0]);
                st = t_wait_child(who);
                if (st != 77) {
                        assert_int_equal(st, 0);
                        assert_true(got > 0);
                        out[got] = '\0';
                        assert_non_null(strstr(out, "CREATOR"));
                        assert_null(strstr(out, "memfd:brood:ring"));
                        assert_null(strstr(out, "memfd:brood:pool"));
                }
                /* A memfd that user's own process only maps (fd closed):
                 * listed, its size unknown (map_files needs privileges), not 0. */
                who = fork();
                assert_true(who >= 0);
                if (who == 0)
                        _exit(ls_maps_only_as_nobody());
                st = t_wait_child(who);
                if (st != 77)
                        assert_int_equal(st, 0);
        }

        kill(pid, SIGKILL);
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        assert_int_equal(run_brood("ls --anon", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "producer %d DEAD", (int)pid);
        assert_non_null(strstr(out, want));
        assert_int_equal(run_brood("reap --dry-run", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "producer %d died without closing", (int)pid);
        assert_non_null(strstr(out, want));

        brd_ring_close(r);
        brd_handle_close(&prod);
        brd_handle_close(&cons);
        brd_pool_close(pool);
}

/* Field 3 of /proc/@pid/stat: the state of its main thread ('\0' if none). */
static char leader_state(pid_t pid)
{
        char path[64], buf[512], *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return '\0';
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return '\0';
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : '\0';
}

static int leaderless_release = -1;

/* The holder's last thread: lives until its pipe's EOF. */
static void *leaderless_thread(void *arg)
{
        char c;

        (void)arg;
        while (read(leaderless_release, &c, 1) < 0 && errno == EINTR)
                ;
        _exit(0);
}

#define AS_OUT (4 * T_SHARED_PAGE)

/* brood @args run by @uid (0: as we are) in a forked child: its exit
 * status, its output in @out (AS_OUT bytes, shared with the child). */
static int run_brood_as(uid_t uid, const char *args, char *out)
{
        pid_t c = t_fork();

        assert_true(c >= 0);
        if (c == 0) {
                static char buf[AS_OUT];
                int st;

                if (uid && become(uid) < 0)
                        _exit(120);
                st = run_brood(args, buf, sizeof(buf));
                memcpy(out, buf, sizeof(buf));
                _exit(st < 0 ? 121 : st);
        }
        return t_wait_child(c);
}

/*
 * A live process that maps a dead creator's segment after its main thread
 * exited (pthread_exit) while another thread runs on: /proc/PID/fd and
 * /proc/PID/maps, the main thread's, are empty, its thread's are not.  ls
 * names it as a holder, reap keeps the segment; once it exits, reap
 * removes it.  As root, and as the user all of it belongs to (@uid), who
 * cannot read a leaderless process's /proc/PID/fd (root's once its memory
 * is gone): that process was counted unreadable, and reap kept every
 * segment and exited 1.
 */
static void leaderless_holder(uid_t uid)
{
        char name[256], want[64], *out;
        int q[2], rc;
        pid_t h;

        out = mmap(NULL, AS_OUT, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(out != MAP_FAILED);

        dead_creator(name, sizeof(name));
        if (uid) {
                char path[300];

                snprintf(path, sizeof(path), "/dev/shm%s", name);
                assert_int_equal(chown(path, uid, uid), 0);
        }
        assert_int_equal(pipe2(q, O_CLOEXEC), 0);
        h = t_fork();
        assert_true(h >= 0);
        if (h == 0) {
                struct brd_seg *s;
                pthread_t t;

                close(q[1]);
                leaderless_release = q[0];
                if (uid && become(uid) < 0)
                        _exit(3);
                if (brd_seg_sigbus_guard() < 0 || brd_seg_open(name, &s) < 0)
                        _exit(1);
                memcpy(brd_seg_addr(s), "precious", 9);
                if (pthread_create(&t, NULL, leaderless_thread, NULL))
                        _exit(2);
                pthread_exit(NULL);
        }
        close(q[0]);
        /* The main thread is gone (a zombie leader) while the process lives. */
        T_UNTIL(leader_state(h) == 'Z');
        assert_int_equal(kill(h, 0), 0);

        rc = run_brood_as(uid, "ls", out);
        if (uid && rc == 126) {
                /* A checkout that user may not enter: nothing to check. */
                close(q[1]);
                assert_int_equal(t_wait_child(h), 0);
                shm_unlink(name);
                munmap(out, AS_OUT);
                skip();
        }
        assert_int_equal(rc, 0);
        {
                const char *line = strstr(out, name + 1);

                assert_non_null(line);
                while (line > out && line[-1] != '\n')
                        line--;
                assert_int_equal(strncmp(line + 9, "dead", 4), 0);
                /* HOLDERS column: the holder's pid, not "-". */
                snprintf(want, sizeof(want), "%d", (int)h);
                assert_int_equal(strncmp(line + 30, want, strlen(want)), 0);
        }
        assert_int_equal(run_brood_as(uid, "reap", out), 0);
        assert_null(strstr(out, name));
        assert_true(exists(name));

        close(q[1]);
        assert_int_equal(t_wait_child(h), 0);
        assert_int_equal(run_brood_as(uid, "reap", out), 0);
        assert_non_null(strstr(out, name));
        assert_false(exists(name));
        munmap(out, AS_OUT);
}

static void test_reap_keeps_segment_of_leaderless_holder(void **state)
{
        (void)state;
        leaderless_holder(0);
        if (geteuid() != 0)
                skip();         /* only root can be another user */
        leaderless_holder(65534);
}

/* The creator in a time namespace: the report and hold pipes. */
struct timens_pipes {
        int rep[2], hold[2];
};

/* The child that made the namespace keeps only its ends of the pipes. */
static int timens_close_ours(void *arg)
{
        struct timens_pipes *t = arg;

        close(t->rep[0]);
        close(t->hold[1]);
        return 0;
}

/* Inside the namespace: create a named segment, report its name, hold it
 * until hold's EOF.  0, or the step that failed. */
static int timens_creator(void *arg)
{
        struct timens_pipes *t = arg;
        struct brd_seg *s;
        char ch;

        if (brd_seg_create("timens", 4096, BRD_SEG_NAMED, &s) < 0)
                return 11;
        if (write(t->rep[1], brd_seg_name(s), strlen(brd_seg_name(s))) < 0)
                return 12;
        close(t->rep[1]);
        while (read(t->hold[0], &ch, 1) < 0 && errno == EINTR)
                ;
        brd_seg_close(s);       /* the creator unlinks its name */
        return 0;
}

/*
 * A creator in a time namespace with a boottime offset names its segment
 * with its start time as the initial time namespace sees it, so that ls
 * and reap outside take it for alive (they took it for dead, the start
 * time they read being 100000 s earlier).  Skipped without the privilege
 * to make a time namespace.
 */
static void test_ls_creator_in_time_namespace(void **state)
{
        char name[256] = "", out[8192];
        struct timens_pipes t;
        ssize_t n;
        pid_t c;
        int rc;

        (void)state;
        assert_int_equal(pipe2(t.rep, O_CLOEXEC), 0);
        assert_int_equal(pipe2(t.hold, O_CLOEXEC), 0);
        c = t_fork_in_new_timens(100000, timens_close_ours, timens_creator, &t);
        assert_true(c >= 0);
        close(t.rep[1]);
        close(t.hold[0]);
        n = read(t.rep[0], name, sizeof(name) - 1);
        close(t.rep[0]);
        if (n <= 0) {
                close(t.hold[1]);
                rc = t_wait_child(c);
                if (rc == T_EXIT_SKIP)
                        skip();
                fail_msg("creator in a time namespace: exit %d", rc);
        }
        name[n] = '\0';
        ls_state_is(name, "alive");
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_null(strstr(out, name));
        assert_true(exists(name));
        close(t.hold[1]);
        assert_int_equal(t_wait_child(c), 0);
        assert_false(exists(name));
}

/* As pid 1 of a new pid namespace that kept the parent's /proc: brood reap
 * removes nothing (exit 1), ls judges nothing ("other").  0, or the step
 * that failed. */
static int reap_with_foreign_proc(void *arg)
{
        const char *dead = arg;
        static char out[8192];
        const char *line;

        if (t_run_brood("reap", true, out, sizeof(out)) != 1 || !strstr(out, "/proc is not"))
                return 10;
        if (t_run_brood("ls 2>/dev/null", false, out, sizeof(out)) != 0)
                return 11;
        line = strstr(out, dead + 1);
        if (!line)
                return 12;
        while (line > out && line[-1] != '\n')
                line--;
        if (strncmp(line + 9, "other", 5))
                return 13;
        return 0;
}

/*
 * With a /proc of another pid namespace (unshare -pf without
 * --mount-proc), /proc/N is not our process N: a dead creator's segment
 * could be held by a process that /proc hides, or a live creator taken for
 * dead.  reap refuses, the name stays.
 */
static void test_reap_refuses_foreign_proc(void **state)
{
        char dead[256];
        int rc;

        (void)state;
        dead_creator(dead, sizeof(dead));
        rc = t_run_in_new_pidns(reap_with_foreign_proc, dead);
        if (rc != T_EXIT_SKIP)
                assert_int_equal(rc, 0);
        assert_true(exists(dead));
        assert_int_equal(shm_unlink(dead), 0);
        if (rc == T_EXIT_SKIP)
                skip();
}

/* ls --anon and reap of a scan that saw a hostile process's fds: each must
 * end well within this (a blocked open() never does). */
#define HOSTILE_RUN_MS 10000

/* `brood ls --anon` and `brood reap --dry-run`, each bounded: 0 for both, or
 * the first one's failure (-2: it hung and was killed). */
static int ls_and_reap(char *out, size_t cap)
{
        static const char *const ls[] = { "ls", "--anon", NULL };
        static const char *const reap[] = { "reap", "--dry-run", NULL };
        int rc = t_run_brood_within(ls, HOSTILE_RUN_MS, out, cap);

        return rc ? rc : t_run_brood_within(reap, HOSTILE_RUN_MS, out, cap);
}

/*
 * A FIFO whose /proc link reads "/memfd:brood:ring", as a ring's memfd does:
 * made in a tmpfs mounted over /tmp in a mount namespace of its own, which
 * is then detached, so that its path reads from that mount's root.  Held
 * for reading, with no writer: a plain open() of it waits for one forever.
 * Its fd goes to @ready_w; it lives until @go_r's EOF.  0, 77 without the
 * privilege to mount, else the failed step.
 */
static int hold_fifo_named_like_ring(int ready_w, int go_r)
{
        int fd;
        char c;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("brood-test", "/tmp", "tmpfs", 0, "mode=0700") < 0)
                return T_EXIT_SKIP;
        if (mkfifo("/tmp/memfd:brood:ring", 0600) < 0)
                return 10;
        fd = open("/tmp/memfd:brood:ring", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || umount2("/tmp", MNT_DETACH) < 0)
                return 11;
        if (write(ready_w, &fd, sizeof(fd)) != sizeof(fd))
                return 12;
        while (read(go_r, &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

/*
 * ls --anon and reap open the "ring" memfds they find to read their
 * headers.  A FIFO that reads like one is no memfd: they skip it, and end
 * (they opened it with a blocking open() and hung there for good).
 */
static void test_ls_anon_skips_fifo_named_like_ring(void **state)
{
        static char out[65536];
        char link[64], target[128];
        int ready[2], go[2], fd, rc;
        ssize_t n;
        pid_t h;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        h = t_fork();
        assert_true(h >= 0);
        if (h == 0) {
                close(ready[0]);
                close(go[1]);
                _exit(hold_fifo_named_like_ring(ready[1], go[0]));
        }
        close(ready[1]);
        close(go[0]);
        n = read(ready[0], &fd, sizeof(fd));
        close(ready[0]);
        if (n != sizeof(fd)) {
                close(go[1]);
                rc = t_wait_child(h);
                if (rc == T_EXIT_SKIP)
                        skip();
                fail_msg("the FIFO's holder: exit %d", rc);
        }
        /* The premise: it reads like a ring's memfd. */
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)h, fd);
        n = readlink(link, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "/memfd:brood:ring");

        rc = ls_and_reap(out, sizeof(out));
        close(go[1]);
        assert_int_equal(t_wait_child(h), 0);
        assert_int_equal(rc, 0);
}

/*
 * ls and reap, run again and again (4 times at least, for 1.5 s) while a
 * child runs @hostile until told to stop: each run must end, and well.
 */
static void ls_and_reap_against(int (*hostile)(volatile int *stop))
{
        static char out[65536];
        volatile int *stop = t_shared_page();
        int64_t end = t_now_ms() + 1500;
        int runs = 0, rc = 0;
        pid_t h;

        h = t_fork();
        assert_true(h >= 0);
        if (h == 0)
                _exit(hostile(stop));
        while (rc == 0 && (runs < 4 || t_now_ms() < end)) {
                rc = ls_and_reap(out, sizeof(out));
                runs++;
        }
        *stop = 1;
        assert_int_equal(t_wait_child(h), 0);
        t_shared_page_free((void *)stop);
        if (rc)
                fail_msg("run %d: exit %d", runs, rc);
}

/* In a child: fd 100 swaps between a memfd labelled "ring" and a FIFO held
 * for reading without a writer (its name gone at once) until *@stop. */
static int swap_ring_and_fifo(volatile int *stop)
{
        char dir[] = "/tmp/brood-test-fifo-XXXXXX", path[64];
        int m = memfd_create("brood:ring", MFD_CLOEXEC), f;

        if (m < 0 || ftruncate(m, 4096) < 0 || !mkdtemp(dir))
                return 10;
        snprintf(path, sizeof(path), "%s/fifo", dir);
        f = mkfifo(path, 0600) == 0 ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
        unlink(path);
        rmdir(dir);
        if (f < 0)
                return 11;
        while (!*stop)
                if (dup2(m, 100) < 0 || dup2(f, 100) < 0)
                        return 12;
        return 0;
}

/*
 * The same when fd N is a ring's memfd as the scan reads /proc/PID/fd, and a
 * FIFO by the time the header is read: the scan's file is opened or nothing.
 * The swap is timed by nobody: ls and reap run against it for a while, and
 * each must end (before, about every other run hung).
 */
static void test_ls_anon_survives_fd_swapped_to_fifo(void **state)
{
        ls_and_reap_against(swap_ring_and_fifo);
}

/* In a child: a memfd labelled "ring", unsealed, that grows to a page and
 * shrinks to nothing over and over until *@stop. */
static int truncate_ring_in_loop(volatile int *stop)
{
        int m = memfd_create("brood:ring", MFD_CLOEXEC);

        if (m < 0)
                return 10;
        while (!*stop)
                if (ftruncate(m, 4096) < 0 || ftruncate(m, 0) < 0)
                        return 11;
        return 0;
}

/*
 * A "ring" memfd that its holder truncates as ls --anon and reap read its
 * header: they read what is there, or nothing, and live on (they mapped the
 * header, and a page gone under the mapping was SIGBUS, exit 135).
 */
static void test_ls_anon_survives_ring_truncated(void **state)
{
        ls_and_reap_against(truncate_ring_in_loop);
}

/* Shared with the child of test_reap_keeps_segment_of_undumpable_holder(). */
struct undumpable {
        char name[256];                 /* the segment, for the test to clean up */
        char out[8192];                 /* brood's last output, for the failure message */
};

/* A dead creator's named segment: made by a child that exits without
 * closing it.  Its name into @u->name; 0, or -1. */
static int leave_named_segment(struct undumpable *u)
{
        int p[2], st;
        ssize_t n;
        pid_t g;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        g = fork();
        if (g < 0)
                return -1;
        if (g == 0) {
                struct brd_seg *s;

                if (brd_seg_create("unproven", 4096, BRD_SEG_NAMED, &s) < 0)
                        _exit(1);
                (void)!write(p[1], brd_seg_name(s), strlen(brd_seg_name(s)));
                _exit(0);
        }
        close(p[1]);
        n = read(p[0], u->name, sizeof(u->name) - 1);
        close(p[0]);
        u->name[n > 0 ? n : 0] = '\0';
        return waitpid(g, &st, 0) == g && st == 0 && n > 0 ? 0 : -1;
}

/* A child holding @name by an fd, not dumpable: says so on @ready, lives
 * until @release's EOF. */
static pid_t hold_undumpable(const char *name, const int ready[2], const int release[2])
{
        pid_t g = fork();
        char c;
        int fd;

        if (g != 0)
                return g;
        close(ready[0]);
        close(release[1]);
        fd = shm_open(name, O_RDONLY, 0);
        if (fd < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
                _exit(1);
        (void)!write(ready[1], "r", 1);
        while (read(release[0], &c, 1) < 0 && errno == EINTR)
                ;
        _exit(0);
}

/*
 * As a user that is not root (uid 65534 if we are root): a dead creator's
 * segment held by a process of that user that is not dumpable, whose fds
 * and maps that user may not read.  reap keeps it, names the process and
 * exits 1; once the holder is gone it removes it.  0, 77 when that user
 * may not run the binary, else the failed step.
 */
static int reap_with_undumpable_holder(struct undumpable *u)
{
        char c, want[64];
        int ready[2], release[2], rc;
        pid_t g;

        if (geteuid() == 0 && become(65534) < 0)
                return 100;
        if (leave_named_segment(u) < 0 || pipe2(ready, O_CLOEXEC) < 0 ||
            pipe2(release, O_CLOEXEC) < 0)
                return 101;
        g = hold_undumpable(u->name, ready, release);
        close(ready[1]);
        close(release[0]);
        if (g < 0 || read(ready[0], &c, 1) != 1)
                return 102;
        rc = t_run_brood("reap", true, u->out, sizeof(u->out));
        if (rc == 126)
                return T_EXIT_SKIP;
        snprintf(want, sizeof(want), "process %d could not be read", (int)g);
        if (rc != 1 || !strstr(u->out, want) || !strstr(u->out, "not proven unheld"))
                return 103;
        if (!exists(u->name))
                return 104;
        close(release[1]);
        if (t_wait_child(g) != 0)
                return 105;
        if (t_run_brood("reap", true, u->out, sizeof(u->out)) != 0 || exists(u->name))
                return 106;
        return 0;
}

/*
 * A holder that is not dumpable hides its fds and maps from a reap that is
 * not root: reap cannot tell that nobody holds a dead creator's segment,
 * and keeps it (it skipped the process and removed the segment).
 */
static void test_reap_keeps_segment_of_undumpable_holder(void **state)
{
        struct undumpable *u = mmap(NULL, sizeof(*u), PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pid_t c;
        int rc;

        assert_true(u != MAP_FAILED);
        u->name[0] = '\0';
        c = t_fork();
        assert_true(c >= 0);
        if (c == 0)
                _exit(reap_with_undumpable_holder(u));
        rc = t_wait_child(c);
        if (u->name[0] && exists(u->name))
                shm_unlink(u->name);
        if (rc != 0 && rc != T_EXIT_SKIP)
                print_message("brood reap said:\n%s", u->out);
        munmap(u, sizeof(*u));
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

/* The thread of a holder that holds a segment by an fd in a table of its
 * own (unshare(CLONE_FILES)), until EOF on its release pipe. */
struct own_table {
        const char *name;
        int ready_w, release_r;
};

static void *own_table_thread(void *arg)
{
        struct own_table *o = arg;
        char c;
        int fd;

        if (unshare(CLONE_FILES) < 0)
                return (void *)1;
        fd = shm_open(o->name, O_RDONLY, 0);
        if (fd < 0)
                return (void *)2;
        (void)!write(o->ready_w, "r", 1);
        while (read(o->release_r, &c, 1) < 0 && errno == EINTR)
                ;
        close(fd);
        return NULL;
}

/* Does /proc/@pid/fd (the leader's table) show a link to @name? */
static bool leader_has_fd_of(pid_t pid, const char *name)
{
        char path[64], link[96], target[512];
        struct dirent *d;
        bool found = false;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        dir = opendir(path);
        assert_non_null(dir);
        while ((d = readdir(dir))) {
                ssize_t n;

                snprintf(link, sizeof(link), "%s/%.16s", path, d->d_name);
                n = readlink(link, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        found |= strstr(target, name) != NULL;
                }
        }
        closedir(dir);
        return found;
}

/*
 * A dead creator's segment held only by an fd of a thread that has its own
 * fd table: the leader's /proc/PID/fd does not show it, the thread's does.
 * ls names the process as a holder and reap keeps the segment (the threads
 * were read only when the leader showed nothing, and reap removed it).
 */
static void test_reap_keeps_segment_held_by_thread_with_own_fd_table(void **state)
{
        char name[256], out[8192], want[64];
        int ready[2], release[2];
        pid_t h;
        char c;

        dead_creator(name, sizeof(name));
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(release, O_CLOEXEC), 0);
        h = t_fork();
        assert_true(h >= 0);
        if (h == 0) {
                struct own_table o = { name, ready[1], release[0] };
                pthread_t t;
                void *res;

                close(ready[0]);
                close(release[1]);
                if (pthread_create(&t, NULL, own_table_thread, &o) || pthread_join(t, &res))
                        _exit(3);
                _exit((int)(intptr_t)res);
        }
        close(ready[1]);
        close(release[0]);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        assert_false(leader_has_fd_of(h, name + 1));    /* the premise */

        assert_int_equal(run_brood("ls --json", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "\"holders\":[%d]", (int)h);
        assert_non_null(strstr(out, want));
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_null(strstr(out, name));
        assert_true(exists(name));

        close(release[1]);
        assert_int_equal(t_wait_child(h), 0);
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_non_null(strstr(out, name));
        assert_false(exists(name));
}

/* A pid whose process is gone (forked, exited, reaped): a dead creator's;
 * our pid namespace's inode in *@ret_ns. */
static pid_t gone_pid(unsigned long long *ret_ns)
{
        struct stat st;
        pid_t dead = fork();

        assert_true(dead >= 0);
        if (dead == 0)
                _exit(0);
        assert_int_equal(t_wait_child(dead), 0);
        assert_int_equal(stat("/proc/self/ns/pid", &st), 0);
        *ret_ns = (unsigned long long)st.st_ino;
        return dead;
}

/* A /dev/shm entry @name of mode @mode. */
static void make_shm(const char *name, mode_t mode)
{
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/*
 * reap takes a name for brood's only as brood writes it: no leading zero,
 * no more digits than a pid or a uint64_t has.  Another spelling (it took
 * "0123" for pid 123) is no name of brood's; and spelled with enough zeros
 * to be 255 characters long, it was cut short to 254 in the scan's buffer,
 * and reap unlinked that other name, a file of mode 0644 it never takes.
 * The longest name brood can write is still reaped.
 */
static void test_reap_takes_only_names_brood_writes(void **state)
{
        static const char hex[] = "0123456789abcdef0123456789abcdef";
        char lead[300], wide[300], cut[300], other[300], longest[300], label[65], out[16384];
        unsigned long long ns;
        pid_t dead;
        int n;

        dead = gone_pid(&ns);

        snprintf(lead, sizeof(lead), "/brood.0%d.1.%llu.%s.lead", (int)dead, ns, hex);
        /* 21 digits: past any uint64_t */
        snprintf(wide, sizeof(wide), "/brood.%d.100000000000000000000.%llu.%s.wide", (int)dead,
                 ns, hex);
        /* Its start time padded with zeros to a name of 255 characters. */
        n = snprintf(cut, sizeof(cut), "/brood.%d.", (int)dead);
        n += snprintf(cut + n, sizeof(cut) - (size_t)n, "%0*d", 256 - n -
                      snprintf(NULL, 0, "1.%llu.%s.cutx", ns, hex), 0);
        snprintf(cut + n, sizeof(cut) - (size_t)n, "1.%llu.%s.cutx", ns, hex);
        assert_int_equal(strlen(cut + 1), NAME_MAX);
        snprintf(other, sizeof(other), "%.*s", (int)strlen(cut) - 1, cut);
        memset(label, 'L', 64);
        label[64] = '\0';
        snprintf(longest, sizeof(longest), "/brood.%d.18446744073709551615.%llu.%s.%s",
                 (int)dead, ns, hex, label);

        make_shm(lead, 0600);
        make_shm(wide, 0600);
        make_shm(cut, 0600);
        make_shm(other, 0644);
        make_shm(longest, 0600);
        assert_int_equal(run_brood("ls", out, sizeof(out)), 0);
        assert_null(strstr(out, ".lead"));
        assert_null(strstr(out, ".wide"));
        assert_null(strstr(out, ".cut"));
        assert_non_null(strstr(out, label));
        assert_int_equal(run_brood("reap", out, sizeof(out)), 0);
        assert_true(exists(lead));
        assert_true(exists(wide));
        assert_true(exists(cut));
        assert_true(exists(other));
        assert_false(exists(longest));
        assert_int_equal(shm_unlink(lead), 0);
        assert_int_equal(shm_unlink(wide), 0);
        assert_int_equal(shm_unlink(cut), 0);
        assert_int_equal(shm_unlink(other), 0);
}

/*
 * A dead creator's segment whose mode its umask narrowed to write only
 * (0200: umask 0577) is reaped by its owner, who cannot open it for
 * reading: reap asked for its lease through a read-only open, got EACCES,
 * kept it, and exited 1 at every run.
 */
static void test_reap_takes_write_only_segment(void **state)
{
        static const char hex[] = "0123456789abcdef0123456789abcdef";
        char name[256], *out;
        unsigned long long ns;
        pid_t dead;
        int fd, rc;

        (void)state;
        if (geteuid() != 0)
                skip();                 /* a file of another uid's */
        out = mmap(NULL, AS_OUT, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(out != MAP_FAILED);
        dead = gone_pid(&ns);
        snprintf(name, sizeof(name), "/brood.%d.1.%llu.%s.narrow", (int)dead, ns, hex);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(fchown(fd, 65534, 65534), 0);
        assert_int_equal(fchmod(fd, 0200), 0);
        close(fd);
        rc = run_brood_as(65534, "reap", out);
        if (exists(name))
                shm_unlink(name);
        if (rc != 0)
                print_message("brood reap said (%d):\n%s", rc, out);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "removed /"));
        munmap(out, AS_OUT);
}

/* ------------------------------------------- a file that refuses root */

#define FUSE_FILE "brood.fuse"          /* named like a segment: scanned */
#define FUSE_FILE_INO 0xfffffff0u      /* no tmpfs file of this test has it */

static void fuse_attr_of(uint64_t nodeid, struct fuse_attr *a)
{
        memset(a, 0, sizeof(*a));
        a->ino = nodeid == FUSE_ROOT_ID ? FUSE_ROOT_ID : FUSE_FILE_INO;
        a->mode = nodeid == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0600;
        a->nlink = nodeid == FUSE_ROOT_ID ? 2 : 1;
        a->uid = a->gid = 65534;
        a->blksize = 4096;
}

/* The file system of the next test, served on @fd until it is unmounted:
 * one empty file, FUSE_FILE, its node 2. */
static void fuse_serve(int fd)
{
        static unsigned char buf[(1 << 17) + 4096];
        struct {
                struct fuse_out_header h;
                union {
                        struct fuse_init_out init;
                        struct fuse_entry_out entry;
                        struct fuse_attr_out attr;
                        struct fuse_open_out open;
                } u;
        } out;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                const struct fuse_in_header *in = (const void *)buf;
                size_t len = 0;

                if (n < 0 && (errno == EINTR || errno == ENOENT))
                        continue;       /* ENOENT: a request interrupted */
                if (n < (ssize_t)sizeof(*in))
                        _exit(n < 0 && errno == ENODEV ? 0 : 1);       /* unmounted */
                memset(&out, 0, sizeof(out));
                out.h.unique = in->unique;
                switch (in->opcode) {
                case FUSE_INIT: {
                        const struct fuse_init_in *ii = (const void *)(in + 1);

                        out.u.init.major = FUSE_KERNEL_VERSION;
                        out.u.init.minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ?
                                           ii->minor : FUSE_KERNEL_MINOR_VERSION;
                        out.u.init.max_readahead = ii->max_readahead;
                        out.u.init.max_write = 4096;
                        out.u.init.max_background = 1;
                        out.u.init.congestion_threshold = 1;
                        len = sizeof(out.u.init);
                        break;
                }
                case FUSE_LOOKUP:
                        if (in->nodeid != FUSE_ROOT_ID || strcmp((const char *)(in + 1), FUSE_FILE)) {
                                out.h.error = -ENOENT;
                                break;
                        }
                        out.u.entry.nodeid = 2;
                        fuse_attr_of(2, &out.u.entry.attr);
                        len = sizeof(out.u.entry);
                        break;
                case FUSE_GETATTR:
                        fuse_attr_of(in->nodeid, &out.u.attr.attr);
                        len = sizeof(out.u.attr);
                        break;
                case FUSE_OPEN:
                        len = sizeof(out.u.open);
                        break;
                case FUSE_FLUSH:
                case FUSE_RELEASE:
                        break;
                case FUSE_FORGET:
                case FUSE_BATCH_FORGET:
                case FUSE_INTERRUPT:
                        continue;       /* no reply */
                default:
                        out.h.error = -ENOSYS;
                }
                out.h.len = (uint32_t)(sizeof(out.h) + len);
                if (write(fd, &out, out.h.len) < 0 && errno != ENOENT)
                        _exit(1);
        }
}

/*
 * A user's open file named like a segment, on a FUSE file system mounted
 * as that user's without allow_other: the kernel refuses every other user
 * its attributes, root included.  reap still removes a dead creator's
 * segment: it took the refusal for a process it could not read, kept every
 * segment and failed (1), for as long as the user kept the file open.
 */
static void test_reap_not_stopped_by_file_refusing_root(void **state)
{
        char dir[] = "/tmp/brood-test-fuse-XXXXXX", opts[96], path[128], dead[256];
        static char out[8192];
        bool refused, reaped = false, ok;
        pid_t srv, holder, a;
        int fuse, go[2], rc;
        struct stat st;
        char c;

        (void)state;
        if (geteuid() != 0)
                skip();
        fuse = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fuse < 0)
                skip();                 /* no FUSE here (a container) */
        assert_non_null(mkdtemp(dir));
        snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=65534,group_id=65534", fuse);
        if (mount("brood-test", dir, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
                close(fuse);
                assert_int_equal(rmdir(dir), 0);
                skip();
        }
        srv = t_fork();
        assert_true(srv >= 0);
        if (srv == 0)
                fuse_serve(fuse);
        close(fuse);
        snprintf(path, sizeof(path), "%s/%s", dir, FUSE_FILE);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        holder = t_fork();
        assert_true(holder >= 0);
        if (holder == 0) {
                close(go[0]);
                if (setgid(65534) < 0 || setuid(65534) < 0 || open(path, O_RDONLY) < 0 ||
                    write(go[1], "k", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(go[1]);
        rc = (int)read(go[0], &c, 1);
        close(go[0]);
        /* Nothing asserted until the mount is gone: a failure leaves none. */
        refused = false;
        dead[0] = out[0] = '\0';
        if (rc == 1) {
                /* What reap meets: root is refused. */
                refused = stat(path, &st) < 0 && errno == EACCES;
                a = doomed_creator(dead, sizeof(dead), NULL);
                kill(a, SIGKILL);
                rc = t_wait_child(a) == 128 + SIGKILL ? run_brood("reap", out, sizeof(out)) : -2;
                reaped = !exists(dead) && strstr(out, dead);
                if (exists(dead))
                        shm_unlink(dead);
        } else {
                rc = -1;
        }
        kill(holder, SIGKILL);
        ok = t_wait_child(holder) == 128 + SIGKILL;
        ok &= umount2(dir, MNT_DETACH) == 0;
        ok &= t_wait_child(srv) == 0;
        ok &= rmdir(dir) == 0;
        if (rc != 0)
                print_message("brood reap said (%d):\n%s", rc, out);
        assert_true(ok);
        assert_true(refused);
        assert_int_equal(rc, 0);
        assert_true(reaped);
}

/* ---------------------------------------- paths longer than PATH_MAX */

#define LONG_DIRS 20                    /* of 200 'a's, then one more */
#define MAPS_PATH_AT 73                 /* a maps line's path column (64-bit) */
#define MAPS_CUT (PATH_MAX + 127)       /* where a line read by fgets() into
                                         * PATH_MAX + 128 bytes was cut */

/* A file at a path longer than PATH_MAX, which any user can make (each
 * call takes one name), so that the kernel prints it in maps but will not
 * in readlink(/proc/PID/fd/N): ENAMETOOLONG.  Its last directory's name
 * ends, at MAPS_CUT of the file's maps line, with a maps line of its own
 * naming segment @fake (dev and inode), its file "brood.fake" completing
 * the path: the rest of a cut line that reads as a mapping of @fake. */
struct long_tree {
        char base[32];
        char a[201];                    /* the 200s' name */
        char last[256];
};

/* Open the tree's directories, base first: fds in @dir (LONG_DIRS + 2).
 * Only while making or removing the tree: an fd of a deep directory is
 * itself at a path too long to print, which would hold the scan's eye. */
static void long_tree_open(const struct long_tree *t, int *dir, bool make)
{
        int i;

        dir[0] = open(t->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dir[0] >= 0);
        for (i = 1; i <= LONG_DIRS + 1; i++) {
                const char *name = i <= LONG_DIRS ? t->a : t->last;

                if (make)
                        assert_int_equal(mkdirat(dir[i - 1], name, 0700), 0);
                dir[i] = openat(dir[i - 1], name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(dir[i] >= 0);
        }
}

static int long_tree_make(struct long_tree *t, const char *fake)
{
        int i, fd, dir[LONG_DIRS + 2];
        char tail[128], path[320];
        struct stat st;
        size_t b;

        snprintf(t->base, sizeof(t->base), "/tmp/brood-test-long-XXXXXX");
        assert_non_null(mkdtemp(t->base));
        snprintf(path, sizeof(path), "/dev/shm%s", fake);
        assert_int_equal(stat(path, &st), 0);
        memset(t->a, 'a', 200);
        t->a[200] = '\0';
        snprintf(tail, sizeof(tail), "10000-11000 r--s 00000000 %02x:%02x %lu ",
                 major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
        b = MAPS_CUT - MAPS_PATH_AT - strlen(t->base) - (size_t)LONG_DIRS * 201 - 1;
        assert_true(b + strlen(tail) < sizeof(t->last));
        memset(t->last, 'b', b);
        snprintf(t->last + b, sizeof(t->last) - b, "%s", tail);
        long_tree_open(t, dir, true);
        fd = openat(dir[LONG_DIRS + 1], "brood.fake", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 4096), 0);
        for (i = 0; i < LONG_DIRS + 2; i++)
                close(dir[i]);
        return fd;
}

static void long_tree_remove(const struct long_tree *t)
{
        int i, dir[LONG_DIRS + 2];

        long_tree_open(t, dir, false);
        assert_int_equal(unlinkat(dir[LONG_DIRS + 1], "brood.fake", 0), 0);
        for (i = LONG_DIRS + 1; i >= 1; i--) {
                close(dir[i]);
                assert_int_equal(unlinkat(dir[i - 1], i <= LONG_DIRS ? t->a : t->last,
                                          AT_REMOVEDIR), 0);
        }
        close(dir[0]);
        assert_int_equal(rmdir(t->base), 0);
}

/* The holder: keeps @fd open, or (@map) only a mapping of it, whose maps
 * line has its path at MAPS_PATH_AT (else exit 3: the cut would not fall
 * where the tree put the fake line). */
static int long_path_holder(int fd, bool map, int ready)
{
        char *line = NULL, want[32];
        size_t cap = 0;
        void *m = NULL;
        int ok = 0;
        FILE *f;

        if (map) {
                m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
                if (m == MAP_FAILED)
                        return 1;
                close(fd);
                f = fopen("/proc/self/maps", "re");
                if (!f)
                        return 2;
                snprintf(want, sizeof(want), "%lx-", (unsigned long)m);
                while (getline(&line, &cap, f) > 0)
                        if (!strncmp(line, want, strlen(want)))
                                ok = strlen(line) > MAPS_CUT && strchr(line, '/') - line == MAPS_PATH_AT;
                free(line);
                fclose(f);
                if (!ok)
                        return 3;
        }
        if (write(ready, "k", 1) != 1)
                return 4;
        for (;;)
                pause();
}

/*
 * A holder whose fd or mapping is of a file at a path longer than PATH_MAX,
 * which any user can make: reap still removes a dead segment.  Before,
 * readlink()'s ENAMETOOLONG made the holder "could not be read" and reap
 * refused to remove anything (@map false), and the maps line read in two
 * pieces made its second piece a made-up mapping of the dead segment,
 * which kept it (@map true).
 */
static void reap_beside_long_path(bool map)
{
        char dead[256], out[8192];
        struct long_tree t;
        pid_t holder;
        int fd, rdy[2], rc;
        char c;

        dead_creator(dead, sizeof(dead));
        fd = long_tree_make(&t, dead);
        assert_int_equal(pipe2(rdy, O_CLOEXEC), 0);
        holder = t_fork();
        assert_true(holder >= 0);
        if (holder == 0)
                _exit(long_path_holder(fd, map, rdy[1]));
        close(fd);
        close(rdy[1]);
        rc = (int)read(rdy[0], &c, 1);
        close(rdy[0]);
        if (rc != 1)
                assert_int_equal(t_wait_child(holder), 0);      /* says why */
        rc = run_brood("reap", out, sizeof(out));
        if (exists(dead))
                shm_unlink(dead);
        kill(holder, SIGKILL);
        assert_int_equal(t_wait_child(holder), 128 + SIGKILL);
        long_tree_remove(&t);
        if (rc != 0)
                print_message("brood reap said (%d):\n%s", rc, out);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "removed /"));
        assert_non_null(strstr(out, dead));
        assert_null(strstr(out, "kept /"));
}

static void test_reap_beside_fd_of_path_too_long(void **state)
{
        (void)state;
        reap_beside_long_path(false);
}

static void test_reap_beside_mapping_of_crafted_long_path(void **state)
{
        (void)state;
        reap_beside_long_path(true);
}

/* Run in a pid namespace of our own where the user is not root (helpers.c):
 * a process of the user's that the scan cannot read makes reap refuse. */
const bool t_private_pids = true;

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reap_removes_only_dead_unheld),
                cmocka_unit_test(test_reap_keeps_segment_held_through_bind_mount),
                cmocka_unit_test(test_reap_keeps_segment_held_unseen),
                cmocka_unit_test(test_reap_leaves_other_users_segments),
                cmocka_unit_test(test_reap_keeps_segment_when_lease_refused),
                cmocka_unit_test(test_ls_many_holders),
                cmocka_unit_test_setup_teardown(test_ls_holders_total_past_the_array,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_reap_other_pidns),
                cmocka_unit_test(test_reap_creator_pid_reused_in_other_pidns),
                cmocka_unit_test(test_reap_keeps_name_of_unknown_pidns),
                cmocka_unit_test(test_ls_anon_takes_only_brood_names),
                cmocka_unit_test(test_ls_anon_rings_and_pools_reap_reports_dead_peer),
                cmocka_unit_test(test_ls_anon_pool_needs_no_lock),
                cmocka_unit_test(test_ls_ring_other_pidns),
                cmocka_unit_test(test_reap_keeps_segment_of_leaderless_holder),
                cmocka_unit_test(test_ls_creator_in_time_namespace),
                cmocka_unit_test(test_reap_refuses_foreign_proc),
                cmocka_unit_test_setup_teardown(test_ls_anon_skips_fifo_named_like_ring,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_ls_anon_survives_fd_swapped_to_fifo,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_ls_anon_survives_ring_truncated,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_reap_keeps_segment_of_undumpable_holder,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_reap_keeps_segment_held_by_thread_with_own_fd_table,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_reap_takes_only_names_brood_writes,
                                                t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_reap_takes_write_only_segment),
                cmocka_unit_test(test_reap_not_stopped_by_file_refusing_root),
                cmocka_unit_test(test_reap_beside_fd_of_path_too_long),
                cmocka_unit_test(test_reap_beside_mapping_of_crafted_long_path),
        };

        return cmocka_run_group_tests_name("tools-reap", tests, NULL, NULL);
}
