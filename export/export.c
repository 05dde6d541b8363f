// export.c -- number types for exported tensors, and the special token ids (see export.h).
#include "export/export.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *export_type_name(ExportType t) {
    switch (t) {
    case EXPORT_F32: return "f32";
    case EXPORT_F16: return "f16";
    case EXPORT_Q8_0: return "q8_0";
    }
    return "?";
}

bool export_type_parse(const char *s, ExportType *t) {
    static const ExportType all[] = {EXPORT_F32, EXPORT_F16, EXPORT_Q8_0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, export_type_name(all[i])) == 0) {
            *t = all[i];
            return true;
        }
    return false;
}

// IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits. Rounding is to
// nearest, ties to even, in both the normal and the subnormal range; too large becomes
// infinity, NaN stays NaN.
uint16_t export_f32_to_f16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xFFu, man = b & 0x7FFFFFu;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;  // the half's biased exponent
    if (e >= 0x1F) return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        // Subnormal half: value = h * 2^-24. Below 2^-25 everything rounds to zero.
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) h++;  // may become the smallest normal
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;  // a carry may reach infinity, rightly
    return (uint16_t)(sign | h);
}

float export_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t b;
    if (exp == 0) {
        float v = (float)man * 0x1p-24f;  // zero or subnormal, exactly
        memcpy(&b, &v, sizeof b);
        b |= sign;
    } else if (exp == 0x1F) {
        b = sign | 0x7F800000u | man << 13;
    } else {
        b = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

size_t export_type_bytes(ExportType t, size_t n) {
    switch (t) {
    case EXPORT_F32: return 4 * n;
    case EXPORT_F16: return 2 * n;
    case EXPORT_Q8_0: assert(n % EXPORT_Q8_0_BLOCK == 0); return n / EXPORT_Q8_0_BLOCK * EXPORT_Q8_0_BLOCK_BYTES;
    }
    return 0;
}

static void put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_f32(unsigned char *p, float x) {
    uint32_t v;
    memcpy(&v, &x, sizeof v);
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> 8 * k);
}

static void q8_0_block(unsigned char *out, const float *x) {
    float amax = 0;
    for (int j = 0; j < EXPORT_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    put_u16(out, export_f32_to_f16(d));
    for (int j = 0; j < EXPORT_Q8_0_BLOCK; j++) out[2 + j] = (unsigned char)(int8_t)lrintf(x[j] * id);
}

void export_write_values(AtomicFile *f, const float *x, size_t n, ExportType t) {
    // Converted a chunk at a time: a whole big tensor is never copied.
    enum { CHUNK = 4096 };  // values per chunk, a multiple of the Q8_0 block
    static const float zeros[CHUNK];
    unsigned char buf[CHUNK * 4];
    if (t == EXPORT_Q8_0) assert(n % EXPORT_Q8_0_BLOCK == 0);
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t k = n - start < CHUNK ? n - start : CHUNK;
        const float *src = x ? x + start : zeros;
        size_t bytes = export_type_bytes(t, k);
        for (size_t i = 0; t != EXPORT_Q8_0 && i < k; i++) {
            if (t == EXPORT_F32) put_f32(buf + 4 * i, src[i]);
            else put_u16(buf + 2 * i, export_f32_to_f16(src[i]));
        }
        for (size_t i = 0; t == EXPORT_Q8_0 && i < k; i += EXPORT_Q8_0_BLOCK)
            q8_0_block(buf + i / EXPORT_Q8_0_BLOCK * EXPORT_Q8_0_BLOCK_BYTES, src + i);
        atomic_write(f, buf, bytes);
    }
}

int export_start_token(const Tokenizer *tok) {
    int *ids = NULL;
    size_t n = 0;
    int id = 0;
    if (tokenizer_encode(tok, (const unsigned char *)"\n", 1, &ids, &n, NULL, 0) && n == 1) id = ids[0];
    free(ids);
    return id;
}

int export_end_token(const Tokenizer *tok) { return tokenizer_kind(tok) == TOKENIZER_BPE ? 0xFF : -1; }

bool export_check_features(const GPT *m, const char *format, char *err, size_t errlen) {
    uint32_t refused = m->config.features & (GPT_FEAT_ROPE | GPT_FEAT_QK_NORM);
    if (!refused) return true;
    char names[64];
    set_error(err, errlen, "the model's features %s are beyond %s (learned positions, plain q and k); such a "
              "model runs in gpt.c only", gpt_features_str(refused, names, sizeof names), format);
    return false;
}

const float *export_param(const GPT *m, const char *name, size_t numel) {
    const ParamInfo *p = gpt_param(m, name);
    assert(p && p->numel == numel);  // the parameter table is ours: a mismatch is a bug here
    (void)numel;
    return m->params + p->offset;
}
