/* SPDX-License-Identifier: MIT */
/* Small fd (and other system) helpers shared by every module: -errno in,
 * -errno out. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/brd-private.h"

int brd__dup_cloexec(int fd)
{
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 3), e = errno;

        /* EINVAL for a valid @fd: the fd limit is 3 or less, so no number
         * from 3 up can be had: out of fds, as EMFILE says. */
        if (r < 0 && e == EINVAL && fcntl(fd, F_GETFD) >= 0)
                return -EMFILE;
        return r < 0 ? -e : r;
}

ssize_t brd__fd_link(int fd, char *buf, size_t cap)
{
        char link[64];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, buf, cap - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

void brd__close(int fd)
{
        int saved = errno;

        /* Never retried on EINTR: on Linux the fd is gone either way, and a
         * retry could close a number another thread has just been given.
         * The bare syscall: close() is a cancellation point, and no library
         * call may be cut short in one (a ring endpoint left held, the rest
         * of a handle's fds left open). */
        if (fd >= 0)
                (void)syscall(SYS_close, fd);
        errno = saved;
}

int brd__random(void *buf, size_t n)
{
        ssize_t got;

        /* Blocks until the kernel's pool is ready (early boot), where a
         * signal handler may cut it short: retried (RELIABILITY E30). */
        do
                got = getrandom(buf, n, 0);
        while (got < 0 && errno == EINTR);
        if (got < 0)
                return -errno;
        return (size_t)got == n ? 0 : -EIO;
}

int brd__poll_wait(int fd, short events, int64_t deadline, bool eintr)
{
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        for (;;) {
                r = poll(&p, 1, brd__poll_timeout(deadline));
                if (r > 0)
                        return p.revents & POLLNVAL ? -EBADF : r;
                if (r == 0) {
                        if (deadline == INT64_MAX || brd__now_ns() < deadline)
                                continue;       /* rounding: never return early */
                        return 0;
                }
                if (errno != EINTR || eintr)
                        return -errno;
                /* EINTR: poll again with what is left of the same deadline. */
        }
}

int brd__poll_one(int fd, short events, int64_t deadline)
{
        return brd__poll_wait(fd, events, deadline, false);
}

static bool handle_has_dev(uint32_t kind)
{
        return kind == BRD_HANDLE_SEG || kind == BRD_HANDLE_POOL;
}

int brd__handle_stamp(struct brd_handle *h)
{
        struct stat st;

        if (fstat(h->fds[0], &st) < 0)
                return -errno;
        if (handle_has_dev(h->kind))
                h->id = (uint64_t)st.st_dev;
        h->aux = (uint64_t)st.st_ino;
        return 0;
}

int brd__handle_current(const struct brd_handle *h)
{
        struct stat st;

        if (!brd__handle_kind_known(h->kind) || h->nfds < 1 || !h->aux)
                return 0;
        if (fstat(h->fds[0], &st) < 0 || (uint64_t)st.st_ino != h->aux)
                return -EBADF;
        if (handle_has_dev(h->kind) ? (uint64_t)st.st_dev != h->id : st.st_nlink != 0)
                return -EBADF;
        return 0;
}

bool brd__handle_valid(const struct brd_handle *h, uint32_t kind, uint32_t min_fds)
{
        uint32_t i;

        if (!h || h->kind != kind || h->nfds < min_fds || h->nfds > BRD_HANDLE_MAX_FDS)
                return false;
        for (i = 0; i < h->nfds; i++)
                if (h->fds[i] < 0)
                        return false;
        return true;
}
