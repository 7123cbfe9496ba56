/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target without libFuzzer: every file named on the command
 * line, and every file in every directory named there (in name order), is
 * passed once to LLVMFuzzerTestOneInput().  A broken invariant aborts, so
 * the exit status says whether the whole corpus passed.  This is how the
 * 'fuzz' test suite replays fuzz/corpus/ in every build.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* The targets that need no set-up do not define it. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL;
        long len;
        int r = -1;

        if (!f) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                /* a copy the size of the input: ASan catches a read past it */
                buf = malloc(len ? (size_t)len : 1);
                if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
                        LLVMFuzzerTestOneInput(buf, (size_t)len);
                        r = 0;
                }
        }
        if (r)
                fprintf(stderr, "replay: %s: cannot read it\n", path);
        free(buf);
        fclose(f);
        return r;
}

static int replay_dir(const char *dir, unsigned *count)
{
        struct dirent **names;
        char path[4096];
        int n, i, r = 0;

        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
                return -1;
        }
        for (i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.' && r == 0) {
                        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
                        r = replay_file(path);
                        *count += r == 0;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        struct stat st;
        int i, r = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (i = 1; i < argc && r == 0; i++) {
                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                        r = replay_dir(argv[i], &count);
                } else {
                        r = replay_file(argv[i]);
                        count += r == 0;
                }
        }
        printf("replay: %u inputs\n", count);
        /* An empty or missing corpus tests nothing. */
        return r || count == 0 ? 1 : 0;
}
