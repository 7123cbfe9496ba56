/* SPDX-License-Identifier: MIT */
/* brood demo (interim): a segment shared across fork(), with its figures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <brood/shm.h>
#include "brood.h"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
        uint64_t h = 1469598103934665603ULL;
        size_t i;

        for (i = 0; i < n; i += 8) {
                uint64_t w;

                memcpy(&w, p + i, 8);
                h = (h ^ w) * 1099511628211ULL;
        }
        return h;
}

int cmd_demo(int argc, char **argv)
{
        size_t size = 256u << 20, i;
        struct brd_seg *s;
        unsigned char *p;
        double t0, t_child, t_check;
        uint64_t sum;
        pid_t pid;
        int r, st;

        (void)argc;
        (void)argv;
        r = brd_seg_create("demo", size, BRD_SEG_POPULATE, &s);
        if (r < 0) {
                tool_err("demo", "segment", -r);
                return BRD_EXIT_FAIL;
        }
        p = brd_seg_addr(s);
        t0 = now_s();
        pid = fork();
        if (pid < 0) {
                tool_err("demo", "fork", errno);
                brd_seg_close(s);
                return BRD_EXIT_FAIL;
        }
        if (pid == 0) {
                /* The child writes; the parent sees it through the same pages. */
                for (i = 0; i < size; i += 8) {
                        uint64_t w = i * 0x9E3779B97F4A7C15ULL;

                        memcpy(p + i, &w, 8);
                }
                _exit(0);
        }
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "brood: demo: the child failed\n");
                brd_seg_close(s);
                return BRD_EXIT_FAIL;
        }
        t_child = now_s() - t0;
        t0 = now_s();
        sum = fnv(p, size);
        for (i = 0; i < size; i += 8) {
                uint64_t w;

                memcpy(&w, p + i, 8);
                if (w != i * 0x9E3779B97F4A7C15ULL) {
                        fprintf(stderr, "brood: demo: mismatch at byte %zu\n", i);
                        brd_seg_close(s);
                        return BRD_EXIT_FAIL;
                }
        }
        t_check = now_s() - t0;
        printf("brood demo: a %zu MiB sealed memfd segment shared across fork()\n", size >> 20);
        printf("  child wrote it:  %.1f ms (%.2f GB/s, fork and exit included)\n", t_child * 1e3,
               size / t_child / 1e9);
        printf("  parent verified: %.1f ms (%.2f GB/s), checksum %016llx: all bytes match\n",
               t_check * 1e3, size / t_check / 1e9, (unsigned long long)sum);
        brd_seg_close(s);
        return BRD_EXIT_OK;
}
