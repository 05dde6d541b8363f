// report.c -- what a run leaves for a person: metrics.csv (one row per step), loss.svg (the
// curves, drawn here without any plotting library) and samples.txt. The rows live in memory
// and every write replaces the three files whole, so they always match the latest checkpoint.
#include "report/report.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_ds.h>

#include "common/buf.h"
#include "common/common.h"
#include "report/svg.h"

#define METRICS_FILE "metrics.csv"
#define SVG_FILE "loss.svg"
#define SAMPLES_FILE "samples.txt"

#define METRICS_HEADER "step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s"
#define METRICS_FIELDS 8
static const char *const metrics_names[METRICS_FIELDS] = {
    "step", "batch_loss", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s",
};

// More batch-loss points than this are averaged in buckets: a 100k-step run still gives a
// small file, and a screen has fewer pixels than that anyway.
#define SVG_MAX_BATCH_POINTS 2000

// ---------------------------------------------------------------------------------------------
// The rows and the samples in memory.

void report_init(Report *r) { memset(r, 0, sizeof *r); }

void report_free(Report *r) {
    arrfree(r->rows);
    buf_free(&r->samples);
    memset(r, 0, sizeof *r);
}

// Rows come in step order; a row for an earlier step than the last is a bug of the caller
// (and would make a metrics.csv that report_load rejects).
static MetricsRow *last_row_at(Report *r, long step) {
    if (arrlen(r->rows) == 0) return NULL;
    MetricsRow *last = &arrlast(r->rows);
    assert(step >= last->step && "report rows must be added in step order");
    return last->step == step ? last : NULL;
}

void report_add_step(Report *r, const MetricsRow *row) {
    assert(row->step >= 0);
    MetricsRow *last = last_row_at(r, row->step);
    if (!last) {
        arrput(r->rows, *row);
        return;
    }
    // The evaluation of this step was recorded first: keep it unless the row brings its own.
    float train = isnan(row->train_loss) ? last->train_loss : row->train_loss;
    float val = isnan(row->val_loss) ? last->val_loss : row->val_loss;
    *last = *row;
    last->train_loss = train;
    last->val_loss = val;
}

void report_add_eval(Report *r, long step, float train_loss, float val_loss, double elapsed_s) {
    assert(step >= 0);
    MetricsRow *last = last_row_at(r, step);
    if (last) {
        last->train_loss = train_loss;
        last->val_loss = val_loss;
        if (isnan(last->elapsed_s)) last->elapsed_s = elapsed_s;
        return;
    }
    MetricsRow row = {
        .step = step,
        .batch_loss = NAN,
        .train_loss = train_loss,
        .val_loss = val_loss,
        .lr = NAN,
        .grad_norm = NAN,
        .tokens_per_s = NAN,
        .elapsed_s = elapsed_s,
    };
    arrput(r->rows, row);
}

// The header line of a sample block: "--- step N ---" or "--- step N (note) ---". The note
// is written as given, except that control characters are escaped (\n, \t, \xNN): a header
// must stay one line for report_load to find the blocks again.
void report_add_sample(Report *r, long step, const char *prompt_note, const unsigned char *text, size_t len) {
    buf_printf(&r->samples, "--- step %ld", step);
    if (prompt_note) {
        buf_puts(&r->samples, " (");
        for (const unsigned char *p = (const unsigned char *)prompt_note; *p; p++) {
            if (*p == '\n') buf_puts(&r->samples, "\\n");
            else if (*p == '\t') buf_puts(&r->samples, "\\t");
            else if (*p == '\r') buf_puts(&r->samples, "\\r");
            else if (*p < 0x20 || *p == 0x7f) buf_printf(&r->samples, "\\x%02x", *p);
            else buf_putc(&r->samples, (char)*p);
        }
        buf_puts(&r->samples, ")");
    }
    buf_puts(&r->samples, " ---\n");
    buf_add(&r->samples, text, len);
    // The text ends its last line, then one blank line separates it from the next block.
    if (len > 0 && text[len - 1] != '\n') buf_putc(&r->samples, '\n');
    buf_putc(&r->samples, '\n');
}

// ---------------------------------------------------------------------------------------------
// metrics.csv

// Non-finite values are empty cells.
static void csv_cell(Buf *sb, const char *fmt, double v) {
    buf_putc(sb, ',');
    if (isfinite(v)) buf_printf(sb, fmt, v);
}

static char *metrics_csv(const Report *r, size_t *len) {
    Buf sb = {0};
    buf_puts(&sb, METRICS_HEADER "\n");
    for (ptrdiff_t i = 0; i < arrlen(r->rows); i++) {
        const MetricsRow *w = &r->rows[i];
        buf_printf(&sb, "%ld", w->step);
        csv_cell(&sb, "%.6g", w->batch_loss);
        csv_cell(&sb, "%.6g", w->train_loss);
        csv_cell(&sb, "%.6g", w->val_loss);
        csv_cell(&sb, "%.6g", w->lr);
        csv_cell(&sb, "%.6g", w->grad_norm);
        csv_cell(&sb, "%.1f", w->tokens_per_s);
        csv_cell(&sb, "%.3f", w->elapsed_s);
        buf_putc(&sb, '\n');
    }
    return buf_take(&sb, len);
}

// A cell of a data line (n bytes, not NUL-terminated) as a string in buf; false if it cannot
// be a number (too long, or holding a NUL byte that would hide the rest from strtod).
static bool cell_text(char *buf, size_t size, const char *s, size_t n) {
    if (n >= size || memchr(s, 0, n)) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return true;
}

static bool load_metrics(MetricsRow **rows, const char *path, long max_step, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return true;
    size_t len;
    char *text = (char *)read_file(path, &len, err, errlen);
    if (!text) return false;
    bool ok = true;
    long prev_step = -1;
    size_t line = 0;
    for (size_t pos = 0; ok && (pos < len || line == 0);) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (line == 1) {
            if (n != strlen(METRICS_HEADER) || memcmp(p, METRICS_HEADER, n) != 0) {
                set_error(err, errlen, "'%s' line 1 is not the metrics header (expected '%s')", path, METRICS_HEADER);
                ok = false;
            }
            continue;
        }
        // Split into exactly METRICS_FIELDS cells.
        const char *cell[METRICS_FIELDS + 1];
        size_t count = 0;
        cell[count++] = p;
        for (size_t k = 0; k < n && count <= METRICS_FIELDS; k++)
            if (p[k] == ',') cell[count++] = p + k + 1;
        if (count != METRICS_FIELDS) {
            set_error(err, errlen, "'%s' line %zu is malformed (expected %d comma-separated fields)", path, line,
                      METRICS_FIELDS);
            ok = false;
            break;
        }
        // The step is a whole number >= 0; the rest finite numbers (the floats within float
        // range) or empty for NAN.
        double v[METRICS_FIELDS];
        long step = 0;
        for (int f = 0; f < METRICS_FIELDS && ok; f++) {
            const char *end = f + 1 < METRICS_FIELDS ? cell[f + 1] - 1 : p + n;
            size_t cn = (size_t)(end - cell[f]);
            char buf[64];
            double limit = f == METRICS_FIELDS - 1 ? DBL_MAX : FLT_MAX;
            if (f > 0 && cn == 0) v[f] = NAN;
            else if (!cell_text(buf, sizeof buf, cell[f], cn)) ok = false;
            else if (f == 0) ok = parse_long(buf, 0, LONG_MAX, &step);
            else ok = parse_double(buf, -limit, limit, &v[f]);
            if (!ok) {
                // The cell as shown in the one-line message: at most 40 bytes, unprintables as '?'.
                char shown[41];
                size_t k = 0;
                for (; k < cn && k + 1 < sizeof shown; k++)
                    shown[k] = cell[f][k] >= 0x20 && cell[f][k] < 0x7f ? cell[f][k] : '?';
                shown[k] = 0;
                set_error(err, errlen, "'%s' line %zu is malformed (%s '%s' is not %s)", path, line, metrics_names[f],
                          shown, f == 0 ? "a whole number >= 0" : "a finite number or empty");
            }
        }
        if (!ok) break;
        if (step <= prev_step) {
            set_error(err, errlen, "'%s' line %zu is malformed (step %ld does not come after step %ld)", path, line,
                      step, prev_step);
            ok = false;
            break;
        }
        prev_step = step;
        if (step > max_step) continue;
        MetricsRow row = {
            .step = step,
            .batch_loss = (float)v[1],
            .train_loss = (float)v[2],
            .val_loss = (float)v[3],
            .lr = (float)v[4],
            .grad_norm = (float)v[5],
            .tokens_per_s = (float)v[6],
            .elapsed_s = v[7],
        };
        arrput(*rows, row);
    }
    free(text);
    return ok;
}

// ---------------------------------------------------------------------------------------------
// samples.txt

// Whether line (n bytes) is a block header "--- step N ---" / "--- step N (...) ---"; N in *step.
static bool sample_header(const char *line, size_t n, long *step) {
    static const char prefix[] = "--- step ";
    static const char suffix[] = " ---";
    size_t np = sizeof prefix - 1, ns = sizeof suffix - 1;
    if (n < np + 1 + ns || memcmp(line, prefix, np) != 0 || memcmp(line + n - ns, suffix, ns) != 0) return false;
    long v = 0;
    size_t k = np;
    for (; k < n && line[k] >= '0' && line[k] <= '9'; k++) {
        int d = line[k] - '0';
        if (v > (LONG_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (k == np) return false;
    // Right after the number: the suffix itself, or " (" opening a note.
    if (k != n - ns && !(k + 1 < n && line[k] == ' ' && line[k + 1] == '(')) return false;
    *step = v;
    return true;
}

// Keeps the text before the first header and the blocks whose step is <= max_step.
static bool load_samples(Buf *samples, const char *path, long max_step, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return true;
    size_t len;
    char *text = (char *)read_file(path, &len, err, errlen);
    if (!text) return false;
    bool keep = true;
    for (size_t pos = 0; pos < len;) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        long step;
        if (sample_header(p, n, &step)) keep = step <= max_step;
        if (keep) buf_add(samples, p, n + (nl != NULL));
        pos += n + (nl != NULL);
    }
    free(text);
    return true;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir);
    bool slash = n > 0 && dir[n - 1] == '/';
    size_t size = n + 1 + strlen(name) + 1;
    char *path = xmalloc(size);
    snprintf(path, size, "%s%s%s", dir, slash ? "" : "/", name);
    return path;
}

bool report_load(Report *r, const char *dir, long max_step, char *err, size_t errlen) {
    Report loaded;
    report_init(&loaded);
    char *metrics_path = join_path(dir, METRICS_FILE);
    char *samples_path = join_path(dir, SAMPLES_FILE);
    bool ok = load_metrics(&loaded.rows, metrics_path, max_step, err, errlen) &&
              load_samples(&loaded.samples, samples_path, max_step, err, errlen);
    free(metrics_path);
    free(samples_path);
    if (!ok) {
        report_free(&loaded);
        return false;
    }
    report_free(r);
    *r = loaded;
    return true;
}

bool report_write(const Report *r, const char *dir, const char *title, char *err, size_t errlen) {
    size_t csv_len;
    char *csv = metrics_csv(r, &csv_len);
    char *svg = report_svg(r, title);
    char *paths[3] = {join_path(dir, METRICS_FILE), join_path(dir, SAMPLES_FILE), join_path(dir, SVG_FILE)};
    bool ok = write_file_atomic(paths[0], csv, csv_len, err, errlen) &&
              write_file_atomic(paths[1], r->samples.s, r->samples.len, err, errlen) &&
              write_file_atomic(paths[2], svg, strlen(svg), err, errlen);
    for (int i = 0; i < 3; i++) free(paths[i]);
    free(csv);
    free(svg);
    return ok;
}

// ---------------------------------------------------------------------------------------------
// loss.svg

#define COLOR_BATCH "#9ecae1"
#define COLOR_TRAIN "#1f77b4"
#define COLOR_VAL "#d62728"

// Averages runs of consecutive points so that at most max_points remain.
static SvgPoint *downsample(SvgPoint *pts, size_t *n, size_t max_points) {
    if (*n <= max_points) return pts;
    SvgPoint *out = NULL;
    for (size_t b = 0; b < max_points; b++) {
        size_t i0 = b * *n / max_points, i1 = (b + 1) * *n / max_points;
        SvgPoint m = {0, 0};
        for (size_t i = i0; i < i1; i++) {
            m.x += pts[i].x;
            m.y += pts[i].y;
        }
        m.x /= (double)(i1 - i0);
        m.y /= (double)(i1 - i0);
        arrput(out, m);
    }
    arrfree(pts);
    *n = max_points;
    return out;
}

// The three series of the plot (batch loss, evaluations' train and val loss), their range of
// losses in *lo, *hi and the last step that has any.
typedef struct {
    SvgPoint *pts[3];  // stb_ds arrays: batch, train, val
    size_t n[3];
    double lo, hi;
    long max_step;
} Series;

enum { SERIES_BATCH, SERIES_TRAIN, SERIES_VAL };

static void collect_series(const Report *r, Series *s) {
    memset(s, 0, sizeof *s);
    s->lo = INFINITY;
    s->hi = -INFINITY;
    for (ptrdiff_t i = 0; i < arrlen(r->rows); i++) {
        const MetricsRow *w = &r->rows[i];
        const float v[3] = {w->batch_loss, w->train_loss, w->val_loss};
        for (int k = 0; k < 3; k++) {
            if (!isfinite(v[k])) continue;
            arrput(s->pts[k], ((SvgPoint){(double)w->step, v[k]}));
            s->lo = fmin(s->lo, v[k]);
            s->hi = fmax(s->hi, v[k]);
            if (w->step > s->max_step) s->max_step = w->step;
        }
    }
    for (int k = 0; k < 3; k++) s->n[k] = arrlenu(s->pts[k]);
    s->pts[SERIES_BATCH] = downsample(s->pts[SERIES_BATCH], &s->n[SERIES_BATCH], SVG_MAX_BATCH_POINTS);
}

// x runs from step 0 to a round number at or past the last step, in whole steps. y spans the
// data, widened to a tenth of its level when the values (nearly) coincide.
static void choose_axes(const Series *s, bool empty, SvgAxis *ax, SvgAxis *ay) {
    *ax = svg_axis_around(0, s->max_step > 0 ? (double)s->max_step : 1, 8, 1);
    *ay = empty ? svg_loss_axis(0, 1) : svg_loss_axis(s->lo, s->hi);
}

// Under the title, the latest evaluation (or the latest batch loss before any).
static void svg_latest(Buf *sb, const Report *r, const Series *s) {
    char note[160] = "";
    for (ptrdiff_t i = arrlen(r->rows) - 1; i >= 0 && !note[0]; i--) {
        const MetricsRow *w = &r->rows[i];
        if (isfinite(w->val_loss) && isfinite(w->train_loss))
            snprintf(note, sizeof note, "val %.4f at step %ld (train %.4f)", w->val_loss, w->step, w->train_loss);
        else if (isfinite(w->val_loss))
            snprintf(note, sizeof note, "val %.4f at step %ld", w->val_loss, w->step);
    }
    const SvgPoint *batch = s->pts[SERIES_BATCH];
    size_t n_batch = s->n[SERIES_BATCH];
    if (!note[0] && n_batch)
        snprintf(note, sizeof note, "batch loss %.4f at step %ld (no evaluation yet)", batch[n_batch - 1].y,
                 (long)batch[n_batch - 1].x);
    if (note[0]) svg_note(sb, note);
}

char *report_svg(const Report *r, const char *title) {
    if (!title) title = "";
    Series s;
    collect_series(r, &s);
    bool empty = s.n[SERIES_BATCH] + s.n[SERIES_TRAIN] + s.n[SERIES_VAL] == 0;
    SvgAxis ax, ay;
    choose_axes(&s, empty, &ax, &ay);

    Buf sb = {0};
    svg_begin(&sb, title);
    svg_latest(&sb, r, &s);
    svg_grid(&sb, &ax, &ay, "step", "loss");

    // The curves: batch loss faint underneath, the evaluations on top.
    const SvgPoint *const *p = (const SvgPoint *const *)s.pts;
    svg_polyline(&sb, p[SERIES_BATCH], s.n[SERIES_BATCH], &ax, &ay, COLOR_BATCH, 1, 0.9, NULL);
    if (s.n[SERIES_BATCH] == 1) svg_markers(&sb, p[SERIES_BATCH], 1, &ax, &ay, COLOR_BATCH, 2, NULL);
    svg_polyline(&sb, p[SERIES_TRAIN], s.n[SERIES_TRAIN], &ax, &ay, COLOR_TRAIN, 2, 1, NULL);
    svg_markers(&sb, p[SERIES_TRAIN], s.n[SERIES_TRAIN], &ax, &ay, COLOR_TRAIN, 3, NULL);
    svg_polyline(&sb, p[SERIES_VAL], s.n[SERIES_VAL], &ax, &ay, COLOR_VAL, 2, 1, NULL);
    svg_markers(&sb, p[SERIES_VAL], s.n[SERIES_VAL], &ax, &ay, COLOR_VAL, 3, NULL);
    if (empty)
        buf_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" fill=\"#999999\">"
                        "no data yet</text>\n", 0.5 * (SVG_PLOT_X0 + SVG_PLOT_X1), 0.5 * (SVG_PLOT_Y0 + SVG_PLOT_Y1));
    svg_frame(&sb);
    static const SvgLegendEntry legend[3] = {
        {"batch loss", COLOR_BATCH, 1.5, false},
        {"train loss (eval)", COLOR_TRAIN, 2, true},
        {"val loss (eval)", COLOR_VAL, 2, true},
    };
    svg_legend(&sb, legend, 3, 150);
    svg_end(&sb);
    for (int k = 0; k < 3; k++) arrfree(s.pts[k]);
    return buf_take(&sb, NULL);
}
