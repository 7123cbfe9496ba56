/* SPDX-License-Identifier: MIT */
/*
 * An exec'd ring consumer for tests/test-fork-ring.c; reports only through
 * its exit code.  helper-fork-ring N: take the consumer handle described in
 * the environment, receive messages "m0".."m<N-1>" in order, then -EPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brood/ringbuf.h>

int main(int argc, char **argv)
{
        struct brd_handle h[2];
        struct brd_ring *r;
        char buf[64], want[16];
        ssize_t k;
        int i, n;

        if (argc < 2)
                return 2;
        n = atoi(argv[1]);
        if (brd_handle_from_env(h, 2) != 1 || h[0].kind != BRD_HANDLE_RING_CONSUMER)
                return 3;
        if (brd_ring_attach(&h[0], &r) < 0)
                return 4;
        brd_handle_close(&h[0]);
        for (i = 0; i < n; i++) {
                k = brd_ring_recv(r, buf, sizeof(buf), 10000);
                snprintf(want, sizeof(want), "m%d", i);
                if (k != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)k))
                        return 5;
        }
        if (brd_ring_recv(r, buf, sizeof(buf), 10000) != -EPIPE)
                return 6;
        brd_ring_close(r);
        return 0;
}
