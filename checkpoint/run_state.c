// run_state.c -- the training run's records in a checkpoint (see run_state.h).
//
// TCFG, the run's settings: checkpoint/run_config.h's table (train_config_encode, _decode).
//
// TSTA, where the run stands (72 bytes): i64 step, 4 x u64 rng, f32 best_val_loss,
// i64 best_step, f64 elapsed_s, u32 data_crc, u64 data_bytes. Every value is checked on the
// way back for what no run can have (a negative step, an all-zero RNG state, ...), so that
// resuming never starts from nonsense; best_val_loss alone may be +Inf (no evaluation yet).
#include "checkpoint/run_state.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "common/common.h"


// An i64 of the TSTA record that must lie in [least, LONG_MAX].
static bool check_long(const char *name, const char *field, int64_t v, long least, long *out, char *err,
                       size_t errlen) {
    if (v < least || v > LONG_MAX)
        return checkpoint_invalid(err, errlen, name, CKPT_TSTA, "has %s = %lld (expected %ld or more)", field,
                                  (long long)v, least);
    *out = (long)v;
    return true;
}

void run_state_encode(Buf *b, const TrainState *ts) {
    buf_i64(b, ts->step);
    for (int i = 0; i < 4; i++) buf_u64(b, ts->rng[i]);
    buf_f32(b, ts->best_val_loss);
    buf_i64(b, ts->best_step);
    buf_f64(b, ts->elapsed_s);
    buf_u32(b, ts->data_crc);
    buf_u64(b, ts->data_bytes);
}

static bool decode_state(const unsigned char *data, size_t len, const char *name, TrainState *ts, char *err,
                         size_t errlen) {
    memset(ts, 0, sizeof *ts);
    ByteReader r = byte_reader(data, len);
    int64_t step = br_i64(&r);
    for (int i = 0; i < 4; i++) ts->rng[i] = br_u64(&r);
    float best = br_f32(&r);
    int64_t best_step = br_i64(&r);
    double elapsed = br_f64(&r);
    ts->data_crc = br_u32(&r);
    ts->data_bytes = br_u64(&r);
    if (!checkpoint_record_done(&r, name, CKPT_TSTA, err, errlen)) return false;
    if (!check_long(name, "step", step, 0, &ts->step, err, errlen) ||
        !check_long(name, "best_step", best_step, -1, &ts->best_step, err, errlen))
        return false;
    if (isnan(best) || best == -INFINITY)  // +Inf: no evaluation yet
        return checkpoint_invalid(err, errlen, name, CKPT_TSTA, "has best_val_loss = %g", (double)best);
    ts->best_val_loss = best;
    if (!isfinite(elapsed) || elapsed < 0)
        return checkpoint_invalid(err, errlen, name, CKPT_TSTA, "has elapsed_s = %g", elapsed);
    ts->elapsed_s = elapsed;
    if ((ts->rng[0] | ts->rng[1] | ts->rng[2] | ts->rng[3]) == 0)
        return checkpoint_invalid(err, errlen, name, CKPT_TSTA,
                                  "has an all-zero RNG state (the generator would be stuck)");
    return true;
}

bool train_state_decode(const Checkpoint *ck, const char *name, TrainConfig *tc, TrainState *ts, char *err,
                        size_t errlen) {
    if (!ck->has_training) {
        set_error(err, errlen, "'%s' holds weights only, no training state", name);
        return false;
    }
    const CheckpointTraining *t = &ck->training;
    return train_config_decode(t->settings, t->settings_len, ck->version, name, tc, err, errlen) &&
           decode_state(t->state, t->state_len, name, ts, err, errlen);
}
