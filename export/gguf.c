// gguf.c -- the GGUF writer (see gguf.h for the mapping and the tokenizer choices).
//
// A GGUF v3 file, every number little-endian: "GGUF", version u32 3, tensor count u64, key
// count u64; the keys (string key, u32 value type, value; a string is u64 length + bytes, an
// array u32 item type + u64 count + items); the tensor infos (name, u32 dims, u64 sizes in
// GGML order, u32 ggml type, u64 offset into the data section); zero padding to the
// alignment; then the data section, each tensor starting at a multiple of the alignment.
#include "export/gguf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

enum { GGUF_VERSION = 3 };
// Metadata value types.
enum { GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9 };
// ggml tensor types, and general.file_type's values for files mostly of them.
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8 };
enum { FILE_ALL_F32 = 0, FILE_MOSTLY_F16 = 1, FILE_MOSTLY_Q8_0 = 7 };
enum { TOKEN_TYPE_NORMAL = 1 };
#define LAYER_NORM_EPS 1e-5f  // DESIGN.md §3

// ---- a growing byte buffer for everything before the data section ----------------------------

typedef struct {
    unsigned char *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = b->n + n > 2 * b->cap ? b->n + n : 2 * b->cap;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void buf_u32(Buf *b, uint32_t v) {
    unsigned char x[4];
    for (int k = 0; k < 4; k++) x[k] = (unsigned char)(v >> 8 * k);
    buf_put(b, x, 4);
}

static void buf_u64(Buf *b, uint64_t v) {
    unsigned char x[8];
    for (int k = 0; k < 8; k++) x[k] = (unsigned char)(v >> 8 * k);
    buf_put(b, x, 8);
}

static void buf_str(Buf *b, const char *s, size_t n) {
    buf_u64(b, n);
    buf_put(b, s, n);
}

// Keys are counted as they are written: the header's count is patched in at the end.
typedef struct {
    Buf b;
    uint64_t n_kv;
} Meta;

static void kv_key(Meta *m, const char *key, uint32_t type) {
    buf_str(&m->b, key, strlen(key));
    buf_u32(&m->b, type);
    m->n_kv++;
}

static void kv_u32(Meta *m, const char *key, uint32_t v) {
    kv_key(m, key, GGUF_U32);
    buf_u32(&m->b, v);
}

static void kv_f32(Meta *m, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    kv_key(m, key, GGUF_F32);
    buf_u32(&m->b, bits);
}

static void kv_bool(Meta *m, const char *key, bool v) {
    kv_key(m, key, GGUF_BOOL);
    unsigned char x = v ? 1 : 0;
    buf_put(&m->b, &x, 1);
}

static void kv_str(Meta *m, const char *key, const char *v) {
    kv_key(m, key, GGUF_STRING);
    buf_str(&m->b, v, strlen(v));
}

static void kv_str_array(Meta *m, const char *key, char *const *s, const size_t *len, size_t n) {
    kv_key(m, key, GGUF_ARRAY);
    buf_u32(&m->b, GGUF_STRING);
    buf_u64(&m->b, n);
    for (size_t i = 0; i < n; i++) buf_str(&m->b, s[i], len[i]);
}

static void kv_i32_fill(Meta *m, const char *key, int32_t v, size_t n) {
    kv_key(m, key, GGUF_ARRAY);
    buf_u32(&m->b, GGUF_I32);
    buf_u64(&m->b, n);
    for (size_t i = 0; i < n; i++) buf_u32(&m->b, (uint32_t)v);
}

// ---- the vocabulary as strings ----------------------------------------------------------------

typedef struct {
    char **s;    // (n) malloc'd strings (not NUL-free in general; len says where they end)
    size_t *len; // (n)
    size_t n;
} Strings;

static void strings_free(Strings *t) {
    for (size_t i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
    free(t->len);
    memset(t, 0, sizeof *t);
}

static void strings_init(Strings *t, size_t n) {
    t->s = xcalloc(n ? n : 1, sizeof *t->s);
    t->len = xcalloc(n ? n : 1, sizeof *t->len);
    t->n = n;
}

// GPT-2's byte-to-unicode alphabet: the printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF
// stand for themselves (as code points); the other 68 bytes, in increasing order, become
// U+0100, U+0101, ... So every byte is one printable character, and a space is 'Ġ' (U+0120).
static void gpt2_alphabet(char spell[256][3], unsigned char spell_len[256]) {
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = self ? b : next++;
        if (cp < 0x80) {
            spell[b][0] = (char)cp;
            spell_len[b] = 1;
        } else {
            spell[b][0] = (char)(0xC0 | cp >> 6);
            spell[b][1] = (char)(0x80 | (cp & 0x3F));
            spell_len[b] = 2;
        }
    }
}

static char *gpt2_spell(const unsigned char *bytes, size_t n, char spell[256][3], const unsigned char *spell_len,
                        size_t *out_len) {
    char *s = xmalloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + k, spell[bytes[i]], spell_len[bytes[i]]);
        k += spell_len[bytes[i]];
    }
    s[k] = 0;
    *out_len = k;
    return s;
}

// A char token as llama.cpp's RWKV vocabulary reads it: a backslash escapes; \t \n \r and
// \xNN (two lowercase hex digits) stand for bytes. Control bytes, DEL and a lone fallback byte
// are written as \xNN, so the file holds valid UTF-8 text; a character >= U+0080 as itself.
static char *rwkv_escape(const unsigned char *bytes, size_t n, size_t *out_len) {
    char *s = xmalloc(4 * n + 1);
    size_t k = 0;
    bool lone_high_byte = n == 1 && bytes[0] >= 0x80;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = bytes[i];
        if (c == '\\') k += (size_t)sprintf(s + k, "\\\\");
        else if (c == '\t') k += (size_t)sprintf(s + k, "\\t");
        else if (c == '\n') k += (size_t)sprintf(s + k, "\\n");
        else if (c == '\r') k += (size_t)sprintf(s + k, "\\r");
        else if (c < 0x20 || c == 0x7F || lone_high_byte) k += (size_t)sprintf(s + k, "\\x%02x", c);
        else s[k++] = (char)c;
    }
    s[k] = 0;
    *out_len = k;
    return s;
}

static const Strings *sort_base;
static int cmp_string_ids(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    size_t li = sort_base->len[i], lj = sort_base->len[j];
    int c = memcmp(sort_base->s[i], sort_base->s[j], li < lj ? li : lj);
    if (c) return c;
    return li < lj ? -1 : li > lj ? 1 : (i < j ? -1 : i > j);
}

// llama.cpp refuses a vocabulary with two equal token strings. False, naming the first pair.
static bool check_distinct(const Strings *t, const Tokenizer *tok, char *err, size_t errlen) {
    size_t *order = xmalloc((t->n ? t->n : 1) * sizeof *order);
    for (size_t i = 0; i < t->n; i++) order[i] = i;
    sort_base = t;
    qsort(order, t->n, sizeof *order, cmp_string_ids);
    sort_base = NULL;
    bool ok = true;
    for (size_t k = 1; k < t->n && ok; k++) {
        size_t i = order[k - 1], j = order[k];
        if (t->len[i] == t->len[j] && memcmp(t->s[i], t->s[j], t->len[i]) == 0) {
            set_error(err, errlen,
                      "%s tokens %zu and %zu have the same bytes, which a GGUF vocabulary cannot hold (llama.cpp "
                      "finds tokens by their text)",
                      tokenizer_kind_name(tokenizer_kind(tok)), i < j ? i : j, i < j ? j : i);
            ok = false;
        }
    }
    free(order);
    return ok;
}

const char *gguf_tokenizer_model(const Tokenizer *tok) { return tokenizer_kind(tok) == TOKENIZER_BPE ? "gpt2" : "rwkv"; }

// The tokens (and, for bpe, the merges as "left right") in the tokenizer's spelling.
static bool vocab_strings(const Tokenizer *tok, Strings *tokens, Strings *merges, char *err, size_t errlen) {
    int V = tokenizer_vocab_size(tok);
    bool bpe = tokenizer_kind(tok) == TOKENIZER_BPE;
    char spell[256][3];
    unsigned char spell_len[256];
    gpt2_alphabet(spell, spell_len);
    strings_init(tokens, (size_t)V);
    for (int id = 0; id < V; id++) {
        size_t n;
        const unsigned char *bytes = tokenizer_token_bytes(tok, id, &n);
        tokens->s[id] = bpe ? gpt2_spell(bytes, n, spell, spell_len, &tokens->len[id]) : rwkv_escape(bytes, n, &tokens->len[id]);
    }
    int n_merges = tokenizer_bpe_merge_count(tok);
    strings_init(merges, (size_t)n_merges);
    for (int i = 0; i < n_merges; i++) {
        int l, r;
        bool have = tokenizer_bpe_merge(tok, i, &l, &r);
        assert(have);
        (void)have;
        size_t nl = tokens->len[l], nr = tokens->len[r];
        char *s = xmalloc(nl + nr + 2);
        memcpy(s, tokens->s[l], nl);
        s[nl] = ' ';  // never inside a spelled token: GPT-2's alphabet spells a space 'Ġ'
        memcpy(s + nl + 1, tokens->s[r], nr);
        s[nl + nr + 1] = 0;
        merges->s[i] = s;
        merges->len[i] = nl + nr + 1;
    }
    return check_distinct(tokens, tok, err, errlen);
}

// ---- tensors ----------------------------------------------------------------------------------

typedef struct {
    char name[64];
    uint32_t n_dims;
    uint64_t ne[2];         // GGML order: ne[0] is the row length; ne[1] 1 for a vector
    ExportType type;
    const float *part[3];   // the values, concatenated in this order; no parts: zeros
    size_t part_n[3];
    int n_parts;
    uint64_t offset;        // into the data section
    size_t bytes;
} Tensor;


static uint32_t ggml_type(ExportType t) {
    switch (t) {
    case EXPORT_F32: return GGML_F32;
    case EXPORT_F16: return GGML_F16;
    case EXPORT_Q8_0: return GGML_Q8_0;
    }
    return GGML_F32;
}

// A matrix takes the requested type; a Q8_0 matrix needs rows of whole 32-value blocks.
static ExportType matrix_type(ExportType want, uint64_t row) {
    if (want == EXPORT_Q8_0 && row % EXPORT_Q8_0_BLOCK != 0) return EXPORT_F16;
    return want;
}

static Tensor *add_tensor(Tensor *t, int *n, const char *name, uint64_t ne0, uint64_t ne1, ExportType type) {
    Tensor *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->n_dims = ne1 ? 2 : 1;
    x->ne[0] = ne0;
    x->ne[1] = ne1 ? ne1 : 1;
    x->type = ne1 ? matrix_type(type, ne0) : EXPORT_F32;
    return x;
}

static void add_part(Tensor *x, const float *p, size_t n) {
    x->part[x->n_parts] = p;
    x->part_n[x->n_parts++] = n;
}

static int build_tensors(const GPT *m, ExportType type, Tensor *t) {
    const GPTConfig *c = &m->config;
    size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, T = (size_t)c->block_size;
    int n = 0;
    char name[64], pn[32];
    add_part(add_tensor(t, &n, "token_embd.weight", C, V, type), export_param(m, "wte", V * C), V * C);
    add_part(add_tensor(t, &n, "position_embd.weight", C, T, type), export_param(m, "wpe", T * C), T * C);
    for (int l = 0; l < c->n_layer; l++) {
#define LNAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), name)
#define PNAME(suffix) (snprintf(pn, sizeof pn, "h.%d.%s", l, suffix), pn)
        add_part(add_tensor(t, &n, LNAME("attn_norm.weight"), C, 0, type), export_param(m, PNAME("ln1_w"), C), C);
        add_tensor(t, &n, LNAME("attn_norm.bias"), C, 0, type);
        Tensor *qkv = add_tensor(t, &n, LNAME("attn_qkv.weight"), C, 3 * C, type);
        add_part(qkv, export_param(m, PNAME("w_q"), C * C), C * C);
        add_part(qkv, export_param(m, PNAME("w_k"), C * C), C * C);
        add_part(qkv, export_param(m, PNAME("w_v"), C * C), C * C);
        add_tensor(t, &n, LNAME("attn_qkv.bias"), 3 * C, 0, type);
        add_part(add_tensor(t, &n, LNAME("attn_output.weight"), C, C, type), export_param(m, PNAME("w_o"), C * C), C * C);
        add_tensor(t, &n, LNAME("attn_output.bias"), C, 0, type);
        add_part(add_tensor(t, &n, LNAME("ffn_norm.weight"), C, 0, type), export_param(m, PNAME("ln2_w"), C), C);
        add_tensor(t, &n, LNAME("ffn_norm.bias"), C, 0, type);
        add_part(add_tensor(t, &n, LNAME("ffn_up.weight"), C, 4 * C, type), export_param(m, PNAME("w_fc"), 4 * C * C), 4 * C * C);
        add_tensor(t, &n, LNAME("ffn_up.bias"), 4 * C, 0, type);
        add_part(add_tensor(t, &n, LNAME("ffn_down.weight"), 4 * C, C, type), export_param(m, PNAME("w_proj"), 4 * C * C),
                 4 * C * C);
        add_tensor(t, &n, LNAME("ffn_down.bias"), C, 0, type);
#undef LNAME
#undef PNAME
    }
    add_part(add_tensor(t, &n, "output_norm.weight", C, 0, type), export_param(m, "lnf_w", C), C);
    add_tensor(t, &n, "output_norm.bias", C, 0, type);
    return n;
}

static uint64_t align_up(uint64_t x) { return (x + GGUF_ALIGNMENT - 1) / GGUF_ALIGNMENT * GGUF_ALIGNMENT; }

// ---- the file ---------------------------------------------------------------------------------

static void write_metadata(Meta *md, const GPT *m, const Tokenizer *tok, ExportType type, const Strings *tokens,
                           const Strings *merges) {
    const GPTConfig *c = &m->config;
    kv_str(md, "general.architecture", "gpt2");
    kv_str(md, "general.name", "gpt.c");
    kv_u32(md, "general.alignment", GGUF_ALIGNMENT);
    kv_u32(md, "general.file_type",
           type == EXPORT_F32 ? FILE_ALL_F32 : type == EXPORT_F16 ? FILE_MOSTLY_F16 : FILE_MOSTLY_Q8_0);
    if (type == EXPORT_Q8_0) kv_u32(md, "general.quantization_version", 2);
    kv_u32(md, "gpt2.context_length", (uint32_t)c->block_size);
    kv_u32(md, "gpt2.embedding_length", (uint32_t)c->n_embd);
    kv_u32(md, "gpt2.feed_forward_length", 4 * (uint32_t)c->n_embd);
    kv_u32(md, "gpt2.block_count", (uint32_t)c->n_layer);
    kv_u32(md, "gpt2.attention.head_count", (uint32_t)c->n_head);
    kv_f32(md, "gpt2.attention.layer_norm_epsilon", LAYER_NORM_EPS);

    bool bpe = tokenizer_kind(tok) == TOKENIZER_BPE;
    kv_str(md, "tokenizer.ggml.model", gguf_tokenizer_model(tok));
    if (bpe) kv_str(md, "tokenizer.ggml.pre", "gpt-2");
    kv_str_array(md, "tokenizer.ggml.tokens", tokens->s, tokens->len, tokens->n);
    kv_i32_fill(md, "tokenizer.ggml.token_type", TOKEN_TYPE_NORMAL, tokens->n);
    if (bpe) kv_str_array(md, "tokenizer.ggml.merges", merges->s, merges->len, merges->n);
    kv_u32(md, "tokenizer.ggml.bos_token_id", (uint32_t)export_start_token(tok));
    int eos = export_end_token(tok);
    if (eos >= 0) kv_u32(md, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    kv_bool(md, "tokenizer.ggml.add_bos_token", false);
    kv_bool(md, "tokenizer.ggml.add_eos_token", false);
}

bool gguf_export(const char *path, const GPT *m, const Tokenizer *tok, ExportType type, char *err, size_t errlen) {
    if (!export_check_features(m, "GGUF's gpt2 architecture", err, errlen)) return false;
    if (tokenizer_vocab_size(tok) != m->config.vocab_size) {
        set_error(err, errlen, "the tokenizer has %d tokens but the model's vocabulary is %d",
                  tokenizer_vocab_size(tok), m->config.vocab_size);
        return false;
    }
    Strings tokens = {0}, merges = {0};
    if (!vocab_strings(tok, &tokens, &merges, err, errlen)) {
        strings_free(&tokens);
        strings_free(&merges);
        return false;
    }
    Tensor *t = xmalloc((4 + 12 * (size_t)m->config.n_layer) * sizeof *t);
    int n_tensors = build_tensors(m, type, t);
    uint64_t data_size = 0;
    for (int i = 0; i < n_tensors; i++) {
        t[i].offset = data_size;
        t[i].bytes = export_type_bytes(t[i].type, t[i].ne[0] * t[i].ne[1]);
        data_size = align_up(data_size + t[i].bytes);
    }

    Meta md = {0};
    write_metadata(&md, m, tok, type, &tokens, &merges);
    Buf head = {0};
    buf_put(&head, "GGUF", 4);
    buf_u32(&head, GGUF_VERSION);
    buf_u64(&head, (uint64_t)n_tensors);
    buf_u64(&head, md.n_kv);
    buf_put(&head, md.b.p, md.b.n);
    for (int i = 0; i < n_tensors; i++) {
        buf_str(&head, t[i].name, strlen(t[i].name));
        buf_u32(&head, t[i].n_dims);
        for (uint32_t d = 0; d < t[i].n_dims; d++) buf_u64(&head, t[i].ne[d]);
        buf_u32(&head, ggml_type(t[i].type));
        buf_u64(&head, t[i].offset);
    }
    static const unsigned char zeros[GGUF_ALIGNMENT];
    buf_put(&head, zeros, align_up(head.n) - head.n);

    AtomicFile f;
    bool ok = atomic_open(&f, path, err, errlen);
    if (ok) {
        atomic_write(&f, head.p, head.n);
        for (int i = 0; i < n_tensors; i++) {
            if (t[i].n_parts == 0) export_write_values(&f, NULL, t[i].ne[0] * t[i].ne[1], t[i].type);
            for (int k = 0; k < t[i].n_parts; k++) export_write_values(&f, t[i].part[k], t[i].part_n[k], t[i].type);
            atomic_write(&f, zeros, align_up(t[i].bytes) - t[i].bytes);
        }
        ok = atomic_commit(&f, path, err, errlen);
    }
    free(head.p);
    free(md.b.p);
    free(t);
    strings_free(&tokens);
    strings_free(&merges);
    return ok;
}
