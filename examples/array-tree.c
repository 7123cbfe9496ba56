/* SPDX-License-Identifier: MIT */
/*
 * An array shared across a process tree: one pool, one array per writer
 * (any number of processes may push to one; one each keeps the check
 * simple); three forked children push rows while the root reads consistent
 * snapshots of every array, then checks them whole.
 */
#include <errno.h>
#include <stdio.h>

#include <brood/brood.h>

#define WRITERS 3
#define ROWS 20000

struct row {
        uint64_t writer, seq, square;
};

struct job {
        uint64_t off;           /* the array's offset in the pool */
        uint64_t writer;
};

static int writer(void *arg, struct brd_handle *h, size_t n)
{
        const struct job *j = arg;
        struct brd_pool *pool;
        struct brd_array *a;
        uint64_t i;

        if (n != 1 || brd_pool_attach(&h[0], &pool) < 0 || brd_array_open(pool, j->off, &a) < 0)
                return 1;
        brd_handle_close(&h[0]);
        for (i = 0; i < ROWS; i++) {
                struct row r = { j->writer, i, i * i };

                if (brd_array_push(a, &r, 1) < 0)
                        return 2;
        }
        brd_array_close(a);
        brd_pool_close(pool);
        return 0;
}

int main(void)
{
        static struct row snap[ROWS];
        struct brd_array *a[WRITERS];
        struct brd_child *c[WRITERS];
        struct job jobs[WRITERS];
        struct brd_pool *pool;
        struct brd_fsrv *fs;
        uint64_t snapshots = 0, first;
        int w, r, bad = 0, st[WRITERS] = { 0 }, ended[WRITERS] = { 0 };

        if (brd_pool_create(4 << 20, 0, &pool) < 0 || brd_fsrv_start(0, &fs) < 0)
                return 1;
        for (w = 0; w < WRITERS; w++) {
                struct brd_handle h;
                struct brd_spawn_opts o = { .fn = writer, .arg = &jobs[w], .handles = &h, .nhandles = 1 };

                if (brd_array_create(pool, sizeof(struct row), ROWS, 0, 0, &a[w]) < 0 ||
                    brd_pool_export(pool, &h) < 0)
                        return 1;
                jobs[w] = (struct job){ brd_array_offset(a[w]), (uint64_t)w };
                if (brd_fsrv_spawn(fs, &o, &c[w]) < 0)
                        return 1;
                brd_handle_close(&h);
        }
        /* Snapshots while the writers run: every row whole, in order. */
        for (w = 0; w < WRITERS; w++) {
                ssize_t n;

                do {
                        n = brd_array_read(a[w], &first, snap, ROWS);
                        if (n < 0) {
                                bad++;
                                break;
                        }
                        for (ssize_t i = 0; i < n; i++)
                                if (snap[i].writer != (uint64_t)w ||
                                    snap[i].seq != first + (uint64_t)i ||
                                    snap[i].square != snap[i].seq * snap[i].seq)
                                        bad++;
                        snapshots++;
                        if (n == ROWS)
                                break;
                        /* A writer that ended short: read once more after
                         * its end (every row it pushed shows), then stop. */
                        if (ended[w]) {
                                bad++;
                                break;
                        }
                        r = brd_child_wait(c[w], 0, &st[w]);
                        if (r < 0 && r != -EAGAIN) {
                                bad++;          /* not to be waited for: no status */
                                ended[w] = -1;
                                break;
                        }
                        ended[w] = r == 0;
                } while (1);
        }
        for (w = 0; w < WRITERS; w++) {
                /* ended -1: counted bad already, no status to look at. */
                if (ended[w] >= 0 &&
                    ((!ended[w] && brd_child_wait(c[w], -1, &st[w]) < 0) || st[w] != 0))
                        bad++;
                brd_child_free(c[w]);
                if (brd_array_destroy(a[w]) < 0)
                        bad++;
        }
        printf("array-tree: %d writers x %d rows, %llu snapshots, %d bad rows\n", WRITERS, ROWS,
               (unsigned long long)snapshots, bad);
        brd_fsrv_stop(fs);
        brd_pool_close(pool);
        return bad ? 1 : 0;
}
