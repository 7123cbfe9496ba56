/* SPDX-License-Identifier: MIT */
/*
 * Forkserver: a 3-level tree sharing one segment, SIGKILL of its root
 * (RELIABILITY A6), and fork-safety while another thread hammers brood.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include <brood/shm.h>
#include "fork-util.h"

/*
 * The tree: root (a plain fork of the test) -> 2 children -> 2 grandchildren
 * each, all through forkservers, plus one exec'd /bin/sleep under the root.
 * Every member inherits fd 2 = the write end of the test's "marker" pipe, so
 * the read end reaches EOF exactly when the last member died: no sleeps, no
 * scan of /proc.  Handles: the segment (fd 3) and the pipe to report to the
 * parent (fd 4).  Slots in the segment: root 0, child i 1 + i, grandchild
 * (i, j) 3 + 2i + j; each member writes 1000 + its slot, then reports.
 */
#define SLOTS 7

static uint32_t *slots(struct brd_handle *h, struct brd_seg **ret)
{
        if (brd_seg_attach(h, ret) < 0)
                return NULL;
        return brd_seg_addr(*ret);
}

static int report(int fd, char v)
{
        return write(fd, &v, 1) == 1 ? 0 : -1;
}

static int fn_grandchild(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_seg *s;
        uint32_t *v = slots(&h[0], &s);
        int slot = (int)(intptr_t)arg;

        if (!v)
                return 1;
        v[slot] = 1000u + (uint32_t)slot;
        if (report(4, 'k') < 0)
                return 2;
        for (;;)
                pause();
}

/* Spawn one member with (segment, report pipe) and wait for its byte. */
static int spawn_member(struct brd_fsrv *fs, brd_child_fn fn, int slot, struct brd_handle *seg,
                        struct brd_child **ret)
{
        struct brd_handle h[2];
        struct brd_spawn_opts o = { .fn = fn, .arg = (void *)(intptr_t)slot, .handles = h, .nhandles = 2,
                                    .name = "brd-t-tree" };
        int p[2], r;
        char x = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        h[0] = *seg;
        h[1] = tf_fd_handle(p[1]);
        r = brd_fsrv_spawn(fs, &o, ret);
        close(p[1]);
        if (r == 0 && (tf_read1(p[0], &x) != 1 || x != 'k'))
                r = -1;
        close(p[0]);
        return r;
}

static int fn_child(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_fsrv *fs;
        struct brd_child *g[2];
        struct brd_seg *s;
        uint32_t *v = slots(&h[0], &s);
        int i = (int)(intptr_t)arg - 1, j;

        if (!v || brd_fsrv_start(0, &fs) < 0)
                return 1;
        /* handles go down the tree: the child's own fds 3 and 4 are passed on */
        for (j = 0; j < 2; j++)
                if (spawn_member(fs, fn_grandchild, 3 + 2 * i + j, &h[0], &g[j]) < 0)
                        return 2;
        for (j = 0; j < 2; j++)
                if (v[3 + 2 * i + j] != 1000u + (uint32_t)(3 + 2 * i + j))
                        return 3;
        v[1 + i] = 1000u + (uint32_t)(1 + i);
        if (report(4, 'k') < 0)
                return 4;
        for (;;)
                pause();
}

static int root_main(struct brd_handle *seg)
{
        char *argv[] = { "/bin/sleep", "600", NULL };
        struct brd_spawn_opts so = { .argv = argv };
        struct brd_fsrv *fs;
        struct brd_child *c[2], *sl;
        struct brd_seg *s;
        uint32_t *v;
        int i;

        if (brd_seg_attach(seg, &s) < 0)
                return 1;
        v = brd_seg_addr(s);
        if (brd_fsrv_start(0, &fs) < 0)
                return 2;
        for (i = 0; i < 2; i++)
                if (spawn_member(fs, fn_child, 1 + i, seg, &c[i]) < 0)
                        return 3;
        if (brd_fsrv_spawn(fs, &so, &sl) < 0)
                return 4;
        for (i = 1; i < SLOTS; i++)
                if (v[i] != 1000u + (uint32_t)i)
                        return 5;
        v[0] = 1000;
        if (report(1, 'k') < 0)
                return 6;
        for (;;)
                pause();
}

/* The tree is dead within 1 s of its root's death (the bound as t_tries()
 * takes it; a tree that never dies fails after 10 s). */
static bool tree_dies_try(void)
{
        struct brd_seg *s;
        struct brd_handle h;
        struct t_leak l;
        int rep[2], mark[2], i;
        struct pollfd p;
        int64_t t0, dt;
        uint32_t *v;
        pid_t root;
        char x;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("tree", 4096, 0, &s), 0);
        assert_int_equal(brd_seg_export(s, &h), 0);
        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        assert_int_equal(pipe2(mark, O_CLOEXEC), 0);
        root = t_fork();                /* a failed check here ends it, and so the tree */
        assert_true(root >= 0);
        if (root == 0) {
                /* fd 1: report to the test; fd 2: the marker every member inherits. */
                if (dup2(rep[1], 1) < 0 || dup2(mark[1], 2) < 0)
                        _exit(100);
                close(rep[0]);
                close(mark[0]);
                _exit(root_main(&h));
        }
        close(rep[1]);
        close(mark[1]);
        if (tf_read1(rep[0], &x) != 1 || x != 'k')     /* all results came up */
                fail_msg("the tree was not built: its root ended with %d", t_wait_child(root));
        v = brd_seg_addr(s);
        for (i = 0; i < SLOTS; i++)
                assert_int_equal(v[i], 1000u + (uint32_t)i);

        t0 = t_now_ms();
        assert_int_equal(kill(root, SIGKILL), 0);
        assert_int_equal(t_wait_child(root), 128 + SIGKILL);
        /* Every member (children, grandchildren, the exec'd sleep) holds the
         * marker: EOF = nothing of the tree survives. */
        p = (struct pollfd){ .fd = mark[0], .events = POLLIN };
        for (;;) {
                int64_t left = 10000 - (t_now_ms() - t0);

                assert_true(left > 0);
                if (poll(&p, 1, (int)left) > 0 && tf_read1(mark[0], &x) == 0)
                        break;
        }
        dt = t_now_ms() - t0;
        close(rep[0]);
        close(mark[0]);
        brd_handle_close(&h);
        brd_seg_close(s);
        t_leak_end(&l);
        if (dt >= 1000) {
                print_message("the tree died %lld ms after its root\n", (long long)dt);
                return false;
        }
        return true;
}

static void test_tree_dies_with_root(void **state)
{
        (void)state;
        t_tries(tree_dies_try, "tree_dies_with_root");
}

/* ------------------------------------------------------------ fork-safety */
struct hammer {
        int stop[2];
        unsigned long rounds;
};

static void *hammer_main(void *arg)
{
        struct hammer *hm = arg;
        struct pollfd p = { .fd = hm->stop[0], .events = POLLIN };

        /* brood calls that take the fork-state lock, allocate and open fds. */
        while (poll(&p, 1, 0) == 0) {
                struct brd_seg *s, *a;
                struct brd_handle h, d;

                if (brd_seg_create("hammer", 4096, hm->rounds % 8 == 0 ? BRD_SEG_NAMED : 0, &s) < 0)
                        continue;
                if (brd_seg_export(s, &h) == 0) {
                        if (brd_handle_dup(&h, &d) == 0) {
                                if (brd_seg_attach(&d, &a) == 0)
                                        brd_seg_close(a);
                                brd_handle_close(&d);
                        }
                        brd_handle_close(&h);
                }
                brd_seg_close(s);
                hm->rounds++;
        }
        return NULL;
}

static int fn_uses_brood(void *arg, struct brd_handle *h, size_t n)
{
        /* The fork state is right in the child: no lock inherited held.
         * 200 is no code a good child gives (0..127). */
        if (t_fork_state_usable() != 0)
                return 200;
        return (int)((intptr_t)arg & 0x7f);
}

static void test_fork_safety_hammer(void **state)
{
        struct hammer hm = { .rounds = 0 };
        struct brd_fsrv *fs;
        struct brd_child *c;
        pthread_t t;
        struct t_leak l;
        int i, st;

        t_leak_begin(&l);
        assert_int_equal(pipe2(hm.stop, O_CLOEXEC), 0);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(pthread_create(&t, NULL, hammer_main, &hm), 0);
        alarm(100);     /* a deadlock fails the test instead of hanging it */
        for (i = 0; i < 1000; i++) {
                struct brd_spawn_opts o = { .fn = fn_uses_brood, .arg = (void *)(intptr_t)i };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), i & 0x7f);
                brd_child_free(c);
        }
        alarm(0);
        assert_int_equal(write(hm.stop[1], "x", 1), 1);
        pthread_join(t, NULL);
        assert_true(hm.rounds > 0);
        close(hm.stop[0]);
        close(hm.stop[1]);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tree_dies_with_root),
                cmocka_unit_test(test_fork_safety_hammer),
        };

        return cmocka_run_group_tests_name("fork-tree", tests, NULL, NULL);
}
