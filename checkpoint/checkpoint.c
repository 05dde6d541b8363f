// checkpoint.c -- saving and loading checkpoints (see checkpoint.h).
//
// The file, version 3. Integers are little-endian two's complement; f32 and f64 are IEEE-754
// binary32 and binary64, stored as their bit patterns, also little-endian.
//
//   offset    size  field
//   0         8     magic "GPTCKPT\0"
//   8         4     u32 version (CHECKPOINT_VERSION, 3; 1 and 2 are read too)
//   12        ...   sections, one after another, each: u32 tag, u64 payload length, payload
//   len - 4   4     u32 CRC-32C of every byte before it (magic, version and all sections)
//
// A tag is four ASCII letters read as a u32 (so a hex dump shows "CONF", "TOKN", ...):
//
//   CONF  the model: 5 x i32 vocab_size, block_size, n_layer, n_head, n_embd, then u32
//         features (GPT_FEAT_* bits; versions 1 and 2 end before it: features 0) (24 bytes)
//   TOKN  the tokenizer image of tokenizer_serialize (it checks itself on the way back)
//   PARM  u64 count, then count x f32: the parameter block in param_table order; count is
//         gpt_config_num_params(CONF)                                    (8 + 4 count bytes)
//   TCFG  the run's settings: checkpoint/run_config.h's table, field by field in its row order (an
//         older version's record ends before the rows later versions added: train_config_decode)
//   TSTA  where the run stands: train/train_state.c's record                        (72 bytes)
//   ADAM  the optimizer: i64 step, u64 count (= PARM's), count x f32 m, count x f32 v
//                                                                    (16 + 8 count bytes)
//         With --optimizer muon the hidden matrices' m is Muon's momentum and their v stays 0.
//
// The writer emits CONF TOKN PARM, then TCFG TSTA ADAM when there is training state. The
// reader's rules:
//   - the checks run in this order, and the first failure is the message: the file can be
//     read; it is not empty; it holds at least the magic, the version and the CRC; the magic;
//     the version (1 to 3; a newer one asks for a newer gpt); the CRC (before any section is
//     parsed, so damage reads as damage and not as some odd field); then the sections.
//   - every section length must fit in what remains before the CRC, and a section's payload
//     must be exactly as long as its contents (no slack, nothing missing).
//   - sections may come in any order, but each at most once. CONF, TOKN and PARM are
//     required; TCFG, TSTA and ADAM come all three or not at all.
//   - unknown tags are rejected, not skipped: every section is listed above, so a
//     new kind of section comes with a new version, and an older gpt then says so instead
//     of quietly dropping what it cannot read.
//   - CONF passes gpt_config_check (which names any feature bit this gpt does not run); TOKN deserializes and has CONF's vocab_size; counts match
//     the config; every float is finite (a checkpoint never holds NaN or Inf); v >= 0 (it is
//     a mean of squares).
//   - TCFG and TSTA are carried as bytes; their decoder (train_state_decode) applies the same
//     rules to them when a run resumes or `gpt info` shows it.
//
// Saving streams to path.tmp.<pid> through a 64 KiB buffer, the CRC updated as each buffer
// goes out (parameters and moments can be hundreds of MB: the file is never built in
// memory), then fsync, close and rename; on any failure the temporary file is removed and
// the file at path is untouched.
#include "checkpoint/checkpoint.h"

#include <assert.h>
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

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
static const struct {
    uint32_t tag;
    const char *name;  // for messages
} SECTIONS[CKPT_N_SECTIONS] = {
    [CKPT_CONF] = {TAG('C', 'O', 'N', 'F'), "model config (CONF)"},
    [CKPT_TOKN] = {TAG('T', 'O', 'K', 'N'), "tokenizer (TOKN)"},
    [CKPT_PARM] = {TAG('P', 'A', 'R', 'M'), "parameters (PARM)"},
    [CKPT_TCFG] = {TAG('T', 'C', 'F', 'G'), "training settings (TCFG)"},
    [CKPT_TSTA] = {TAG('T', 'S', 'T', 'A'), "training state (TSTA)"},
    [CKPT_ADAM] = {TAG('A', 'D', 'A', 'M'), "optimizer state (ADAM)"},
};

void checkpoint_put_config(Buf *b, const GPTConfig *c) {
    buf_i32(b, c->vocab_size);
    buf_i32(b, c->block_size);
    buf_i32(b, c->n_layer);
    buf_i32(b, c->n_head);
    buf_i32(b, c->n_embd);
    buf_u32(b, c->features);
}

void checkpoint_get_config(ByteReader *r, int version, GPTConfig *c) {
    c->vocab_size = br_i32(r);
    c->block_size = br_i32(r);
    c->n_layer = br_i32(r);
    c->n_head = br_i32(r);
    c->n_embd = br_i32(r);
    c->features = version >= 3 ? br_u32(r) : 0;  // before version 3 every model was the plain GPT
}

// ---- saving ---------------------------------------------------------------------------------

// Streams bytes to a file through one buffer, the CRC updated as each buffer goes out.
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

static void w_section(Writer *w, CheckpointSection sec, uint64_t len) {
    unsigned char b[SECTION_HEADER_BYTES];
    put_u32(b, SECTIONS[sec].tag);
    put_u64(b + 4, len);
    w_bytes(w, b, sizeof b);
}

static void w_whole_section(Writer *w, CheckpointSection sec, const void *payload, size_t len) {
    w_section(w, sec, len);
    w_bytes(w, payload, len);
}

bool checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const CheckpointTraining *training,
                     char *err, size_t errlen) {
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

    Buf conf = {0};
    checkpoint_put_config(&conf, &m->config);
    w_whole_section(w, CKPT_CONF, conf.s, conf.len);
    buf_free(&conf);

    size_t image_len;
    unsigned char *image = tokenizer_serialize(tok, &image_len);
    w_whole_section(w, CKPT_TOKN, image, image_len);
    free(image);

    uint64_t n = m->num_params;
    w_section(w, CKPT_PARM, 8 + 4 * n);
    w_u64(w, n);
    w_floats(w, m->params, n);

    if (training) {
        w_whole_section(w, CKPT_TCFG, training->settings, training->settings_len);
        w_whole_section(w, CKPT_TSTA, training->state, training->state_len);
        w_section(w, CKPT_ADAM, 16 + 8 * n);
        w_u64(w, (uint64_t)(int64_t)training->opt_step);
        w_u64(w, n);
        w_floats(w, training->opt_m, n);
        w_floats(w, training->opt_v, n);
    }

    w_flush(w);  // the CRC now covers every byte written
    unsigned char trailer[CKPT_TRAILER_BYTES];
    put_u32(trailer, w->crc);
    atomic_write(&w->file, trailer, sizeof trailer);
    bool ok = atomic_commit(&w->file, path, err, errlen);
    free(w);
    return ok;
}

// ---- loading --------------------------------------------------------------------------------

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

bool checkpoint_invalid(char *err, size_t errlen, const char *name, CheckpointSection sec, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_error(err, errlen, "'%s' is not a valid checkpoint: its %s %s", name, SECTIONS[sec].name, what);
    return false;
}

bool checkpoint_record_done(const ByteReader *r, const char *name, CheckpointSection sec, char *err, size_t errlen) {
    if (!r->ok) return checkpoint_invalid(err, errlen, name, sec, "section is too short");
    if (r->left)
        return checkpoint_invalid(err, errlen, name, sec, "section has %zu unexpected bytes at its end", r->left);
    return true;
}

static bool section_done(const LoadCtx *c, CheckpointSection sec, const ByteReader *r) {
    return checkpoint_record_done(r, c->name, sec, c->err, c->errlen);
}

static bool parse_config(const LoadCtx *c, ByteReader *r, int version, GPTConfig *cfg) {
    checkpoint_get_config(r, version, cfg);
    if (!section_done(c, CKPT_CONF, r)) return false;
    char why[256];
    if (!gpt_config_check(cfg, why, sizeof why)) return fail(c, "is not a valid checkpoint: its model config: %s", why);
    return true;
}

// Decodes count floats (all finite; non-negative too when nonneg) into a new block.
static bool read_floats(const LoadCtx *c, CheckpointSection sec, const char *what, ByteReader *r, size_t count,
                        bool nonneg, float **out) {
    const unsigned char *p = br_take(r, 4 * count);
    if (!p) return section_done(c, sec, r);
    float *x = xalloc_floats(count);
    for (size_t i = 0; i < count; i++) {
        float f = f32_from_bits(get_u32(p + 4 * i));
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

// Where each section's payload is: each known tag at most once, each in bounds.
static bool find_sections(const LoadCtx *c, const unsigned char *data, size_t len, ByteReader sec[CKPT_N_SECTIONS],
                          bool have[CKPT_N_SECTIONS]) {
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
        while (k < CKPT_N_SECTIONS && SECTIONS[k].tag != tag) k++;
        if (k == CKPT_N_SECTIONS) {
            char t[5];
            for (int i = 0; i < 4; i++) {
                unsigned char b = (unsigned char)(tag >> (8 * i));
                t[i] = b >= 0x20 && b < 0x7F ? (char)b : '?';
            }
            t[4] = 0;
            return fail(c, "is not a valid checkpoint: unknown section tag 0x%08X (\"%s\") at offset %zu", tag, t, at);
        }
        if (have[k])
            return fail(c, "is not a valid checkpoint: a second %s section at offset %zu", SECTIONS[k].name, at);
        if (slen > end - pos)
            return fail(c, "is not a valid checkpoint: its %s section claims %llu bytes, only %zu remain",
                        SECTIONS[k].name, (unsigned long long)slen, end - pos);
        have[k] = true;
        sec[k] = byte_reader(data + pos, (size_t)slen);
        pos += (size_t)slen;
    }
    for (int k = CKPT_CONF; k <= CKPT_PARM; k++)
        if (!have[k]) return fail(c, "is not a valid checkpoint: it has no %s section", SECTIONS[k].name);
    int n_train = have[CKPT_TCFG] + have[CKPT_TSTA] + have[CKPT_ADAM];
    if (n_train != 0 && n_train != 3) {
        int missing = !have[CKPT_TCFG] ? CKPT_TCFG : !have[CKPT_TSTA] ? CKPT_TSTA : CKPT_ADAM;
        return fail(c, "is not a valid checkpoint: it has training state but no %s section", SECTIONS[missing].name);
    }
    return true;
}

static unsigned char *copy_payload(const ByteReader *r) {
    unsigned char *p = xmalloc(r->left ? r->left : 1);
    if (r->left) memcpy(p, r->p, r->left);
    return p;
}

// The training state: the two records as they are, the moments checked.
static bool parse_training(const LoadCtx *c, ByteReader sec[CKPT_N_SECTIONS], size_t num_params,
                           CheckpointTraining *t) {
    t->settings = copy_payload(&sec[CKPT_TCFG]);
    t->settings_len = sec[CKPT_TCFG].left;
    t->state = copy_payload(&sec[CKPT_TSTA]);
    t->state_len = sec[CKPT_TSTA].left;
    ByteReader *a = &sec[CKPT_ADAM];
    int64_t step = br_i64(a);
    uint64_t count = br_u64(a);
    if (!a->ok) return section_done(c, CKPT_ADAM, a);
    if (step < 0 || step > LONG_MAX)
        return fail(c, "is not a valid checkpoint: its %s has step = %lld (expected 0 or more)",
                    SECTIONS[CKPT_ADAM].name, (long long)step);
    t->opt_step = (long)step;
    if (count != num_params)
        return fail(c, "is not a valid checkpoint: its optimizer state has %llu moments, its parameters %zu",
                    (unsigned long long)count, num_params);
    return read_floats(c, CKPT_ADAM, "first moment", a, num_params, false, &t->opt_m) &&
           read_floats(c, CKPT_ADAM, "second moment", a, num_params, true, &t->opt_v) &&
           section_done(c, CKPT_ADAM, a);
}

static bool parse_sections(const LoadCtx *c, const unsigned char *data, size_t len, int version, Checkpoint *ck) {
    ByteReader sec[CKPT_N_SECTIONS];
    bool have[CKPT_N_SECTIONS] = {false};
    if (!find_sections(c, data, len, sec, have)) return false;

    // Each section, in the order their checks depend on one another.
    if (!parse_config(c, &sec[CKPT_CONF], version, &ck->config)) return false;

    char why[256];
    ByteReader *t = &sec[CKPT_TOKN];
    ck->tok = tokenizer_deserialize(t->p, t->left, why, sizeof why);
    if (!ck->tok) return fail(c, "is not a valid checkpoint: its tokenizer is corrupt: %s", why);
    if (tokenizer_vocab_size(ck->tok) != ck->config.vocab_size)
        return fail(c, "is not a valid checkpoint: its tokenizer has %d tokens, its model config vocab_size %d",
                    tokenizer_vocab_size(ck->tok), ck->config.vocab_size);

    size_t need = gpt_config_num_params(&ck->config);
    ByteReader *p = &sec[CKPT_PARM];
    uint64_t count = br_u64(p);
    if (!p->ok) return section_done(c, CKPT_PARM, p);
    if (count != need)
        return fail(c,
                    "is not a valid checkpoint: it holds %llu parameters, but its model config (V=%d T=%d L=%d H=%d "
                    "C=%d) has %zu",
                    (unsigned long long)count, ck->config.vocab_size, ck->config.block_size, ck->config.n_layer,
                    ck->config.n_head, ck->config.n_embd, need);
    if (!read_floats(c, CKPT_PARM, "parameter", p, need, false, &ck->params)) return false;
    ck->num_params = need;
    if (!section_done(c, CKPT_PARM, p)) return false;

    if (!have[CKPT_TCFG]) return true;
    if (!parse_training(c, sec, need, &ck->training)) return false;
    ck->has_training = true;
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
        return fail(&c, "has checkpoint version %u; this gpt reads versions 1 to %d (built from an older source?)",
                    version, CHECKPOINT_VERSION);
    if (version < 1) return fail(&c, "has checkpoint version %u, which no gpt writes (damaged file?)", version);
    if (get_u32(data + len - CKPT_TRAILER_BYTES) != crc32c(0, data, len - CKPT_TRAILER_BYTES))
        return fail(&c, "is corrupt: checksum mismatch (truncated or damaged file)");
    if (!parse_sections(&c, data, len, (int)version, ck)) {
        checkpoint_free(ck);
        return false;
    }
    ck->version = (int)version;
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
    free(ck->training.settings);
    free(ck->training.state);
    free(ck->training.opt_m);
    free(ck->training.opt_v);
    memset(ck, 0, sizeof *ck);
}

void checkpoint_to_model(const Checkpoint *ck, GPT *m, int max_batch, int flags) {
    // The weights come from the checkpoint: drawing random ones first would be wasted work.
    gpt_init(m, &ck->config, max_batch, 0, flags & ~GPT_INIT_WEIGHTS);
    assert(m->num_params == ck->num_params);
    memcpy(m->params, ck->params, ck->num_params * sizeof(float));
}

bool checkpoint_has_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[CKPT_MAGIC_BYTES];
    bool yes = fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, CKPT_MAGIC, sizeof magic) == 0;
    fclose(f);
    return yes;
}
