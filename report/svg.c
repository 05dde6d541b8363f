// svg.c -- see svg.h.
#include "report/svg.h"

#include <assert.h>
#include <math.h>

#include "report/markup.h"

#define COLOR_GRID "#e6e6e6"
#define COLOR_AXIS "#888888"
#define COLOR_TEXT "#333333"

// A round tick spacing (1, 2 or 5 times a power of ten) giving about target ticks over span.
static double nice_tick(double span, int target) {
    assert(span > 0 && isfinite(span));
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

SvgAxis svg_axis_around(double lo, double hi, int target, double min_tick) {
    SvgAxis a;
    a.tick = fmax(nice_tick(hi - lo, target), min_tick);
    // (The 1e-9 keeps a value that is a tick, give or take rounding, from adding one more.)
    a.lo = floor(lo / a.tick + 1e-9) * a.tick;
    a.hi = ceil(hi / a.tick - 1e-9) * a.tick;
    if (a.hi <= a.lo) a.hi = a.lo + a.tick;
    return a;
}

SvgAxis svg_loss_axis(double lo, double hi) {
    double min_span = fmax(0.1 * fabs(0.5 * (lo + hi)), 1e-3);
    if (hi - lo < min_span) {
        double mid = 0.5 * (lo + hi), data_lo = lo;
        lo = mid - 0.5 * min_span;
        hi = mid + 0.5 * min_span;
        if (data_lo >= 0 && lo < 0) hi -= lo, lo = 0;  // a loss axis need not go below zero
    }
    return svg_axis_around(lo, hi, 6, 0);
}

// Digits after the point that tell ticks of this spacing apart (1 for 0.5, 2 for 0.05).
static int tick_decimals(double tick) { return tick >= 1 ? 0 : (int)ceil(-log10(tick) - 1e-9); }

double svg_map_x(const SvgAxis *a, double v) {
    return SVG_PLOT_X0 + (v - a->lo) / (a->hi - a->lo) * (SVG_PLOT_X1 - SVG_PLOT_X0);
}

double svg_map_y(const SvgAxis *a, double v) {
    return SVG_PLOT_Y1 - (v - a->lo) / (a->hi - a->lo) * (SVG_PLOT_Y1 - SVG_PLOT_Y0);
}

void svg_begin(Buf *sb, const char *title) {
    buf_printf(sb,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
               SVG_W, SVG_H, SVG_W, SVG_H);
    buf_puts(sb, "<title>");
    markup_escape(sb, title);
    buf_puts(sb, "</title>\n");
    buf_printf(sb, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);
    buf_printf(sb, "<text x=\"%d\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\" "
                   "fill=\"%s\">", SVG_W / 2, COLOR_TEXT);
    markup_escape(sb, title);
    buf_puts(sb, "</text>\n");
}

void svg_end(Buf *sb) { buf_puts(sb, "</svg>\n"); }

void svg_note(Buf *sb, const char *text) {
    buf_printf(sb, "<text x=\"%d\" y=\"46\" text-anchor=\"middle\" font-size=\"12\" fill=\"%s\">", SVG_W / 2,
               COLOR_TEXT);
    markup_escape(sb, text);
    buf_puts(sb, "</text>\n");
}

// A tick value as its label: enough decimals for the spacing, and no "-0".
static void tick_label(Buf *sb, double v, double tick) {
    if (fabs(v) < 1e-6 * tick) v = 0;
    buf_printf(sb, "%.*f", tick_decimals(tick), v);
}

void svg_grid(Buf *sb, const SvgAxis *ax, const SvgAxis *ay, const char *x_name, const char *y_name) {
    buf_printf(sb, "<g stroke=\"%s\" stroke-width=\"1\">\n", COLOR_GRID);
    long nx = lround((ax->hi - ax->lo) / ax->tick), ny = lround((ay->hi - ay->lo) / ay->tick);
    for (long i = 0; i <= nx; i++) {
        double x = svg_map_x(ax, ax->lo + (double)i * ax->tick);
        buf_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, SVG_PLOT_Y0, x, SVG_PLOT_Y1);
    }
    for (long i = 0; i <= ny; i++) {
        double y = svg_map_y(ay, ay->lo + (double)i * ay->tick);
        buf_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", SVG_PLOT_X0, y, SVG_PLOT_X1, y);
    }
    buf_puts(sb, "</g>\n");
    buf_printf(sb, "<g font-size=\"11\" fill=\"%s\">\n", COLOR_TEXT);
    for (long i = 0; i <= nx; i++) {
        double v = ax->lo + (double)i * ax->tick;
        buf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", svg_map_x(ax, v), SVG_PLOT_Y1 + 16);
        tick_label(sb, v, ax->tick);
        buf_puts(sb, "</text>\n");
    }
    for (long i = 0; i <= ny; i++) {
        double v = ay->lo + (double)i * ay->tick;
        buf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", SVG_PLOT_X0 - 6, svg_map_y(ay, v) + 4);
        tick_label(sb, v, ay->tick);
        buf_puts(sb, "</text>\n");
    }
    buf_puts(sb, "</g>\n");
    buf_printf(sb, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\" fill=\"%s\">",
               0.5 * (SVG_PLOT_X0 + SVG_PLOT_X1), SVG_H - 14, COLOR_TEXT);
    markup_escape(sb, x_name);
    buf_puts(sb, "</text>\n");
    double ymid = 0.5 * (SVG_PLOT_Y0 + SVG_PLOT_Y1);
    buf_printf(sb,
               "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" fill=\"%s\" "
               "transform=\"rotate(-90 18 %.1f)\">",
               ymid, COLOR_TEXT, ymid);
    markup_escape(sb, y_name);
    buf_puts(sb, "</text>\n");
}

void svg_frame(Buf *sb) {
    buf_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\"/>\n",
               SVG_PLOT_X0, SVG_PLOT_Y0, SVG_PLOT_X1 - SVG_PLOT_X0, SVG_PLOT_Y1 - SVG_PLOT_Y0, COLOR_AXIS);
}

void svg_clip_to_plot(Buf *sb, const char *id) {
    buf_printf(sb, "<defs><clipPath id=\"%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                   "</clipPath></defs>\n",
               id, SVG_PLOT_X0, SVG_PLOT_Y0, SVG_PLOT_X1 - SVG_PLOT_X0, SVG_PLOT_Y1 - SVG_PLOT_Y0);
}

// The clip-path attribute (with its leading space), or nothing.
static void clip_attr(Buf *sb, const char *clip_id) {
    if (clip_id) buf_printf(sb, " clip-path=\"url(#%s)\"", clip_id);
}

void svg_polyline(Buf *sb, const SvgPoint *pts, size_t n, const SvgAxis *ax, const SvgAxis *ay, const char *color,
                  double width, double opacity, const char *clip_id) {
    if (n < 2) return;
    buf_printf(sb, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\" "
                   "stroke-linejoin=\"round\"", color, width, opacity);
    clip_attr(sb, clip_id);
    buf_puts(sb, " points=\"");
    for (size_t i = 0; i < n; i++)
        buf_printf(sb, "%s%.1f,%.1f", i ? " " : "", svg_map_x(ax, pts[i].x), svg_map_y(ay, pts[i].y));
    buf_puts(sb, "\"/>\n");
}

void svg_markers(Buf *sb, const SvgPoint *pts, size_t n, const SvgAxis *ax, const SvgAxis *ay, const char *color,
                 double radius, const char *clip_id) {
    if (n > SVG_MAX_MARKERS) return;
    buf_printf(sb, "<g fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"0.8\"", color);
    clip_attr(sb, clip_id);
    buf_puts(sb, ">\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n", svg_map_x(ax, pts[i].x),
                   svg_map_y(ay, pts[i].y), radius);
    buf_puts(sb, "</g>\n");
}

void svg_legend(Buf *sb, const SvgLegendEntry *entries, size_t n, double box_width) {
    double lx = SVG_PLOT_X1 - box_width - 8, ly = SVG_PLOT_Y0 + 8;
    buf_printf(sb, "<g font-size=\"12\" fill=\"%s\">\n", COLOR_TEXT);
    buf_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\" fill-opacity=\"0.85\" "
                   "stroke=\"#cccccc\"/>\n", lx, ly, box_width, 18.0 * (double)n + 10);
    for (size_t i = 0; i < n; i++) {
        const SvgLegendEntry *e = &entries[i];
        double y = ly + 15 + 18 * (double)i;
        buf_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"/>\n",
                   lx + 10, y, lx + 36, y, e->color, e->width);
        if (e->marker) buf_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", lx + 23, y, e->color);
        buf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\">", lx + 44, y + 4);
        markup_escape(sb, e->label);
        buf_puts(sb, "</text>\n");
    }
    buf_puts(sb, "</g>\n");
}
