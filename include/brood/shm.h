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
        BRD_SEG_POPULATE = 1u << 1,     /* prefault the pages at create/attach */
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
 * mode 0600 under "/brood.<pid>.<starttime>.<random>.<label>", so no other
 * process can squat or guess it; this process unlinks it on close.
 *
 * Return: 0; -EINVAL (bad label, size 0, unknown flags); -ENAMETOOLONG;
 * -EFBIG (size above RLIMIT_FSIZE: never SIGXFSZ); -ENOSPC / -ENOMEM (no
 * room in tmpfs or the memcg: reported here, never a SIGBUS later); -EMFILE;
 * other -errno.  Nothing is left behind on failure.
 * Concurrency: thread-safe.  Fork: the mapping is inherited (unless NOFORK);
 * the child's copy is marked inherited and never unlinks the name.
 */
int brd_seg_create(const char *label, size_t size, unsigned flags, struct brd_seg **ret_seg);

/**
 * brd_seg_open() - map a named segment that another process created.
 * @name: what brd_seg_name() returned there ("/brood....")
 * @ret_seg: the segment; untouched on failure
 * Return: 0; -EINVAL on a malformed name; -ENAMETOOLONG; -ENOENT; -EACCES if
 * it is not owned by this user or is accessible to group/others; -EINVAL if
 * it is not a regular shm file; -errno from open/mmap.
 * Closing it only unmaps (this process did not create it).
 * Concurrency: thread-safe.  Fork: as brd_seg_create().
 */
int brd_seg_open(const char *name, struct brd_seg **ret_seg);

/**
 * brd_seg_attach() - map the segment a handle describes.
 * @h: a BRD_HANDLE_SEG handle, borrowed (its fd is dup'ed)
 * @ret_seg: the segment; untouched on failure
 *
 * Validates before it maps: a regular file on tmpfs/hugetlbfs, at least
 * h->size bytes long, and (for a memfd) sealed against shrink and grow.
 * Return: 0; -EINVAL on a malformed handle or an fd of the wrong type (pipe,
 * socket, disk file); -EBADMSG if the file is smaller than declared or its
 * seals are missing; -EACCES for a named segment of another user or with
 * group/other access; -EMFILE; -errno from mmap.  Nothing is mapped on failure.
 * Concurrency: thread-safe.  Fork: as brd_seg_create().
 */
int brd_seg_attach(const struct brd_handle *h, struct brd_seg **ret_seg);

/**
 * brd_seg_export() - a handle for this segment, to send or pass to a child.
 * @seg: the segment
 * @ret_handle: a BRD_HANDLE_SEG handle owning a new CLOEXEC dup of the fd;
 *              untouched on failure.  Close it with brd_handle_close().
 * Return: 0, -EINVAL, -EBADF (segment gone in this forked child), -errno.
 * Concurrency: thread-safe.
 */
int brd_seg_export(const struct brd_seg *seg, struct brd_handle *ret_handle);

/**
 * brd_seg_close() - unmap and release a segment.
 * @seg: may be NULL
 * The process that created a named segment unlinks it; any other process
 * (including a forked child of the creator) only unmaps.
 * Concurrency: do not use @seg from other threads during or after the call.
 */
void brd_seg_close(struct brd_seg *seg);

/** brd_seg_addr() - base address of the mapping (page aligned); NULL if @seg is NULL
 *  or the mapping is absent in this forked child (BRD_SEG_NOFORK). */
void *brd_seg_addr(const struct brd_seg *seg);

/** brd_seg_size() - bytes mapped (the created size rounded up to a page). */
size_t brd_seg_size(const struct brd_seg *seg);

/** brd_seg_name() - the /dev/shm name ("/brood....") of a named segment, NULL when anonymous. */
const char *brd_seg_name(const struct brd_seg *seg);

/** brd_seg_fd() - the segment's fd (owned by @seg: do not close it), -EINVAL for NULL. */
int brd_seg_fd(const struct brd_seg *seg);

/** brd_seg_is_inherited() - 1 if this process got @seg through fork() rather than
 *  creating, opening or attaching it itself, 0 otherwise. */
int brd_seg_is_inherited(const struct brd_seg *seg);

/* ------------------------------------------------------------------- pools */

struct brd_pool;                /* a heap inside one segment, shared by every process that attaches it */

enum brd_pool_flags {
        BRD_POOL_POPULATE = 1u << 0,    /* prefault the segment */
        BRD_POOL_NOFORK   = 1u << 1,    /* forked children do not see the pool */
};

/* Every block brd_pool_alloc() returns is aligned to this many bytes. */
#define BRD_POOL_ALIGN 64

struct brd_pool_stats {
        uint64_t size;          /* bytes of the segment */
        uint64_t capacity;      /* bytes that can be handed out (size minus metadata) */
        uint64_t used;          /* bytes in live blocks, rounded to their size class */
        uint64_t blocks;        /* live blocks */
        uint64_t largest_free;  /* largest single block an alloc could get now */
};

/**
 * brd_pool_create() - create a pool (heap) of @size bytes in a new sealed segment.
 * @size: bytes of the segment, metadata included
 * @flags: enum brd_pool_flags
 * @ret_pool: untouched on failure
 * Return: 0, -EINVAL, or the -errno of brd_seg_create().
 * Concurrency: thread-safe.  Fork: the pool is usable in a forked child (it
 * is shared memory); process-local caches are dropped in the child.
 */
int brd_pool_create(size_t size, unsigned flags, struct brd_pool **ret_pool);

/**
 * brd_pool_attach() - attach a pool another process exported.
 * Return: 0, -EINVAL (not a pool handle), -EPROTO (bad magic/version/layout),
 * or the -errno of brd_seg_attach().
 */
int brd_pool_attach(const struct brd_handle *h, struct brd_pool **ret_pool);

/** brd_pool_export() - a BRD_HANDLE_POOL handle for @pool (new fd); 0 or -errno. */
int brd_pool_export(const struct brd_pool *pool, struct brd_handle *ret_handle);

/** brd_pool_close() - unmap the pool in this process; blocks stay allocated in it. NULL ok. */
void brd_pool_close(struct brd_pool *pool);

/**
 * brd_pool_alloc() - allocate @size bytes.
 * Return: the block's offset from the pool base (> 0, BRD_POOL_ALIGN aligned),
 * -EINVAL for size 0 or a size that can never fit, -ENOSPC when the pool is
 * full, -EBADMSG when the pool's shared state is corrupt.
 * Concurrency: any thread of any process that attached the pool, at once.
 */
int64_t brd_pool_alloc(struct brd_pool *pool, size_t size);

/**
 * brd_pool_free() - give a block back.
 * Return: 0; -EINVAL if @off is not a live block (never allocated, freed
 * twice, not a block start): the pool is left unchanged.
 * Concurrency: as brd_pool_alloc().
 */
int brd_pool_free(struct brd_pool *pool, uint64_t off);

/** brd_pool_ptr() - this process's address of offset @off; NULL if @off is not inside the pool. */
void *brd_pool_ptr(const struct brd_pool *pool, uint64_t off);

/** brd_pool_stats() - a snapshot of the pool's accounting; 0 or -EINVAL. */
int brd_pool_stats(const struct brd_pool *pool, struct brd_pool_stats *ret_stats);

/* ------------------------------------------------------------------ arrays */

struct brd_array;               /* fixed-size rows in a pool, with shared first/last indices */

enum brd_array_flags {
        BRD_ARRAY_RING = 1u << 0,       /* push past capacity overwrites the oldest rows */
};

/**
 * brd_array_create() - an array of @capacity rows of @row_size bytes in @pool.
 * @start: first = last = start; rows below it are room for prepends
 * Return: 0; -EINVAL (zero sizes, start > capacity, overflow, unknown
 * flags); -ENOSPC from the pool.
 * Concurrency: one writer (push/prepend) at a time, any number of readers in
 * any processes.  Fork: usable in a forked child.
 */
int brd_array_create(struct brd_pool *pool, size_t row_size, size_t capacity, size_t start,
                     unsigned flags, struct brd_array **ret_array);

/** brd_array_open() - open the array at @off (brd_array_offset() elsewhere); -EPROTO if none is there. */
int brd_array_open(struct brd_pool *pool, uint64_t off, struct brd_array **ret_array);

/** brd_array_offset() - the array's offset in its pool: what another process opens. */
uint64_t brd_array_offset(const struct brd_array *a);

/**
 * brd_array_push() - append @n rows after last.
 * Return: 0; -ENOSPC if they do not fit (and not BRD_ARRAY_RING): nothing is
 * written, indices unchanged; -EINVAL.  Rows are published only after they
 * are written: a reader never sees an unwritten or torn row.
 */
int brd_array_push(struct brd_array *a, const void *rows, size_t n);

/** brd_array_prepend() - insert @n rows before first; -ENOSPC if fewer than @n rows are free below first. */
int brd_array_prepend(struct brd_array *a, const void *rows, size_t n);

/**
 * brd_array_read() - a consistent copy of [first, last), or of its newest @max_rows rows.
 * @ret_first: the position of the first row copied (may be NULL)
 * Return: rows copied (0 if empty), -EINVAL, -EBADMSG on corrupt indices.
 * Concurrency: wait-free for the writer; retries while a writer overwrites
 * what it is copying.
 */
ssize_t brd_array_read(struct brd_array *a, uint64_t *ret_first, void *rows, size_t max_rows);

/** brd_array_close() - release this process's view of the array (the rows stay in the pool). NULL ok. */
void brd_array_close(struct brd_array *a);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_SHM_H */
