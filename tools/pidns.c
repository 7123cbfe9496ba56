/* SPDX-License-Identifier: MIT */
/*
 * The creators of named segments made in other pid namespaces.  Root in the
 * initial pid and user namespaces sees every process of the machine, and a
 * process of a nested namespace shows the pids it has there (NSpid) and, to
 * root, which namespace it is in: a creator that no process matches (its
 * namespace, and its pid there) is dead, its namespace gone or not.
 * Anywhere else, or when one process's namespace cannot be read, a process
 * may be hidden from us (in an ancestor or sibling namespace, or another
 * user's), so such creators are not judged.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/brd-private.h"
#include "brood.h"

#define PROC_PID_INIT_INO  0xeffffffcu  /* linux/proc_ns.h, fixed since 3.8 */
#define PROC_USER_INIT_INO 0xeffffffdu

static bool whole_machine(void)
{
        struct stat st;

        return geteuid() == 0 && brd__pid_ns() == PROC_PID_INIT_INO &&
               stat("/proc/self/ns/user", &st) == 0 && st.st_ino == PROC_USER_INIT_INO;
}

/* Process @pid's NSpid: the number of its pid namespaces from /proc's down
 * (1: /proc's own), *ret_in = its pid in the innermost; 0 when it is gone;
 * -1 when it cannot be read (or the kernel, before 4.1, has no NSpid). */
static int nspid(pid_t pid, pid_t *ret_in)
{
        char path[64], line[512];
        int levels = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT || errno == ESRCH ? 0 : -1;
        while (fgets(line, sizeof(line), f)) {
                char *p = line + 6, *end;

                if (strncmp(line, "NSpid:", 6))
                        continue;
                for (;;) {
                        long v = strtol(p, &end, 10);

                        if (end == p)
                                break;
                        *ret_in = (pid_t)v;
                        levels++;
                        p = end;
                }
                break;
        }
        if (!levels)            /* gone since the open (ESRCH), or unreadable */
                levels = ferror(f) && errno == ESRCH ? 0 : -1;
        fclose(f);
        return levels;
}

/* Every process of a nested namespace: (namespace, pid there).  The count,
 * or -1 when something could not be read (then nothing is judged). */
static ssize_t ns_table(struct ns_pid **ret)
{
        struct ns_pid *t = NULL, *nt;
        size_t n = 0, cap = 0;
        DIR *proc;
        struct dirent *d;

        *ret = NULL;
        if (!whole_machine())
                return -1;
        proc = opendir("/proc");
        if (!proc)
                return -1;
        while ((d = readdir(proc))) {
                char path[64];
                struct stat st;
                pid_t pid, in = 0;
                int levels;

                if (!isdigit((unsigned char)d->d_name[0]))
                        continue;
                pid = (pid_t)atoi(d->d_name);
                levels = nspid(pid, &in);
                if (levels < 0)
                        goto unknown;
                if (levels < 2)
                        continue;               /* ours, or gone */
                snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
                if (stat(path, &st) < 0) {
                        if (errno == ENOENT || errno == ESRCH)
                                continue;       /* exited meanwhile */
                        goto unknown;
                }
                if (n == cap) {
                        cap = cap ? 2 * cap : 64;
                        nt = realloc(t, cap * sizeof(*t));
                        if (!nt)
                                goto unknown;
                        t = nt;
                }
                t[n].ns = (uint64_t)st.st_ino;
                t[n].host = pid;
                t[n++].pid = in;
        }
        closedir(proc);
        *ret = t;
        return (ssize_t)n;
unknown:
        closedir(proc);
        free(t);
        return -1;
}

int pidns_has(struct pidns_table *t, uint64_t ns, pid_t pid, uint64_t start)
{
        ssize_t k;

        if (!t->built) {
                t->built = true;
                t->n = ns_table(&t->v);
        }
        if (t->n < 0)
                return -1;
        /* The pid's process there, seen here under its host pid: the one
         * stamped only if it started then (a container reuses small pids
         * all the time); gone meanwhile, it is gone. */
        for (k = 0; k < t->n; k++)
                if (t->v[k].ns == ns && t->v[k].pid == pid)
                        return !brd__pid_gone((uint64_t)t->v[k].host, start, UINT64_MAX);
        return 0;
}

void pidns_table_free(struct pidns_table *t)
{
        free(t->v);
        t->v = NULL;
        t->built = false;
}
