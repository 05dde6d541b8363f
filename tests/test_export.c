// test_export.c -- the export suite: GGUF and safetensors files read back by readers written
// here from the formats' specifications (not from the writers), so CI covers the writers
// without llama.cpp or Python; the half-precision conversion; and `gpt export`'s handling of
// bad input. scripts/llama_crosscheck.py and scripts/safetensors_check.py run the same files
// in llama.cpp and PyTorch.
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "cli/commands.h"
#include "common/common.h"
#include "export/export.h"
#include "export/gguf.h"
#include "export/safetensors.h"
#include "model/gpt.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

// ---------------------------------------------------------------------------------------------
// Fixtures: a tiny model with every parameter random (LayerNorm gains too, so that a gain
// written in a bias's place shows), with a char or a bpe tokenizer.

// Characters from four scripts, a tab, a backslash, control bytes, and bytes that are not
// UTF-8: 0xFF, and 0xC3 before '(' (a lead byte without its continuation).
static const char CHAR_TEXT[] = "Hello, w\xc3\xb6rld \xe2\x80\x94 \xc2\xa1\xc3\xbc! \t\\x41 \x01\x7f \xff\xc3( "
                                "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82\n";
static const char BPE_TEXT[] = "the cat sat on the mat, the cat ate the rat; the rat sat on the cat's hat.\n"
                               "that hat, this hat, the theme of them: then there were three thin thieves.\n";

typedef struct {
    GPT m;
    Tokenizer *tok;
} Model;

// A model of the given shape and features, its weights random of scale 0.5.
static void model_make_features(Model *x, TokenizerKind kind, int C, int L, int H, int T, uint32_t features) {
    if (kind == TOKENIZER_CHAR) {
        x->tok = tokenizer_train_char((const unsigned char *)CHAR_TEXT, strlen(CHAR_TEXT));
    } else {
        size_t len = strlen(BPE_TEXT);
        unsigned char *text = xmalloc(20 * len);
        for (int r = 0; r < 20; r++) memcpy(text + r * len, BPE_TEXT, len);
        x->tok = tokenizer_train_bpe(text, 20 * len, 330, false);
        free(text);
    }
    GPTConfig cfg = {.vocab_size = tokenizer_vocab_size(x->tok), .block_size = T, .n_layer = L, .n_head = H, .n_embd = C,
                     .features = features};
    gpt_init(&x->m, &cfg, 0, 7, 0);
    Rng r;
    rng_seed(&r, 11);
    fill_normal(x->m.params, x->m.num_params, &r, 0.5);
}

static void model_make(Model *x, TokenizerKind kind, int C, int L, int H, int T) {
    model_make_features(x, kind, C, L, H, T, 0);
}

static void model_free(Model *x) {
    gpt_free(&x->m);
    tokenizer_free(x->tok);
}

static const float *P(const Model *x, const char *fmt, int l) {
    char name[32];
    snprintf(name, sizeof name, fmt, l);
    const ParamInfo *p = gpt_param(&x->m, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return x->m.params + p->offset;
}

typedef struct {
    char dir[64];
} TempDir;

static void temp_dir(TempDir *td) {
    snprintf(td->dir, sizeof td->dir, "/tmp/gpt_export_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(td->dir));
}

static const char *temp_path(const TempDir *td, const char *name) {
    static char paths[8][160];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", td->dir, name);
    return p;
}

// The names in a directory, sorted, space separated (so a test can say exactly what is there).
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void dir_list(const char *dir, char *out, size_t cap) {
    char *names[64];
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = xstrdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(out);
        snprintf(out + k, cap - k, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
}

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_tree(p);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static unsigned char *slurp(const char *path, size_t *n) {
    char err[256];
    unsigned char *b = read_file(path, n, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}

// ---------------------------------------------------------------------------------------------
// A GGUF reader, from the specification (ggml's docs/gguf.md): every read is bounds-checked,
// and the layout rules (alignment of the data section and of each tensor, no overlap, the
// file ending with the last tensor's padded data) are asserted while reading.

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 };

typedef struct {
    const unsigned char *p;
    size_t n, at;
} Rd;

static const unsigned char *rd_take(Rd *r, size_t k) {
    ck_assert_msg(k <= r->n - r->at, "GGUF: read of %zu bytes at %zu passes the end (%zu)", k, r->at, r->n);
    const unsigned char *q = r->p + r->at;
    r->at += k;
    return q;
}

static uint64_t rd_uint(Rd *r, int bytes) {
    const unsigned char *q = rd_take(r, (size_t)bytes);
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; k--) v = v << 8 | q[k];
    return v;
}

static const char *rd_str(Rd *r, size_t *len) {
    uint64_t n = rd_uint(r, 8);
    ck_assert_uint_lt(n, (uint64_t)1 << 30);
    *len = (size_t)n;
    return (const char *)rd_take(r, (size_t)n);
}

static size_t scalar_size(uint32_t type) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    ck_assert_msg(type <= T_F64 && type != T_STRING && type != T_ARRAY, "GGUF: value type %u", type);
    return sizes[type];
}

typedef struct {
    char key[96];
    uint32_t type;
    uint64_t u;          // unsigned scalars and bools
    float f;             // f32
    const char *s;       // string
    size_t slen;
    uint32_t arr_type;   // array
    uint64_t arr_n;
    size_t arr_at;       // the first item's offset in the file
} Kv;

typedef struct {
    char name[96];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
    size_t bytes;
} TInfo;

typedef struct {
    const unsigned char *file;
    size_t size;
    Kv *kv;
    uint64_t n_kv;
    TInfo *t;
    uint64_t n_t;
    size_t data;  // the data section's offset in the file
} Gguf;

static size_t ggml_bytes(uint32_t type, uint64_t n) {
    if (type == 0) return 4 * n;
    if (type == 1) return 2 * n;
    ck_assert_msg(type == 8, "GGUF: tensor type %u (this writer makes 0, 1 and 8)", type);
    ck_assert_uint_eq(n % 32, 0);
    return n / 32 * 34;
}

static void gguf_parse(Gguf *g, const unsigned char *file, size_t size) {
    memset(g, 0, sizeof *g);
    g->file = file;
    g->size = size;
    Rd r = {file, size, 0};
    ck_assert_mem_eq(rd_take(&r, 4), "GGUF", 4);
    ck_assert_uint_eq(rd_uint(&r, 4), 3);
    g->n_t = rd_uint(&r, 8);
    g->n_kv = rd_uint(&r, 8);
    ck_assert_uint_lt(g->n_kv, 1000);
    ck_assert_uint_lt(g->n_t, 10000);
    g->kv = xcalloc(g->n_kv + 1, sizeof *g->kv);
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        Kv *kv = &g->kv[i];
        size_t klen;
        const char *key = rd_str(&r, &klen);
        ck_assert_uint_lt(klen, sizeof kv->key);
        memcpy(kv->key, key, klen);
        for (uint64_t j = 0; j < i; j++) ck_assert_msg(strcmp(g->kv[j].key, kv->key), "GGUF: key %s twice", kv->key);
        kv->type = (uint32_t)rd_uint(&r, 4);
        if (kv->type == T_STRING) {
            kv->s = rd_str(&r, &kv->slen);
        } else if (kv->type == T_ARRAY) {
            kv->arr_type = (uint32_t)rd_uint(&r, 4);
            kv->arr_n = rd_uint(&r, 8);
            kv->arr_at = r.at;
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                size_t len;
                if (kv->arr_type == T_STRING) rd_str(&r, &len);
                else rd_take(&r, scalar_size(kv->arr_type));
            }
        } else if (kv->type == T_F32) {
            uint32_t bits = (uint32_t)rd_uint(&r, 4);
            memcpy(&kv->f, &bits, 4);
        } else {
            kv->u = rd_uint(&r, (int)scalar_size(kv->type));
            if (kv->type == T_BOOL) ck_assert_uint_le(kv->u, 1);
        }
        if (strcmp(kv->key, "general.alignment") == 0) {
            ck_assert_uint_eq(kv->type, T_U32);
            alignment = kv->u;
            ck_assert_uint_eq(alignment % 8, 0);
        }
    }
    g->t = xcalloc(g->n_t + 1, sizeof *g->t);
    for (uint64_t i = 0; i < g->n_t; i++) {
        TInfo *t = &g->t[i];
        size_t nlen;
        const char *name = rd_str(&r, &nlen);
        ck_assert_uint_le(nlen, 64);
        memcpy(t->name, name, nlen);
        t->n_dims = (uint32_t)rd_uint(&r, 4);
        ck_assert_uint_ge(t->n_dims, 1);
        ck_assert_uint_le(t->n_dims, 4);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d] = rd_uint(&r, 8);
        t->type = (uint32_t)rd_uint(&r, 4);
        t->offset = rd_uint(&r, 8);
        ck_assert_uint_eq(t->offset % alignment, 0);
        t->bytes = ggml_bytes(t->type, n);
    }
    g->data = (r.at + alignment - 1) / alignment * alignment;
    for (size_t k = r.at; k < g->data; k++) ck_assert_uint_eq(file[k], 0);  // zero padding
    // The tensors tile the data section in order, each padded to the alignment, up to the end.
    uint64_t expect = 0;
    for (uint64_t i = 0; i < g->n_t; i++) {
        ck_assert_msg(g->t[i].offset == expect, "%s at %lu, expected %lu", g->t[i].name,
                      (unsigned long)g->t[i].offset, (unsigned long)expect);
        expect = (g->t[i].offset + g->t[i].bytes + alignment - 1) / alignment * alignment;
    }
    ck_assert_uint_eq(g->data + expect, size);
}

static void gguf_done(Gguf *g) {
    free(g->kv);
    free(g->t);
}

static const Kv *kv_find(const Gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static const Kv *kv_get(const Gguf *g, const char *key, uint32_t type) {
    const Kv *kv = kv_find(g, key);
    ck_assert_msg(kv != NULL, "no key %s", key);
    ck_assert_msg(kv->type == type, "%s has type %u, expected %u", key, kv->type, type);
    return kv;
}

static void assert_kv_u32(const Gguf *g, const char *key, uint64_t v) {
    ck_assert_msg(kv_get(g, key, T_U32)->u == v, "%s = %lu, expected %lu", key, (unsigned long)kv_get(g, key, T_U32)->u,
                  (unsigned long)v);
}

static void assert_kv_str(const Gguf *g, const char *key, const char *v) {
    const Kv *kv = kv_get(g, key, T_STRING);
    ck_assert_msg(kv->slen == strlen(v) && memcmp(kv->s, v, kv->slen) == 0, "%s = '%.*s', expected '%s'", key,
                  (int)kv->slen, kv->s, v);
}

// Item i of a string array.
static const char *kv_arr_str(const Gguf *g, const Kv *kv, uint64_t i, size_t *len) {
    ck_assert_uint_eq(kv->arr_type, T_STRING);
    ck_assert_uint_lt(i, kv->arr_n);
    Rd r = {g->file, g->size, kv->arr_at};
    for (uint64_t k = 0; k < i; k++) rd_str(&r, len);
    return rd_str(&r, len);
}

static const TInfo *tensor(const Gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static float le_f32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static float le_f16(const unsigned char *p) { return export_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

// Element i of a tensor's data, dequantized.
static float tensor_value(const Gguf *g, const TInfo *t, size_t i) {
    const unsigned char *d = g->file + g->data + t->offset;
    if (t->type == 0) return le_f32(d + 4 * i);
    if (t->type == 1) return le_f16(d + 2 * i);
    const unsigned char *block = d + i / 32 * 34;
    return le_f16(block) * (float)(int8_t)block[2 + i % 32];
}

// The tensor, GGML shape ne (ne[1] 0 for a vector), holds want (NULL: zeros) within tol
// times the largest magnitude of its 32-value block (0: exactly).
static void assert_tensor(const Gguf *g, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type, const float *want,
                          double tol) {
    const TInfo *t = tensor(g, name);
    ck_assert_msg(t->type == type, "%s has type %u, expected %u", name, t->type, type);
    ck_assert_uint_eq(t->n_dims, ne1 ? 2 : 1);
    ck_assert_uint_eq(t->ne[0], ne0);
    if (ne1) ck_assert_uint_eq(t->ne[1], ne1);
    size_t n = (size_t)(ne0 * (ne1 ? ne1 : 1));
    for (size_t i = 0; i < n; i++) {
        float w = want ? want[i] : 0.0f, got = tensor_value(g, t, i);
        float scale = 0;
        for (size_t k = i / 32 * 32; k < i / 32 * 32 + 32 && k < n; k++) scale = fmaxf(scale, want ? fabsf(want[k]) : 0);
        ck_assert_msg(tol == 0 ? memcmp(&got, &w, 4) == 0 : fabs(got - w) <= tol * scale,
                      "%s[%zu] = %.9g, expected %.9g", name, i, (double)got, (double)w);
    }
}

// ---------------------------------------------------------------------------------------------
// The tokenizers as llama.cpp reads them, from its documented behaviour.

// llama.cpp's RWKV vocabulary: a backslash escapes the next character; \t \n \r are those
// bytes, \xNN two lowercase hex digits; any other escaped character stands for itself.
static size_t rwkv_unescape(const char *s, size_t n, unsigned char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[k++] = (unsigned char)s[i];
            continue;
        }
        ck_assert_uint_lt(i + 1, n);
        char c = s[++i];
        if (c == 't') out[k++] = '\t';
        else if (c == 'n') out[k++] = '\n';
        else if (c == 'r') out[k++] = '\r';
        else if (c == 'x') {
            ck_assert_uint_lt(i + 2, n);
            unsigned v = 0;
            for (int d = 0; d < 2; d++) {
                char h = s[++i];
                ck_assert_msg((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'), "bad hex digit '%c'", h);
                v = v * 16 + (unsigned)(h <= '9' ? h - '0' : h - 'a' + 10);
            }
            out[k++] = (unsigned char)v;
        } else {
            out[k++] = (unsigned char)c;
        }
    }
    return k;
}

// GPT-2's byte-to-unicode alphabet, decoded: the code point of a spelled character back to
// its byte. Printable bytes 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF are themselves; the rest, in
// increasing order, are U+0100 onwards.
static int gpt2_byte_of(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    int rank = 0;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (self) continue;
        if ((uint32_t)(256 + rank) == cp) return b;
        rank++;
    }
    return -1;
}

static size_t gpt2_unspell(const char *s, size_t n, unsigned char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        ck_assert_msg(len > 0, "spelled token is not UTF-8");
        int b = gpt2_byte_of(cp);
        ck_assert_msg(b >= 0, "U+%04X is not in GPT-2's byte alphabet", (unsigned)cp);
        out[k++] = (unsigned char)b;
        i += (size_t)len;
    }
    return k;
}

static void assert_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        ck_assert_msg(len > 0, "'%.*s' is not valid UTF-8 at %zu", (int)n, s, i);
        i += (size_t)len;
    }
}

// The vocabulary's bytes, from the file.
typedef struct {
    unsigned char *bytes[1024];
    size_t len[1024];
    char *spelled[1024];  // as in the file (NUL-terminated copy)
    size_t slen[1024];
    int n;
} FileVocab;

static void file_vocab(const Gguf *g, bool bpe, FileVocab *v) {
    const Kv *tokens = kv_get(g, "tokenizer.ggml.tokens", T_ARRAY);
    ck_assert_uint_le(tokens->arr_n, 1024);
    v->n = (int)tokens->arr_n;
    for (int i = 0; i < v->n; i++) {
        size_t n;
        const char *s = kv_arr_str(g, tokens, (uint64_t)i, &n);
        assert_utf8(s, n);
        v->spelled[i] = xmalloc(n + 1);
        memcpy(v->spelled[i], s, n);
        v->spelled[i][n] = 0;
        v->slen[i] = n;
        v->bytes[i] = xmalloc(n + 1);
        v->len[i] = bpe ? gpt2_unspell(s, n, v->bytes[i]) : rwkv_unescape(s, n, v->bytes[i]);
    }
}

static void file_vocab_free(FileVocab *v) {
    for (int i = 0; i < v->n; i++) {
        free(v->bytes[i]);
        free(v->spelled[i]);
    }
}

// llama.cpp's RWKV tokenizer: at each position the longest token whose bytes come next.
static size_t rwkv_tokenize(const FileVocab *v, const unsigned char *text, size_t len, int *ids) {
    size_t n = 0;
    for (size_t at = 0; at < len;) {
        int best = -1;
        for (int id = 0; id < v->n; id++)
            if (v->len[id] <= len - at && memcmp(v->bytes[id], text + at, v->len[id]) == 0 &&
                (best < 0 || v->len[id] > v->len[best]))
                best = id;
        ck_assert_msg(best >= 0, "no token matches at byte %zu", at);
        ids[n++] = best;
        at += v->len[best];
    }
    return n;
}

// llama.cpp's BPE on one pre-split word: the word's spelled characters, then again and again
// the adjacent pair with the lowest merge rank (the leftmost of equals) joined, while any pair
// is a merge ("left right" in the merges list, whose index is the rank); then each piece's id
// by its text.
static size_t bpe_tokenize_word(char *const *merges, size_t n_merges, const FileVocab *v, const unsigned char *word,
                                size_t len, int *ids) {
    char *piece[256];
    size_t n = 0;
    ck_assert_uint_le(len, 256);
    for (size_t i = 0; i < len; i++) piece[n++] = xstrdup(v->spelled[word[i]]);  // ids 0..255 are the bytes
    for (;;) {
        size_t best_rank = SIZE_MAX, best = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            size_t la = strlen(piece[i]), lb = strlen(piece[i + 1]);
            for (size_t r = 0; r < n_merges && r < best_rank; r++) {
                const char *m = merges[r];
                if (strlen(m) == la + 1 + lb && !memcmp(m, piece[i], la) && m[la] == ' ' &&
                    !memcmp(m + la + 1, piece[i + 1], lb)) {
                    best_rank = r;
                    best = i;
                }
            }
        }
        if (best_rank == SIZE_MAX) break;
        size_t la = strlen(piece[best]), lb = strlen(piece[best + 1]);
        piece[best] = xrealloc(piece[best], la + lb + 1);
        memcpy(piece[best] + la, piece[best + 1], lb + 1);
        free(piece[best + 1]);
        memmove(piece + best + 1, piece + best + 2, (n - best - 2) * sizeof piece[0]);
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = -1;
        for (int id = 0; id < v->n; id++)
            if (strcmp(v->spelled[id], piece[i]) == 0) ids[i] = id;
        ck_assert_msg(ids[i] >= 0, "piece '%s' is not a token", piece[i]);
        free(piece[i]);
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// GGUF.

static void export_gguf(const Model *x, const char *path, ExportType type, Gguf *g, unsigned char **file) {
    char err[512] = "";
    ck_assert_msg(gguf_export(path, &x->m, x->tok, type, err, sizeof err), "%s", err);
    size_t n;
    *file = slurp(path, &n);
    gguf_parse(g, *file, n);
}

static void assert_model_tensors(const Gguf *g, const Model *x, ExportType type) {
    const GPTConfig *c = &x->m.config;
    uint64_t C = (uint64_t)c->n_embd, V = (uint64_t)c->vocab_size, T = (uint64_t)c->block_size;
    bool untied = gpt_has(c, GPT_FEAT_UNTIED_HEAD);
    ck_assert_uint_eq(g->n_t, 4 + 12 * (uint64_t)c->n_layer + untied);
    // Matrices: the type asked for, except q8_0 rows that are not whole 32-value blocks (f16).
    uint32_t want = type == EXPORT_F32 ? 0 : type == EXPORT_F16 ? 1 : 8;
    double tol = type == EXPORT_F32 ? 0 : type == EXPORT_F16 ? 1.0 / 1024 : 1.0 / 127 * 0.51 + 1.0 / 1024;
#define MT(row) (want == 8 && (row) % 32 ? 1u : want)
#define MTOL(row) (MT(row) == 1 ? (type == EXPORT_F32 ? 0 : 1.0 / 1024) : tol)
    assert_tensor(g, "token_embd.weight", C, V, MT(C), P(x, "wte", 0), MTOL(C));
    assert_tensor(g, "position_embd.weight", C, T, MT(C), P(x, "wpe", 0), MTOL(C));
    for (int l = 0; l < c->n_layer; l++) {
        char name[64];
        float *qkv = xmalloc(3 * C * C * sizeof *qkv);
        memcpy(qkv, P(x, "h.%d.w_q", l), C * C * sizeof *qkv);
        memcpy(qkv + C * C, P(x, "h.%d.w_k", l), C * C * sizeof *qkv);
        memcpy(qkv + 2 * C * C, P(x, "h.%d.w_v", l), C * C * sizeof *qkv);
#define N(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
        assert_tensor(g, N("attn_norm.weight"), C, 0, 0, P(x, "h.%d.ln1_w", l), 0);
        assert_tensor(g, N("attn_norm.bias"), C, 0, 0, NULL, 0);
        assert_tensor(g, N("attn_qkv.weight"), C, 3 * C, MT(C), qkv, MTOL(C));
        assert_tensor(g, N("attn_qkv.bias"), 3 * C, 0, 0, NULL, 0);
        assert_tensor(g, N("attn_output.weight"), C, C, MT(C), P(x, "h.%d.w_o", l), MTOL(C));
        assert_tensor(g, N("attn_output.bias"), C, 0, 0, NULL, 0);
        assert_tensor(g, N("ffn_norm.weight"), C, 0, 0, P(x, "h.%d.ln2_w", l), 0);
        assert_tensor(g, N("ffn_norm.bias"), C, 0, 0, NULL, 0);
        assert_tensor(g, N("ffn_up.weight"), C, 4 * C, MT(C), P(x, "h.%d.w_fc", l), MTOL(C));
        assert_tensor(g, N("ffn_up.bias"), 4 * C, 0, 0, NULL, 0);
        assert_tensor(g, N("ffn_down.weight"), 4 * C, C, MT(4 * C), P(x, "h.%d.w_proj", l), MTOL(4 * C));
        assert_tensor(g, N("ffn_down.bias"), C, 0, 0, NULL, 0);
#undef N
        free(qkv);
    }
    assert_tensor(g, "output_norm.weight", C, 0, 0, P(x, "lnf_w", 0), 0);
    assert_tensor(g, "output_norm.bias", C, 0, 0, NULL, 0);
    // An untied head is llama.cpp's output.weight, laid out like token_embd (the count above
    // leaves no room for it in a tied model).
    if (untied) assert_tensor(g, "output.weight", C, V, MT(C), P(x, "lm_head", 0), MTOL(C));
#undef MT
#undef MTOL
}

static void assert_hparams(const Gguf *g, const Model *x) {
    const GPTConfig *c = &x->m.config;
    assert_kv_str(g, "general.architecture", "gpt2");
    assert_kv_u32(g, "gpt2.context_length", (uint64_t)c->block_size);
    assert_kv_u32(g, "gpt2.embedding_length", (uint64_t)c->n_embd);
    assert_kv_u32(g, "gpt2.feed_forward_length", 4 * (uint64_t)c->n_embd);
    assert_kv_u32(g, "gpt2.block_count", (uint64_t)c->n_layer);
    assert_kv_u32(g, "gpt2.attention.head_count", (uint64_t)c->n_head);
    ck_assert_float_eq(kv_get(g, "gpt2.attention.layer_norm_epsilon", T_F32)->f, 1e-5f);
    ck_assert_uint_eq(kv_get(g, "tokenizer.ggml.add_bos_token", T_BOOL)->u, 0);
    ck_assert_uint_eq(kv_get(g, "tokenizer.ggml.add_eos_token", T_BOOL)->u, 0);
    const Kv *types = kv_get(g, "tokenizer.ggml.token_type", T_ARRAY);
    ck_assert_uint_eq(types->arr_type, T_I32);
    ck_assert_uint_eq(types->arr_n, (uint64_t)c->vocab_size);
    for (uint64_t i = 0; i < types->arr_n; i++) {
        Rd r = {g->file, g->size, types->arr_at + 4 * i};
        ck_assert_uint_eq(rd_uint(&r, 4), 1);  // normal
    }
}

START_TEST(test_gguf_char_model_reads_back_exactly) {
    Model x;
    model_make(&x, TOKENIZER_CHAR, 12, 2, 2, 8);  // C = 12: tensors of 48 bytes need padding
    TempDir td;
    temp_dir(&td);
    Gguf g;
    unsigned char *file;
    export_gguf(&x, temp_path(&td, "m.gguf"), EXPORT_F32, &g, &file);
    assert_hparams(&g, &x);
    assert_kv_u32(&g, "general.alignment", 32);
    assert_kv_u32(&g, "general.file_type", 0);
    ck_assert_ptr_null(kv_find(&g, "general.quantization_version"));
    assert_model_tensors(&g, &x, EXPORT_F32);

    assert_kv_str(&g, "tokenizer.ggml.model", "rwkv");
    ck_assert_ptr_null(kv_find(&g, "tokenizer.ggml.merges"));
    ck_assert_ptr_null(kv_find(&g, "tokenizer.ggml.pre"));
    ck_assert_ptr_null(kv_find(&g, "tokenizer.ggml.eos_token_id"));  // no token can mean it
    int *nl;
    size_t n;
    ck_assert(tokenizer_encode(x.tok, (const unsigned char *)"\n", 1, &nl, &n, NULL, 0) && n == 1);
    assert_kv_u32(&g, "tokenizer.ggml.bos_token_id", (uint64_t)nl[0]);
    free(nl);

    // Every token's bytes, from the file, are the tokenizer's.
    FileVocab v;
    file_vocab(&g, false, &v);
    ck_assert_int_eq(v.n, tokenizer_vocab_size(x.tok));
    for (int id = 0; id < v.n; id++) {
        size_t len;
        const unsigned char *b = tokenizer_token_bytes(x.tok, id, &len);
        ck_assert_uint_eq(v.len[id], len);
        ck_assert_mem_eq(v.bytes[id], b, len);
    }
    // And llama.cpp's longest-match tokenizer over them gives gpt.c's ids, also where the text
    // is not UTF-8 (0xC3 then 0xC3 0xB6: a fallback byte, then 'ö'; a lone 0xFF; 0xC3 '(').
    const char *texts[] = {CHAR_TEXT, "\xc3\xc3\xb6", "\xff\xff\xc3(\xc3", "\\x41\\\\", "\t\x01\x7f\n",
                           "w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x99\x82!"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int *ours, theirs[256];
        size_t n_ours;
        char err[256];
        size_t len = strlen(texts[k]);
        ck_assert_msg(tokenizer_encode(x.tok, (const unsigned char *)texts[k], len, &ours, &n_ours, err, sizeof err),
                      "%s", err);
        size_t n_theirs = rwkv_tokenize(&v, (const unsigned char *)texts[k], len, theirs);
        ck_assert_uint_eq(n_theirs, n_ours);
        ck_assert_mem_eq(theirs, ours, n_ours * sizeof(int));
        free(ours);
    }
    file_vocab_free(&v);
    gguf_done(&g);
    free(file);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

START_TEST(test_gguf_bpe_tokens_and_merges_encode_as_gpt_c) {
    Model x;
    model_make(&x, TOKENIZER_BPE, 8, 1, 2, 8);
    ck_assert_int_gt(tokenizer_bpe_merge_count(x.tok), 30);
    TempDir td;
    temp_dir(&td);
    Gguf g;
    unsigned char *file;
    export_gguf(&x, temp_path(&td, "m.gguf"), EXPORT_F32, &g, &file);
    assert_hparams(&g, &x);
    assert_model_tensors(&g, &x, EXPORT_F32);
    assert_kv_str(&g, "tokenizer.ggml.model", "gpt2");
    assert_kv_str(&g, "tokenizer.ggml.pre", "gpt-2");
    assert_kv_u32(&g, "tokenizer.ggml.bos_token_id", '\n');
    assert_kv_u32(&g, "tokenizer.ggml.eos_token_id", 0xFF);

    FileVocab v;
    file_vocab(&g, true, &v);
    ck_assert_int_eq(v.n, tokenizer_vocab_size(x.tok));
    for (int id = 0; id < v.n; id++) {
        size_t len;
        const unsigned char *b = tokenizer_token_bytes(x.tok, id, &len);
        ck_assert_uint_eq(v.len[id], len);
        ck_assert_mem_eq(v.bytes[id], b, len);
        ck_assert_ptr_null(memchr(v.spelled[id], ' ', v.slen[id]));  // a merge splits at its space
    }
    ck_assert_str_eq(v.spelled[' '], "\xc4\xa0");  // 'Ġ'
    ck_assert_str_eq(v.spelled['\n'], "\xc4\x8a"); // 'Ċ'
    const Kv *merges = kv_get(&g, "tokenizer.ggml.merges", T_ARRAY);
    ck_assert_uint_eq(merges->arr_n, (uint64_t)tokenizer_bpe_merge_count(x.tok));
    char **merge_str = xmalloc(merges->arr_n * sizeof *merge_str);
    for (int i = 0; i < tokenizer_bpe_merge_count(x.tok); i++) {
        int l, r;
        ck_assert(tokenizer_bpe_merge(x.tok, i, &l, &r));
        char want[256];
        snprintf(want, sizeof want, "%s %s", v.spelled[l], v.spelled[r]);
        size_t len;
        const char *s = kv_arr_str(&g, merges, (uint64_t)i, &len);
        ck_assert_uint_eq(len, strlen(want));
        ck_assert_mem_eq(s, want, len);
        merge_str[i] = xstrdup(want);
    }
    // Words that both pre-splits keep whole (an optional space, then ASCII letters): llama.cpp's
    // merging by rank gives gpt.c's ids.
    size_t len = strlen(BPE_TEXT);
    int words = 0;
    for (size_t at = 0; at < len;) {
        size_t k = tokenizer_bpe_chunk_len((const unsigned char *)BPE_TEXT, len, at);
        bool letters = k >= 2;
        for (size_t i = BPE_TEXT[at] == ' ' ? 1 : 0; i < k; i++)
            letters &= (BPE_TEXT[at + i] >= 'a' && BPE_TEXT[at + i] <= 'z');
        if (letters) {
            int *ours, theirs[256];
            size_t n_ours;
            ck_assert(tokenizer_encode(x.tok, (const unsigned char *)BPE_TEXT + at, k, &ours, &n_ours, NULL, 0));
            size_t n_theirs =
                bpe_tokenize_word(merge_str, merges->arr_n, &v, (const unsigned char *)BPE_TEXT + at, k, theirs);
            ck_assert_uint_eq(n_theirs, n_ours);
            ck_assert_mem_eq(theirs, ours, n_ours * sizeof(int));
            free(ours);
            words++;
        }
        at += k;
    }
    ck_assert_int_gt(words, 20);
    for (uint64_t i = 0; i < merges->arr_n; i++) free(merge_str[i]);
    free(merge_str);
    file_vocab_free(&v);
    gguf_done(&g);
    free(file);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

START_TEST(test_gguf_f16_and_q8_0_matrices_round_to_within_their_precision) {
    // C = 16: q8_0 applies to ffn_down's rows of 64; the other matrices' rows of 16 fall back to f16.
    Model x;
    model_make(&x, TOKENIZER_CHAR, 16, 2, 4, 8);
    TempDir td;
    temp_dir(&td);
    Gguf g;
    unsigned char *file;
    export_gguf(&x, temp_path(&td, "f16.gguf"), EXPORT_F16, &g, &file);
    assert_kv_u32(&g, "general.file_type", 1);
    ck_assert_ptr_null(kv_find(&g, "general.quantization_version"));
    assert_model_tensors(&g, &x, EXPORT_F16);
    gguf_done(&g);
    free(file);
    export_gguf(&x, temp_path(&td, "q8.gguf"), EXPORT_Q8_0, &g, &file);
    assert_kv_u32(&g, "general.file_type", 7);
    assert_kv_u32(&g, "general.quantization_version", 2);
    assert_model_tensors(&g, &x, EXPORT_Q8_0);
    ck_assert_uint_eq(tensor(&g, "blk.1.ffn_down.weight")->type, 8);
    gguf_done(&g);
    free(file);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

START_TEST(test_half_conversion_rounds_to_nearest_even) {
    struct {
        float x;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},       {-0.0f, 0x8000},          {1.0f, 0x3C00},        {-2.0f, 0xC000},
        {65504.0f, 0x7BFF},   {65519.0f, 0x7BFF},       {65520.0f, 0x7C00},    {1e10f, 0x7C00},
        {-INFINITY, 0xFC00},  {0x1p-14f, 0x0400},       {0x1p-24f, 0x0001},    {0x1p-25f, 0x0000},
        {0x1.8p-25f, 0x0001}, {0x1p-26f, 0x0000},       {0x1.ffcp-15f, 0x0400},
        {1.0f + 0x1p-11f, 0x3C00},  // halfway: to the even neighbour below
        {1.0f + 0x3p-11f, 0x3C02},  // halfway: to the even neighbour above
        {1.0f + 0x1.8p-11f, 0x3C01},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(export_f32_to_f16(cases[i].x) == cases[i].h, "%a -> 0x%04X, expected 0x%04X", (double)cases[i].x,
                      export_f32_to_f16(cases[i].x), cases[i].h);
    uint16_t nan = export_f32_to_f16(NAN);
    ck_assert((nan & 0x7C00) == 0x7C00 && (nan & 0x3FF) != 0);
    // Every half survives the trip through float and back.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  // NaN payloads
        ck_assert_msg(export_f32_to_f16(export_f16_to_f32((uint16_t)h)) == h, "0x%04X", h);
    }
    ck_assert_float_eq(export_f16_to_f32(0x3555), 0x1.554p-2f);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// safetensors: a reader for the header's JSON (the subset the format uses: objects, arrays,
// strings without escapes, whole numbers).

typedef struct {
    char name[96];
    char dtype[8];
    size_t shape[4];
    int ndim;
    size_t begin, end;
} StEntry;

typedef struct {
    const char *s;
    size_t at, n;
} Js;

static void js_ws(Js *j) {
    while (j->at < j->n && (j->s[j->at] == ' ' || j->s[j->at] == '\n')) j->at++;
}

static void js_expect(Js *j, char c) {
    js_ws(j);
    ck_assert_msg(j->at < j->n && j->s[j->at] == c, "JSON: expected '%c' at %zu", c, j->at);
    j->at++;
}

static bool js_peek(Js *j, char c) {
    js_ws(j);
    return j->at < j->n && j->s[j->at] == c;
}

static void js_string(Js *j, char *out, size_t cap) {
    js_expect(j, '"');
    size_t k = 0;
    while (j->at < j->n && j->s[j->at] != '"') {
        ck_assert_msg(j->s[j->at] != '\\', "JSON: an escape in a name");
        ck_assert_uint_lt(k + 1, cap);
        out[k++] = j->s[j->at++];
    }
    out[k] = 0;
    js_expect(j, '"');
}

static size_t js_number(Js *j) {
    js_ws(j);
    size_t v = 0, digits = 0;
    while (j->at < j->n && j->s[j->at] >= '0' && j->s[j->at] <= '9') v = v * 10 + (size_t)(j->s[j->at++] - '0'), digits++;
    ck_assert_msg(digits > 0, "JSON: expected a number at %zu", j->at);
    return v;
}

static int js_numbers(Js *j, size_t *out, int cap) {
    js_expect(j, '[');
    int n = 0;
    while (!js_peek(j, ']')) {
        if (n) js_expect(j, ',');
        ck_assert_int_lt(n, cap);
        out[n++] = js_number(j);
    }
    js_expect(j, ']');
    return n;
}

// The header's tensors (the "__metadata__" entry checked and skipped).
static int st_header(const char *s, size_t n, StEntry *e, int cap) {
    Js j = {s, 0, n};
    int count = 0;
    bool metadata = false;
    js_expect(&j, '{');
    while (!js_peek(&j, '}')) {
        if (count || metadata) js_expect(&j, ',');
        char key[96];
        js_string(&j, key, sizeof key);
        js_expect(&j, ':');
        js_expect(&j, '{');
        if (strcmp(key, "__metadata__") == 0) {
            char k[32], v[32];
            js_string(&j, k, sizeof k);
            js_expect(&j, ':');
            js_string(&j, v, sizeof v);
            ck_assert_str_eq(k, "format");
            ck_assert_str_eq(v, "pt");
            js_expect(&j, '}');
            metadata = true;
            continue;
        }
        ck_assert_int_lt(count, cap);
        StEntry *x = &e[count++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", key);
        for (int field = 0; field < 3; field++) {
            if (field) js_expect(&j, ',');
            char f[32];
            js_string(&j, f, sizeof f);
            js_expect(&j, ':');
            if (strcmp(f, "dtype") == 0) {
                js_string(&j, x->dtype, sizeof x->dtype);
            } else if (strcmp(f, "shape") == 0) {
                x->ndim = js_numbers(&j, x->shape, 4);
            } else {
                ck_assert_str_eq(f, "data_offsets");
                size_t o[2];
                ck_assert_int_eq(js_numbers(&j, o, 2), 2);
                x->begin = o[0];
                x->end = o[1];
            }
        }
        js_expect(&j, '}');
    }
    js_expect(&j, '}');
    js_ws(&j);
    ck_assert_uint_eq(j.at, n);  // only spaces after the object
    ck_assert(metadata);
    return count;
}

typedef struct {
    unsigned char *file;
    size_t size, data;
    StEntry e[128];
    int n;
} St;

static int cmp_begin(const void *a, const void *b) {
    const StEntry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void st_read(St *st, const char *path) {
    st->file = slurp(path, &st->size);
    ck_assert_uint_ge(st->size, 8);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | st->file[k];
    ck_assert_uint_le(hlen, st->size - 8);
    ck_assert_uint_eq((8 + hlen) % 8, 0);
    st->data = 8 + (size_t)hlen;
    st->n = st_header((const char *)st->file + 8, (size_t)hlen, st->e, 128);
    // The tensors tile the data exactly: sorted by offset, each ends where the next begins.
    StEntry sorted[128];
    memcpy(sorted, st->e, (size_t)st->n * sizeof sorted[0]);
    qsort(sorted, (size_t)st->n, sizeof sorted[0], cmp_begin);
    size_t at = 0;
    for (int i = 0; i < st->n; i++) {
        ck_assert_uint_eq(sorted[i].begin, at);
        size_t numel = 1;
        for (int d = 0; d < sorted[i].ndim; d++) numel *= sorted[i].shape[d];
        size_t width = strcmp(sorted[i].dtype, "F32") == 0 ? 4 : 2;
        ck_assert_msg(width == 4 || strcmp(sorted[i].dtype, "F16") == 0, "dtype %s", sorted[i].dtype);
        ck_assert_uint_eq(sorted[i].end - sorted[i].begin, numel * width);
        at = sorted[i].end;
    }
    ck_assert_uint_eq(st->data + at, st->size);
}

// The entry holds want (NULL: zeros), (rows, cols), read transposed when transpose is set:
// element [i][j] of the file is want[j][i].
static void st_assert(const St *st, const char *name, size_t d0, size_t d1, const float *want, bool transpose, bool f16) {
    const StEntry *x = NULL;
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->e[i].name, name) == 0) x = &st->e[i];
    ck_assert_msg(x != NULL, "no tensor %s", name);
    ck_assert_str_eq(x->dtype, f16 ? "F16" : "F32");
    ck_assert_int_eq(x->ndim, d1 ? 2 : 1);
    ck_assert_uint_eq(x->shape[0], d0);
    if (d1) ck_assert_uint_eq(x->shape[1], d1);
    size_t cols = d1 ? d1 : 1;
    const unsigned char *p = st->file + st->data + x->begin;
    for (size_t i = 0; i < d0; i++)
        for (size_t j = 0; j < cols; j++) {
            float w = want ? (transpose ? want[j * d0 + i] : want[i * cols + j]) : 0.0f;
            float got = f16 ? le_f16(p + 2 * (i * cols + j)) : le_f32(p + 4 * (i * cols + j));
            if (f16) w = export_f16_to_f32(export_f32_to_f16(w));
            ck_assert_msg(memcmp(&got, &w, 4) == 0, "%s[%zu][%zu] = %.9g, expected %.9g", name, i, j, (double)got, (double)w);
        }
}

static void assert_safetensors(const char *dir, const Model *x, bool f16) {
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    St st;
    st_read(&st, path);
    const GPTConfig *c = &x->m.config;
    size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, T = (size_t)c->block_size;
    bool untied = gpt_has(c, GPT_FEAT_UNTIED_HEAD);
    ck_assert_int_eq(st.n, 4 + 12 * c->n_layer + untied);  // lm_head.weight only when untied
    st_assert(&st, "transformer.wte.weight", V, C, P(x, "wte", 0), false, f16);
    st_assert(&st, "transformer.wpe.weight", T, C, P(x, "wpe", 0), false, f16);
    for (int l = 0; l < c->n_layer; l++) {
        char name[96];
        float *qkv = xmalloc(3 * C * C * sizeof *qkv);
        memcpy(qkv, P(x, "h.%d.w_q", l), C * C * sizeof *qkv);
        memcpy(qkv + C * C, P(x, "h.%d.w_k", l), C * C * sizeof *qkv);
        memcpy(qkv + 2 * C * C, P(x, "h.%d.w_v", l), C * C * sizeof *qkv);
#define N(s) (snprintf(name, sizeof name, "transformer.h.%d.%s", l, s), name)
        st_assert(&st, N("ln_1.weight"), C, 0, P(x, "h.%d.ln1_w", l), false, f16);
        st_assert(&st, N("ln_1.bias"), C, 0, NULL, false, f16);
        st_assert(&st, N("attn.c_attn.weight"), C, 3 * C, qkv, true, f16);
        st_assert(&st, N("attn.c_attn.bias"), 3 * C, 0, NULL, false, f16);
        st_assert(&st, N("attn.c_proj.weight"), C, C, P(x, "h.%d.w_o", l), true, f16);
        st_assert(&st, N("attn.c_proj.bias"), C, 0, NULL, false, f16);
        st_assert(&st, N("ln_2.weight"), C, 0, P(x, "h.%d.ln2_w", l), false, f16);
        st_assert(&st, N("ln_2.bias"), C, 0, NULL, false, f16);
        st_assert(&st, N("mlp.c_fc.weight"), C, 4 * C, P(x, "h.%d.w_fc", l), true, f16);
        st_assert(&st, N("mlp.c_fc.bias"), 4 * C, 0, NULL, false, f16);
        st_assert(&st, N("mlp.c_proj.weight"), 4 * C, C, P(x, "h.%d.w_proj", l), true, f16);
        st_assert(&st, N("mlp.c_proj.bias"), C, 0, NULL, false, f16);
#undef N
        free(qkv);
    }
    st_assert(&st, "transformer.ln_f.weight", C, 0, P(x, "lnf_w", 0), false, f16);
    st_assert(&st, "transformer.ln_f.bias", C, 0, NULL, false, f16);
    if (untied) st_assert(&st, "lm_head.weight", V, C, P(x, "lm_head", 0), false, f16);  // nn.Linear: (V,C)
    free(st.file);

    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *config = (char *)slurp(path, &n);
    char want[96];
    const char *fields[][2] = {
        {"architectures", "[\"GPT2LMHeadModel\"]"}, {"model_type", "\"gpt2\""},
        {"activation_function", "\"gelu_new\""},     {"layer_norm_epsilon", "1e-05"},
        {"tie_word_embeddings", untied ? "false" : "true"}, {"resid_pdrop", "0.0"},
        {"torch_dtype", f16 ? "\"float16\"" : "\"float32\""},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        snprintf(want, sizeof want, "\"%s\": %s", fields[i][0], fields[i][1]);
        ck_assert_msg(strstr(config, want), "no %s in config.json:\n%s", want, config);
    }
    const char *ints[] = {"vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner"};
    int vals[] = {c->vocab_size, c->block_size, c->n_embd, c->n_layer, c->n_head, 4 * c->n_embd};
    for (size_t i = 0; i < 6; i++) {
        snprintf(want, sizeof want, "\"%s\": %d,", ints[i], vals[i]);
        ck_assert_msg(strstr(config, want), "no %s in config.json:\n%s", want, config);
    }
    free(config);
}

START_TEST(test_safetensors_is_gpt2_layout_transposed_with_zero_biases) {
    Model x;
    model_make(&x, TOKENIZER_BPE, 8, 2, 2, 8);
    TempDir td;
    temp_dir(&td);
    const char *dir = temp_path(&td, "hf");
    char err[512] = "";
    ck_assert_msg(safetensors_export(dir, &x.m, x.tok, EXPORT_F32, err, sizeof err), "%s", err);
    char names[256];
    dir_list(dir, names, sizeof names);
    ck_assert_str_eq(names, "config.json model.safetensors");
    assert_safetensors(dir, &x, false);
    // Again, in f16, over the existing directory.
    ck_assert_msg(safetensors_export(dir, &x.m, x.tok, EXPORT_F16, err, sizeof err), "%s", err);
    dir_list(dir, names, sizeof names);
    ck_assert_str_eq(names, "config.json model.safetensors");
    assert_safetensors(dir, &x, true);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// `gpt export`. Each run is a child process with stdout and stderr in files.

typedef struct {
    int status;
    char *out, *err;
} Run;

static Run run_export(const TempDir *td, const char **args, rlim_t file_limit) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s.stdout", td->dir);
    snprintf(err_path, sizeof err_path, "%s.stderr", td->dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[16] = {"export"};
        int argc = 1;
        while (argc < 15 && args[argc - 1]) argv[argc] = (char *)args[argc - 1], argc++;
        argv[argc] = NULL;
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(99);
        if (file_limit) {  // writes past it fail with EFBIG
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit lim = {file_limit, file_limit};
            if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(98);
        }
        exit(cmd_export(argc, argv));
    }
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFEXITED(wstatus), "gpt export died of signal %d", WTERMSIG(wstatus));
    Run r = {.status = WEXITSTATUS(wstatus)};
    size_t n;
    r.out = (char *)slurp(out_path, &n);
    r.err = (char *)slurp(err_path, &n);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void assert_one_error_line(Run r, const char *reason) {
    ck_assert_msg(r.status != 0, "exit status 0; stderr: %s", r.err);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(strncmp(r.err, "error: ", 7) == 0, "stderr: '%s'", r.err);
    ck_assert_msg(strstr(r.err, reason) != NULL, "'%s' does not say '%s'", r.err, reason);
    ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
    free(r.out);
    free(r.err);
}

static void save_checkpoint(const Model *x, const char *path) {
    char err[512];
    ck_assert_msg(checkpoint_save(path, &x->m, x->tok, NULL, err, sizeof err), "%s", err);
}

START_TEST(test_export_command_writes_files_and_says_so) {
    Model x;
    model_make(&x, TOKENIZER_CHAR, 8, 1, 2, 8);
    TempDir td;
    temp_dir(&td);
    const char *ck = temp_path(&td, "ck.bin");
    save_checkpoint(&x, ck);
    const char *gguf = temp_path(&td, "m.gguf");
    const char *a1[] = {ck, "--format", "gguf", "--out", gguf, NULL};
    Run r = run_export(&td, a1, 0);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(strncmp(r.err, "wrote ", 6) == 0 && strstr(r.err, "char tokenizer as GGUF's rwkv"), "%s", r.err);
    free(r.out);
    free(r.err);
    // The file is what gguf_export writes.
    size_t n_cli, n_lib;
    unsigned char *via_cli = slurp(gguf, &n_cli);
    char err[512];
    const char *direct = temp_path(&td, "direct.gguf");
    ck_assert_msg(gguf_export(direct, &x.m, x.tok, EXPORT_F32, err, sizeof err), "%s", err);
    unsigned char *via_lib = slurp(direct, &n_lib);
    ck_assert_uint_eq(n_cli, n_lib);
    ck_assert_mem_eq(via_cli, via_lib, n_lib);
    free(via_cli);
    free(via_lib);
    unlink(direct);

    const char *a2[] = {"--format=safetensors", "--dtype", "f16", ck, "--out", temp_path(&td, "hf"), NULL};
    r = run_export(&td, a2, 0);
    ck_assert_msg(r.status == 0, "%s", r.err);
    free(r.out);
    free(r.err);
    char names[256];
    dir_list(td.dir, names, sizeof names);
    ck_assert_str_eq(names, "ck.bin hf m.gguf");
    dir_list(temp_path(&td, "hf"), names, sizeof names);
    ck_assert_str_eq(names, "config.json model.safetensors");

    const char *help[] = {"--help", NULL};
    r = run_export(&td, help, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strncmp(r.out, "usage: gpt export", 17) == 0, "%s", r.out);
    free(r.out);
    free(r.err);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

START_TEST(test_export_command_rejects_bad_input_with_one_line_and_no_file) {
    Model x;
    model_make(&x, TOKENIZER_BPE, 8, 1, 2, 8);
    TempDir td;
    temp_dir(&td);
    const char *ck = temp_path(&td, "ck.bin");
    save_checkpoint(&x, ck);
    // A damaged copy: one byte in the middle changed, so the checksum no longer holds.
    size_t n;
    unsigned char *bytes = slurp(ck, &n);
    bytes[n / 2] ^= 0x10;
    const char *bad = temp_path(&td, "bad.bin");
    char err[512];
    ck_assert(write_file_atomic(bad, bytes, n, err, sizeof err));
    free(bytes);
    // An existing output file that a failed export must leave as it is.
    const char *keep = temp_path(&td, "keep.gguf");
    ck_assert(write_file_atomic(keep, "old", 3, err, sizeof err));
    const char *regular = temp_path(&td, "regular");
    ck_assert(write_file_atomic(regular, "x", 1, err, sizeof err));
    char missing_dir[256], under_file[256], new_dir[256];
    snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir/m.gguf", td.dir);
    snprintf(under_file, sizeof under_file, "%s/regular/m.gguf", td.dir);
    snprintf(new_dir, sizeof new_dir, "%s/new/sub", td.dir);

    const char *damaged[] = {bad, "--format", "gguf", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, damaged, 0), "checksum");
    const char *format[] = {ck, "--format", "onnx", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, format, 0), "--format expects gguf or safetensors, got 'onnx'");
    const char *no_format[] = {ck, "--out", keep, NULL};
    assert_one_error_line(run_export(&td, no_format, 0), "--format is required");
    const char *no_out[] = {ck, "--format", "gguf", NULL};
    assert_one_error_line(run_export(&td, no_out, 0), "--out is required");
    const char *dtype[] = {ck, "--format", "gguf", "--dtype", "q4_0", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, dtype, 0), "--dtype expects f32, f16 or q8_0, got 'q4_0'");
    const char *st_q8[] = {ck, "--format", "safetensors", "--dtype", "q8_0", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, st_q8, 0), "q8_0 is for gguf");
    const char *missing_ck[] = {temp_path(&td, "none.bin"), "--format", "gguf", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, missing_ck, 0), "none.bin");
    const char *unwritable[] = {ck, "--format", "gguf", "--out", missing_dir, NULL};
    assert_one_error_line(run_export(&td, unwritable, 0), "No such file or directory");
    const char *not_dir[] = {ck, "--format", "gguf", "--out", under_file, NULL};
    assert_one_error_line(run_export(&td, not_dir, 0), "Not a directory");
    const char *onto_dir[] = {ck, "--format", "gguf", "--out", td.dir, NULL};
    assert_one_error_line(run_export(&td, onto_dir, 0), "Is a directory");
    const char *st_file[] = {ck, "--format", "safetensors", "--out", regular, NULL};
    assert_one_error_line(run_export(&td, st_file, 0), "is not a directory");
    const char *st_parent[] = {ck, "--format", "safetensors", "--out", new_dir, NULL};
    assert_one_error_line(run_export(&td, st_parent, 0), "cannot create directory");
    // A write that fails part way (a file size limit): no file, no temporary, no new directory.
    const char *full[] = {ck, "--format", "gguf", "--out", keep, NULL};
    assert_one_error_line(run_export(&td, full, 4096), "File too large");
    const char *st_full[] = {ck, "--format", "safetensors", "--out", temp_path(&td, "hf"), NULL};
    assert_one_error_line(run_export(&td, st_full, 4096), "File too large");

    char names[256];
    dir_list(td.dir, names, sizeof names);
    ck_assert_str_eq(names, "bad.bin ck.bin keep.gguf regular");
    bytes = slurp(keep, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_mem_eq(bytes, "old", 3);
    free(bytes);
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

START_TEST(test_gguf_refuses_bpe_tokens_with_equal_bytes) {
    // Two merges that make the same bytes ("ab" + "c" and "a" + "bc"): gpt.c's ids keep them
    // apart, a GGUF vocabulary cannot.
    Tokenizer *tok = tokenizer_alloc(TOKENIZER_BPE);
    int merges[] = {'a', 'b', 'b', 'c', 256, 'c', 'a', 257};
    tok->n_merges = 4;
    tok->vocab_size = 260;
    tok->merges = xmalloc(sizeof merges);
    memcpy(tok->merges, merges, sizeof merges);
    tokenizer_bpe_build(tok);
    GPTConfig cfg = {.vocab_size = 260, .block_size = 4, .n_layer = 1, .n_head = 1, .n_embd = 4};
    GPT m;
    gpt_init(&m, &cfg, 0, 1, GPT_INIT_WEIGHTS);
    TempDir td;
    temp_dir(&td);
    char err[512] = "";
    ck_assert(!gguf_export(temp_path(&td, "m.gguf"), &m, tok, EXPORT_F32, err, sizeof err));
    ck_assert_str_eq(err, "bpe tokens 258 and 259 have the same bytes, which a GGUF vocabulary cannot hold (llama.cpp "
                          "finds tokens by their text)");
    char names[256];
    dir_list(td.dir, names, sizeof names);
    ck_assert_str_eq(names, "");
    remove_tree(td.dir);
    gpt_free(&m);
    tokenizer_free(tok);
}
END_TEST

// An untied head is exported in both formats; ReLU² (GPT-2 has only GELU) is refused with one
// reason, and nothing is written.
START_TEST(test_untied_head_exports_and_relu2_is_refused) {
    Model x;
    model_make_features(&x, TOKENIZER_CHAR, 32, 1, 2, 8, GPT_FEAT_UNTIED_HEAD);
    TempDir td;
    temp_dir(&td);
    Gguf g;
    unsigned char *file;
    export_gguf(&x, temp_path(&td, "m.gguf"), EXPORT_Q8_0, &g, &file);
    assert_model_tensors(&g, &x, EXPORT_Q8_0);
    gguf_done(&g);
    free(file);
    const char *dir = temp_path(&td, "hf");
    char err[512] = "";
    ck_assert_msg(safetensors_export(dir, &x.m, x.tok, EXPORT_F32, err, sizeof err), "%s", err);
    assert_safetensors(dir, &x, false);
    remove_tree(td.dir);
    model_free(&x);

    model_make_features(&x, TOKENIZER_CHAR, 32, 1, 2, 8, GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD);
    temp_dir(&td);
    ck_assert(!gguf_export(temp_path(&td, "m.gguf"), &x.m, x.tok, EXPORT_F32, err, sizeof err));
    ck_assert_msg(strstr(err, "GGUF's gpt2 architecture cannot express the model's relu2 (") == err, "%s", err);
    ck_assert(!safetensors_export(temp_path(&td, "hf"), &x.m, x.tok, EXPORT_F32, err, sizeof err));
    ck_assert_msg(strstr(err, "safetensors' GPT2LMHeadModel cannot express the model's relu2 (") == err, "%s", err);
    char names[256];
    dir_list(td.dir, names, sizeof names);
    ck_assert_str_eq(names, "");
    remove_tree(td.dir);
    model_free(&x);
}
END_TEST

Suite *export_suite(void) {
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("gguf");
    tcase_add_test(tc, test_gguf_char_model_reads_back_exactly);
    tcase_add_test(tc, test_gguf_bpe_tokens_and_merges_encode_as_gpt_c);
    tcase_add_test(tc, test_gguf_f16_and_q8_0_matrices_round_to_within_their_precision);
    tcase_add_test(tc, test_gguf_refuses_bpe_tokens_with_equal_bytes);
    tcase_add_test(tc, test_half_conversion_rounds_to_nearest_even);
    suite_add_tcase(s, tc);
    tc = tcase_create("safetensors");
    tcase_add_test(tc, test_safetensors_is_gpt2_layout_transposed_with_zero_biases);
    tcase_add_test(tc, test_untied_head_exports_and_relu2_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("command");
    tcase_add_test(tc, test_export_command_writes_files_and_says_so);
    tcase_add_test(tc, test_export_command_rejects_bad_input_with_one_line_and_no_file);
    suite_add_tcase(s, tc);
    return s;
}
