// test_parity.c -- the C model against PyTorch: logits, loss, every parameter gradient, and
// the weights after a few AdamW steps, compared with a fixture that scripts/torch_reference.py
// computed in float64 from the same checkpoint. Both files are committed under tests/fixtures
// (GPT_PARITY_DIR overrides the directory), so the test needs no Python. The logits, the
// gradients and the steps are checked on both the fast and the textbook kernels.
//
// The fixture's format is documented in scripts/torch_reference.py: "GPTFIX1\n", u32 record
// count, records (u32 name length, name, u32 dtype 1=i32 2=f32 3=f64, u32 ndim, u32 dims,
// little-endian data), u32 CRC-32C of everything before it. The reader below is strict: any
// damage is reported by name before a value is used.
//
// Errors are norm-based per tensor, rel(a, b) = |a - b| / (|a| + |b|) (0 when both are 0);
// GPT_PARITY_VERBOSE=1 prints each one with its element-wise max |a - b|. The C model runs in
// float32 and the reference in float64, so the errors are the C model's own rounding. Largest
// measured values (gcc and clang; -O0 to -O3, with and without -march=native and OpenMP, and
// under the sanitizers) and the tolerances:
//
//   quantity                         measured   tolerance
//   logits                           6.9e-8     1e-5
//   logits, max |diff| / max |ref|   2.6e-7     1e-5
//   loss                             1.6e-8     1e-5
//   gradient, every tensor           3.2e-7     1e-5
//   each step's loss, grad norm      2.8e-8     1e-5
//   weights after the K steps        3.8e-8     1e-5
//   update (after - start)           1.3e-5     1e-4
//
// Forward and backward are sums of at most a few hundred terms in float32: 1e-7..3e-7 is the
// expected rounding, and 1e-5 (the "about 1e-5 relative") leaves 30x headroom while
// sitting 50x below the defects the negative tests plant (one tensor or one gradient 0.1% off).
//
// The update is the sensitive measure: over K = 3 steps at lr 1e-3 a weight moves by ~3e-3,
// ~1% of its size, so the weights themselves hide update errors below 1e-2 of the update.
// Two things set its floor. (1) The C weights are float32: each step rounds a LayerNorm gain
// (about 1) by up to 6e-8, so a gain's update of 3e-3 carries up to K * 6e-8 / 3e-3 = 6e-5
// relative error element-wise, 1.3e-5 measured over the tensor (matrices, with weights ~0.1,
// are 10x below that). (2) AdamW's update is lr * m^/(sqrt(v^) + eps), about lr * sign(g) in
// the first steps, so an element whose gradient is near zero amplifies the gradient's error,
// and one within that error of zero could flip sign (an error of 2 lr in that element, ~1e-2
// per tensor). The fixture's batch seed was chosen so that the smallest gradient element is
// 1e-4 of its tensor's RMS and at least 28x the C model's largest error in that tensor's
// gradient (so no sign is near flipping): the matrices' updates measure 7.6e-7 (8.5e-6 with
// another batch, whose smallest gradients sat near eps). Hence 1e-4 for updates: above the
// float32 floor of (1) in the worst case, and still 5..50x below a 1% learning-rate error, a
// missing weight decay, or beta2 0.999 for 0.99 (each caught by the negative tests).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/gpt.h"
#include "tests/tests.h"
#include "train/adamw.h"
#include "checkpoint/checkpoint.h"

#define TOL_FORWARD 1e-5  // logits, loss
#define TOL_GRAD 1e-5     // every parameter gradient, per tensor
#define TOL_STEP 1e-5     // each AdamW step's loss and pre-clipping gradient norm
#define TOL_WEIGHTS 1e-5  // the parameters after the K steps, per tensor
#define TOL_UPDATE 1e-4   // the change of each parameter over the K steps, per tensor

// ---------------------------------------------------------------------------------------------
// The fixture reader.

#define FIX_MAGIC "GPTFIX1\n"
#define FIX_MAGIC_BYTES 8
#define FIX_MAX_NDIM 4
#define FIX_MAX_NAME 255

enum { DT_I32 = 1, DT_F32 = 2, DT_F64 = 3 };

typedef struct {
    char name[FIX_MAX_NAME + 1];
    int dtype;
    int ndim;
    size_t dims[FIX_MAX_NDIM];
    size_t count;               // product of dims (1 for a scalar)
    const unsigned char *data;  // into Fixture.buf
} FixRecord;

typedef struct {
    unsigned char *buf;  // the whole file (owned when loaded from a path)
    size_t len;
    FixRecord *recs;
    size_t n;
    char name[1024];     // for messages
} Fixture;

static uint32_t le_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le_u64(const unsigned char *p) { return (uint64_t)le_u32(p) | (uint64_t)le_u32(p + 4) << 32; }

static size_t dtype_size(int dtype) { return dtype == DT_F64 ? 8 : 4; }

// Parses data[0..len) into fx->recs (fx->buf is not touched). False with a one-line reason.
static bool fixture_parse(Fixture *fx, const unsigned char *data, size_t len, char *err, size_t errlen) {
    const char *nm = fx->name;
    fx->recs = NULL;
    fx->n = 0;
    if (len < FIX_MAGIC_BYTES + 8) {
        set_error(err, errlen, "%s: %zu bytes is too short for a parity fixture", nm, len);
        return false;
    }
    if (memcmp(data, FIX_MAGIC, FIX_MAGIC_BYTES) != 0) {
        set_error(err, errlen, "%s: not a parity fixture (bad magic)", nm);
        return false;
    }
    uint32_t want = le_u32(data + len - 4), got = crc32c(0, data, len - 4);
    if (want != got) {
        set_error(err, errlen, "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged", nm,
                  (unsigned)want, (unsigned)got);
        return false;
    }
    size_t end = len - 4, pos = FIX_MAGIC_BYTES;
    uint32_t n = le_u32(data + pos);
    pos += 4;
    if (n > (end - pos) / 16) {  // a record is at least 16 bytes
        set_error(err, errlen, "%s: %u records cannot fit in %zu bytes", nm, (unsigned)n, len);
        return false;
    }
    fx->recs = xcalloc(n ? n : 1, sizeof(FixRecord));
    for (uint32_t r = 0; r < n; r++) {
        FixRecord *rec = &fx->recs[r];
#define NEED(k, what)                                                                                 \
    do {                                                                                              \
        if ((size_t)(k) > end - pos) {                                                                \
            set_error(err, errlen, "%s: record %u is truncated in its %s", nm, (unsigned)r, what);    \
            goto fail;                                                                                \
        }                                                                                             \
    } while (0)
        NEED(4, "name length");
        uint32_t name_len = le_u32(data + pos);
        pos += 4;
        if (name_len < 1 || name_len > FIX_MAX_NAME) {
            set_error(err, errlen, "%s: record %u has a name of %u bytes (1..%d)", nm, (unsigned)r,
                      (unsigned)name_len, FIX_MAX_NAME);
            goto fail;
        }
        NEED(name_len, "name");
        for (uint32_t i = 0; i < name_len; i++) {
            unsigned char c = data[pos + i];
            if (c < 0x21 || c > 0x7e) {
                set_error(err, errlen, "%s: record %u's name has a byte 0x%02x (printable ASCII only)", nm,
                          (unsigned)r, c);
                goto fail;
            }
        }
        memcpy(rec->name, data + pos, name_len);
        rec->name[name_len] = '\0';
        pos += name_len;
        for (uint32_t q = 0; q < r; q++)
            if (strcmp(fx->recs[q].name, rec->name) == 0) {
                set_error(err, errlen, "%s: record '%s' appears twice", nm, rec->name);
                goto fail;
            }
        NEED(8, "dtype and ndim");
        uint32_t dtype = le_u32(data + pos), ndim = le_u32(data + pos + 4);
        pos += 8;
        if (dtype < DT_I32 || dtype > DT_F64) {
            set_error(err, errlen, "%s: record '%s' has dtype %u (1 i32, 2 f32, 3 f64)", nm, rec->name,
                      (unsigned)dtype);
            goto fail;
        }
        if (ndim > FIX_MAX_NDIM) {
            set_error(err, errlen, "%s: record '%s' has %u dimensions (at most %d)", nm, rec->name,
                      (unsigned)ndim, FIX_MAX_NDIM);
            goto fail;
        }
        rec->dtype = (int)dtype;
        rec->ndim = (int)ndim;
        NEED(4 * (size_t)ndim, "dimensions");
        size_t count = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint32_t dim = le_u32(data + pos + 4 * d);
            // The whole file is smaller than SIZE_MAX, so a count that would overflow is
            // caught by the size check below once it exceeds the bytes left.
            if (dim == 0 || count > (end - pos) / dim) {
                set_error(err, errlen, "%s: record '%s' has a bad or oversized dimension %u", nm, rec->name,
                          (unsigned)dim);
                goto fail;
            }
            rec->dims[d] = dim;
            count *= dim;
        }
        pos += 4 * (size_t)ndim;
        rec->count = count;
        if (count > (end - pos) / dtype_size(rec->dtype)) {
            set_error(err, errlen, "%s: record '%s' needs %zu values, the file ends first", nm, rec->name, count);
            goto fail;
        }
        rec->data = data + pos;
        pos += count * dtype_size(rec->dtype);
#undef NEED
    }
    if (pos != end) {
        set_error(err, errlen, "%s: %zu stray bytes after the last record", nm, end - pos);
        goto fail;
    }
    fx->n = n;
    return true;
fail:
    free(fx->recs);
    fx->recs = NULL;
    return false;
}

static bool fixture_load(Fixture *fx, const char *path, char *err, size_t errlen) {
    memset(fx, 0, sizeof *fx);
    snprintf(fx->name, sizeof fx->name, "%s", path);
    fx->buf = read_file(path, &fx->len, err, errlen);
    if (!fx->buf) return false;
    if (!fixture_parse(fx, fx->buf, fx->len, err, errlen)) {
        free(fx->buf);
        fx->buf = NULL;
        return false;
    }
    return true;
}

static void fixture_free(Fixture *fx) {
    free(fx->buf);
    free(fx->recs);
    memset(fx, 0, sizeof *fx);
}

// The record called name, which must have this dtype and shape (ndim dims; ndim 0: scalar).
static const FixRecord *fix_get(const Fixture *fx, const char *name, int dtype, int ndim, const int *dims) {
    const FixRecord *rec = NULL;
    for (size_t i = 0; i < fx->n; i++)
        if (strcmp(fx->recs[i].name, name) == 0) rec = &fx->recs[i];
    ck_assert_msg(rec != NULL, "%s: no record '%s'", fx->name, name);
    ck_assert_msg(rec->dtype == dtype, "%s: record '%s' has dtype %d, expected %d", fx->name, name, rec->dtype,
                  dtype);
    bool same = rec->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = rec->dims[d] == (size_t)dims[d];
    ck_assert_msg(same, "%s: record '%s' has the wrong shape (ndim %d, first dim %zu)", fx->name, name, rec->ndim,
                  rec->ndim ? rec->dims[0] : (size_t)1);
    return rec;
}

// A float record's values as doubles (malloc'd).
static double *fix_doubles(const Fixture *fx, const char *name, int dtype, int ndim, const int *dims) {
    const FixRecord *rec = fix_get(fx, name, dtype, ndim, dims);
    double *out = xmalloc(rec->count * sizeof(double));
    for (size_t i = 0; i < rec->count; i++) {
        if (dtype == DT_F32) {
            uint32_t u = le_u32(rec->data + 4 * i);
            float f;
            memcpy(&f, &u, 4);
            out[i] = f;
        } else {
            uint64_t u = le_u64(rec->data + 8 * i);
            memcpy(&out[i], &u, 8);
        }
        ck_assert_msg(isfinite(out[i]), "%s: record '%s' holds a non-finite value", fx->name, name);
    }
    return out;
}

static double fix_scalar(const Fixture *fx, const char *name) {
    double *d = fix_doubles(fx, name, DT_F64, 0, NULL);
    double v = d[0];
    free(d);
    return v;
}

static int *fix_ints(const Fixture *fx, const char *name, int ndim, const int *dims) {
    const FixRecord *rec = fix_get(fx, name, DT_I32, ndim, dims);
    int *out = xmalloc(rec->count * sizeof(int));
    for (size_t i = 0; i < rec->count; i++) out[i] = (int)(int32_t)le_u32(rec->data + 4 * i);
    return out;
}

// ---------------------------------------------------------------------------------------------
// The checkpoint, the fixture and the model built from them.

typedef struct {
    Checkpoint ck;
    Fixture fx;
    GPT m;
    int B, T, V, K;
    int *idx, *targets;  // (B,T)
} Parity;

static const char *fixture_dir(void) {
    const char *d = getenv("GPT_PARITY_DIR");
    return d && *d ? d : "tests/fixtures";
}

// GPT_PARITY_VERBOSE=1 prints every comparison. stdout is then unbuffered, so a test that
// fails in Check's forked child still shows what it printed.
static bool verbose(void) {
    const char *v = getenv("GPT_PARITY_VERBOSE");
    bool on = v && *v && strcmp(v, "0") != 0;
    if (on) setvbuf(stdout, NULL, _IONBF, 0);
    return on;
}

static void parity_open(Parity *p) {
    memset(p, 0, sizeof *p);
    char ck_path[1024], fx_path[1024], err[1024];
    snprintf(ck_path, sizeof ck_path, "%s/parity_ckpt.bin", fixture_dir());
    snprintf(fx_path, sizeof fx_path, "%s/parity.bin", fixture_dir());
    ck_assert_msg(checkpoint_load(ck_path, &p->ck, err, sizeof err),
                  "parity checkpoint: %s (run the tests from the repository root, or set GPT_PARITY_DIR)", err);
    ck_assert_msg(fixture_load(&p->fx, fx_path, err, sizeof err),
                  "parity fixture: %s (run the tests from the repository root, or set GPT_PARITY_DIR; "
                  "scripts/torch_reference.py makes it)",
                  err);
    const GPTConfig *c = &p->ck.config;
    int five = 5;
    int *conf = fix_ints(&p->fx, "config", 1, &five);
    ck_assert_msg(conf[0] == c->vocab_size && conf[1] == c->block_size && conf[2] == c->n_layer &&
                      conf[3] == c->n_head && conf[4] == c->n_embd,
                  "the fixture was made for another model (V %d T %d L %d H %d C %d)", conf[0], conf[1], conf[2],
                  conf[3], conf[4]);
    free(conf);
    const FixRecord *idx = NULL;
    for (size_t i = 0; i < p->fx.n; i++)
        if (strcmp(p->fx.recs[i].name, "idx") == 0) idx = &p->fx.recs[i];
    ck_assert_msg(idx && idx->ndim == 2, "%s: no 2-D record 'idx'", p->fx.name);
    ck_assert_msg(idx->dims[0] <= 1024 && idx->dims[1] == (size_t)c->block_size,
                  "%s: 'idx' is not (B, block_size)", p->fx.name);
    p->B = (int)idx->dims[0];
    p->T = c->block_size;
    p->V = c->vocab_size;
    int bt[2] = {p->B, p->T};
    p->idx = fix_ints(&p->fx, "idx", 2, bt);
    p->targets = fix_ints(&p->fx, "targets", 2, bt);
    for (int i = 0; i < p->B * p->T; i++)
        ck_assert_msg(p->idx[i] >= 0 && p->idx[i] < p->V && p->targets[i] >= 0 && p->targets[i] < p->V,
                      "%s: a token id is out of the vocabulary", p->fx.name);
    int *k = fix_ints(&p->fx, "steps", 0, NULL);
    p->K = *k;
    free(k);
    ck_assert_msg(p->K >= 1 && p->K <= 100, "%s: 'steps' is %d", p->fx.name, p->K);
    checkpoint_to_model(&p->ck, &p->m, p->B, GPT_TRAINING);
}

static void parity_close(Parity *p) {
    gpt_free(&p->m);
    checkpoint_free(&p->ck);
    fixture_free(&p->fx);
    free(p->idx);
    free(p->targets);
}

// The reference values of a parameter-shaped record ("grad.", "after.", "delta." + name).
static double *param_record(const Parity *p, const char *prefix, const ParamInfo *pi) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", prefix, pi->name);
    return fix_doubles(&p->fx, name, DT_F32, pi->ndim, pi->shape);
}

// ---------------------------------------------------------------------------------------------
// Comparisons.

typedef struct {
    double rel;      // |a - b| / (|a| + |b|)
    double max_abs;  // max |a_i - b_i|
    double max_ref;  // max |b_i|
} Diff;

static Diff diff(const float *a, const double *b, size_t n) {
    double d2 = 0, a2 = 0, b2 = 0;
    Diff r = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        d2 += e * e;
        a2 += (double)a[i] * a[i];
        b2 += b[i] * b[i];
        if (fabs(e) > r.max_abs) r.max_abs = fabs(e);
        if (fabs(b[i]) > r.max_ref) r.max_ref = fabs(b[i]);
    }
    double den = sqrt(a2) + sqrt(b2);
    r.rel = den > 0 ? sqrt(d2) / den : 0;
    return r;
}

static double rel_scalar(double a, double b) {
    double den = fabs(a) + fabs(b);
    return den > 0 ? fabs(a - b) / den : 0;
}

// The worst of a series of comparisons, and a message naming it.
typedef struct {
    double worst;  // largest rel / tol seen; <= 1 passes
    char msg[512];
} Verdict;

static void judge(Verdict *v, const char *what, const char *name, Diff d, double tol) {
    if (verbose())
        printf("parity: %-8s %-12s rel %.3e  max|diff| %.3e  (max|ref| %.3e, tol %.0e)\n", what, name, d.rel,
               d.max_abs, d.max_ref, tol);
    if (d.rel / tol > v->worst) {
        v->worst = d.rel / tol;
        snprintf(v->msg, sizeof v->msg, "%s%s%s: relative error %.3e (max |diff| %.3e), tolerance %.0e", what,
                 *name ? " of " : "", name, d.rel, d.max_abs, tol);
    }
}

static void judge_scalar(Verdict *v, const char *what, double got, double want, double tol) {
    Diff d = {rel_scalar(got, want), fabs(got - want), fabs(want)};
    judge(v, what, "", d, tol);
}

// Forward on the fixture's batch: logits and loss against torch.
static Verdict check_forward(Parity *p) {
    Verdict v = {0, ""};
    float loss = gpt_forward(&p->m, p->idx, p->targets, p->B, p->T);
    int btv[3] = {p->B, p->T, p->V};
    double *logits = fix_doubles(&p->fx, "logits", DT_F32, 3, btv);
    Diff d = diff(p->m.acts.logits, logits, (size_t)p->B * p->T * p->V);
    judge(&v, "logits", "", d, TOL_FORWARD);
    // Element-wise too: no single logit off by more than the tolerance times the largest.
    Diff elem = {d.max_ref > 0 ? d.max_abs / d.max_ref : 0, d.max_abs, d.max_ref};
    judge(&v, "logits", "(max)", elem, TOL_FORWARD);
    judge_scalar(&v, "loss", loss, fix_scalar(&p->fx, "loss"), TOL_FORWARD);
    free(logits);
    return v;
}

// The model's gradients (after a forward and backward) against torch's, tensor by tensor.
static Verdict check_grads(Parity *p) {
    Verdict v = {0, ""};
    for (int t = 0; t < p->m.n_param_tensors; t++) {
        const ParamInfo *pi = &p->m.param_table[t];
        double *want = param_record(p, "grad.", pi);
        judge(&v, "gradient", pi->name, diff(p->m.grads + pi->offset, want, pi->numel), TOL_GRAD);
        free(want);
    }
    return v;
}

static void forward_backward(Parity *p) {
    gpt_zero_grad(&p->m);
    gpt_forward(&p->m, p->idx, p->targets, p->B, p->T);
    gpt_backward(&p->m, 1.0f, GRAD_ADD);
}

// The fixture's AdamW settings, as the C optimizer holds them.
static void fixture_adamw(const Parity *p, AdamWConfig *cfg, float *lr, float *clip) {
    cfg->beta1 = (float)fix_scalar(&p->fx, "beta1");
    cfg->beta2 = (float)fix_scalar(&p->fx, "beta2");
    cfg->eps = (float)fix_scalar(&p->fx, "eps");
    cfg->weight_decay = (float)fix_scalar(&p->fx, "weight_decay");
    *lr = (float)fix_scalar(&p->fx, "lr");
    *clip = (float)fix_scalar(&p->fx, "grad_clip");
}

// K steps of forward, backward, clip, AdamW on the fixture's batch with the given settings;
// each step's loss and gradient norm, then the weights and their change, against torch.
static Verdict check_steps(Parity *p, const AdamWConfig *cfg, float lr, float clip) {
    Verdict v = {0, ""};
    int k1 = p->K;
    double *want_loss = fix_doubles(&p->fx, "step_loss", DT_F64, 1, &k1);
    double *want_norm = fix_doubles(&p->fx, "step_grad_norm", DT_F64, 1, &k1);
    float *start = xmalloc(p->m.num_params * sizeof(float));
    memcpy(start, p->m.params, p->m.num_params * sizeof(float));
    AdamW opt;
    adamw_init(&opt, p->m.num_params);
    for (int k = 0; k < p->K; k++) {
        gpt_zero_grad(&p->m);
        float loss = gpt_forward(&p->m, p->idx, p->targets, p->B, p->T);
        gpt_backward(&p->m, 1.0f, GRAD_ADD);
        float norm = clip_grad_norm(&opt, p->m.grads, p->m.num_params, clip);
        adamw_update(&opt, &p->m, lr, cfg);
        char what[32];
        snprintf(what, sizeof what, "step %d loss", k);
        judge_scalar(&v, what, loss, want_loss[k], TOL_STEP);
        snprintf(what, sizeof what, "step %d norm", k);
        judge_scalar(&v, what, norm, want_norm[k], TOL_STEP);
    }
    float *delta = xmalloc(p->m.num_params * sizeof(float));
    // One float32 subtraction: the change is rounded once, to within 2^-24 of itself.
    for (size_t i = 0; i < p->m.num_params; i++) delta[i] = p->m.params[i] - start[i];
    for (int t = 0; t < p->m.n_param_tensors; t++) {
        const ParamInfo *pi = &p->m.param_table[t];
        double *after = param_record(p, "after.", pi);
        double *upd = param_record(p, "delta.", pi);
        judge(&v, "weights", pi->name, diff(p->m.params + pi->offset, after, pi->numel), TOL_WEIGHTS);
        judge(&v, "update", pi->name, diff(delta + pi->offset, upd, pi->numel), TOL_UPDATE);
        free(after);
        free(upd);
    }
    adamw_free(&opt);
    free(delta);
    free(start);
    free(want_loss);
    free(want_norm);
    return v;
}

// ---------------------------------------------------------------------------------------------
// The tests.

START_TEST(test_parity_fixture_matches_its_checkpoint) {
    Parity p;
    parity_open(&p);
    // Every parameter has its three records; the hyperparameters are there and sane.
    for (int t = 0; t < p.m.n_param_tensors; t++) {
        const ParamInfo *pi = &p.m.param_table[t];
        free(param_record(&p, "grad.", pi));
        free(param_record(&p, "after.", pi));
        free(param_record(&p, "delta.", pi));
    }
    AdamWConfig cfg;
    float lr, clip;
    fixture_adamw(&p, &cfg, &lr, &clip);
    ck_assert(lr > 0 && cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1 && cfg.eps > 0 &&
              cfg.weight_decay >= 0 && clip >= 0);
    // More than one layer, so the fixture covers what passes between layers.
    ck_assert_int_ge(p.ck.config.n_layer, 2);
    // The checkpoint is a trained model, not the near-uniform initialisation: on uniformly
    // random targets the mean loss is about ln V + KL(uniform || the model's prediction), so
    // well above ln V means predictions far from uniform.
    ck_assert(fix_scalar(&p.fx, "loss") > log((double)p.V) + 0.1);
    parity_close(&p);
}
END_TEST

START_TEST(test_parity_logits_and_loss_match_torch) {  // _i: the kernels
    Parity p;
    parity_open(&p);
    p.m.kernels = (GPTKernels)_i;
    Verdict v = check_forward(&p);
    ck_assert_msg(v.worst <= 1, "%s", v.msg);
    parity_close(&p);
}
END_TEST

START_TEST(test_parity_gradients_match_torch) {  // _i: the kernels
    Parity p;
    parity_open(&p);
    p.m.kernels = (GPTKernels)_i;
    forward_backward(&p);
    Verdict v = check_grads(&p);
    ck_assert_msg(v.worst <= 1, "%s", v.msg);
    parity_close(&p);
}
END_TEST

START_TEST(test_parity_adamw_steps_match_torch) {  // _i: the kernels
    Parity p;
    parity_open(&p);
    p.m.kernels = (GPTKernels)_i;
    AdamWConfig cfg;
    float lr, clip;
    fixture_adamw(&p, &cfg, &lr, &clip);
    Verdict v = check_steps(&p, &cfg, lr, clip);
    ck_assert_msg(v.worst <= 1, "%s", v.msg);
    parity_close(&p);
}
END_TEST

// The checks are shown to fail on a model or an optimizer that is slightly wrong.
START_TEST(test_parity_catches_a_perturbed_weight) {
    Parity p;
    parity_open(&p);
    // One weight tensor 0.1% too large: the logits move by 1.6e-4 and the worst gradient by
    // 7.8e-4, 16 and 78 times the tolerance. (A single element 1% off moves the logits by only
    // 1.6e-7 and the gradients by 1.8e-5: these checks see a wrong tensor, not one wrong number.)
    const ParamInfo *pi = gpt_param(&p.m, "h.1.w_fc");
    ck_assert_ptr_nonnull(pi);
    for (size_t i = 0; i < pi->numel; i++) p.m.params[pi->offset + i] *= 1.001f;
    Verdict v = check_forward(&p);
    if (verbose()) printf("parity: tensor 0.1%% off: logits %.3g x tolerance\n", v.worst);
    ck_assert_msg(v.worst > 5, "a 0.1%% change of one tensor went unnoticed by the logits (worst %.3g of tolerance)",
                  v.worst);
    forward_backward(&p);
    v = check_grads(&p);
    if (verbose()) printf("parity: tensor 0.1%% off: gradients %.3g x tolerance (%s)\n", v.worst, v.msg);
    ck_assert_msg(v.worst > 5, "a 0.1%% change of one tensor went unnoticed by the gradients (worst %.3g)", v.worst);
    parity_close(&p);
}
END_TEST

START_TEST(test_parity_catches_a_scaled_gradient) {
    Parity p;
    parity_open(&p);
    forward_backward(&p);
    const ParamInfo *pi = gpt_param(&p.m, "h.0.ln2_w");
    ck_assert_ptr_nonnull(pi);
    for (size_t i = 0; i < pi->numel; i++) p.m.grads[pi->offset + i] *= 1.001f;
    Verdict v = check_grads(&p);
    if (verbose()) printf("parity: gradient 0.1%% off: %.3g x tolerance\n", v.worst);
    ck_assert_msg(v.worst > 1 && strstr(v.msg, "h.0.ln2_w"), "a 0.1%% gradient error went unnoticed: %s", v.msg);
    parity_close(&p);
}
END_TEST

START_TEST(test_parity_catches_a_wrong_optimizer) {
    AdamWConfig good;
    float lr, clip;
    for (int defect = 0; defect < 3; defect++) {
        Parity p;
        parity_open(&p);
        fixture_adamw(&p, &good, &lr, &clip);
        AdamWConfig cfg = good;
        if (defect == 0) lr *= 1.01f;              // a 1% learning rate error
        if (defect == 1) cfg.weight_decay = 0;     // weight decay forgotten
        if (defect == 2) cfg.beta2 = 0.999f;       // another beta2
        Verdict v = check_steps(&p, &cfg, lr, clip);
        if (verbose()) printf("parity: optimizer defect %d: %.3g x tolerance (%s)\n", defect, v.worst, v.msg);
        ck_assert_msg(v.worst > 3, "optimizer defect %d went unnoticed (worst %.3g of tolerance)", defect, v.worst);
        parity_close(&p);
    }
}
END_TEST

START_TEST(test_parity_fixture_reader_rejects_damage) {
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/parity.bin", fixture_dir());
    size_t len;
    unsigned char *good = read_file(path, &len, err, sizeof err);
    ck_assert_msg(good != NULL, "%s", err);
    unsigned char *buf = xmalloc(len);
    Fixture fx;
    memset(&fx, 0, sizeof fx);
    snprintf(fx.name, sizeof fx.name, "f");
    // The intact file parses.
    ck_assert_msg(fixture_parse(&fx, good, len, err, sizeof err), "%s", err);
    free(fx.recs);
    // Every truncation (a few lengths) and a flipped bit in every region are named.
    size_t cuts[] = {0, 7, 15, 16, len / 2, len - 5, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        ck_assert(!fixture_parse(&fx, good, cuts[i], err, sizeof err));
        ck_assert_ptr_null(fx.recs);
    }
    for (size_t at = 0; at < len; at += len / 97 + 1) {
        memcpy(buf, good, len);
        buf[at] ^= 0x10;
        ck_assert_msg(!fixture_parse(&fx, buf, len, err, sizeof err), "a flipped bit at %zu went unnoticed", at);
        if (at >= 8) ck_assert_msg(strstr(err, "checksum mismatch"), "%s", err);
    }
    memcpy(buf, good, len);
    buf[0] = 'X';
    ck_assert(!fixture_parse(&fx, buf, len, err, sizeof err));
    ck_assert_str_eq(err, "f: not a parity fixture (bad magic)");
    // A malformed record behind a valid checksum: an oversized record count.
    memcpy(buf, good, len);
    buf[8] = 0xff, buf[9] = 0xff, buf[10] = 0xff, buf[11] = 0x7f;
    uint32_t crc = crc32c(0, buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    ck_assert(!fixture_parse(&fx, buf, len, err, sizeof err));
    ck_assert_msg(strstr(err, "records cannot fit"), "%s", err);
    // A missing file names itself.
    ck_assert(!fixture_load(&fx, "/nonexistent/parity.bin", err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/parity.bin"), "%s", err);
    free(buf);
    free(good);
}
END_TEST

Suite *parity_suite(void) {
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("torch");
    tcase_add_test(tc, test_parity_fixture_matches_its_checkpoint);
    tcase_add_loop_test(tc, test_parity_logits_and_loss_match_torch, 0, 2);
    tcase_add_loop_test(tc, test_parity_gradients_match_torch, 0, 2);
    tcase_add_loop_test(tc, test_parity_adamw_steps_match_torch, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("negative");
    tcase_add_test(tc, test_parity_catches_a_perturbed_weight);
    tcase_add_test(tc, test_parity_catches_a_scaled_gradient);
    tcase_add_test(tc, test_parity_catches_a_wrong_optimizer);
    tcase_add_test(tc, test_parity_fixture_reader_rejects_damage);
    suite_add_tcase(s, tc);
    return s;
}
