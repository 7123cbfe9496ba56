/* SPDX-License-Identifier: MIT */
/* Forkserver: a ring endpoint passed as a handle to a forked and to an exec'd child. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <brood/ringbuf.h>
#include "fork-util.h"

#define NMSG 3

static int fn_consumer(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_ring *r;
        char buf[64], want[16];
        ssize_t k;
        int i;

        if (n != 1 || h[0].kind != BRD_HANDLE_RING_CONSUMER || h[0].fds[0] != 3)
                return 1;
        if (brd_ring_attach(&h[0], &r) < 0)
                return 2;
        brd_handle_close(&h[0]);
        for (i = 0; i < NMSG; i++) {
                k = brd_ring_recv(r, buf, sizeof(buf), 10000);
                snprintf(want, sizeof(want), "m%d", i);
                if (k != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)k))
                        return 3;
        }
        if (brd_ring_recv(r, buf, sizeof(buf), 10000) != -EPIPE)
                return 4;
        brd_ring_close(r);
        return 0;
}

static void run(struct brd_fsrv *fs, const struct brd_spawn_opts *base)
{
        struct brd_handle prod, cons;
        struct brd_spawn_opts o = *base;
        struct brd_child *c;
        struct brd_ring *r;
        char msg[16];
        int i, st;

        assert_int_equal(brd_ring_create(4096, 0, &prod, &cons), 0);
        assert_int_equal(brd_ring_attach(&prod, &r), 0);
        brd_handle_close(&prod);
        o.handles = &cons;
        o.nhandles = 1;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        brd_handle_close(&cons);
        for (i = 0; i < NMSG; i++) {
                snprintf(msg, sizeof(msg), "m%d", i);
                assert_int_equal(brd_ring_send(r, msg, strlen(msg), 10000), 0);
        }
        brd_ring_close(r);      /* EOF after drain */
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        brd_child_free(c);
}

static void test_ring_handle_fork_and_exec(void **state)
{
        char exe[PATH_MAX], helper[PATH_MAX + 32], nmsg[8];
        char *argv[] = { helper, nmsg, NULL };
        struct brd_spawn_opts of = { .fn = fn_consumer }, oe = { .argv = argv };
        struct brd_fsrv *fs;
        struct t_leak l;
        ssize_t k;

        k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(k > 0);
        exe[k] = '\0';
        snprintf(helper, sizeof(helper), "%s/helper-fork-ring", dirname(exe));
        snprintf(nmsg, sizeof(nmsg), "%d", NMSG);
        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        run(fs, &of);
        run(fs, &oe);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ring_handle_fork_and_exec),
        };

        return cmocka_run_group_tests_name("fork-ring", tests, NULL, NULL);
}
