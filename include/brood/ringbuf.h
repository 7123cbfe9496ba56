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

struct brd_ring;                /* one end of a ring: the role comes from the handle */

int     brd_ring_create(size_t capacity, unsigned flags,
                        struct brd_handle *ret_producer, struct brd_handle *ret_consumer);
int     brd_ring_attach(const struct brd_handle *h, struct brd_ring **ret_ring);
int     brd_ring_send(struct brd_ring *r, const void *msg, size_t len, int timeout_ms);
ssize_t brd_ring_recv(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);
int     brd_ring_reserve(struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms);
int     brd_ring_commit(struct brd_ring *r, size_t len);
ssize_t brd_ring_peek(struct brd_ring *r, const void **ret_msg, int timeout_ms);
int     brd_ring_release(struct brd_ring *r);
ssize_t brd_ring_write(struct brd_ring *r, const void *buf, size_t len, int timeout_ms);
ssize_t brd_ring_read(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);
int     brd_ring_flush(struct brd_ring *r);
int     brd_ring_fd(const struct brd_ring *r);
int     brd_ring_interrupt(struct brd_ring *r);
void    brd_ring_close(struct brd_ring *r);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_RINGBUF_H */
