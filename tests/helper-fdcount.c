/* SPDX-License-Identifier: MIT */
/*
 * A program that tests exec: it reports only through its exit code.
 *   helper-fdcount count           exit code = number of open fds
 *   helper-fdcount seg-env BYTE     attach the segment described in the
 *                                   environment, check it is filled with BYTE,
 *                                   fill it with BYTE+1; 0 on success
 *   helper-fdcount seg-sock BYTE    the same with the handle received on fd 3
 *   helper-fdcount segs-env N BYTE  exactly N segments described in the
 *                                   environment, each attached and filled
 *                                   with BYTE (left as they are); 0 on success
 *   helper-fdcount proc-foreign     /proc/self is our pid, its status has
 *                                   NSpid past the first 4 KiB, and brood
 *                                   takes that /proc for another pid
 *                                   namespace's; 0 on success
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        if (!d)
                return 255;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}

static int check_seg(struct brd_handle *h, int byte)
{
        struct brd_seg *s;
        unsigned char *p;
        size_t i, n;

        if (brd_seg_attach(h, &s) < 0)
                return 10;
        brd_handle_close(h);
        p = brd_seg_addr(s);
        n = brd_seg_size(s);
        for (i = 0; i < n; i++)
                if (p[i] != (unsigned char)byte)
                        return 11;
        memset(p, byte + 1, n);
        brd_seg_close(s);
        return 0;
}

/* Where "\nNSpid:" begins in /proc/self/status, -1 if nowhere. */
static long nspid_offset(void)
{
        static char buf[1 << 20];
        size_t len = 0;
        ssize_t n;
        char *p;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -1;
        while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)n;
        close(fd);
        buf[len] = '\0';
        p = strstr(buf, "\nNSpid:");
        return p ? p - buf : -1;
}

static int proc_foreign(void)
{
        char self[32];
        ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);

        if (n <= 0)
                return 10;
        self[n] = '\0';
        if (atol(self) != (long)getpid())
                return 11;              /* not the case this is about */
        if (nspid_offset() < 4096)
                return 12;
        return brd__proc_ours() ? 13 : 0;
}

int main(int argc, char **argv)
{
        struct brd_handle h[4];
        int n;

        if (argc < 2)
                return 2;
        if (!strcmp(argv[1], "count"))
                return count_fds();
        if (!strcmp(argv[1], "proc-foreign"))
                return proc_foreign();
        if (argc < 3)
                return 2;
        if (!strcmp(argv[1], "seg-env")) {
                n = brd_handle_from_env(h, 4);
                if (n != 1)
                        return 20 + (n < 0 ? 1 : n);
                if (getenv(BRD_HANDLE_ENV))
                        return 30;
                return check_seg(&h[0], atoi(argv[2]));
        }
        if (!strcmp(argv[1], "segs-env") && argc > 3) {
                n = brd_handle_from_env(h, 4);
                if (n != atoi(argv[2]))
                        return 20 + (n < 0 ? 1 : n);
                for (int i = 0; i < n; i++) {
                        struct brd_seg *s;
                        const unsigned char *p;

                        if (brd_seg_attach(&h[i], &s) < 0)
                                return 10;
                        brd_handle_close(&h[i]);
                        p = brd_seg_addr(s);
                        for (size_t k = 0; k < brd_seg_size(s); k++)
                                if (p[k] != (unsigned char)atoi(argv[3]))
                                        return 11;
                        brd_seg_close(s);
                }
                return 0;
        }
        if (!strcmp(argv[1], "seg-sock")) {
                n = brd_handle_recv(3, h, 4, 5000);
                close(3);
                if (n != 1)
                        return 40;
                return check_seg(&h[0], atoi(argv[2]));
        }
        return 2;
}
