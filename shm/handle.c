/* SPDX-License-Identifier: MIT */
/*
 * Handles on the move: SCM_RIGHTS over AF_UNIX (PipeWire's rules: receive
 * with MSG_CMSG_CLOEXEC, MSG_CTRUNC is an error that closes what arrived) and
 * a LISTEN_FDS-style environment description for exec'd children.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <brood/handle.h>
#include "internal/brd-private.h"

#define BRD_WIRE_MAGIC   0x48445242u    /* "BRDH" little-endian */
#define BRD_WIRE_VERSION 1u
#define BRD_MAX_FDS      (BRD_HANDLE_MAX_BATCH * BRD_HANDLE_MAX_FDS)
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04                  /* Linux 6.5, glibc 2.39 */
#endif
/* Longest SCM_SECURITY label (SO_PASSSEC) the receive buffer has room for. */
#define HANDLE_SECCTX_MAX 256
/*
 * Room in the receive buffer for what the kernel may put beside the fds when
 * the receiving socket asks for it: SCM_CREDENTIALS (SO_PASSCRED) and
 * SCM_SECURITY (SO_PASSSEC) come before SCM_RIGHTS, so without room for
 * them a message with close to SCM_MAX_FD fds was cut (MSG_CTRUNC, -EPROTO);
 * SCM_PIDFD (SO_PASSPIDFD) comes after them.  A datagram or seqpacket
 * socket's receive timestamps come first of all: one SCM_TIMESTAMP(NS)
 * (SO_TIMESTAMP or SO_TIMESTAMPNS, a 64-bit time at most) and one
 * SCM_TIMESTAMPING (three of them) may come together.  None of them is
 * ours: they are skipped, and a pidfd the kernel installed for us is closed.
 */
#define HANDLE_CTL_TIME  (2 * sizeof(int64_t))  /* struct __kernel_timespec */
#define HANDLE_CTL_EXTRA (CMSG_SPACE(HANDLE_CTL_TIME) + CMSG_SPACE(3 * HANDLE_CTL_TIME) + \
                          CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(HANDLE_SECCTX_MAX) + \
                          CMSG_SPACE(sizeof(int)))
/* On a stream, the rest of a message that has begun must follow within
 * this (either way: sender and receiver): after it the stream is torn. */
#define HANDLE_REST_MS   1000

struct brd_wire_hdr {
        uint32_t magic;
        uint16_t version;
        uint16_t n;
};

struct brd_wire_rec {
        uint32_t kind, nfds;
        uint64_t size, flags, id, aux;
};
_Static_assert(sizeof(struct brd_wire_rec) == 40, "wire record is 40 bytes");

/*
 * A handle that arrived (brd_handle_recv(), brd_handle_from_env()) names
 * the files it arrived with: what its sender recorded of its own (an
 * older library's ring handle had the capacity there, a hostile one
 * anything) would make every call refuse it as stale and its close leave
 * its fds open.  Nothing recorded where its file cannot be looked at.
 */
static void handle_restamp(struct brd_handle *h)
{
        /* Not current even so (a ring's fds[0] that is not a memfd): a
         * record would make its own close leave its fds open. */
        if (!h->nfds || brd__handle_stamp(h) < 0 || brd__handle_current(h) < 0)
                h->aux = 0;
}

BRD_EXPORT void brd_handle_close(struct brd_handle *h)
{
        uint32_t i;

        if (!h)
                return;
        /* A handle of no kind owns nothing: not one left uninitialised by a
         * call that failed (out-parameters are untouched then), whose
         * "fds" would be stack garbage, another object's fds perhaps.  Nor
         * does a stale copy (its file gone from fds[0]: another copy was
         * closed, and its numbers may be other files' now). */
        if (brd__handle_kind_known(h->kind) && brd__handle_current(h) == 0)
                for (i = 0; i < h->nfds && i < BRD_HANDLE_MAX_FDS; i++)
                        brd__close(h->fds[i]);
        for (i = 0; i < BRD_HANDLE_MAX_FDS; i++)
                h->fds[i] = -1;
        h->nfds = 0;
        h->kind = BRD_HANDLE_CLOSED;
}

BRD_EXPORT int brd_handle_dup(const struct brd_handle *h, struct brd_handle *ret_handle)
{
        struct brd_handle c, src;
        uint32_t i;

        /* A copy over its own original would lose the original's fds. */
        if (!h || !ret_handle || ret_handle == h)
                return -EINVAL;
        /* Read once: *h may sit in memory another process writes (a handle
         * kept in a shared array), and a count that grew after the check
         * dup'd past the four fds into the stack. */
        src = *h;
        if (!brd__handle_valid(&src, src.kind, 0) || !brd__handle_kind_known(src.kind))
                return brd__handle_err(&src);
        if (brd__handle_current(&src) < 0)
                return -EBADF;
        c = src;
        for (i = 0; i < BRD_HANDLE_MAX_FDS; i++)
                c.fds[i] = -1;
        for (i = 0; i < src.nfds; i++) {
                int fd = brd__dup_cloexec(src.fds[i]);

                if (fd < 0) {
                        c.nfds = i;
                        brd_handle_close(&c);
                        return fd;
                }
                c.fds[i] = fd;
        }
        *ret_handle = c;
        return 0;
}

static int sock_type(int sock)
{
        int type;
        socklen_t len = sizeof(type);

        if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        return type;
}

BRD_EXPORT int brd_handle_send(int sock, const struct brd_handle *h, size_t n)
{
        char data[sizeof(struct brd_wire_hdr) + BRD_HANDLE_MAX_BATCH * sizeof(struct brd_wire_rec)];
        union {
                char buf[CMSG_SPACE(BRD_MAX_FDS * sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct brd_wire_hdr hdr = { BRD_WIRE_MAGIC, BRD_WIRE_VERSION, (uint16_t)n };
        struct msghdr msg = { 0 };
        struct iovec iov;
        size_t len, off = 0, i, nfds = 0;
        int64_t rest_deadline = 0;
        int fds[BRD_MAX_FDS];

        if (sock < 0 || !h || n == 0 || n > BRD_HANDLE_MAX_BATCH)
                return -EINVAL;
        memcpy(data, &hdr, sizeof(hdr));
        for (i = 0; i < n; i++) {
                /* Each handle read once (see brd_handle_dup()): the record,
                 * the check and the fds all come from this copy. */
                struct brd_handle c = h[i];
                struct brd_wire_rec rec = { c.kind, c.nfds, c.size, c.flags, c.id, c.aux };

                if (!brd__handle_kind_known(c.kind) || !brd__handle_valid(&c, c.kind, 0))
                        return brd__handle_err(&c);
                if (brd__handle_current(&c) < 0)
                        return -EBADF;
                memcpy(data + sizeof(hdr) + i * sizeof(rec), &rec, sizeof(rec));
                memcpy(fds + nfds, c.fds, c.nfds * sizeof(int));
                nfds += c.nfds;
        }
        /* The kernel carries at most SCM_MAX_FD (253) fds in one message. */
        if (nfds > 253)
                return -EINVAL;
        len = sizeof(hdr) + n * sizeof(struct brd_wire_rec);
        iov = (struct iovec){ data, len };
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (nfds) {
                struct cmsghdr *c;

                memset(&ctl, 0, sizeof(ctl));
                msg.msg_control = ctl.buf;
                msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        while (off < len) {
                ssize_t w;

                iov = (struct iovec){ data + off, len - off };
                /* MSG_NOSIGNAL: a vanished peer is -EPIPE, never SIGPIPE. */
                w = sendmsg(sock, &msg, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && off > 0) {
                                /* Mid-record on a non-blocking stream: the
                                 * rest must follow, within the second the
                                 * receiver gives it (read_rest()); a peer
                                 * that stops reading has torn the stream. */
                                int p;

                                if (!rest_deadline)
                                        rest_deadline = brd__deadline(HANDLE_REST_MS);
                                p = brd__poll_one(sock, POLLOUT, rest_deadline);
                                if (p < 0)
                                        return p;
                                if (p == 0)
                                        return -EPROTO;
                                continue;
                        }
                        return -errno;
                }
                off += (size_t)w;
                /* The fds travel with the first byte only. */
                msg.msg_control = NULL;
                msg.msg_controllen = 0;
        }
        return 0;
}

/* The fds of the SCM_RIGHTS messages of a control buffer, in order, into
 * @fds (at most @max: the rest are closed and *@overflow set).  Other
 * messages are skipped; the pidfd of an SCM_PIDFD is closed. */
static size_t take_fds(struct msghdr *msg, int *fds, size_t max, bool *overflow)
{
        struct cmsghdr *c;
        size_t n = 0;

        for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
                size_t k, cnt;
                int *p;

                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_PIDFD &&
                    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c), sizeof(fd));
                        if (fd >= 0)
                                brd__close(fd);
                        continue;
                }
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                p = (int *)CMSG_DATA(c);
                for (k = 0; k < cnt; k++) {
                        int fd;

                        memcpy(&fd, p + k, sizeof(fd));
                        if (n < max)
                                fds[n++] = fd;
                        else {
                                *overflow = true;
                                brd__close(fd);
                        }
                }
        }
        return n;
}

static void close_fds(int *fds, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                brd__close(fds[i]);
}

/* Read exactly @len bytes of a stream (no fds expected past the first byte). */
static int read_exact(int sock, char *buf, size_t len, int64_t deadline)
{
        size_t off = 0;

        while (off < len) {
                ssize_t r = recv(sock, buf + off, len - off, MSG_DONTWAIT);

                if (r > 0) {
                        off += (size_t)r;
                        continue;
                }
                if (r == 0)
                        return -EPROTO;         /* EOF inside a message */
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = brd__poll_one(sock, POLLIN, deadline);
                if (r < 0)
                        return (int)r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
        return 0;
}

/* The peer of connected socket @sock shut down its sending side. */
static bool peer_hung_up(int sock)
{
        struct pollfd p = { .fd = sock, .events = POLLRDHUP };

        return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

/* Naps while a stream message is queued in part (stream_whole()). */
#define HANDLE_NAP_MIN_NS 1000000
#define HANDLE_NAP_MAX_NS 64000000

/*
 * On a stream socket, before anything is taken: wait within the caller's
 * timeout until the next message is queued whole, so that the read takes
 * all of it or nothing, and a timeout leaves it (and its fds) queued.  It
 * is peeked (its fds are not taken: no control buffer); where the peek did
 * not hold it whole (it stops where a part's fds begin), its length from
 * the header is checked against what is queued (SIOCINQ).  0: read now (a whole
 * message; the end of the stream; bytes that are no header, which the read
 * calls malformed; a part whose peer hung up; or a header split where
 * another part's fds begin, which a peek cannot cross: the read waits for
 * its rest, see read_rest()).  -EAGAIN (timeout 0), -ETIMEDOUT, -EINTR,
 * other -errno.  A part queued keeps POLLIN set: it is looked at again
 * after naps (1 ms, doubling up to 64).
 */
static int stream_whole(int sock, int timeout_ms, int64_t deadline)
{
        char buf[sizeof(struct brd_wire_hdr) + BRD_HANDLE_MAX_BATCH * sizeof(struct brd_wire_rec)];
        int64_t nap = HANDLE_NAP_MIN_NS, now, end;
        struct brd_wire_hdr hdr;
        size_t want = 0;
        ssize_t got;
        int inq, r;

        for (;;) {
                /* The longest message: one sendmsg() is one piece, so a
                 * message peeked whole is queued whole (no SIOCINQ). */
                got = recv(sock, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0 && errno != EAGAIN)
                        return -errno;
                /* Urgent data (MSG_OOB) next, which no brood peer sends and
                 * no peek crosses, though poll() says readable: a torn
                 * stream, said at once (it spun until the deadline's end). */
                if (got < 0 && ioctl(sock, SIOCATMARK, &inq) == 0 && inq)
                        return -EPROTO;
                if (got == 0)
                        return 0;
                if (got >= (ssize_t)sizeof(hdr)) {
                        memcpy(&hdr, buf, sizeof(hdr));
                        if (hdr.magic != BRD_WIRE_MAGIC || hdr.version != BRD_WIRE_VERSION ||
                            hdr.n == 0 || hdr.n > BRD_HANDLE_MAX_BATCH)
                                return 0;
                        want = sizeof(hdr) + hdr.n * sizeof(struct brd_wire_rec);
                        if ((size_t)got >= want)
                                return 0;
                }
                if (got > 0) {
                        if (ioctl(sock, SIOCINQ, &inq) < 0)
                                return -errno;
                        if ((size_t)got < sizeof(hdr) ? inq > got : (size_t)inq >= want)
                                return 0;
                        if (peer_hung_up(sock))
                                return 0;
                }
                if (timeout_ms == 0)
                        return -EAGAIN;
                if (got < 0) {
                        r = brd__poll_one(sock, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                now = brd__now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                end = deadline - now <= nap ? deadline : now + nap;
                r = brd__poll_wait(-1, 0, end, false);
                if (r < 0)
                        return r;
                nap = nap < HANDLE_NAP_MAX_NS ? 2 * nap : nap;
        }
}

/*
 * The rest of a stream message that has begun (its fds are here), by
 * @rest: a second from its start, whatever the caller's timeout.  Only for
 * a message stream_whole() could not see whole (a header split where a
 * part's fds begin); a peer that sends a part and stalls holds no call
 * longer.  A stream that stops mid-message is broken (-EPROTO), not timed
 * out.
 */
static int read_rest(int sock, char *buf, size_t len, int64_t rest)
{
        int r = read_exact(sock, buf, len, rest);

        return r == -ETIMEDOUT ? -EPROTO : r;
}

BRD_EXPORT int brd_handle_recv(int sock, struct brd_handle *h, size_t max, int timeout_ms)
{
        char data[sizeof(struct brd_wire_hdr) + BRD_HANDLE_MAX_BATCH * sizeof(struct brd_wire_rec) + 1];
        union {
                char buf[CMSG_SPACE(BRD_MAX_FDS * sizeof(int)) + HANDLE_CTL_EXTRA];
                struct cmsghdr align;
        } ctl;
        int64_t deadline = brd__deadline(timeout_ms), rest;
        struct brd_wire_hdr hdr;
        struct msghdr msg = { 0 };
        struct iovec iov;
        int fds[BRD_MAX_FDS];
        size_t nfds = 0, i, used = 0, want;
        bool overflow = false, stream;
        ssize_t got;
        int type, r, cancel;

        if (sock < 0 || !h || max == 0)
                return -EINVAL;
        type = sock_type(sock);
        if (type < 0)
                return type;
        stream = type == SOCK_STREAM;
        if (stream) {
                r = stream_whole(sock, timeout_ms, deadline);
                if (r < 0)
                        return r;
        }
        for (;;) {
                iov = (struct iovec){ data, stream ? sizeof(hdr) : sizeof(data) };
                msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
                                       .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
                /* The bare syscall: recvmsg() is a cancellation point, and
                 * glibc acts on a cancel that comes as it returns, with the
                 * fds taken (nobody would close them).  It never blocks
                 * here; the poll() below is the call's cancellation point. */
                got = syscall(SYS_recvmsg, sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
                if (got >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                if (timeout_ms == 0)
                        return -EAGAIN;
                r = brd__poll_one(sock, POLLIN, deadline);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
        /* The fds are ours from here: no cancellation point until each is
         * in @h or closed (the rest of a stream record is read in poll()). */
        cancel = brd__nocancel();
        rest = brd__deadline(HANDLE_REST_MS);
        nfds = take_fds(&msg, fds, BRD_MAX_FDS, &overflow);
        if (msg.msg_flags & MSG_CTRUNC) {
                /* Some fds were dropped (E7): at our fd limit, or a short buffer.
                 * Probe which before closing what did arrive (a dup of the
                 * socket: fd 0 may be closed). */
                int probe = fcntl(sock, F_DUPFD_CLOEXEC, 0);

                r = (probe < 0 && errno == EMFILE) ? -EMFILE : -EPROTO;
                if (probe >= 0)
                        brd__close(probe);
                goto fail;
        }
        /* 0 bytes: the end of a stream; on a SOCK_SEQPACKET socket either
         * its end or an empty record (malformed: -EPROTO below), told
         * apart by the hang-up the end leaves. */
        if (got == 0 && nfds == 0 && (stream || (type == SOCK_SEQPACKET && peer_hung_up(sock)))) {
                r = -EPIPE;
                goto fail;      /* nothing to close */
        }
        r = -EPROTO;
        if (overflow || (msg.msg_flags & MSG_TRUNC))
                goto fail;
        if ((size_t)got < sizeof(hdr)) {
                /* A stream may split even the header; a datagram may not. */
                if (!stream)
                        goto fail;
                r = read_rest(sock, data + got, sizeof(hdr) - (size_t)got, rest);
                if (r < 0)
                        goto fail;
                r = -EPROTO;
        }
        memcpy(&hdr, data, sizeof(hdr));
        if (hdr.magic != BRD_WIRE_MAGIC || hdr.version != BRD_WIRE_VERSION || hdr.n == 0 ||
            hdr.n > BRD_HANDLE_MAX_BATCH)
                goto fail;
        want = sizeof(hdr) + (size_t)hdr.n * sizeof(struct brd_wire_rec);
        if (stream) {
                r = read_rest(sock, data + sizeof(hdr), want - sizeof(hdr), rest);
                if (r < 0)
                        goto fail;
                r = -EPROTO;
        } else if ((size_t)got != want) {
                goto fail;
        }
        if (hdr.n > max) {
                r = -EMSGSIZE;
                goto fail;
        }
        for (i = 0; i < hdr.n; i++) {
                struct brd_wire_rec rec;

                memcpy(&rec, data + sizeof(hdr) + i * sizeof(rec), sizeof(rec));
                if (!brd__handle_kind_known(rec.kind) || rec.nfds > BRD_HANDLE_MAX_FDS)
                        goto fail;
                used += rec.nfds;
        }
        if (used != nfds)
                goto fail;
        used = 0;
        for (i = 0; i < hdr.n; i++) {
                struct brd_wire_rec rec;
                uint32_t k;

                memcpy(&rec, data + sizeof(hdr) + i * sizeof(rec), sizeof(rec));
                h[i] = (struct brd_handle){ .kind = rec.kind, .nfds = rec.nfds, .size = rec.size,
                                            .flags = rec.flags, .id = rec.id, .aux = rec.aux };
                for (k = 0; k < BRD_HANDLE_MAX_FDS; k++)
                        h[i].fds[k] = k < rec.nfds ? fds[used + k] : -1;
                used += rec.nfds;
                handle_restamp(&h[i]);
        }
        brd__cancel_restore(cancel);
        return hdr.n;
fail:
        close_fds(fds, nfds);
        brd__cancel_restore(cancel);
        return r;
}

/* ------------------------------------------------------------ environment */
/* Async-signal-safe formatting: no stdio, no locale, no allocation. */

struct brd_out {
        char *p, *end;
        bool full;
};

static void out_str(struct brd_out *o, const char *s)
{
        while (*s) {
                if (o->p + 1 >= o->end) {
                        o->full = true;
                        return;
                }
                *o->p++ = *s++;
        }
}

static void out_hex(struct brd_out *o, uint64_t v)
{
        char tmp[17], *t = tmp + sizeof(tmp);

        *--t = '\0';
        do {
                *--t = "0123456789abcdef"[v & 15];
                v >>= 4;
        } while (v);
        out_str(o, t);
}

static void out_dec(struct brd_out *o, uint64_t v)
{
        char tmp[21], *t = tmp + sizeof(tmp);

        *--t = '\0';
        do {
                *--t = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        out_str(o, t);
}

BRD_EXPORT int brd_handle_env_encode(const struct brd_handle *h, size_t n, pid_t pid,
                                     char *buf, size_t cap, char *pidbuf, size_t pidcap)
{
        struct brd_out o = { buf, buf + cap, false }, q = { pidbuf, pidbuf + pidcap, false };
        size_t i;

        if ((!h && n) || n > BRD_HANDLE_MAX_BATCH || !buf || !cap || !pidbuf || !pidcap || pid <= 0)
                return -EINVAL;
        out_str(&o, BRD_HANDLE_ENV "=");
        for (i = 0; i < n; i++) {
                if (!brd__handle_kind_known(h[i].kind) || h[i].nfds > BRD_HANDLE_MAX_FDS)
                        return brd__handle_err(&h[i]);
                if (i)
                        out_str(&o, ";");
                out_hex(&o, h[i].kind);
                out_str(&o, ",");
                out_hex(&o, h[i].nfds);
                out_str(&o, ",");
                out_hex(&o, h[i].size);
                out_str(&o, ",");
                out_hex(&o, h[i].flags);
                out_str(&o, ",");
                out_hex(&o, h[i].id);
                out_str(&o, ",");
                out_hex(&o, h[i].aux);
        }
        out_str(&q, BRD_HANDLE_ENV_PID "=");
        out_dec(&q, (uint64_t)pid);
        if (o.full || q.full)
                return -EMSGSIZE;     /* a buffer of the caller's is too small */
        *o.p = '\0';
        *q.p = '\0';
        return 0;
}

static bool parse_hex(const char **s, uint64_t *ret)
{
        const char *p = *s;
        uint64_t v = 0;
        int digits = 0;

        for (;; p++, digits++) {
                unsigned d;

                if (*p >= '0' && *p <= '9')
                        d = (unsigned)(*p - '0');
                else if (*p >= 'a' && *p <= 'f')
                        d = (unsigned)(*p - 'a' + 10);
                else
                        break;
                if (digits == 16)
                        return false;
                v = v << 4 | d;
        }
        if (!digits)
                return false;
        *s = p;
        *ret = v;
        return true;
}

/*
 * Parse the description meant for this process into @h: the count, 0 when
 * there is none for us, or -EPROTO/-EMSGSIZE.  -EPROTO closes and changes
 * nothing: fds 3, 4... are only known to be ours once the whole description
 * has been checked.  -EMSGSIZE comes after that check, so the fds are ours,
 * and they are closed: with the variables gone nobody could take them any
 * more, and left open (not CLOEXEC) they would reach every exec'd child.
 */
static int env_take(struct brd_handle *h, size_t max)
{
        const char *s, *pidstr;
        struct brd_handle tmp[BRD_HANDLE_MAX_BATCH];
        size_t n = 0, i;
        int fd = 3;
        char *end;
        long pid;

        pidstr = getenv(BRD_HANDLE_ENV_PID);
        s = getenv(BRD_HANDLE_ENV);
        if (!pidstr || !s)
                return 0;
        errno = 0;
        pid = strtol(pidstr, &end, 10);
        if (errno || *end || pid != (long)getpid())
                return 0;               /* meant for an ancestor: not ours */
        while (*s) {
                uint64_t v[6];
                int k;

                if (n == BRD_HANDLE_MAX_BATCH)
                        return -EPROTO;
                for (k = 0; k < 6; k++) {
                        if (!parse_hex(&s, &v[k]))
                                return -EPROTO;
                        if (k < 5 && *s++ != ',')
                                return -EPROTO;
                }
                /* ';' only between records: brd_handle_env_encode() never
                 * ends with one, so "...;" is not a description of ours. */
                if (*s == ';' && s[1])
                        s++;
                else if (*s)
                        return -EPROTO;
                if (!brd__handle_kind_known((uint32_t)v[0]) || v[0] > UINT32_MAX || v[1] > BRD_HANDLE_MAX_FDS)
                        return -EPROTO;
                tmp[n] = (struct brd_handle){ .kind = (uint32_t)v[0], .nfds = (uint32_t)v[1],
                                              .size = v[2], .flags = v[3], .id = v[4], .aux = v[5],
                                              .fds = { -1, -1, -1, -1 } };
                for (k = 0; k < (int)v[1]; k++) {
                        /* Open, and not close-on-exec: an fd inherited
                         * through the exec (one opened after it, by this
                         * program or its runtime, is not a handle). */
                        int fl = fcntl(fd, F_GETFD);

                        if (fl < 0 || (fl & FD_CLOEXEC))
                                return -EPROTO;
                        tmp[n].fds[k] = fd++;
                }
                n++;
        }
        if (n > max) {
                for (i = 0; i < n; i++)
                        close_fds(tmp[i].fds, tmp[i].nfds);
                return -EMSGSIZE;
        }
        for (i = 0; i < n; i++) {
                uint32_t k;

                for (k = 0; k < tmp[i].nfds; k++)
                        (void)fcntl(tmp[i].fds[k], F_SETFD, FD_CLOEXEC);
                handle_restamp(&tmp[i]);
                h[i] = tmp[i];
        }
        return (int)n;
}

BRD_EXPORT int brd_handle_from_env(struct brd_handle *h, size_t max)
{
        int r;

        if (!h || max == 0)
                return -EINVAL;
        r = env_take(h, max);
        /*
         * Whatever the verdict, the description must not reach a later
         * exec'd child: a malformed or oversized one would be read there as
         * fds 3, 4... that are by then unrelated, and one for another pid
         * (an ancestor's) would be taken by a descendant that reuses that
         * pid.  Unsetting an absent variable is a no-op.
         */
        unsetenv(BRD_HANDLE_ENV);
        unsetenv(BRD_HANDLE_ENV_PID);
        return r;
}
