/* SPDX-License-Identifier: MIT */
/* brood bench all --quick --json --plot: every group runs, the JSON parses
 * and holds every group's figures, the SVG is written, and --from draws the
 * same SVG from the saved JSON.  brood bench ring -- OPTIONS: the options
 * reach the ring benchmark.  Without a gnuplot in PATH only the drawing is
 * skipped. */
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "json.h"

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        static char buf[1 << 20];
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

/* Exit code of "brood ARGS" (the command under test, $BRD_BROOD; its
 * standard output dropped), -1 when it did not exit. */
static int brood_exit(const char *fmt, ...)
{
        const char *exe = getenv("BRD_BROOD");
        char args[768], cmd[1024];
        va_list ap;
        int st;

        assert_non_null(exe);
        va_start(ap, fmt);
        vsnprintf(args, sizeof(args), fmt, ap);
        va_end(ap);
        snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null", exe, args);       /* a path may hold spaces */
        st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Can brood draw (--plot)?  It runs the gnuplot of its PATH. */
static bool have_gnuplot(void)
{
        return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static struct json *load_json(const char *path)
{
        char *text = slurp(path);
        struct json *j;

        assert_non_null(text);
        j = json_parse(text);
        assert_non_null(j);
        return j;
}

/*
 * The reader brood bench checks a benchmark's JSON with (and merges it by)
 * takes JSON only: strtod()'s nan, inf, hex, a leading + or . and a
 * trailing ., a leading zero, raw control bytes and unknown escapes in
 * strings were taken, and copied into --json as no JSON reader takes them.
 */
static void test_json_reader_strict(void **state)
{
        static const char *const ok[] = {
                "{\"a\": 1}", "{\"a\": -0.5e-3}", "[0, 1.5, 2E+3, -0]",
                "{\"s\": \"x\\n\\u0001\\/\\\\\\\"\"}",
        };
        static const char *const bad[] = {
                "{\"a\": nan}", "{\"a\": inf}", "{\"a\": -nan}", "{\"a\": 0x10}",
                "{\"a\": +1}", "{\"a\": .5}", "{\"a\": 1.}", "{\"a\": 01}", "{\"a\": 1e}",
                "{\"s\": \"a\tb\"}", "{\"s\": \"\\q\"}",
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                struct json *j = json_parse(ok[i]);

                if (!j)
                        fail_msg("refused %s", ok[i]);
                json_free(j);
        }
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct json *j = json_parse(bad[i]);

                if (j)
                        fail_msg("took %s", bad[i]);
        }
}

static void test_bench_all_quick_json_plot(void **state)
{
        char dir[] = "/tmp/brood-test-bench-XXXXXX", json[256], svg[256], svg2[256];
        const struct json *g, *holds;
        bool plot = have_gnuplot();
        struct json *j;
        char *text, *drawn;

        assert_non_null(mkdtemp(dir));
        snprintf(json, sizeof(json), "%s/all.json", dir);
        snprintf(svg, sizeof(svg), "%s/all.svg", dir);
        snprintf(svg2, sizeof(svg2), "%s/again.svg", dir);
        /* Without gnuplot the run and its JSON are still checked. */
        if (plot)
                assert_int_equal(brood_exit("bench all --quick --json %s --plot %s", json, svg), 0);
        else
                assert_int_equal(brood_exit("bench all --quick --json %s", json), 0);

        j = load_json(json);
        g = json_get(j, "groups");
        assert_non_null(g);
        /* ring: every size, every peer measured and its checksum verified */
        assert_true(json_num(json_get(g, "ring"), -1, "failures", NULL) == 0);
        assert_int_equal(json_get(json_get(g, "ring"), "streaming")->nkids, 6);
        assert_true(json_num(json_at(json_get(json_get(g, "ring"), "streaming"), 1), 0, "peers",
                             "brood_copy", "msgs_per_s", NULL) > 0);
        /* the hand-written floor too, in every row, its bytes verified and
         * brood measured against it */
        for (int i = 0; i < 6; i++) {
                const struct json *row = json_at(json_get(json_get(g, "ring"), "streaming"), i);
                const struct json *ok = json_get(json_get(json_get(row, "peers"), "raw_ring"),
                                                 "checksum_verified");

                assert_true(json_num(row, 0, "peers", "raw_ring", "msgs_per_s", NULL) > 0);
                assert_true(ok && ok->type == JSON_BOOL && ok->num == 1);
                assert_true(json_num(row, 0, "ratios", "brood_over_raw_ring", NULL) > 0);
        }
        /* round trip: brood and the raw shared-memory floor both measured */
        assert_true(json_num(json_get(g, "ring"), -1, "roundtrip_64B", "peers", "brood_default",
                             "p50_ns", NULL) > 0);
        assert_true(json_num(json_get(g, "ring"), -1, "roundtrip_64B", "peers", "raw_shm",
                             "p50_ns", NULL) > 0);
        /* paced consumers: both periods, both wait policies; every message
         * arrived (a loss fails the group), so there are doorbell counts */
        assert_int_equal(json_get(json_get(g, "ring"), "paced_64B")->nkids, 2);
        for (int i = 0; i < 2; i++) {
                const struct json *pc = json_at(json_get(json_get(g, "ring"), "paced_64B"), i);

                assert_true(json_num(pc, -1, "consumer_cpu_percent", NULL) > 0);
                assert_true(json_num(pc, -1, "doorbells_per_message", NULL) >= 0);
                assert_true(json_num(pc, -1, "nospin_consumer_cpu_percent", NULL) > 0);
                assert_true(json_num(pc, -1, "nospin_doorbells_per_message", NULL) >= 0);
        }
        assert_non_null(json_get(json_get(g, "spawn"), "results"));
        assert_true(json_get(json_get(g, "spawn"), "results")->nkids >= 4);
        assert_non_null(json_get(json_get(g, "pool"), "results"));
        /* the pool's lock beside a bare futex lock: every hand-off happened */
        holds = json_get(json_get(json_get(g, "pool"), "lock"), "holds");
        assert_non_null(holds);
        assert_int_equal(holds->nkids, 2);
        for (int i = 0; i < 2; i++) {
                const struct json *h = json_at(holds, i);

                assert_true(json_num(h, -1, "hold_ns", NULL) > 0);
                assert_true(json_num(h, -1, "owner_handoff_us", NULL) > 0);
                assert_true(json_num(h, -1, "futex_handoff_us", NULL) > 0);
        }
        json_free(j);
        if (!plot) {
                unlink(json);
                rmdir(dir);
                skip();         /* the plot's half: no gnuplot */
        }

        text = slurp(svg);
        assert_non_null(text);
        assert_non_null(strstr(text, "<svg"));
        assert_non_null(strstr(text, "Ring throughput"));
        assert_non_null(strstr(text, "Spawn and wait"));
        assert_non_null(strstr(text, "Shared pool"));

        /* The saved run, drawn again: the same SVG, byte for byte. */
        drawn = strdup(text);
        assert_non_null(drawn);
        assert_int_equal(brood_exit("bench --from %s --plot %s", json, svg2), 0);
        text = slurp(svg2);
        assert_non_null(text);
        assert_string_equal(text, drawn);
        /* To a log that an fd of brood's appends to (/dev/stdout,
         * /dev/stderr, /dev/fd/3): the picture is appended too, and what
         * the log held stays (it was renamed over: the log replaced by the
         * picture alone), and nothing after it (stdout's "wrote" line
         * followed the picture into the file). */
        for (int fd = 1; fd <= 3; fd++) {
                static const char *const dev[] = { "", "stdout", "stderr", "fd/3" };
                FILE *f = fopen(svg2, "we");
                char cmd[1024];

                assert_non_null(f);
                assert_true(fputs("kept\n", f) >= 0);
                assert_int_equal(fclose(f), 0);
                /* Not brood_exit(): its stdout is /dev/null. */
                snprintf(cmd, sizeof(cmd), "'%s' bench --from %s --plot /dev/%s %d>>%s%s",
                         getenv("BRD_BROOD"), json, dev[fd], fd, svg2, fd == 1 ? "" : " >/dev/null");
                assert_int_equal(system(cmd), 0);
                text = slurp(svg2);
                assert_non_null(text);
                assert_memory_equal(text, "kept\n", 5);
                assert_string_equal(text + 5, drawn);
        }
        free(drawn);
        /* --from runs nothing: with anything that would, or without
         * --plot, it is a usage error; a file that is no saved run fails. */
        assert_int_equal(brood_exit("bench --from %s", json), 2);
        assert_int_equal(brood_exit("bench ring --from %s --plot %s", json, svg2), 2);
        assert_int_equal(brood_exit("bench --quick --from %s --plot %s", json, svg2), 2);
        assert_int_equal(brood_exit("bench --from %s --json %s --plot %s", json, json, svg2), 2);
        assert_int_equal(brood_exit("bench --from %s/none.json --plot %s", dir, svg2), 1);
        assert_int_equal(brood_exit("bench --from %s --plot %s", svg, svg2), 1);
        assert_int_equal(brood_exit("bench --from /dev/zero --plot %s 2>/dev/null", svg2), 1);
        assert_int_equal(brood_exit("bench --from %s --plot %s 2>/dev/null", dir, svg2), 1);
        /* An unwritable path fails before gnuplot runs (it printed the
         * SVG on stdout before). */
        assert_int_equal(brood_exit("bench --from %s --plot %s/no/x.svg 2>/dev/null", json, dir), 1);
        unlink(json);
        unlink(svg);
        unlink(svg2);
        rmdir(dir);
}

/*
 * Neither a file name nor a saved run's strings become gnuplot commands:
 * the name went into the script's "set output '...'" and the spawn labels
 * into a data block, and gnuplot ran what they held (system()).
 */
static void test_bench_plot_takes_no_commands(void **state)
{
        static const char run[] =
                "{\"groups\": {\"spawn\": {\"results\": [{\"name\": "
                "\"x\\\"\\nEOD\\nsystem(\\\"touch pwned-label\\\")\\nprint \\\"\", "
                "\"p50_us\": 12}]}}}";
        char dir[] = "/tmp/brood-test-bench-XXXXXX", json[256], svg[256], svg2[256];
        FILE *f;

        (void)state;
        if (!have_gnuplot())
                skip();
        assert_non_null(mkdtemp(dir));
        snprintf(json, sizeof(json), "%s/run.json", dir);
        snprintf(svg, sizeof(svg), "%s/q'; system('touch pwned-name'); print '.svg", dir);
        snprintf(svg2, sizeof(svg2), "%s/label.svg", dir);
        f = fopen(json, "we");
        assert_non_null(f);
        assert_true(fputs(run, f) >= 0);
        assert_int_equal(fclose(f), 0);
        unlink("pwned-name");
        unlink("pwned-label");
        assert_int_equal(brood_exit("bench --from %s --plot \"%s\"", json, svg), 0);
        assert_int_equal(access(svg, F_OK), 0);         /* that very name */
        assert_int_equal(brood_exit("bench --from %s --plot %s 2>/dev/null", json, svg2), 0);
        assert_non_null(strstr(slurp(svg2), "<svg"));
        assert_int_not_equal(access("pwned-name", F_OK), 0);
        assert_int_not_equal(access("pwned-label", F_OK), 0);

        /* A gnuplot that quits without reading its script: an error (1),
         * not a brood killed by SIGPIPE, and no half-drawn file.  The
         * script of this run is larger than a pipe holds, so brood is
         * still writing it when gnuplot has gone. */
        {
                char fake[300], path[4400], saved[4096], quit[300], keep[300], link[300];
                char link2[300];
                struct stat lst;
                int rq, rk, rl, rl2;
                FILE *g;

                g = fopen(json, "we");
                assert_non_null(g);
                fputs("{\"groups\": {\"spawn\": {\"results\": [", g);
                for (int k = 0; k < 12000; k++)
                        fprintf(g, "%s{\"name\": \"spawner-%05d\", \"p50_us\": 12}", k ? "," : "", k);
                fputs("]}}}", g);
                assert_int_equal(fclose(g), 0);

                snprintf(fake, sizeof(fake), "%s/gnuplot", dir);
                snprintf(quit, sizeof(quit), "%s/quit.svg", dir);
                g = fopen(fake, "we");
                assert_non_null(g);
                assert_true(fputs("#!/bin/sh\nexit 3\n", g) >= 0);
                assert_int_equal(fclose(g), 0);
                assert_int_equal(chmod(fake, 0755), 0);
                assert_non_null(getenv("PATH"));
                snprintf(saved, sizeof(saved), "%s", getenv("PATH"));
                snprintf(path, sizeof(path), "%s:%s", dir, saved);
                /* A picture already there stays whole; what is not a
                 * regular file (a symlink here, /dev/null as root) is
                 * written in place and never removed; no temporary file
                 * is left beside them. */
                snprintf(keep, sizeof(keep), "%s/keep.svg", dir);
                snprintf(link, sizeof(link), "%s/link.svg", dir);
                g = fopen(keep, "we");
                assert_non_null(g);
                assert_true(fputs("old picture", g) >= 0);
                assert_int_equal(fclose(g), 0);
                assert_int_equal(symlink("/dev/null", link), 0);
                snprintf(link2, sizeof(link2), "%s/link2.svg", dir);
                assert_int_equal(symlink(keep, link2), 0);      /* to a picture: kept whole too */
                assert_int_equal(setenv("PATH", path, 1), 0);
                rq = brood_exit("bench --from %s --plot %s 2>/dev/null", json, quit);
                rk = brood_exit("bench --from %s --plot %s 2>/dev/null", json, keep);
                rl = brood_exit("bench --from %s --plot %s 2>/dev/null", json, link);
                rl2 = brood_exit("bench --from %s --plot %s 2>/dev/null", json, link2);
                assert_int_equal(setenv("PATH", saved, 1), 0);  /* before any assert */
                assert_int_equal(rl2, 1);
                assert_int_equal(rq, 1);
                assert_int_not_equal(access(quit, F_OK), 0);
                assert_int_equal(rk, 1);
                assert_string_equal(slurp(keep), "old picture");
                assert_int_equal(rl, 1);
                assert_int_equal(lstat(link, &lst), 0);
                assert_true(S_ISLNK(lst.st_mode));
                assert_int_equal(lstat(link2, &lst), 0);
                assert_true(S_ISLNK(lst.st_mode));

                /* SIGTERM (to brood alone) while gnuplot draws, and gnuplot
                 * then hangs: brood kills it, removes its temporary file
                 * and exits 128 + 15, at once.  It died at once before, and
                 * left gnuplot writing into that file (rmdir() below
                 * tells); then waited for the hanging gnuplot (60 s here). */
                g = fopen(fake, "we");
                assert_non_null(g);
                assert_true(fputs("#!/bin/sh\nkill -TERM $PPID\ncat >/dev/null\n"
                                  "echo '<svg>drawn</svg>'\nexec sleep 60\n", g) >= 0);
                assert_int_equal(fclose(g), 0);
                snprintf(quit, sizeof(quit), "%s/signalled.svg", dir);
                assert_int_equal(setenv("PATH", path, 1), 0);
                rq = brood_exit("bench --from %s --plot %s 2>/dev/null", json, quit);
                assert_int_equal(setenv("PATH", saved, 1), 0);
                assert_int_equal(rq, 128 + SIGTERM);
                assert_int_not_equal(access(quit, F_OK), 0);
                unlink(fake);
                unlink(link);
                unlink(link2);
                unlink(keep);
        }
        unlink(json);
        unlink(svg);
        unlink(svg2);
        assert_int_equal(rmdir(dir), 0);       /* nothing left behind */
}

static void test_bench_passes_options(void **state)
{
        char dir[] = "/tmp/brood-test-bench-XXXXXX", json[256];
        const struct json *ring, *rows, *sides;
        struct json *j;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(json, sizeof(json), "%s/ring.json", dir);
        assert_int_equal(brood_exit("bench ring --quick --json %s -- --size 64 --passes 1 "
                                    "--zc-side consumer", json), 0);
        j = load_json(json);
        ring = json_get(json_get(j, "groups"), "ring");
        assert_non_null(ring);
        assert_true(json_num(ring, -1, "passes", NULL) == 1);
        rows = json_get(ring, "streaming");
        /* only the 64 B row ran */
        assert_true(json_num(json_at(rows, 1), 0, "peers", "brood_copy", "msgs_per_s", NULL) > 0);
        assert_true(json_num(json_at(rows, 0), -1, "peers", "brood_copy", "msgs_per_s", NULL) < 0);
        /* the zero-copy column ran (its checksum pass too) with a copying producer */
        assert_true(json_num(json_at(rows, 1), 0, "peers", "brood_zerocopy", "msgs_per_s", NULL) > 0);
        sides = json_get(ring, "zerocopy_sides");
        assert_non_null(sides);
        assert_int_equal(sides->type, JSON_STR);
        assert_string_equal(sides->str, "consumer");
        json_free(j);
        unlink(json);
        rmdir(dir);
        /* Options after -- need one group, and no plot; the program's own
         * usage errors are ours (2), and save nothing; its --help is its
         * help (0). */
        assert_int_equal(brood_exit("bench all -- --size 64"), 2);
        assert_int_equal(brood_exit("bench ring --plot /nonexistent/x.svg -- --size 64"), 2);
        assert_int_equal(brood_exit("bench ring -- --bogus 2>/dev/null"), 2);
        assert_int_equal(brood_exit("bench ring -- --zc-side neither 2>/dev/null"), 2);
        memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
        assert_non_null(mkdtemp(dir));
        snprintf(json, sizeof(json), "%s/pool.json", dir);
        assert_int_equal(brood_exit("bench pool --json %s -- --bogus 2>/dev/null", json), 2);
        assert_int_not_equal(access(json, F_OK), 0);
        rmdir(dir);
        assert_int_equal(brood_exit("bench ring -- --help"), 0);
        assert_int_equal(brood_exit("bench spawn -- --help"), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_reader_strict),
                cmocka_unit_test(test_bench_all_quick_json_plot),
                cmocka_unit_test(test_bench_passes_options),
                cmocka_unit_test(test_bench_plot_takes_no_commands),
        };

        return cmocka_run_group_tests_name("tools-bench", tests, NULL, NULL);
}
