/* SPDX-License-Identifier: MIT */
/*
 * A ring driven by an epoll loop: the consumer never blocks inside brood.
 * It waits in epoll_wait() on brd_ring_fd() (beside whatever else a loop
 * watches) and drains with non-blocking receives until -EAGAIN.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <brood/brood.h>

#define N 50000

static int producer(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_ring *r;
        char msg[100];
        int i;

        if (n != 1 || brd_ring_attach(&h[0], &r) < 0)
                return 1;
        brd_handle_close(&h[0]);
        for (i = 0; i < N; i++) {
                int len = snprintf(msg, sizeof(msg), "event %d", i);

                if (brd_ring_send(r, msg, (size_t)len, -1) < 0)
                        return 2;
        }
        brd_ring_close(r);
        return 0;
}

int main(void)
{
        struct brd_handle prod, cons;
        struct brd_spawn_opts o = { .fn = producer, .handles = &prod, .nhandles = 1 };
        struct epoll_event ev = { .events = EPOLLIN };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_ring *r;
        long got = 0, wakeups = 0;
        int ep, st, done = 0;

        if (brd_ring_create(16 * 1024, 0, &prod, &cons) < 0 || brd_ring_attach(&cons, &r) < 0)
                return 1;
        brd_handle_close(&cons);
        if (brd_fsrv_start(0, &fs) < 0 || brd_fsrv_spawn(fs, &o, &c) < 0)
                return 1;
        brd_handle_close(&prod);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, brd_ring_fd(r), &ev) < 0)
                return 1;
        /* The child too: one that dies before it attaches is no dead peer
         * to the ring (it never was one), only its exit tells. */
        ev.data.u32 = 1;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, brd_child_fd(c), &ev) < 0)
                return 1;
        while (!done) {
                char buf[128], want[32];
                ssize_t n;

                if (epoll_wait(ep, &ev, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                wakeups++;
                while ((n = brd_ring_recv(r, buf, sizeof(buf), 0)) >= 0) {
                        /* Every message, in order, byte for byte. */
                        if (n != snprintf(want, sizeof(want), "event %ld", got) ||
                            memcmp(buf, want, (size_t)n))
                                return 1;
                        got++;
                }
                if (n == -EPIPE)
                        done = 1;               /* the producer closed: all delivered */
                else if (n != -EAGAIN)
                        return 1;               /* -ECONNRESET: it died attached */
                else if (ev.data.u32 == 1)
                        done = 1;               /* it exited, and nothing more came */
        }
        printf("epoll-ring: %ld messages in %ld wake-ups\n", got, wakeups);
        close(ep);
        brd_ring_close(r);
        if (brd_child_wait(c, -1, &st) < 0)
                return 1;
        brd_child_free(c);
        brd_fsrv_stop(fs);
        return got == N && st == 0 ? 0 : 1;
}
