/* SPDX-License-Identifier: MIT */
/*
 * Hostile shared memory (RELIABILITY B12, B13, B14, B17): indices out of range
 * or going backwards, frame lengths past the published data, bad frame
 * types, holes punched in the memfd -> -EBADMSG and the endpoint is
 * poisoned; never an out-of-bounds
 * access, never a hang.  The last test has another process scribble random
 * bytes over header and data while the consumer runs (meant for ASan).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include "internal/brd-ring.h"
#include "../ringbuf/io.h"              /* RING_READ_EMPTY_MAX */

static void assert_cons_poisoned(struct brd_ring *c)
{
        char buf[64];
        const void *v;

        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EBADMSG);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), -1), -EBADMSG);
        assert_int_equal(brd_ring_peek(c, &v, -1), -EBADMSG);
        assert_int_equal(brd_ring_read(c, buf, sizeof(buf), -1), -EBADMSG);
        assert_int_equal(brd_ring_release(c), -EBADMSG);
        assert_int_equal(brd_ring_flush(c), -EBADMSG);
}

/* Consumer call @call (0 recv, 1 peek, 2 read) answers -EBADMSG, and the
 * consumer stays poisoned. */
static void expect_badmsg_from(struct brd_ring *c, int call, void *buf, size_t cap)
{
        const void *v;

        if (call == 0)
                assert_int_equal(brd_ring_recv(c, buf, cap, 0), -EBADMSG);
        else if (call == 1)
                assert_int_equal(brd_ring_peek(c, &v, 0), -EBADMSG);
        else
                assert_int_equal(brd_ring_read(c, buf, cap, 0), -EBADMSG);
        assert_cons_poisoned(c);
}

/* The producer is poisoned: every call answers -EBADMSG at once, a
 * blocking one included. */
static void assert_prod_poisoned(struct brd_ring *p)
{
        char buf[64] = { 0 };
        void *w;

        assert_int_equal(brd_ring_send(p, buf, 1, 0), -EBADMSG);
        assert_int_equal(brd_ring_send(p, buf, 1, -1), -EBADMSG);
        assert_int_equal(brd_ring_reserve(p, 1, &w, 0), -EBADMSG);
        assert_int_equal(brd_ring_write(p, buf, 1, -1), -EBADMSG);
        assert_int_equal(brd_ring_flush(p), -EBADMSG);
}

static void test_tail_out_of_range(void **state)
{
        struct t_ring_view x;
        char buf[64];
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        AO_store(&x.hdr->tail.idx, 4096 + 8);     /* more than capacity ahead */
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), -1), -EBADMSG);
        assert_cons_poisoned(x.c);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

static void test_tail_backwards_and_misaligned(void **state)
{
        struct t_ring_view x;
        char buf[64];
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
        assert_int_equal(brd_ring_send(x.p, "def", 3, 0), 0);
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 3);
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 3);
        AO_store(&x.hdr->tail.idx, 8);            /* backwards: below what we saw */
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), -EBADMSG);
        assert_cons_poisoned(x.c);
        t_ring_view_close(&x);

        t_ring_view_open(&x, 4096, 0, true);
        AO_store(&x.hdr->tail.idx, 4);            /* not a frame boundary */
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), -EBADMSG);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

static void test_frame_length_and_type(void **state)
{
        struct t_ring_view x;
        char buf[8192];
        const void *v;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        /* A length past the published data (and past the ring). */
        AO_store((AO_t *)(void *)x.data, brd__ring_frame(5000, BRD_RING_FRAME_MSG));
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), -EBADMSG);
        assert_cons_poisoned(x.c);
        t_ring_view_close(&x);

        t_ring_view_open(&x, 4096, 0, true);
        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        AO_store((AO_t *)(void *)x.data, brd__ring_frame(UINT32_MAX, BRD_RING_FRAME_MSG));
        assert_int_equal(brd_ring_peek(x.c, &v, 0), -EBADMSG);
        t_ring_view_close(&x);

        t_ring_view_open(&x, 4096, 0, true);
        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        AO_store((AO_t *)(void *)x.data, brd__ring_frame(10, 0x12345678));
        assert_int_equal(brd_ring_read(x.c, buf, sizeof(buf), 0), -EBADMSG);
        t_ring_view_close(&x);

        /* Longer than any producer may send (max_msg, capacity / 2), though
         * within the published data: a consumer whose buffer holds max_msg
         * bytes would get -EMSGSIZE forever.  Recv's inline path for small
         * frames and the paths for larger ones (peek, recv, read). */
        for (int call = 0; call < 3; call++) {
                struct brd_ring_stats st;
                uint32_t len;

                t_ring_view_open(&x, 4096, 0, true);
                assert_int_equal(brd_ring_stats(x.c, &st), 0);
                len = (uint32_t)st.max_msg + 1;
                assert_int_equal(brd_ring_send(x.p, buf, len - 1, 0), 0);
                assert_int_equal(brd_ring_send(x.p, buf, 8, 0), 0);
                assert_int_equal(brd_ring_flush(x.p), 0);
                AO_store((AO_t *)(void *)x.data, brd__ring_frame(len, BRD_RING_FRAME_MSG));
                expect_badmsg_from(x.c, call, buf, sizeof(buf));
                t_ring_view_close(&x);
        }

        t_ring_view_open(&x, 4096, 0, true);
        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        AO_store((AO_t *)(void *)x.data, 0);    /* zeroed: not a frame */
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), -EBADMSG);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

/*
 * read() has taken the first 10 bytes of a 100-byte frame; the producer then
 * rewrites its frame word to @type with each of @lens in turn.  Whichever
 * call comes next (read, peek, recv) answers -EBADMSG, and the consumer
 * stays poisoned.
 */
static void partial_read_then_rewrite(uint32_t type, const uint32_t *lens, size_t nlens)
{
        static uint8_t big[1 << 20];
        uint8_t msg[100];
        struct t_ring_view x;
        struct t_leak l;

        memset(msg, 'x', sizeof(msg));
        t_leak_begin(&l);
        for (int call = 0; call < 3; call++) {
                for (size_t k = 0; k < nlens; k++) {
                        t_ring_view_open(&x, 4096, 0, true);
                        assert_int_equal(brd_ring_write(x.p, msg, sizeof(msg), 0), sizeof(msg));
                        assert_int_equal(brd_ring_read(x.c, big, 10, 0), 10);
                        assert_memory_equal(big, msg, 10);
                        AO_store((AO_t *)(void *)x.data, brd__ring_frame(lens[k], type));
                        expect_badmsg_from(x.c, call, big, sizeof(big));
                        t_ring_view_close(&x);
                }
        }
        t_leak_end(&l);
}

/* The length rewritten below the 10 bytes read: a call that computed
 * "length - bytes read" would wrap to ~2^64 and copy past the ring. */
static void test_frame_shrunk_after_partial_read(void **state)
{
        static const uint32_t lens[] = { 0, 9 };

        (void)state;
        partial_read_then_rewrite(BRD_RING_FRAME_MSG, lens, sizeof(lens) / sizeof(lens[0]));
}

/*
 * B13: a frame of no type behind RING_READ_EMPTY_MAX empty messages, the
 * number after which brd_ring_read() looks for the next frame without
 * waiting before it stops as a wait would: -EBADMSG, and the consumer
 * stays poisoned.  The look's -EBADMSG was dropped and the read answered
 * -EAGAIN (or -ETIMEDOUT, or -ECANCELED using up an interrupt).
 */
static void test_read_bad_frame_behind_empty_messages(void **state)
{
        struct t_ring_view x;
        struct t_leak l;
        char buf[64];
        unsigned i;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        for (i = 0; i < RING_READ_EMPTY_MAX; i++)
                assert_int_equal(brd_ring_send(x.p, "", 0, 0), 0);
        assert_int_equal(brd_ring_send(x.p, "x", 1, 0), 0);
        AO_store((AO_t *)(void *)(x.data + RING_READ_EMPTY_MAX * BRD_RING_FRAME_HDR),
                 brd__ring_frame(1, 0x21585858u));
        assert_int_equal(brd_ring_read(x.c, buf, sizeof(buf), 0), -EBADMSG);
        assert_int_equal(brd_ring_read(x.c, buf, sizeof(buf), 0), -EBADMSG);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

/*
 * B13: a padding frame with a bad length.  Two messages are published (24 +
 * 16 bytes); the hostile peer turns the first frame word into a PAD of
 * each length.  5000, the capacity, 200 and UINT32_MAX reach past the
 * published data: where the consumer would land (modulo the capacity) the
 * peer plants a well-formed empty message that was never published, which
 * a consumer that skipped the PAD unchecked would deliver.  24 and 3 stay
 * within the published data but end inside a payload, whose bytes are no
 * frame word.  Each is -EBADMSG for recv, peek and read alike, and the
 * consumer stays poisoned.
 */
static void test_pad_frame_bad_length(void **state)
{
        static const uint32_t lens[] = { 5000, 4096, 200, 24, UINT32_MAX, 3 };
        const uint64_t published = 24 + 16;
        struct t_ring_view x;
        char buf[8192];
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
                uint64_t size = BRD_RING_FRAME_HDR + (((uint64_t)lens[k] + 7) & ~(uint64_t)7);

                for (int call = 0; call < 3; call++) {
                        t_ring_view_open(&x, 4096, 0, true);
                        assert_int_equal(x.hdr->capacity, 4096);
                        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                        assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
                        assert_int_equal(AO_load(&x.hdr->tail.idx), published);
                        if (size > published)
                                AO_store((AO_t *)(void *)(x.data + (size & x.hdr->mask)),
                                         brd__ring_frame(0, BRD_RING_FRAME_MSG));
                        AO_store((AO_t *)(void *)x.data,
                                 brd__ring_frame(lens[k], BRD_RING_FRAME_PAD));
                        expect_badmsg_from(x.c, call, buf, sizeof(buf));
                        t_ring_view_close(&x);
                }
        }
        t_leak_end(&l);
}

/*
 * B13: a PAD frame is published only with the message after it.  A PAD that
 * ends at the published tail, and a PAD after a PAD, are the peer's: a
 * consumer that skipped them would wait for more, and a peer that kept
 * publishing PADs alone could hold a call with a timeout past it.  Each is
 * -EBADMSG for recv, peek and read alike (a PAD then "abc": "abc" is not
 * delivered), and the consumer stays poisoned.
 */
static void test_pad_frame_alone_or_twice(void **state)
{
        struct t_ring_view x;
        char buf[64];
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (int call = 0; call < 3; call++) {
                /* "0123456789" is 24 bytes, all that is published; its
                 * frame word becomes a PAD of 16 bytes, up to the tail. */
                t_ring_view_open(&x, 4096, 0, true);
                assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                assert_int_equal(AO_load(&x.hdr->tail.idx), 24);
                AO_store((AO_t *)(void *)x.data, brd__ring_frame(16, BRD_RING_FRAME_PAD));
                expect_badmsg_from(x.c, call, buf, sizeof(buf));
                t_ring_view_close(&x);

                /* Then "abc" at 24: two PADs (8 and 16 bytes) up to it. */
                t_ring_view_open(&x, 4096, 0, true);
                assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
                AO_store((AO_t *)(void *)x.data, brd__ring_frame(0, BRD_RING_FRAME_PAD));
                AO_store((AO_t *)(void *)(x.data + 8), brd__ring_frame(8, BRD_RING_FRAME_PAD));
                expect_badmsg_from(x.c, call, buf, sizeof(buf));
                t_ring_view_close(&x);

                /* One PAD up to it is a padding frame like any other. */
                t_ring_view_open(&x, 4096, 0, true);
                assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
                AO_store((AO_t *)(void *)x.data, brd__ring_frame(16, BRD_RING_FRAME_PAD));
                if (call == 0) {
                        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 3);
                } else if (call == 1) {
                        const void *v;

                        assert_int_equal(brd_ring_peek(x.c, &v, 0), 3);
                        memcpy(buf, v, 3);
                        assert_int_equal(brd_ring_release(x.c), 0);
                } else {
                        assert_int_equal(brd_ring_read(x.c, buf, sizeof(buf), 0), 3);
                }
                assert_memory_equal(buf, "abc", 3);
                t_ring_view_close(&x);
        }
        t_leak_end(&l);
}

/*
 * B13: read() has taken 10 bytes of a 100-byte frame, then the peer turns
 * that frame's word into a PAD: of length 0, or of the frame's own length
 * (a well-formed PAD in itself, that would silently drop the 90 bytes
 * left).  A frame that read() has begun is a message; whichever call comes
 * next answers -EBADMSG, and the consumer stays poisoned.
 */
static void test_pad_frame_after_partial_read(void **state)
{
        static const uint32_t lens[] = { 0, 100 };

        (void)state;
        partial_read_then_rewrite(BRD_RING_FRAME_PAD, lens, sizeof(lens) / sizeof(lens[0]));
}

/*
 * B17 for a frame already shown: peeked (and not released), or answered
 * -EMSGSIZE (the message stays).  The producer then rewrites it into a
 * PAD frame that skips it: the next call answers -EBADMSG and the consumer
 * stays poisoned.  It took the PAD and delivered the message after it:
 * the shown one was gone without a word.  @how: 0 peek, 1 recv too small,
 * 2 recv too small of a message behind a PAD (a PAD after a PAD, then).
 */
static void test_pad_over_shown_frame(void **state)
{
        static uint8_t big[BRD_RING_LINE_ALIGN_MIN];
        uint8_t buf[200];
        const void *m;
        struct t_ring_view x;
        struct t_leak l;

        (void)state;
        memset(buf, 'y', sizeof(buf));
        t_leak_begin(&l);
        for (int how = 0; how < 3; how++) {
                uint64_t at = 0, w;
                uint32_t len;

                t_ring_view_open(&x, 4096, 0, true);
                if (how == 2) {
                        /* A payload of BRD_RING_LINE_ALIGN_MIN starts on a
                         * cache line: sent at 24, a PAD goes before it. */
                        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 10);
                        at = AO_load(&x.hdr->tail.idx);
                        assert_int_equal(brd_ring_send(x.p, big, BRD_RING_LINE_ALIGN_MIN, 0), 0);
                        w = AO_load((AO_t *)(void *)(x.data + at));
                        assert_int_equal((uint32_t)(w >> 32), BRD_RING_FRAME_PAD);
                        at += BRD_RING_FRAME_HDR + (((uint32_t)w + 7) & ~7u);
                        len = BRD_RING_LINE_ALIGN_MIN;
                } else {
                        assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
                        len = 16;
                }
                assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
                if (how == 0)
                        assert_int_equal(brd_ring_peek(x.c, &m, 0), 10);
                else
                        assert_int_equal(brd_ring_recv(x.c, buf, 5, 0), -EMSGSIZE);
                /* The shown frame made a PAD of its own size. */
                AO_store((AO_t *)(void *)(x.data + at), brd__ring_frame(len, BRD_RING_FRAME_PAD));
                assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), -EBADMSG);
                assert_cons_poisoned(x.c);
                t_ring_view_close(&x);
        }
        t_leak_end(&l);
}

/*
 * B12: the head moved to an index that is no frame boundary (+1, +4), seen
 * by a producer that must read it for room: send with timeout 0, reserve,
 * and a blocking send (10 s: a producer that took the head for room would
 * return 0 at once, one that never looked would fail at the timeout rather
 * than hang) each answer -EBADMSG, and the producer stays poisoned.
 */
static void test_head_misaligned_poisons_producer(void **state)
{
        static const uint64_t deltas[] = { 1, 4 };
        struct t_ring_view x;
        char buf[512] = { 0 };
        struct t_leak l;
        uint64_t h;
        void *w;

        (void)state;
        t_leak_begin(&l);
        for (size_t k = 0; k < sizeof(deltas) / sizeof(deltas[0]); k++) {
                for (int call = 0; call < 3; call++) {
                        t_ring_view_open(&x, 4096, 0, true);
                        while (brd_ring_send(x.p, buf, 100, 0) == 0)
                                ;
                        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 100);
                        h = AO_load(&x.hdr->head.idx);
                        assert_int_equal(h, BRD_RING_FRAME_HDR + 104);
                        /* With the head honoured there would be room for one
                         * more 100-byte frame: each call needs to read it. */
                        AO_store(&x.hdr->head.idx, h + deltas[k]);
                        if (call == 0)
                                assert_int_equal(brd_ring_send(x.p, buf, 100, 0), -EBADMSG);
                        else if (call == 1)
                                assert_int_equal(brd_ring_reserve(x.p, 100, &w, 0), -EBADMSG);
                        else
                                assert_int_equal(brd_ring_send(x.p, buf, 100, 10000), -EBADMSG);
                        assert_prod_poisoned(x.p);
                        t_ring_view_close(&x);
                }
        }
        t_leak_end(&l);
}

static void test_head_hostile_poisons_producer(void **state)
{
        struct t_ring_view x;
        char buf[512] = { 0 };
        void *w;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        while (brd_ring_send(x.p, buf, 100, 0) == 0)
                ;
        AO_store(&x.hdr->head.idx, 1 << 20);      /* beyond anything published */
        assert_int_equal(brd_ring_send(x.p, buf, 100, -1), -EBADMSG);
        assert_int_equal(brd_ring_send(x.p, buf, 1, 0), -EBADMSG);
        assert_int_equal(brd_ring_reserve(x.p, 1, &w, 0), -EBADMSG);
        assert_int_equal(brd_ring_write(x.p, buf, 1, 0), -EBADMSG);
        assert_int_equal(brd_ring_flush(x.p), -EBADMSG);
        t_ring_view_close(&x);

        t_ring_view_open(&x, 4096, 0, true);
        while (brd_ring_send(x.p, buf, 100, 0) == 0)
                ;
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 100);
        assert_int_equal(brd_ring_send(x.p, buf, 100, 0), 0);  /* producer saw head move */
        while (brd_ring_send(x.p, buf, 100, 0) == 0)
                ;
        AO_store(&x.hdr->head.idx, 0);            /* backwards */
        assert_int_equal(brd_ring_send(x.p, buf, 100, 0), -EBADMSG);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

/* A consumer that "closed" with a head past anything published: the
 * message just sent is not taken for delivered (it was: 0, and counted in
 * the stats); the producer is poisoned (-EBADMSG, the message uncounted). */
static void test_head_hostile_at_close(void **state)
{
        struct t_ring_view x;
        struct brd_ring_stats st;
        char buf[128] = { 0 };
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_view_open(&x, 4096, 0, true);
        AO_store(&x.hdr->head.idx, (AO_t)1 << 40);
        AO_store(&x.hdr->cons.state, AO_load(&x.hdr->cons.state) | BRD_RING_ST_CLOSED);
        assert_int_equal(brd_ring_send(x.p, buf, 100, 0), -EBADMSG);
        assert_int_equal(brd_ring_stats(x.p, &st), 0);
        assert_int_equal(st.messages, 0);
        assert_int_equal(st.bytes, 0);
        assert_prod_poisoned(x.p);
        t_ring_view_close(&x);
        t_leak_end(&l);
}

/* ------------------------------------------------- random scribbling */

static int child_producer(struct brd_handle *h)
{
        struct brd_ring *r;
        uint8_t buf[600];
        uint64_t seed = 11;
        int e;

        /* A header scribbled before the attach is refused (-EPROTO, or
         * -EXDEV, -EBUSY, -EPIPE for a scribbled pid namespace, stamp or
         * closed flag): an error, not a crash. */
        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (;;) {
                size_t len = (size_t)(t_rand(&seed) % sizeof(buf));

                memset(buf, (int)len, len);
                e = brd_ring_send(r, buf, len, 200);
                if (e && e != -ETIMEDOUT)
                        return 0;       /* poisoned, or the consumer left */
        }
}

/* Scribbles once a byte comes on @gate. */
static int child_scribbler(int gate, int fd, size_t size, uint64_t seed, int writes)
{
        uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        char c;
        int i;

        if (m == MAP_FAILED)
                return 10;
        if (read(gate, &c, 1) != 1)
                return 11;
        for (i = 0; i < writes; i++) {
                uint64_t v = t_rand(&seed);
                size_t off = (v & 1) ? (size_t)(v >> 8) % (5 * 64) : (size_t)(v >> 8) % size;
                size_t n = 1 + (size_t)(t_rand(&seed) % 8);
                uint64_t junk = t_rand(&seed);

                if (off + n > size)
                        n = size - off;
                memcpy(m + off, &junk, n);
                if (i % 16 == 0)
                        sched_yield();
        }
        return 0;
}

#define SCRIBBLE_AFTER 1000        /* messages received before the scribbles */

static void test_scribbler_never_crashes_consumer(void **state)
{
        int round, poisoned_rounds = 0;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (round = 0; round < 12; round++) {
                struct brd_handle hp, hc;
                struct brd_ring *r;
                uint8_t buf[700];
                int64_t until;
                pid_t prod, scrib;
                ssize_t n;
                int good = 0, rc, gate[2];
                struct {
                        uint8_t buf[700];
                        uint8_t guard[64];
                } io;

                assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
                prod = t_fork();
                assert_true(prod >= 0);
                if (prod == 0) {
                        brd_handle_close(&hc);
                        _exit(child_producer(&hp));
                }
                assert_int_equal(brd_ring_attach(&hc, &r), 0);
                brd_handle_close(&hc);
                assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
                scrib = t_fork();
                assert_true(scrib >= 0);
                if (scrib == 0) {
                        close(gate[1]);
                        _exit(child_scribbler(gate[0], hp.fds[0], hp.size, 1000 + (uint64_t)round,
                                              round < 6 ? 20 : 2000));
                }
                close(gate[0]);
                brd_handle_close(&hp);
                /* Clean traffic first, every byte checked: the ring worked
                 * before the scribbles. */
                for (; good < SCRIBBLE_AFTER; good++) {
                        n = brd_ring_recv(r, buf, sizeof(buf), 10000);
                        assert_in_range(n, 0, 599);
                        for (ssize_t k = 0; k < n; k++)
                                assert_int_equal(buf[k], (uint8_t)n);
                }
                assert_int_equal(write(gate[1], "", 1), 1);
                close(gate[1]);
                until = t_now_ms() + 1000;
                for (;;) {
                        memset(io.guard, 0xa5, sizeof(io.guard));
                        n = brd_ring_recv(r, io.buf, sizeof(io.buf), 100);
                        /* Whatever a scribbled frame word says, nothing is
                         * written past the cap (the guard right after it is
                         * in the same object: no sanitizer would see it). */
                        for (size_t k = 0; k < sizeof(io.guard); k++)
                                assert_int_equal(io.guard[k], 0xa5);
                        if (n >= 0) {
                                assert_true((size_t)n <= sizeof(io.buf));
                        } else if (n != -ETIMEDOUT) {
                                break;
                        }
                        if (t_now_ms() > until)
                                break;
                }
                if (n == -EBADMSG) {
                        poisoned_rounds++;
                        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), -1), -EBADMSG);
                } else {
                        /* A scribbled closed flag or pid reads as a peer
                         * gone; a quiet scribble leaves a working ring. */
                        if (!(n >= 0 || n == -ETIMEDOUT || n == -EPIPE || n == -ECONNRESET || n == -EMSGSIZE))
                                print_error("unexpected %zd\n", n);
                        assert_true(n >= 0 || n == -ETIMEDOUT || n == -EPIPE || n == -EMSGSIZE ||
                                    n == -ECONNRESET);
                }
                kill(prod, SIGKILL);
                kill(scrib, SIGKILL);
                /* Each survived or was killed here: neither crashed (nor
                 * failed an ASan check, exit 1). */
                rc = t_wait_child(prod);
                if (rc != 0 && rc != 10 && rc != 128 + SIGKILL)
                        fail_msg("round %d: the producer ended with %d", round, rc);
                rc = t_wait_child(scrib);
                if (rc != 0 && rc != 128 + SIGKILL)
                        fail_msg("round %d: the scribbler ended with %d", round, rc);
                brd_ring_close(r);
        }
        assert_true(poisoned_rounds > 0);
        t_leak_end(&l);
}

/*
 * A peer punches holes into the ring's memfd (the seals forbid shrinking,
 * not this): the pages read as zeros from then on.  Zeroed frames are no
 * frames, zeroed indices go backwards: -EBADMSG, after whatever the
 * consumer had already seen published intact.  Never a crash or garbage.
 */
static void punch_ring(bool header, int nsent, int nread_before, int nintact)
{
        struct t_ring_view v;
        char buf[128], exp[128];
        struct t_leak l;
        int i;

        t_leak_begin(&l);
        t_ring_view_open(&v, 16384, 0, false);
        for (i = 0; i < nsent; i++) {
                memset(buf, 'a' + i, 100);
                assert_int_equal(brd_ring_send(v.p, buf, 100, 0), 0);
        }
        for (i = 0; i < nread_before; i++)
                assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), 100);
        assert_int_equal(fallocate(v.fd[0], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                   header ? 0 : (off_t)v.hdr->data_off,
                                   header ? 4096 : 16384), 0);
        for (i = nread_before; i < nread_before + nintact; i++) {
                memset(exp, 'a' + i, 100);
                assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), 100);
                assert_memory_equal(buf, exp, 100);
        }
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), -EBADMSG);
        assert_cons_poisoned(v.c);
        /* The producer keeps going into the holes, and learns it when it
         * next needs the consumer's index. */
        for (i = 0; i < 1000; i++) {
                int e = brd_ring_send(v.p, buf, 100, 0);

                if (e == -EBADMSG || e == -EAGAIN)
                        break;
                assert_int_equal(e, 0);
        }
        assert_true(i < 1000);
        t_ring_view_close(&v);
        t_leak_end(&l);
}

static void test_punched_holes(void **state)
{
        (void)state;
        /* The data area: the next frame reads as a zero word. */
        punch_ring(false, 5, 1, 0);
        /* The header page: what the consumer saw published comes out
         * intact (the frames are untouched), then the tail reads 0. */
        punch_ring(true, 5, 1, 4);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tail_out_of_range),
                cmocka_unit_test(test_tail_backwards_and_misaligned),
                cmocka_unit_test(test_frame_length_and_type),
                cmocka_unit_test(test_read_bad_frame_behind_empty_messages),
                cmocka_unit_test(test_frame_shrunk_after_partial_read),
                cmocka_unit_test(test_head_hostile_poisons_producer),
                cmocka_unit_test(test_head_hostile_at_close),
                cmocka_unit_test(test_pad_frame_bad_length),
                cmocka_unit_test(test_pad_frame_after_partial_read),
                cmocka_unit_test(test_pad_frame_alone_or_twice),
                cmocka_unit_test(test_pad_over_shown_frame),
                cmocka_unit_test(test_head_misaligned_poisons_producer),
                cmocka_unit_test(test_scribbler_never_crashes_consumer),
                cmocka_unit_test(test_punched_holes),
        };

        return cmocka_run_group_tests_name("ringbuf-corrupt", tests, NULL, NULL);
}
