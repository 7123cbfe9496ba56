/* SPDX-License-Identifier: MIT */
/*
 * Stream between forked actors: a forkserver spawns a producer and a
 * consumer, joined by one ring.  The consumer checks every message and
 * reports through its exit code.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <brood/brood.h>

#define N 100000

static int producer(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_ring *r;
        uint64_t i;

        if (n != 1 || brd_ring_attach(&h[0], &r) < 0)
                return 1;
        brd_handle_close(&h[0]);
        for (i = 0; i < N; i++)
                if (brd_ring_send(r, &i, sizeof(i), -1) < 0)
                        return 2;
        brd_ring_close(r);              /* the consumer sees -EPIPE after the last one */
        return 0;
}

static int consumer(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_ring *r;
        uint64_t v, expect = 0;
        ssize_t len;

        if (n != 1 || brd_ring_attach(&h[0], &r) < 0)
                return 1;
        brd_handle_close(&h[0]);
        while ((len = brd_ring_recv(r, &v, sizeof(v), -1)) == sizeof(v))
                if (v != expect++)
                        return 3;
        brd_ring_close(r);
        return len == -EPIPE && expect == N ? 0 : 4;
}

int main(void)
{
        struct brd_handle prod, cons;
        struct brd_fsrv *fs;
        struct brd_child *p = NULL, *c = NULL;
        struct brd_spawn_opts po = { .fn = producer, .handles = &prod, .nhandles = 1, .name = "producer" };
        struct brd_spawn_opts co = { .fn = consumer, .handles = &cons, .nhandles = 1, .name = "consumer" };
        int sp = 1, sc = 1;

        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        if (brd_ring_create(64 * 1024, 0, &prod, &cons) == 0) {
                if (brd_fsrv_spawn(fs, &co, &c) == 0)
                        brd_fsrv_spawn(fs, &po, &p);
                brd_handle_close(&prod);        /* the children hold their ends now */
                brd_handle_close(&cons);
        }
        /* An end that never attached (its child died first) is no dead
         * peer: the other would wait for good.  Bounded waits; stop ends
         * and reaps whatever still runs. */
        if (p && brd_child_wait(p, 60000, &sp) == 0)
                brd_child_wait(c, 60000, &sc);
        printf("stream: %d messages, producer status %d, consumer status %d\n", N, sp, sc);
        brd_fsrv_stop(fs);
        brd_child_free(p);
        brd_child_free(c);
        return sp == 0 && sc == 0 ? 0 : 1;
}
