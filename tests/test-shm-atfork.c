/* SPDX-License-Identifier: MIT */
/*
 * pthread_atfork() failing when the library loads (-ENOMEM, the only error
 * it has): the fork handlers are missing, so nothing fork-aware may be made.
 * Every call that would make one answers the error, cleanly: no crash, no
 * fd, no /dev/shm name, no thread left.
 *
 * Linked with -Wl,--wrap=pthread_atfork (see tests/meson.build): the
 * library's constructor, which registers its handlers, gets the failure.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>

#include <brood/fork.h>
#include <brood/ringbuf.h>
#include <brood/shm.h>

int __wrap_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

static int atfork_calls;

int __wrap_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
        (void)prepare;
        (void)parent;
        (void)child;
        atfork_calls++;
        return ENOMEM;
}

static void test_nothing_fork_aware_is_made(void **state)
{
        struct brd_handle hp, hc;
        struct brd_fsrv *fs = NULL;
        struct brd_pool *p = NULL;
        struct brd_seg *s = NULL;
        struct t_leak l;
        int threads = t_thread_count();

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(atfork_calls, 1);      /* at load, once */
        assert_int_equal(brd_seg_create("atfork", 4096, 0, &s), -ENOMEM);
        assert_null(s);
        assert_int_equal(brd_seg_create("atfork", 4096, BRD_SEG_NAMED, &s), -ENOMEM);
        assert_null(s);
        assert_int_equal(brd_pool_create(1 << 20, 0, &p), -ENOMEM);
        assert_null(p);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), -ENOMEM);
        assert_int_equal(brd_fsrv_start(0, &fs), -ENOMEM);
        assert_null(fs);
        /* Asked again, the same answer: the registration is not retried. */
        assert_int_equal(brd_seg_create("atfork", 4096, 0, &s), -ENOMEM);
        assert_int_equal(atfork_calls, 1);
        assert_int_equal(t_thread_count(), threads);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_fork_aware_is_made),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
