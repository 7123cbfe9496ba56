/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ring: a ring (ringbuf/) whose shared header and data a peer
 * scribbles on, both endpoints in this process.  The first input byte
 * picks the mode:
 *
 *  even, script: a config byte (capacity, flags), up to three writes into
 *   the header before attach, then a script of calls on both endpoints
 *   (send, recv, reserve/commit, peek/release, write, read, flush, fd,
 *   interrupt, close; in the wrong role too; timeout 0, at most two of
 *   1 ms) mixed with hostile writes: header words, head and tail indices,
 *   data words, well-formed frames at the tail as a foreign producer would.
 *  odd, image: a config byte, a mode byte, a schedule byte, then a header
 *   image and data bytes copied into a fresh ring (before or after attach),
 *   then a schedule of consumer calls, with producer calls between.
 *
 * Invariants: every call returns one of its documented values; a final
 * error stays (-EBADMSG poisons, and only after a hostile write); peek and
 * reserve pointers lie inside the data mapping; while nothing hostile
 * happened, what comes out is byte for byte what went in (a FIFO model,
 * messages and streams) and the consumer's fd is readable whenever there is
 * something to receive; no fd leaks.  ASan+UBSan and guard.c's regions
 * around the mappings turn an access outside them into a crash; libFuzzer's
 * -timeout a hang.
 *
 * Run: scripts/fuzz.sh ring [SECONDS]
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>

#include "../ringbuf/endpoint.h" /* white box: the endpoint's state is checked too */
#include "fuzz.h"

/* ----------------------------------------------------------- pattern */
/* The byte at position @g of everything sent, so that a byte out of place,
 * lost or repeated is seen. */
static uint8_t pat(uint64_t g)
{
        return (uint8_t)((g * 0x9E3779B97F4A7C15ull) >> 56) ^ (uint8_t)g;
}

/* ----------------------------------------------------------- model */
/*
 * What was sent and not yet received: a message (send, commit) or a chunk
 * of a stream (write), starting at pattern position g, off bytes of it
 * taken.  A stream chunk may have been cut into several frames, so recv and
 * peek may return any prefix of it.
 */
#define MAXQ 4096
struct msg {
        uint64_t g, len, off;
        bool stream;
};
static struct msg q[MAXQ];
static unsigned qh, qt;
static uint64_t gnext;
static bool clean; /* nothing hostile happened: the model holds */

static void q_push(uint64_t g, uint64_t len, bool stream)
{
        if (qt - qh >= MAXQ) {
                clean = false;
                return;
        }
        q[qt++ % MAXQ] = (struct msg){ g, len, 0, stream };
}

static uint64_t q_bytes(void)
{
        uint64_t b = 0;
        for (unsigned k = qh; k != qt; k++)
                b += q[k % MAXQ].len - q[k % MAXQ].off;
        return b;
}

/* ----------------------------------------------------------- ring state */
struct ep {
        struct brd_ring *r;
        bool poisoned;
};
static struct ep P, C;
static uint8_t *view; /* our own mapping of the memfd */
static size_t view_len;
static struct brd_ring_hdr *hdr;
static uint8_t *vdata;
static uint64_t cap;
static unsigned rflags; /* the ring's enum brd_ring_flags */
static bool prod_closed_by_us;
static uint8_t *buf; /* big scratch buffer */
#define BUFSZ (4u << 20)

static void ep_close(struct ep *e)
{
        if (!e->r)
                return;
        brd_ring_close(e->r);
        e->r = NULL;
}

static bool is_res_err(long v)
{
        return v == -EMFILE || v == -ENFILE || v == -ENOMEM;
}

static bool in_list(long v, const int *l)
{
        /* BRD_RING_EINTR rings: libFuzzer's SIGALRM (-timeout) may interrupt a wait */
        if (v == -EINTR && (rflags & BRD_RING_EINTR))
                return true;
        for (; *l; l++)
                if (v == -*l)
                        return true;
        return is_res_err(v);
}

/* After a right-role call on @e that returned @ret (@e0: r->err before). */
static void check_final(struct ep *e, const char *what, long ret, int e0, bool is_read)
{
        struct brd_ring *r = e->r;

        if (e0) {
                long want = (is_read && e0 == -EPIPE) ? 0 : e0;
                if (ret != want)
                        FUZZ_FAIL("%s: endpoint had final error %d, call returned %ld", what, e0,
                                  ret);
        }
        if (ret == -EBADMSG)
                e->poisoned = true;
        if (e->poisoned && r->err != -EBADMSG)
                FUZZ_FAIL("%s: poisoned endpoint lost its poison (err %d)", what, r->err);
        if (ret == -EBADMSG && r->err != -EBADMSG)
                FUZZ_FAIL("%s: returned -EBADMSG without poisoning", what);
}

static void check_ptr(const char *what, struct brd_ring *r, const void *p, uint64_t len)
{
        const uint8_t *b = p;
        if (b < r->data || b > r->data + 2 * r->cap || len > 2 * r->cap ||
            (uint64_t)(b - r->data) + len > 2 * r->cap)
                FUZZ_FAIL("%s: pointer %p len %llu outside data [%p, +%llu)", what, p,
                          (unsigned long long)len, (void *)r->data,
                          (unsigned long long)(2 * r->cap));
}

static bool readable(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* Model: consumed @n bytes as one message (recv/peek) or as a stream (read). */
static void model_recv(const uint8_t *data, uint64_t n, bool whole, const char *what)
{
        uint64_t k;

        if (!clean)
                return;
        if (whole) {
                struct msg *m;
                if (qh == qt)
                        FUZZ_FAIL("%s: got a message of %llu bytes, model queue empty", what,
                                  (unsigned long long)n);
                m = &q[qh % MAXQ];
                if (!m->stream && n != m->len - m->off)
                        FUZZ_FAIL("%s: got %llu bytes, model says %llu", what,
                                  (unsigned long long)n, (unsigned long long)(m->len - m->off));
                if (n > m->len - m->off)
                        FUZZ_FAIL("%s: got %llu bytes, more than the model message (%llu)", what,
                                  (unsigned long long)n, (unsigned long long)(m->len - m->off));
                for (uint64_t i = 0; i < n; i++)
                        if (data[i] != pat(m->g + m->off + i))
                                FUZZ_FAIL("%s: byte %llu differs", what, (unsigned long long)i);
                if (m->stream && n < m->len - m->off) {
                        /* the stream chunk was cut in frames: the rest is another frame */
                        m->off += n;
                } else {
                        qh++;
                }
                return;
        }
        /* stream read: bytes across messages, empty ones skipped */
        k = 0;
        while (k < n) {
                struct msg *m;
                uint64_t take;

                if (qh == qt)
                        FUZZ_FAIL("%s: read %llu bytes, model has only %llu", what,
                                  (unsigned long long)n, (unsigned long long)k);
                m = &q[qh % MAXQ];
                take = m->len - m->off;
                if (take > n - k)
                        take = n - k;
                for (uint64_t j = 0; j < take; j++)
                        if (data[k + j] != pat(m->g + m->off + j))
                                FUZZ_FAIL("%s: stream byte %llu differs", what,
                                          (unsigned long long)(k + j));
                k += take;
                m->off += take;
                if (m->off == m->len)
                        qh++;
        }
}

static unsigned timed_left;
static int pick_timeout(bool want)
{
        if (want && timed_left) {
                timed_left--;
                return 1;
        }
        return 0;
}

/* ----------------------------------------------------------- hostile writes */
/* The header's 8-byte words that the sides write: tail (8), head (16), and
 * the producer's (24-30) and consumer's (32-38) state, pid, start time... */
static const int side_words[16] = { 8, 16, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38 };

static void hostile_hdr(struct fuzz_in *s)
{
        uint8_t sel = fuzz_u8(s), mode = fuzz_u8(s);
        uint64_t v = fuzz_u64(s);
        int w = (sel & 0x80) ? sel % 40 : side_words[sel % 16];
        AO_t *p = (AO_t *)(void *)((uint8_t *)hdr + 8 * w);
        uint64_t old = AO_load(p), nv;

        switch (mode % 5) {
        case 0:
                nv = v;
                break;
        case 1:
                nv = old + (uint64_t)(int64_t)(int8_t)v;
                break;
        case 2:
                nv = old ^ (1ull << (v & 63));
                break;
        case 3:
                nv = (old & ~0xffffffffull) | (uint32_t)v;
                break;
        default:
                nv = v & 0xff;
                break;
        }
        AO_store(p, nv);
        clean = false;
}

static void hostile_idx(struct fuzz_in *s)
{
        uint8_t which = fuzz_u8(s);
        int16_t d = (int16_t)fuzz_u16(s);
        AO_t *p = (which & 1) ? &hdr->head.idx : &hdr->tail.idx;
        uint64_t base, nv;

        switch ((which >> 1) % 4) {
        case 0:
                base = AO_load(p);
                break;
        case 1:
                base = C.r ? C.r->pos : AO_load(&hdr->head.idx);
                break;
        case 2:
                base = P.r ? P.r->pos : AO_load(&hdr->tail.idx);
                break;
        default:
                base = (which & 0x80) ? (uint64_t)0 - cap : (uint64_t)1 << 63;
                break;
        }
        nv = base + ((which & 0x40) ? (int64_t)d : (int64_t)d * 8);
        AO_store(p, nv);
        clean = false;
}

static void hostile_data(struct fuzz_in *s)
{
        uint8_t mode = fuzz_u8(s);
        uint16_t off = fuzz_u16(s);
        uint64_t v = fuzz_u64(s), base, idx, w;

        switch (mode % 3) {
        case 0:
                base = C.r ? C.r->pos : 0;
                break;
        case 1:
                base = P.r ? P.r->pos : 0;
                break;
        default:
                base = 0;
                break;
        }
        idx = base + ((mode & 4) ? (uint64_t)off * 8 : (uint64_t)(int16_t)off);
        switch ((mode >> 3) % 4) {
        case 0:
                w = v;
                break;
        case 1:
                w = brd__ring_frame((uint32_t)v, BRD_RING_FRAME_MSG);
                break;
        case 2:
                w = brd__ring_frame((uint32_t)v, BRD_RING_FRAME_PAD);
                break;
        default:
                w = brd__ring_frame((uint32_t)(v % 512),
                                    (v >> 40) & 1 ? BRD_RING_FRAME_PAD : BRD_RING_FRAME_MSG);
                break;
        }
        idx &= cap - 1;
        if (idx > cap - 8)
                idx = cap - 8;
        memcpy(vdata + idx, &w, 8);
        clean = false;
}

/* Act as a foreign producer: a well-formed frame at the tail. */
static void hostile_frame(struct fuzz_in *s)
{
        uint16_t len = fuzz_u16(s);
        uint8_t t = fuzz_u8(s);
        uint64_t tl = AO_load(&hdr->tail.idx), w, wi;

        len %= (uint16_t)(cap < 65536 ? cap : 65535);
        w = brd__ring_frame(len, (t & 3) == 3 ? BRD_RING_FRAME_PAD : BRD_RING_FRAME_MSG);
        wi = tl & (cap - 1);
        if (wi > cap - 8)
                wi = cap - 8; /* our view is mapped once: no room past the end */
        memcpy(vdata + wi, &w, 8);
        for (uint64_t k = 0; k < len; k++)
                vdata[(tl + 8 + k) & (cap - 1)] = (uint8_t)k;
        if (!(t & 4))
                AO_store(&hdr->tail.idx, tl + 8 + ((len + 7u) & ~7u));
        clean = false;
}

/* ----------------------------------------------------------- calls */
static const int E_SEND[] = { EMSGSIZE, EAGAIN, ETIMEDOUT, EPIPE, ECANCELED, EBADMSG, EBADF, 0 };
static const int E_RECV[] = { EMSGSIZE,  EAGAIN,  ETIMEDOUT, EPIPE, ECONNRESET,
                              ECANCELED, EBADMSG, EBADF,     0 };
static const int E_PEEK[] = { EAGAIN, ETIMEDOUT, EPIPE, ECONNRESET, ECANCELED, EBADMSG, EBADF, 0 };
static const int E_COMMIT[] = { EINVAL, EPIPE, EBADMSG, EBADF, 0 };
static const int E_RELEASE[] = { EINVAL, EBADF, EBADMSG, EPIPE, ECONNRESET, 0 };
static const int E_READ[] = { ECONNRESET, EAGAIN, ETIMEDOUT, ECANCELED, EBADMSG, EBADF, 0 };
/* -EPIPE: the consumer closed or died with something held back. */
static const int E_FLUSH[] = { EBADF, EBADMSG, EPIPE, 0 };

static ssize_t peek_len = -1; /* -1: none, -2: unknown (after a read) */
static uint64_t resv_len, resv_g;
static bool resv_live;

/* A call on the endpoint of the other role must answer -EBADF and do
 * nothing else.  true: @wrong, the op is done. */
static bool wrong_role(bool wrong, const char *what, long ret)
{
        if (wrong && ret != -EBADF)
                FUZZ_FAIL("%s in the wrong role: %ld", what, ret);
        return wrong;
}

/* A send or reserve of @l bytes refused (@ret) for room it had: a message
 * of max_msg or less is never too long, and while the model holds, a ring
 * the consumer emptied, with no reservation open, has room for it. */
static void refused_room(const char *what, int ret, int e0, uint64_t l)
{
        if (ret == -EMSGSIZE && l <= cap / 2)
                FUZZ_FAIL("%s of %llu <= max_msg: -EMSGSIZE", what, (unsigned long long)l);
        if ((ret == -EAGAIN || ret == -ETIMEDOUT) && clean && e0 == 0 && qh == qt && !resv_live &&
            l <= cap / 2)
                FUZZ_FAIL("%s of %llu into an empty ring: %d", what, (unsigned long long)l, ret);
}

static void op_send(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &C : &P;
        uint16_t len = fuzz_u16(s);
        uint64_t l = len;
        int e0, to, ret;

        if (!e->r)
                return;
        if (len & 0x8000)
                l = (len & 0x7fff) % (cap / 2 + 64);
        else
                l = len % 200;
        for (uint64_t k = 0; k < l; k++)
                buf[k] = pat(gnext + k);
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_send(e->r, buf, l, to);
        if (wrong_role(wrong, "send", ret))
                return;
        if (ret != 0 && !in_list(ret, E_SEND))
                FUZZ_FAIL("send returned %d", ret);
        if (ret == -EBADF)
                FUZZ_FAIL("send on producer: EBADF");
        if (l > cap / 2 && ret == 0)
                FUZZ_FAIL("send of %llu > max_msg succeeded", (unsigned long long)l);
        refused_room("send", ret, e0, l);
        check_final(e, "send", ret, e0, false);
        if (ret == 0) {
                q_push(gnext, l, false);
                gnext += l;
        }
        /* a send that fails its entry checks (-EMSGSIZE) leaves a reservation alone */
        if (ret != -EMSGSIZE)
                resv_live = false;
}

static void op_recv(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &P : &C;
        uint16_t c = fuzz_u16(s);
        uint64_t cp;
        int e0, to;
        ssize_t ret;

        if (!e->r)
                return;
        cp = (c & 0x8000) ? (c & 0x7fff) % (cap + 64) : c % 300;
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_recv(e->r, buf, cp, to);
        if (wrong_role(wrong, "recv", ret))
                return;
        if (ret < 0 ? !in_list(ret, E_RECV) : (uint64_t)ret > cp)
                FUZZ_FAIL("recv(cap %llu) returned %zd", (unsigned long long)cp, ret);
        if (ret == -EBADF)
                FUZZ_FAIL("recv on consumer: EBADF");
        check_final(e, "recv", ret, e0, false);
        /* Any recv (this one has a buffer) undoes a peek, whatever it
         * answers: -EMSGSIZE and -EAGAIN too, and the next release is
         * -EINVAL; past a final error release answers that. */
        peek_len = -1;
        if (ret >= 0) {
                model_recv(buf, (uint64_t)ret, true, "recv");
        } else if (ret == -EAGAIN && clean && !(rflags & BRD_RING_BATCH) && qh != qt)
                FUZZ_FAIL("recv: -EAGAIN with %u messages in the model", qt - qh);
        else if (ret == -EMSGSIZE && clean && qh != qt &&
                 q[qh % MAXQ].len - q[qh % MAXQ].off <= cp && !q[qh % MAXQ].stream)
                FUZZ_FAIL("recv: -EMSGSIZE but the message fits");
}

static void op_reserve(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &C : &P;
        uint16_t len = fuzz_u16(s);
        uint64_t l;
        void *p = NULL;
        int e0, to, ret;

        if (!e->r)
                return;
        l = (len & 0x8000) ? (len & 0x7fff) % (cap / 2 + 64) : len % 200;
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_reserve(e->r, l, &p, to);
        if (wrong_role(wrong, "reserve", ret))
                return;
        if (ret != 0 && !in_list(ret, E_SEND))
                FUZZ_FAIL("reserve returned %d", ret);
        refused_room("reserve", ret, e0, l);
        check_final(e, "reserve", ret, e0, false);
        if (ret == 0) {
                if (l > cap / 2)
                        FUZZ_FAIL("reserve of %llu > max_msg succeeded", (unsigned long long)l);
                check_ptr("reserve", e->r, p, l);
                for (uint64_t k = 0; k < l; k++)
                        ((uint8_t *)p)[k] = pat(gnext + k);
                resv_len = l;
                resv_g = gnext;
                resv_live = true;
                gnext += l;
        } else if (ret != -EMSGSIZE) {
                resv_live = false;
        }
}

static void op_commit(struct fuzz_in *s, bool wrong)
{
        struct ep *e = wrong ? &C : &P;
        uint16_t len = fuzz_u16(s);
        uint64_t l;
        int e0, ret;

        if (!e->r)
                return;
        if (resv_live && !(len & 0x8000))
                l = resv_len ? len % (resv_len + 1) : 0;
        else
                l = (len & 0x7fff) % (cap / 2 + 64);
        e0 = e->r->err;
        ret = brd_ring_commit(e->r, l);
        if (wrong_role(wrong, "commit", ret))
                return;
        if (ret != 0 && !in_list(ret, E_COMMIT))
                FUZZ_FAIL("commit returned %d", ret);
        check_final(e, "commit", ret, e0, false);
        if (clean && e0 == 0) {
                bool ok = resv_live && l <= resv_len;
                if (ok && ret == -EINVAL)
                        FUZZ_FAIL("commit(%llu) of a live reservation of %llu: EINVAL",
                                  (unsigned long long)l, (unsigned long long)resv_len);
                if (!ok && ret == 0)
                        FUZZ_FAIL("commit(%llu) without a reservation succeeded",
                                  (unsigned long long)l);
        }
        if (ret == 0 && resv_live)
                q_push(resv_g, l, false);
        if (ret == 0 || ret == -EPIPE)
                resv_live = false;
}

static void op_peek(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &P : &C;
        const void *p = NULL;
        int e0, to;
        ssize_t ret;

        if (!e->r)
                return;
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_peek(e->r, &p, to);
        if (wrong_role(wrong, "peek", ret))
                return;
        if (ret < 0 && !in_list(ret, E_PEEK))
                FUZZ_FAIL("peek returned %zd", ret);
        check_final(e, "peek", ret, e0, false);
        if (ret >= 0) {
                volatile uint8_t sum;

                check_ptr("peek", e->r, p, (uint64_t)ret);
                /* every byte, so that one outside the mapping faults */
                sum = 0;
                for (ssize_t k = 0; k < ret; k++)
                        sum ^= ((const uint8_t *)p)[k];
                (void)sum;
                if (clean) {
                        struct msg *m;
                        if (qh == qt)
                                FUZZ_FAIL("peek: a message of %zd bytes, model queue empty", ret);
                        m = &q[qh % MAXQ];
                        if (!m->stream && (uint64_t)ret != m->len - m->off)
                                FUZZ_FAIL("peek: %zd bytes, model says %llu", ret,
                                          (unsigned long long)(m->len - m->off));
                        for (ssize_t k = 0; k < ret && (uint64_t)k < m->len - m->off; k++)
                                if (((const uint8_t *)p)[k] != pat(m->g + m->off + k))
                                        FUZZ_FAIL("peek: byte %zd differs", k);
                }
                peek_len = ret;
        } else {
                peek_len = -1;
                if (ret == -EAGAIN && clean && !(rflags & BRD_RING_BATCH) && qh != qt)
                        FUZZ_FAIL("peek: -EAGAIN with %u messages in the model", qt - qh);
        }
}

static void op_release(struct fuzz_in *s, bool wrong)
{
        struct ep *e = wrong ? &P : &C;
        int e0, ret;

        if (!e->r)
                return;
        e0 = e->r->err;
        ret = brd_ring_release(e->r);
        if (wrong_role(wrong, "release", ret))
                return;
        if (ret != 0 && !in_list(ret, E_RELEASE))
                FUZZ_FAIL("release returned %d", ret);
        if (e0) {
                if (ret != e0)
                        FUZZ_FAIL("release: final error %d but returned %d", e0, ret);
        }
        if (ret == -EBADMSG)
                e->poisoned = true;
        if (clean && e0 == 0) {
                if (peek_len >= 0 && ret != 0)
                        FUZZ_FAIL("release after a peek: %d", ret);
                if (peek_len == -1 && ret == 0)
                        FUZZ_FAIL("release without a peek succeeded");
                if (peek_len == -2 && ret == 0)
                        clean = false;
        }
        if (ret == 0 && clean && peek_len >= 0) {
                struct msg *m = &q[qh % MAXQ];
                if (m->stream && (uint64_t)peek_len < m->len - m->off)
                        m->off += (uint64_t)peek_len;
                else
                        qh++;
        }
        peek_len = -1;
}

static void op_write(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &C : &P;
        uint16_t len = fuzz_u16(s);
        uint64_t l;
        int e0, to;
        ssize_t ret;

        if (!e->r)
                return;
        l = (len & 0x8000) ? (uint64_t)(len & 0x7fff) * 8 % (3 * cap + 100) : len % 300;
        for (uint64_t k = 0; k < l; k++)
                buf[k] = pat(gnext + k);
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_write(e->r, buf, l, to);
        if (wrong_role(wrong, "write", ret))
                return;
        if (ret < 0 ? !in_list(ret, E_SEND) : (uint64_t)ret > l)
                FUZZ_FAIL("write(%llu) returned %zd", (unsigned long long)l, ret);
        if (ret == 0 && l != 0)
                FUZZ_FAIL("write(%llu) returned 0", (unsigned long long)l);
        /* Any length, in chunks: never -EMSGSIZE, and an empty ring takes some. */
        if (ret < 0 && l)
                refused_room("write", (int)ret, e0, l < cap / 2 ? l : cap / 2);
        check_final(e, "write", ret > 0 ? 0 : ret, ret > 0 ? 0 : e0, false);
        if (ret > 0) {
                q_push(gnext, (uint64_t)ret, true);
                gnext += (uint64_t)ret;
        }
        resv_live = false;
}

static void op_read(struct fuzz_in *s, bool wrong, bool timed)
{
        struct ep *e = wrong ? &P : &C;
        uint16_t c = fuzz_u16(s);
        uint64_t cp;
        int e0, to;
        ssize_t ret;

        if (!e->r)
                return;
        /* up to 4 MiB: an over-read runs into the guard page */
        cp = (c & 0x8000) ? ((uint64_t)(c & 0x7fff) << 7) % BUFSZ : c % 300;
        e0 = e->r->err;
        to = pick_timeout(timed);
        ret = brd_ring_read(e->r, buf, cp, to);
        if (wrong_role(wrong, "read", ret))
                return;
        if (cp == 0) {
                if (e0 == 0 && ret != -EINVAL)
                        FUZZ_FAIL("read(cap 0) returned %zd", ret);
                return;
        }
        if (ret < 0 ? !in_list(ret, E_READ) : (uint64_t)ret > cp)
                FUZZ_FAIL("read(cap %llu) returned %zd", (unsigned long long)cp, ret);
        check_final(e, "read", ret > 0 ? 0 : ret, ret > 0 ? 0 : e0, true);
        if (ret > 0) {
                model_recv(buf, (uint64_t)ret, false, "read");
                if (clean && !(rflags & BRD_RING_BATCH) && (uint64_t)ret < cp && q_bytes() != 0)
                        FUZZ_FAIL("read returned %zd < cap with %llu bytes left in the model", ret,
                                  (unsigned long long)q_bytes());
                if (clean && (uint64_t)ret < cp) {
                        /* it read on through the empty messages after its last byte */
                        if (rflags & BRD_RING_BATCH)
                                clean = false;
                        else
                                while (qh != qt && q[qh % MAXQ].off == q[qh % MAXQ].len)
                                        qh++;
                }
        } else if (ret == -EAGAIN && clean && !(rflags & BRD_RING_BATCH) && q_bytes()) {
                FUZZ_FAIL("read: -EAGAIN with bytes in the model");
        }
        if (ret <= 0 && clean) {
                /* read() skips (consumes) the empty messages it meets */
                if (rflags & BRD_RING_BATCH)
                        clean = false;
                else
                        while (qh != qt && q[qh % MAXQ].off == q[qh % MAXQ].len)
                                qh++;
        }
        if (peek_len >= 0)
                peek_len = -2;
}

static void op_flush(struct fuzz_in *s, bool which)
{
        struct ep *e = which ? &C : &P;
        int e0, ret;

        if (!e->r)
                return;
        e0 = e->r->err;
        ret = brd_ring_flush(e->r);
        if (ret != 0 && !in_list(ret, E_FLUSH))
                FUZZ_FAIL("flush returned %d", ret);
        if (e0 == -EBADMSG && e->r->role == RING_PROD && ret != -EBADMSG)
                FUZZ_FAIL("flush on poisoned: %d", ret);
        /* Its look at the consumer may poison (a scribbled pid word):
         * then the endpoint says so too. */
        if (ret == -EBADMSG && e->r->err != -EBADMSG)
                FUZZ_FAIL("flush: EBADMSG out of nowhere");
}

static void op_misc(struct fuzz_in *s)
{
        uint8_t k = fuzz_u8(s);
        struct ep *e = (k & 1) ? &C : &P;
        struct brd_ring_stats st;

        if (!e->r)
                return;
        switch ((k >> 1) % 4) {
        case 0:
                if (brd_ring_stats(e->r, &st) != 0 || st.capacity != cap || st.max_msg != cap / 2)
                        FUZZ_FAIL("stats");
                break;
        case 1: {
                int fd = brd_ring_fd(e->r);
                if (fd < 0 && fd != -EBADF && fd != -EINVAL && !is_res_err(fd))
                        FUZZ_FAIL("fd returned %d", fd);
                break;
        }
        case 2:
                if (brd_ring_interrupt(e->r) != 0)
                        FUZZ_FAIL("interrupt");
                /* an interrupt makes the fd readable: no readiness checks from now */
                clean = false;
                break;
        default:
                if (e == &P) {
                        prod_closed_by_us = true;
                        resv_live = false;
                }
                ep_close(e);
                if (e == &C)
                        clean = false; /* producer may get EPIPE: model not needed */
                break;
        }
}

/* brd_ring_fd() promise, while clean and without BATCH: a consumer with
 * something to receive (or an EOF) is readable. */
static void check_ready(void)
{
        if (!clean || !C.r || !AO_load(&C.r->fd_used) || (rflags & BRD_RING_BATCH) || C.r->err)
                return;
        if ((q_bytes() || qh != qt || prod_closed_by_us) && !readable(C.r->epfd))
                FUZZ_FAIL("consumer fd not readable with %u messages queued (prod closed %d)",
                          qt - qh, prod_closed_by_us);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        buf = malloc(BUFSZ);
        return 0;
}

static const size_t caps[8] = { 4096, 4096, 8192, 16384, 4096, 32768, 65536, 10240 };

/* A fresh ring as @cfg says, and our own view of its memfd: the peer's. */
static void setup(uint8_t cfg, struct brd_handle *hp, struct brd_handle *hc)
{
        size_t want = caps[cfg & 7];
        unsigned fl = (cfg >> 3) & (BRD_RING_NOSPIN | BRD_RING_BATCH | BRD_RING_EINTR);
        int e;

        if (cfg & 0x40)
                fl |= BRD_RING_NOSPIN;
        e = brd_ring_create(want, fl, hp, hc);
        if (e)
                FUZZ_FAIL("create: %d", e);
        rflags = fl;
        view_len = hp->size;
        view = mmap(NULL, view_len, PROT_READ | PROT_WRITE, MAP_SHARED, hp->fds[0], 0);
        if (view == MAP_FAILED)
                FUZZ_FAIL("mmap view");
        hdr = (struct brd_ring_hdr *)(void *)view;
        cap = hdr->capacity;
        vdata = view + hdr->data_off;
}

static int attach_one(struct brd_handle *h, struct ep *e, bool scribbled)
{
        int ret = brd_ring_attach(h, &e->r);
        if (ret == 0)
                return 0;
        e->r = NULL;
        if (!scribbled)
                FUZZ_FAIL("attach of a fresh ring: %d", ret);
        /* -EXDEV: the creator's pid namespace word, scribbled; -EBUSY: the
         * role's claim word, scribbled to name a live process (this one) */
        if (ret != -EPROTO && ret != -EPIPE && ret != -EBADMSG && ret != -EXDEV &&
            ret != -EBUSY && !is_res_err(ret))
                FUZZ_FAIL("attach of a scribbled header: %d", ret);
        return ret;
}

static void teardown(struct brd_handle *hp, struct brd_handle *hc)
{
        brd_handle_close(hp);
        brd_handle_close(hc);
        ep_close(&P);
        ep_close(&C);
        if (view)
                munmap(view, view_len);
        view = NULL;
}

static void reset_state(void)
{
        memset(&P, 0, sizeof(P));
        memset(&C, 0, sizeof(C));
        qh = qt = 0;
        gnext = 1;
        clean = true;
        prod_closed_by_us = false;
        resv_live = false;
        peek_len = -1;
        timed_left = 2;
}

/* Header words written before attach: what attach must refuse, or live with. */
static bool pre_scribble(struct fuzz_in *s, unsigned n)
{
        for (unsigned k = 0; k < n; k++) {
                uint8_t sel = fuzz_u8(s), mode = fuzz_u8(s);
                uint64_t v = fuzz_u64(s);
                AO_t *p = (AO_t *)(void *)(view + 8 * (sel % 40));
                uint64_t old = AO_load(p);

                switch (mode % 4) {
                case 0:
                        AO_store(p, v);
                        break;
                case 1:
                        AO_store(p, old + (uint64_t)(int64_t)(int8_t)v);
                        break;
                case 2:
                        AO_store(p, old ^ (1ull << (v & 63)));
                        break;
                default:
                        AO_store(p, (old & ~0xffffffffull) | (uint32_t)v);
                        break;
                }
        }
        return n != 0;
}

/* One step of a script: a call (in the wrong role when @b says so) or a
 * hostile write. */
static void script_op(struct fuzz_in *s, uint8_t b)
{
        bool wrong = (b & 0xc0) == 0xc0, timed = (b & 0x20) && !(b & 0x80);

        switch (b & 31) {
        case 0:
        case 1:
        case 2:
                op_send(s, wrong, timed);
                break;
        case 3:
        case 4:
        case 5:
                op_recv(s, wrong, timed);
                break;
        case 6:
                op_reserve(s, wrong, timed);
                break;
        case 7:
                op_commit(s, wrong);
                break;
        case 8:
        case 9:
                op_peek(s, wrong, timed);
                break;
        case 10:
                op_release(s, wrong);
                break;
        case 11:
                op_write(s, wrong, timed);
                break;
        case 12:
        case 13:
                op_read(s, wrong, timed);
                break;
        case 14:
                op_flush(s, b & 0x40);
                break;
        case 15:
        case 16:
                op_misc(s);
                break;
        case 17:
        case 18:
        case 19:
                hostile_hdr(s);
                break;
        case 20:
        case 21:
                hostile_idx(s);
                break;
        case 22:
        case 23:
        case 24:
        case 25:
                hostile_data(s);
                break;
        case 26:
        case 27:
                hostile_frame(s);
                break;
        default:
                op_recv(s, false, false);
                break;
        }
}

static void ring_script(struct fuzz_in *s)
{
        struct brd_handle hp, hc;
        uint8_t cfg = fuzz_u8(s), pre = fuzz_u8(s);
        bool scribbled;

        setup(cfg, &hp, &hc);
        scribbled = pre_scribble(s, pre & 3);
        if (scribbled)
                clean = false;
        if (pre & 4) {
                attach_one(&hc, &C, scribbled);
                attach_one(&hp, &P, scribbled);
        } else {
                attach_one(&hp, &P, scribbled);
                attach_one(&hc, &C, scribbled);
        }
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        while (fuzz_more(s) && (P.r || C.r)) {
                script_op(s, fuzz_u8(s));
                check_ready();
        }
        teardown(&hp, &hc);
}

/*
 * The image over the fresh ring: header bytes (copied over the header; its
 * first line, magic, version, sizes and ring id, kept unless mode & 2, the
 * flags from the image if mode & 4), then data bytes, copied from the head
 * on so that frames start there.  mode & 8 stamps both sides with our own
 * pid (a live peer), mode & 16 brings the indices near each other.
 */
static void image_copy(struct fuzz_in *s, uint8_t mode)
{
        size_t hlen = s->n < sizeof(struct brd_ring_hdr) ? s->n : sizeof(struct brd_ring_hdr);
        uint8_t save[64];
        size_t dlen;

        memcpy(save, view, sizeof(save));
        memcpy(view, s->p, hlen);
        s->p += hlen;
        s->n -= hlen;
        if (!(mode & 2)) {
                uint32_t fl = hdr->flags;

                memcpy(view, save, sizeof(save));
                if (mode & 4)
                        hdr->flags = fl;
        }
        if (mode & 8) {
                hdr->prod.pid = (AO_t)getpid();
                hdr->cons.pid = (AO_t)getpid();
                hdr->prod.start_time = brd__proc_start_time(getpid());
                hdr->cons.start_time = hdr->prod.start_time;
        }
        if (mode & 16) {
                hdr->head.idx = (hdr->head.idx % (4 * cap)) & ~(AO_t)7;
                hdr->tail.idx = hdr->head.idx + ((hdr->tail.idx % (cap + 8)) & ~(AO_t)7);
        }
        dlen = s->n < cap ? s->n : cap;
        for (size_t k = 0; k < dlen; k++)
                vdata[(hdr->head.idx + k) & (cap - 1)] = s->p[k];
        s->p += dlen;
        s->n -= dlen;
}

/* Consumer call @k of the schedule @sched; false once the endpoint has kept
 * a final error for a while (nothing more to learn). */
static bool image_step(int k, uint8_t sched, uint8_t mode)
{
        uint8_t op = (uint8_t)((sched >> (2 * (k % 4))) & 3) ^ (uint8_t)(k / 4 % 4);
        uint8_t arg[2] = { (uint8_t)(k * 37 + sched), (uint8_t)((k & 1) ? 0x80 : 0) };
        uint8_t big[2] = { 0xff, 0xff };
        struct fuzz_in a = { arg, sizeof(arg) };
        int e0 = C.r->err;

        switch (op) {
        case 0:
                op_recv(&a, false, false);
                break;
        case 1:
                op_peek(&a, false, false);
                if (peek_len >= 0)
                        op_release(&a, false);
                break;
        case 2:
                op_read(&a, false, false);
                break;
        default:
                a = (struct fuzz_in){ big, sizeof(big) };
                op_read(&a, false, false);
                break;
        }
        if (e0 && C.r->err == e0 && k > 8)
                return false;
        if (P.r && (mode & 32) && (k & 7) == 3) {
                uint8_t sl[2] = { (uint8_t)(k * 11), (uint8_t)((sched & 0x80) ? 0x81 : 0) };

                a = (struct fuzz_in){ sl, sizeof(sl) };
                op_send(&a, false, false);
        }
        return true;
}

static void ring_image(struct fuzz_in *s)
{
        struct brd_handle hp, hc;
        uint8_t cfg = fuzz_u8(s), mode = fuzz_u8(s), sched = fuzz_u8(s);
        bool before = mode & 1;

        clean = false;
        setup(cfg, &hp, &hc);
        if (!before) {
                attach_one(&hp, &P, false);
                attach_one(&hc, &C, false);
        }
        image_copy(s, mode);
        if (before) {
                attach_one(&hp, &P, true);
                attach_one(&hc, &C, true);
        }
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        for (int k = 0; k < 64 && C.r; k++)
                if (!image_step(k, sched, mode))
                        break;
        teardown(&hp, &hc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in s = { data, size };
        int fds = fuzz_count_fds();

        reset_state();
        if (fuzz_u8(&s) & 1)
                ring_image(&s);
        else
                ring_script(&s);
        fuzz_fd_check(fds);
        return 0;
}
