// plot.h -- several runs' validation loss against wall-clock minutes, as one SVG chart
// (`gpt plot`): our runs read from their metrics.csv, others (PyTorch's, by
// scripts/torch_curve.py) from a two-column CSV file.
#ifndef GPT_PLOT_H
#define GPT_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "report/svg.h"

#define PLOT_CSV_HEADER "elapsed_s,val_loss"

typedef struct {
    char *label;    // malloc'd
    SvgPoint *pts;  // stb_ds array: x = elapsed minutes, y = val loss, in time order
} PlotSeries;

// Loads one series from path: a run directory of `gpt train` (its metrics.csv's rows that have
// a val_loss, at their elapsed_s), or a CSV file whose first line is PLOT_CSV_HEADER and whose
// other lines are two finite numbers each, seconds >= 0 not going back in time. False with a
// one-line reason (missing or malformed file, no validation loss at all).
bool plot_series_load(PlotSeries *s, const char *label, const char *path, char *err, size_t errlen);
void plot_series_free(PlotSeries *s);

// A dashed horizontal line across the chart at loss y, with its text at the left end.
typedef struct {
    double y;
    const char *text;
} PlotHline;

typedef struct {
    const char *title;         // NULL: a default
    double ymax;               // NAN: up to the highest value; else the y axis ends at the first
                               // tick at or above ymax, and what lies higher is cut off
    const PlotHline *hlines;
    size_t n_hlines;
} PlotOptions;

// The SVG document (malloc'd, NUL-terminated) of n >= 1 series: one line with points each, in
// colours told apart by the legend, over x from 0 minutes and y around the losses (and the
// lines' levels). NULL with a reason when ymax is not above the lowest loss.
char *plot_svg(const PlotSeries *series, size_t n, const PlotOptions *opt, char *err, size_t errlen);

#endif
