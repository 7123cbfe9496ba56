/* SPDX-License-Identifier: MIT */
/*
 * Forkserver: the SIGINT -> SIGTERM -> SIGKILL ladder, one child at a time
 * and for all children in parallel at brd_fsrv_stop(); ownership of the
 * brd_child objects across the stop.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>

#include "fork-util.h"

#define GRACE_MS 200
#define SLACK_MS 100            /* the requirement: dead within 2 x grace + 100 ms */

/* arg: 0 exits on SIGINT, 1 ignores SIGINT, 2 ignores SIGINT and SIGTERM.
 * fd 3 (a pipe) gets one byte once the dispositions are in place. */
static int fn_ladder(void *arg, struct brd_handle *h, size_t n)
{
        int kind = (int)(intptr_t)arg;

        if (kind >= 1)
                signal(SIGINT, SIG_IGN);
        if (kind >= 2)
                signal(SIGTERM, SIG_IGN);
        if (write(3, "r", 1) != 1)
                return 1;
        close(3);
        for (;;)
                pause();
}

static const int expect_sig[3] = { SIGINT, SIGTERM, SIGKILL };

static void spawn_ladder_kids(struct brd_fsrv *fs, struct brd_child *c[3])
{
        int i, p[2];
        char x;

        for (i = 0; i < 3; i++) {
                struct brd_handle h;
                struct brd_spawn_opts o = { .fn = fn_ladder, .arg = (void *)(intptr_t)i,
                                            .handles = &h, .nhandles = 1 };

                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                h = tf_fd_handle(p[1]);
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c[i]), 0);
                close(p[1]);
                assert_int_equal(tf_read1(p[0], &x), 1);        /* ready: no race with the signal */
                close(p[0]);
        }
}

static void test_child_stop_ladder(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c[3];
        struct t_leak l;
        int64_t t0, dt;
        int i, st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        spawn_ladder_kids(fs, c);
        for (i = 0; i < 3; i++) {
                t0 = t_now_ms();
                assert_int_equal(brd_child_stop(c[i], GRACE_MS, &st), 0);
                dt = t_now_ms() - t0;
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), expect_sig[i]);
                /* each dies inside its window */
                assert_true(dt >= (int64_t)i * GRACE_MS);
                assert_true(dt < (int64_t)i * GRACE_MS + (i < 2 ? GRACE_MS : SLACK_MS));
                assert_int_equal(brd_child_wait(c[i], 0, &st), -ECHILD);      /* consumed */
                assert_int_equal(brd_child_kill(c[i], SIGKILL), -ESRCH);
                brd_child_free(c[i]);
        }
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void test_child_stop_exited_needs_no_signal(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_spawn_opts o = { .fn = fn_ladder, .arg = (void *)(intptr_t)2 };
        struct brd_handle h;
        int p[2], st;
        char x;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        h = tf_fd_handle(p[1]);
        o.handles = &h;
        o.nhandles = 1;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        close(p[1]);
        assert_int_equal(tf_read1(p[0], &x), 1);
        close(p[0]);
        assert_int_equal(brd_child_kill(c, SIGUSR2), 0);        /* dies of it */
        {
                struct pollfd pf = { .fd = brd_child_fd(c), .events = POLLIN };

                assert_int_equal(poll(&pf, 1, 10000), 1);
        }
        assert_int_equal(brd_child_stop(c, 60000, &st), 0);    /* returns at once */
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGUSR2);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_no_children();
}

static void test_fsrv_stop_parallel(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c[3];
        struct t_leak l;
        int64_t t0, dt;
        int i, st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        spawn_ladder_kids(fs, c);
        t0 = t_now_ms();
        brd_fsrv_stop_grace(fs, GRACE_MS);
        dt = t_now_ms() - t0;
        /* In parallel: 2 x grace, not 0 + 1 + 2 graces one after the other. */
        assert_true(dt >= 2 * GRACE_MS);
        assert_true(dt < 2 * GRACE_MS + SLACK_MS);
        t_no_children();                               /* all reaped before the join */
        for (i = 0; i < 3; i++) {
                /* statuses kept for their owner, exactly once */
                assert_int_equal(brd_child_wait(c[i], 0, &st), 0);
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), expect_sig[i]);
                assert_int_equal(brd_child_wait(c[i], 0, &st), -ECHILD);
        }
        /* free after stop: the forkserver's memory goes with the last child */
        for (i = 0; i < 3; i++)
                brd_child_free(c[i]);
        t_leak_end(&l);
}

static void test_child_free_kills_running(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_spawn_opts o = { .fn = fn_ladder, .arg = (void *)(intptr_t)2 };
        struct brd_handle h;
        struct t_leak l;
        int p[2];
        char x;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        h = tf_fd_handle(p[1]);
        o.handles = &h;
        o.nhandles = 1;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        close(p[1]);
        assert_int_equal(tf_read1(p[0], &x), 1);
        brd_child_free(c);                              /* ignores INT and TERM: SIGKILL, reaped */
        assert_int_equal(tf_read1(p[0], &x), 0);       /* its fd 3 is gone: it is dead */
        close(p[0]);
        t_no_children();
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_child_stop_ladder),
                cmocka_unit_test(test_child_stop_exited_needs_no_signal),
                cmocka_unit_test(test_fsrv_stop_parallel),
                cmocka_unit_test(test_child_free_kills_running),
        };

        return cmocka_run_group_tests_name("fork-stop", tests, NULL, NULL);
}
