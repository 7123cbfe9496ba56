/* SPDX-License-Identifier: MIT */
/*
 * Ring endpoints: create (the shared segment, its header, two doorbells, two
 * handles), attach (validate the header, map the data area twice back to
 * back, stamp our side), the calls that are not I/O (fd, interrupt, stats,
 * close), and the two state changes that every part makes: an endpoint's
 * final answer and a ring of a sleeping peer.  The I/O calls are
 * in ring.c, their wait in wait.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "endpoint.h"

/* Where r->loc points without a wipe-on-fork page (see ring_mine()): no
 * token and no reservation, for good, so no fast path runs. */
const struct brd__ring_local brd__ring_no_local;

/* ------------------------------------------------------ create / attach */

BRD_EXPORT int brd_ring_create(size_t capacity, unsigned flags,
                               struct brd_handle *ret_producer, struct brd_handle *ret_consumer)
{
        struct brd_handle hp, hc;
        struct brd_ring_hdr *h;
        struct brd_seg *seg = NULL;
        uint64_t cap = BRD_RING_CAPACITY_MIN, id, page;
        int efd_data = -1, efd_space = -1, fds[2 * RING_NFDS] = { -1, -1, -1, -1, -1, -1 };
        int e, i;

        /* One handle for both would lose the producer's fds. */
        if (!ret_producer || !ret_consumer || ret_producer == ret_consumer ||
            (flags & ~(unsigned)RING_KNOWN_FLAGS))
                return -EINVAL;
        if (capacity == 0 || capacity > BRD_RING_CAPACITY_MAX)
                return -EINVAL;
        page = (uint64_t)sysconf(_SC_PAGESIZE);
        if (page < sizeof(struct brd_ring_hdr) || page > BRD_RING_CAPACITY_MAX || (page & (page - 1)))
                return -EINVAL;
        while (cap < capacity || cap < page)
                cap <<= 1;
        e = brd__random(&id, sizeof(id));
        if (e < 0)
                return e;

        /* NOFORK: a fork() by another thread meanwhile gives its child no
         * mapping of the new ring (only the handles give access). */
        e = brd_seg_create("ring", (size_t)(page + cap), BRD_SEG_NOFORK, &seg);
        if (e < 0)
                return e;
        h = brd_seg_addr(seg);
        /* Fresh fallocated memfd: already zero.  Fields before the header
         * is published to anyone: plain stores. */
        h->magic = BRD_RING_MAGIC;
        h->version = BRD_RING_VERSION;
        h->hdr_size = sizeof(*h);
        h->flags = flags;
        h->capacity = cap;
        h->mask = cap - 1;
        h->data_off = page;
        h->ring_id = id;
        h->pid_ns = brd__pid_ns();

        /* Rings write 0 and nobody reads (bell_ring()): the count stays. */
        efd_data = eventfd(BRD_RING_BELL_COUNT, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
        if (efd_data < 0) {
                e = -errno;
                goto fail;
        }
        efd_space = eventfd(BRD_RING_BELL_COUNT, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
        if (efd_space < 0) {
                e = -errno;
                goto fail;
        }
        for (i = 0; i < 2; i++) {
                fds[i * RING_NFDS + RING_FD_MEM] = brd__dup_cloexec(seg->fd);
                fds[i * RING_NFDS + RING_FD_DATA] = brd__dup_cloexec(efd_data);
                fds[i * RING_NFDS + RING_FD_SPACE] = brd__dup_cloexec(efd_space);
        }
        for (i = 0; i < 2 * RING_NFDS; i++) {
                if (fds[i] < 0) {
                        e = fds[i];
                        goto fail;
                }
        }
        hp = (struct brd_handle){
                .kind = BRD_HANDLE_RING_PRODUCER, .nfds = RING_NFDS,
                .fds = { fds[0], fds[1], fds[2], -1 },
                .size = brd_seg_size(seg), .flags = flags, .id = id,
        };
        e = brd__handle_stamp(&hp);
        if (e < 0)
                goto fail;
        hc = hp;
        hc.kind = BRD_HANDLE_RING_CONSUMER;
        hc.fds[0] = fds[3];
        hc.fds[1] = fds[4];
        hc.fds[2] = fds[5];
        brd__close(efd_data);
        brd__close(efd_space);
        brd_seg_close(seg);
        *ret_producer = hp;
        *ret_consumer = hc;
        return 0;
fail:
        for (i = 0; i < 2 * RING_NFDS; i++)
                brd__close(fds[i]);
        brd__close(efd_data);
        brd__close(efd_space);
        brd_seg_close(seg);
        return e;
}

/* 0 if @fd is an eventfd; -EBADF if it is not open; else -EINVAL. */
static int eventfd_check(int fd)
{
        char target[64];
        ssize_t n;

        if (fcntl(fd, F_GETFD) < 0)
                return -EBADF;
        n = brd__fd_link(fd, target, sizeof(target));
        if (n < 0)
                return n == -ENOENT ? 0 : -EINVAL;     /* no /proc: open is all we know */
        return strcmp(target, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

static void ring_free(struct brd_ring *r)
{
        /* Inherited through fork(): the shared views were never mapped in
         * this process (MADV_DONTFORK, ring_map()), and the child may have
         * mapped something of its own there since; only the token page is.
         * So in a child made without fork()'s handlers (brd__made_here()). */
        if (r->map && !brd__made_here(r->fork_gen, r->map_pid))
                munmap(r->map + 2 * r->cap, r->page);
        else if (r->map)
                munmap(r->map, 2 * r->cap + r->page);
        /* In a forkserver child the inherited numbers may be its handles now. */
        if (!brd__fds_gone(r->fork_gen)) {
                if (r->epfd >= 0)
                        brd__close(r->epfd);
                brd__close(r->pidfd);
                brd__close(r->tfd);
                brd__close(r->efd_own);
                brd__close(r->efd_peer);
                brd__close(r->efd_intr);
        }
        brd_seg_close(r->seg);
        free(r);
}

static int ring_map(struct brd_ring *r, int fd, uint64_t off)
{
        uint8_t *base, *p;
        int k, e = 0;

        /* Reserve 2 * cap + a page of address space, then put the data
         * pages in both halves: byte i and byte i + cap are the same byte.
         * The last page is private: the fork token. */
        base = mmap(NULL, 2 * r->cap + r->page, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
                return -errno;
        r->map = base;
        r->map_pid = getpid();
        /* The views are mapped and marked MADV_DONTFORK (below) under the
         * fork lock, whatever fails: no fork() gives a child a view (see
         * brd__registry_add()).  On failure ring_free() unmaps it all. */
        brd__fork_lock();
        for (k = 0; k < 2 && !e; k++) {
                /* Both views: a frame that runs past the end writes the
                 * second one. */
                p = mmap(base + k * r->cap, r->cap, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED, fd, (off_t)off);
                if (p == MAP_FAILED)
                        e = -errno;
        }
        /* Not inherited by fork(): a child reaches a ring only through a
         * handle and its own attach, so a child that was not handed this
         * one cannot write into it (RELIABILITY F35). */
        if (madvise(base, 2 * r->cap, MADV_DONTFORK) < 0 && !e)
                e = -errno;
        brd__fork_unlock();
        if (e)
                return e;
        /* Populated out of the lock (every fork() waits for it), both
         * views; only over space the file has (brd_seg_attach()): a
         * peer's sparse ring of up to 4 GiB would have us allocate it. */
        if (r->flags & BRD_RING_POPULATE) {
                struct stat st;

                if (fstat(fd, &st) == 0 && brd__blocks_cover(&st, off + r->cap))
                        brd__populate(base, 2 * r->cap);
        }
        r->data = base;
        p = base + 2 * r->cap;
        if (mprotect(p, r->page, PROT_READ | PROT_WRITE) < 0)
                return -errno;
        if (madvise(p, r->page, MADV_WIPEONFORK) == 0) {
                struct brd__ring_local *loc = (struct brd__ring_local *)(void *)p;

                loc->token = RING_TOKEN;
                r->loc = loc;
                r->resv = &loc->resv;
        }
        return 0;
}

/*
 * Take this role for this process: one endpoint per role at a time.  The
 * claim word holds the owner word of the process that attached the role
 * (brd__owner_word(): pid and start time); while that process lives (this
 * one included) the role is taken, -EBUSY.  One that exited, died or is a
 * zombie left it (it never closed: a closed role is refused before this),
 * and the compare-and-swap settles two attaches racing for it: the loser
 * reads a live winner.  Bounded against a word that a hostile process keeps
 * changing.  The claim is made before the first write to this role's side
 * (the arm state of attach), so that a refused attach disturbs nothing.
 */
static int role_claim(struct brd_ring *r, AO_t me)
{
        AO_t o;
        int k;

        for (k = 0; k < 64; k++) {
                o = AO_load(&r->own->claim);
                if (o && !brd__owner_gone(o))
                        return -EBUSY;
                if (AO_compare_and_swap_full(&r->own->claim, o, me))
                        return 0;
        }
        return -EBUSY;
}

BRD_EXPORT int brd_ring_attach(const struct brd_handle *h, struct brd_ring **ret_ring)
{
        AO_t claimed = 0;               /* the claim word we wrote (role_claim()) */
        struct brd_ring_hdr *hdr;
        struct brd_ring *r;
        uint64_t cap, mask, off, t, hd, page, st, start;
        uint32_t magic, version, hsize, flags;
        int e;

        if (!ret_ring)
                return -EINVAL;
        if (!h || (h->kind != BRD_HANDLE_RING_PRODUCER && h->kind != BRD_HANDLE_RING_CONSUMER))
                return brd__handle_err(h);
        if (!brd__handle_valid(h, h->kind, RING_NFDS) || h->nfds != RING_NFDS ||
            (h->flags & ~(uint64_t)RING_KNOWN_FLAGS))
                return -EINVAL;
        /* Not the memfd it was made with: a stale copy of a handle closed
         * elsewhere, its numbers since taken by other files (D27). */
        e = brd__handle_current(h);
        if (e < 0)
                return e;
        if (h->size < 2 * BRD_RING_CAPACITY_MIN || h->size > 2 * BRD_RING_CAPACITY_MAX)
                return -EINVAL;
        e = eventfd_check(h->fds[RING_FD_DATA]);
        if (e == 0)
                e = eventfd_check(h->fds[RING_FD_SPACE]);
        if (e < 0)
                return e;
        /* Our start time (cached per process), before anything is made or
         * claimed: stamped 0 for a read that failed for now (out of fds or
         * memory), it would let the peer take a process that reuses our
         * pid after our death for us. */
        e = brd__proc_start_time_of(brd__getpid(), &start);
        if (e < 0)
                return e;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->efd_own = r->efd_peer = r->efd_intr = r->epfd = r->pidfd = r->tfd = -1;
        r->fork_gen = brd__fork_gen();  /* ring_free() on a failed attach closes what it made */
        r->loc = &brd__ring_no_local;
        r->resv = &r->resv_own;
        r->role = h->kind;
        r->lag_probe = r->lag_backoff = RING_LAG_PROBE_MIN;
        r->lag_pauses = RING_LAG_PAUSES_INIT;

        e = brd__seg_attach_fd(h->fds[RING_FD_MEM], h->size, false, NULL, BRD_SEG_NOFORK,
                               &r->seg);
        if (e < 0) {
                r->seg = NULL;
                goto fail;
        }
        hdr = brd_seg_addr(r->seg);
        /* Copy once, validate the copies, never read these again. */
        magic = hdr->magic;
        version = hdr->version;
        hsize = hdr->hdr_size;
        flags = hdr->flags;
        cap = hdr->capacity;
        mask = hdr->mask;
        off = hdr->data_off;
        /* The copies are what is checked and kept: no field is loaded
         * again in their place (the peer may rewrite them meanwhile). */
        AO_compiler_barrier();
        page = (uint64_t)sysconf(_SC_PAGESIZE);
        e = -EPROTO;
        if (magic != BRD_RING_MAGIC || version != BRD_RING_VERSION || hsize != sizeof(*hdr))
                goto fail;
        if (hdr->ring_id != h->id || (flags & ~(uint32_t)RING_KNOWN_FLAGS) || h->flags != flags)
                goto fail;
        /* The peer is watched by the pid it stamps: in another pid namespace
         * it would name another process (or none). */
        if (!brd__pid_ns_ours(hdr->pid_ns)) {
                e = -EXDEV;
                goto fail;
        }
        if (cap < BRD_RING_CAPACITY_MIN || cap > BRD_RING_CAPACITY_MAX || (cap & (cap - 1)) ||
            mask != cap - 1 || cap % page)
                goto fail;
        if (off < sizeof(*hdr) || off % page || off > BRD_RING_CAPACITY_MAX ||
            off + cap != brd_seg_size(r->seg))
                goto fail;
        t = AO_load(&hdr->tail.idx);
        hd = AO_load(&hdr->head.idx);
        /* hd <= t first: a head wrapped past 2^64 makes t - hd small. */
        if (hd > t || t - hd > cap || (t & 7) || (hd & 7) || t >= BRD_RING_INDEX_MAX)
                goto fail;

        r->cap = cap;
        r->lag_bytes = cap / 8 < RING_LAG_BYTES ? cap / 8 : RING_LAG_BYTES;
        r->page = page;
        r->mask = mask;
        r->flags = flags;
        r->max_msg = cap / 2;
        r->batch = (flags & BRD_RING_BATCH) ? (cap / 4 < RING_BATCH_MAX ? cap / 4 : RING_BATCH_MAX) : 0;
        if (r->role == RING_PROD) {
                r->own_idx = &hdr->tail.idx;
                r->peer_idx = &hdr->head.idx;
                r->own = &hdr->prod;
                r->peer_side = &hdr->cons;
                r->pos = t;
                r->peer = hd;
                brd__release_init(&r->rel, r->st.bytes, cap, BRD_RELEASE_STREAM);
        } else {
                r->own_idx = &hdr->head.idx;
                r->peer_idx = &hdr->tail.idx;
                r->own = &hdr->cons;
                r->peer_side = &hdr->prod;
                r->pos = r->peer = hd;
                brd__release_init(&r->rel, r->st.bytes, cap, BRD_RELEASE_LINES);
        }
        st = AO_load(&r->own->state);
        if (!(st & BRD_RING_ST_CLOSED)) {
                AO_t me;

                e = brd__owner_word(&me);
                if (e == 0)
                        e = role_claim(r, me);
                if (e < 0)
                        goto fail;
                claimed = me;
                st = AO_load(&r->own->state);   /* closed by the one we follow? */
        }
        if (st & BRD_RING_ST_CLOSED) {
                e = -EPIPE;     /* this role already left the ring for good */
                goto fail;
        }
        r->seq = st / BRD_RING_ST_SEQ1;

        e = ring_map(r, r->seg->fd, off);
        if (e < 0)
                goto fail;
        r->efd_own = brd__dup_cloexec(h->fds[r->role == RING_PROD ? RING_FD_SPACE : RING_FD_DATA]);
        r->efd_peer = brd__dup_cloexec(h->fds[r->role == RING_PROD ? RING_FD_DATA : RING_FD_SPACE]);
        if (r->efd_own < 0 || r->efd_peer < 0) {
                e = r->efd_own < 0 ? r->efd_own : r->efd_peer;
                goto fail;
        }
        r->efd_intr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->efd_intr < 0) {
                e = -errno;
                goto fail;
        }
        r->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (r->epfd < 0) {
                e = -errno;
                goto fail;
        }
        /* Edge-triggered: its count stays above 0 (bell_ring()), so only
         * rings show, once each, until an epoll_wait() takes them. */
        e = ring_epoll_add(r->epfd, r->efd_own, EPOLLIN | EPOLLET);
        if (e < 0)
                goto fail;
        e = ring_epoll_add(r->epfd, r->efd_intr, EPOLLIN);
        if (e < 0)
                goto fail;
        /* Nothing fails from here on.  A predecessor of this role may have
         * died armed: not asleep now (left as it was by a failed attach,
         * so that the peer still looks at the sleeper it died as).  Nor
         * waiting, nor asking for fences: a consumer killed in a wait left
         * its waiting word set, which would have the producer wrap large
         * frames early for good (prod_place_early()); we ask for fences
         * again at our first arm. */
        AO_store(&r->own->state, r->seq * BRD_RING_ST_SEQ1);
        AO_int_store(&r->own->waiting, 0);
        AO_store(&r->own->fence_req, 0);

        /* Register for the asymmetric fence: the peer's membarrier then
         * fences us, and our publishes need none (see ring.c's top comment),
         * but for the few it asks for when its membarriers are dear (the
         * fence mode, brd-ring.h).  NOSPIN rings too: where membarrier is
         * cheap, a full fence per publish measured worse there (spin-off
         * round trip 1.21-1.26x raw eventfd against 0.93-1.11x with
         * membarrier, ring-bench --quick, same session). */
        r->mb_registered = brd__membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
        r->asym = r->mb_registered;
        r->fork_gen = brd__fork_gen();
        AO_store(&r->own->asym, r->asym);
        AO_store(&r->own->start_time, start);
        /* Release: a peer that reads this pid reads its start time
         * (peer_watch()), not the one of a process that held the role. */
        AO_store_release(&r->own->pid, (AO_t)brd__getpid());
        ring_stamp_cpu(r);
        r->spin_ns = BRD_RING_SPIN_NS;
        r->looked_ns = INT64_MIN / 2;   /* the first look is due, whatever the clock reads */
        /* The stamps (asym above all) are visible before any publish of
         * ours can skip its fence, and before the doorbell below. */
        AO_nop_full();
        /* A peer already asleep re-reads our side and starts watching us. */
        ring_wake_peer(r);
        *ret_ring = r;
        return 0;
fail:
        /* Nobody watches the claim word but attaches: give it back (the
         * word written, not one computed again: its start time may read
         * differently now). */
        if (claimed)
                (void)AO_compare_and_swap_full(&r->own->claim, claimed, 0);
        ring_free(r);
        return e;
}

/* ----------------------------------------------------------- the rest */

/*
 * Ring the peer asleep in state word @st, once per arm (the peer bumps seq
 * each time it arms).  true while no ring of that arm proved the sleeper
 * alive: a futex wake that woke it does; a doorbell, or a futex wake of
 * nobody (the sleeper on its way in or out, or dead in it), cannot tell.
 *
 * The fence mode's publisher half (brd-ring.h): a sleeper that asks for
 * fences gets our next BRD_RING_FENCE_PUBLISHES publishes fenced, and asym
 * 0 in our side says so.  Release: our unfenced publishes before it are
 * visible to a sleeper that reads it (pairs with AO_load_acquire(asym) in
 * ring_arm()); the fenced ones after it pair with its arm's fence (Dekker).
 * ring_publish_quiet() counts them down.
 */
bool brd__ring_bell_for(struct brd_ring *r, uint64_t st)
{
        if (st == r->rung)
                return !r->rung_woke;
        r->rung = st;
        if (r->mb_registered && AO_load(&r->peer_side->fence_req)) {
                if (r->asym) {
                        AO_store_release(&r->own->asym, 0);
                        r->asym = false;
                }
                r->fence_left = BRD_RING_FENCE_PUBLISHES;
        }
        r->rung_woke = ring_bell(r, st);
        return !r->rung_woke;
}

int brd__ring_final(struct brd_ring *r, int e)
{
        if (!r->err || e == -EBADMSG)
                r->err = e;
        /* The fast paths of commit and release trust a reservation or a
         * peeked frame to mean "no error yet": drop them. */
        *r->resv = 0;
        ring_unpeek(r);
        if (r->armed) {
                AO_store(&r->own->state, r->seq * BRD_RING_ST_SEQ1);
                r->armed = false;
        }
        if (AO_load(&r->fd_used) && !r->final_rung) {
                r->final_rung = true;
                bell_ring(r->efd_own);
        }
        return r->err;
}

BRD_EXPORT int brd_ring_fd(const struct brd_ring *r)
{
        struct brd_ring *w = (struct brd_ring *)r;     /* process-local state only */
        int fd;

        if (!r)
                return -EINVAL;
        if (!ring_mine(r))
                return -EBADF;
        /* Counted as an interrupt is, every call (not only the first, which
         * rings): close in another thread waits for it to have left the
         * endpoint and its eventfd, as the header says. */
        AO_fetch_and_add1_full(&w->intr_busy);
        /* First call: make the fd readable once, so the first call after
         * the first poll finds out (and arms, if it would block). */
        if (!AO_load(&w->fd_used) && AO_compare_and_swap_full(&w->fd_used, 0, 1))
                bell_ring(r->efd_own);
        fd = r->epfd;
        AO_fetch_and_sub1_release(&w->intr_busy);
        return fd;
}

BRD_EXPORT int brd_ring_interrupt(struct brd_ring *r)
{
        if (!r)
                return -EINVAL;
        if (!ring_mine(r))
                return -EBADF;
        /* Counted from before the flag's store: a close that saw this
         * interrupt's effect (a call it cancelled returned) waits for the
         * rest of it, which still touches the endpoint and its eventfd. */
        AO_fetch_and_add1_full(&r->intr_busy);
        ring_intr(r);
        AO_fetch_and_sub1_release(&r->intr_busy);
        return 0;
}

BRD_EXPORT int brd_ring_stats(const struct brd_ring *r, struct brd_ring_stats *ret_stats)
{
        if (!r || !ret_stats)
                return -EINVAL;
        *ret_stats = r->st;
        ret_stats->capacity = r->cap;
        ret_stats->max_msg = r->max_msg;
        return 0;
}

BRD_EXPORT void brd_ring_close(struct brd_ring *r)
{
        bool mine;
        int cancel;

        if (!r)
                return;
        cancel = brd__nocancel();       /* close() is a cancellation point: none is cut short */
        /* Inherited through fork(): not ours to close; only free our copy
         * (whose held flag, copied from a parent thread, nobody clears). */
        mine = ring_mine(r) && r->fork_gen == brd__fork_gen();
        /* Another thread blocked in a call of this endpoint: interrupt it
         * (-ECANCELED) and free nothing before it has left (D28).  The mark
         * (a full barrier before the interrupt's store) tells the holder
         * that this cancel is close's: even a write that moved bytes
         * answers -ECANCELED (stream_write_cancelled()). */
        if (mine && AO_compare_and_swap_full(&r->held, 1, RING_HOLD_CLOSING)) {
                ring_intr(r);
                while (AO_load_acquire(&r->held))
                        sched_yield();
        }
        if (mine) {
                /* And an interrupt of another thread (or a signal handler)
                 * still running: the cancel that led here may have been its.
                 * (An inherited copy's count is the parent's, frozen.) */
                while (AO_load_acquire(&r->intr_busy))
                        sched_yield();
                /* The last tail (pairs with AO_load_acquire(tail) in
                 * cons_refresh()); ring_wake_peer() below wakes a sleeper.
                 * Not once the producer has ended: poisoned (the ring is
                 * corrupt), or its consumer gone (a flush or send said
                 * -EPIPE for what it held back: a consumer that took the
                 * role over would have got it after all). */
                if (r->role == RING_PROD && !r->err && r->pos != ring_pub(r))
                        AO_store_release(r->own_idx, r->pos);
                /* Pairs with AO_load_acquire(state) in brd__ring_wait(): for a
                 * producer, the final tail is visible before CLOSED. */
                AO_store_release(&r->own->state, r->seq * BRD_RING_ST_SEQ1 | BRD_RING_ST_CLOSED);
                AO_nop_full();
                ring_wake_peer(r);
        }
        ring_free(r);
        brd__cancel_restore(cancel);
}
