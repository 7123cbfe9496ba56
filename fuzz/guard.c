/* SPDX-License-Identifier: MIT */
/*
 * Guard regions around every mapping the library makes, linked with
 * -Wl,--wrap=mmap,--wrap=mmap64,--wrap=munmap.  ASan does not see into
 * mmap'ed memory, so an access past the end of a segment or a ring would
 * land unnoticed in whatever is mapped next; here it faults instead.  A
 * mapping at a chosen address (MAP_FIXED into a reservation, as the ring
 * does for its two views) is left alone: it lies inside a guarded one.
 * The library unmaps what it mapped with the same address and length, so
 * munmap() can find the guards again.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#define GUARD (256ul << 20)     /* past any offset a bad index or frame length reaches */

void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        uint8_t *res, *p;

        if (addr)
                return __real_mmap64(addr, len, prot, flags, fd, off);
        res = __real_mmap64(NULL, len + 2 * GUARD, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (res == MAP_FAILED)
                return MAP_FAILED;
        p = __real_mmap64(res + GUARD, len, prot, flags | MAP_FIXED, fd, off);
        if (p == MAP_FAILED)
                __real_munmap(res, len + 2 * GUARD);
        return p;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        return __wrap_mmap64(addr, len, prot, flags, fd, off);
}

int __wrap_munmap(void *addr, size_t len)
{
        return __real_munmap((uint8_t *)addr - GUARD, len + 2 * GUARD);
}
