/* SPDX-License-Identifier: MIT */
/*
 * Shared segments: sealed memfds by default, O_EXCL POSIX shm names on
 * request.  Validation happens before any mapping (Wayland's os-compatibility,
 * PipeWire's mem.c): a peer's fd is trusted only after fstat, fstatfs and
 * F_GET_SEALS agree with what the handle claims.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

#ifdef F_SEAL_FUTURE_WRITE
#define SEG_SEAL_FUTURE_WRITE F_SEAL_FUTURE_WRITE
#else
#define SEG_SEAL_FUTURE_WRITE 0x0010        /* Linux 5.1 */
#endif

#define BRD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U         /* Linux 6.3 */
#endif
#define BRD_NAME_TRIES 8

static bool label_valid(const char *l, size_t *ret_len)
{
        size_t n;

        for (n = 0; l[n]; n++) {
                char c = l[n];
                if (n >= BRD_SEG_LABEL_MAX)
                        break;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
                        return false;
        }
        *ret_len = n;
        return n > 0;
}

static int size_round(size_t size, size_t *ret)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        struct rlimit rl;

        if (size == 0 || size > (size_t)INT64_MAX - page)
                return -EINVAL;
        size = (size + page - 1) & ~(page - 1);
        /* ftruncate past RLIMIT_FSIZE raises SIGXFSZ: say -EFBIG first. */
        if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (rlim_t)size > rl.rlim_cur)
                return -EFBIG;
        *ret = size;
        return 0;
}

/* Below this a segment is not weighed against the machine's memory: the
 * look costs a /proc read, and rings and small pools are made by the
 * thousand. */
#define SEG_MEMCHECK_MIN (64u << 20)

/*
 * Room for @size bytes of shared memory, every one allocated at create
 * (reserve()).  A memfd's tmpfs has no size of its own: past what the
 * machine has, the kernel's OOM killer would end the fallocate (and maybe
 * another process) where -ENOMEM is the answer.  Refused up front past
 * MemAvailable (/proc/meminfo; unreadable: past RAM + swap, sysinfo()).
 * What other processes take meanwhile is not foreseen.
 */
static int size_fits_memory(size_t size)
{
        char avail[48];
        struct brd__status_key k = { "MemAvailable:", avail, sizeof(avail), false };
        unsigned long long kib;
        struct sysinfo si;

        if (size < SEG_MEMCHECK_MIN)
                return 0;
        if (brd__proc_status("/proc/meminfo", &k, 1) == 1 && sscanf(avail, "%llu", &kib) == 1)
                return size / 1024 > kib ? -ENOMEM : 0;
        if (sysinfo(&si) == 0 && si.mem_unit &&
            size / si.mem_unit > (unsigned long long)si.totalram + si.totalswap)
                return -ENOMEM;
        return 0;
}

void brd__populate(void *addr, size_t len)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE), i;

#ifdef MADV_POPULATE_WRITE
        (void)madvise(addr, len, MADV_POPULATE_WRITE);
#endif
        for (i = 0; i < len; i += page)
                (void)*(volatile uint8_t *)((uint8_t *)addr + i);
}

/* seg_map()'s part under the fork lock: map, mark, guard, list.  On
 * failure s->addr and s->guard say what to undo.  Not populated here:
 * every fork() waits for this. */
static int seg_map_locked(struct brd_seg *s, int fd)
{
        int e;

        s->addr = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (s->addr == MAP_FAILED) {
                e = errno;
                s->addr = NULL;
                /* A memfd's only EPERM: a write seal its peer added after
                 * attach read the seals.  Not the guard's -EPERM. */
                return e == EPERM && !(s->flags & BRD_SEG_NAMED) ? -EBADMSG : -e;
        }
        if ((s->flags & BRD_SEG_NOFORK) && madvise(s->addr, s->size, MADV_DONTFORK) < 0)
                return -errno;
        if (s->flags & BRD_SEG_NAMED) {
                s->guard = brd__guard_add(s->addr, s->size, s->flags & BRD_SEG_NOFORK);
                if (s->guard < 0)
                        return s->guard;
        }
        return brd__registry_add(s);
}

/* Map @fd, register the segment.  Takes @fd (closed on failure) and, on
 * success only, @name.  @st: the file's fstat, NULL to take it here. */
static int seg_map(int fd, size_t size, unsigned flags, bool creator, char *name,
                   const struct stat *st, struct brd_seg **ret_seg)
{
        struct stat own;
        struct brd_seg *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                r = -ENOMEM;
                goto fail;
        }
        s->fd = fd;
        s->gen = brd__fork_gen();
        s->map_pid = getpid();
        s->size = size;
        s->flags = flags;
        s->creator = creator;
        s->name = name;
        s->guard = -1;
        /* Its file, by which a forkserver child knows a segment it was
         * handed (brd__fork_drop_unhanded()). */
        if (!st && fstat(fd, &own) < 0) {
                r = -errno;
                goto fail;
        }
        s->dev = (st ? st : &own)->st_dev;
        s->ino = (st ? st : &own)->st_ino;
        /* Under the fork lock, so is the unmap of a failure: no fork()
         * sees the mapping unlisted (brd__registry_add()). */
        brd__fork_lock();
        r = seg_map_locked(s, fd);
        if (r < 0) {
                brd__guard_drop(s->guard);
                if (s->addr)
                        munmap(s->addr, size);
        }
        brd__fork_unlock();
        if (r < 0)
                goto fail;
        if (flags & BRD_SEG_POPULATE)
                brd__populate(s->addr, size);
        *ret_seg = s;
        return 0;
fail:
        free(s);
        brd__close(fd);
        return r;
}

/* The first fallocate of a reservation, and the least a retry asks for. */
#define SEG_FALLOC_CHUNK (16u << 20)
#define SEG_FALLOC_MIN   (64u << 10)

static int reserve(int fd, size_t size)
{
        size_t off = 0, chunk = SEG_FALLOC_CHUNK, n;
        int r;

        if (ftruncate(fd, (off_t)size) < 0)
                return -errno;
        /*
         * tmpfs hands out pages at first touch: without this, a full
         * /dev/shm or memcg turns into SIGBUS long after create returned
         * success.  In chunks: tmpfs of older kernels (Debian 12's 6.1
         * among them; later ones stop only for a fatal signal) gives up a
         * call at any pending signal (EINTR) and frees what that call had
         * allocated, so one call for the whole size, under a periodic
         * signal slower than it, started over for ever.  A chunk that was
         * interrupted is asked for again in halves (down to 64 KiB), and
         * grows back as calls complete.
         */
        while (off < size) {
                n = size - off < chunk ? size - off : chunk;
                r = posix_fallocate(fd, (off_t)off, (off_t)n);
                if (r == EINTR) {
                        if (chunk > SEG_FALLOC_MIN)
                                chunk /= 2;
                        continue;
                }
                if (r)
                        return -r;
                off += n;
                if (chunk < SEG_FALLOC_CHUNK)
                        chunk *= 2;
        }
        return 0;
}

static int create_memfd(const char *label, size_t size, int *ret_fd)
{
        char name[16 + BRD_SEG_LABEL_MAX];
        int fd, r;

        snprintf(name, sizeof(name), "brood:%s", label);
        /* Never executable: Linux 6.3-6.5 under vm.memfd_noexec=2 refuse a
         * memfd without the flag, later ones warn; one before 6.3 does not
         * know it (EINVAL). */
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = reserve(fd, size);
        if (r < 0)
                goto fail;
        if (fcntl(fd, F_ADD_SEALS, BRD_SEALS) < 0) {
                r = -errno;
                goto fail;
        }
        *ret_fd = fd;
        return 0;
fail:
        brd__close(fd);
        return r;
}

/*
 * Unlink @name if it still names file @dev:@ino.  Someone else may have
 * unlinked it (`brood reap` after a pid-namespace mix-up, a user's rm) and
 * put another file there since, which is not ours to remove.  The check and
 * the unlink are two steps: only a process that may unlink the name anyway
 * (this user, /dev/shm being sticky) can swap the file between them.
 */
static void unlink_same(const char *name, uint64_t dev, uint64_t ino)
{
        char path[PATH_MAX];
        struct stat st;
        int n;

        n = snprintf(path, sizeof(path), "/dev/shm%s", name);
        if (n < 0 || (size_t)n >= sizeof(path))
                return;
        if (lstat(path, &st) < 0 || (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino)
                return;
        shm_unlink(name);
}

static int create_named(const char *label, size_t size, int *ret_fd, char **ret_name,
                        struct stat *ret_st)
{
        char name[NAME_MAX + 1];
        uint8_t rnd[16];
        int fd = -1, r = -EEXIST, i, k;

        for (i = 0; i < BRD_NAME_TRIES; i++) {
                char hex[33];

                r = brd__random(rnd, sizeof(rnd));
                if (r < 0)
                        return r;
                for (k = 0; k < 16; k++)
                        snprintf(hex + 2 * k, 3, "%02x", rnd[k]);
                /* The pid namespace too: the pid means this process only
                 * to processes of that namespace (brood reap). */
                snprintf(name, sizeof(name), "/" BRD_SEG_NAME_PREFIX "%d.%llu.%llu.%s.%s",
                         (int)brd__getpid(),
                         (unsigned long long)brd__proc_start_time(brd__getpid()),
                         (unsigned long long)brd__pid_ns(), hex, label);
                /* O_EXCL: never adopt a squatter's object (fs.protected_regular
                 * is 0 on these machines); glibc adds O_NOFOLLOW|O_CLOEXEC. */
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
                if (fd >= 0)
                        break;
                r = -errno;
                if (r != -EEXIST)
                        return r;
        }
        if (fd < 0)
                return r;
        /* The file the name must still name for us to unlink it (unknown:
         * the name is left to `brood reap`). */
        if (fstat(fd, ret_st) < 0) {
                r = -errno;
                brd__close(fd);
                return r;
        }
        /* umask may have narrowed 0600; it cannot have widened it, but make
         * the mode exact so attachers' checks see precisely owner-only. */
        if (fchmod(fd, 0600) < 0) {
                r = -errno;
                goto fail;
        }
        r = reserve(fd, size);
        if (r < 0)
                goto fail;
        *ret_name = strdup(name);
        if (!*ret_name) {
                r = -ENOMEM;
                goto fail;
        }
        *ret_fd = fd;
        return 0;
fail:
        unlink_same(name, (uint64_t)ret_st->st_dev, (uint64_t)ret_st->st_ino);
        brd__close(fd);
        return r;
}

BRD_EXPORT int brd_seg_create(const char *label, size_t size, unsigned flags,
                              struct brd_seg **ret_seg)
{
        size_t len;
        char *name = NULL;
        struct stat st;
        int fd = -1, r;

        if (!ret_seg || (flags & ~(unsigned)(BRD_SEG_NAMED | BRD_SEG_POPULATE | BRD_SEG_NOFORK)))
                return -EINVAL;
        if (!label)
                label = "seg";
        if (!label_valid(label, &len))
                return -EINVAL;
        if (label[len])
                return -ENAMETOOLONG;
        r = size_round(size, &size);
        if (r == 0)
                r = size_fits_memory(size);
        if (r < 0)
                return r;
        if (flags & BRD_SEG_NAMED)
                r = create_named(label, size, &fd, &name, &st);
        else
                r = create_memfd(label, size, &fd);
        if (r < 0)
                return r;
        r = seg_map(fd, size, flags, true, name, name ? &st : NULL, ret_seg);
        if (r < 0 && name) {
                unlink_same(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
                free(name);
        }
        return r;
}

int brd__seg_attach_fd(int fd, uint64_t size, bool named, const char *opened_as,
                       unsigned flags, struct brd_seg **ret_seg)
{
        char *name = NULL, target[PATH_MAX];
        struct stat st;
        struct statfs sf;
        ssize_t n = -1;
        int dfd, fl, r;

        if (fd < 0 || !ret_seg)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* An O_PATH fd cannot be mapped (or asked for its seals): not a
         * file open for us, whatever it names or claims. */
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_PATH))
                return -EBADF;
        /* A pipe, socket, device or directory is never a segment. */
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (fstatfs(fd, &sf) < 0)
                return -errno;
        /* Only shmem (memfd, /dev/shm): a disk file can be truncated under
         * us by anyone with write access to its path, and a hugetlbfs one
         * (never ours) faults SIGBUS once a punched hole finds the huge
         * page pool empty. */
        if (sf.f_type != TMPFS_MAGIC)
                return -EINVAL;
        /* The named flag is the handle's word, and a memfd can always be
         * sealed by whoever made it: held to the seals, whatever it claims
         * (known by its /proc link; without /proc, by the flag alone). */
        if (named) {
                n = brd__fd_link(fd, target, sizeof(target));
                if (n >= 7 && !memcmp(target, "/memfd:", 7))
                        named = false;
        }
        if (named) {
                /* Unsealable: trust comes from who owns it and who else may open it. */
                if (st.st_uid != geteuid() || (st.st_mode & 077))
                        return -EACCES;
                /* And any of them may shrink it under us: unguarded, only
                 * the file this process created and holds (not its name,
                 * which whoever made the file chose). */
                if (!brd__registry_created(st.st_dev, st.st_ino) && !brd__guard_on())
                        return -EPERM;
        } else {
                int seals = fcntl(fd, F_GET_SEALS);

                /* Without shrink+grow seals the peer can ftruncate and SIGBUS
                 * us; with a write seal no writable mapping can be had (told
                 * here; one added after this look is seg_map_locked()'s). */
                if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
                                 (F_SEAL_SHRINK | F_SEAL_GROW) ||
                    (seals & (F_SEAL_WRITE | SEG_SEAL_FUTURE_WRITE)))
                        return -EBADMSG;
                /* The size for good only now: read before the seals, it may
                 * be one the peer truncated away before sealing. */
                if (fstat(fd, &st) < 0)
                        return -errno;
        }
        if (st.st_size <= 0 || (uint64_t)st.st_size < size)
                return -EBADMSG;
        /* What the handle declares is what we map (a larger file costs no
         * more address space); opened by name, the whole file. */
        if (!size)
                size = (uint64_t)st.st_size;
        if (size > (uint64_t)SIZE_MAX)
                return -EFBIG;
        /* Prefault only space the file has (reserve() allocates all of a
         * brood segment's at create). */
        if ((flags & BRD_SEG_POPULATE) && !brd__blocks_cover(&st, size))
                flags &= ~(unsigned)BRD_SEG_POPULATE;
        if (named && n > 8 && !strncmp(target, "/dev/shm/", 9)) {
                struct stat at;

                /* Unlinked already: the name it was opened by is gone (even
                 * where another hard link is left), and the kernel appended
                 * " (deleted)".  But a name may end so too: the path names
                 * this very file then. */
                if (n > 10 && !strcmp(target + n - 10, " (deleted)") &&
                    (stat(target, &at) < 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino))
                        target[8] = '\0';
                if (target[8]) {
                        name = strdup(target + 8);
                        if (!name)
                                return -ENOMEM;
                }
        } else if (named && n < 0 && opened_as) {
                /* No /proc to name it: the name it was just opened by. */
                name = strdup(opened_as);
                if (!name)
                        return -ENOMEM;
        }
        dfd = brd__dup_cloexec(fd);
        if (dfd < 0) {
                free(name);
                return dfd;
        }
        r = seg_map(dfd, (size_t)size, flags | (named ? BRD_SEG_NAMED : 0), false, name,
                    &st, ret_seg);
        if (r < 0)
                free(name);
        return r;
}

static bool name_valid(const char *name, int *ret_err)
{
        size_t n;

        *ret_err = -EINVAL;
        if (!name || name[0] != '/' || !name[1])
                return false;
        if (strchr(name + 1, '/') || !strcmp(name, "/.") || !strcmp(name, "/.."))
                return false;
        n = strlen(name);
        if (n > NAME_MAX) {
                *ret_err = -ENAMETOOLONG;
                return false;
        }
        return true;
}

BRD_EXPORT int brd_seg_open(const char *name, struct brd_seg **ret_seg)
{
        int fd, r;

        if (!ret_seg || !name_valid(name, &r))
                return !ret_seg ? -EINVAL : r;
        /* glibc adds O_NOFOLLOW|O_CLOEXEC: a planted symlink fails closed.
         * O_NONBLOCK: a lease another process holds on the file answers at
         * once (-EAGAIN), where the open waited for its break (45 s). */
        fd = shm_open(name, O_RDWR | O_NONBLOCK, 0);
        if (fd < 0)     /* a directory, a socket: not a regular shm file */
                return errno == EISDIR || errno == ENXIO ? -EINVAL : -errno;
        r = brd__seg_attach_fd(fd, 0, true, name, 0, ret_seg);
        brd__close(fd);
        return r;
}

BRD_EXPORT int brd_seg_attach(const struct brd_handle *h, struct brd_seg **ret_seg)
{
        int r;

        if (!ret_seg)
                return -EINVAL;
        if (!brd__handle_valid(h, BRD_HANDLE_SEG, 1) || h->size == 0)
                return brd__handle_err(h);
        if (h->flags & ~(uint64_t)(BRD_SEG_NAMED | BRD_SEG_POPULATE | BRD_SEG_NOFORK))
                return -EINVAL;
        r = brd__handle_current(h);
        if (r < 0)
                return r;
        return brd__seg_attach_fd(h->fds[0], h->size, h->flags & BRD_SEG_NAMED, NULL,
                                  (unsigned)h->flags & ~(unsigned)BRD_SEG_NAMED, ret_seg);
}

BRD_EXPORT int brd_seg_export(const struct brd_seg *seg, struct brd_handle *ret_handle)
{
        struct brd_handle h;
        int fd, r;

        if (!seg || !ret_handle)
                return -EINVAL;
        if (!seg->addr || brd__fds_gone(seg->gen))
                return -EBADF;
        if (brd__guard_faulted(seg->guard))
                return -EFAULT;
        fd = brd__dup_cloexec(seg->fd);
        if (fd < 0)
                return fd;
        h = (struct brd_handle){
                .kind = BRD_HANDLE_SEG,
                .nfds = 1,
                .fds = { fd, -1, -1, -1 },
                .size = seg->size,
                .flags = seg->flags & BRD_SEG_NAMED,
        };
        r = brd__handle_stamp(&h);
        if (r < 0) {
                brd__close(fd);
                return r;
        }
        *ret_handle = h;
        return 0;
}

BRD_EXPORT void brd_seg_close(struct brd_seg *seg)
{
        if (!seg)
                return;
        /* In a child made without fork()'s handlers the fork lock may be
         * held by a parent's thread that is not there (the close waited
         * for ever), and the registry names this segment: close the fd,
         * leave the rest to the exec or exit that child may only make. */
        if (brd__handlers_skipped()) {
                if (!brd__fds_gone(seg->gen))
                        brd__close(seg->fd);
                return;
        }
        brd__fork_lock();               /* see brd__registry_add() */
        brd__registry_del(seg);
        brd__guard_drop(seg->guard);    /* before the range can be another mapping */
        /* A NOFORK mapping in a child made without the fork handlers (which
         * forget it, brd_fork_child()) is a hole that the child may have
         * filled with a mapping of its own since (brd__made_here()). */
        if (seg->addr &&
            (!(seg->flags & BRD_SEG_NOFORK) || brd__made_here(seg->gen, seg->map_pid)))
                munmap(seg->addr, seg->size);
        brd__fork_unlock();
        if (seg->creator && !seg->inherited && seg->name)
                unlink_same(seg->name, seg->dev, seg->ino);
        if (!brd__fds_gone(seg->gen))
                brd__close(seg->fd);    /* else that number is someone else's now */
        free(seg->name);
        free(seg);
}

BRD_EXPORT int brd_seg_check(const struct brd_seg *seg)
{
        if (!seg)
                return -EINVAL;
        return brd__guard_faulted(seg->guard) ? -EFAULT : 0;
}

BRD_EXPORT void *brd_seg_addr(const struct brd_seg *seg)
{
        return seg ? seg->addr : NULL;
}

BRD_EXPORT size_t brd_seg_size(const struct brd_seg *seg)
{
        return seg ? seg->size : 0;
}

BRD_EXPORT const char *brd_seg_name(const struct brd_seg *seg)
{
        return seg ? seg->name : NULL;
}

BRD_EXPORT int brd_seg_fd(const struct brd_seg *seg)
{
        if (!seg)
                return -EINVAL;
        /* As brd_seg_export(): not this child's segment, or its fd number
         * closed by a forkserver child's prelude (maybe another file's now). */
        if (!seg->addr || brd__fds_gone(seg->gen))
                return -EBADF;
        return seg->fd;
}

BRD_EXPORT int brd_seg_is_inherited(const struct brd_seg *seg)
{
        return seg && seg->inherited ? 1 : 0;
}
