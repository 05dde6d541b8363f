// test_report.c -- the report suite: metrics.csv rows (exact text, empty cells, merging of a
// step and its evaluation), samples.txt blocks, report_load round trips and its max_step cut,
// malformed files, the SVG loss curve (structure, escaping, edge cases, well-formedness), and
// gpt plot's chart of several runs (loading, coordinates, --ymax, bad input).
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_ds.h>

#include "common/common.h"
#include "tests/tests.h"
#include "report/plot.h"
#include "report/report.h"

// ---------------------------------------------------------------------------------------------
// Helpers.

static MetricsRow step_row(long step, float batch_loss, float lr, float grad_norm, float tokens_per_s,
                           double elapsed_s) {
    return (MetricsRow){step, batch_loss, NAN, NAN, lr, grad_norm, tokens_per_s, elapsed_s};
}

static const unsigned char *u8(const char *s) { return (const unsigned char *)s; }

// A fresh empty directory under /tmp; run_dir_remove deletes what a report writes and the
// directory itself, and fails the test if anything else (a stray temp file) was left there.
static char *run_dir_create(void) {
    char *dir = xstrdup("/tmp/gpt_test_report_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void run_dir_remove(char *dir) {
    const char *names[] = {"metrics.csv", "loss.svg", "samples.txt"};
    for (size_t i = 0; i < 3; i++) {
        char *p = path_in(dir, names[i]);
        unlink(p);
        free(p);
    }
    ck_assert_msg(rmdir(dir) == 0, "'%s' holds files the report did not name", dir);
    free(dir);
}

static void put_file(const char *dir, const char *name, const char *text) {
    char *p = path_in(dir, name);
    char err[256] = "";
    ck_assert_msg(write_file_atomic(p, text, strlen(text), err, sizeof err), "%s", err);
    free(p);
}

// The file's text, NUL-terminated (read_file adds the NUL).
static char *get_file(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    char err[256] = "";
    size_t len;
    char *text = (char *)read_file(p, &len, err, sizeof err);
    ck_assert_msg(text != NULL, "%s", err);
    ck_assert_uint_eq(strlen(text), len);
    free(p);
    return text;
}

// The text of line k (1-based) of s, in a static buffer.
static const char *line_of(const char *s, int k) {
    static char buf[512];
    for (int i = 1; i < k && s; i++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    ck_assert_msg(s && *s, "no line %d", k);
    size_t n = strcspn(s, "\n");
    ck_assert_uint_lt(n, sizeof buf);
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static size_t count_of(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

// NAN equal to NAN, others within rel of each other (the CSV's %.6g keeps 6 digits).
static bool same_value(double a, double b, double rel) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

static void assert_rows_equal(const MetricsRow *a, const MetricsRow *b) {
    ck_assert_int_eq(a->step, b->step);
    ck_assert_msg(same_value(a->batch_loss, b->batch_loss, 1e-5), "step %ld batch_loss %g vs %g", a->step,
                  a->batch_loss, b->batch_loss);
    ck_assert_msg(same_value(a->train_loss, b->train_loss, 1e-5), "step %ld train_loss", a->step);
    ck_assert_msg(same_value(a->val_loss, b->val_loss, 1e-5), "step %ld val_loss", a->step);
    ck_assert_msg(same_value(a->lr, b->lr, 1e-5), "step %ld lr", a->step);
    ck_assert_msg(same_value(a->grad_norm, b->grad_norm, 1e-5), "step %ld grad_norm", a->step);
    ck_assert_msg(isnan(a->tokens_per_s) ? isnan(b->tokens_per_s) : fabs(a->tokens_per_s - b->tokens_per_s) <= 0.05,
                  "step %ld tokens_per_s", a->step);
    ck_assert_msg(isnan(a->elapsed_s) ? isnan(b->elapsed_s) : fabs(a->elapsed_s - b->elapsed_s) <= 0.0005,
                  "step %ld elapsed_s", a->step);
}

// A small run: an evaluation at step 0, steps 1..40 with an evaluation every 10 steps
// (recorded after the step, as the training loop does), and a sample at 20 and at 40.
static void small_run(Report *r) {
    report_add_eval(r, 0, 4.25f, 4.5f, 0.0);
    for (long s = 1; s <= 40; s++) {
        MetricsRow row = step_row(s, 4.0f - 0.05f * (float)s, 1e-3f * (float)s / 40, 0.5f + 0.01f * (float)s,
                                  20000.0f + (float)s, 0.25 * (double)s);
        report_add_step(r, &row);
        if (s % 10 == 0) report_add_eval(r, s, 4.0f - 0.05f * (float)s, 4.1f - 0.05f * (float)s, 0.25 * (double)s);
        if (s % 20 == 0) {
            char text[64];
            snprintf(text, sizeof text, "sample text at %ld\nsecond line", s);
            report_add_sample(r, s, s == 20 ? NULL : "prompt: \"\\n\"", u8(text), strlen(text));
        }
    }
}

// A small XML checker: every tag closed in order, one root element, attribute values quoted
// and free of '<', and every '&' starting an entity. NULL when fine, else a reason.
static const char *xml_problem(const char *s) {
    static char why[128];
    const char *stack[64];
    size_t lens[64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p) return "unterminated <?xml declaration";
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            bool ok = false;
            for (size_t i = 0; i < 5; i++) ok = ok || strncmp(p, entities[i], strlen(entities[i])) == 0;
            if (!ok) return "a bare '&'";
            p++;
            continue;
        }
        if (*p == '>') return "a bare '>' in text";
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p)) return "text outside the root element";
            p++;
            continue;
        }
        bool closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nlen = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:");
        if (nlen == 0) return "a '<' that starts no tag";
        const char *q = name + nlen;
        char quote = 0;
        for (; *q && (quote || *q != '>'); q++) {
            if (quote) {
                if (*q == quote) quote = 0;
                else if (*q == '<') return "a '<' inside an attribute value";
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            } else if (*q == '=' && q[1] != '"' && q[1] != '\'') {
                return "an unquoted attribute value";
            }
        }
        if (!*q) return "an unterminated tag";
        if (closing) {
            if (depth == 0 || lens[depth - 1] != nlen || strncmp(stack[depth - 1], name, nlen) != 0) {
                snprintf(why, sizeof why, "</%.*s> closes no open <%.*s>", (int)nlen, name, (int)nlen, name);
                return why;
            }
            depth--;
        } else {
            if (depth == 0) roots++;
            if (q[-1] != '/') {
                if (depth == 64) return "nested too deep";
                stack[depth] = name;
                lens[depth++] = nlen;
            }
        }
        p = q + 1;
    }
    if (depth) {
        snprintf(why, sizeof why, "<%.*s> is never closed", (int)lens[depth - 1], stack[depth - 1]);
        return why;
    }
    return roots == 1 ? NULL : "not exactly one root element";
}

// The structural checks every SVG we make must pass.
static void assert_good_svg(const char *svg) {
    ck_assert_msg(strncmp(svg, "<?xml", 5) == 0 || strncmp(svg, "<svg", 4) == 0, "starts with '%.20s'", svg);
    ck_assert_ptr_nonnull(strstr(svg, "</svg>"));
    ck_assert_uint_eq(count_of(svg, "<svg"), count_of(svg, "</svg>"));
    ck_assert_uint_eq(count_of(svg, "<g"), count_of(svg, "</g>"));
    ck_assert_uint_eq(count_of(svg, "<text"), count_of(svg, "</text>"));
    const char *why = xml_problem(svg);
    ck_assert_msg(why == NULL, "SVG is not well-formed: %s", why);
    ck_assert_ptr_null(strcasestr(svg, "nan"));
    ck_assert_ptr_null(strcasestr(svg, "inf"));
    ck_assert_ptr_null(strstr(svg, "<script"));
    ck_assert_ptr_null(strstr(svg, "href"));  // nothing external
}

// The number of points in the first polyline stroked with color (0 if none).
static size_t polyline_points(const char *svg, const char *color) {
    char key[64];
    snprintf(key, sizeof key, "<polyline fill=\"none\" stroke=\"%s\"", color);
    const char *p = strstr(svg, key);
    if (!p) return 0;
    p = strstr(p, "points=\"");
    ck_assert_ptr_nonnull(p);
    p += 8;
    size_t n = 1;
    for (; *p != '"'; p++) n += *p == ' ';
    return n;
}

// ---------------------------------------------------------------------------------------------
// Rows in memory.

START_TEST(test_add_step_appends_rows_in_order) {
    Report r;
    report_init(&r);
    for (long s = 1; s <= 3; s++) {
        MetricsRow row = step_row(s, 3.0f, 1e-3f, 1.0f, 100.0f, (double)s);
        report_add_step(&r, &row);
    }
    ck_assert_int_eq(arrlen(r.rows), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r.rows[i].step, i + 1);
        ck_assert(isnan(r.rows[i].train_loss) && isnan(r.rows[i].val_loss));
    }
    report_free(&r);
    ck_assert_ptr_null(r.rows);
}
END_TEST

START_TEST(test_eval_after_step_fills_that_row) {
    Report r;
    report_init(&r);
    MetricsRow row = step_row(10, 3.5f, 1e-3f, 0.75f, 1000.0f, 5.0);
    report_add_step(&r, &row);
    report_add_eval(&r, 10, 3.25f, 3.375f, 6.0);
    ck_assert_int_eq(arrlen(r.rows), 1);
    ck_assert_float_eq(r.rows[0].batch_loss, 3.5f);
    ck_assert_float_eq(r.rows[0].train_loss, 3.25f);
    ck_assert_float_eq(r.rows[0].val_loss, 3.375f);
    ck_assert_double_eq(r.rows[0].elapsed_s, 5.0);  // the step's training time stays
    report_free(&r);
}
END_TEST

START_TEST(test_eval_of_a_new_step_appends_a_row_with_only_the_eval) {
    Report r;
    report_init(&r);
    report_add_eval(&r, 0, 4.25f, 4.5f, 0.0);
    ck_assert_int_eq(arrlen(r.rows), 1);
    const MetricsRow *w = &r.rows[0];
    ck_assert_int_eq(w->step, 0);
    ck_assert_float_eq(w->train_loss, 4.25f);
    ck_assert_float_eq(w->val_loss, 4.5f);
    ck_assert_double_eq(w->elapsed_s, 0.0);
    ck_assert(isnan(w->batch_loss) && isnan(w->lr) && isnan(w->grad_norm) && isnan(w->tokens_per_s));
    report_free(&r);
}
END_TEST

START_TEST(test_step_after_its_eval_merges_into_the_eval_row) {
    Report r;
    report_init(&r);
    report_add_eval(&r, 7, 3.25f, 3.375f, 1.0);
    MetricsRow row = step_row(7, 3.5f, 2e-4f, 0.5f, 900.0f, 2.0);
    report_add_step(&r, &row);
    ck_assert_int_eq(arrlen(r.rows), 1);
    const MetricsRow *w = &r.rows[0];
    ck_assert_float_eq(w->batch_loss, 3.5f);
    ck_assert_float_eq(w->train_loss, 3.25f);
    ck_assert_float_eq(w->val_loss, 3.375f);
    ck_assert_float_eq(w->lr, 2e-4f);
    ck_assert_float_eq(w->grad_norm, 0.5f);
    ck_assert_float_eq(w->tokens_per_s, 900.0f);
    ck_assert_double_eq(w->elapsed_s, 2.0);
    report_free(&r);
}
END_TEST

#ifndef NDEBUG  // an assert
START_TEST(test_rows_out_of_step_order_are_a_caller_bug) {
    Report r;
    report_init(&r);
    MetricsRow row = step_row(5, 3.0f, 1e-3f, 1.0f, 1.0f, 1.0);
    report_add_step(&r, &row);
    report_add_eval(&r, 4, 3.0f, 3.0f, 1.0);  // aborts
}
END_TEST
#endif

START_TEST(test_sample_blocks_have_step_headers_and_a_blank_line) {
    Report r;
    report_init(&r);
    report_add_sample(&r, 500, NULL, u8("To be\nor not"), 12);
    report_add_sample(&r, 1000, "prompt: \"\\n\"", u8("ends with newline\n"), 18);
    report_add_sample(&r, 1500, "a\nb\tc\x01", u8(""), 0);
    const char *expect = "--- step 500 ---\nTo be\nor not\n\n"
                         "--- step 1000 (prompt: \"\\n\") ---\nends with newline\n\n"
                         "--- step 1500 (a\\nb\\tc\\x01) ---\n\n";
    ck_assert_uint_eq(r.samples.len, strlen(expect));
    ck_assert_mem_eq(r.samples.s, expect, strlen(expect));
    report_free(&r);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Files.

START_TEST(test_write_gives_the_exact_csv_text) {
    Report r;
    report_init(&r);
    report_add_eval(&r, 0, 4.17f, 4.18f, 0.5);
    MetricsRow row = step_row(1, 4.2f, 3e-4f, 1.5f, 12345.67f, 1.25);
    report_add_step(&r, &row);
    row = step_row(2, 4.125f, 3e-5f, 2.5f, 100.0f, 2.5);
    report_add_step(&r, &row);
    report_add_eval(&r, 2, 3.9f, 4.0f, 2.75);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "test run", err, sizeof err), "%s", err);
    char *csv = get_file(dir, "metrics.csv");
    ck_assert_str_eq(line_of(csv, 1), "step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s");
    ck_assert_str_eq(line_of(csv, 2), "0,,4.17,4.18,,,,0.500");
    ck_assert_str_eq(line_of(csv, 3), "1,4.2,,,0.0003,1.5,12345.7,1.250");
    ck_assert_str_eq(line_of(csv, 4), "2,4.125,3.9,4,3e-05,2.5,100.0,2.500");
    ck_assert_uint_eq(count_of(csv, "\n"), 4);
    ck_assert_int_eq(csv[strlen(csv) - 1], '\n');
    free(csv);
    run_dir_remove(dir);
    report_free(&r);
}
END_TEST

START_TEST(test_non_finite_values_are_empty_cells) {
    Report r;
    report_init(&r);
    MetricsRow row = {3, INFINITY, NAN, -INFINITY, NAN, INFINITY, NAN, NAN};
    report_add_step(&r, &row);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "t", err, sizeof err), "%s", err);
    char *csv = get_file(dir, "metrics.csv");
    ck_assert_str_eq(line_of(csv, 2), "3,,,,,,,");
    free(csv);
    run_dir_remove(dir);
    report_free(&r);
}
END_TEST

START_TEST(test_write_writes_all_three_files) {
    Report r;
    report_init(&r);
    small_run(&r);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "small run", err, sizeof err), "%s", err);
    char *csv = get_file(dir, "metrics.csv");
    ck_assert_uint_eq(count_of(csv, "\n"), 42);  // header, step 0, steps 1..40
    char *svg = get_file(dir, "loss.svg");
    assert_good_svg(svg);
    char *samples = get_file(dir, "samples.txt");
    ck_assert_str_eq(samples, "--- step 20 ---\nsample text at 20\nsecond line\n\n"
                              "--- step 40 (prompt: \"\\n\") ---\nsample text at 40\nsecond line\n\n");
    free(csv);
    free(svg);
    free(samples);
    // Writing again replaces the files (and leaves no temp files behind: run_dir_remove checks).
    ck_assert_msg(report_write(&r, dir, "small run", err, sizeof err), "%s", err);
    run_dir_remove(dir);
    report_free(&r);
}
END_TEST

START_TEST(test_write_into_a_missing_directory_fails_naming_the_file) {
    Report r;
    report_init(&r);
    small_run(&r);
    char err[256] = "";
    ck_assert(!report_write(&r, "/nonexistent/gpt_report_dir", "t", err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/gpt_report_dir/metrics.csv") != NULL, "%s", err);
    report_free(&r);
}
END_TEST

START_TEST(test_load_round_trips_rows_and_samples) {
    Report r;
    report_init(&r);
    small_run(&r);
    MetricsRow odd = {41, NAN, 1.0f / 3.0f, NAN, 1.234567e-7f, 123456789.0f, 12.34f, 1e6 + 0.125};
    report_add_step(&r, &odd);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "t", err, sizeof err), "%s", err);
    Report back;
    report_init(&back);
    ck_assert_msg(report_load(&back, dir, 1000000, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(back.rows), arrlen(r.rows));
    for (ptrdiff_t i = 0; i < arrlen(r.rows); i++) assert_rows_equal(&r.rows[i], &back.rows[i]);
    ck_assert_uint_eq(back.samples.len, r.samples.len);
    ck_assert_mem_eq(back.samples.s, r.samples.s, r.samples.len);
    // The loaded report writes the same files again.
    char *csv1 = get_file(dir, "metrics.csv");
    ck_assert_msg(report_write(&back, dir, "t", err, sizeof err), "%s", err);
    char *csv2 = get_file(dir, "metrics.csv");
    ck_assert_str_eq(csv1, csv2);
    free(csv1);
    free(csv2);
    run_dir_remove(dir);
    report_free(&back);
    report_free(&r);
}
END_TEST

START_TEST(test_load_keeps_only_what_happened_up_to_max_step) {
    Report r;
    report_init(&r);
    small_run(&r);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "t", err, sizeof err), "%s", err);
    Report back;
    report_init(&back);
    ck_assert_msg(report_load(&back, dir, 25, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(back.rows), 26);  // steps 0..25
    ck_assert_int_eq(arrlast(back.rows).step, 25);
    for (ptrdiff_t i = 0; i < arrlen(back.rows); i++) assert_rows_equal(&r.rows[i], &back.rows[i]);
    const char *first = "--- step 20 ---\nsample text at 20\nsecond line\n\n";
    ck_assert_uint_eq(back.samples.len, strlen(first));
    ck_assert_mem_eq(back.samples.s, first, strlen(first));
    // Steps before the first sample: no samples at all; max_step 0: only the first eval.
    ck_assert_msg(report_load(&back, dir, 19, err, sizeof err), "%s", err);
    ck_assert_uint_eq(back.samples.len, 0);
    ck_assert_msg(report_load(&back, dir, 0, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(back.rows), 1);
    ck_assert_float_eq(back.rows[0].val_loss, 4.5f);
    run_dir_remove(dir);
    report_free(&back);
    report_free(&r);
}
END_TEST

START_TEST(test_load_of_a_directory_without_files_is_an_empty_report) {
    char *dir = run_dir_create();
    Report r;
    report_init(&r);
    small_run(&r);  // load replaces what was there
    char err[256] = "";
    ck_assert_msg(report_load(&r, dir, 100, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(r.rows), 0);
    ck_assert_uint_eq(r.samples.len, 0);
    report_free(&r);
    run_dir_remove(dir);
}
END_TEST

START_TEST(test_load_reads_samples_with_text_before_the_first_block) {
    char *dir = run_dir_create();
    put_file(dir, "samples.txt", "notes\n--- step 5 ---\nfive\n\n--- step 50 (x) ---\nfifty\n\n--- step 500 ---\nz");
    Report r;
    report_init(&r);
    char err[256] = "";
    ck_assert_msg(report_load(&r, dir, 50, err, sizeof err), "%s", err);
    const char *expect = "notes\n--- step 5 ---\nfive\n\n--- step 50 (x) ---\nfifty\n\n";
    ck_assert_uint_eq(r.samples.len, strlen(expect));
    ck_assert_mem_eq(r.samples.s, expect, strlen(expect));
    // A line that only looks like a header ("--- step 9x ---") belongs to the block it is in.
    const char *lookalikes = "--- step 1 ---\n--- step 9x ---\n--- step 7\n\n";
    put_file(dir, "samples.txt", lookalikes);
    ck_assert_msg(report_load(&r, dir, 1, err, sizeof err), "%s", err);
    ck_assert_uint_eq(r.samples.len, strlen(lookalikes));
    report_free(&r);
    run_dir_remove(dir);
}
END_TEST

// Loads a metrics.csv of this text: must fail with exactly this message (after the path).
static void assert_load_fails(const char *csv, const char *message) {
    char *dir = run_dir_create();
    put_file(dir, "metrics.csv", csv);
    Report r;
    report_init(&r);
    report_add_eval(&r, 0, 1.0f, 2.0f, 0.0);
    char err[256] = "";
    ck_assert_msg(!report_load(&r, dir, 1000, err, sizeof err), "loaded: %s", csv);
    char expect[512];
    snprintf(expect, sizeof expect, "'%s/metrics.csv' %s", dir, message);
    ck_assert_str_eq(err, expect);
    // A failed load leaves the report as it was.
    ck_assert_int_eq(arrlen(r.rows), 1);
    ck_assert_float_eq(r.rows[0].val_loss, 2.0f);
    report_free(&r);
    run_dir_remove(dir);
}

#define HEADER "step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n"

START_TEST(test_load_of_malformed_csv_names_the_line) {
    assert_load_fails(HEADER "1,2,,,0.1,1,1,1\n2,2,,,0.1,1\n",
                      "line 3 is malformed (expected 8 comma-separated fields)");
    assert_load_fails(HEADER "1,2,,,0.1,1,1,1,9\n", "line 2 is malformed (expected 8 comma-separated fields)");
    assert_load_fails(HEADER "1,2,,,0.1,1,1,1\n\n", "line 3 is malformed (expected 8 comma-separated fields)");
    assert_load_fails(HEADER "1,2,,,0.1,1,1,1\r\n",
                      "line 2 is malformed (elapsed_s '1?' is not a finite number or empty)");
    assert_load_fails(HEADER "1,2,x,,0.1,1,1,1\n", "line 2 is malformed (train_loss 'x' is not a finite number or empty)");
    assert_load_fails(HEADER "1,2,nan,,0.1,1,1,1\n",
                      "line 2 is malformed (train_loss 'nan' is not a finite number or empty)");
    assert_load_fails(HEADER "1,1e39,,,0.1,1,1,1\n",
                      "line 2 is malformed (batch_loss '1e39' is not a finite number or empty)");
    assert_load_fails(HEADER ",2,,,0.1,1,1,1\n", "line 2 is malformed (step '' is not a whole number >= 0)");
    assert_load_fails(HEADER "-1,2,,,0.1,1,1,1\n", "line 2 is malformed (step '-1' is not a whole number >= 0)");
    assert_load_fails(HEADER "1.5,2,,,0.1,1,1,1\n", "line 2 is malformed (step '1.5' is not a whole number >= 0)");
    assert_load_fails(HEADER "2,2,,,0.1,1,1,1\n2,2,,,0.1,1,1,1\n",
                      "line 3 is malformed (step 2 does not come after step 2)");
    assert_load_fails("step,loss\n1,2\n",
                      "line 1 is not the metrics header (expected '" "step,batch_loss,train_loss,val_loss,lr,"
                      "grad_norm,tokens_per_s,elapsed_s')");
    assert_load_fails("", "line 1 is not the metrics header (expected '" "step,batch_loss,train_loss,val_loss,lr,"
                          "grad_norm,tokens_per_s,elapsed_s')");
}
END_TEST

START_TEST(test_load_accepts_a_last_line_without_newline) {
    char *dir = run_dir_create();
    put_file(dir, "metrics.csv", HEADER "0,,4,4.5,,,,0.000\n1,3.5,,,0.001,1,2,3");
    Report r;
    report_init(&r);
    char err[256] = "";
    ck_assert_msg(report_load(&r, dir, 10, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(r.rows), 2);
    ck_assert_float_eq(r.rows[1].batch_loss, 3.5f);
    ck_assert_double_eq(r.rows[1].elapsed_s, 3.0);
    ck_assert(isnan(r.rows[0].batch_loss));
    report_free(&r);
    run_dir_remove(dir);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// The SVG.

START_TEST(test_svg_has_curves_axes_and_legend) {
    Report r;
    report_init(&r);
    report_add_eval(&r, 0, 4.2f, 4.21f, 0);
    for (long s = 1; s <= 2000; s++) {
        MetricsRow row = step_row(s, 1.5f + 2.7f * expf(-(float)s / 300.0f), 1e-3f, 1, 1, (double)s);
        report_add_step(&r, &row);
        if (s % 250 == 0) report_add_eval(&r, s, 1.5f + 2.6f * expf(-(float)s / 300), 1.6f + 2.6f * expf(-(float)s / 300), 0);
    }
    char *svg = report_svg(&r, "shakespeare d128 L4");
    assert_good_svg(svg);
    ck_assert_ptr_nonnull(strstr(svg, "width=\"800\" height=\"480\""));
    ck_assert_uint_eq(polyline_points(svg, "#9ecae1"), 2000);  // batch loss, one point per step
    ck_assert_uint_eq(polyline_points(svg, "#1f77b4"), 9);     // train eval at 0, 250, ..., 2000
    ck_assert_uint_eq(polyline_points(svg, "#d62728"), 9);     // val eval
    ck_assert_uint_eq(count_of(svg, "<circle"), 18 + 2);      // the markers and two in the legend
    ck_assert_ptr_nonnull(strstr(svg, ">batch loss</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">train loss (eval)</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">val loss (eval)</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">step</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">loss</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">shakespeare d128 L4</text>"));
    // x ticks every 500 steps to 2000; y from 1.5 to 4.5 in steps of 0.5.
    const char *xt[] = {">0</text>", ">500</text>", ">1000</text>", ">1500</text>", ">2000</text>"};
    for (size_t i = 0; i < 5; i++) ck_assert_msg(strstr(svg, xt[i]) != NULL, "no x tick %s", xt[i]);
    ck_assert_ptr_null(strstr(svg, ">2500</text>"));
    const char *yt[] = {">1.5</text>", ">2.0</text>", ">3.0</text>", ">4.5</text>"};
    for (size_t i = 0; i < 4; i++) ck_assert_msg(strstr(svg, yt[i]) != NULL, "no y tick %s", yt[i]);
    // The last evaluation, annotated under the title.
    char note[96];
    snprintf(note, sizeof note, "val %.4f at step 2000", r.rows[2000].val_loss);
    ck_assert_msg(strstr(svg, note) != NULL, "no '%s'", note);
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_escapes_the_title) {
    Report r;
    report_init(&r);
    small_run(&r);
    char *svg = report_svg(&r, "a<b & c>d \"q\"");
    assert_good_svg(svg);
    ck_assert_ptr_nonnull(strstr(svg, "a&lt;b &amp; c&gt;d &quot;q&quot;"));
    ck_assert_ptr_null(strstr(svg, "a<b"));
    free(svg);
    // Control characters and bytes that are not UTF-8 cannot break the document either;
    // well-formed UTF-8 passes through.
    svg = report_svg(&r, "x\x01y\xff\xc3(\xe2\x82\xac");
    assert_good_svg(svg);
    ck_assert_ptr_nonnull(strstr(svg, "x y\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac"));
    free(svg);
    svg = report_svg(&r, NULL);
    assert_good_svg(svg);
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_ignores_non_finite_values) {
    Report r;
    report_init(&r);
    report_add_eval(&r, 0, NAN, INFINITY, 0);
    for (long s = 1; s <= 50; s++) {
        float loss = s % 7 == 0 ? NAN : s % 11 == 0 ? INFINITY : 3.0f - 0.02f * (float)s;
        MetricsRow row = step_row(s, loss, NAN, NAN, NAN, NAN);
        report_add_step(&r, &row);
        if (s % 10 == 0) report_add_eval(&r, s, s == 30 ? NAN : 2.5f, s == 20 ? -INFINITY : 2.6f, NAN);
    }
    char *svg = report_svg(&r, "odd values");
    assert_good_svg(svg);
    ck_assert_uint_eq(polyline_points(svg, "#9ecae1"), 50 - 7 - 4);  // 7 NANs, 4 infinities
    ck_assert_uint_eq(polyline_points(svg, "#1f77b4"), 4);
    ck_assert_uint_eq(polyline_points(svg, "#d62728"), 4);
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_of_zero_and_one_rows) {
    Report r;
    report_init(&r);
    char *svg = report_svg(&r, "empty");
    assert_good_svg(svg);
    ck_assert_uint_eq(polyline_points(svg, "#9ecae1"), 0);
    ck_assert_ptr_nonnull(strstr(svg, ">val loss (eval)</text>"));
    free(svg);
    report_add_eval(&r, 0, 4.17f, 4.17f, 0);
    svg = report_svg(&r, "one eval");
    assert_good_svg(svg);
    ck_assert_ptr_nonnull(strstr(svg, "val 4.1700 at step 0"));
    ck_assert_uint_eq(count_of(svg, "<circle"), 2 + 2);
    free(svg);
    report_free(&r);
    report_init(&r);
    MetricsRow row = step_row(1, 3.0f, 1e-3f, 1, 1, 1);
    report_add_step(&r, &row);
    svg = report_svg(&r, "one step");
    assert_good_svg(svg);
    ck_assert_uint_eq(count_of(svg, "<circle"), 1 + 2);
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_gives_equal_values_a_range) {
    Report r;
    report_init(&r);
    for (long s = 1; s <= 10; s++) {
        MetricsRow row = step_row(s, 2.0f, 1e-3f, 1, 1, 1);
        report_add_step(&r, &row);
    }
    char *svg = report_svg(&r, "flat");
    assert_good_svg(svg);
    ck_assert_ptr_nonnull(strstr(svg, ">2.00</text>"));  // the level is a tick, labelled
    ck_assert_ptr_nonnull(strstr(svg, ">1.90</text>"));
    free(svg);
    report_free(&r);
    // All zero: the axis starts at zero instead of going negative.
    report_init(&r);
    MetricsRow zero = step_row(1, 0.0f, 1e-3f, 1, 1, 1);
    report_add_step(&r, &zero);
    svg = report_svg(&r, "zero");
    assert_good_svg(svg);
    ck_assert_ptr_null(strstr(svg, ">-"));
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_downsamples_long_runs) {
    Report r;
    report_init(&r);
    for (long s = 1; s <= 100000; s++) {
        MetricsRow row = step_row(s, 2.0f + (float)(s % 13) / 13.0f, 1e-3f, 1, 1, 1);
        report_add_step(&r, &row);
    }
    char *svg = report_svg(&r, "long");
    assert_good_svg(svg);
    ck_assert_uint_eq(polyline_points(svg, "#9ecae1"), 2000);
    ck_assert_ptr_nonnull(strstr(svg, ">100000</text>"));
    ck_assert_uint_lt(strlen(svg), 100000);
    free(svg);
    report_free(&r);
}
END_TEST

START_TEST(test_svg_passes_xmllint_when_available) {
    if (system("command -v xmllint >/dev/null 2>&1") != 0) return;  // optional tool
    Report r;
    report_init(&r);
    small_run(&r);
    char *dir = run_dir_create();
    char err[256] = "";
    ck_assert_msg(report_write(&r, dir, "lint <me> & \xe2\x82\xac", err, sizeof err), "%s", err);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s/loss.svg'", dir);
    ck_assert_int_eq(system(cmd), 0);
    run_dir_remove(dir);
    report_free(&r);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// gpt plot: val loss against minutes for several runs.

// A run directory whose metrics.csv has evaluations at 0, 5 and 10 minutes (val 3.0, 2.0,
// 1.5) between rows without one, and beside it a CSV file of evaluations at 1, 4 and 8
// minutes (val 2.8, 2.25, 1.8).
#define PLOT_METRICS                                                        \
    "step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n" \
    "0,,3.1,3.0,,,,0\n"                                                     \
    "10,2.9,,,0.001,1,100,150\n"                                            \
    "20,2.5,2.1,2.0,0.001,1,100,300\n"                                      \
    "30,2.0,,,0.001,1,100,450\n"                                            \
    "40,1.7,1.6,1.5,0.001,1,100,600\n"
#define PLOT_CSV "elapsed_s,val_loss\n60,2.8\n240,2.25\n480,1.8\n"

// Makes the directory and the files, loads both series, returns the directory.
static char *load_two_series(PlotSeries s[2]) {
    char *dir = run_dir_create();
    put_file(dir, "metrics.csv", PLOT_METRICS);
    put_file(dir, "torch.csv", PLOT_CSV);
    char *csv = path_in(dir, "torch.csv");
    char err[256] = "";
    ck_assert_msg(plot_series_load(&s[0], "ours", dir, err, sizeof err), "%s", err);
    ck_assert_msg(plot_series_load(&s[1], "torch <fp32>", csv, err, sizeof err), "%s", err);
    free(csv);
    return dir;
}

static void remove_plot_files(char *dir) {
    char *csv = path_in(dir, "torch.csv");
    unlink(csv);
    free(csv);
    run_dir_remove(dir);
}

static void free_two_series(char *dir, PlotSeries s[2]) {
    plot_series_free(&s[0]);
    plot_series_free(&s[1]);
    remove_plot_files(dir);
}

// The points="..." text of the first polyline stroked with color ("" if none), in a static buffer.
static const char *polyline_text(const char *svg, const char *color) {
    static char buf[1024];
    char key[64];
    snprintf(key, sizeof key, "<polyline fill=\"none\" stroke=\"%s\"", color);
    const char *p = strstr(svg, key);
    buf[0] = 0;
    if (!p) return buf;
    p = strstr(p, "points=\"");
    ck_assert_ptr_nonnull(p);
    p += 8;
    const char *q = strchr(p, '"');
    ck_assert_uint_lt((size_t)(q - p), sizeof buf);
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = 0;
    return buf;
}

START_TEST(test_plot_loads_val_rows_of_a_run_and_a_csv) {
    PlotSeries s[2];
    char *dir = load_two_series(s);
    ck_assert_str_eq(s[0].label, "ours");
    ck_assert_int_eq(arrlen(s[0].pts), 3);  // only the rows with a val_loss
    const double want0[3][2] = {{0, 3.0}, {5, 2.0}, {10, 1.5}};
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(s[0].pts[i].x, want0[i][0], 1e-12);
        ck_assert_double_eq_tol(s[0].pts[i].y, want0[i][1], 1e-6);
    }
    ck_assert_int_eq(arrlen(s[1].pts), 3);
    const double want1[3][2] = {{1, 2.8}, {4, 2.25}, {8, 1.8}};
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(s[1].pts[i].x, want1[i][0], 1e-12);
        ck_assert_double_eq_tol(s[1].pts[i].y, want1[i][1], 1e-12);
    }
    free_two_series(dir, s);
}
END_TEST

START_TEST(test_plot_svg_has_each_series_at_its_coordinates) {
    PlotSeries s[2];
    char *dir = load_two_series(s);
    PlotHline hl = {2.0, "2.0 goal"};
    PlotOptions po = {.title = "speed & loss", .ymax = NAN, .hlines = &hl, .n_hlines = 1};
    char err[256] = "";
    char *svg = plot_svg(s, 2, &po, err, sizeof err);
    ck_assert_msg(svg != NULL, "%s", err);
    assert_good_svg(svg);
    // x: 0 to 10 minutes over 72..776; y: 1.5 to 3.0 over 424..64.
    ck_assert_str_eq(polyline_text(svg, "#d62728"), "72.0,64.0 424.0,304.0 776.0,424.0");
    ck_assert_str_eq(polyline_text(svg, "#1f77b4"), "142.4,112.0 353.6,244.0 635.2,352.0");
    ck_assert_uint_eq(count_of(svg, "<circle"), 6 + 2);  // three points a series, two in the legend
    static const char *const want[] = {
        "<circle cx=\"424.0\" cy=\"304.0\" r=\"3.0\"/>", "<circle cx=\"635.2\" cy=\"352.0\" r=\"3.0\"/>",
        ">ours</text>", ">torch &lt;fp32&gt;</text>", ">speed &amp; loss</text>", ">val loss</text>",
        // The reference line across the plot at 2.0, and its label.
        "<line x1=\"72.0\" y1=\"304.0\" x2=\"776.0\" y2=\"304.0\" stroke=\"#555555\"", ">2.0 goal</text>",
        // The ticks.
        ">0</text>", ">2</text>", ">4</text>", ">6</text>", ">8</text>", ">10</text>",
        ">1.5</text>", ">2.0</text>", ">2.5</text>", ">3.0</text>",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(svg, want[i]) != NULL, "no '%s' in the SVG", want[i]);
    ck_assert_ptr_null(strstr(svg, ">12</text>"));
    ck_assert_ptr_null(strstr(svg, ">3.5</text>"));
    free(svg);
    free_two_series(dir, s);
}
END_TEST

START_TEST(test_plot_ymax_cuts_the_axis_and_clips) {
    PlotSeries s[2];
    char *dir = load_two_series(s);
    PlotOptions po = {.ymax = 2.5};
    char err[256] = "";
    char *svg = plot_svg(s, 2, &po, err, sizeof err);
    ck_assert_msg(svg != NULL, "%s", err);
    assert_good_svg(svg);
    // 1.5 .. 2.5 in ticks of 0.2: the axis runs 1.4 .. 2.6 (424..64, 300 units a loss).
    ck_assert_ptr_nonnull(strstr(svg, ">2.6</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">1.4</text>"));
    ck_assert_ptr_null(strstr(svg, ">2.8</text>"));
    ck_assert_str_eq(polyline_text(svg, "#d62728"), "72.0,-56.0 424.0,244.0 776.0,394.0");
    ck_assert_ptr_nonnull(strstr(svg, "<clipPath id=\"plot\">"));
    ck_assert_uint_eq(count_of(svg, "clip-path=\"url(#plot)\""), 4);  // two lines, two sets of points
    free(svg);
    po.ymax = 1.5;  // not above the lowest loss: nothing would show
    ck_assert_ptr_null(plot_svg(s, 2, &po, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "--ymax 1.5 is not above the lowest val loss (1.5)"));
    free_two_series(dir, s);
}
END_TEST

// plot_series_load(path) fails with a reason holding want.
static void expect_plot_load_error(const char *path, const char *want) {
    PlotSeries s;
    char err[512] = "";
    ck_assert_msg(!plot_series_load(&s, "x", path, err, sizeof err), "'%s' loaded", path);
    ck_assert_msg(strstr(err, want) != NULL, "'%s': error '%s' lacks '%s'", path, err, want);
}

START_TEST(test_plot_rejects_bad_input_with_a_reason) {
    char *dir = run_dir_create();
    char *csv = path_in(dir, "torch.csv");
    expect_plot_load_error(dir, "holds no metrics.csv");  // a directory without a run
    expect_plot_load_error("/nonexistent/curve.csv", "/nonexistent/curve.csv");
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "is empty"},
        {"time,loss\n1,2\n", "line 1 is not the header 'elapsed_s,val_loss'"},
        {"elapsed_s,val_loss\n", "has no validation loss"},
        {"elapsed_s,val_loss\n1,2.5\n2,abc\n", "line 3 is malformed"},
        {"elapsed_s,val_loss\n1,2.5\n2,2.4,7\n", "line 3 is malformed"},
        {"elapsed_s,val_loss\n1,2.5\n\n", "line 3 is malformed"},
        {"elapsed_s,val_loss\n-1,2.5\n", "line 2 is malformed"},
        {"elapsed_s,val_loss\n5,2.5\n4,2.4\n", "line 3 goes back in time"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_file(dir, "torch.csv", bad[i].text);
        expect_plot_load_error(csv, bad[i].want);
    }
    put_file(dir, "metrics.csv", "step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n"
                                 "1,2.9,,,0.001,1,100,1.5\n");
    expect_plot_load_error(dir, "has no validation loss");
    put_file(dir, "metrics.csv", "step,batch_loss\n");
    expect_plot_load_error(dir, "is not the metrics header");
    // CRLF line ends and a last line without one are fine.
    put_file(dir, "torch.csv", "elapsed_s,val_loss\r\n30,2.5\r\n90,2.25");
    PlotSeries s;
    char err[256] = "";
    ck_assert_msg(plot_series_load(&s, "crlf", csv, err, sizeof err), "%s", err);
    ck_assert_int_eq(arrlen(s.pts), 2);
    ck_assert_double_eq_tol(s.pts[1].x, 1.5, 1e-12);
    ck_assert_double_eq_tol(s.pts[1].y, 2.25, 1e-12);
    plot_series_free(&s);
    free(csv);
    remove_plot_files(dir);
}
END_TEST

Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, test_add_step_appends_rows_in_order);
    tcase_add_test(tc, test_eval_after_step_fills_that_row);
    tcase_add_test(tc, test_eval_of_a_new_step_appends_a_row_with_only_the_eval);
    tcase_add_test(tc, test_step_after_its_eval_merges_into_the_eval_row);
#ifndef NDEBUG
    tcase_add_test_raise_signal(tc, test_rows_out_of_step_order_are_a_caller_bug, SIGABRT);
#endif
    tcase_add_test(tc, test_sample_blocks_have_step_headers_and_a_blank_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, test_write_gives_the_exact_csv_text);
    tcase_add_test(tc, test_non_finite_values_are_empty_cells);
    tcase_add_test(tc, test_write_writes_all_three_files);
    tcase_add_test(tc, test_write_into_a_missing_directory_fails_naming_the_file);
    tcase_add_test(tc, test_load_round_trips_rows_and_samples);
    tcase_add_test(tc, test_load_keeps_only_what_happened_up_to_max_step);
    tcase_add_test(tc, test_load_of_a_directory_without_files_is_an_empty_report);
    tcase_add_test(tc, test_load_reads_samples_with_text_before_the_first_block);
    tcase_add_test(tc, test_load_of_malformed_csv_names_the_line);
    tcase_add_test(tc, test_load_accepts_a_last_line_without_newline);
    suite_add_tcase(s, tc);

    tc = tcase_create("svg");
    tcase_add_test(tc, test_svg_has_curves_axes_and_legend);
    tcase_add_test(tc, test_svg_escapes_the_title);
    tcase_add_test(tc, test_svg_ignores_non_finite_values);
    tcase_add_test(tc, test_svg_of_zero_and_one_rows);
    tcase_add_test(tc, test_svg_gives_equal_values_a_range);
    tcase_add_test(tc, test_svg_downsamples_long_runs);
    tcase_add_test(tc, test_svg_passes_xmllint_when_available);
    suite_add_tcase(s, tc);

    tc = tcase_create("plot");
    tcase_add_test(tc, test_plot_loads_val_rows_of_a_run_and_a_csv);
    tcase_add_test(tc, test_plot_svg_has_each_series_at_its_coordinates);
    tcase_add_test(tc, test_plot_ymax_cuts_the_axis_and_clips);
    tcase_add_test(tc, test_plot_rejects_bad_input_with_a_reason);
    suite_add_tcase(s, tc);
    return s;
}
