/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the input reader, the invariant check, the
 * fd-leak check and the pids a harness may write into a lock word.
 *
 * Every target defines LLVMFuzzerTestOneInput() (and may define
 * LLVMFuzzerInitialize()).  It is linked either with libFuzzer
 * (-Dfuzz=true, scripts/fuzz.sh) or with replay.c, which feeds it the
 * checked-in corpus as a test.
 */
#ifndef BROOD_FUZZ_H
#define BROOD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: abort, so that libFuzzer saves the input and the
 * replay test fails. */
#define FUZZ_FAIL(...)                                                   \
        do {                                                             \
                fprintf(stderr, "invariant: " __VA_ARGS__);              \
                fputc('\n', stderr);                                     \
                abort();                                                 \
        } while (0)

/* The input, read front to back; past its end every read gives 0, so that
 * any prefix of an input is an input too (libFuzzer shortens them). */
struct fuzz_in {
        const uint8_t *p;
        size_t n;
};

static inline bool fuzz_more(const struct fuzz_in *in)
{
        return in->n != 0;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
        if (!in->n)
                return 0;
        in->n--;
        return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
        uint16_t v = fuzz_u8(in);

        return v | (uint16_t)(fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
        uint32_t v = fuzz_u16(in);

        return v | (uint32_t)fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
        uint64_t v = fuzz_u32(in);

        return v | (uint64_t)fuzz_u32(in) << 32;
}

/* fuzz-util.c */
int fuzz_count_fds(void);
void fuzz_fd_check(int before);
pid_t fuzz_dead_pid(void);
uint64_t fuzz_lock_word(uint64_t v);

#endif
