// checkpoint.c -- saving and loading checkpoints (see checkpoint.h).
//
// The file, version 1. Integers are little-endian two's complement; f32 and f64 are IEEE-754
// binary32 and binary64, stored as their bit patterns, also little-endian.
//
//   offset    size  field
//   0         8     magic "GPTCKPT\0"
//   8         4     u32 version (CHECKPOINT_VERSION, 1)
//   12        ...   sections, one after another, each: u32 tag, u64 payload length, payload
//   len - 4   4     u32 CRC-32C of every byte before it (magic, version and all sections)
//
// A tag is four ASCII letters read as a u32 (so a hex dump shows "CONF", "TOKN", ...):
//
//   CONF  the model: 5 x i32 vocab_size, block_size, n_layer, n_head, n_embd      (20 bytes)
//   TOKN  the tokenizer image of tokenizer_serialize (it checks itself on the way back)
//   PARM  u64 count, then count x f32: the parameter block in param_table order; count is
//         gpt_config_num_params(CONF)                                    (8 + 4 count bytes)
//   TCFG  the run's settings (TrainConfig), field by field:
//           str data_path, str out_dir        (str: u32 length, then that many bytes, no NUL;
//                                              length < 1024, the size of the struct's field)
//           5 x i32 model (vocab_size, block_size, n_layer, n_head, n_embd)
//           i32 batch_size, i64 iters, f32 lr, f32 min_lr, i64 warmup_iters,
//           i64 lr_decay_iters, f32 weight_decay, f32 beta1, f32 beta2, f32 grad_clip,
//           i32 grad_accum, i64 eval_interval, i64 eval_iters, i64 sample_interval,
//           i32 sample_tokens, i64 log_interval, u64 seed, i32 threads, u32 tokenizer
//           (1 char, 2 bpe), i32 bpe_vocab_size
//   TSTA  where the run is (TrainState): i64 step, 4 x u64 rng, f32 best_val_loss,
//         i64 best_step, f64 elapsed_s, u32 data_crc, u64 data_bytes               (72 bytes)
//   ADAM  the optimizer: i64 step, u64 count (= PARM's), count x f32 m, count x f32 v
//                                                                    (16 + 8 count bytes)
//
// The writer emits CONF TOKN PARM, then TCFG TSTA ADAM when there is training state. The
// reader's rules:
//   - the checks run in this order, and the first failure is the message: the file can be
//     read; it is not empty; it holds at least the magic, the version and the CRC; the magic;
//     the version (1; a newer one asks for a newer gpt); the CRC (before any section is
//     parsed, so damage reads as damage and not as some odd field); then the sections.
//   - every section length must fit in what remains before the CRC, and a section's payload
//     must be exactly as long as its contents (no slack, nothing missing).
//   - sections may come in any order, but each at most once. CONF, TOKN and PARM are
//     required; TCFG, TSTA and ADAM come all three or not at all.
//   - unknown tags are rejected, not skipped: every version 1 section is listed above, so a
//     new kind of section comes with a new version, and an older gpt then says so instead
//     of quietly dropping what it cannot read.
//   - CONF passes gpt_config_check; TOKN deserializes and has CONF's vocab_size; counts match
//     the config; every float is finite (a checkpoint never holds NaN or Inf), with one
//     exception: best_val_loss is +Inf before the first evaluation. v >= 0 (it is a mean of
//     squares). The settings and state are checked for values no run can have (negative
//     sizes, an all-zero RNG state, ...) so that resuming never starts from nonsense.
//
// Saving streams to path.tmp.<pid> through a 64 KiB buffer, the CRC updated as each buffer
// goes out (parameters and moments can be hundreds of MB: the file is never built in
// memory), then fsync, close and rename; on any failure the temporary file is removed and
// the file at path is untouched.
#include "checkpoint/checkpoint.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define CKPT_MAGIC "GPTCKPT\0"
#define CKPT_MAGIC_BYTES 8
#define CKPT_HEADER_BYTES 12  // magic + version
#define CKPT_TRAILER_BYTES 4  // CRC-32C
#define SECTION_HEADER_BYTES 12
#define CONF_BYTES 20
#define TSTA_BYTES 72

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
enum {
    SEC_CONF,
    SEC_TOKN,
    SEC_PARM,
    SEC_TCFG,
    SEC_TSTA,
    SEC_ADAM,
    N_SECTIONS,
};
static const struct {
    uint32_t tag;
    const char *name;  // for messages
} SECTIONS[N_SECTIONS] = {
    [SEC_CONF] = {TAG('C', 'O', 'N', 'F'), "model config (CONF)"},
    [SEC_TOKN] = {TAG('T', 'O', 'K', 'N'), "tokenizer (TOKN)"},
    [SEC_PARM] = {TAG('P', 'A', 'R', 'M'), "parameters (PARM)"},
    [SEC_TCFG] = {TAG('T', 'C', 'F', 'G'), "training settings (TCFG)"},
    [SEC_TSTA] = {TAG('T', 'S', 'T', 'A'), "training state (TSTA)"},
    [SEC_ADAM] = {TAG('A', 'D', 'A', 'M'), "optimizer state (ADAM)"},
};

// The sections below write TrainConfig and TrainState field by field. A field added to
// either struct must be added to them too (and CHECKPOINT_VERSION bumped); these sizes,
// checked where they are known (LP64), are the reminder.
#if defined(__LP64__) && !defined(GPT_CHECKPOINT_NO_LAYOUT_CHECK)
_Static_assert(sizeof(TrainConfig) == 2192, "TrainConfig changed: update the TCFG section in checkpoint.c");
_Static_assert(sizeof(TrainState) == 80, "TrainState changed: update the TSTA section in checkpoint.c");
#endif

// ---- little-endian encoding -----------------------------------------------------------------

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// A small section's payload, built in memory (TCFG and TSTA are a few KiB at most).
typedef struct {
    unsigned char b[4096];
    size_t n;
} SmallBuf;

static void sb_u32(SmallBuf *s, uint32_t v) {
    assert(s->n + 4 <= sizeof s->b);
    put_u32(s->b + s->n, v);
    s->n += 4;
}

static void sb_u64(SmallBuf *s, uint64_t v) {
    assert(s->n + 8 <= sizeof s->b);
    put_u64(s->b + s->n, v);
    s->n += 8;
}

static void sb_i32(SmallBuf *s, int v) { sb_u32(s, (uint32_t)v); }
static void sb_i64(SmallBuf *s, long v) { sb_u64(s, (uint64_t)(int64_t)v); }
static void sb_f32(SmallBuf *s, float v) { sb_u32(s, f32_bits(v)); }

static void sb_f64(SmallBuf *s, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    sb_u64(s, u);
}

// A string field of cap bytes: up to its NUL (or cap - 1 bytes), as u32 length + bytes.
static void sb_str(SmallBuf *s, const char *str, size_t cap) {
    size_t n = strnlen(str, cap - 1);
    sb_u32(s, (uint32_t)n);
    assert(s->n + n <= sizeof s->b);
    memcpy(s->b + s->n, str, n);
    s->n += n;
}

static void sb_config(SmallBuf *s, const GPTConfig *c) {
    sb_i32(s, c->vocab_size);
    sb_i32(s, c->block_size);
    sb_i32(s, c->n_layer);
    sb_i32(s, c->n_head);
    sb_i32(s, c->n_embd);
}

static void encode_train_config(SmallBuf *s, const TrainConfig *tc) {
    sb_str(s, tc->data_path, sizeof tc->data_path);
    sb_str(s, tc->out_dir, sizeof tc->out_dir);
    sb_config(s, &tc->model);
    sb_i32(s, tc->batch_size);
    sb_i64(s, tc->iters);
    sb_f32(s, tc->lr);
    sb_f32(s, tc->min_lr);
    sb_i64(s, tc->warmup_iters);
    sb_i64(s, tc->lr_decay_iters);
    sb_f32(s, tc->weight_decay);
    sb_f32(s, tc->beta1);
    sb_f32(s, tc->beta2);
    sb_f32(s, tc->grad_clip);
    sb_i32(s, tc->grad_accum);
    sb_i64(s, tc->eval_interval);
    sb_i64(s, tc->eval_iters);
    sb_i64(s, tc->sample_interval);
    sb_i32(s, tc->sample_tokens);
    sb_i64(s, tc->log_interval);
    sb_u64(s, tc->seed);
    sb_i32(s, tc->threads);
    sb_u32(s, (uint32_t)tc->tokenizer);
    sb_i32(s, tc->bpe_vocab_size);
}

static void encode_train_state(SmallBuf *s, const TrainState *ts) {
    sb_i64(s, ts->step);
    for (int i = 0; i < 4; i++) sb_u64(s, ts->rng[i]);
    sb_f32(s, ts->best_val_loss);
    sb_i64(s, ts->best_step);
    sb_f64(s, ts->elapsed_s);
    sb_u32(s, ts->data_crc);
    sb_u64(s, ts->data_bytes);
    assert(s->n == TSTA_BYTES);
}

// ---- saving ---------------------------------------------------------------------------------

// Streams bytes to a file through one buffer, the CRC updated as each buffer goes out. The
// first failure sticks (later writes do nothing) and its errno is kept for the message.
typedef struct {
    AtomicFile file;  // the temporary file; its first failure sticks
    uint32_t crc;
    size_t n;
    unsigned char buf[1 << 16];
} Writer;

static void w_flush(Writer *w) {
    if (!w->n) return;
    w->crc = crc32c(w->crc, w->buf, w->n);
    atomic_write(&w->file, w->buf, w->n);
    w->n = 0;
}

static void w_bytes(Writer *w, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len && !w->file.error) {
        if (w->n == sizeof w->buf) w_flush(w);
        size_t k = sizeof w->buf - w->n;
        if (k > len) k = len;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        len -= k;
    }
}

static void w_u32(Writer *w, uint32_t v) {
    unsigned char b[4];
    put_u32(b, v);
    w_bytes(w, b, 4);
}

static void w_u64(Writer *w, uint64_t v) {
    unsigned char b[8];
    put_u64(b, v);
    w_bytes(w, b, 8);
}

static void w_floats(Writer *w, const float *x, size_t n) {
    for (size_t i = 0; i < n && !w->file.error; i++) {
        if (sizeof w->buf - w->n < 4) w_flush(w);
        put_u32(w->buf + w->n, f32_bits(x[i]));
        w->n += 4;
    }
}

static void w_section(Writer *w, int sec, uint64_t len) {
    w_u32(w, SECTIONS[sec].tag);
    w_u64(w, len);
}

static void w_small_section(Writer *w, int sec, const SmallBuf *s) {
    w_section(w, sec, s->n);
    w_bytes(w, s->b, s->n);
}

bool checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt, const TrainConfig *tc,
                     const TrainState *ts, char *err, size_t errlen) {
    bool train = opt != NULL;
    assert((tc != NULL) == train && (ts != NULL) == train);  // all three or none
    assert(!train || opt->n == m->num_params);
    assert(tokenizer_vocab_size(tok) == m->config.vocab_size);

    Writer *w = xmalloc(sizeof *w);
    if (!atomic_open(&w->file, path, err, errlen)) {
        free(w);
        return false;
    }
    w->crc = 0;
    w->n = 0;

    unsigned char header[CKPT_HEADER_BYTES];
    memcpy(header, CKPT_MAGIC, CKPT_MAGIC_BYTES);
    put_u32(header + CKPT_MAGIC_BYTES, CHECKPOINT_VERSION);
    w_bytes(w, header, sizeof header);

    SmallBuf *s = xmalloc(sizeof *s);
    s->n = 0;
    sb_config(s, &m->config);
    w_small_section(w, SEC_CONF, s);

    size_t image_len;
    unsigned char *image = tokenizer_serialize(tok, &image_len);
    w_section(w, SEC_TOKN, image_len);
    w_bytes(w, image, image_len);
    free(image);

    uint64_t n = m->num_params;
    w_section(w, SEC_PARM, 8 + 4 * n);
    w_u64(w, n);
    w_floats(w, m->params, n);

    if (train) {
        s->n = 0;
        encode_train_config(s, tc);
        w_small_section(w, SEC_TCFG, s);
        s->n = 0;
        encode_train_state(s, ts);
        w_small_section(w, SEC_TSTA, s);
        w_section(w, SEC_ADAM, 16 + 8 * n);
        w_u64(w, (uint64_t)(int64_t)opt->step);
        w_u64(w, n);
        w_floats(w, opt->m, n);
        w_floats(w, opt->v, n);
    }
    free(s);

    w_flush(w);  // the CRC now covers every byte written
    unsigned char trailer[CKPT_TRAILER_BYTES];
    put_u32(trailer, w->crc);
    atomic_write(&w->file, trailer, sizeof trailer);
    bool ok = atomic_commit(&w->file, path, err, errlen);
    free(w);
    return ok;
}

// ---- loading --------------------------------------------------------------------------------

// A bounds-checked reader over one section's payload: a read past the end yields zeros and
// clears ok, so a section is decoded straight through and checked once at its end.
typedef struct {
    const unsigned char *p;
    size_t left;
    bool ok;
} Reader;

static const unsigned char *r_take(Reader *r, size_t n) {
    if (!r->ok || r->left < n) {
        r->ok = false;
        r->left = 0;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t r_u32(Reader *r) {
    const unsigned char *p = r_take(r, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t r_u64(Reader *r) {
    const unsigned char *p = r_take(r, 8);
    return p ? get_u64(p) : 0;
}

static int32_t r_i32(Reader *r) { return (int32_t)r_u32(r); }
static int64_t r_i64(Reader *r) { return (int64_t)r_u64(r); }
static float r_f32(Reader *r) { return bits_f32(r_u32(r)); }

static double r_f64(Reader *r) {
    uint64_t u = r_u64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

// What a failed load reports: "'name' <what>".
typedef struct {
    const char *name;
    char *err;
    size_t errlen;
} LoadCtx;

static bool fail(const LoadCtx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);

static bool fail(const LoadCtx *c, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_error(c->err, c->errlen, "'%s' %s", c->name, what);
    return false;
}

static bool section_done(const LoadCtx *c, int sec, const Reader *r) {
    if (!r->ok) return fail(c, "is not a valid checkpoint: its %s section is too short", SECTIONS[sec].name);
    if (r->left)
        return fail(c, "is not a valid checkpoint: its %s section has %zu unexpected bytes at its end",
                    SECTIONS[sec].name, r->left);
    return true;
}

// An i64 field that must lie in [lo, LONG_MAX] (and fit in a long where long is 32 bits).
static bool check_long(const LoadCtx *c, int sec, const char *field, int64_t v, long lo, long *out) {
    if (v < lo || v > LONG_MAX)
        return fail(c, "is not a valid checkpoint: its %s has %s = %lld (expected %ld or more)", SECTIONS[sec].name,
                    field, (long long)v, lo);
    *out = (long)v;
    return true;
}

static bool check_int(const LoadCtx *c, int sec, const char *field, int32_t v, int lo, int *out) {
    if (v < lo)
        return fail(c, "is not a valid checkpoint: its %s has %s = %d (expected %d or more)", SECTIONS[sec].name,
                    field, (int)v, lo);
    *out = (int)v;
    return true;
}

static bool check_finite(const LoadCtx *c, int sec, const char *field, float v, float *out) {
    if (!isfinite(v))
        return fail(c, "is not a valid checkpoint: its %s has %s = %g (a checkpoint never holds NaN or Inf)",
                    SECTIONS[sec].name, field, (double)v);
    *out = v;
    return true;
}

static bool read_string(const LoadCtx *c, int sec, const char *field, Reader *r, char *out, size_t cap) {
    uint32_t n = r_u32(r);
    if (!r->ok) return section_done(c, sec, r);
    if (n >= cap)
        return fail(c, "is not a valid checkpoint: its %s has a %s of %u bytes (at most %zu)", SECTIONS[sec].name,
                    field, n, cap - 1);
    const unsigned char *p = r_take(r, n);
    if (!p) return section_done(c, sec, r);
    if (memchr(p, 0, n))
        return fail(c, "is not a valid checkpoint: its %s has a NUL byte inside %s", SECTIONS[sec].name, field);
    memset(out, 0, cap);
    memcpy(out, p, n);
    return true;
}

static bool parse_config(const LoadCtx *c, Reader *r, GPTConfig *cfg) {
    cfg->vocab_size = r_i32(r);
    cfg->block_size = r_i32(r);
    cfg->n_layer = r_i32(r);
    cfg->n_head = r_i32(r);
    cfg->n_embd = r_i32(r);
    if (!section_done(c, SEC_CONF, r)) return false;
    char why[256];
    if (!gpt_config_check(cfg, why, sizeof why)) return fail(c, "is not a valid checkpoint: its model config: %s", why);
    return true;
}

// Decodes count floats (all finite; non-negative too when nonneg) into a new block.
static bool read_floats(const LoadCtx *c, int sec, const char *what, Reader *r, size_t count, bool nonneg,
                        float **out) {
    const unsigned char *p = r_take(r, 4 * count);
    if (!p) return section_done(c, sec, r);
    float *x = xalloc_floats(count);
    for (size_t i = 0; i < count; i++) {
        float f = bits_f32(get_u32(p + 4 * i));
        if (!isfinite(f) || (nonneg && f < 0)) {
            free(x);
            return fail(c, "is not a valid checkpoint: %s %zu of %zu is %g (%s)", what, i, count, (double)f,
                        isfinite(f) ? "a second moment is never negative" : "a checkpoint never holds NaN or Inf");
        }
        x[i] = f;
    }
    *out = x;
    return true;
}

static bool parse_train_config(const LoadCtx *c, Reader *r, TrainConfig *tc) {
    const int S = SEC_TCFG;
    memset(tc, 0, sizeof *tc);
    if (!read_string(c, S, "data_path", r, tc->data_path, sizeof tc->data_path)) return false;
    if (!read_string(c, S, "out_dir", r, tc->out_dir, sizeof tc->out_dir)) return false;
    tc->model.vocab_size = r_i32(r);
    tc->model.block_size = r_i32(r);
    tc->model.n_layer = r_i32(r);
    tc->model.n_head = r_i32(r);
    tc->model.n_embd = r_i32(r);
    int32_t batch_size = r_i32(r);
    int64_t iters = r_i64(r);
    float lr = r_f32(r), min_lr = r_f32(r);
    int64_t warmup = r_i64(r), decay = r_i64(r);
    float wd = r_f32(r), b1 = r_f32(r), b2 = r_f32(r), clip = r_f32(r);
    int32_t accum = r_i32(r);
    int64_t eval_interval = r_i64(r), eval_iters = r_i64(r), sample_interval = r_i64(r);
    int32_t sample_tokens = r_i32(r);
    int64_t log_interval = r_i64(r);
    tc->seed = r_u64(r);
    int32_t threads = r_i32(r);
    uint32_t kind = r_u32(r);
    int32_t bpe_vocab = r_i32(r);
    if (!section_done(c, S, r)) return false;
    if (kind != TOKENIZER_CHAR && kind != TOKENIZER_BPE)
        return fail(c, "is not a valid checkpoint: its %s has tokenizer kind %u (expected %d char or %d bpe)",
                    SECTIONS[S].name, kind, TOKENIZER_CHAR, TOKENIZER_BPE);
    tc->tokenizer = (TokenizerKind)kind;
    return check_int(c, S, "batch_size", batch_size, 1, &tc->batch_size) &&
           check_long(c, S, "iters", iters, 0, &tc->iters) && check_finite(c, S, "lr", lr, &tc->lr) &&
           check_finite(c, S, "min_lr", min_lr, &tc->min_lr) &&
           check_long(c, S, "warmup_iters", warmup, 0, &tc->warmup_iters) &&
           check_long(c, S, "lr_decay_iters", decay, 0, &tc->lr_decay_iters) &&
           check_finite(c, S, "weight_decay", wd, &tc->weight_decay) && check_finite(c, S, "beta1", b1, &tc->beta1) &&
           check_finite(c, S, "beta2", b2, &tc->beta2) && check_finite(c, S, "grad_clip", clip, &tc->grad_clip) &&
           check_int(c, S, "grad_accum", accum, 1, &tc->grad_accum) &&
           check_long(c, S, "eval_interval", eval_interval, 0, &tc->eval_interval) &&
           check_long(c, S, "eval_iters", eval_iters, 0, &tc->eval_iters) &&
           check_long(c, S, "sample_interval", sample_interval, 0, &tc->sample_interval) &&
           check_int(c, S, "sample_tokens", sample_tokens, 0, &tc->sample_tokens) &&
           check_long(c, S, "log_interval", log_interval, 0, &tc->log_interval) &&
           check_int(c, S, "threads", threads, 0, &tc->threads) &&
           check_int(c, S, "bpe_vocab_size", bpe_vocab, 0, &tc->bpe_vocab_size);
}

static bool parse_train_state(const LoadCtx *c, Reader *r, TrainState *ts) {
    const int S = SEC_TSTA;
    memset(ts, 0, sizeof *ts);
    int64_t step = r_i64(r);
    for (int i = 0; i < 4; i++) ts->rng[i] = r_u64(r);
    float best = r_f32(r);
    int64_t best_step = r_i64(r);
    double elapsed = r_f64(r);
    ts->data_crc = r_u32(r);
    ts->data_bytes = r_u64(r);
    if (!section_done(c, S, r)) return false;
    if (!check_long(c, S, "step", step, 0, &ts->step) || !check_long(c, S, "best_step", best_step, -1, &ts->best_step))
        return false;
    if (isnan(best) || best == -INFINITY)  // +Inf: no evaluation yet
        return fail(c, "is not a valid checkpoint: its %s has best_val_loss = %g", SECTIONS[S].name, (double)best);
    ts->best_val_loss = best;
    if (!isfinite(elapsed) || elapsed < 0)
        return fail(c, "is not a valid checkpoint: its %s has elapsed_s = %g", SECTIONS[S].name, elapsed);
    ts->elapsed_s = elapsed;
    if ((ts->rng[0] | ts->rng[1] | ts->rng[2] | ts->rng[3]) == 0)
        return fail(c, "is not a valid checkpoint: its %s has an all-zero RNG state (the generator would be stuck)",
                    SECTIONS[S].name);
    return true;
}

static bool parse_sections(const LoadCtx *c, const unsigned char *data, size_t len, Checkpoint *ck) {
    // First the table of contents: where each known section is, each once, each in bounds.
    Reader sec[N_SECTIONS];
    bool have[N_SECTIONS] = {false};
    size_t pos = CKPT_HEADER_BYTES, end = len - CKPT_TRAILER_BYTES;
    while (pos < end) {
        if (end - pos < SECTION_HEADER_BYTES)
            return fail(c, "is not a valid checkpoint: %zu stray bytes at offset %zu, too few for a section header",
                        end - pos, pos);
        uint32_t tag = get_u32(data + pos);
        uint64_t slen = get_u64(data + pos + 4);
        size_t at = pos;
        pos += SECTION_HEADER_BYTES;
        int k = 0;
        while (k < N_SECTIONS && SECTIONS[k].tag != tag) k++;
        if (k == N_SECTIONS) {
            char t[5];
            for (int i = 0; i < 4; i++) {
                unsigned char b = (unsigned char)(tag >> (8 * i));
                t[i] = b >= 0x20 && b < 0x7F ? (char)b : '?';
            }
            t[4] = 0;
            return fail(c, "is not a valid checkpoint: unknown section tag 0x%08X (\"%s\") at offset %zu", tag, t, at);
        }
        if (have[k]) return fail(c, "is not a valid checkpoint: a second %s section at offset %zu", SECTIONS[k].name, at);
        if (slen > end - pos)
            return fail(c, "is not a valid checkpoint: its %s section claims %llu bytes, only %zu remain",
                        SECTIONS[k].name, (unsigned long long)slen, end - pos);
        have[k] = true;
        sec[k] = (Reader){data + pos, (size_t)slen, true};
        pos += (size_t)slen;
    }
    for (int k = SEC_CONF; k <= SEC_PARM; k++)
        if (!have[k]) return fail(c, "is not a valid checkpoint: it has no %s section", SECTIONS[k].name);
    int n_train = have[SEC_TCFG] + have[SEC_TSTA] + have[SEC_ADAM];
    if (n_train != 0 && n_train != 3) {
        int missing = !have[SEC_TCFG] ? SEC_TCFG : !have[SEC_TSTA] ? SEC_TSTA : SEC_ADAM;
        return fail(c, "is not a valid checkpoint: it has training state but no %s section", SECTIONS[missing].name);
    }

    // Then each section, in the order their checks depend on one another.
    if (!parse_config(c, &sec[SEC_CONF], &ck->config)) return false;

    char why[256];
    Reader *t = &sec[SEC_TOKN];
    ck->tok = tokenizer_deserialize(t->p, t->left, why, sizeof why);
    if (!ck->tok) return fail(c, "is not a valid checkpoint: its tokenizer is corrupt: %s", why);
    if (tokenizer_vocab_size(ck->tok) != ck->config.vocab_size)
        return fail(c, "is not a valid checkpoint: its tokenizer has %d tokens, its model config vocab_size %d",
                    tokenizer_vocab_size(ck->tok), ck->config.vocab_size);

    size_t need = gpt_config_num_params(&ck->config);
    Reader *p = &sec[SEC_PARM];
    uint64_t count = r_u64(p);
    if (!p->ok) return section_done(c, SEC_PARM, p);
    if (count != need)
        return fail(c,
                    "is not a valid checkpoint: it holds %llu parameters, but its model config (V=%d T=%d L=%d H=%d "
                    "C=%d) has %zu",
                    (unsigned long long)count, ck->config.vocab_size, ck->config.block_size, ck->config.n_layer,
                    ck->config.n_head, ck->config.n_embd, need);
    if (!read_floats(c, SEC_PARM, "parameter", p, need, false, &ck->params)) return false;
    ck->num_params = need;
    if (!section_done(c, SEC_PARM, p)) return false;

    if (n_train == 0) return true;
    if (!parse_train_config(c, &sec[SEC_TCFG], &ck->train)) return false;
    if (!parse_train_state(c, &sec[SEC_TSTA], &ck->state)) return false;
    Reader *a = &sec[SEC_ADAM];
    int64_t step = r_i64(a);
    uint64_t acount = r_u64(a);
    if (!a->ok) return section_done(c, SEC_ADAM, a);
    if (!check_long(c, SEC_ADAM, "step", step, 0, &ck->opt_step)) return false;
    if (acount != need)
        return fail(c, "is not a valid checkpoint: its optimizer state has %llu moments, its parameters %zu",
                    (unsigned long long)acount, need);
    if (!read_floats(c, SEC_ADAM, "first moment", a, need, false, &ck->opt_m)) return false;
    if (!read_floats(c, SEC_ADAM, "second moment", a, need, true, &ck->opt_v)) return false;
    if (!section_done(c, SEC_ADAM, a)) return false;
    ck->has_train_state = true;
    return true;
}

bool checkpoint_load_from_memory(const unsigned char *data, size_t len, const char *name, Checkpoint *ck, char *err,
                                 size_t errlen) {
    memset(ck, 0, sizeof *ck);
    LoadCtx c = {name, err, errlen};
    if (!data || len == 0) return fail(&c, "is empty, expected a gpt checkpoint");
    size_t fixed = CKPT_HEADER_BYTES + CKPT_TRAILER_BYTES;
    if (len < fixed) {
        // A short file that does not even start like a checkpoint is not one at all.
        size_t k = len < CKPT_MAGIC_BYTES ? len : CKPT_MAGIC_BYTES;
        if (memcmp(data, CKPT_MAGIC, k) != 0) return fail(&c, "is not a gpt checkpoint (bad magic)");
        return fail(&c, "is truncated: %zu bytes, shorter than the %zu of a checkpoint's header and checksum", len,
                    fixed);
    }
    if (memcmp(data, CKPT_MAGIC, CKPT_MAGIC_BYTES) != 0) return fail(&c, "is not a gpt checkpoint (bad magic)");
    uint32_t version = get_u32(data + CKPT_MAGIC_BYTES);
    if (version > CHECKPOINT_VERSION)
        return fail(&c, "has checkpoint version %u; this gpt reads version %d (built from an older source?)", version,
                    CHECKPOINT_VERSION);
    if (version < 1) return fail(&c, "has checkpoint version %u, which no gpt writes (damaged file?)", version);
    if (get_u32(data + len - CKPT_TRAILER_BYTES) != crc32c(0, data, len - CKPT_TRAILER_BYTES))
        return fail(&c, "is corrupt: checksum mismatch (truncated or damaged file)");
    if (!parse_sections(&c, data, len, ck)) {
        checkpoint_free(ck);
        return false;
    }
    return true;
}

bool checkpoint_load(const char *path, Checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    size_t len;
    unsigned char *data = read_file(path, &len, err, errlen);
    if (!data) return false;
    bool ok = checkpoint_load_from_memory(data, len, path, ck, err, errlen);
    free(data);
    return ok;
}

void checkpoint_free(Checkpoint *ck) {
    tokenizer_free(ck->tok);
    free(ck->params);
    free(ck->opt_m);
    free(ck->opt_v);
    memset(ck, 0, sizeof *ck);
}

void checkpoint_to_model(const Checkpoint *ck, GPT *m, int max_batch, int flags) {
    // The weights come from the checkpoint: drawing random ones first would be wasted work.
    gpt_init(m, &ck->config, max_batch, 0, flags & ~GPT_INIT_WEIGHTS);
    assert(m->num_params == ck->num_params);
    memcpy(m->params, ck->params, ck->num_params * sizeof(float));
}
