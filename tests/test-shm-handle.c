/* SPDX-License-Identifier: MIT */
/* Handles: SCM_RIGHTS send/recv, truncation, timeouts, environment, exec'd helpers. */
#include <errno.h>
#include <fcntl.h>
#include <linux/net_tstamp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "helpers.h"
#include "internal/brd-private.h"
#include <brood/fork.h>
#include <brood/ringbuf.h>
#include <brood/shm.h>

extern char **environ;

static struct brd_seg *filled_seg(size_t size, int byte, struct brd_handle *h)
{
        struct brd_seg *s;

        assert_int_equal(brd_seg_create("h", size, 0, &s), 0);
        memset(brd_seg_addr(s), byte, brd_seg_size(s));
        assert_int_equal(brd_seg_export(s, h), 0);
        return s;
}

static void check_attached(struct brd_handle *h, int byte)
{
        struct brd_seg *a;
        unsigned char *p;

        assert_int_equal(brd_seg_attach(h, &a), 0);
        p = brd_seg_addr(a);
        assert_int_equal(p[0], byte);
        assert_int_equal(p[brd_seg_size(a) - 1], byte);
        brd_seg_close(a);
}

static void send_recv_type(int type)
{
        struct brd_handle h[3], got[4];
        struct brd_seg *s[3];
        int sp[2], i;

        assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp), 0);
        for (i = 0; i < 3; i++)
                s[i] = filled_seg(4096 * (i + 1), 0x30 + i, &h[i]);
        assert_int_equal(brd_handle_send(sp[0], h, 1), 0);
        assert_int_equal(brd_handle_send(sp[0], h, 3), 0);
        assert_int_equal(brd_handle_recv(sp[1], got, 4, 1000), 1);
        check_attached(&got[0], 0x30);
        brd_handle_close(&got[0]);
        assert_int_equal(brd_handle_recv(sp[1], got, 4, 1000), 3);
        for (i = 0; i < 3; i++) {
                assert_int_equal(got[i].kind, BRD_HANDLE_SEG);
                assert_int_equal(got[i].nfds, 1);
                assert_int_equal(got[i].size, 4096 * (i + 1));
                assert_int_equal(got[i].flags, h[i].flags);
                assert_int_equal(got[i].id, h[i].id);
                assert_int_equal(got[i].aux, h[i].aux);
                assert_int_equal(fcntl(got[i].fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
                check_attached(&got[i], 0x30 + i);
                brd_handle_close(&got[i]);
                brd_handle_close(&h[i]);
                brd_seg_close(s[i]);
        }
        assert_int_equal(got[1].nfds, 0);
        close(sp[0]);
        close(sp[1]);
}

static void test_send_recv_seqpacket(void **state)
{
        send_recv_type(SOCK_SEQPACKET);
}

static void test_send_recv_stream(void **state)
{
        send_recv_type(SOCK_STREAM);
}

static void test_recv_timeouts_and_eof(void **state)
{
        struct brd_handle h;
        int sp[2];
        int64_t t0;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(brd_handle_recv(sp[1], &h, 1, 0), -EAGAIN);
        t0 = t_now_ms();
        assert_int_equal(brd_handle_recv(sp[1], &h, 1, 50), -ETIMEDOUT);
        assert_true(t_now_ms() - t0 >= 50);
        /* An empty record is no end: the peer is still there. */
        assert_int_equal(send(sp[0], "", 0, 0), 0);
        assert_int_equal(brd_handle_recv(sp[1], &h, 1, 1000), -EPROTO);
        close(sp[0]);
        assert_int_equal(brd_handle_recv(sp[1], &h, 1, 1000), -EPIPE);
        close(sp[1]);
        assert_int_equal(brd_handle_recv(-1, &h, 1, 0), -EINVAL);
        assert_int_equal(brd_handle_send(-1, &h, 1), -EINVAL);
}

/*
 * RELIABILITY E30: brd_handle_recv() with a 200 ms timeout on an idle
 * socket, under a SIGALRM every 1 ms (setitimer, no SA_RESTART: its poll()
 * returns EINTR about 200 times).  It returns -ETIMEDOUT, not -EINTR, after
 * at least 200 ms and at most 400 in one of three tries (a recv that
 * restarted its timeout at each EINTR would still be waiting when the
 * storm stops itself, after 2000 hits), and took nothing: the next handle sent arrives, whole, once.
 */
static long storm_recv(void *arg)
{
        struct brd_handle got;

        return brd_handle_recv(*(int *)arg, &got, 1, 200);
}

static void test_recv_alarm_storm_times_out(void **state)
{
        struct brd_handle h, got;
        struct brd_seg *s;
        int sp[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        t_storm_times_out(storm_recv, &sp[1], "recv");
        s = filled_seg(4096, 0x5e, &h);
        assert_int_equal(brd_handle_send(sp[0], &h, 1), 0);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 1000), 1);
        check_attached(&got, 0x5e);
        brd_handle_close(&got);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 0), -EAGAIN);
        brd_handle_close(&h);
        brd_seg_close(s);
        close(sp[0]);
        close(sp[1]);
}

static void test_send_to_closed_peer_is_epipe(void **state)
{
        struct brd_handle h;
        struct brd_seg *s = filled_seg(4096, 1, &h);
        int sp[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        close(sp[1]);
        assert_int_equal(brd_handle_send(sp[0], &h, 1), -EPIPE);    /* and no SIGPIPE */
        close(sp[0]);
        brd_handle_close(&h);
        brd_seg_close(s);
}

/*
 * A non-blocking stream whose reader stopped: a message that went only in
 * part waits a second for its rest, then answers -EPROTO (the stream is
 * torn); it waited forever before.  A full socket that takes nothing is
 * -EAGAIN.
 */
static void test_nonblocking_stream_stopped_midway(void **state)
{
        struct brd_handle h[BRD_HANDLE_MAX_BATCH];
        int sp[2], one = 1;
        char c;

        (void)state;
        for (size_t i = 0; i < BRD_HANDLE_MAX_BATCH; i++)
                h[i] = (struct brd_handle){ .kind = BRD_HANDLE_SEG, .fds = { -1, -1, -1, -1 } };
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
        /* The smallest send buffer, filled up. */
        assert_int_equal(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)), 0);
        while (write(sp[0], "x", 1) == 1)
                ;
        assert_int_equal(brd_handle_send(sp[0], h, BRD_HANDLE_MAX_BATCH), -EAGAIN);
        /* Room for a part of the message, never for the rest. */
        assert_int_equal(read(sp[1], &c, 1), 1);
        assert_int_equal(brd_handle_send(sp[0], h, BRD_HANDLE_MAX_BATCH), -EPROTO);
        close(sp[0]);
        close(sp[1]);
}

/*
 * A stream peer that sends part of a header and stalls: nothing is taken
 * while the rest may come (-EAGAIN, -ETIMEDOUT after the caller's timeout,
 * the bytes still queued); once the peer is gone, -EPROTO.  Before, the
 * part was taken at once and any call, timeout 0 too, waited a second for
 * the rest, then said -EPROTO.
 */
static void test_recv_stream_part_then_stall(void **state)
{
        struct brd_handle got;
        int sp[2], inq = 0;
        int64_t t0;

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(write(sp[0], "brd", 3), 3);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 0), -EAGAIN);
        t0 = t_now_ms();
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 50), -ETIMEDOUT);
        assert_true(t_now_ms() - t0 >= 50);
        assert_int_equal(ioctl(sp[1], SIOCINQ, &inq), 0);
        assert_int_equal(inq, 3);
        close(sp[0]);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, -1), -EPROTO);
        close(sp[1]);
}

/* The bytes (into @buf, their count returned) and the fds (into @fds, new
 * in this process, their count in *@ret_nfds) of one brd_handle_send() of
 * @n handles. */
static size_t raw_message(const struct brd_handle *h, size_t n, char *buf, size_t cap,
                          int *fds, int *ret_nfds)
{
        union {
                char buf[CMSG_SPACE(8 * sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = { buf, cap };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *c;
        ssize_t got;
        int sp[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(brd_handle_send(sp[0], h, n), 0);
        got = recvmsg(sp[1], &msg, MSG_CMSG_CLOEXEC);
        assert_true(got > 0);
        c = CMSG_FIRSTHDR(&msg);
        assert_non_null(c);
        assert_int_equal(c->cmsg_type, SCM_RIGHTS);
        *ret_nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(fds, CMSG_DATA(c), (size_t)*ret_nfds * sizeof(int));
        close(sp[0]);
        close(sp[1]);
        return (size_t)got;
}

/* Send @len bytes of @buf on @sock, with the @nfds fds of @fds. */
static void send_part(int sock, const char *buf, size_t len, const int *fds, int nfds)
{
        union {
                char buf[CMSG_SPACE(8 * sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = { (void *)buf, len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        struct cmsghdr *c;

        if (nfds) {
                msg.msg_control = ctl.buf;
                msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
        }
        assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/*
 * A stream message sent in two parts, the fds with the first: until the
 * second comes, a receive takes nothing (no fd arrives) and says -EAGAIN,
 * or -ETIMEDOUT after its own timeout; then it gets the message whole.  The
 * first part ends inside the header, then inside the records.  Before, the
 * first part was taken, and the call waited a second for the rest,
 * whatever its timeout.
 */
static void test_recv_stream_whole_within_timeout(void **state)
{
        static const size_t cut[] = { 5, 8 + 20 };      /* the header is 8 bytes */
        struct brd_handle h[2], got[2];
        struct brd_seg *s[2];
        char buf[256];
        int sp[2], fds[8], nfds, i, k, n;
        size_t len;
        int64_t t0;

        (void)state;
        for (i = 0; i < 2; i++)
                s[i] = filled_seg(4096, 0x50 + i, &h[i]);
        for (k = 0; k < 2; k++) {
                len = raw_message(h, 2, buf, sizeof(buf), fds, &nfds);
                assert_int_equal(nfds, 2);
                assert_true(len > cut[k]);
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                send_part(sp[0], buf, cut[k], fds, nfds);
                for (i = 0; i < nfds; i++)
                        close(fds[i]);          /* in flight: the socket holds them */
                n = t_fd_count();
                assert_int_equal(brd_handle_recv(sp[1], got, 2, 0), -EAGAIN);
                t0 = t_now_ms();
                assert_int_equal(brd_handle_recv(sp[1], got, 2, 50), -ETIMEDOUT);
                assert_true(t_now_ms() - t0 >= 50);
                assert_int_equal(t_fd_count(), n);      /* nothing taken */
                send_part(sp[0], buf + cut[k], len - cut[k], NULL, 0);
                assert_int_equal(brd_handle_recv(sp[1], got, 2, 0), 2);
                for (i = 0; i < 2; i++) {
                        check_attached(&got[i], 0x50 + i);
                        brd_handle_close(&got[i]);
                }
                assert_int_equal(t_fd_count(), n);
                close(sp[0]);
                close(sp[1]);
        }
        for (i = 0; i < 2; i++) {
                brd_handle_close(&h[i]);
                brd_seg_close(s[i]);
        }
}

static void test_too_many_handles_closes_all(void **state)
{
        struct brd_handle h[3], got[2];
        struct brd_seg *s[3];
        int sp[2], i, fds;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        for (i = 0; i < 3; i++)
                s[i] = filled_seg(4096, i, &h[i]);
        assert_int_equal(brd_handle_send(sp[0], h, 3), 0);
        fds = t_fd_count();
        assert_int_equal(brd_handle_recv(sp[1], got, 2, 1000), -EMSGSIZE);
        assert_int_equal(t_fd_count(), fds);
        for (i = 0; i < 3; i++) {
                brd_handle_close(&h[i]);
                brd_seg_close(s[i]);
        }
        close(sp[0]);
        close(sp[1]);
}

static void test_malformed_message_closes_fds(void **state)
{
        char junk[48] = "this is not a brood handle message at all....";
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct msghdr msg = { 0 };
        struct iovec iov = { junk, sizeof(junk) };
        struct cmsghdr *c;
        struct brd_handle got;
        int sp[2], fd, fds;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        fd = memfd_create("junk", MFD_CLOEXEC);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        assert_int_equal(sendmsg(sp[0], &msg, 0), (ssize_t)sizeof(junk));
        close(fd);
        fds = t_fd_count();
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 1000), -EPROTO);
        assert_int_equal(t_fd_count(), fds);
        close(sp[0]);
        close(sp[1]);
}

/* Send @len bytes of @buf on @sock with @n fds of @fds. */
static void send_with_fds(int sock, const void *buf, size_t len, const int *fds, int n)
{
        union {
                char buf[CMSG_SPACE(4 * sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = { (void *)buf, len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        struct cmsghdr *c;

        assert_true(n >= 0 && n <= 4);
        if (n) {
                msg.msg_control = ctl.buf;
                msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
                memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
        }
        assert_int_equal(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

/*
 * A well-formed message of one segment handle (its one fd) resent with no
 * fd, or with two: the count the records declare is not what came, on a
 * record socket and on a stream alike: -EPROTO, every fd that came closed,
 * @got untouched.  On a stream the call returned 0 instead (the read of
 * the records' rest had left its 0 in the answer).
 */
static void test_fd_count_mismatch_is_eproto(void **state)
{
        static const int types[] = { SOCK_SEQPACKET, SOCK_STREAM };
        char bytes[512];
        struct brd_handle h, got;
        struct brd_seg *sg;
        int t, n, sp[2], fds[2];
        ssize_t len;

        (void)state;
        sg = filled_seg(4096, 1, &h);
        assert_int_equal(h.nfds, 1);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(brd_handle_send(sp[0], &h, 1), 0);
        len = recv(sp[1], bytes, sizeof(bytes), 0);     /* its fd is dropped: not taken */
        assert_true(len > 0);
        close(sp[0]);
        close(sp[1]);
        fds[0] = fds[1] = h.fds[0];
        for (t = 0; t < 2; t++) {
                for (n = 0; n <= 2; n += 2) {
                        int before;

                        assert_int_equal(socketpair(AF_UNIX, types[t] | SOCK_CLOEXEC, 0, sp), 0);
                        send_with_fds(sp[0], bytes, (size_t)len, fds, n);
                        before = t_fd_count();
                        memset(&got, 0x5a, sizeof(got));
                        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 1000), -EPROTO);
                        assert_int_equal(t_fd_count(), before);
                        assert_int_equal(got.kind, 0x5a5a5a5a);
                        close(sp[0]);
                        close(sp[1]);
                }
        }
        brd_handle_close(&h);
        brd_seg_close(sg);
}

/*
 * An urgent byte (MSG_OOB, which AF_UNIX streams carry since Linux 5.15)
 * is no part of a brood stream, and a peek cannot see past it while
 * poll() says readable: the call answered nothing and spun on a CPU,
 * past its timeout, for as long as the byte stayed.  Now -EPROTO at once.
 */
static void test_stream_urgent_byte_is_eproto(void **state)
{
        struct brd_handle got;
        int sp[2], r;

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        if (send(sp[0], "x", 1, MSG_OOB) != 1) {
                close(sp[0]);
                close(sp[1]);
                skip();                 /* no AF_UNIX urgent data (Linux < 5.15) */
        }
        /* Not -ETIMEDOUT: it is told at once. */
        r = brd_handle_recv(sp[1], &got, 1, 200);
        assert_int_equal(r, -EPROTO);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 0), -EPROTO);
        close(sp[0]);
        close(sp[1]);
}

/* A message of two handles to a child whose fd table has one slot free:
 * the first fd arrives, the second is dropped (MSG_CTRUNC): -EMFILE, with
 * the fd that arrived closed.  @type: the socket's. */
static void ctrunc_at_fd_limit(int type)
{
        struct brd_handle h[2];
        struct brd_seg *s[2];
        int sp[2], i;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp), 0);
        for (i = 0; i < 2; i++)
                s[i] = filled_seg(4096, i, &h[i]);
        assert_int_equal(brd_handle_send(sp[0], h, 2), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct brd_handle got[2];
                struct rlimit rl = { 256, 256 };
                int n, r, last = -1, fd;

                for (i = 0; i < 2; i++)
                        brd_handle_close(&h[i]);
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(2);
                /* Fill the table, then free exactly one slot: the first fd of
                 * the message fits, the second is dropped (E7). */
                while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
                        last = fd;
                if (errno != EMFILE || last < 0)
                        _exit(5);
                close(last);
                n = t_fd_count();
                r = brd_handle_recv(sp[1], got, 2, 1000);
                if (r != -EMFILE)
                        _exit(3);
                if (t_fd_count() != n)
                        _exit(4);       /* the fd that did arrive was closed */
                /* A record went whole; a stream is torn (RELIABILITY C20):
                 * the message's rest is no message, never a handle. */
                r = brd_handle_recv(sp[1], got, 2, 0);
                if (r != (type == SOCK_STREAM ? -EPROTO : -EAGAIN) || t_fd_count() != n)
                        _exit(6);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        for (i = 0; i < 2; i++) {
                brd_handle_close(&h[i]);
                brd_seg_close(s[i]);
        }
        close(sp[0]);
        close(sp[1]);
}

/* On a record socket and on a stream alike (RELIABILITY C20). */
static void test_ctrunc_at_fd_limit(void **state)
{
        (void)state;
        ctrunc_at_fd_limit(SOCK_SEQPACKET);
        ctrunc_at_fd_limit(SOCK_STREAM);
}

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76                 /* Linux 6.5 */
#endif

/*
 * The most fds one message can carry (SCM_MAX_FD = 253: 63 handles of 4 and
 * one of 1) arrive whole on a receiving socket that also asks the kernel for
 * SCM_CREDENTIALS (it comes first in the control buffer and used to push the
 * fds past its end: MSG_CTRUNC, -EPROTO), and for SCM_SECURITY and SCM_PIDFD
 * where the kernel has them (a pidfd the kernel installs is closed: no fd
 * is left behind), and for receive timestamps (SO_TIMESTAMPNS and
 * SO_TIMESTAMPING at once).
 */
static void test_recv_max_fds_beside_credentials(void **state)
{
        struct brd_handle h[BRD_HANDLE_MAX_BATCH], got[BRD_HANDLE_MAX_BATCH];
        int sp[2], i, k, mfd, fds, one = 1, mode, total;

        mfd = memfd_create("fds", MFD_CLOEXEC);
        assert_true(mfd >= 0);
        for (i = 0; i < BRD_HANDLE_MAX_BATCH; i++) {
                h[i] = (struct brd_handle){ .kind = BRD_HANDLE_SEG, .size = 4096,
                                            .nfds = i < BRD_HANDLE_MAX_BATCH - 1 ? 4 : 1 };
                for (k = 0; k < BRD_HANDLE_MAX_FDS; k++)
                        h[i].fds[k] = k < (int)h[i].nfds ? mfd : -1;
        }
        for (mode = 0; mode < 4; mode++) {
                assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
                if (mode >= 1)
                        assert_int_equal(setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one,
                                                    sizeof(one)), 0);
                if (mode >= 2) {
                        /* Not every kernel has them (SO_PASSPIDFD: 6.5). */
                        (void)setsockopt(sp[1], SOL_SOCKET, SO_PASSSEC, &one, sizeof(one));
                        (void)setsockopt(sp[1], SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one));
                }
                if (mode == 3) {
                        /* A receive timestamp comes before the fds, and two
                         * of them where both kinds are asked. */
                        int ts = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE;

                        assert_int_equal(setsockopt(sp[1], SOL_SOCKET, SO_TIMESTAMPNS, &one,
                                                    sizeof(one)), 0);
                        assert_int_equal(setsockopt(sp[1], SOL_SOCKET, SO_TIMESTAMPING, &ts,
                                                    sizeof(ts)), 0);
                }
                assert_int_equal(brd_handle_send(sp[0], h, BRD_HANDLE_MAX_BATCH), 0);
                fds = t_fd_count();
                assert_int_equal(brd_handle_recv(sp[1], got, BRD_HANDLE_MAX_BATCH, 1000),
                                 BRD_HANDLE_MAX_BATCH);
                for (i = 0, total = 0; i < BRD_HANDLE_MAX_BATCH; i++) {
                        assert_int_equal(got[i].nfds, h[i].nfds);
                        for (k = 0; k < (int)got[i].nfds; k++) {
                                assert_true(got[i].fds[k] > 2);
                                assert_int_equal(fcntl(got[i].fds[k], F_GETFD), FD_CLOEXEC);
                                total++;
                        }
                }
                assert_int_equal(total, 253);
                assert_int_equal(t_fd_count(), fds + 253);
                for (i = 0; i < BRD_HANDLE_MAX_BATCH; i++)
                        brd_handle_close(&got[i]);
                assert_int_equal(t_fd_count(), fds);
                close(sp[0]);
                close(sp[1]);
        }
        close(mfd);
}

static void test_handle_close_is_idempotent_aba(void **state)
{
        struct brd_handle h, d;
        struct brd_seg *s = filled_seg(4096, 9, &h);
        int num = h.fds[0], other;

        assert_int_equal(brd_handle_dup(&h, &h), -EINVAL);       /* would lose h's fds */
        /* A handle of no kind of brood's owns nothing: one left as garbage
         * by a failed call is emptied, and the fds it names stay open. */
        d = (struct brd_handle){ .kind = 0x5a5a5a5a, .nfds = 1, .fds = { num, -1, -1, -1 } };
        brd_handle_close(&d);
        assert_int_equal(d.nfds, 0);
        assert_int_equal(d.fds[0], -1);
        assert_true(fcntl(num, F_GETFD) >= 0);
        assert_int_equal(h.fds[0], num);
        assert_int_equal(brd_handle_dup(&h, &d), 0);
        assert_int_not_equal(d.fds[0], h.fds[0]);
        brd_handle_close(&h);
        /* The number is reused at once by the next open (E5)... */
        other = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_int_equal(other, num);
        /* ...and a second close of the handle must not touch it. */
        brd_handle_close(&h);
        assert_true(fcntl(other, F_GETFD) >= 0);
        close(other);
        check_attached(&d, 9);
        brd_handle_close(&d);
        brd_handle_close(NULL);
        brd_seg_close(s);
}

/*
 * A handle used after brd_handle_close() is "closed" (DESIGN: -EBADF closed,
 * stale) for every call that takes one; a zeroed one is no handle
 * (-EINVAL).  And a ring handle whose doorbell fd was closed meanwhile is
 * -EBADF too.  Before, every one answered -EINVAL, and a fork-mode spawn
 * passed the closed handle on as an empty one.
 */
static int fn_exit0(void *arg, struct brd_handle *h, size_t n)
{
        return 0;
}

/* Every call that passes @h on (dup, send, spawn in fork and exec mode)
 * answers -EBADF, and makes nothing. */
static void passing_on_ebadf(const struct brd_handle *h)
{
        struct brd_spawn_opts o = { .fn = fn_exit0, .handles = h, .nhandles = 1 };
        struct brd_handle d;
        struct brd_fsrv *fs;
        struct brd_child *c = NULL;
        int sv[2];

        assert_int_equal(brd_handle_dup(h, &d), -EBADF);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(brd_handle_send(sv[0], h, 1), -EBADF);
        close(sv[0]);
        close(sv[1]);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EBADF);
        o.fn = NULL;
        o.argv = (char *const[]){ "/bin/true", NULL };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EBADF);
        assert_null(c);
        brd_fsrv_stop(fs);
}

static void test_closed_handle_is_ebadf(void **state)
{
        struct brd_handle h, z = { 0 }, rp, rc;
        struct brd_seg *s = filled_seg(4096, 3, &h), *a = NULL;
        struct brd_pool *p = NULL;
        struct brd_ring *r = NULL;

        (void)state;
        brd_handle_close(&h);
        assert_int_equal(h.kind, BRD_HANDLE_CLOSED);
        assert_int_equal(brd_seg_attach(&h, &a), -EBADF);
        assert_int_equal(brd_seg_attach(&z, &a), -EINVAL);
        assert_int_equal(brd_pool_attach(&h, &p), -EBADF);
        assert_int_equal(brd_ring_attach(&h, &r), -EBADF);
        assert_int_equal(brd_ring_attach(&z, &r), -EINVAL);
        passing_on_ebadf(&h);
        {
                char env[512], envpid[64];

                assert_int_equal(brd_handle_env_encode(&h, 1, getpid(), env, sizeof(env), envpid,
                                                       sizeof(envpid)), -EBADF);
                assert_int_equal(brd_handle_env_encode(&z, 1, getpid(), env, sizeof(env), envpid,
                                                       sizeof(envpid)), -EINVAL);
        }
        assert_null(a);
        assert_null(p);
        assert_null(r);
        /* A ring handle whose doorbell was closed under it. */
        assert_int_equal(brd_ring_create(4096, 0, &rp, &rc), 0);
        close(rp.fds[2 /* the space doorbell */]);
        assert_int_equal(brd_ring_attach(&rp, &r), -EBADF);
        rp.fds[2 /* the space doorbell */] = -1;
        assert_null(r);
        brd_handle_close(&rp);
        brd_handle_close(&rc);
        brd_seg_close(s);
}

/*
 * A copy of @h after @h was closed, its numbers taken by other files
 * (@other dup'ed onto fds[0], /dev/null onto the rest): every call given
 * the copy answers -EBADF (RELIABILITY D27), and closing it closes none of
 * those files.  Before, attach mapped the other object (a segment or pool
 * of someone else's, written through the stale copy), dup and send passed
 * it on, and close closed the files that had taken its numbers.
 */
static void stale_copy_refused(struct brd_handle *h, int other)
{
        struct brd_handle cp = *h;
        struct brd_seg *s = NULL;
        struct brd_pool *p = NULL;
        struct brd_ring *r = NULL;
        int nums[BRD_HANDLE_MAX_FDS], null = open("/dev/null", O_RDWR | O_CLOEXEC);
        uint32_t i, n = cp.nfds;

        assert_true(null >= 0);
        brd_handle_close(h);
        assert_int_equal(dup3(other, cp.fds[0], O_CLOEXEC), cp.fds[0]);
        for (i = 1; i < cp.nfds; i++)
                assert_int_equal(dup3(null, cp.fds[i], O_CLOEXEC), cp.fds[i]);
        if (cp.kind == BRD_HANDLE_SEG)
                assert_int_equal(brd_seg_attach(&cp, &s), -EBADF);
        else if (cp.kind == BRD_HANDLE_POOL)
                assert_int_equal(brd_pool_attach(&cp, &p), -EBADF);
        else
                assert_int_equal(brd_ring_attach(&cp, &r), -EBADF);
        assert_null(s);
        assert_null(p);
        assert_null(r);
        passing_on_ebadf(&cp);
        /* Close empties the copy and leaves the files that took its numbers. */
        memcpy(nums, cp.fds, sizeof(nums));
        brd_handle_close(&cp);
        assert_int_equal(cp.kind, BRD_HANDLE_CLOSED);
        for (i = 0; i < n; i++) {
                assert_true(fcntl(nums[i], F_GETFD) >= 0);
                close(nums[i]);
        }
        close(null);
}

static void test_stale_copy_is_ebadf(void **state)
{
        struct brd_handle h, o, rp, rc, op, oc;
        struct brd_seg *s, *os;
        struct brd_pool *p, *other_pool;

        (void)state;
        /* A segment's copy, its fd now another segment's memfd. */
        s = filled_seg(4096, 1, &h);
        os = filled_seg(4096, 2, &o);
        stale_copy_refused(&h, o.fds[0]);
        brd_handle_close(&o);
        brd_seg_close(os);
        brd_seg_close(s);

        /* A pool's, its fd now another pool's. */
        assert_int_equal(brd_pool_create(1 << 20, 0, &p), 0);
        assert_int_equal(brd_pool_create(1 << 20, 0, &other_pool), 0);
        assert_int_equal(brd_pool_export(p, &h), 0);
        assert_int_equal(brd_pool_export(other_pool, &o), 0);
        stale_copy_refused(&h, o.fds[0]);
        brd_handle_close(&o);
        brd_pool_close(other_pool);
        brd_pool_close(p);

        /* A ring's, its fds now another ring's memfd and /dev/null. */
        assert_int_equal(brd_ring_create(4096, 0, &rp, &rc), 0);
        assert_int_equal(brd_ring_create(4096, 0, &op, &oc), 0);
        stale_copy_refused(&rp, op.fds[0]);
        brd_handle_close(&rc);
        brd_handle_close(&op);
        brd_handle_close(&oc);
}

/*
 * brd__handle_valid() wrapped: once armed, the check passes and then the
 * handle's count grows to 200, as a peer writing a handle kept in shared
 * memory would make it right after the check.
 */
static struct brd_handle *grow_victim;

bool __real_brd__handle_valid(const struct brd_handle *h, uint32_t kind, uint32_t min_fds);
bool __wrap_brd__handle_valid(const struct brd_handle *h, uint32_t kind, uint32_t min_fds);
bool __wrap_brd__handle_valid(const struct brd_handle *h, uint32_t kind, uint32_t min_fds)
{
        bool ok = __real_brd__handle_valid(h, kind, min_fds);

        if (grow_victim) {
                grow_victim->nfds = 200;
                grow_victim = NULL;
        }
        return ok;
}

static void test_handle_read_once(void **state)
{
        struct brd_handle h, d, got[2];
        struct brd_seg *s = filled_seg(4096, 0x41, &h);
        int sp[2];

        /* dup: went on to dup fds[1] (-1): -EBADF (and past the four fds,
         * into its own stack, had they been open ones). */
        grow_victim = &h;
        assert_int_equal(brd_handle_dup(&h, &d), 0);
        assert_int_equal(h.nfds, 200);
        h.nfds = 1;
        assert_int_equal(d.nfds, 1);
        assert_int_not_equal(d.fds[0], h.fds[0]);
        assert_int_equal(d.fds[1], -1);
        check_attached(&d, 0x41);
        brd_handle_close(&d);
        /* send: copied 200 fds out of a handle of four, past its end. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        grow_victim = &h;
        assert_int_equal(brd_handle_send(sp[0], &h, 1), 0);
        assert_int_equal(h.nfds, 200);
        h.nfds = 1;
        assert_int_equal(brd_handle_recv(sp[1], got, 2, 1000), 1);
        assert_int_equal(got[0].nfds, 1);
        check_attached(&got[0], 0x41);
        brd_handle_close(&got[0]);
        close(sp[0]);
        close(sp[1]);
        brd_handle_close(&h);
        brd_seg_close(s);
}

static pid_t spawn_helper(const char *mode, int byte, int fd3, char **envp)
{
        char *helper = getenv("BRD_HELPER_FDCOUNT");
        char arg[16];
        char *argv[] = { helper, (char *)mode, arg, NULL };
        posix_spawn_file_actions_t fa;
        pid_t pid;

        assert_non_null(helper);
        snprintf(arg, sizeof(arg), "%d", byte);
        posix_spawn_file_actions_init(&fa);
        if (fd3 >= 0)
                posix_spawn_file_actions_adddup2(&fa, fd3, 3);   /* dup2 clears CLOEXEC */
        assert_int_equal(posix_spawn(&pid, helper, &fa, NULL, argv, envp ? envp : environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        return pid;
}

static void test_exec_helper_over_socket(void **state)
{
        struct brd_handle h;
        struct brd_seg *s = filled_seg(16384, 0x41, &h);
        unsigned char *p = brd_seg_addr(s);
        int sp[2];
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        pid = spawn_helper("seg-sock", 0x41, sp[1], NULL);
        close(sp[1]);
        assert_int_equal(brd_handle_send(sp[0], &h, 1), 0);
        brd_handle_close(&h);
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(p[0], 0x42);
        assert_int_equal(p[16383], 0x42);
        close(sp[0]);
        brd_seg_close(s);
}

static void test_exec_helper_from_env(void **state)
{
        char env[512], envpid[64];
        char *envp[] = { env, envpid, NULL };
        struct brd_handle h;
        struct brd_seg *s = filled_seg(8192, 0x61, &h);
        unsigned char *p = brd_seg_addr(s);
        pid_t pid;

        /* The helper's pid is not known before the spawn: posix_spawn can't
         * fill it in, so describe the handles for "any pid" by spawning a
         * shell-free re-exec: encode with our pid, then check the helper
         * refuses it, and with the right pid (forked child execs) accepts. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *helper = getenv("BRD_HELPER_FDCOUNT");
                char *argv[] = { helper, "seg-env", "97", NULL };
                int fd = h.fds[0];

                if (fd != 3) {
                        if (dup2(fd, 3) < 0)
                                _exit(100);
                        close(fd);
                } else {
                        (void)fcntl(3, F_SETFD, 0);
                }
                h.fds[0] = 3;
                if (brd_handle_env_encode(&h, 1, getpid(), env, sizeof(env), envpid,
                                          sizeof(envpid)) < 0)
                        _exit(101);
                execve(helper, argv, envp);
                _exit(102);
        }
        brd_handle_close(&h);
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(p[0], 0x62);
        assert_int_equal(p[8191], 0x62);
        brd_seg_close(s);
}

/* Both variables set, the description meant for this process. */
static void env_set_ours(const char *desc)
{
        char pid[32];

        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        assert_int_equal(setenv(BRD_HANDLE_ENV, desc, 1), 0);
        assert_int_equal(setenv(BRD_HANDLE_ENV_PID, pid, 1), 0);
}

static void env_gone(void)
{
        assert_null(getenv(BRD_HANDLE_ENV));
        assert_null(getenv(BRD_HANDLE_ENV_PID));
}

static void test_env_wrong_pid_and_malformed(void **state)
{
        struct brd_handle h = { .kind = BRD_HANDLE_SEG, .nfds = 1, .fds = { 0, -1, -1, -1 },
                                .size = 4096 };
        struct brd_handle got[2];
        char env[256], envpid[64];

        assert_int_equal(brd_handle_env_encode(&h, 1, getpid() + 1, env, sizeof(env), envpid,
                                               sizeof(envpid)), 0);
        assert_int_equal(strncmp(env, "BROOD_HANDLES=1,1,1000,0,0,0", 28), 0);
        assert_int_equal(brd_handle_env_encode(&h, 1, 1, env, 10, envpid, sizeof(envpid)),
                         -EMSGSIZE);
        assert_int_equal(brd_handle_env_encode(&h, 1, 1, env, sizeof(env), envpid, 8),
                         -EMSGSIZE);
        setenv("BROOD_HANDLES", "1,1,1000,0,0,0", 1);
        setenv("BROOD_HANDLES_PID", "1", 1);
        assert_int_equal(brd_handle_from_env(got, 2), 0);       /* meant for someone else */
        env_gone();                     /* ...and not passed on to our children */
        env_set_ours("1,1,zz");
        assert_int_equal(brd_handle_from_env(got, 2), -EPROTO);
        env_gone();
        {
                char many[20 * 16] = "";
                int k;

                /* names fds 3..82: far more than are open */
                for (k = 0; k < 20; k++)
                        strcat(many, k ? ";1,4,1000,0,0,0" : "1,4,1000,0,0,0");
                env_set_ours(many);
                assert_int_equal(brd_handle_from_env(got, 2), -EPROTO);
                env_gone();
        }
        env_set_ours("9,1,1000,0,0,0");
        assert_int_equal(brd_handle_from_env(got, 2), -EPROTO);
        env_gone();
        /* Bad arguments: the environment is not touched. */
        env_set_ours("1,1,zz");
        assert_int_equal(brd_handle_from_env(NULL, 2), -EINVAL);
        assert_int_equal(brd_handle_from_env(got, 0), -EINVAL);
        assert_string_equal(getenv(BRD_HANDLE_ENV), "1,1,zz");
        assert_non_null(getenv(BRD_HANDLE_ENV_PID));
        unsetenv("BROOD_HANDLES");
        unsetenv("BROOD_HANDLES_PID");
        assert_int_equal(brd_handle_from_env(got, 2), 0);
}

#define NSENTINEL 3

/* fds 3, 4, 5 open (ours if they were free: /dev/null, not CLOEXEC, so a
 * CLOEXEC set by mistake shows), remembered by flags and inode. */
struct sentinels {
        bool mine[NSENTINEL];
        int flags[NSENTINEL];
        struct stat st[NSENTINEL];
};

static void sentinels_open(struct sentinels *sn)
{
        int null, hi, i;

        for (i = 0; i < NSENTINEL; i++)
                sn->mine[i] = fcntl(3 + i, F_GETFD) < 0;
        /* Kept above the sentinels while they are made. */
        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(null >= 0);
        hi = fcntl(null, F_DUPFD_CLOEXEC, 3 + NSENTINEL);
        assert_true(hi >= 3 + NSENTINEL);
        close(null);
        for (i = 0; i < NSENTINEL; i++) {
                if (sn->mine[i])
                        assert_int_equal(dup3(hi, 3 + i, 0), 3 + i);
                sn->flags[i] = fcntl(3 + i, F_GETFD);
                assert_true(sn->flags[i] >= 0);
                assert_int_equal(fstat(3 + i, &sn->st[i]), 0);
        }
        close(hi);
}

/* Each is still open, the same file, with the same flags. */
static void sentinels_intact(const struct sentinels *sn)
{
        struct stat st;
        int i;

        for (i = 0; i < NSENTINEL; i++) {
                assert_int_equal(fcntl(3 + i, F_GETFD), sn->flags[i]);
                assert_int_equal(fstat(3 + i, &st), 0);
                assert_true(st.st_dev == sn->st[i].st_dev && st.st_ino == sn->st[i].st_ino);
        }
}

static void sentinels_close(const struct sentinels *sn)
{
        int i;

        for (i = 0; i < NSENTINEL; i++)
                if (sn->mine[i])
                        close(3 + i);
}

/*
 * An fd the description names that is close-on-exec was not inherited
 * through an exec (this program or its runtime opened it after): the
 * description is not ours, -EPROTO, and that fd is left alone, also where
 * there are more handles than @max.  It was taken as a handle (closed by
 * the handle's close under its owner), or at once closed with -EMSGSIZE.
 */
static void test_env_cloexec_fd_not_taken(void **state)
{
        struct brd_handle got[1];
        struct sentinels sn;
        int fds;

        (void)state;
        sentinels_open(&sn);
        if (!sn.mine[0] || !sn.mine[1]) {
                sentinels_close(&sn);
                skip();
        }
        assert_int_equal(fcntl(3, F_SETFD, FD_CLOEXEC), 0);
        fds = t_fd_count();
        env_set_ours("1,1,1000,0,0,0");
        assert_int_equal(brd_handle_from_env(got, 1), -EPROTO);
        env_gone();
        env_set_ours("1,1,1000,0,0,0;1,1,1000,0,0,0");
        assert_int_equal(brd_handle_from_env(got, 1), -EPROTO);
        env_gone();
        assert_int_equal(t_fd_count(), fds);
        assert_int_equal(fcntl(3, F_GETFD), FD_CLOEXEC);
        assert_int_equal(fcntl(3, F_SETFD, 0), 0);
        sentinels_intact(&sn);
        sentinels_close(&sn);
}

/*
 * Every -EPROTO of brd_handle_from_env() removes both variables (a later
 * exec'd child must not inherit a stale description), closes nothing and
 * changes no fd: the fds it names are open here, and are the test's own,
 * not handed over.  @h is untouched.
 */
static void test_env_errors_remove_variables_close_nothing(void **state)
{
        static const struct {
                const char *desc;
                int err;
        } bad[] = {
                { "1,1,1000,0,0,0;", -EPROTO },                         /* trailing ';' */
                { "1,1,1000,0,0,0;1,1,1000,0,0,0;", -EPROTO },
                { ";1,1,1000,0,0,0", -EPROTO },
                { "1,1,1000,0,0,0;;1,1,1000,0,0,0", -EPROTO },
                { "1,1,1000,0,0,0;9,1,1000,0,0,0", -EPROTO },           /* unknown kind */
                { "1,1,1000,0,0,0,7", -EPROTO },                        /* a seventh field */
                { "1,5,1000,0,0,0", -EPROTO },                          /* > BRD_HANDLE_MAX_FDS */
                { "1,2,1000,0,0,0;1,1,1000,0,0,0;1,1,0,0,0,0", -EPROTO },   /* fd 6 not open */
        };
        struct brd_handle got[2], before[2];
        struct sentinels sn;
        size_t i;
        int fds;

        sentinels_open(&sn);
        memset(got, 0x5a, sizeof(got));
        memcpy(before, got, sizeof(got));
        fds = t_fd_count();
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                /* fd 6 must be closed for the "not open" case to mean it. */
                if (strstr(bad[i].desc, "1,1,0,0,0,0") && fcntl(3 + NSENTINEL, F_GETFD) >= 0)
                        continue;
                print_message("  \"%s\"\n", bad[i].desc);
                env_set_ours(bad[i].desc);
                assert_int_equal(brd_handle_from_env(got, 2), bad[i].err);
                env_gone();
                sentinels_intact(&sn);
                assert_int_equal(t_fd_count(), fds);
                assert_memory_equal(got, before, sizeof(got));
        }
        sentinels_close(&sn);
}

/*
 * More handles than @max: -EMSGSIZE after the whole description checked
 * out, so the fds it names (3, 4, 5) are ours, and they are closed (the
 * variables are gone, so nobody could take them later, and they are not
 * CLOEXEC).  An fd above them is untouched, and so is @h.
 */
static void test_env_too_many_closes_them(void **state)
{
        struct brd_handle got[2], before[2];
        struct sentinels sn;
        struct stat st;
        int fds, above, i;

        sentinels_open(&sn);
        for (i = 0; i < NSENTINEL; i++) {
                if (!sn.mine[i]) {
                        sentinels_close(&sn);
                        skip();         /* fds 3.. are the runner's: not ours to close */
                }
        }
        above = open("/dev/null", O_RDONLY);    /* past the named fds: must survive */
        assert_true(above >= 3 + NSENTINEL);
        memset(got, 0x5a, sizeof(got));
        memcpy(before, got, sizeof(got));
        fds = t_fd_count();
        env_set_ours("1,1,1000,0,0,0;1,1,1000,0,0,0;1,1,1000,0,0,0");
        assert_int_equal(brd_handle_from_env(got, 2), -EMSGSIZE);
        env_gone();
        for (i = 0; i < NSENTINEL; i++) {
                errno = 0;
                assert_int_equal(fcntl(3 + i, F_GETFD), -1);
                assert_int_equal(errno, EBADF);
        }
        assert_int_equal(t_fd_count(), fds - NSENTINEL);
        assert_int_equal(fcntl(above, F_GETFD), 0);
        assert_int_equal(fstat(above, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_memory_equal(got, before, sizeof(got));
        close(above);
}

/* The encoder never ends with ';': its output with one appended is not a
 * description, while the output itself is. */
static void test_env_trailing_separator_is_eproto(void **state)
{
        struct brd_handle h[2] = {
                { .kind = BRD_HANDLE_SEG, .nfds = 1, .fds = { 3, -1, -1, -1 }, .size = 4096 },
                { .kind = BRD_HANDLE_POOL, .nfds = 1, .fds = { 4, -1, -1, -1 }, .size = 8192,
                  .id = 0xabc },
        };
        struct brd_handle got[2];
        char env[256], envpid[64], desc[256];
        struct sentinels sn;

        sentinels_open(&sn);
        assert_int_equal(brd_handle_env_encode(h, 2, getpid(), env, sizeof(env), envpid,
                                               sizeof(envpid)), 0);
        assert_int_not_equal(env[strlen(env) - 1], ';');
        snprintf(desc, sizeof(desc), "%s;", env + strlen(BRD_HANDLE_ENV "="));
        env_set_ours(desc);
        assert_int_equal(brd_handle_from_env(got, 2), -EPROTO);
        env_gone();
        sentinels_intact(&sn);
        /* Without the ';' the same text is taken: fds 3 and 4, now CLOEXEC. */
        env_set_ours(env + strlen(BRD_HANDLE_ENV "="));
        assert_int_equal(brd_handle_from_env(got, 2), 2);
        env_gone();
        assert_int_equal(got[0].kind, BRD_HANDLE_SEG);
        assert_int_equal(got[0].fds[0], 3);
        assert_int_equal(got[1].kind, BRD_HANDLE_POOL);
        assert_int_equal(got[1].fds[0], 4);
        {
                struct stat st;

                /* Named by the file that arrived, not the description's 0xabc. */
                assert_int_equal(fstat(4, &st), 0);
                assert_int_equal(got[1].id, st.st_dev);
                assert_int_equal(got[1].aux, st.st_ino);
        }
        assert_int_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        assert_int_equal(fcntl(4, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        sentinels_close(&sn);   /* the handles' fds are the sentinels: closed once */
}

/*
 * A handle that arrives names the file it arrived with, whatever its sender
 * said (an older library's ring handle carried the capacity in aux, a
 * hostile sender anything): here a description whose aux is not the
 * segment's inode.  Before, it kept that aux: attach refused the handle as
 * stale (-EBADF) and its close left the fd open, for good.
 */
static void test_arrived_handle_names_its_file(void **state)
{
        struct brd_handle h, got[1];
        struct brd_seg *s, *a;
        struct stat st;
        char desc[128];

        (void)state;
        if (fcntl(3, F_GETFD) >= 0)
                skip();                 /* fd 3 is the runner's */
        s = filled_seg(4096, 0x5a, &h);
        assert_int_equal(dup3(h.fds[0], 3, 0), 3);     /* inherited: not CLOEXEC */
        brd_handle_close(&h);
        snprintf(desc, sizeof(desc), "%x,1,1000,0,7,3039", BRD_HANDLE_SEG);
        env_set_ours(desc);
        assert_int_equal(brd_handle_from_env(got, 1), 1);
        env_gone();
        assert_int_equal(fstat(3, &st), 0);
        assert_int_equal(got[0].aux, st.st_ino);
        assert_int_equal(got[0].id, st.st_dev);
        assert_int_equal(brd_seg_attach(&got[0], &a), 0);
        assert_int_equal(((unsigned char *)brd_seg_addr(a))[4095], 0x5a);
        brd_seg_close(a);
        brd_handle_close(&got[0]);
        assert_true(fcntl(3, F_GETFD) < 0);             /* closed with it */
        brd_seg_close(s);
}

/*
 * A ring handle that arrives with no memfd in fds[0] (a pipe here) is
 * refused by attach, and its close closes all its fds.  Before, its stamp
 * (taken anew on arrival) at once said "stale" (a ring's memfd has no
 * link), and the close left the three fds open: a peer could exhaust ours.
 */
static void test_arrived_ring_without_memfd_closes(void **state)
{
        struct brd_handle got[1];
        struct brd_ring *r = NULL;
        char desc[128];
        int pp[2], i;

        (void)state;
        for (i = 3; i < 6; i++)
                if (fcntl(i, F_GETFD) >= 0)
                        skip();         /* the runner's */
        assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
        for (i = 0; i < 2; i++) {       /* out of 3-5's way first */
                int hi = fcntl(pp[i], F_DUPFD_CLOEXEC, 20);

                assert_true(hi >= 20);
                close(pp[i]);
                pp[i] = hi;
        }
        assert_int_equal(dup2(pp[0], 3), 3);
        assert_int_equal(dup2(pp[1], 4), 4);
        assert_int_equal(dup2(pp[1], 5), 5);
        close(pp[0]);
        close(pp[1]);
        snprintf(desc, sizeof(desc), "%x,3,2000,0,1,5", BRD_HANDLE_RING_PRODUCER);
        env_set_ours(desc);
        assert_int_equal(brd_handle_from_env(got, 1), 1);
        env_gone();
        assert_true(brd_ring_attach(&got[0], &r) < 0);
        assert_null(r);
        brd_handle_close(&got[0]);
        for (i = 3; i < 6; i++)
                assert_true(fcntl(i, F_GETFD) < 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_send_recv_seqpacket, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_send_recv_stream, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_recv_timeouts_and_eof, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_recv_alarm_storm_times_out, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_send_to_closed_peer_is_epipe, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nonblocking_stream_stopped_midway, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_recv_stream_part_then_stall, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_recv_stream_whole_within_timeout, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_too_many_handles_closes_all, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_malformed_message_closes_fds, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fd_count_mismatch_is_eproto, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_stream_urgent_byte_is_eproto, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_ctrunc_at_fd_limit, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_recv_max_fds_beside_credentials, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_handle_close_is_idempotent_aba, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_closed_handle_is_ebadf, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_stale_copy_is_ebadf, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_arrived_handle_names_its_file, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_arrived_ring_without_memfd_closes, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_handle_read_once, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_exec_helper_over_socket, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_exec_helper_from_env, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_env_wrong_pid_and_malformed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_env_errors_remove_variables_close_nothing, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_env_cloexec_fd_not_taken, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_env_too_many_closes_them, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_env_trailing_separator_is_eproto, t_leak_setup, t_leak_teardown),
        };

        return cmocka_run_group_tests_name("shm-handle", tests, NULL, NULL);
}
