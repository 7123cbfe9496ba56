/* SPDX-License-Identifier: MIT */
/*
 * What every case of ring-bench needs: the options, the failure count, and
 * the forked child (fork, "ready", reap) with the page where it leaves its
 * result.  Each case forks one child that dies with the parent, and a case
 * that hangs for 60 s ends the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-common.h"
#include "ring-bench.h"

struct rb_opt opt = { .pin = 1, .cpu = { -1, -1 } };
int failures;
struct child_res *res;
static pid_t bench_pid;                 /* the parent of every case's child */

static void on_alarm(int sig)
{
        static const char msg[] = "ring-bench: a case hung for 60 s, giving up\n";

        (void)sig;
        if (write(2, msg, sizeof(msg) - 1) < 0)
                _exit(1);
        _exit(1);       /* children follow by PDEATHSIG */
}

static void child_setup(void)
{
        signal(SIGALRM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != bench_pid)    /* the parent died before PDEATHSIG was armed */
                _exit(3);
        if (opt.pin && opt.cpu[1] >= 0)
                bc_pin_cpu(opt.cpu[1]);
}

pid_t fork_child(int *ret_ready, int *ret_ready_w)
{
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        memset(res, 0, sizeof(*res));
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int e = -errno;

                close(p[0]);
                close(p[1]);
                return e;
        }
        if (pid == 0) {
                close(p[0]);
                child_setup();
                *ret_ready_w = p[1];
                return 0;
        }
        close(p[1]);
        *ret_ready = p[0];
        alarm(60);      /* a hung case ends the run (children follow by PDEATHSIG) */
        return pid;
}

void child_ready(int fd, int e)
{
        char c = 'r';

        if (e < 0) {
                res->err = e;
                _exit(2);
        }
        if (write(fd, &c, 1) != 1)
                _exit(4);
        close(fd);
}

int wait_ready(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;
        int n;

        do
                n = poll(&p, 1, 10000);
        while (n < 0 && errno == EINTR);
        n = n == 1 ? (int)read(fd, &c, 1) : -1;
        close(fd);
        return n == 1 ? 0 : -EPROTO;
}

int case_failed(int e, const char *fmt, ...)
{
        va_list ap;

        fputs("ring-bench: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, ": %s\n", strerror(-e));
        failures++;
        return e;
}

int reap(pid_t pid, int kill_it)
{
        int st;

        if (kill_it)
                kill(pid, SIGKILL);
        st = bc_wait_child(pid);
        alarm(0);
        if (kill_it)
                return -ECANCELED;
        if (st < 0)
                return st;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return -EPROTO;
        return res->err;
}

void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

int case_init(void)
{
        signal(SIGALRM, on_alarm);
        bench_pid = getpid();
        res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return res == MAP_FAILED ? -ENOMEM : 0;
}
