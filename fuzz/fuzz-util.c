/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz targets (see fuzz.h). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>

#include "fuzz.h"
#include "internal/brd-private.h"

int fuzz_count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        if (!d)
                FUZZ_FAIL("opendir(/proc/self/fd): %d", errno);
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the DIR's own fd */
}

/* Every call a target makes closes what it opened, even on an error. */
void fuzz_fd_check(int before)
{
        int now = fuzz_count_fds();

        if (now != before)
                FUZZ_FAIL("fd leak: %d fds open before the input, %d after", before, now);
}

/*
 * A pid that names no process: a lock word holding it belongs to a dead
 * holder, which the library must take over.  Searched for once, from the
 * top of the pid range down, where pids are handed out last.
 */
pid_t fuzz_dead_pid(void)
{
        static pid_t dead;
        FILE *f;
        long max = 32768;

        if (dead)
                return dead;
        f = fopen("/proc/sys/kernel/pid_max", "re");
        if (f) {
                if (fscanf(f, "%ld", &max) != 1)
                        max = 32768;
                fclose(f);
        }
        for (dead = (pid_t)max - 1; dead > 300; dead--)
                if (kill(dead, 0) < 0 && errno == ESRCH)
                        return dead;
        FUZZ_FAIL("no free pid below %ld", max);
}

/*
 * A lock word (the pool's lock, an array's writer lock) a peer may have
 * written, reduced to one a waiter decides at once: free, a pid no process
 * can have (pid 0 with a start time, or above PID_MAX_LIMIT: -EBADMSG), or a
 * dead holder (taken over), the last two with or without the waiters bit.
 * Never a live pid, ours included: that is a holder alive, which every
 * locked call waits out for its full 2 s bound before -ETIMEDOUT; right, and
 * tested in tests/, but it would slow the fuzzer down to one input per 2 s.
 */
uint64_t fuzz_lock_word(uint64_t v)
{
        uint64_t start = v & 0xffffffff00000000ull; /* the holder's start time */
        uint64_t waiters = (v >> 2) & 1 ? BRD__OWNER_WAITERS : 0;

        switch (v % 4) {
        case 0:
                return 0;
        case 1:
                return start | waiters;
        case 2:         /* bit 30: above PID_MAX_LIMIT, with or without bit 31 */
                return start | waiters | 0x40000000u | ((uint32_t)v >> 3 & 0x3fffffffu);
        default:
                return start | waiters | (uint32_t)fuzz_dead_pid();
        }
}
