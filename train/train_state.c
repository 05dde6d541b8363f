// train_state.c -- the run's records in a checkpoint (see train_state.h).
//
// TCFG, the run's settings, field by field:
//   str data_path, str out_dir        (str: u32 length, then that many bytes, no NUL;
//                                      length < 1024, the size of the struct's field)
//   5 x i32 model (vocab_size, block_size, n_layer, n_head, n_embd)
//   i32 batch_size, i64 iters, f32 lr, f32 min_lr, i64 warmup_iters,
//   i64 lr_decay_iters, f32 weight_decay, f32 beta1, f32 beta2, f32 grad_clip,
//   i32 grad_accum, i64 eval_interval, i64 eval_iters, i64 sample_interval,
//   i32 sample_tokens, i64 log_interval, u64 seed, i32 threads, u32 tokenizer
//   (1 char, 2 bpe), i32 bpe_vocab_size
//
// TSTA, where the run stands (72 bytes): i64 step, 4 x u64 rng, f32 best_val_loss,
// i64 best_step, f64 elapsed_s, u32 data_crc, u64 data_bytes. Every value is checked on the
// way back for what no run can have (a negative step, an all-zero RNG state, ...), so that
// resuming never starts from nonsense; best_val_loss alone may be +Inf (no evaluation yet).
#include "train/train_state.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define TSTA_BYTES 72

// A string field of cap bytes: up to its NUL (or cap - 1 bytes), as u32 length + bytes.
static void put_str(Buf *b, const char *str, size_t cap) {
    size_t n = strnlen(str, cap - 1);
    buf_u32(b, (uint32_t)n);
    buf_add(b, str, n);
}

static void encode_config(Buf *b, const TrainConfig *tc) {
    put_str(b, tc->data_path, sizeof tc->data_path);
    put_str(b, tc->out_dir, sizeof tc->out_dir);
    checkpoint_put_config(b, &tc->model);
    buf_i32(b, tc->batch_size);
    buf_i64(b, tc->iters);
    buf_f32(b, tc->lr);
    buf_f32(b, tc->min_lr);
    buf_i64(b, tc->warmup_iters);
    buf_i64(b, tc->lr_decay_iters);
    buf_f32(b, tc->weight_decay);
    buf_f32(b, tc->beta1);
    buf_f32(b, tc->beta2);
    buf_f32(b, tc->grad_clip);
    buf_i32(b, tc->grad_accum);
    buf_i64(b, tc->eval_interval);
    buf_i64(b, tc->eval_iters);
    buf_i64(b, tc->sample_interval);
    buf_i32(b, tc->sample_tokens);
    buf_i64(b, tc->log_interval);
    buf_u64(b, tc->seed);
    buf_i32(b, tc->threads);
    buf_u32(b, (uint32_t)tc->tokenizer);
    buf_i32(b, tc->bpe_vocab_size);
}

typedef struct {
    const char *name;
    char *err;
    size_t errlen;
} Ctx;

static bool check_int(const Ctx *c, const char *field, int32_t v, int lo, int *out) {
    if (v < lo)
        return checkpoint_invalid(c->err, c->errlen, c->name, CKPT_TCFG, "has %s = %d (expected %d or more)", field,
                                  (int)v, lo);
    *out = (int)v;
    return true;
}

static bool check_long(const Ctx *c, CheckpointSection sec, const char *field, int64_t v, long lo, long *out) {
    if (v < lo || v > LONG_MAX)
        return checkpoint_invalid(c->err, c->errlen, c->name, sec, "has %s = %lld (expected %ld or more)", field,
                                  (long long)v, lo);
    *out = (long)v;
    return true;
}

static bool check_finite(const Ctx *c, const char *field, float v, float *out) {
    if (!isfinite(v))
        return checkpoint_invalid(c->err, c->errlen, c->name, CKPT_TCFG,
                                  "has %s = %g (a checkpoint never holds NaN or Inf)", field, (double)v);
    *out = v;
    return true;
}

static bool read_string(const Ctx *c, const char *field, ByteReader *r, char *out, size_t cap) {
    uint32_t n = br_u32(r);
    if (!r->ok) return checkpoint_record_done(r, c->name, CKPT_TCFG, c->err, c->errlen);
    if (n >= cap)
        return checkpoint_invalid(c->err, c->errlen, c->name, CKPT_TCFG, "has a %s of %u bytes (at most %zu)", field,
                                  n, cap - 1);
    const unsigned char *p = br_take(r, n);
    if (!p) return checkpoint_record_done(r, c->name, CKPT_TCFG, c->err, c->errlen);
    if (memchr(p, 0, n))
        return checkpoint_invalid(c->err, c->errlen, c->name, CKPT_TCFG, "has a NUL byte inside %s", field);
    memset(out, 0, cap);
    memcpy(out, p, n);
    return true;
}

static bool decode_config(const Ctx *c, ByteReader *r, TrainConfig *tc) {
    const CheckpointSection S = CKPT_TCFG;
    memset(tc, 0, sizeof *tc);
    if (!read_string(c, "data_path", r, tc->data_path, sizeof tc->data_path)) return false;
    if (!read_string(c, "out_dir", r, tc->out_dir, sizeof tc->out_dir)) return false;
    checkpoint_get_config(r, &tc->model);
    int32_t batch_size = br_i32(r);
    int64_t iters = br_i64(r);
    float lr = br_f32(r), min_lr = br_f32(r);
    int64_t warmup = br_i64(r), decay = br_i64(r);
    float wd = br_f32(r), b1 = br_f32(r), b2 = br_f32(r), clip = br_f32(r);
    int32_t accum = br_i32(r);
    int64_t eval_interval = br_i64(r), eval_iters = br_i64(r), sample_interval = br_i64(r);
    int32_t sample_tokens = br_i32(r);
    int64_t log_interval = br_i64(r);
    tc->seed = br_u64(r);
    int32_t threads = br_i32(r);
    uint32_t kind = br_u32(r);
    int32_t bpe_vocab = br_i32(r);
    if (!checkpoint_record_done(r, c->name, S, c->err, c->errlen)) return false;
    if (kind != TOKENIZER_CHAR && kind != TOKENIZER_BPE)
        return checkpoint_invalid(c->err, c->errlen, c->name, S, "has tokenizer kind %u (expected %d char or %d bpe)",
                                  kind, TOKENIZER_CHAR, TOKENIZER_BPE);
    tc->tokenizer = (TokenizerKind)kind;
    return check_int(c, "batch_size", batch_size, 1, &tc->batch_size) &&
           check_long(c, S, "iters", iters, 0, &tc->iters) && check_finite(c, "lr", lr, &tc->lr) &&
           check_finite(c, "min_lr", min_lr, &tc->min_lr) &&
           check_long(c, S, "warmup_iters", warmup, 0, &tc->warmup_iters) &&
           check_long(c, S, "lr_decay_iters", decay, 0, &tc->lr_decay_iters) &&
           check_finite(c, "weight_decay", wd, &tc->weight_decay) && check_finite(c, "beta1", b1, &tc->beta1) &&
           check_finite(c, "beta2", b2, &tc->beta2) && check_finite(c, "grad_clip", clip, &tc->grad_clip) &&
           check_int(c, "grad_accum", accum, 1, &tc->grad_accum) &&
           check_long(c, S, "eval_interval", eval_interval, 0, &tc->eval_interval) &&
           check_long(c, S, "eval_iters", eval_iters, 0, &tc->eval_iters) &&
           check_long(c, S, "sample_interval", sample_interval, 0, &tc->sample_interval) &&
           check_int(c, "sample_tokens", sample_tokens, 0, &tc->sample_tokens) &&
           check_long(c, S, "log_interval", log_interval, 0, &tc->log_interval) &&
           check_int(c, "threads", threads, 0, &tc->threads) &&
           check_int(c, "bpe_vocab_size", bpe_vocab, 0, &tc->bpe_vocab_size);
}

static void encode_state(Buf *b, const TrainState *ts) {
    buf_i64(b, ts->step);
    for (int i = 0; i < 4; i++) buf_u64(b, ts->rng[i]);
    buf_f32(b, ts->best_val_loss);
    buf_i64(b, ts->best_step);
    buf_f64(b, ts->elapsed_s);
    buf_u32(b, ts->data_crc);
    buf_u64(b, ts->data_bytes);
}

static bool decode_state(const Ctx *c, ByteReader *r, TrainState *ts) {
    const char *name = c->name;
    char *err = c->err;
    size_t errlen = c->errlen;
    memset(ts, 0, sizeof *ts);
    int64_t step = br_i64(r);
    for (int i = 0; i < 4; i++) ts->rng[i] = br_u64(r);
    float best = br_f32(r);
    int64_t best_step = br_i64(r);
    double elapsed = br_f64(r);
    ts->data_crc = br_u32(r);
    ts->data_bytes = br_u64(r);
    if (!checkpoint_record_done(r, name, CKPT_TSTA, err, errlen)) return false;
    if (!check_long(c, CKPT_TSTA, "step", step, 0, &ts->step) ||
        !check_long(c, CKPT_TSTA, "best_step", best_step, -1, &ts->best_step))
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

bool train_checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt,
                           const TrainConfig *tc, const TrainState *ts, char *err, size_t errlen) {
    assert(opt->n == m->num_params);
    Buf settings = {0}, state = {0};
    encode_config(&settings, tc);
    encode_state(&state, ts);
    assert(state.len == TSTA_BYTES);
    CheckpointTraining t = {
        .settings = (unsigned char *)settings.s, .settings_len = settings.len,
        .state = (unsigned char *)state.s, .state_len = state.len,
        .opt_step = opt->step, .opt_m = opt->m, .opt_v = opt->v,
    };
    bool ok = checkpoint_save(path, m, tok, &t, err, errlen);
    buf_free(&settings);
    buf_free(&state);
    return ok;
}

bool train_state_decode(const Checkpoint *ck, const char *name, TrainConfig *tc, TrainState *ts, char *err,
                        size_t errlen) {
    if (!ck->has_training) {
        set_error(err, errlen, "'%s' holds weights only, no training state", name);
        return false;
    }
    const CheckpointTraining *t = &ck->training;
    Ctx c = {name, err, errlen};
    ByteReader settings = byte_reader(t->settings, t->settings_len), state = byte_reader(t->state, t->state_len);
    return decode_config(&c, &settings, tc) && decode_state(&c, &state, ts);
}

bool train_resume_load(TrainResume *r, const char *path, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (!checkpoint_load(path, &r->ckpt, err, errlen)) return false;
    if (!train_state_decode(&r->ckpt, path, &r->config, &r->state, err, errlen)) {
        train_resume_free(r);
        return false;
    }
    return true;
}

void train_resume_free(TrainResume *r) {
    checkpoint_free(&r->ckpt);
    memset(r, 0, sizeof *r);
}
