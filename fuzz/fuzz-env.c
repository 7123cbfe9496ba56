/* SPDX-License-Identifier: MIT */
/*
 * fuzz-env: the ways a handle comes in from outside.  The first byte picks
 * one of: brd_handle_from_env() on fuzzed BROOD_HANDLES / BROOD_HANDLES_PID
 * strings; brd_handle_env_encode() then brd_handle_from_env() of fuzzed
 * handles (a round trip); brd_seg_open() of fuzzed names, next to named
 * segments of every wrong kind (empty, wrong mode, a directory, a fifo, a
 * symlink); brd_seg_attach() and brd_pool_attach() of lying handles (wrong
 * kind, fd count, fds of every kind, size, flags).
 *
 * Invariants: every call returns 0 or one of its documented -errno values;
 * parsed handles have a valid kind, open CLOEXEC fds >= 3 and -1 in unused
 * slots, and the variables are gone once they were used; a round trip
 * gives back the handles it encoded; a mapping is as large as its handle
 * says; brd_pool_attach() never accepts a non-pool; no call closes an fd
 * it does not own (the sentinels) or leaks one, except that -EMSGSIZE from
 * brd_handle_from_env() closes the fds of the (valid) description: a run
 * of sentinels from fd 3, which are then opened again.
 *
 * Run: scripts/fuzz.sh env [SECONDS]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "fuzz.h"

#define NSENT 8
#define NTFD 10
/* Past every fd a description can name (3 + 64 handles x 4 fds): the test
 * fds, which brd_handle_from_env() must never reach. */
#define TFD_LO (3 + BRD_HANDLE_MAX_BATCH * BRD_HANDLE_MAX_FDS + 16)
static const int sentinel_lo = 3, sentinel_hi = 3 + NSENT; /* fds [3, 3 + NSENT) are open */
static char pfx[64];                                       /* "fuzzshm.<pid>." */
static int tfd[NTFD]; /* fds of assorted kinds for lying handles */
static const char *tnames[] = { "ok", "empty", "mode", "dir", "fifo", "link", "big" };
/* What brd_seg_open() answers each of them (make_names()). */
static const int topen[] = { 0, -EBADMSG, -EACCES, -EINVAL, -EINVAL, -ELOOP, 0 };

static void shm_path(char *path, size_t size, const char *name)
{
        snprintf(path, size, "/dev/shm/%s%s", pfx, name);
}

static void mk(const char *name, mode_t mode, off_t size)
{
        char path[128];
        int fd;

        shm_path(path, sizeof(path), name);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, size) < 0 || fchmod(fd, mode) < 0)
                FUZZ_FAIL("create %s: %d", path, errno);
        close(fd);
}

static void cleanup(void)
{
        char path[128];

        for (unsigned i = 0; i < sizeof(tnames) / sizeof(tnames[0]); i++) {
                shm_path(path, sizeof(path), tnames[i]);
                if (unlink(path) < 0)
                        rmdir(path);
        }
}

/* The names of runs whose process is gone: one that failed an invariant
 * (abort(): no atexit) left them. */
static void cleanup_dead(void)
{
        DIR *d = opendir("/dev/shm");
        struct dirent *e;
        char path[300];
        long pid;

        if (!d)
                return;
        while ((e = readdir(d))) {
                if (strncmp(e->d_name, "fuzzshm.", 8))
                        continue;
                pid = strtol(e->d_name + 8, NULL, 10);
                if (pid <= 0 || pid > INT_MAX || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
                if (unlink(path) < 0)
                        rmdir(path);
        }
        closedir(d);
}

/* Named segments of every kind brd_seg_open() must refuse (and one it
 * takes), in /dev/shm under a per-process prefix. */
static void make_names(void)
{
        char path[128], target[128];

        cleanup_dead();
        snprintf(pfx, sizeof(pfx), "fuzzshm.%d.", (int)getpid());
        /* Names under our pid can only be a dead process's that never ran
         * its atexit (killed, or a debugger's): ours to remove. */
        cleanup();
        atexit(cleanup);
        mk("ok", 0600, 8192);
        mk("empty", 0600, 0);
        mk("mode", 0644, 8192);
        mk("big", 0600, 1 << 20);
        shm_path(path, sizeof(path), "dir");
        if (mkdir(path, 0700) < 0)
                FUZZ_FAIL("mkdir %s: %d", path, errno);
        shm_path(path, sizeof(path), "fifo");
        if (mkfifo(path, 0600) < 0)
                FUZZ_FAIL("mkfifo %s: %d", path, errno);
        shm_path(path, sizeof(path), "link");
        shm_path(target, sizeof(target), "ok");
        if (symlink(target, path) < 0)
                FUZZ_FAIL("symlink %s: %d", path, errno);
}

static int open_shm(const char *name)
{
        char path[128];

        shm_path(path, sizeof(path), name);
        return open(path, O_RDWR | O_CLOEXEC);
}

static int memfd(const char *name, unsigned flags, off_t size, int seals)
{
        int fd = memfd_create(name, flags | MFD_CLOEXEC);

        if (fd < 0 || ftruncate(fd, size) < 0 || (seals && fcntl(fd, F_ADD_SEALS, seals) < 0))
                FUZZ_FAIL("memfd %s: %d", name, errno);
        return fd;
}

/* fds of every kind a lying handle may carry: memfds sealed or not, a
 * device, a pipe, a directory, named segments, a disk file. */
static void open_test_fds(void)
{
        int p[2];

        tfd[0] = memfd("sealed", MFD_ALLOW_SEALING, 16384,
                       F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        tfd[1] = memfd("unsealed", 0, 16384, 0);
        tfd[2] = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (pipe2(p, O_CLOEXEC) < 0)
                FUZZ_FAIL("pipe2: %d", errno);
        tfd[3] = p[0];
        tfd[4] = p[1];
        tfd[5] = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        tfd[6] = open_shm("ok");
        tfd[7] = open_shm("mode");
        tfd[8] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        tfd[9] = memfd("sealed0", MFD_ALLOW_SEALING, 0, F_SEAL_SHRINK | F_SEAL_GROW);
        for (int i = 0; i < NTFD; i++) {
                int hi = tfd[i] < 0 ? -1 : fcntl(tfd[i], F_DUPFD_CLOEXEC, TFD_LO);

                if (hi < TFD_LO)
                        FUZZ_FAIL("test fd %d: %d", i, errno);
                close(tfd[i]);
                tfd[i] = hi;
        }
}

/* After -EMSGSIZE: the fds closed must be a run of sentinels from fd 3 (the
 * description's); open them again. */
/* The sentinels as an exec leaves inherited fds: not close-on-exec
 * (brd_handle_from_env() takes no other, and marks those it takes). */
static void sentinels_inherited(void)
{
        for (int k = sentinel_lo; k < sentinel_hi; k++)
                if (fcntl(k, F_SETFD, 0) < 0)
                        FUZZ_FAIL("sentinel fd %d: %d", k, errno);
        /* And no other fd a description can name is: the fuzzer's own
         * (libFuzzer keeps some open, not close-on-exec) would be taken as
         * handles, and closed with them on -EMSGSIZE. */
        for (int k = sentinel_hi; k < TFD_LO; k++) {
                int fl = fcntl(k, F_GETFD);

                if (fl >= 0 && !(fl & FD_CLOEXEC))
                        (void)fcntl(k, F_SETFD, fl | FD_CLOEXEC);
        }
}

static void sentinels_reopen(void)
{
        int fd = sentinel_lo;

        while (fd < sentinel_hi && fcntl(fd, F_GETFD) < 0)
                fd++;
        for (int k = fd; k < sentinel_hi; k++)
                if (fcntl(k, F_GETFD) < 0)
                        FUZZ_FAIL("from_env -EMSGSIZE closed fd %d past open fd %d", k, fd);
        for (int k = sentinel_lo; k < fd; k++) {
                int null = open("/dev/null", O_RDONLY);

                if (null < 0 || (null != k && dup2(null, k) != k))
                        FUZZ_FAIL("sentinel fd %d: %d", k, errno);
                if (null != k)
                        close(null);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        make_names();
        /* The names are not brood's own: without the guard even "ok" is -EPERM. */
        if (brd_seg_sigbus_guard() < 0)
                FUZZ_FAIL("sigbus guard: %d", errno);
        /* brd_handle_from_env() takes only fds that are open: the fds a
         * handle may name, 3 and up, are (/dev/null). */
        for (int fd = sentinel_lo; fd < sentinel_hi; fd++)
                if (fcntl(fd, F_GETFD) < 0 && dup2(open("/dev/null", O_RDONLY), fd) != fd)
                        FUZZ_FAIL("sentinel fd %d: %d", fd, errno);
        open_test_fds();
        return 0;
}

static void check_sentinels(void)
{
        for (int fd = sentinel_lo; fd < sentinel_hi; fd++)
                if (fcntl(fd, F_GETFD) < 0)
                        FUZZ_FAIL("sentinel fd %d was closed", fd);
        for (int i = 0; i < NTFD; i++)
                if (fcntl(tfd[i], F_GETFD) < 0)
                        FUZZ_FAIL("test fd %d was closed", tfd[i]);
}

static void env_raw(struct fuzz_in *r)
{
        uint8_t b = fuzz_u8(r), mx = fuzz_u8(r);
        char pidbuf[64], *s = malloc(r->n + 1);
        size_t max = mx % 70;
        struct brd_handle *h = malloc((max ? max : 1) * sizeof(*h));
        int rc;

        memcpy(s, r->p, r->n);
        s[r->n] = '\0';
        r->n = 0;
        if (b & 1) {
                unsetenv(BRD_HANDLE_ENV_PID);
        } else if (b & 2) {
                /* a fuzzed pid string: the first line of the input */
                char *nl = strchr(s, '\n');

                if (nl)
                        *nl = '\0';
                setenv(BRD_HANDLE_ENV_PID, s, 1);
                if (nl)
                        memmove(s, nl + 1, strlen(nl + 1) + 1);
        } else {
                snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
                setenv(BRD_HANDLE_ENV_PID, pidbuf, 1);
        }
        if (b & 4)
                unsetenv(BRD_HANDLE_ENV);
        else
                setenv(BRD_HANDLE_ENV, s, 1);
        sentinels_inherited();
        rc = brd_handle_from_env(max ? h : NULL, max);
        if (rc < 0) {
                if (rc != -EPROTO && rc != -EMSGSIZE && rc != -EINVAL)
                        FUZZ_FAIL("from_env = %d", rc);
                if (rc == -EMSGSIZE)
                        sentinels_reopen();
        } else {
                if ((size_t)rc > max || rc > BRD_HANDLE_MAX_BATCH)
                        FUZZ_FAIL("from_env = %d > max %zu", rc, max);
                for (int i = 0; i < rc; i++) {
                        if (h[i].kind < 1 || h[i].kind > 4 || h[i].nfds > BRD_HANDLE_MAX_FDS)
                                FUZZ_FAIL("from_env: handle %d kind %u nfds %u", i, h[i].kind,
                                          h[i].nfds);
                        for (unsigned k = 0; k < BRD_HANDLE_MAX_FDS; k++) {
                                int fl;

                                if (k >= h[i].nfds) {
                                        if (h[i].fds[k] != -1)
                                                FUZZ_FAIL("from_env: unused fd slot %u = %d", k,
                                                          h[i].fds[k]);
                                        continue;
                                }
                                fl = fcntl(h[i].fds[k], F_GETFD);
                                if (h[i].fds[k] < 3 || fl < 0 || !(fl & FD_CLOEXEC))
                                        FUZZ_FAIL("from_env: fd %d not open/CLOEXEC", h[i].fds[k]);
                        }
                }
                if (rc > 0 && (getenv(BRD_HANDLE_ENV) || getenv(BRD_HANDLE_ENV_PID)))
                        FUZZ_FAIL("from_env: variables left in the environment");
        }
        unsetenv(BRD_HANDLE_ENV);
        unsetenv(BRD_HANDLE_ENV_PID);
        free(s);
        free(h);
}

/* Whether @h's fds[0] is the file its aux (and a segment's or pool's id)
 * names, as the library judges a copy current. */
static bool names_its_file(const struct brd_handle *h)
{
        struct stat st;

        if (fstat(h->fds[0], &st) < 0 || st.st_ino != h->aux)
                return false;
        if (h->kind == BRD_HANDLE_SEG || h->kind == BRD_HANDLE_POOL)
                return st.st_dev == h->id;
        return st.st_nlink == 0;
}

/* encode -> from_env must give back the same handles, named anew by their files */
static void env_roundtrip(struct fuzz_in *r)
{
        struct brd_handle in[BRD_HANDLE_MAX_BATCH], out[BRD_HANDLE_MAX_BATCH];
        size_t n = fuzz_u8(r) % (BRD_HANDLE_MAX_BATCH + 1), i, cap = 1 + fuzz_u16(r) % 4096,
               fdn = 0;
        char *buf = malloc(cap), pidbuf[32];
        int rc;

        for (i = 0; i < n; i++) {
                /* One read per statement: the expressions of an initializer
                 * list run in an unspecified order. */
                in[i] = (struct brd_handle){ 0 };
                in[i].kind = 1 + fuzz_u8(r) % 4;
                in[i].nfds = fuzz_u8(r) % 3;
                in[i].size = fuzz_u64(r);
                in[i].flags = fuzz_u64(r);
                in[i].id = fuzz_u64(r);
                in[i].aux = fuzz_u64(r);
                if (fdn + in[i].nfds > NSENT)
                        in[i].nfds = 0;
                for (unsigned k = 0; k < 4; k++)
                        in[i].fds[k] = k < in[i].nfds ? (int)(3 + fdn + k) : -1;
                fdn += in[i].nfds;
        }
        /* The description only: the fds are the child's numbers, not
         * looked at (whatever id and aux say). */
        rc = brd_handle_env_encode(in, n, getpid(), buf, cap, pidbuf, sizeof(pidbuf));
        if (rc == -EMSGSIZE)
                goto out;
        if (rc)
                FUZZ_FAIL("encode = %d", rc);
        if (strlen(buf) >= cap)
                FUZZ_FAIL("encode overflowed");
        putenv(buf); /* "BROOD_HANDLES=..." */
        putenv(pidbuf);
        sentinels_inherited();
        rc = brd_handle_from_env(out, BRD_HANDLE_MAX_BATCH);
        if (rc != (int)n)
                FUZZ_FAIL("roundtrip of %zu handles = %d", n, rc);
        for (i = 0; i < n; i++) {
                /* What arrives names the file it arrived with (id and aux
                 * stamped anew from fds[0]), whatever the description said. */
                struct brd_handle want = in[i];
                struct stat st;

                want.aux = 0;
                if (want.nfds && fstat(want.fds[0], &st) == 0) {
                        want.aux = st.st_ino;
                        if (want.kind == BRD_HANDLE_SEG || want.kind == BRD_HANDLE_POOL)
                                want.id = st.st_dev;
                        /* A record its own close would take for stale: none. */
                        if (!names_its_file(&want))
                                want.aux = 0;
                }
                if (out[i].kind != want.kind || out[i].nfds != want.nfds ||
                    out[i].size != want.size || out[i].flags != want.flags ||
                    out[i].id != want.id || out[i].aux != want.aux ||
                    memcmp(out[i].fds, want.fds, sizeof(want.fds)))
                        FUZZ_FAIL("roundtrip: handle %zu differs", i);
        }
out:
        unsetenv(BRD_HANDLE_ENV);
        unsetenv(BRD_HANDLE_ENV_PID);
        free(buf);
}

static void seg_open(struct fuzz_in *r)
{
        uint8_t b = fuzz_u8(r);
        char name[600];
        size_t m = r->n < 300 ? r->n : 300;
        struct brd_seg *seg = NULL;
        int rc;

        if (b & 1) /* one of ours, maybe with a fuzzed tail */
                snprintf(name, sizeof(name), "/%s%s%.*s", pfx, tnames[(b >> 1) % 7],
                         (b & 0x10) ? (int)m : 0, (const char *)r->p);
        else if (b & 2)
                snprintf(name, sizeof(name), "/%s%.*s", pfx, (int)m, (const char *)r->p);
        else
                snprintf(name, sizeof(name), "%.*s", (int)m, (const char *)r->p);
        r->n = 0;
        rc = brd_seg_open((b & 0x80) && !(b & 1) ? NULL : name, &seg);
        if ((b & 1) && !(b & 0x10) && rc != topen[(b >> 1) % 7])
                FUZZ_FAIL("seg_open(%s) = %d, not %d", name, rc, topen[(b >> 1) % 7]);
        if (rc == 0) {
                if (!brd_seg_addr(seg) || !brd_seg_size(seg))
                        FUZZ_FAIL("seg_open(%s): no mapping", name);
                brd_seg_close(seg);
        } else if (rc > 0 || rc < -4095) {
                FUZZ_FAIL("seg_open = %d", rc);
        }
}

static void lying_attach(struct fuzz_in *r)
{
        struct brd_handle h = { 0 };
        struct brd_seg *seg = NULL;
        struct brd_pool *pool = NULL;
        uint8_t b = fuzz_u8(r);
        int rc;

        h.kind = fuzz_u8(r) % 4;
        h.nfds = fuzz_u8(r) % 6;
        for (int k = 0; k < 4; k++) {
                uint8_t c = fuzz_u8(r);

                h.fds[k] = c < 200   ? tfd[c % NTFD]
                           : c < 250 ? sentinel_lo + c % NSENT
                                     : -(int)(c & 3) + 1000 * (c & 1);
        }
        switch (fuzz_u8(r) % 4) {
        case 0:
                h.size = 16384;
                break;
        case 1:
                h.size = 16385;
                break;
        case 2:
                h.size = fuzz_u16(r);
                break;
        default:
                h.size = fuzz_u64(r);
                break;
        }
        h.flags = fuzz_u8(r) % 16 ? fuzz_u8(r) & 7 : fuzz_u64(r);
        if (b & 1) {
                rc = brd_seg_attach(&h, &seg);
                if (rc == 0) {
                        if (!brd_seg_addr(seg) || brd_seg_size(seg) < h.size)
                                FUZZ_FAIL("seg_attach: mapping smaller than the handle says");
                        brd_seg_close(seg);
                } else if (rc > 0 || rc < -4095) {
                        FUZZ_FAIL("seg_attach = %d", rc);
                }
        } else {
                rc = brd_pool_attach(&h, &pool);
                if (rc == 0)
                        FUZZ_FAIL("pool_attach succeeded on a non-pool");
                if (rc != -EINVAL && rc != -EPROTO && rc != -EBADMSG && rc != -EACCES &&
                    rc != -EBADF)
                        FUZZ_FAIL("pool_attach = %d", rc);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in r = { data, size };
        uint8_t mode = fuzz_u8(&r);

        int fds = fuzz_count_fds();

        switch (mode % 4) {
        case 0:
                env_raw(&r);
                break;
        case 1:
                env_roundtrip(&r);
                break;
        case 2:
                seg_open(&r);
                break;
        default:
                lying_attach(&r);
                break;
        }
        check_sentinels();
        fuzz_fd_check(fds);
        return 0;
}
