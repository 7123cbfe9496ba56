/* SPDX-License-Identifier: MIT */
/* The forkserver's private structures, shared by fork/fsrv.c and fork/child.c. */
#ifndef BROOD_FORK_PRIVATE_H
#define BROOD_FORK_PRIVATE_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <brood/fork.h>
#include "internal/brd-private.h"

struct brd_fsrv_req;

/*
 * Spin budgets (ns).  On this kind of machine waking a sleeping thread costs
 * 20-27 us when its vCPU has halted, so each wake-up taken off the spawn
 * path is worth more than the few syscalls around it.  Every spin is
 * bounded by time and calls sched_yield(): on a loaded or single free CPU
 * the thread we wait for (the forkserver, the child) gets the CPU at once.
 */
#ifndef BRD_SPAWN_SPIN_NS
/* The caller spins on the child's stage word from the hand-off on, then
 * sleeps on the report pipe.  20 us: on a quiet 2-vCPU machine a 200 us
 * spin made spawn+wait 2.04x raw fork+waitpid (the spinning caller competes
 * with the forkserver thread and the new child for the two CPUs), 20 us
 * 1.33x, no spin 1.15-1.50x (spawn-bench --quick, 3 runs each, same
 * session); under load the spin helped a little. */
#define BRD_SPAWN_SPIN_NS       ((int64_t)20 * 1000)
#endif

/*
 * A fork-mode child reports on a word of a MAP_SHARED page set up by
 * brd_fsrv_start() (one slot per spawn in flight): a plain store, which the
 * caller sees while it spins.  The pipe is written only when the caller
 * announced that it sleeps (Dekker: each side stores, fences, then loads).
 */
/* One step of a bounded spin: yield, so that a runnable peer on this CPU runs. */
static inline void brd__spin_pause(void)
{
        brd__cpu_relax();
        (void)sched_yield();
}

#define BRD_FSRV_SLOTS          64
struct brd_fsrv_slot {
        AO_t stage;                     /* 0 pending, 1 reached fn, else (AO_t)-errno */
        AO_t sleeping;                  /* the caller sleeps on the pipe: write it */
        BRD_PAD(pad, 2 * sizeof(AO_t));
};
_Static_assert(sizeof(struct brd_fsrv_slot) == BRD_CACHELINE, "one slot per cache line");

struct brd_fsrv {
        pthread_mutex_t lock;           /* everything below, except the constants */
        pthread_cond_t work;            /* the thread sleeps here for requests */
        pthread_cond_t done;            /* callers and stop wait here for the thread */
        pthread_t thread;
        struct brd_fsrv_req *head, *tail;       /* pending requests */
        struct brd_child *children;     /* every child not yet freed */
        AO_t refs;                      /* owner + linked children + callers inside spawn
                                         * (atomic: a spawn takes its own before the lock) */
        bool busy;                      /* the thread is serving a request (unlocked) */
        bool stopping;                  /* spawns refused */
        bool quit;                      /* the thread exits */
        /* The exec-mode child the thread waits for inside clone()
         * (CLONE_VFORK): its pidfd, written there by the kernel before the
         * wait begins (CLONE_PIDFD), taken back under lock once clone()
         * returned; -1 otherwise.  Stop kills a child stuck before its
         * execve (stopped, traced) through it. */
        unsigned vfork_pidfd;           /* an int; unsigned for AO_int_load() */
        /* constants after start */
        unsigned flags;                 /* enum brd_fsrv_flags */
        uint64_t fork_gen;
        pid_t pid;
        void *stack;                    /* exec-mode children run on it (CLONE_VM) */
        struct brd_fsrv_slot *slots;    /* MAP_SHARED page, BRD_FSRV_SLOTS */
        struct brd__link all;           /* fsrv_all (fsrv.c), under the fork lock */
        uint64_t slots_used;            /* bitmap, under lock */
        uint64_t spawn_gen;             /* tags for slot->sleeping, under lock */
        size_t stack_size;
        int crash_stage;                /* testing: enum brd__crash_stage */
        char comm[16];                  /* the process's name at start: fork-mode children's default */
        /* The starting thread's seccomp mode and filter count (-1: not
         * counted), which the thread inherited, and the thread's id once it
         * runs (0 before): spawn_confinement(). */
        int seccomp, seccomp_filters;
        unsigned tid;                   /* AO_int */
        int dying_ms;                   /* BRD_FSRV_DYING_MS, or a test's */
};

enum brd__child_state {
        BRD_CHILD_RUNNING = 0,          /* not reaped */
        BRD_CHILD_EXITED,               /* reaped, status kept for the next wait */
        BRD_CHILD_CONSUMED,             /* status returned */
        BRD_CHILD_LOST,                 /* reaped by someone else: status unknown */
};

struct brd_child {
        struct brd_fsrv *fs;            /* holds a reference on fs while linked */
        struct brd_child *prev, *next;  /* fs->children, under fs->lock */
        pthread_mutex_t lock;           /* state, status; serialises waitid */
        pid_t pid;
        int pidfd;                      /* -1 when lost before pidfd_open */
        int state;                      /* enum brd__child_state */
        int status;                     /* waitpid format, valid from EXITED */
        bool linked;                    /* in fs->children (holds a reference on fs) */
        bool eintr;                     /* brd_child_wait() returns -EINTR (BRD_FSRV_EINTR) */
        /* The last SIGKILL a ladder sent: -errno if it failed.  Atomic:
         * ladders on one child may run at once (stop, fsrv stop). */
        int kill_err;
        uint64_t fork_gen;
        pid_t owner;                    /* the forkserver's process (fs->pid), see
                                         * brd__made_here() */
};

/*
 * Testing hook (RELIABILITY A5): make the next children of @fs die by SIGKILL
 * at a stage of the prelude.  Not thread-safe against concurrent spawns.
 */
enum brd__crash_stage {
        BRD__CRASH_NONE = 0,
        BRD__CRASH_AFTER_CLONE,         /* before the handles are installed */
        BRD__CRASH_BEFORE_ENTRY,        /* handles installed, before fn / execve */
        /* Not a crash (fork mode): after its success report the child
         * blocks until its fd 3 (the first handle) is readable or at EOF,
         * then writes the report pipe once more, as when both sides of the
         * Dekker see each other's store.  Once the caller has returned,
         * that write fails with EPIPE (and raises SIGPIPE). */
        BRD__STALL_REPORT,
        /* Not a crash (exec mode): the child stops itself (SIGSTOP) at the
         * end of its prelude, before it counts as spawned. */
        BRD__STOP_BEFORE_EXEC,
};
void brd__fsrv_set_crash_stage(struct brd_fsrv *fs, int stage);

/* fork/child.c */
struct brd_child *brd__child_new(struct brd_fsrv *fs);
/* The ladder, in parallel, over @first and up to @max - 1 children after it
 * (->next): SIGINT, SIGTERM after grace, SIGKILL after 2 x grace, reap all.
 * Statuses are kept, not consumed.  A child that the SIGKILL cannot reach
 * (-EPERM from an LSM) is waited for BRD_FSRV_UNKILLABLE_MS at least, then
 * left running; one that got it, for the forkserver's dying_ms at least.
 * Return: 0, or for the first child still running, that SIGKILL's -errno,
 * or -ETIMEDOUT. */
int brd__child_ladder(struct brd_child *first, size_t max, int grace_ms);
/* Testing: shorten @fs's BRD_FSRV_DYING_MS. */
void brd__fsrv_set_dying_ms(struct brd_fsrv *fs, int ms);
/* Does the process behind @pidfd share this process's memory (an exec-mode
 * child inside clone())?  Unknown (no /proc, no kcmp()): true.  fsrv.c. */
bool brd__fsrv_vfork_child(int pidfd);
/* fork/fsrv.c: drop a reference on @fs (an atomic count, no lock), free it
 * at zero: never under fs->lock, which the free destroys. */
void brd__fsrv_unref(struct brd_fsrv *fs);
void brd__fsrv_destroy(struct brd_fsrv *fs);

#endif /* BROOD_FORK_PRIVATE_H */
