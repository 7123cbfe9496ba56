/* SPDX-License-Identifier: MIT */
/*
 * brood's private header: never installed.  The one place that includes
 * libatomic_ops, the export macro, cache-line helpers, the fork state and the
 * cross-file brd__ internals.
 */
#ifndef BROOD_PRIVATE_H
#define BROOD_PRIVATE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <atomic_ops.h>

#include <brood/handle.h>

/*
 * Shared memory is only as good as its atomics: a lock-emulated AO_t (the
 * pthread fallback) is protected by a process-private lock and silently
 * breaks the moment two processes touch the same word.  Refuse to build.
 */
#if defined(AO_USE_PTHREAD_DEFS)
#error "libatomic_ops is lock-emulated here (AO_USE_PTHREAD_DEFS): unusable in shared memory"
#endif
#if !defined(AO_HAVE_load_acquire) || !defined(AO_HAVE_store_release) || \
    !defined(AO_HAVE_load) || !defined(AO_HAVE_store) || \
    !defined(AO_HAVE_compare_and_swap_full) || !defined(AO_HAVE_fetch_and_add_full) || \
    !defined(AO_HAVE_nop_full)
#error "libatomic_ops lacks a native primitive brood needs in shared memory"
#endif
_Static_assert(sizeof(AO_t) == 8, "brood's shared layouts assume a 64-bit AO_t");

#define BRD_EXPORT __attribute__((visibility("default")))
/* On extern declarations of the library's own globals: -fvisibility=hidden
 * covers definitions only, and without this every load of one goes through
 * the GOT (the static library is PIC), an extra load and a register on the
 * fast paths that read the fork generation. */
#define BRD_HIDDEN __attribute__((visibility("hidden")))

#define BRD_CACHELINE 64
/* Pads a shared struct so that the next member starts on a new cache line. */
#define BRD_PAD(name, used) char name[BRD_CACHELINE - (used)]
#define BRD_ALIGNED_CACHELINE __attribute__((aligned(BRD_CACHELINE)))

#define BRD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BRD_LIKELY(x)   __builtin_expect(!!(x), 1)
#define BRD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every store before it, streaming (non-temporal) ones included, is
 * visible before any store after it.  AO_nop_write() is no instruction on
 * x86, where ordinary stores keep their order but a streaming store (glibc's
 * memcpy past its non-temporal threshold) may pass an earlier one: sfence
 * there, a few cycles. */
static inline void brd__store_fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_sfence();
#else
        AO_nop_write();
#endif
}

static inline void brd__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#else
        __asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * memcpy between buffers whose addresses are unrelated (a caller's buffer
 * and shared memory): libc's, except that a copy longer than
 * BRD_COPY_CHUNK between addresses that are not line-aligned to each other
 * goes in chunks of BRD_COPY_CHUNK.  Why: from 2 KiB on, glibc copies with
 * `rep movsb`, which AMD Zen 3 runs 20-30x slower when dst is 1..31 bytes
 * past src modulo 4 KiB (one core, hot caches: 4 KiB at 1.8 GB/s against 56
 * aligned, 64 KiB at 1.8 against 43), and up to 1.5x slower at the other
 * offsets that are not a multiple of a line.  That band is where a caller's
 * large malloc'd buffer (16 bytes past a page) meets a payload the ring
 * placed at a page: 1 MiB messages received into one ran at 1.6 GB/s
 * instead of 9.  Chunks below the threshold take glibc's vector loop,
 * 35-90 GB/s at every offset.  Copies line-aligned to each other keep
 * `rep movsb` (measured with glibc 2.36, Debian 12, EPYC 7xx3 under KVM).
 */
#define BRD_COPY_CHUNK 2048u

static inline void brd__memcpy(void *restrict dst, const void *restrict src, size_t n)
{
        unsigned char *d = dst;
        const unsigned char *s = src;
        size_t chunk = BRD_COPY_CHUNK;

        if (BRD_UNLIKELY(n > chunk && ((uintptr_t)d - (uintptr_t)s) % BRD_CACHELINE)) {
                /* Hidden from the compiler, or it inlines a rep movs of its own. */
                __asm__("" : "+r"(chunk));
                for (; n > chunk; n -= chunk, d += chunk, s += chunk)
                        memcpy(d, s, chunk);
        }
        memcpy(d, s, n);
}

/*
 * memcpy of at most 64 bytes, inline, with overlapping 16-, 8- or 4-byte
 * moves (no call, no length dispatch: ~1 ns of a 4 ns ring send of 64 B,
 * measured).  No call at all, even for a length the compiler cannot bound:
 * a caller whose fast path must not call (and so save registers) uses this.
 */
static inline void brd__copy64(void *restrict dst, const void *restrict src, size_t n)
{
        unsigned char *d = dst;
        const unsigned char *s = src;
        uint64_t a[2], b[2], c[2], e[2];

        if (n >= 32) {
                memcpy(a, s, 16);
                memcpy(b, s + 16, 16);
                memcpy(c, s + n - 32, 16);
                memcpy(e, s + n - 16, 16);
                memcpy(d, a, 16);
                memcpy(d + 16, b, 16);
                memcpy(d + n - 32, c, 16);
                memcpy(d + n - 16, e, 16);
        } else if (n >= 16) {
                memcpy(a, s, 16);
                memcpy(b, s + n - 16, 16);
                memcpy(d, a, 16);
                memcpy(d + n - 16, b, 16);
        } else if (n >= 8) {
                memcpy(a, s, 8);
                memcpy(b, s + n - 8, 8);
                memcpy(d, a, 8);
                memcpy(d + n - 8, b, 8);
        } else if (n >= 4) {
                uint32_t x, y;

                memcpy(&x, s, 4);
                memcpy(&y, s + n - 4, 4);
                memcpy(d, &x, 4);
                memcpy(d + n - 4, &y, 4);
        } else if (n) {
                unsigned char x = s[0], y = s[n / 2], z = s[n - 1];

                d[0] = x;
                d[n / 2] = y;
                d[n - 1] = z;
        }
}

/*
 * memcpy for small hot copies: up to 64 bytes inline (brd__copy64()), longer
 * ones through brd__memcpy().
 */
static inline void brd__copy(void *restrict dst, const void *restrict src, size_t n)
{
        if (BRD_UNLIKELY(n > 64))
                brd__memcpy(dst, src, n);
        else
                brd__copy64(dst, src, n);
}

/* Copies from this size go a page at a time, prefetching: brd__copy_big(). */
#define BRD_COPY_BIG (256u * 1024)

/* A copy of @n bytes a page at a time, the next page of both buffers
 * prefetched (ringbuf/ring.c says why): large payloads through a ring. */
void brd__copy_big(void *restrict dst, const void *restrict src, size_t n);

/*
 * The copy of a payload into a ring, as send and write make it: brd__copy(),
 * a page at a time from BRD_COPY_BIG on (they may also stream 1-256 KiB when
 * their controller says so, internal/brd-release.h).  ring-bench fills its
 * zero-copy reservations with it, as a caller could.
 */
static inline void brd__copy_payload(void *restrict dst, const void *restrict src, size_t n)
{
        if (BRD_UNLIKELY(n >= BRD_COPY_BIG))
                brd__copy_big(dst, src, n);
        else
                brd__copy(dst, src, n);
}

/* ------------------------------------------------------------ fork state */
/*
 * shm/fork-state.c holds brood's only mutable globals: the cached pid, the
 * fork generation and the registry of this process's segments with its lock.
 * pthread_atfork keeps them right: prepare takes the lock, parent releases
 * it, child releases it after bumping the generation and marking every
 * inherited segment.
 */

/* Defined in shm/fork-state.c; handlers registered at library load. */
extern AO_t brd__pid_cache BRD_HIDDEN;
extern AO_t brd__fork_generation BRD_HIDDEN;
extern AO_t brd__fds_closed_gen BRD_HIDDEN;
pid_t brd__getpid_slow(void);

/* Cached getpid(); right in a forked child (reset by the atfork handler). */
static inline pid_t brd__getpid(void)
{
        pid_t p = (pid_t)AO_load(&brd__pid_cache);

        return BRD_LIKELY(p) ? p : brd__getpid_slow();
}

/* Starts at 1, bumped in every forked child: objects stamp it at creation and
 * treat a mismatch as "inherited through fork, not mine". */
static inline uint64_t brd__fork_gen(void)
{
        return AO_load(&brd__fork_generation);
}
/*
 * Is an object stamped when it was made with brd__fork_gen() @gen and
 * getpid() @pid still this process's?  After fork() the generation says it
 * is not; in a child made without fork()'s handlers (_Fork(), a raw clone),
 * which keeps the parent's generation, only the pid does, read by getpid()
 * (a system call: the cache is the parent's there).  Not for hot paths.
 */
static inline bool brd__made_here(uint64_t gen, pid_t pid)
{
        return gen == brd__fork_gen() && pid == getpid();
}
/* This process is a child that fork()'s handlers skipped (_Fork(),
 * clone(), vfork()), at any depth: brood's fork lock may be held here, for
 * good, by a thread the child does not have.  A system call (getpid). */
bool brd__handlers_skipped(void);
/*
 * The start time of process @pid (clock ticks since boot, /proc/PID/stat
 * field 22) as the initial time namespace sees it: the kernel adds the
 * reader's boottime offset, which is taken off again, so that processes of
 * different time namespaces agree.  pid + start time name a process across
 * pid reuse.  0 if unknown: /proc cannot be read, is not our pid
 * namespace's (brd__proc_ours()), or our time namespace's offset cannot be
 * told (after our own unshare(CLONE_NEWTIME), or not whole ticks).
 */
uint64_t brd__proc_start_time(pid_t pid);
/* As brd__proc_start_time(), into *@ret_start: 0, or < 0 where it could not
 * be read for now, and a later look may tell (*@ret_start is 0 then):
 * -EMFILE, -ENFILE or -ENOMEM for what ran out, -EAGAIN (a signal). */
int brd__proc_start_time_of(pid_t pid, uint64_t *ret_start);
/* Is the process stamped as @pid, started at @start (brd__proc_start_time(),
 * masked with @mask when only some bits were kept; 0: unknown), gone for
 * good?  Only a sure verdict: a pid that is not a process id is never gone,
 * and a living one whose start time is unknown (either side) is alive.
 * Without brd__proc_ours() only kill()'s ESRCH counts. */
bool brd__pid_gone(uint64_t pid, uint64_t start, uint64_t mask);
/* Is /proc mounted for our pid namespace, so that /proc/N is our process N?
 * Not after unshare -pf without --mount-proc.  Cached per process. */
bool brd__proc_ours(void);
/*
 * The lines of /proc status file @path that start with the keys of @k
 * ("NSpid:"), in one read of it: for each, what follows its key up to the
 * newline, NUL-terminated in ->out (->cap bytes; longer is cut), and
 * ->found.  Read in pieces: the Groups line before such keys can be far
 * longer than a page.  The count found (a key's line longer than 4 KiB is
 * not), or -errno (-EAGAIN for a signal) when the file cannot be read.
 * Not a cancellation point.
 */
struct brd__status_key {
        const char *key;
        char *out;
        size_t cap;
        bool found;
};
int brd__proc_status(const char *path, struct brd__status_key *k, size_t nk);
/*
 * The identity of this process's pid namespace (the inode of
 * /proc/self/ns/pid), cached per process and right in a forked child; 0
 * when /proc cannot say.  Pids mean the same to two processes only within
 * one namespace: an object that judges liveness by pids stamps its
 * creator's, and a process of another namespace may not use it.
 */
uint64_t brd__pid_ns(void);
/* Does a process stamped with pid namespace @ns see our pids?  True when
 * the stamp is unknown (0: its writer could not tell, nothing to refuse);
 * false when ours is unknown and the stamp is not (no /proc here and
 * Linux < 6.11: nothing proves the stamp's pids ours). */
bool brd__pid_ns_ours(uint64_t ns);
/*
 * The owner word of a lock in shared memory (the pool's, an array's
 * writer's, a ring role's): this process's pid in bits 0..31, the low 32
 * bits of its start time above, so that a recycled pid is not taken for a
 * live holder.  Threads of one process share it.  Cheap: both are cached
 * per process, and right in a forked child.  0, or -errno while the start
 * time cannot be read for now (-EMFILE, -ENFILE, -ENOMEM, -EAGAIN): stamped
 * 0, a word would keep every waiter from telling its holder dead once the
 * pid is reused (where /proc cannot say at all, 0 is the start time).
 */
int brd__owner_word(AO_t *ret_word);
/* The owner word of process @pid (0 as its start time if /proc cannot say):
 * what it would write. */
AO_t brd__owner_word_of(pid_t pid);
/* Has the process that wrote owner word @word exited (or become a zombie)?
 * brd__pid_gone()'s sure verdict.  Pids are read in our pid namespace,
 * which must be the writer's: the pool refuses processes of another one
 * (brd__pid_ns_ours() against its creator's stamp), arrays live in pools. */
bool brd__owner_gone(AO_t word);

/* Set in a held owner lock's word while a waiter sleeps on it (bit 31: pids
 * stay below 2^22, PID_MAX_LIMIT), so that the unlock wakes it. */
#define BRD__OWNER_WAITERS 0x80000000u
/* How long brd__owner_lock() waits for a live holder. */
#define BRD__OWNER_LOCK_WAIT_NS 2000000000ll
/*
 * Take the owner lock @lk (shm/owner-lock.c): 0; 1 when it was taken over
 * from a holder whose process is gone (the caller repairs what that one may
 * have left half done); -EBADMSG when the word names no possible process
 * (corrupt memory); -ETIMEDOUT when a live holder kept it for
 * BRD__OWNER_LOCK_WAIT_NS (nothing changed but the word's waiters bit);
 * brd__owner_word()'s -errno (out of fds or memory: nothing touched).
 * Threads of one process exclude each other too; not recursive.  A waiter
 * sleeps in a futex that the unlock wakes, waking on its own only to look
 * for the holder's death (10 us after it fell asleep, doubling up to every
 * 16 ms).
 */
int brd__owner_lock(AO_t *lk);
void brd__owner_unlock(AO_t *lk);
/* Unlock @lk only if it still holds this process's word, by a CAS: for a
 * lock whose memory may have been freed and made again meanwhile (its
 * word reset, maybe taken by another process since). */
void brd__owner_unlock_mine(AO_t *lk);
/*
 * The forkserver's child prelude closes every inherited fd but its handles
 * (close_range) and calls brd__fork_fds_closed(): from then on the fd
 * numbers held by objects inherited from before that fork may belong to the
 * child's own handles.  brd__fds_gone(obj_gen) tells an object stamped with
 * an older fork generation that its fds are not its own any more: its close
 * must not close them and its export must fail (-EBADF).
 */
void brd__fork_fds_closed(void);
/*
 * The same prelude, once its fds are placed: unmap every segment inherited
 * from the parent whose file is not open at one of fds @first..@first+@n-1
 * (the child's handles), RELIABILITY F35.  Such a segment is then gone as a
 * NOFORK one is in any forked child (brd_seg_addr() NULL, -EBADF from its
 * pool and arrays).  @n <= BRD__FORK_KEEP_MAX.  Single-threaded child,
 * async-signal-safe (fstat, munmap).
 */
#define BRD__FORK_KEEP_MAX 256
void brd__fork_drop_unhanded(int first, int n);
static inline bool brd__fds_gone(uint64_t obj_gen)
{
        return obj_gen < AO_load(&brd__fds_closed_gen);
}

/*
 * Prefault [@addr, @addr + @len) of a shared mapping: MADV_POPULATE_WRITE
 * (Linux 5.14), else a read of each page.  Then a read of each page in any
 * case: under a hypervisor that shadows the page tables, the first access
 * to a page traps even when it is mapped (a PVM guest: 4.5 us a page, then
 * 0.02, measured).  Errors are left to the first real access, as with
 * MAP_POPULATE (the segment's pages were reserved at create).
 */
void brd__populate(void *addr, size_t len);

/* Has the file of @st the blocks of its first @bytes (prefaulting them then
 * allocates nothing)?  A brood file's are all allocated at create; a peer's
 * sparse file of any declared size would have the prefault allocate it. */
static inline bool brd__blocks_cover(const struct stat *st, uint64_t bytes)
{
        return (uint64_t)st->st_blocks * 512 >= bytes;
}

/*
 * No cancellation point inside: a thread cancelled in the middle of a ring
 * call or under a pool's lock would leave the endpoint held or the lock
 * named after a live process.  brd__nocancel() returns the state to give
 * brd__cancel_restore().
 */
static inline int brd__nocancel(void)
{
        int old;

        (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        return old;
}

static inline void brd__cancel_restore(int old)
{
        (void)pthread_setcancelstate(old, NULL);
}

/* Take/release the fork-state lock (registry); fork() waits for holders. */
void brd__fork_lock(void);
void brd__fork_unlock(void);

/*
 * 0 when the fork handlers are registered (at load, pthread_atfork), else
 * its -errno (-ENOMEM): every call that makes a fork-aware object (a
 * segment, so every pool, ring and array; a forkserver) fails with it
 * instead of making one that a fork would leave wrong.
 */
int brd__fork_ready(void);

/* ---------------------------------------------------------- segments */
/*
 * An intrusive doubly linked list, for this process's lists of objects
 * that a fork must see whole: the segment registry (shm/fork-state.c) and
 * the forkservers' report pages (fork/fsrv.c), each changed under the fork
 * lock.  An entry is listed while it has a predecessor or is the head.
 */
struct brd__link {
        struct brd__link *prev, *next;
};

#define BRD__LINK_ENTRY(l, type, member) \
        ((type *)(void *)((char *)(l) - offsetof(type, member)))

static inline void brd__link_push(struct brd__link **head, struct brd__link *n)
{
        n->prev = NULL;
        n->next = *head;
        if (*head)
                (*head)->prev = n;
        *head = n;
}

static inline bool brd__link_listed(struct brd__link *const *head, const struct brd__link *n)
{
        return n->prev || *head == n;
}

/* Unlist @n, which is listed. */
static inline void brd__link_del(struct brd__link **head, struct brd__link *n)
{
        if (n->prev)
                n->prev->next = n->next;
        else
                *head = n->next;
        if (n->next)
                n->next->prev = n->prev;
        n->prev = n->next = NULL;
}

struct brd_seg {
        void            *addr;          /* NULL when gone (NOFORK in a forked child) */
        size_t           size;
        int              fd;            /* owned */
        unsigned         flags;         /* enum brd_seg_flags */
        bool             creator;       /* this process created it: unlinks a named one */
        bool             inherited;     /* reached us through fork() */
        uint64_t         gen;           /* fork generation at create/open/attach */
        pid_t            map_pid;       /* getpid() at the map, see brd__made_here() */
        char            *name;          /* named segments: "/brood...." */
        int              guard;         /* named: its SIGBUS guard slot; else -1 */
        uint64_t         dev, ino;      /* its file (memfd or /dev/shm) */
        struct brd__link reg;           /* registry, under the fork lock */
};

/*
 * The registry of this process's segments (shm/fork-state.c): add a fully
 * built segment (-EMFILE past BRD_SEG_MAX), delete one about to be freed.
 * Both under brd__fork_lock(), held from before its mmap() to after the
 * entry is added, and from before the entry is deleted to after munmap():
 * a fork() in between would leave the child a mapping no entry names,
 * which a forkserver child then keeps (brd__fork_drop_unhanded()).
 */
int brd__registry_add(struct brd_seg *s);
void brd__registry_del(struct brd_seg *s);
/* Does this process hold a named segment it created on file @dev:@ino? */
bool brd__registry_created(uint64_t dev, uint64_t ino);

/* The SIGBUS guard's table (shm/sigbus.c).  add: a slot for a named
 * mapping (its index, or -EMFILE); drop: before the range is unmapped (-1
 * is none); faulted: the guard put zero pages over it; on: the guard is
 * this process's SIGBUS handler now. */
int brd__guard_add(void *addr, size_t size, bool dontfork);
void brd__guard_drop(int slot);
/* drop, in a forked child (one thread, async-signal context) whose range
 * is not its own: a cover another thread of the parent had under way is
 * not waited for (drop would wait for ever: that thread is not here). */
void brd__guard_forget(int slot);
/* Testing: @seg's guard slot as a handler in another thread leaves it while
 * it maps the cover (claimed), without mapping anything.  The slot cannot
 * be dropped after this (brd_seg_close() would wait for ever). */
void brd__guard_test_claim(const struct brd_seg *seg);
bool brd__guard_faulted(int slot);
bool brd__guard_on(void);
/* Its part of the fork handlers (after the registry's in the child: a
 * NOFORK range's slot is dropped there first). */
void brd__guard_fork_prepare(void);
void brd__guard_fork_parent(void);
void brd__guard_fork_child(void);

/* Attach an fd (borrowed) of a known kind: named = shm_open object (uid/mode
 * checks) vs memfd (seal checks).  @size: the file's least size, and what
 * is mapped (0: the whole file).  A named segment's name is read from
 * /proc/self/fd; where that cannot be read, @opened_as (the name it was
 * just opened by, or NULL). */
int brd__seg_attach_fd(int fd, uint64_t size, bool named, const char *opened_as, unsigned flags,
                       struct brd_seg **ret_seg);

/* membarrier(2) @cmd: the rings' asymmetric fence (ringbuf/ring.c), and
 * ring-bench's measure of it.  0 or -1 with errno, like the system call. */
static inline int brd__membarrier(int cmd)
{
        return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

/* ------------------------------------------------------------- time */
/* Clock @id in ns. */
static inline int64_t brd__clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC in ns. */
static inline int64_t brd__now_ns(void)
{
        return brd__clock_ns(CLOCK_MONOTONIC);
}

/* A deadline for timeout_ms: -1 = none (INT64_MAX), 0 = now. */
static inline int64_t brd__deadline(int timeout_ms)
{
        if (timeout_ms < 0)
                return INT64_MAX;
        return brd__now_ns() + (int64_t)timeout_ms * 1000000;
}

/* Milliseconds left until @deadline for poll(): -1 forever, 0 expired,
 * rounded up so that poll never returns before the deadline. */
static inline int brd__poll_timeout(int64_t deadline)
{
        int64_t left;

        if (deadline == INT64_MAX)
                return -1;
        left = deadline - brd__now_ns();
        if (left <= 0)
                return 0;
        left = (left + 999999) / 1000000;
        return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* --------------------------------------------------------------- fds */
/* fcntl(fd, F_DUPFD_CLOEXEC, 3): -errno on failure (-EMFILE, not -EINVAL,
 * where the fd limit leaves no number from 3 up). */
int brd__dup_cloexec(int fd);
/* What /proc/self/fd/@fd links to, NUL-terminated in @buf (cut to @cap - 1
 * bytes): its length, or -errno (-ENOENT: no /proc, or no such fd). */
ssize_t brd__fd_link(int fd, char *buf, size_t cap);
/* close() that keeps errno and never retries. */
void brd__close(int fd);
/* poll() one fd for @events until @deadline: >0 ready, 0 timeout, -errno;
 * across EINTR, or with @eintr -EINTR when a signal handler ran. */
int brd__poll_wait(int fd, short events, int64_t deadline, bool eintr);
/* brd__poll_wait() across EINTR. */
int brd__poll_one(int fd, short events, int64_t deadline);
/* @n (<= 256) random bytes from getrandom(), across EINTR: 0 or -errno
 * (-EIO for a short read). */
int brd__random(void *buf, size_t n);
/* Validate a handle's shape (kind, nfds, fds >= 0). */
bool brd__handle_valid(const struct brd_handle *h, uint32_t kind, uint32_t min_fds);
/*
 * Whether a handle's fds[0] is still the file it names, so that a stale
 * copy is told (RELIABILITY D27: a copy of a handle another copy of which
 * was closed, its fd numbers since taken by other files).  A handle records
 * its file when it is made (brd__handle_stamp()): the inode in aux, and for
 * a segment or pool the device in id (a ring's id is its ring id; its memfd
 * is told from a /dev/shm file by its link count, 0).  Nothing in shared
 * memory, which a peer may scribble on, decides it, nor what a sender
 * says: a handle that arrives is stamped anew from the fds it brought.
 * brd__handle_current() is 0 while fds[0] is that file, -EBADF once it is
 * not (closed, or another file); a handle with aux 0 (made by hand)
 * recorded nothing and is taken as current, as is one of no brood kind
 * (a fork-mode spawn's plain fds).  Both async-signal-safe.
 */
int brd__handle_stamp(struct brd_handle *h);
int brd__handle_current(const struct brd_handle *h);

/* One of brood's object kinds (a handle that owns fds), not NONE or CLOSED. */
static inline bool brd__handle_kind_known(uint32_t kind)
{
        return kind >= BRD_HANDLE_SEG && kind <= BRD_HANDLE_RING_CONSUMER;
}

/* The answer for handle @h that brd__handle_valid() refused: -EBADF for one
 * brd_handle_close() left, else -EINVAL. */
static inline int brd__handle_err(const struct brd_handle *h)
{
        return h && h->kind == BRD_HANDLE_CLOSED ? -EBADF : -EINVAL;
}

#endif /* BROOD_PRIVATE_H */
