/* SPDX-License-Identifier: MIT */
#ifndef BROOD_HANDLE_H
#define BROOD_HANDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRD_HANDLE_MAX_FDS 4

/* What a handle carries; the attach call of the matching module checks it. */
enum brd_handle_kind {
        BRD_HANDLE_NONE          = 0,
        BRD_HANDLE_SEG           = 1,
        BRD_HANDLE_POOL          = 2,
        BRD_HANDLE_RING_PRODUCER = 3,
        BRD_HANDLE_RING_CONSUMER = 4,
        /* What brd_handle_close() leaves: owns nothing; every call that
         * takes a handle answers -EBADF for it (a zeroed one, NONE: -EINVAL) */
        BRD_HANDLE_CLOSED        = 5,
};

/*
 * A shared object on its way to another process.  Plain data: copy it, send it
 * (brd_handle_send), inherit it (brd_fsrv_spawn), describe it in the
 * environment of an exec'd child.  The fds belong to the handle: whoever holds
 * a handle closes it with brd_handle_close() once it is attached or passed on.
 */
struct brd_handle {
        uint32_t kind;                  /* enum brd_handle_kind */
        uint32_t nfds;                  /* used entries of fds[] */
        int      fds[BRD_HANDLE_MAX_FDS];
        uint64_t size;                  /* bytes the object maps */
        uint64_t flags;                 /* kind-specific attach flags */
        uint64_t id;                    /* kind-specific: a segment's or pool's file's device, a ring's id */
        uint64_t aux;                   /* the file's inode: a stale copy is told by it */
};

/* Largest number of handles one brd_handle_send() or environment carries. */
#define BRD_HANDLE_MAX_BATCH 64

/* Environment variables written by brd_handle_env_encode(), read by brd_handle_from_env(). */
#define BRD_HANDLE_ENV     "BROOD_HANDLES"
#define BRD_HANDLE_ENV_PID "BROOD_HANDLES_PID"

/**
 * brd_handle_close() - close the fds a handle owns.
 * @h: the handle, may be NULL
 *
 * Closes fds[0..nfds) and leaves the handle empty (nfds = 0, every fd -1,
 * kind CLOSED), so a second call touches nothing and never closes an fd
 * number that has since been reused by someone else, and a call given it
 * afterwards answers -EBADF (DESIGN: closed or stale).  A handle whose kind is none
 * of brood's owns nothing and is only emptied: zero-initialise the handles
 * a call fills (a failed call leaves them untouched), and a cleanup that
 * closes them all is then safe whatever failed.  That holds for this struct:
 * a copy of it names the same fds, so close exactly one of the copies.  A
 * copy whose fds[0] is no longer the file it names (another copy was
 * closed, and the number went to another file: RELIABILITY D27) is only
 * emptied, none of its numbers closed, and every call given such a stale
 * copy answers -EBADF (but brd_handle_env_encode(), which describes fds
 * by their numbers in the child and does not look at them).  The file is
 * what tells: a number that went to another fd of the same file (another
 * export of the same object, an attach's own copy) makes the stale copy
 * pass for that handle.
 * Concurrency: not thread-safe on the same handle.  Fork: the child's copy of
 * a handle owns the child's copies of the fds.  A forkserver child
 * (brd_fsrv_spawn(), fork mode) is different: it keeps only the fds of the
 * handles passed to it, renumbered, and those are its only handles; the
 * copies left in memory it inherited name fds that were closed or now
 * belong to those handles there: never close or use them.
 */
void brd_handle_close(struct brd_handle *h);

/**
 * brd_handle_dup() - copy a handle with fresh (F_DUPFD_CLOEXEC) fds.
 * @h: the handle to copy, borrowed
 * @ret_handle: the copy, not @h itself; untouched on failure
 * Return: 0, -EBADF for a closed or stale handle (brd_handle_close()),
 * -EINVAL on a malformed handle (or @ret_handle == @h, whose fds
 * the copy would lose), or -errno (-EMFILE...) with no fd left open.
 * Concurrency: any thread; not while another thread closes @h.  Fork: no
 * state; a forked child dups its own copies of the fds (in a forkserver
 * child only the handles passed to it, see brd_handle_close()).
 */
int brd_handle_dup(const struct brd_handle *h, struct brd_handle *ret_handle);

/**
 * brd_handle_send() - send handles over an AF_UNIX socket (SCM_RIGHTS).
 * @sock: a connected AF_UNIX socket, SOCK_SEQPACKET preferred (SOCK_STREAM works)
 * @h: @n handles, borrowed: the caller still owns and closes them
 * @n: 1..BRD_HANDLE_MAX_BATCH, with at most 253 fds in all (SCM_MAX_FD)
 * Return: 0 when all of them were sent in one message; -EINVAL on bad input,
 * -EBADF for a closed or stale handle (brd_handle_close()), -EPIPE if the peer is gone (never SIGPIPE), -EAGAIN on a full non-blocking
 * socket (nothing sent), or another -errno from sendmsg.  On a non-blocking
 * SOCK_STREAM socket a message that went only partly waits up to a second
 * for its rest to fit, then answers -EPROTO: the stream is torn and
 * unusable (as brd_handle_recv() judges a message stopped midway).
 * Concurrency: one sender per socket at a time.  Fork: no state.
 */
int brd_handle_send(int sock, const struct brd_handle *h, size_t n);

/**
 * brd_handle_recv() - receive the handles of one brd_handle_send().
 * @sock: the socket
 * @h: room for @max handles; filled on success, the fds are new and CLOEXEC
 * @max: capacity of @h
 * @timeout_ms: -1 (any negative) forever, 0 never block, > 0 bound (kept across EINTR)
 * Return: the count received; -EAGAIN / -ETIMEDOUT; -EPIPE at end of stream;
 * -EMSGSIZE if more than @max handles came (all their fds closed); -EMFILE when
 * fds were dropped at this process's fd limit (MSG_CTRUNC), -EPROTO on another
 * truncation or a malformed message; in every error case each fd that arrived
 * is closed.  A SOCK_STREAM socket is unusable after -EPROTO/-EMFILE.  On
 * it nothing is taken before the whole message is queued: the timeout bounds
 * the whole wait, and -EAGAIN/-ETIMEDOUT leave a message sent in part (and
 * its fds) queued; a part is looked at again after naps of 1 to 64 ms (its
 * bytes keep the socket readable).  Only a message whose header is itself
 * split where another part's fds begin is taken in part: its rest must
 * follow within a second, or it is -EPROTO (the stream is torn).  What
 * else the socket asks the kernel for (SO_PASSCRED, SO_PASSSEC with a label
 * of up to 256 bytes, SO_PASSPIDFD) fits beside the 253 fds a message can
 * carry and is ignored (a pidfd it brings is closed).
 * -EINVAL for a negative @sock, a NULL @h or @max 0.  Other -errno from
 * recvmsg/getsockopt/ioctl/poll (-ENOTSOCK for what is not a socket).
 * Concurrency: one receiver per socket at a time.  A cancellation point
 * only while nothing is received yet (no fd is taken then).  Fork: no state.
 */
int brd_handle_recv(int sock, struct brd_handle *h, size_t max, int timeout_ms);

/**
 * brd_handle_env_encode() - describe handles for an exec'd child.
 * @h: @n handles; their fds are expected at 3, 4, 5... in the child, in order
 * @n: number of handles (0..BRD_HANDLE_MAX_BATCH)
 * @pid: the child's pid (like LISTEN_PID: a grandchild that inherits the
 *       environment does not mistake the description for its own)
 * @buf: output, "BROOD_HANDLES=..." NUL-terminated
 * @cap: size of @buf
 * @pidbuf: output, "BROOD_HANDLES_PID=<pid>" NUL-terminated
 * @pidcap: size of @pidbuf (32 is enough)
 * Return: 0; -EBADF for a handle that brd_handle_close() left; -EINVAL on
 * other bad input; -EMSGSIZE if a buffer is too small.
 * Async-signal-safe (no allocation, no locale): the forkserver calls it in
 * the child between fork() and execve().
 * Concurrency: any thread; it writes only @buf and @pidbuf.  Fork: no state.
 */
int brd_handle_env_encode(const struct brd_handle *h, size_t n, pid_t pid,
                          char *buf, size_t cap, char *pidbuf, size_t pidcap);

/**
 * brd_handle_from_env() - in an exec'd child, take the handles it was given.
 * @h: room for @max handles
 * @max: capacity of @h
 * Return: the count (0 when the environment holds no description for this
 * process); -EPROTO when it is malformed (a trailing ';' included) or names
 * fds that are not open, or close-on-exec (not inherited through the exec:
 * this program or its runtime opened them after); -EMSGSIZE when more than
 * @max were given; -EINVAL
 * when @h is NULL or @max is 0 (the environment is left untouched).  On
 * success the handles' fds are the inherited ones (3, 4, ...), now marked
 * CLOEXEC.  On -EPROTO no fd is closed or changed (they are not known to be
 * handles); on -EMSGSIZE the description was valid, and all the fds it
 * names are closed, as brd_handle_recv() does.  On either @h is
 * untouched.  Whatever the result but -EINVAL, both variables are removed
 * from the environment, a description meant for another pid included, so
 * that later children do not inherit them.
 * Concurrency: call once, early, before threads that use getenv/setenv.
 * Fork: the description names one pid (getpid(), not cached): in a process
 * forked before the call it returns 0, takes no fd and only removes the
 * variables from its own environment; call it before forking.
 */
int brd_handle_from_env(struct brd_handle *h, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_HANDLE_H */
