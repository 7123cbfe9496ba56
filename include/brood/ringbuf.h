/* SPDX-License-Identifier: MIT */
#ifndef BROOD_RINGBUF_H
#define BROOD_RINGBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <brood/handle.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * SPSC rings: one producer and one consumer, in any two processes (or two
 * threads of one), over one sealed memfd plus two eventfd doorbells.
 *
 * Messages are delivered whole, in order, exactly once; a message of 0 bytes
 * is a message.  The hot path makes no system call: a send is a copy and one
 * release store; the doorbell is rung only when the peer has announced, in
 * shared memory, that it is going to sleep.  A waiting call spins briefly
 * (20 us, unless BRD_RING_NOSPIN), then sleeps: for its first 20 ms in
 * futex_waitv() (Linux >= 5.16), which the peer's ring or an interrupt
 * ends, then in epoll_wait() on its doorbell, the peer's pidfd and its own
 * interrupt eventfd, so it notices a dead peer (SIGKILL) within 20 ms (the
 * peer is found by its pid: both ends must be in the creator's pid
 * namespace, attach checks).  BRD_RING_EINTR calls and brd_ring_fd() users
 * sleep in epoll_wait() only.  When the peer on another CPU keeps ending
 * those sleeps soon after they began (a steady stream, a message every
 * 20-100 us), the following waits poll up to 5/4 of that time, at most
 * 100 us, yielding the CPU between polls past the first 20 us, instead of
 * paying a sleep and a doorbell per message; the first wait that sleeps
 * anyway goes back to 20 us.  While a producer streams messages smaller than
 * a quarter of min(capacity / 8, 32 KiB), a waiting consumer that finds
 * less than that much ready may poll up to ~13 us (512 pauses) for more
 * before returning (it probes whether that pays, and backs off to one probe
 * per 65536 messages where it does not, as in ping-pong traffic): fewer
 * cache-line hand-offs per message.  NOSPIN and timeout-0
 * calls never do this.  On x86-64 CPUs with CLFLUSHOPT, a consumer keeping up with a
 * streaming producer writes back and drops the cache lines of the messages
 * it has consumed (recv, release, read), so that the producer's next lap
 * finds them in memory rather than in the consumer's cache (far apart CPUs:
 * 64 B messages ~9x faster); it times the stream and stops doing it where it
 * does not pay.  A pointer from peek() is invalid after release() anyway.
 *
 * Sizes.  The capacity given to brd_ring_create() is rounded up to a power
 * of two, at least 4096 (a 10 KiB request gives a 16 KiB ring).  The largest
 * message is capacity / 2 (brd_ring_stats() tells both): a longer send or
 * reserve is -EMSGSIZE; the byte-stream calls take any length.  Payloads of
 * 32 KiB and more start on a 4 KiB boundary (their offset modulo 4 KiB
 * stays fixed, which keeps large copies at memcpy speed), payloads of 1 KiB
 * and more on a cache line; smaller frames are packed 8-byte aligned.  In a
 * ring of 4 MiB to 2 GiB, a frame of 32 KiB or more that the producer places
 * past its first four such frames of a lap, while the consumer is waiting
 * for data, starts the next lap instead (the rest of the lap is skipped as
 * padding): a consumer that keeps up then works in the ring's first few
 * frames, which stay in the caches and the TLB (1 MiB zero-copy messages
 * through 16 MiB: 1.6x the rate).  A consumer that is not waiting (it lags,
 * or is busy with the last message) never causes it, so the whole capacity
 * stays free for a burst.  Callers' buffers may sit at any address: copies
 * over 2 KiB between addresses that are not line-aligned to each other go
 * in 2 KiB pieces, because the `rep movsb` glibc uses for longer ones runs
 * 20-30x slower on AMD Zen 3 for some such pairs (a malloc'd buffer meeting
 * a page-aligned payload is one).
 *
 * Errors, as everywhere in brood: -EAGAIN (timeout 0 and the call would
 * block), -ETIMEDOUT, -EMSGSIZE, -EPIPE (peer closed in order: for the
 * consumer after every message was delivered; for the producer, a consumer
 * that closed or died: as for a pipe whose reader is gone, what it had not
 * taken is lost, unless another consumer takes a dead one's role over),
 * -ECONNRESET (consumer only: the producer died without closing, after
 * every message it published was delivered: every committed one, but for
 * those BRD_RING_BATCH still held back; RELIABILITY A1-A2 name -EPIPE
 * there, and the contract's -ECONNRESET is kept: it tells a death, whose
 * last messages may be missing, from an orderly close), -EBADMSG
 * (the shared memory is corrupt, holes a peer punched in it included, which
 * read as zeros: the endpoint is poisoned and answers -EBADMSG until closed), -EPROTO (attach: not a ring of this version),
 * -ECANCELED (brd_ring_interrupt, or brd_ring_close() from another thread
 * while the call was blocked), -EBADF (wrong role, or an endpoint
 * inherited through fork() that this process did not attach).  A call that
 * finds the ring not ready (a timeout-0 one too: it looks at the peer's
 * pidfd) may also answer -EMFILE, -ENFILE or -ENOMEM when an fd the wait
 * needs cannot be had (the peer's pidfd, opened at the first wait; a
 * brd_ring_fd() user's timer): nothing was taken or given, and the call may
 * be retried.  (A producer's look at a sleeping consumer, see
 * brd_ring_send(), may open the pidfd first; a failure there only puts the
 * look off.)
 *
 * A peer is watched from its attach on: the pid it stamps there is what
 * death is judged by.  A process that dies holding a handle it never
 * attached leaves nothing to watch (another holder of the handle may still
 * attach), so the other end then waits on: whoever handed it the handle
 * (the spawner, with brd_child_wait()) knows, and closes or interrupts.
 *
 * Timeouts: -1 (any negative) forever, 0 never blocks, > 0 milliseconds on CLOCK_MONOTONIC,
 * kept across EINTR (never extended, never cut short); a ring created with
 * BRD_RING_EINTR returns -EINTR instead.
 *
 * Threads: one thread at a time per endpoint (SPSC), except brd_ring_fd()
 * and brd_ring_interrupt(), which any thread may call at any time before
 * brd_ring_close() begins (close waits for those already running; one
 * that starts as close frees the endpoint reads freed memory).  A build
 * with meson -Ddebug_checks=true answers -EBUSY to a thread that calls into
 * an endpoint while another thread is inside a call of it (send, recv,
 * reserve, commit, peek, release, write, read, flush), or while the same
 * thread is, from a signal handler.  Signal handlers: brd_ring_interrupt()
 * is async-signal-safe; no other ring call is (as malloc is not), and one
 * on an endpoint whose call the handler interrupted breaks that endpoint:
 * interrupt from the handler, and close after it returned.
 */

struct brd_ring;                /* one end of a ring: the role comes from the handle */

enum brd_ring_flags {
        /* Never spin before sleeping: every wait goes straight to sleep
         * (lowest CPU use for a bursty peer; latency = a futex wake-up, or
         * an eventfd one past 20 ms, with BRD_RING_EINTR or brd_ring_fd()). */
        BRD_RING_NOSPIN   = 1u << 0,
        /* The producer holds publication back until min(capacity / 4, 8 KiB)
         * bytes of the ring are pending (frames: each message's 8-byte
         * header and its padding to 8 bytes count), brd_ring_flush(), a
         * would-block, or close, unless the consumer sleeps.  Fewer cache-line transfers for small
         * messages; call brd_ring_flush() when you stop sending.  A message
         * held back is not in the ring yet, although send/commit/write
         * returned success for it: a producer that dies (no close) before
         * publishing it loses it, and the consumer's -ECONNRESET comes after
         * the last message published, not the last one committed. */
        BRD_RING_BATCH    = 1u << 1,
        /* Prefault both views of the data area at attach
         * (MADV_POPULATE_WRITE where the kernel has it, then a read of
         * each page): no first-touch page fault while
         * streaming, paid at attach instead: 13 us per 4 KiB of capacity
         * on the test host, a guest whose hypervisor shadows page tables
         * (a first touch there costs 10 us while streaming); much less
         * where page tables are not shadowed.  Only where the ring's file
         * has its space (as brd_ring_create() makes it): an attach never
         * allocates a sparse file's pages. */
        BRD_RING_POPULATE = 1u << 2,
        /* Interruptible (RELIABILITY E30): a call whose sleep in the kernel
         * a signal handler interrupts returns -EINTR, having changed nothing
         * (a stream call that moved bytes first returns their count; the
         * empty messages a brd_ring_read() skipped before it slept stay
         * taken).
         * Without it the wait resumes with the time that is left.  Like a
         * blocking read(), a signal that lands before the sleep began (in
         * the short spin, say) is not seen. */
        BRD_RING_EINTR    = 1u << 3,
};

/* Counters of one endpoint, since attach (process-local). */
struct brd_ring_stats {
        uint64_t capacity;      /* data area bytes (the rounded capacity) */
        uint64_t max_msg;       /* largest message: capacity / 2 */
        uint64_t messages;      /* messages sent / received (stream chunks count;
                                 * not one that send/commit dropped with -EPIPE) */
        uint64_t bytes;         /* payload bytes sent / received (a message
                                 * counts once, whole, when it is finished:
                                 * by recv, release, or the read that ends it) */
        uint64_t waits;         /* sleeps in futex_waitv() or epoll_wait() (one
                                   that a ring already pending ends at once
                                   counts too; a wait past its futex phase
                                   counts both) */
        uint64_t doorbells;     /* rings of the sleeping peer: a futex wake or a
                                   write to its doorbell eventfd */
};

/**
 * brd_ring_create() - create a ring: two handles, like pipe2().
 * @capacity: data bytes; rounded up to a power of two >= 4096 (10 KiB gives
 *            16 KiB); 0 or more than 4 GiB is -EINVAL
 * @flags: enum brd_ring_flags; they apply to both ends
 * @ret_producer: the producer handle (BRD_HANDLE_RING_PRODUCER); untouched on failure
 * @ret_consumer: the consumer handle (BRD_HANDLE_RING_CONSUMER); untouched on failure
 *
 * Creates one sealed memfd ("brood:ring", header page + data) and two
 * eventfds (EFD_CLOEXEC|EFD_NONBLOCK: "data available" for the consumer,
 * "space available" for the producer).  Each handle owns its 3 fds
 * {memfd, data doorbell, space doorbell}; size = memfd size (a page of
 * header, then the capacity), id = a random ring id, aux = the memfd's
 * inode (a stale copy is told by it).  Nothing is attached: each side calls
 * brd_ring_attach() on its handle (here, or in the process it is sent to),
 * then closes the handle with brd_handle_close().
 * Return: 0; -EINVAL (bad capacity, unknown flags, NULL, one handle for both); -ENOSPC/-ENOMEM
 * (no room in tmpfs or the memcg); -EMFILE; other -errno.  Nothing is left
 * behind on failure.
 * Concurrency: thread-safe.  Fork: the handles are plain data; a forked
 * child's copy owns the child's copies of the fds.
 */
int     brd_ring_create(size_t capacity, unsigned flags,
                        struct brd_handle *ret_producer, struct brd_handle *ret_consumer);

/**
 * brd_ring_attach() - become one end of a ring.
 * @h: a ring handle, borrowed (its fds are dup'ed): the role is h->kind
 * @ret_ring: the endpoint; untouched on failure
 *
 * Validates the memfd (regular shmem file, shrink/grow seals, size) before
 * mapping it, then the header (magic, version, id, power-of-two capacity,
 * offsets, 0 <= tail - head <= capacity), maps the data area twice, stamps
 * this process (pid + start time) in its side of the header and wakes the
 * peer once, so that a peer already waiting learns whom to watch.
 * Return: 0; -EINVAL (malformed handle: kind, fd count, fd types, unknown
 * flags); -EBADF (closed, or stale: its memfd no longer the one it was
 * made with, see brd_handle_close()); -EPROTO (not a ring of this version, an inconsistent layout, or a
 * header whose id, flags or capacity is not the handle's); -EXDEV (this process
 * is in another pid namespace than the ring's creator: each end watches the
 * other by pid, so both must be in the creator's); -EBADMSG (memfd
 * unsealed or smaller than declared); -EPIPE (this role already closed the
 * ring: a role leaves for good); -EBUSY (a live process, this one
 * included, holds this role: it attached it and has not exited; see
 * Concurrency); -EMFILE/-ENFILE/-ENOMEM (also where this process's start
 * time, which its stamp names it by, could not be read for want of one:
 * nothing was done); -EAGAIN (that read was interrupted: try again); other
 * -errno.
 * Nothing is mapped or left open on failure, and a refused attach writes
 * nothing to the ring.
 * Concurrency: thread-safe.  One endpoint per role: the first attach of a
 * role claims it for its process (pid and start time, in the header) until
 * that process closes the endpoint (the role is then gone, -EPIPE) or exits;
 * a second producer or consumer, in this process or any other, gets
 * -EBUSY, and of two attaches racing for a free role exactly one wins.  A
 * process that dies (or execs) without closing its endpoint leaves the role
 * to the next attach once it has exited (after an exec, only then).
 * Fork: the endpoint belongs to the attaching process; a forked child that
 * inherits it gets -EBADF from every call and brd_ring_close() there only
 * frees the child's copy; the child's own attach of that role gets -EBUSY
 * while the parent holds it.  The ring's memory is not inherited at all
 * (MADV_DONTFORK): a pointer from brd_ring_reserve() or brd_ring_peek()
 * faults (SIGSEGV) in such a child, which cannot write into a ring it was
 * not handed.  Pass the handle instead and attach in the child.  The
 * child must come from fork() (or a forkserver): one made by _Fork() or
 * clone() without CLONE_VM, which skip the pthread_atfork() handlers, still
 * gets -EBADF from an inherited endpoint's calls and may close it, but an
 * attach there would stamp the parent's pid: it may only exec.  A child
 * that shares the parent's memory (vfork(), CLONE_VM) is the parent to
 * every call: it must make none, close included (that would free the
 * parent's endpoint), and may only exec or _exit().
 */
int     brd_ring_attach(const struct brd_handle *h, struct brd_ring **ret_ring);

/**
 * brd_ring_send() - copy one message into the ring (producer).
 * @r: producer endpoint
 * @msg: @len bytes (may be NULL when @len is 0)
 * @len: 0..max_msg
 * @timeout_ms: how long to wait for space
 * Return: 0; -EMSGSIZE (len > max_msg: checked after the endpoint's own
 * checks, a NULL @r (-EINVAL), the role and fork checks (-EBADF) and its
 * final error (-EPIPE, -EBADMSG), and before anything else); -EINVAL
 * (@msg NULL with @len > 0); -EAGAIN/-ETIMEDOUT (no space); -EPIPE (the
 * consumer closed or died: no SIGPIPE);
 * -ECANCELED; -EINTR (BRD_RING_EINTR only); -EBADMSG (poisoned); -EBADF
 * (consumer end, or inherited); -EMFILE/-ENFILE/-ENOMEM (no fd for the
 * wait: see the top of this header).  A close of the consumer shows at the next
 * call of a message that fits (one past max_msg answers -EMSGSIZE until a
 * call has seen the close).  Its death (no close) in a sleep shows at the
 * next message, or at the first one a millisecond (or tick) after the last look: a
 * message that finds a consumer asleep while no ring of that sleep proved
 * it alive (a doorbell cannot; a futex wake of nobody did not) looks at
 * its pidfd, at most once per millisecond or per kernel tick, whichever is
 * longer (a coarse clock); every call after the message
 * that found it dead answers -EPIPE.  That message is sent: a consumer
 * that takes the dead one's role over would get it.  A consumer that died
 * awake shows once a call would wait for room, to a brd_ring_flush() of
 * held-back messages, or to a brd_ring_fd() user (the hot path makes no system call).  What the dead consumer had not
 * taken is lost with it.
 * Concurrency: one producer thread.  Fork: -EBADF in a child that inherited it.
 */
int     brd_ring_send(struct brd_ring *r, const void *msg, size_t len, int timeout_ms);

/**
 * brd_ring_recv() - copy out and consume the next message (consumer).
 * @r: consumer endpoint
 * @buf: room for @cap bytes
 * @cap: size of @buf
 * @timeout_ms: how long to wait for a message
 * Return: the message length (0 for an empty message); -EMSGSIZE when it
 * is longer than @cap (the message stays: peek it or retry with a larger
 * buffer); -EAGAIN/-ETIMEDOUT; -EPIPE once every message of a producer that
 * closed was delivered; -ECONNRESET once every message that a producer
 * that died had published was delivered (every committed one, unless
 * BRD_RING_BATCH still held some back: those are lost with it, although
 * its send/commit returned 0); -ECANCELED; -EINTR (BRD_RING_EINTR only);
 * -EBADMSG; -EBADF; -EMFILE/-ENFILE/-ENOMEM (no fd for the wait: see the
 * top of this header); -EINVAL (NULL @r; or NULL @buf with @cap > 0, checked
 * after the endpoint's own checks, the role and fork checks (-EBADF) and
 * its final error (-EPIPE, -ECONNRESET, -EBADMSG) once it has one, which
 * it then answers instead).
 * Concurrency: one consumer thread.  Fork: -EBADF in a child that inherited it.
 */
ssize_t brd_ring_recv(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);

/**
 * brd_ring_reserve() - zero-copy send, step 1: room for a message of @len bytes.
 * @r: producer endpoint
 * @len: 0..max_msg
 * @ret_buf: where to write the payload (contiguous, aligned as described
 *           above); untouched on failure (but for the -ECANCELED of a
 *           brd_ring_close() in another thread, after which it names memory
 *           that is gone)
 * @timeout_ms: how long to wait for space
 * Return: 0; errors as brd_ring_send() (but a NULL @ret_buf is -EINVAL
 * before @len is checked), except that a consumer that closed while there
 * was room may only show at brd_ring_commit(), which then drops the message
 * (-EPIPE); one that died shows as it does to brd_ring_send(), at commit or
 * after it (the message then counts as sent).  Nothing is visible to the
 * consumer until brd_ring_commit().  One reservation at a time.  A reserve, send or
 * write that fails its argument checks (-EINVAL, -EMSGSIZE) leaves an open
 * reservation as it was: bad input changes nothing, and the reservation
 * may still be committed.  One that gets past them abandons it, whether it
 * then succeeds or fails (-EAGAIN, -ETIMEDOUT, -ECANCELED, -EINTR
 * included): committing it is then -EINVAL.  (A final error, -EPIPE say,
 * drops a reservation too; commit then answers that error.)  The buffer is
 * shared memory: the consumer process can see (and, being hostile, write)
 * it.
 * Concurrency/Fork: as brd_ring_send().
 */
int     brd_ring_reserve(struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms);

/**
 * brd_ring_commit() - zero-copy send, step 2: publish the reserved message.
 * @r: producer endpoint
 * @len: the message length, 0..the reserved length
 * Return: 0; -EINVAL (no reservation, or @len larger than reserved); -EPIPE
 * (the consumer closed: the message is dropped); -EBADMSG; -EBADF.  A
 * consumer found dead by the look after the publish (brd_ring_send()) makes
 * the next call -EPIPE; this one returns 0, the message sent.  Never
 * blocks: the space was taken by brd_ring_reserve().  The commit is one
 * release store of the tail, so a producer killed before it leaves nothing.
 * With BRD_RING_BATCH that store may be held back (see there): a producer
 * killed before it is made loses the message, although commit returned 0.
 * Concurrency: one producer thread.
 * Fork: a reservation open at fork() stays the parent's: in the child,
 * commit is -EBADF and publishes nothing (as every call on an inherited
 * endpoint).
 */
int     brd_ring_commit(struct brd_ring *r, size_t len);

/**
 * brd_ring_peek() - zero-copy receive, step 1: look at the next message.
 * @r: consumer endpoint
 * @ret_msg: set to the payload (contiguous); untouched on failure (but for
 *           the -ECANCELED of a brd_ring_close() in another thread, after
 *           which it names memory that is gone)
 * @timeout_ms: how long to wait for a message
 * Return: its length; errors as brd_ring_recv() (never -EMSGSIZE).  The
 * message stays in the ring until brd_ring_release(); peeking again returns
 * the same one.  A recv or read before the release takes it as the next
 * message (recv's -EMSGSIZE included, which leaves it in the ring) and
 * drops the peek: release then answers -EINVAL.  The view points into shared memory the producer could
 * overwrite if it were hostile: copy what you validate.  If brd_ring_read()
 * consumed part of the message, the view starts after that part.
 * Concurrency: one consumer thread.  Fork: -EBADF in a child that inherited
 * it; a view taken before fork() is not mapped there (brd_ring_attach()).
 */
ssize_t brd_ring_peek(struct brd_ring *r, const void **ret_msg, int timeout_ms);

/**
 * brd_ring_release() - zero-copy receive, step 2: consume the peeked message.
 * @r: consumer endpoint
 * Return: 0; -EINVAL when nothing is peeked; -EBADF; the endpoint's final
 * answer (-EPIPE, -ECONNRESET, -EBADMSG) once it has one, which also drops
 * the peeked message.  Hands the space back
 * to the producer (rings it if it sleeps).  A consumer killed between peek
 * and release leaves the message in the ring, unconsumed: a consumer that
 * takes the dead one's role over (brd_ring_attach()) gets it again, else
 * nobody does.  Concurrency: one consumer thread.  Fork: a message peeked
 * before fork() stays the parent's: in the child, release is -EBADF and
 * consumes nothing.
 */
int     brd_ring_release(struct brd_ring *r);

/**
 * brd_ring_write() - byte stream: send @len bytes, of any length (producer).
 * @r: producer endpoint
 * @buf: @len bytes
 * @len: any length; cut into frames of at most max_msg bytes, each sized to
 *       the space free at the time, so a stream larger than the ring flows
 * @timeout_ms: how long to wait for space (one deadline for the whole
 *       call).  A call that may wait waits while less than a quarter of
 *       the ring (or the rest of @len) is free, rather than write crumbs;
 *       with timeout 0, or once its wait ran out, it takes whatever is
 *       free (a frame of at least 8 bytes), as write(2) to a pipe does
 * Return: the bytes written: all of them, or fewer when the wait timed out,
 * was interrupted or the consumer went away after some bytes were written
 * (like write(2)); the error (-EAGAIN, -ETIMEDOUT, -EPIPE, -ECANCELED,
 * -EMFILE, ..., as brd_ring_send()) when none was.  A brd_ring_interrupt() that cut it short after some
 * bytes stays pending: the next call that would wait returns -ECANCELED
 * (see there).  Cancelled by brd_ring_close() from another thread it
 * returns -ECANCELED, even after bytes were written: those are delivered
 * before EOF, and the caller must not touch the endpoint again.  Frames of
 * write() and messages of send() may be mixed; a consumer that peeks
 * write()'s frames gets no alignment promise (a chunk sized to the space
 * left is packed 8-byte aligned).  A @len above SSIZE_MAX is cut to
 * SSIZE_MAX (the count must fit the return value).
 * Concurrency: one producer thread (brd_ring_close() from another thread
 * cancels it, see there).  Fork: -EBADF in a child that inherited it.
 */
ssize_t brd_ring_write(struct brd_ring *r, const void *buf, size_t len, int timeout_ms);

/**
 * brd_ring_read() - byte stream: receive up to @cap bytes (consumer).
 * @r: consumer endpoint
 * @buf: room for @cap bytes
 * @cap: > 0
 * @timeout_ms: how long to wait for the first byte
 * Return: 1..@cap bytes (whatever is in the ring, without waiting for more
 * once one byte came); 0 at an orderly EOF (the producer closed and every
 * byte was read); -ECONNRESET when the producer died (after every byte it
 * published: see BRD_RING_BATCH); -EAGAIN/-ETIMEDOUT; -ECANCELED; -EINTR
 * (BRD_RING_EINTR only); -EBADMSG; -EBADF; -EMFILE/-ENFILE/-ENOMEM (as
 * brd_ring_recv()); -EINVAL (NULL @r; or NULL @buf
 * or @cap 0, checked after the endpoint's own checks, the role and fork
 * checks (-EBADF) and its final error once it has one, which it then
 * answers instead: 0 for -EPIPE, else -ECONNRESET or -EBADMSG).
 * Message boundaries are ignored and empty messages skipped (taken, but
 * nothing to return: a ring fed only empty messages ends the call at its
 * timeout or interrupt as an empty ring would, seen after at most 16384
 * of them while more are ready; bytes behind more than that many may be
 * left to the next call; a corrupt frame behind them answers -EBADMSG, the
 * producer's close 0); a message read in part
 * continues at the next read/recv/peek.
 * Concurrency: one consumer thread.  Fork: -EBADF in a child that inherited it.
 */
ssize_t brd_ring_read(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);

/**
 * brd_ring_flush() - publish whatever BRD_RING_BATCH held back (producer).
 * Return: 0 (also on a consumer endpoint, and with nothing held back and
 * no earlier -EPIPE: nothing to do, nothing lost); -EPIPE (the consumer closed or died, found
 * so by this flush of held-back messages or by an earlier call: what was
 * held back is never delivered); -EBADF (inherited); -EBADMSG (poisoned, either endpoint);
 * -EINVAL for NULL.  Never blocks (a producer's flush looks at the
 * consumer's pidfd as a publish does, at most once a millisecond or kernel
 * tick: a death shows to the first flush after that).
 * Concurrency: one thread at a time per endpoint, as send and recv.
 * Fork: -EBADF in a child that inherited it; nothing is published.
 */
int     brd_ring_flush(struct brd_ring *r);

/**
 * brd_ring_fd() - an fd to poll()/epoll for POLLIN: the next call can progress.
 * @r: either endpoint
 * Return: an epoll fd owned by the endpoint (do not close it), or -EINVAL/-EBADF.
 *
 * Level-triggered semantics, made exact by one rule: POLLIN stays up until a
 * call with timeout 0 returned -EAGAIN.  That call takes the doorbell's ring
 * from the set (an epoll_wait() of timeout 0; poll() never takes it), arms
 * it in shared memory (the peer rings it after its next publish, release or
 * close) and re-checks the ring before it answers -EAGAIN, so a loop
 *     for (;;) { poll(fd, POLLIN); while ((n = brd_ring_recv(r, b, sz, 0)) >= 0) use(b, n); if (n != -EAGAIN) break; }
 * never misses a message and never spins.  The fd is readable right after
 * the first brd_ring_fd() call (so the first call finds out), when the peer
 * publishes/releases/closes/attaches, when it dies (its pidfd is in the set
 * from the first -EAGAIN on, or a producer's first look at its sleeping
 * consumer), on brd_ring_interrupt(), and for good once the
 * endpoint has returned a final error (-EPIPE, -ECONNRESET, -EBADMSG).
 * Where nothing in the set would show in time, that -EAGAIN also sets a
 * one-shot timer in the set, and the fd turns readable when it fires (the
 * next call finds out, or answers -EAGAIN and sets it again): in 20 ms
 * where no pidfd of the peer can be had (pidfd_open() refused: seccomp, an LSM,
 * Linux < 5.3) or membarrier() failed, so that a death is still seen within
 * 100 ms; in 50 ms while no peer has attached.  A blocked call's sleep has
 * the same bounds.
 * Without brd_ring_fd() a timeout-0 call does not arm (no syscall beyond a
 * pidfd check on the would-block path).  Closing the endpoint does not wake
 * a thread in poll() on this fd (closing an fd never does): stop polling
 * before brd_ring_close().
 * Concurrency: any thread.  Fork: the fd is CLOEXEC; in a child that
 * inherited the endpoint it answers -EBADF.
 */
int     brd_ring_fd(const struct brd_ring *r);

/**
 * brd_ring_interrupt() - make the blocked (or next blocking) call return -ECANCELED.
 * @r: either endpoint
 * Return: 0, -EINVAL, -EBADF.
 * Any thread; async-signal-safe once attached (loads and atomic stores and
 * adds, a FUTEX_WAKE and eventfd writes: no lock, no allocation).  The
 * interrupt is latched and one-shot: the first call that would wait
 * (including a timeout-0 call that would return -EAGAIN) consumes it and
 * returns -ECANCELED within milliseconds; several interrupts before that
 * count as one; calls that can progress without waiting leave it pending.
 * A brd_ring_write() that it stops after some bytes were written returns
 * their count instead and leaves the interrupt pending (latched again, the
 * fd of brd_ring_fd() readable): the next call that would wait consumes it
 * and returns -ECANCELED.  A brd_ring_read() that it stops keeps the empty
 * messages it skipped before (taken: a recv or peek after it does not see
 * them), as its timeout and -EAGAIN do.  This is what ends a blocked call: no ring call
 * (close included) is a cancellation point, so a pthread_cancel() of a
 * thread inside one acts only once the call has returned.
 * Fork: -EBADF in a child that inherited it; nothing is touched.
 */
int     brd_ring_interrupt(struct brd_ring *r);

/**
 * brd_ring_stats() - this endpoint's counters.
 * @r: either endpoint
 * @ret_stats: filled on success
 * Return: 0, -EINVAL.
 * Concurrency: one thread at a time per endpoint, as send and recv: the
 * counters are plain process-local words that those calls write.
 * Fork: works on an inherited endpoint too: the parent's counters as they
 * were at the fork (process-local data, nothing shared is read).
 */
int     brd_ring_stats(const struct brd_ring *r, struct brd_ring_stats *ret_stats);

/**
 * brd_ring_close() - leave the ring and free the endpoint.
 * @r: the endpoint, may be NULL
 * Producer: publishes what batching held (not once the producer has ended:
 * poisoned, the ring is corrupt; -EPIPE, its consumer is gone and what was
 * held is lost, see brd_ring_flush()), then marks the ring closed: the
 * consumer gets every message, then -EPIPE (read: 0).  Consumer: marks its
 * side closed: the producer's calls return -EPIPE.  Either way the peer is
 * woken if it sleeps.  An abandoned reservation is dropped.  In a forked
 * child that inherited the endpoint it only unmaps and closes this
 * process's copies: the ring and the peer are left alone.
 * Concurrency: a call of the endpoint that another thread is blocked in
 * (waiting for room or a message) is interrupted and returns -ECANCELED,
 * whatever its wait came to (a deadline passing at that moment, a message
 * taken: a consumer's close drops it with the rest), and so is a
 * brd_ring_write() that is moving bytes, at its next chunk
 * (whatever it had written: the bytes it wrote are delivered before EOF);
 * close frees nothing before that call has left, so it waits for it (a
 * few microseconds), and for a brd_ring_interrupt() or brd_ring_fd() still
 * running in another thread or a signal handler (the one that cancelled a
 * call, or any that got as far: one that may still be starting when close
 * begins is the caller's race, as for any call).  Not while another thread may be in
 * any other call: send, recv and the zero-copy calls do not wait on their
 * fast path, so a thread that may be in one is stopped with
 * brd_ring_interrupt() and closes the endpoint itself.  No call after
 * close.  Never fails.
 */
void    brd_ring_close(struct brd_ring *r);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_RINGBUF_H */
