/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the tests/test-fork-*.c files (static inline: no new .c). */
#ifndef BRD_TEST_FORK_UTIL_H
#define BRD_TEST_FORK_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/fork.h>
#include <brood/shm.h>
#include "helpers.h"

/* A raw fd carried as a handle: fork mode moves it like any other (kind not interpreted). */
static inline struct brd_handle tf_fd_handle(int fd)
{
        struct brd_handle h = { .kind = BRD_HANDLE_NONE, .nfds = 1, .fds = { fd, -1, -1, -1 } };

        return h;
}

/* read() exactly one byte, across EINTR: 1, 0 at EOF, -errno. */
static inline int tf_read1(int fd, char *c)
{
        ssize_t r;

        do
                r = read(fd, c, 1);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : (int)r;
}

/* Run @fn in a forked test process (its limits, fds and signal state are
 * its own to change): cmocka-asserts that it exits 0. */
static inline void tf_run_forked(int (*fn)(void))
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0)
                _exit(fn());
        assert_int_equal(t_wait_child(pid), 0);
}

#endif
