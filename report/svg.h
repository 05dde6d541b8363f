// svg.h -- the drawing pieces of our charts (a run's loss.svg, `gpt plot`'s comparison of
// runs), written as SVG text without any plotting library: one fixed canvas with a plot area,
// axes over round numbers, lines with points, a grid with tick labels, a legend.
#ifndef GPT_SVG_H
#define GPT_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

// Layout (SVG user units = pixels): the plot area sits inside these margins.
#define SVG_W 800
#define SVG_H 480
#define SVG_PLOT_X0 72.0
#define SVG_PLOT_X1 (SVG_W - 24.0)
#define SVG_PLOT_Y0 64.0
#define SVG_PLOT_Y1 (SVG_H - 56.0)

// More points than this in one series get no markers: they could not be told apart.
#define SVG_MAX_MARKERS 400

typedef struct {
    double x, y;  // data units
} SvgPoint;

typedef struct {
    double lo, hi, tick;  // the axis range, whole multiples of tick
} SvgAxis;

// An axis from a round number at or below lo to one at or above hi, with about target ticks
// of a round spacing (1, 2 or 5 times a power of ten), at least min_tick apart. hi > lo.
SvgAxis svg_axis_around(double lo, double hi, int target, double min_tick);

// The y axis of losses from lo to hi (lo <= hi): about 6 ticks; widened to a tenth of their
// level when they (nearly) coincide, and then not below zero for losses that are not.
SvgAxis svg_loss_axis(double lo, double hi);

// Data values to canvas coordinates in the plot area.
double svg_map_x(const SvgAxis *a, double v);
double svg_map_y(const SvgAxis *a, double v);

// The XML declaration, the <svg> element with its <title>, a white background and the title
// as a heading; svg_end closes the document. title is escaped (report/markup.h).
void svg_begin(Buf *sb, const char *title);
void svg_end(Buf *sb);
// A smaller line of text under the heading, escaped.
void svg_note(Buf *sb, const char *text);

// The grid, the tick labels and the axes' names (escaped).
void svg_grid(Buf *sb, const SvgAxis *ax, const SvgAxis *ay, const char *x_name, const char *y_name);
// The outline of the plot area.
void svg_frame(Buf *sb);

// A line through n points (nothing for fewer than two), and a dot at each of them (nothing
// for more than SVG_MAX_MARKERS). clip_id: the id of a <clipPath> to draw inside, or NULL.
void svg_polyline(Buf *sb, const SvgPoint *pts, size_t n, const SvgAxis *ax, const SvgAxis *ay, const char *color,
                  double width, double opacity, const char *clip_id);
void svg_markers(Buf *sb, const SvgPoint *pts, size_t n, const SvgAxis *ax, const SvgAxis *ay, const char *color,
                 double radius, const char *clip_id);

// A <clipPath> with this id holding the plot area, for data that may reach past the axes.
void svg_clip_to_plot(Buf *sb, const char *id);

// The legend, a box of the given width at the top right inside the plot area: one row per
// entry with a sample of its line (and dot) and its label (escaped).
typedef struct {
    const char *label, *color;
    double width;  // of the line
    bool marker;
} SvgLegendEntry;
void svg_legend(Buf *sb, const SvgLegendEntry *entries, size_t n, double box_width);

#endif
