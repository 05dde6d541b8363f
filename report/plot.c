// plot.c -- see plot.h.
#include "report/plot.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_ds.h>

#include "common/buf.h"
#include "common/common.h"
#include "report/markup.h"
#include "report/report.h"

// Series colours, in order (cycled past the last).
static const char *const palette[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define N_COLORS (sizeof palette / sizeof palette[0])
#define COLOR_HLINE "#555555"

void plot_series_free(PlotSeries *s) {
    free(s->label);
    arrfree(s->pts);
    memset(s, 0, sizeof *s);
}

// A run directory: the rows of its metrics.csv that have a val_loss.
static bool load_run(SvgPoint **pts, const char *dir, char *err, size_t errlen) {
    size_t n = strlen(dir) + sizeof "/metrics.csv";
    char *metrics = xmalloc(n);
    snprintf(metrics, n, "%s/metrics.csv", dir);
    struct stat st;
    bool ok = stat(metrics, &st) == 0;
    if (!ok)
        set_error(err, errlen, "'%s' holds no metrics.csv (expected a run directory of gpt train, or a CSV file "
                  "with the header '" PLOT_CSV_HEADER "')", dir);
    free(metrics);
    if (!ok) return false;
    Report r;
    report_init(&r);
    ok = report_load(&r, dir, LONG_MAX, err, errlen);
    for (ptrdiff_t i = 0; ok && i < arrlen(r.rows); i++) {
        const MetricsRow *w = &r.rows[i];
        if (!isfinite(w->val_loss)) continue;
        if (!isfinite(w->elapsed_s)) {
            set_error(err, errlen, "'%s/metrics.csv' has a val_loss at step %ld but no elapsed_s", dir, w->step);
            ok = false;
        } else {
            arrput(*pts, ((SvgPoint){w->elapsed_s / 60.0, w->val_loss}));
        }
    }
    report_free(&r);
    return ok;
}

// The number in the n bytes at s, whole and finite, within [lo, hi].
static bool csv_number(const char *s, size_t n, double lo, double hi, double *v) {
    char buf[64];
    if (n == 0 || n >= sizeof buf || memchr(s, 0, n)) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return parse_double(buf, lo, hi, v);
}

// A CSV file of PLOT_CSV_HEADER and two numbers a line (a '\r' before each '\n' is allowed).
static bool load_csv(SvgPoint **pts, const char *path, char *err, size_t errlen) {
    size_t len;
    char *text = (char *)read_file(path, &len, err, errlen);
    if (!text) return false;
    bool ok = true;
    double prev = 0;
    size_t line = 0;
    for (size_t pos = 0; ok && pos < len;) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n > 0 && p[n - 1] == '\r') n--;
        if (line == 1) {
            ok = n == strlen(PLOT_CSV_HEADER) && memcmp(p, PLOT_CSV_HEADER, n) == 0;
            if (!ok)
                set_error(err, errlen, "'%s' line 1 is not the header '" PLOT_CSV_HEADER
                          "' (expected a CSV file with that header, or a run directory of gpt train)", path);
            continue;
        }
        const char *comma = memchr(p, ',', n);
        double t, v;
        ok = comma && csv_number(p, (size_t)(comma - p), 0, DBL_MAX, &t) &&
             csv_number(comma + 1, n - (size_t)(comma + 1 - p), -FLT_MAX, FLT_MAX, &v);
        if (!ok) {
            set_error(err, errlen, "'%s' line %zu is malformed (expected elapsed_s,val_loss: seconds >= 0 and a "
                      "finite loss)", path, line);
        } else if (t < prev) {
            set_error(err, errlen, "'%s' line %zu goes back in time (elapsed_s %g after %g)", path, line, t, prev);
            ok = false;
        } else {
            prev = t;
            arrput(*pts, ((SvgPoint){t / 60.0, v}));
        }
    }
    if (ok && line == 0) {
        set_error(err, errlen, "'%s' is empty (expected the header '" PLOT_CSV_HEADER "' and rows)", path);
        ok = false;
    }
    free(text);
    return ok;
}

bool plot_series_load(PlotSeries *s, const char *label, const char *path, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    struct stat st;
    bool found = stat(path, &st) == 0;
    if (!found && errno == ENOENT) {
        set_error(err, errlen, "'%s' does not exist (expected a run directory of gpt train, or a CSV file with the "
                  "header '" PLOT_CSV_HEADER "')", path);
        return false;
    }
    bool dir = found && S_ISDIR(st.st_mode);
    bool ok = dir ? load_run(&s->pts, path, err, errlen) : load_csv(&s->pts, path, err, errlen);
    if (ok && arrlen(s->pts) == 0) {
        set_error(err, errlen, "'%s' has no validation loss (no row with a val_loss)", path);
        ok = false;
    }
    if (!ok) {
        arrfree(s->pts);
        return false;
    }
    s->label = xstrdup(label);
    return true;
}

// The characters of UTF-8 text (its bytes that do not continue a character).
static size_t text_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

char *plot_svg(const PlotSeries *series, size_t n, const PlotOptions *opt, char *err, size_t errlen) {
    double xmax = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < n; k++)
        for (ptrdiff_t i = 0; i < arrlen(series[k].pts); i++) {
            const SvgPoint *p = &series[k].pts[i];
            xmax = fmax(xmax, p->x);
            lo = fmin(lo, p->y);
            hi = fmax(hi, p->y);
        }
    if (!(lo <= hi)) {
        set_error(err, errlen, "nothing to plot (no series has a point)");
        return NULL;
    }
    bool capped = isfinite(opt->ymax);
    if (capped && !(opt->ymax > lo)) {
        set_error(err, errlen, "--ymax %g is not above the lowest val loss (%g)", opt->ymax, lo);
        return NULL;
    }
    if (capped) hi = fmin(hi, opt->ymax);
    // The reference lines are in view unless they lie above the cap.
    for (size_t i = 0; i < opt->n_hlines; i++) {
        double y = opt->hlines[i].y;
        if (capped && y > opt->ymax) continue;
        lo = fmin(lo, y);
        hi = fmax(hi, y);
    }
    SvgAxis ax = svg_axis_around(0, xmax > 0 ? xmax : 1, 8, 0);
    SvgAxis ay = svg_loss_axis(lo, hi);

    const char *title = opt->title ? opt->title : "validation loss against wall-clock time";
    Buf sb = {0};
    svg_begin(&sb, title);
    svg_grid(&sb, &ax, &ay, "minutes of training (evaluations included)", "val loss");
    svg_clip_to_plot(&sb, "plot");
    for (size_t i = 0; i < opt->n_hlines; i++) {
        double y = svg_map_y(&ay, opt->hlines[i].y);
        if (y < SVG_PLOT_Y0 || y > SVG_PLOT_Y1) continue;
        buf_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.2\" "
                        "stroke-dasharray=\"6 4\"/>\n", SVG_PLOT_X0, y, SVG_PLOT_X1, y, COLOR_HLINE);
        buf_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">", SVG_PLOT_X0 + 6, y - 4,
                   COLOR_HLINE);
        markup_escape(&sb, opt->hlines[i].text);
        buf_puts(&sb, "</text>\n");
    }
    SvgLegendEntry *legend = xcalloc(n, sizeof *legend);
    size_t longest = 0;
    for (size_t k = 0; k < n; k++) {
        const PlotSeries *s = &series[k];
        const char *color = palette[k % N_COLORS];
        size_t np = arrlenu(s->pts);
        svg_polyline(&sb, s->pts, np, &ax, &ay, color, 2, 1, "plot");
        svg_markers(&sb, s->pts, np, &ax, &ay, color, 3, "plot");
        legend[k] = (SvgLegendEntry){s->label, color, 2, true};
        size_t c = text_chars(s->label);
        if (c > longest) longest = c;
    }
    svg_frame(&sb);
    // About 7 units a character at the legend's 12-unit font, after the line sample.
    double width = fmin(fmax(54 + 7 * (double)longest, 100), SVG_PLOT_X1 - SVG_PLOT_X0 - 16);
    svg_legend(&sb, legend, n, width);
    svg_end(&sb);
    free(legend);
    return buf_take(&sb, NULL);
}
