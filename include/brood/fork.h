/* SPDX-License-Identifier: MIT */
#ifndef BROOD_FORK_H
#define BROOD_FORK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <brood/handle.h>

#ifdef __cplusplus
extern "C" {
#endif

struct brd_fsrv;
struct brd_child;
typedef int (*brd_child_fn)(void *arg, struct brd_handle *handles, size_t nhandles);

enum brd_spawn_flags {
        BRD_SPAWN_NULL_STDIO    = 1u << 0,
        BRD_SPAWN_NO_PDEATHSIG  = 1u << 1,
};

struct brd_spawn_opts {
        brd_child_fn fn;
        void *arg;
        char *const *argv;
        char *const *envp;
        const struct brd_handle *handles;
        size_t nhandles;
        const char *name;
        unsigned flags;
};

int   brd_fsrv_start(unsigned flags, struct brd_fsrv **ret_fsrv);
int   brd_fsrv_spawn(struct brd_fsrv *fs, const struct brd_spawn_opts *o, struct brd_child **ret_child);
void  brd_fsrv_stop(struct brd_fsrv *fs);
pid_t brd_child_pid(const struct brd_child *c);
int   brd_child_fd(const struct brd_child *c);
int   brd_child_wait(struct brd_child *c, int timeout_ms, int *ret_status);
int   brd_child_kill(struct brd_child *c, int sig);
int   brd_child_stop(struct brd_child *c, int grace_ms, int *ret_status);
void  brd_child_free(struct brd_child *c);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_FORK_H */
