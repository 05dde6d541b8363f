// config.c -- what the table of config.h makes: the rows as data, the defaults, the TCFG
// record, the settings as text.
#include "checkpoint/run_config.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"

#define KEEP true
#define FREE false

const TrainField train_fields[] = {
#define X(kind, name, def, flag, lo, hi, least, resume) \
    {#name, TF_##kind, offsetof(TrainConfig, name), sizeof(((TrainConfig *)0)->name), flag, lo, hi, least, resume},
    TRAIN_CONFIG_FIELDS(X)
#undef X
};
const int train_n_fields = (int)(sizeof train_fields / sizeof train_fields[0]);

// Rows per checkpoint version: one count for each version, the current one's every row
// (asserted where the record is made and read).
static const int rows_of_version[] = TRAIN_CONFIG_ROWS_OF_VERSION;
_Static_assert(sizeof rows_of_version / sizeof rows_of_version[0] == CHECKPOINT_VERSION + 1,
               "TRAIN_CONFIG_ROWS_OF_VERSION has a count for every checkpoint version");

#define SET_STR(field, v) snprintf(field, sizeof field, "%s", v)
#define SET_MODEL(field, v) field = v
#define SET_I32(field, v) field = v
#define SET_I64(field, v) field = v
#define SET_F32(field, v) field = v
#define SET_U64(field, v) field = v
#define SET_TOKENIZER(field, v) field = v
#define SET_OPTIMIZER(field, v) field = v

const char *optimizer_kind_name(OptimizerKind k) { return k == OPTIMIZER_MUON ? "muon" : "adamw"; }

void train_config_defaults(TrainConfig *tc) {
    memset(tc, 0, sizeof *tc);
#define X(kind, name, def, ...) SET_##kind(tc->name, def);
    TRAIN_CONFIG_FIELDS(X)
#undef X
}

#define FIELD(tc, f) ((void *)((char *)(tc) + (f)->offset))
#define CFIELD(tc, f) ((const void *)((const char *)(tc) + (f)->offset))

void train_config_encode(Buf *b, const TrainConfig *tc) {
    assert(rows_of_version[CHECKPOINT_VERSION] == train_n_fields);
    for (int i = 0; i < train_n_fields; i++) {
        const TrainField *f = &train_fields[i];
        const void *p = CFIELD(tc, f);
        switch (f->kind) {
        case TF_STR: {
            size_t n = strnlen(p, f->size - 1);
            buf_u32(b, (uint32_t)n);
            buf_add(b, p, n);
            break;
        }
        case TF_MODEL: checkpoint_put_config(b, p); break;
        case TF_I32: buf_i32(b, *(const int *)p); break;
        case TF_I64: buf_i64(b, *(const long *)p); break;
        case TF_F32: buf_f32(b, *(const float *)p); break;
        case TF_U64: buf_u64(b, *(const uint64_t *)p); break;
        case TF_TOKENIZER: buf_u32(b, (uint32_t)*(const TokenizerKind *)p); break;
        case TF_OPTIMIZER: buf_u32(b, (uint32_t)*(const OptimizerKind *)p); break;
        }
    }
}

// A string field: u32 length (less than the field holds), the bytes, no NUL among them.
static bool read_string(ByteReader *r, const TrainField *f, char *out, const char *name, char *err, size_t errlen) {
    uint32_t n = br_u32(r);
    if (!r->ok) return checkpoint_record_done(r, name, CKPT_TCFG, err, errlen);
    if (n >= f->size)
        return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has a %s of %u bytes (at most %zu)", f->name, n,
                                  f->size - 1);
    const unsigned char *p = br_take(r, n);
    if (!p) return checkpoint_record_done(r, name, CKPT_TCFG, err, errlen);
    if (memchr(p, 0, n)) return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has a NUL byte inside %s", f->name);
    memset(out, 0, f->size);
    memcpy(out, p, n);
    return true;
}

// Stores a number read from the record once it is known to be one a run can have.
static bool store_checked(const TrainField *f, int64_t raw, void *p, const char *name, char *err, size_t errlen) {
    switch (f->kind) {
    case TF_I32:
        if (raw < f->least)
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has %s = %d (expected %ld or more)", f->name,
                                      (int)raw, f->least);
        // A row without a flag of its own but with a range (a switch's 0 or 1) holds no more.
        if (!f->flag && f->hi > f->lo && (raw < f->lo || raw > f->hi))
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has %s = %d (expected %g to %g)", f->name,
                                      (int)raw, f->lo, f->hi);
        *(int *)p = (int)raw;
        return true;
    case TF_I64:
        if (raw < f->least || raw > LONG_MAX)
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has %s = %lld (expected %ld or more)", f->name,
                                      (long long)raw, f->least);
        *(long *)p = (long)raw;
        return true;
    case TF_F32: {
        float v = f32_from_bits((uint32_t)raw);
        if (!isfinite(v))
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has %s = %g (a checkpoint never holds NaN or Inf)",
                                      f->name, (double)v);
        // The row's range, as floats (rounding is monotonic, so every value the flag gave is in).
        if (f->hi > f->lo && (v < (float)f->lo || v > (float)f->hi))
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG, "has %s = %g (expected %g to %g)", f->name,
                                      (double)v, f->lo, f->hi);
        *(float *)p = v;
        return true;
    }
    case TF_TOKENIZER:
        if (raw != TOKENIZER_CHAR && raw != TOKENIZER_BPE)
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG,
                                      "has tokenizer kind %u (expected %d char or %d bpe)", (unsigned)raw,
                                      TOKENIZER_CHAR, TOKENIZER_BPE);
        *(TokenizerKind *)p = (TokenizerKind)raw;
        return true;
    case TF_OPTIMIZER:
        if (raw != OPTIMIZER_ADAMW && raw != OPTIMIZER_MUON)
            return checkpoint_invalid(err, errlen, name, CKPT_TCFG,
                                      "has optimizer kind %u (expected %d adamw or %d muon)", (unsigned)raw,
                                      OPTIMIZER_ADAMW, OPTIMIZER_MUON);
        *(OptimizerKind *)p = (OptimizerKind)raw;
        return true;
    default: return true;
    }
}

bool train_config_decode(const unsigned char *data, size_t len, int version, const char *name, TrainConfig *tc,
                         char *err, size_t errlen) {
    assert(version >= 1 && version <= CHECKPOINT_VERSION && rows_of_version[CHECKPOINT_VERSION] == train_n_fields);
    // The rows the version's record lacks keep their defaults.
    train_config_defaults(tc);
    int rows = rows_of_version[version];
    ByteReader r = byte_reader(data, len);
    // Read straight through (a string is checked as it comes, since its length says where the
    // next field starts), then the record's length, then each number.
    int64_t raw[sizeof train_fields / sizeof train_fields[0]] = {0};
    for (int i = 0; i < rows; i++) {
        const TrainField *f = &train_fields[i];
        void *p = FIELD(tc, f);
        switch (f->kind) {
        case TF_STR:
            if (!read_string(&r, f, p, name, err, errlen)) return false;
            break;
        case TF_MODEL: checkpoint_get_config(&r, version, p); break;
        case TF_I32: raw[i] = br_i32(&r); break;
        case TF_I64: raw[i] = br_i64(&r); break;
        case TF_F32: raw[i] = br_u32(&r); break;  // the bits
        case TF_U64: *(uint64_t *)p = br_u64(&r); break;
        case TF_TOKENIZER: raw[i] = br_u32(&r); break;
        case TF_OPTIMIZER: raw[i] = br_u32(&r); break;
        }
    }
    if (!checkpoint_record_done(&r, name, CKPT_TCFG, err, errlen)) return false;
    for (int i = 0; i < rows; i++)
        if (!store_checked(&train_fields[i], raw[i], FIELD(tc, &train_fields[i]), name, err, errlen)) return false;
    return true;
}

void train_config_print(FILE *out, const TrainConfig *tc, const char *indent) {
    for (int i = 0; i < train_n_fields; i++) {
        const TrainField *f = &train_fields[i];
        const void *p = CFIELD(tc, f);
        fprintf(out, "%s%-15s ", indent, f->name);
        switch (f->kind) {
        case TF_STR: fprintf(out, "%s\n", (const char *)p); break;
        case TF_MODEL: {
            const GPTConfig *c = p;
            char feats[256];
            fprintf(out, "n_layer %d, n_head %d, n_embd %d, block_size %d, vocab_size %d, features %s\n", c->n_layer,
                    c->n_head, c->n_embd, c->block_size, c->vocab_size,
                    gpt_features_str(c->features, feats, sizeof feats));
            break;
        }
        case TF_I32: fprintf(out, "%d\n", *(const int *)p); break;
        case TF_I64: fprintf(out, "%ld\n", *(const long *)p); break;
        case TF_F32: fprintf(out, "%g\n", (double)*(const float *)p); break;
        case TF_U64: fprintf(out, "%llu\n", (unsigned long long)*(const uint64_t *)p); break;
        case TF_TOKENIZER: fprintf(out, "%s\n", tokenizer_kind_name(*(const TokenizerKind *)p)); break;
        case TF_OPTIMIZER: fprintf(out, "%s\n", optimizer_kind_name(*(const OptimizerKind *)p)); break;
        }
    }
}

bool train_config_same_keeps(const TrainConfig *a, const TrainConfig *b) {
    for (int i = 0; i < train_n_fields; i++) {
        const TrainField *f = &train_fields[i];
        if (f->keep_on_resume && memcmp(CFIELD(a, f), CFIELD(b, f), f->size) != 0) return false;
    }
    return true;
}
