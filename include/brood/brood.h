/* SPDX-License-Identifier: MIT */
#ifndef BROOD_BROOD_H
#define BROOD_BROOD_H

#include <brood/handle.h>
#include <brood/shm.h>
#include <brood/ringbuf.h>
#include <brood/fork.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRD_VERSION_MAJOR 0
#define BRD_VERSION_MINOR 1
#define BRD_VERSION_PATCH 0

/**
 * brd_version() - the library's version as "MAJOR.MINOR.PATCH".
 * Return: a static string.  Concurrency: any thread.  Fork: no state.
 */
const char *brd_version(void);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_BROOD_H */
