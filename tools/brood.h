/* SPDX-License-Identifier: MIT */
/* The brood command's internals: one file per subcommand. */
#ifndef BROOD_TOOL_H
#define BROOD_TOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BRD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes of the brood command (documented in brood --help and brood(1)). */
enum {
        BRD_EXIT_OK = 0,
        BRD_EXIT_FAIL = 1,      /* the job failed: mismatch, something not removed... */
        BRD_EXIT_USAGE = 2,     /* bad command line */
        BRD_EXIT_INTR = 130,    /* stopped by SIGINT */
};

int cmd_ls(int argc, char **argv);
int cmd_reap(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Print @s as a JSON string (quoted, escaped). */
void json_str(FILE *f, const char *s);

/* One-line error: "brood: CMD: what: strerror". */
void tool_err(const char *cmd, const char *what, int err);

/* ------------------------------------------------------------- scanning */
/* A named brood segment in /dev/shm, with who holds it. */
struct seg_entry {
        char name[NAME_MAX + 2]; /* "/brood....": '/', a /dev/shm entry's name, NUL */
        char label[80];
        pid_t creator;
        uint64_t start_time;    /* creator's /proc start time encoded in the name */
        uint64_t pid_ns;        /* creator's pid namespace in the name; 0: not there */
        bool ns_unknown;        /* the name has the field, 0: its creator could not tell */
        bool other_ns;          /* a namespace that is not ours: its pid means nothing here */
        bool creator_alive;     /* same pid and same start time; other_ns: its pid lives in
                                 * its namespace (true when unjudged) */
        bool unjudged;          /* other_ns, and we cannot see every process (pidns.c) */
        uint64_t size;
        unsigned mode;
        uid_t uid;
        bool stat_ok;           /* size, mode, uid known (an anon memfd seen only in
                                 * /proc/PID/maps needs privileges for map_files) */
        pid_t holders[16];      /* live processes with an fd or a mapping of it */
        size_t nholders;        /* may exceed the array: count only */
        pid_t holder_last;      /* the holder counted last (add_holder()) */
        bool anon;              /* an anonymous memfd found through /proc/PID/fd or maps */
        uint64_t dev, ino;      /* the file the scan saw (anon: @path must still lead to it;
                                 * named: holders are matched by it, not by path) */
        char path[64];          /* anon: /proc/PID/fd/N (or map_files) to open it by */

        /* What is inside (anon "ring" and "pool" segments, read-only look). */
        enum { SEG_RAW = 0, SEG_RING, SEG_POOL } kind;
        struct {
                uint64_t capacity, fill;        /* bytes committed, not yet consumed */
                pid_t pid[2];                   /* producer, consumer; 0 = not attached */
                bool alive[2];
                bool closed[2];
                bool unjudged[2];               /* as the creator's, for each end */
        } ring;
        struct {
                uint64_t capacity, used, blocks;
                bool ok;
        } pool;
};

/* Parse "/brood.<pid>.<start>.<pidns>.<hex32>.<label>" (or without <pidns>),
 * spelled as brood writes it; false for any other name. */
bool seg_parse_name(const char *name, struct seg_entry *e);
/* Processes that could hold our segments (of our uid; any, as root) but
 * whose fds or mappings a scan could not read (not dumpable, say): their
 * holdings are unknown, so no segment can be proven unheld. */
struct seg_blind {
        size_t procs;
        pid_t first;            /* one of them, to name */
};
/* What seg_scan() looks at beyond the named segments. */
enum seg_scan_flags {
        SCAN_ANON  = 1u << 0,   /* anonymous brood memfds held by live processes */
        SCAN_POOLS = 1u << 1,   /* and the accounting of the pools among them */
};
/* Every named brood segment (and, with SCAN_ANON, every anonymous brood
 * memfd), with holders filled in.  Returns the count, *ret_list malloc'ed
 * and *ret_blind; -errno. */
int seg_scan(unsigned flags, struct seg_entry **ret_list, struct seg_blind *ret_blind);
/* Processes of nested pid namespaces, read once, for judging pids of other
 * namespaces (pidns.c): only root in the initial namespaces sees them all. */
struct ns_pid {
        uint64_t ns;
        pid_t pid;                      /* in that namespace: NSpid's last field */
        pid_t host;                     /* in ours (the one brood runs in) */
};
struct pidns_table {
        struct ns_pid *v;
        ssize_t n;                      /* -1: we cannot see every process */
        bool built;
};
/* 1: a process of pid namespace @ns has pid @pid there, and is the one
 * that started at @start (normalised, brd__proc_start_time(); 0: unknown,
 * any); 0: none has, or the pid's process there is another one (a reused
 * pid); -1: we cannot tell.  Reads /proc on its first call; zero-initialize
 * @t first. */
int pidns_has(struct pidns_table *t, uint64_t ns, pid_t pid, uint64_t start);
void pidns_table_free(struct pidns_table *t);

#endif
