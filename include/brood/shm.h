/* SPDX-License-Identifier: MIT */
#ifndef BROOD_SHM_H
#define BROOD_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <brood/handle.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- segments */

struct brd_seg;                 /* one mapping of a shared segment in this process */

enum brd_seg_flags {
        BRD_SEG_NAMED    = 1u << 0,     /* a /dev/shm name; default: anonymous sealed memfd */
        BRD_SEG_POPULATE = 1u << 1,     /* prefault the pages at create/attach (attach: only
                                         * if the file's space is allocated, as brood's is) */
        BRD_SEG_NOFORK   = 1u << 2,     /* MADV_DONTFORK: forked children do not see it */
};

/* Longest label brd_seg_create() takes (bytes, without the NUL). */
#define BRD_SEG_LABEL_MAX 64
/* Every name brood gives a named segment starts with this (after the '/'). */
#define BRD_SEG_NAME_PREFIX "brood."
/* Segments one process may have mapped at once; beyond it create/attach say -EMFILE. */
#define BRD_SEG_MAX 16384

/**
 * brd_seg_create() - create and map a shared segment.
 * @label: a short name for humans (ls, /proc/PID/maps), 1..BRD_SEG_LABEL_MAX
 *         bytes of [A-Za-z0-9_.-]; NULL means "seg"
 * @size: bytes; rounded up to the page size (brd_seg_size() tells)
 * @flags: enum brd_seg_flags
 * @ret_seg: the segment; untouched on failure
 *
 * Anonymous (default): memfd_create(MFD_CLOEXEC|MFD_ALLOW_SEALING), space
 * reserved with posix_fallocate, sealed against shrink, grow and reseal,
 * mapped MAP_SHARED.  Named (BRD_SEG_NAMED): shm_open(O_CREAT|O_EXCL) with
 * mode 0600 under "/brood.<pid>.<starttime>.<pidns>.<random>.<label>" (the
 * creator, its pid namespace's inode, 128 random bits), so no other process
 * can squat or guess it; this process unlinks it on close.  A creator killed
 * before its close leaves the name behind until `brood reap` (which removes
 * the names whose creator is dead).  A named file cannot be sealed: any
 * process of this user may truncate it, and then an access past its end
 * is a SIGBUS.  So brd_seg_open() and brd_seg_attach() map one unguarded
 * only in the process that created it (and still has it): any other process
 * installs brd_seg_sigbus_guard() first.  A mapping a child inherits through
 * fork() is guarded only if the guard is installed there.  Anonymous
 * segments have no such risk.
 *
 * Return: 0; -EINVAL (bad label, size 0 or above INT64_MAX less a page,
 * unknown flags, NULL @ret_seg); -ENAMETOOLONG;
 * -EFBIG (size above RLIMIT_FSIZE: never SIGXFSZ); -ENOSPC / -ENOMEM (no
 * room in tmpfs or the memcg: reported here, never a SIGBUS later; -ENOMEM
 * at once for a size past the machine's available memory, MemAvailable,
 * which a memfd's tmpfs, of no size of its own, would otherwise meet as
 * the kernel's OOM killer); -EMFILE;
 * other -errno.  Nothing is left behind on failure.
 * Concurrency: thread-safe.  Fork: the mapping is inherited (unless NOFORK);
 * the child's copy is marked inherited and never unlinks the name (a child
 * of fork(), whose pthread_atfork() handlers mark it: one made by _Fork(),
 * vfork() or clone() is taken for the creator, and may only exec).  A
 * fork-mode forkserver child keeps it only if it was handed it (a handle of
 * this segment, or of a pool in it, brd_fsrv_spawn()): otherwise it is
 * unmapped there before fn runs, gone as a NOFORK one (RELIABILITY F35).
 */
int brd_seg_create(const char *label, size_t size, unsigned flags, struct brd_seg **ret_seg);

/**
 * brd_seg_open() - map a named segment that another process created.
 * @name: what brd_seg_name() returned there ("/brood....")
 * @ret_seg: the segment; untouched on failure
 * Return: 0; -EINVAL on a malformed name; -ENAMETOOLONG; -ENOENT; -EACCES if
 * it is not owned by this user or is accessible to group/others; -ELOOP if
 * the name is a symbolic link (never followed); -EINVAL if it is not a
 * regular shm file; -EAGAIN if another process holds a lease on it; -EBADMSG if it is empty (0 bytes: never sized, or
 * truncated); -EPERM if another process created it and the SIGBUS guard
 * is not installed (brd_seg_sigbus_guard()); -EMFILE (past BRD_SEG_MAX
 * segments too); -ENOMEM; -errno from open/mmap.
 * Closing it only unmaps (this process did not create it).
 * Concurrency: thread-safe.  Fork: as brd_seg_create().
 */
int brd_seg_open(const char *name, struct brd_seg **ret_seg);

/**
 * brd_seg_attach() - map the segment a handle describes.
 * @h: a BRD_HANDLE_SEG handle, borrowed (its fd is dup'ed)
 * @ret_seg: the segment; untouched on failure
 *
 * Validates before it maps: a regular file on tmpfs (not hugetlbfs), at
 * least h->size bytes long (after its seals are read: they fix the size),
 * and (for a memfd, even one whose handle claims BRD_SEG_NAMED) sealed
 * against shrink and grow (a memfd is told by its /proc/self/fd link:
 * without /proc, one whose handle claims BRD_SEG_NAMED is taken for a named
 * file, and checked and guarded as one).  Maps h->size bytes, whatever the file's size.
 * Return: 0; -EINVAL on a malformed handle or an fd of the wrong type (pipe,
 * socket, disk file, hugetlbfs); -EBADMSG if the file is smaller than declared, its
 * shrink and grow seals are missing, or it is sealed against writes (also
 * when the peer seals it so while attach runs); -EACCES for a named segment
 * of another user or with group/other access; -EPERM for a named segment
 * another process created while the SIGBUS guard is not installed
 * (brd_seg_sigbus_guard()); -EBADF for a closed or stale handle (its fd
 * no longer the file it was exported from: brd_handle_close()) / -errno from
 * fstat, and for an O_PATH fd (whatever the handle claims); -EMFILE; -errno
 * from mmap.  Nothing is mapped on failure.
 * Concurrency: thread-safe.  Fork: as brd_seg_create().
 */
int brd_seg_attach(const struct brd_handle *h, struct brd_seg **ret_seg);

/**
 * brd_seg_export() - a handle for this segment, to send or pass to a child.
 * @seg: the segment
 * @ret_handle: a BRD_HANDLE_SEG handle owning a new CLOEXEC dup of the fd;
 *              untouched on failure.  Close it with brd_handle_close().
 * Return: 0, -EINVAL, -EBADF (segment gone in this forked child, see
 * brd_seg_create(); or a forkserver child, whose inherited fds are closed), -EFAULT
 * (brd_seg_check() says so), -errno.
 * Concurrency: thread-safe.  Fork: works in a forked child that kept the
 * mapping (it dups the child's copy of the fd); -EBADF where it is gone and,
 * in a forkserver child, for every inherited segment (export the one
 * attached from the handle the child was given).
 */
int brd_seg_export(const struct brd_seg *seg, struct brd_handle *ret_handle);

/**
 * brd_seg_close() - unmap and release a segment.
 * @seg: may be NULL
 * The process that created a named segment unlinks its name, if the name
 * still names this segment's file (a file put there since is left alone);
 * any other process (including a forked child of the creator) only unmaps.
 * Concurrency: do not use @seg from other threads during or after the call.
 * Fork: in a forked child it unmaps the child's copy (if still mapped
 * there) and closes the child's copy of the fd (not in a forkserver child,
 * where that number is no longer the segment's); it never unlinks the name.
 * In a child made without fork()'s handlers (_Fork(), clone()), which may
 * only exec, it closes the fd and nothing else (brood's fork lock may be
 * held there by a thread of the parent's that the child does not have).
 */
void brd_seg_close(struct brd_seg *seg);

/** brd_seg_addr() - base address of the mapping (page aligned); NULL if @seg is NULL
 *  or the mapping is gone in this forked child (BRD_SEG_NOFORK, or a forkserver
 *  child not handed it, see brd_seg_create()).
 *  Concurrency: any thread, not during or after brd_seg_close().  Fork: the
 *  parent's address where the child kept the mapping, else NULL (above). */
void *brd_seg_addr(const struct brd_seg *seg);

/** brd_seg_size() - bytes mapped: the created size rounded up to a page;
 *  attached, the handle's size; opened by name, the file's.  0 for NULL.
 *  Concurrency: any thread, not during or after brd_seg_close().  Fork: the
 *  same value in a forked child, also where the mapping is gone there. */
size_t brd_seg_size(const struct brd_seg *seg);

/** brd_seg_name() - the /dev/shm name ("/brood....") of a named segment, NULL when anonymous
 *  (or @seg is NULL), and for a named one that brd_seg_attach() mapped where /proc is
 *  not mounted (the name is read from /proc/self/fd) or that was unlinked before.
 *  Concurrency: any thread, not during or after brd_seg_close().
 *  Fork: the same name in a forked child, which never unlinks it. */
const char *brd_seg_name(const struct brd_seg *seg);

/** brd_seg_fd() - the segment's fd (owned by @seg: do not close it), -EINVAL for NULL,
 *  -EBADF where brd_seg_export() says it: in a forked child of a BRD_SEG_NOFORK
 *  segment (gone there), or in a forkserver child once it closed the fds it does
 *  not keep (that number may be another file's there).
 *  Concurrency: any thread, not during or after brd_seg_close().  Fork: in
 *  any other forked child, the child's copy of the fd (the same number). */
int brd_seg_fd(const struct brd_seg *seg);

/** brd_seg_is_inherited() - 1 if this process got @seg through fork() rather than
 *  creating, opening or attaching it itself, 0 otherwise (and for NULL).
 *  Concurrency: any thread, not during or after brd_seg_close().  Fork: 1 in a
 *  forked child for every segment that was mapped at the fork, including
 *  those gone there. */
int brd_seg_is_inherited(const struct brd_seg *seg);

/**
 * brd_seg_sigbus_guard() - let this process map named segments of others.
 *
 * A named segment cannot be sealed, so another process may shrink it, and
 * an access past the new end raises SIGBUS.  The guard is a SIGBUS handler:
 * when a fault hits a named segment mapped in this process, it maps private
 * zero pages over the whole segment and returns, so the access completes
 * (reads see zeros, writes reach no other process) and the segment is
 * faulted for good (brd_seg_check()).  What other threads write to it
 * while the zero pages go in may be lost with the rest.  A SIGBUS anywhere
 * else goes to the action installed before the guard, as the kernel would
 * deliver it there (its mask, SA_NODEFER, SA_RESETHAND; the default: the
 * process dies of it).  Once installed, every named segment mapped here is
 * guarded, the ones this process created too; until then brd_seg_open() and
 * brd_seg_attach() refuse a named segment this process did not create with
 * -EPERM.  A thread that blocks SIGBUS is not guarded: the kernel kills the
 * process at its fault, whatever the handler.  The zero pages are private
 * memory, charged to this process as they are written: where they cannot be
 * mapped (strict overcommit, vm.overcommit_memory=2, charges the whole
 * segment at once: one past the commit limit's room) the fault goes on as
 * if there were no guard, and the segment's range may be left unmapped.
 *
 * brood installs no signal handler unless asked: call this once, at start,
 * if the process maps named segments it did not create.  A handler the
 * application installs for SIGBUS afterwards replaces the guard (opens and
 * attaches then say -EPERM again); call this again to chain to it (if that
 * handler passes signals back to the guard it replaced, a SIGBUS that
 * neither owns then takes the default action instead of going round; the
 * handler chained to must return or end the process: one that leaves by
 * siglongjmp() leaves that thread's later SIGBUS to the default action).
 * A chained handler that returns from a fault it did not cure is given the
 * same fault again, as the kernel would; the ninth time in a row in one
 * thread, each within a second of its last return (a crash reporter that
 * put the guard back as "its predecessor" and returned would be called
 * for ever), the default action is taken.
 * The default action is taken on the signal's own siginfo (a core dump
 * shows the fault's code and address).  The guard runs on the thread's
 * alternate signal stack when it has one (SA_ONSTACK), and so does the
 * action it chains to, installed with SA_ONSTACK or not: an action that
 * needs much stack wants a large sigaltstack (or none).
 * Only an access past the file's end (BUS_ADRERR) is covered: an alignment
 * or memory error goes on as any other SIGBUS.  A segment closed while
 * its cover is under way in another thread's handler waits for it (its
 * range is unmapped after, never covered after).
 * Return: 0 (also when already installed); -errno from sigaction.
 * Concurrency: thread-safe.  Fork: a fork()ed child keeps the guard and what
 * it covers; a forkserver child starts with every signal at its default and
 * exec drops it: such a child installs its own.  A fork while another
 * thread installs the guard, or while its handler covers a segment, leaves
 * the child a guard that works (the fork waits for an install; a cover that
 * was under way is finished in the child).  A fork() from a signal
 * handler is not supported while brood is loaded (POSIX leaves it
 * undefined once pthread_atfork() handlers exist): brood's handlers take
 * locks that the interrupted thread may hold.
 */
int brd_seg_sigbus_guard(void);

/**
 * brd_seg_check() - whether a segment is still shared.
 * @seg: the segment
 * Return: 0; -EFAULT once an access to this named segment faulted (another
 * process shrank the file) and the SIGBUS guard replaced the mapping with
 * private zero pages: nothing written to it since reaches other processes,
 * so stop using it and close it; -EINVAL for NULL.  Anonymous segments are
 * sealed against shrinking and never answer -EFAULT: a peer cannot take
 * their pages away, only punch holes in them (fallocate), which read as
 * zeros and are filled again on a write; where that write finds no room
 * (a full tmpfs) the access raises SIGBUS, as any shared mapping's would.
 * Concurrency: thread-safe; any access to the segment may turn it -EFAULT.
 * Fork: a forked child's copy answers as the parent's did at the fork
 * (the guard's state is inherited), then for its own accesses.
 */
int brd_seg_check(const struct brd_seg *seg);

/* ------------------------------------------------------------------- pools */

/*
 * A pool is a heap in one sealed segment, shared by every process that
 * attached it (or inherited it through fork()).  Blocks are named by their
 * offset from the pool base, valid in every process; brd_pool_ptr() turns an
 * offset into this process's address.
 *
 * Small blocks (up to BRD_POOL_SMALL_MAX) come in power-of-two size classes
 * from 64 B and are allocated and freed lock-free from any thread of any
 * process.  Larger blocks come from a buddy allocator (4 KiB pages, powers
 * of two, coalesced on free) under a lock word in the pool; a holder that
 * dies is survived (a waiter that finds its process gone takes the lock over
 * and repairs the allocator; at worst the span or the blocks the dead
 * process was handling stay allocated; a zombie holder is gone too; the
 * holder is named by its pid, so every process using the pool must be in
 * its creator's pid namespace: see brd_pool_create()).  A
 * call never waits for that lock longer than 2 s: past
 * that it returns -ETIMEDOUT, having changed nothing.  When
 * the buddy allocator runs dry, spans of small blocks that are entirely free
 * are given back to it, so space freed in one size serves any other.
 * While a process has a single thread, a small cache per size class makes
 * an alloc/free pair one atomic operation.  A process's cache holds at most
 * ~1.3 MiB, and at most the pool's data over twice its number of slots, so
 * that the caches of all live processes together never hold more than half
 * the pool's bytes in blocks.  But a cached small block keeps its whole
 * span (the 64-256 KiB its class cuts blocks from) from going back to the
 * buddy allocator: a live process that freed blocks another one allocated
 * and then stays idle holds up to 32 blocks per size class, each maybe of
 * a span of its own, and an alloc elsewhere, of a size no partly used span
 * serves, can meet -ENOSPC while brd_pool_stats() says the pool is nearly
 * empty, until that process's own allocs of those sizes take them out, or
 * its cache is given back (below), or it dies.  Once a
 * second thread appears it is given back by the next call that would use
 * it or that finds the pool full, and at brd_pool_close(); a forked
 * child forgets the parent's (those blocks stay the parent's): no block is
 * ever owned twice.  The cache is listed in a slot in the pool (one per
 * 512 KiB of segment, at most 32; a process that finds none goes without),
 * so the cache of a process that dies without brd_pool_close() (SIGKILL, a
 * crash) is not lost (but for one block when it dies inside a cached alloc
 * or free, between the block's state and the slot's list: that block, and
 * so its span, stay taken for the pool's life): an alloc about to fail
 * with -ENOSPC first takes back the blocks
 * of every slot whose owner is dead (owners in the caller's pid namespace,
 * pid and start time checked; a zombie counts as dead: it can no longer
 * touch the pool, so its blocks are taken back before its parent reaps it).
 * What tells a holder's death, of the lock or of a slot, is /proc of this
 * pid namespace: without it (not mounted, or another namespace's) only a
 * holder already reaped is seen gone (kill() says ESRCH), not a zombie or
 * a pid since reused; and a process that cannot name its own pid namespace
 * (no /proc there and a kernel before 6.11) leaves a slot that no reaper
 * takes back, its cache lost if it dies without brd_pool_close().
 * A process that execve()s keeps its pid and start time: the slot of one
 * that cached without brd_pool_close() stays its own until the new program
 * exits: close the pool before exec (an exec-mode forkserver child makes
 * no pool call before its exec).  No pool call is async-signal-safe (as
 * malloc is not): a signal handler that interrupted an alloc or free of a
 * pool and calls into it may take the same cached block twice.
 */
struct brd_pool;                /* a heap inside one segment, shared by every process that attaches it */

enum brd_pool_flags {
        BRD_POOL_POPULATE = 1u << 0,    /* prefault the segment */
        BRD_POOL_NOFORK   = 1u << 1,    /* forked children do not see the pool (gone there) */
};

/* Every block brd_pool_alloc() returns is aligned to this many bytes. */
#define BRD_POOL_ALIGN 64
/* Largest block served lock-free from a size class; above it, the buddy path. */
#define BRD_POOL_SMALL_MAX 65536

struct brd_pool_stats {
        uint64_t size;          /* bytes of the segment */
        uint64_t capacity;      /* bytes that can be handed out (size minus metadata) */
        uint64_t used;          /* bytes in live blocks, rounded to their size class / buddy block */
        uint64_t blocks;        /* live blocks */
        uint64_t largest_free;  /* largest block an alloc gets at once (without reclaiming spans) */
};

/**
 * brd_pool_create() - create a pool (heap) of @size bytes in a new sealed segment.
 * @size: bytes of the segment, metadata included (about 2.2% plus one page),
 *        rounded up to a page; at least 12 KiB after rounding, less than
 *        256 GiB (at most 256 GiB - 4 KiB)
 * @flags: enum brd_pool_flags
 * @ret_pool: untouched on failure
 * Return: 0, -EINVAL (size too small or too large, unknown flags), or the
 * -errno of brd_seg_create() (-ENOSPC, -ENOMEM, -EMFILE...).
 * Concurrency: thread-safe.  Fork: the pool is usable in a forked child (it
 * is shared memory, unless BRD_POOL_NOFORK); the child forgets the parent's
 * cache without handing those blocks back, and claims a slot of its own.
 * The child must come from fork() (or a forkserver, which calls it): only
 * fork() runs the pthread_atfork() handlers.  One made by vfork(),
 * posix_spawn(), _Fork(), clone() or a raw fork system call would share the
 * parent's cache and lock identity: it may only exec.
 * The lock names a process, not a thread: a thread that holds it must not
 * end while its process lives (the calls never end a thread there: none is
 * a cancellation point while holding it; a sibling's execve() is the one
 * way, and leaves the pool's lock held until that process exits).
 * The pool is gone (nothing of it mapped: its calls and its arrays' answer
 * -EBADF, brd_pool_ptr() NULL) in a forked child of a BRD_POOL_NOFORK pool
 * and in a fork-mode forkserver child that was not handed it (RELIABILITY
 * F35, see brd_seg_create()).
 * The pool records the creator's pid namespace: the lock names its holder
 * by pid, so processes of another pid namespace (the children of a process
 * that called unshare(CLONE_NEWPID)) get -EXDEV from attach, and from
 * alloc, free and stats when the pool reached them through fork().  So
 * does a process that cannot tell its own pid namespace (no /proc, and
 * Linux before 6.11) when the creator could.
 */
int brd_pool_create(size_t size, unsigned flags, struct brd_pool **ret_pool);

/**
 * brd_pool_attach() - attach a pool another process exported.
 * @h: a BRD_HANDLE_POOL handle, borrowed (its fd is dup'ed)
 * Return: 0, -EINVAL (not a pool handle), -EBADF (closed or stale:
 * brd_handle_close()), -EPROTO (bad magic, version or
 * layout: the geometry is recomputed from the segment size and compared),
 * -EXDEV (this process is in another pid namespace than the pool's
 * creator), -ENOMEM, or the -errno of brd_seg_attach() (-EBADMSG for a
 * lying fd).
 * The header is read once: the pool's bounds are the values checked, so a
 * peer rewriting the header meanwhile gets this call -EPROTO or a pool of
 * the checked geometry, never one past the mapping.
 * Concurrency: thread-safe.  Fork: as brd_pool_create().
 */
int brd_pool_attach(const struct brd_handle *h, struct brd_pool **ret_pool);

/** brd_pool_export() - a BRD_HANDLE_POOL handle for @pool (new fd); 0, -EINVAL, or -errno:
 *  -EBADF for a pool inherited by a forkserver child (its fd is gone there;
 *  export from the attach of the handle the child was given), or -EMFILE.
 *  Concurrency: thread-safe.  Fork: as brd_seg_export(): works in a forked
 *  child that kept the pool; -EBADF where the pool is gone (brd_pool_create()). */
int brd_pool_export(const struct brd_pool *pool, struct brd_handle *ret_handle);

/** brd_pool_close() - unmap the pool in this process; blocks stay allocated in it. NULL ok.
 *  Concurrency: do not use @pool, or an array in it, from other threads during
 *  or after the call.  Fork: in a forked child it gives back only the child's
 *  own cache slot, never the parent's, and closes as brd_seg_close() does. */
void brd_pool_close(struct brd_pool *pool);

/**
 * brd_pool_alloc() - allocate @size bytes.
 * Return: the block's offset from the pool base (> 0, BRD_POOL_ALIGN aligned),
 * -EINVAL for size 0 or a size that can never fit, -ENOSPC when the pool is
 * full (after taking back the caches of dead processes and the spans that
 * are wholly free), -EBADMSG when the pool's shared state is corrupt (poisoned: every
 * later alloc, free and stats through this handle says -EBADMSG until it is
 * closed, whatever the shared state becomes; the pool's other handles find
 * it poisoned too), -ETIMEDOUT when the pool lock stayed held for
 * 2 s (nothing changed; only calls that need the lock: larger blocks, or a
 * size class that ran dry), -EMFILE, -ENFILE, -ENOMEM or -EAGAIN where such
 * a call cannot read this process's start time for its lock word (out of
 * fds or memory: nothing changed), -EBADF where the pool is gone (brd_pool_create()),
 * -EXDEV in a forked child in another pid namespace (see brd_pool_create()).
 * Concurrency: any thread of any process that attached the pool, at once;
 * lock-free up to BRD_POOL_SMALL_MAX while the size class has free blocks
 * (but for the moments when a process whose buddy allocator ran dry takes
 * every class's free blocks in under the lock to give whole spans back:
 * allocs of those classes then wait for the lock, up to its 2 s).
 * Fork: usable in a forked child that kept the pool, which starts without the
 * parent's cache (brd_pool_create()); -EBADF where the pool is gone, -EXDEV in
 * another pid namespace.
 */
int64_t brd_pool_alloc(struct brd_pool *pool, size_t size);

/**
 * brd_pool_free() - give a block back.
 * Return: 0; -EINVAL if @off is not a live block (never allocated, freed
 * twice, not a block start): the pool is left unchanged; -ETIMEDOUT (a
 * block the lock covers: above BRD_POOL_SMALL_MAX, or a small one served
 * from a page of its own because no span of its class fitted, as in a pool
 * under 64 KiB or a nearly full one; the pool lock held for 2 s: nothing
 * changed, the block is still live); -EMFILE, -ENFILE, -ENOMEM, -EAGAIN
 * (such a block, its lock word unreadable for now: as brd_pool_alloc(),
 * nothing changed); -EBADMSG, -EBADF, -EXDEV (as brd_pool_alloc()).
 * (An offset freed and then allocated again is live: a stale free of it
 * frees the new block, as with any allocator.)
 * Concurrency: as brd_pool_alloc(); of two racing frees of one block
 * exactly one succeeds.  Fork: as brd_pool_alloc().
 */
int brd_pool_free(struct brd_pool *pool, uint64_t off);

/** brd_pool_ptr() - this process's address of offset @off; NULL if @off is not inside the
 *  pool's data area (or the pool is gone here, see brd_pool_create()).
 *  Concurrency: any thread.  Fork: the parent's address in a forked child that
 *  kept the pool; NULL where it is gone. */
void *brd_pool_ptr(const struct brd_pool *pool, uint64_t off);

/**
 * brd_pool_stats() - a snapshot of the pool's accounting.
 * Return: 0, -EINVAL, -EBADMSG, -ETIMEDOUT (the pool lock held for 2 s),
 * -EMFILE and the like, -EBADF, -EXDEV (as brd_pool_alloc()).
 * Exact when no other thread allocates or frees at the same time.  Cost: a
 * walk of the pool's metadata under its lock.
 * Concurrency: any thread of any process, as brd_pool_alloc().  Fork: as
 * brd_pool_alloc().
 */
int brd_pool_stats(const struct brd_pool *pool, struct brd_pool_stats *ret_stats);

/* ------------------------------------------------------------------ arrays */

/*
 * An array is one pool block: a header with the first/last row positions,
 * then capacity rows of row_size bytes.  Positions are uint64 and run free;
 * row p lives in slot p % capacity.
 *
 * Any number of writers (push, prepend) and readers, in any processes.
 * Writers take turns through a short lock in the array (held while rows are
 * copied; a holder that died is taken over); readers never block and never
 * block a writer.  A writer writes rows first and publishes them with a
 * release store of last (push) or first (prepend), so a reader never sees
 * an unwritten or torn row, and never an empty range once a push landed.
 * An array object uses its pool's mapping: close it before the pool
 * (brd_pool_close() unmaps the rows under it).
 */
struct brd_array;               /* fixed-size rows in a pool, with shared first/last indices */

enum brd_array_flags {
        BRD_ARRAY_RING = 1u << 0,       /* push past capacity overwrites the oldest rows */
};

/**
 * brd_array_create() - an array of @capacity rows of @row_size bytes in @pool.
 * @start: first = last = start; rows below it are room for prepends
 * Return: 0; -EINVAL (zero sizes, start > capacity, overflow, unknown
 * flags); -ENOMEM (this process's handle); -ENOSPC, or another -errno of
 * brd_pool_alloc().
 * Concurrency: any number of writers and readers in any processes.  Fork:
 * usable in a forked child.
 */
int brd_array_create(struct brd_pool *pool, size_t row_size, size_t capacity, size_t start,
                     unsigned flags, struct brd_array **ret_array);

/** brd_array_open() - open the array at @off (brd_array_offset() elsewhere); 0, -EINVAL
 *  (NULL @pool or @ret_array), -EPROTO if none is there (or one was destroyed, or
 *  destroyed and made anew, at @off during the call), -EBADF where the pool is gone
 *  (brd_pool_create()), -ENOMEM.
 *  Concurrency: any thread of any process, at once (the header is read once).
 *  Fork: works in a forked child that kept the pool; -EBADF where it is gone. */
int brd_array_open(struct brd_pool *pool, uint64_t off, struct brd_array **ret_array);

/** brd_array_offset() - the array's offset in its pool: what another process opens (0 for
 *  NULL).  Concurrency: any thread.  Fork: the same in a forked child (process-local
 *  copy), also where the pool is gone there. */
uint64_t brd_array_offset(const struct brd_array *a);

/** brd_array_row_size(), brd_array_capacity() - the array's geometry (0 for NULL).
 *  Concurrency: any thread.  Fork: the same in a forked child (process-local
 *  copies, read from the header once at create/open), also where the pool is gone. */
size_t brd_array_row_size(const struct brd_array *a);
size_t brd_array_capacity(const struct brd_array *a);

/** brd_array_first(), brd_array_last() - the current positions (acquire loads; a
 *  snapshot of both at once is what brd_array_read() gives). 0 for NULL, and
 *  where the pool is gone (brd_pool_create(): the array is not mapped there).
 *  Concurrency: any thread of any process, beside writers.  Fork: the shared
 *  positions in a forked child that kept the pool (another pid namespace
 *  included); 0 where it is gone. */
uint64_t brd_array_first(const struct brd_array *a);
uint64_t brd_array_last(const struct brd_array *a);

/**
 * brd_array_push() - append @n rows after last.
 * Return: 0; -ENOSPC if they do not fit (without BRD_ARRAY_RING), or if
 * @n > capacity (either mode): nothing is written, indices unchanged (the
 * array's own space, full: as the pool's -ENOSPC is its space, full);
 * -EINVAL; -EBADF where the pool is gone (brd_pool_create(): nothing of
 * it is mapped there); -EXDEV in a process of another pid namespace
 * than the pool's creator (the writer lock names its holder by pid; reads
 * still work there); -EBADMSG on corrupt indices or a writer lock
 * word that cannot name a process (the handle is poisoned: push, prepend
 * and read answer -EBADMSG until it is closed, whatever the shared state
 * becomes; brd_array_open() validates it again for a new handle);
 * -EBADF also when the array was destroyed before the call
 * (brd_array_destroy() through another handle or in another process, a new
 * array made at its offset since included; a header a peer overwrote reads
 * so too): nothing is written into the block, which is not the array's any
 * more (that the others stopped using it first is the caller's part: a
 * destroy during the call is not always seen); -EMFILE and the like as
 * brd_pool_alloc() (the writer lock's word); -ETIMEDOUT when the writer lock stayed held for 2 s
 * (CLOCK_MONOTONIC) by a live holder: a peer that is stopped (SIGSTOP, a
 * debugger) or hostile, a lock word scribbled to name a live process, or a
 * writer copying that many bytes (the lock is held for the copy: writers
 * of gigabytes at once starve the others).
 * Nothing is written then, indices unchanged; the call may be retried.
 * With BRD_ARRAY_RING, first advances past the rows overwritten.
 * Concurrency: any thread of any process; writers take turns through the
 * array's writer lock (held for the copy; a dead holder is taken over,
 * found gone when its process exited, is a zombie or its pid was reused;
 * a live one is waited for at most 2 s).
 * Readers never wait.
 * Fork: usable in a forked child that kept the pool (a parent that holds
 * the writer lock at the fork is waited for as any live holder); -EBADF
 * where the pool is gone, -EXDEV in another pid namespace.
 */
int brd_array_push(struct brd_array *a, const void *rows, size_t n);

/** brd_array_prepend() - insert @n rows before first (in the order given); -ENOSPC if
 *  fewer than @n positions are free below first (prepend never overwrites;
 *  in a ring array whose writer died in the middle of an overwrite, the
 *  positions below the first it left are never free again: their slots may
 *  hold torn rows that a reader's copy could be taking for whole).
 *  Return: 0, or the errors of brd_array_push(), -ETIMEDOUT included (the
 *  writer lock held 2 s by a stopped or hostile peer: nothing written).
 *  Concurrency: as brd_array_push().  Fork: as brd_array_push(). */
int brd_array_prepend(struct brd_array *a, const void *rows, size_t n);

/**
 * brd_array_read() - a consistent copy of [first, last), or of its newest @max_rows rows.
 * @ret_first: the position of the first row copied (may be NULL)
 * @rows: room for @max_rows rows
 * Return: rows copied (0 only while the array is empty, or @max_rows is 0;
 * a ring being written may then answer -EAGAIN instead),
 * -EINVAL, -EBADF as brd_array_push() (for a destroyed array @rows may then
 * hold bytes that are not the array's), -EBADMSG on corrupt indices (poisoned, as
 * brd_array_push() says), -EAGAIN if a ring writer overwrote
 * every row of 1000 successive copies, or of 3 or more that came to 64 MiB
 * in all, or 1000 successive looks found a ring with no row while its
 * writer was overwriting (a push of a whole capacity retires every row
 * before it writes the new ones) or prepending (call again).  The copy ends at the last that was
 * read.  Normally it is exact (the array held exactly those rows at that
 * instant); if a ring writer keeps overwriting the oldest rows of the copy,
 * after a few retries it returns the newest rows it can prove were not
 * overwritten (fewer than asked, *ret_first tells).  Against prepends that
 * keep moving first (or a writer that died moving it), after a few retries
 * it returns the rows from the first it read: whole rows, but maybe not
 * the ones a prepend added meanwhile (0 rows included).
 * Concurrency: any number of readers beside the writer; never blocks it.
 * Fork: usable in a forked child that kept the pool, another pid namespace
 * included (no lock is taken); -EBADF where the pool is gone.
 */
ssize_t brd_array_read(struct brd_array *a, uint64_t *ret_first, void *rows, size_t max_rows);

/** brd_array_close() - release this process's view of the array (the rows stay in the pool). NULL ok.
 *  Only frees process-local memory: nothing shared is touched.
 *  Concurrency: do not use @a from other threads during or after the call.
 *  Fork: in a forked child it frees the child's copy only, also where the pool is gone. */
void brd_array_close(struct brd_array *a);

/**
 * brd_array_destroy() - free the array's block in the pool and close it.
 * Every other process must have stopped using the array.  NULL ok (0).
 * Return: 0: freed and closed.  -ETIMEDOUT (an array whose block the
 * pool lock covers, see brd_pool_free(); the lock held 2 s by a live peer:
 * nothing changed), -EMFILE and the like (as brd_pool_free()) or -EBADMSG
 * (the pool is poisoned, see brd_pool_alloc()): the
 * block is not given back and @a stays open, its rows intact; call again,
 * or brd_array_close() it.  -EINVAL when the block is no longer
 * live or holds no array any more (another process or handle destroyed it;
 * the pool may have handed it out again, to a new array too, which is told
 * apart and left alone; not the -EBADF that push and read give a stale
 * @a: here -EBADF keeps its one meaning, the pool gone), -EBADF where the pool is
 * gone (brd_pool_create()), -EXDEV in another pid namespace (as
 * brd_array_push()): for these three this call frees no block, but it
 * frees @a (this process's view).  So @a is freed on
 * 0, -EINVAL, -EBADF and -EXDEV, and the caller must not use or close it
 * after them; it stays open only on -ETIMEDOUT, -EMFILE and the like, and
 * -EBADMSG.
 * Concurrency: while it runs, brd_array_open() of the array's offset may
 * fail with -EPROTO.  Not while another thread of this process uses @a.
 * Of two destroys of one array at once (two views of it), one claims it
 * (and frees it, or keeps it whole on -ETIMEDOUT or -EBADMSG) and the other
 * answers -EINVAL, writing and freeing nothing.
 * Fork: in a forked child that kept the pool it frees the shared block, as
 * another process would (the parent's view then names a freed block);
 * -EBADF where the pool is gone, -EXDEV in another pid namespace.
 */
int brd_array_destroy(struct brd_array *a);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_SHM_H */
