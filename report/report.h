// report.h -- what a run leaves for a person to look at: metrics.csv, loss.svg,
// samples.txt. Rows live in memory and the files are rewritten atomically (temp + rename)
// whenever the run checkpoints, so they always match the latest checkpoint.
#ifndef GPT_REPORT_H
#define GPT_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

// One row per step. NAN marks an empty cell: batch_loss is empty on a row that only
// records an evaluation (step 0), train_loss/val_loss are empty between evaluations.
typedef struct {
    long step;           // optimizer updates done
    float batch_loss;    // the loss of the batch that made this update
    float train_loss;    // evaluation: mean over eval_iters batches of each split
    float val_loss;
    float lr;
    float grad_norm;     // before clipping
    float tokens_per_s;
    double elapsed_s;    // training time so far
} MetricsRow;

typedef struct {
    MetricsRow *rows;  // stb_ds array
    Buf samples;       // the samples.txt text
} Report;

void report_init(Report *r);
void report_free(Report *r);

// Adds a training step's row, or fills in the evaluation of the last row's step.
void report_add_step(Report *r, const MetricsRow *row);
void report_add_eval(Report *r, long step, float train_loss, float val_loss, double elapsed_s);
void report_add_sample(Report *r, long step, const char *prompt_note, const unsigned char *text, size_t len);

// Loads an existing run's metrics.csv and samples.txt from dir, keeping only what happened
// up to max_step (a resumed run continues from its checkpoint, not from later rows a crash
// left behind). Missing files are fine. False with a reason for a malformed file.
bool report_load(Report *r, const char *dir, long max_step, char *err, size_t errlen);

// Rewrites metrics.csv, loss.svg and samples.txt in dir. False with a reason.
bool report_write(const Report *r, const char *dir, const char *title, char *err, size_t errlen);

// The SVG document of the loss curves (malloc'd, NUL-terminated): batch loss faint, the
// evaluations' train and val loss as lines with points, axes with ticks and a legend.
char *report_svg(const Report *r, const char *title);

#endif
