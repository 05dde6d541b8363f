// cmd_plot.c -- `gpt plot --out FILE.svg LABEL=RUN ...`: several runs' validation loss against
// wall-clock minutes in one SVG chart (report/plot.h draws it), e.g. the README's comparison of
// the speedrun recipe, the default recipe and PyTorch.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_ds.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "report/plot.h"

static const char usage[] =
    "usage: gpt plot --out FILE.svg [--title T] [--ymax Y] [--hline Y[=TEXT]]... LABEL=RUN...\n"
    "\n"
    "Draws the validation loss of each RUN against wall-clock minutes as one SVG chart: one line\n"
    "with points per RUN, named LABEL in the legend. RUN is a run directory of gpt train (the\n"
    "rows of its metrics.csv that have a val_loss, at their elapsed_s: training time with the\n"
    "evaluations, so a resumed run continues its own clock), or a CSV file whose first line is\n"
    "'elapsed_s,val_loss' followed by one 'seconds,loss' line per evaluation (what\n"
    "scripts/torch_curve.py writes for PyTorch). A summary line per RUN goes to stdout; the\n"
    "chart is written atomically.\n"
    "\n"
    "  --out FILE        where to write the SVG (required)\n"
    "  --title T         the chart's title (default: validation loss against wall-clock time)\n"
    "  --ymax Y          the y axis ends at the first tick at or above Y (0 to 1000); higher\n"
    "                    points are cut off (the first evaluations, near ln(vocab), would\n"
    "                    flatten the rest)\n"
    "  --hline Y[=TEXT]  a dashed reference line at loss Y (0 to 1000), labelled with Y as\n"
    "                    given and TEXT; may be repeated\n"
    "  -h, --help        this help\n";

enum { OPT_OUT = 256, OPT_TITLE, OPT_YMAX, OPT_HLINE };

// --hline Y or Y=TEXT: the line's label is "Y" or "Y TEXT" (malloc'd).
static PlotHline parse_hline(const char *arg) {
    char *text = xstrdup(arg);
    char *eq = strchr(text, '=');
    if (eq) *eq = 0;
    PlotHline h = {.y = cli_double("--hline", text, 0, 1000), .text = text};
    if (eq && !eq[1]) cli_fail("--hline expects Y or Y=TEXT with some TEXT, got '%s'", arg);
    if (eq) *eq = ' ';
    return h;
}

int cmd_plot(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, 0, OPT_OUT},     {"title", required_argument, 0, OPT_TITLE},
        {"ymax", required_argument, 0, OPT_YMAX},   {"hline", required_argument, 0, OPT_HLINE},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    const char *out = NULL;
    PlotOptions po = {.ymax = NAN};
    PlotHline *hlines = NULL;  // stb_ds array
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_OUT: out = optarg; break;
        case OPT_TITLE: po.title = optarg; break;
        case OPT_YMAX: po.ymax = cli_double("--ymax", optarg, 0, 1000); break;
        case OPT_HLINE: arrput(hlines, parse_hline(optarg)); break;
        case 'h': fputs(usage, stdout); return 0;
        default: cli_bad_option("plot", c, argv, opts);
        }
    }
    if (optind >= argc) cli_misuse("plot: expected at least one LABEL=RUN (see ./gpt plot --help)");
    if (!out) cli_fail("plot: --out FILE is required (where to write the SVG)");

    char err[1024];
    size_t n = (size_t)(argc - optind);
    PlotSeries *series = xcalloc(n, sizeof *series);
    for (size_t k = 0; k < n; k++) {
        const char *arg = argv[optind + (int)k];
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1])
            cli_fail("plot: '%s' is not LABEL=RUN (a label, '=', and a run directory or CSV file)", arg);
        char *label = xmalloc((size_t)(eq - arg) + 1);
        memcpy(label, arg, (size_t)(eq - arg));
        label[eq - arg] = 0;
        if (!plot_series_load(&series[k], label, eq + 1, err, sizeof err)) cli_fail("%s", err);
        free(label);
    }
    po.hlines = hlines;
    po.n_hlines = arrlenu(hlines);
    char *svg = plot_svg(series, n, &po, err, sizeof err);
    if (!svg) cli_fail("%s", err);
    if (!write_file_atomic(out, svg, strlen(svg), err, sizeof err)) cli_fail("%s", err);

    for (size_t k = 0; k < n; k++) {
        const PlotSeries *s = &series[k];
        const SvgPoint *last = &arrlast(s->pts), *best = &s->pts[0];
        for (ptrdiff_t i = 1; i < arrlen(s->pts); i++)
            if (s->pts[i].y < best->y) best = &s->pts[i];
        printf("%s: %td evaluations; last val %.4f at %.2f min; best %.4f at %.2f min\n", s->label, arrlen(s->pts),
               last->y, last->x, best->y, best->x);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) cli_fail("cannot write to standard output");
    fprintf(stderr, "wrote %s: %zu series\n", out, n);
    for (size_t k = 0; k < n; k++) plot_series_free(&series[k]);
    free(series);
    free(svg);
    for (ptrdiff_t i = 0; i < arrlen(hlines); i++) free((char *)hlines[i].text);
    arrfree(hlines);
    return 0;
}
