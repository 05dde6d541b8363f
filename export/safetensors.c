// safetensors.c -- the Hugging Face GPT2LMHeadModel writer (see safetensors.h).
#include "export/safetensors.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

typedef struct {
    char *p;
    size_t n, cap;
} Text;

static void text_printf(Text *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void text_printf(Text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert(need >= 0);
    if (t->n + (size_t)need + 1 > t->cap) {
        t->cap = 2 * (t->n + (size_t)need + 1);
        t->p = xrealloc(t->p, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)need;
}

typedef struct {
    char name[80];
    int ndim;
    size_t shape[2];        // PyTorch order
    const float *part[3];   // source rows, concatenated: a (rows, cols) matrix; no parts: zeros
    size_t part_n[3];
    int n_parts;
    bool transpose;         // written as the (cols, rows) transpose of the concatenation
    size_t begin, end;      // byte offsets into the data section
} Tensor;


static Tensor *add(Tensor *t, int *n, const char *name, size_t d0, size_t d1) {
    Tensor *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = d1 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1 ? d1 : 1;
    return x;
}

static void part(Tensor *x, const float *p, size_t n) {
    x->part[x->n_parts] = p;
    x->part_n[x->n_parts++] = n;
}

static int build_tensors(const GPT *m, Tensor *t) {
    const GPTConfig *c = &m->config;
    size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, T = (size_t)c->block_size;
    int n = 0;
    char name[80], pn[32];
    part(add(t, &n, "transformer.wte.weight", V, C), export_param(m, "wte", V * C), V * C);
    part(add(t, &n, "transformer.wpe.weight", T, C), export_param(m, "wpe", T * C), T * C);
    for (int l = 0; l < c->n_layer; l++) {
#define HNAME(suffix) (snprintf(name, sizeof name, "transformer.h.%d.%s", l, suffix), name)
#define PNAME(suffix) (snprintf(pn, sizeof pn, "h.%d.%s", l, suffix), pn)
        part(add(t, &n, HNAME("ln_1.weight"), C, 0), export_param(m, PNAME("ln1_w"), C), C);
        add(t, &n, HNAME("ln_1.bias"), C, 0);
        Tensor *qkv = add(t, &n, HNAME("attn.c_attn.weight"), C, 3 * C);
        qkv->transpose = true;
        part(qkv, export_param(m, PNAME("w_q"), C * C), C * C);
        part(qkv, export_param(m, PNAME("w_k"), C * C), C * C);
        part(qkv, export_param(m, PNAME("w_v"), C * C), C * C);
        add(t, &n, HNAME("attn.c_attn.bias"), 3 * C, 0);
        Tensor *o = add(t, &n, HNAME("attn.c_proj.weight"), C, C);
        o->transpose = true;
        part(o, export_param(m, PNAME("w_o"), C * C), C * C);
        add(t, &n, HNAME("attn.c_proj.bias"), C, 0);
        part(add(t, &n, HNAME("ln_2.weight"), C, 0), export_param(m, PNAME("ln2_w"), C), C);
        add(t, &n, HNAME("ln_2.bias"), C, 0);
        Tensor *fc = add(t, &n, HNAME("mlp.c_fc.weight"), C, 4 * C);
        fc->transpose = true;
        part(fc, export_param(m, PNAME("w_fc"), 4 * C * C), 4 * C * C);
        add(t, &n, HNAME("mlp.c_fc.bias"), 4 * C, 0);
        Tensor *proj = add(t, &n, HNAME("mlp.c_proj.weight"), 4 * C, C);
        proj->transpose = true;
        part(proj, export_param(m, PNAME("w_proj"), 4 * C * C), 4 * C * C);
        add(t, &n, HNAME("mlp.c_proj.bias"), C, 0);
#undef HNAME
#undef PNAME
    }
    part(add(t, &n, "transformer.ln_f.weight", C, 0), export_param(m, "lnf_w", C), C);
    add(t, &n, "transformer.ln_f.bias", C, 0);
    return n;
}

static void write_tensor(AtomicFile *f, const Tensor *x, ExportType type) {
    size_t numel = x->shape[0] * x->shape[1];
    if (x->n_parts == 0) {
        export_write_values(f, NULL, numel, type);
    } else if (!x->transpose) {
        for (int k = 0; k < x->n_parts; k++) export_write_values(f, x->part[k], x->part_n[k], type);
    } else {
        // The source is (rows, cols) = (shape[1], shape[0]); out[i][j] = src[j][i].
        size_t rows = x->shape[1], cols = x->shape[0];
        float *src = xmalloc(numel * sizeof *src), *out = xmalloc(numel * sizeof *out);
        size_t at = 0;
        for (int k = 0; k < x->n_parts; k++) {
            memcpy(src + at, x->part[k], x->part_n[k] * sizeof *src);
            at += x->part_n[k];
        }
        assert(at == numel);
        for (size_t j = 0; j < rows; j++)
            for (size_t i = 0; i < cols; i++) out[i * rows + j] = src[j * cols + i];
        export_write_values(f, out, numel, type);
        free(src);
        free(out);
    }
}

static void header_json(Text *h, const Tensor *t, int n, ExportType type) {
    text_printf(h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        text_printf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu", t[i].name, type == EXPORT_F16 ? "F16" : "F32",
                    t[i].shape[0]);
        if (t[i].ndim == 2) text_printf(h, ",%zu", t[i].shape[1]);
        text_printf(h, "],\"data_offsets\":[%zu,%zu]}", t[i].begin, t[i].end);
    }
    text_printf(h, "}");
    while ((8 + h->n) % 8) text_printf(h, " ");  // the data section starts 8-byte aligned
}

static void config_json(Text *j, const GPT *m, const Tokenizer *tok, ExportType type) {
    const GPTConfig *c = &m->config;
    int eos = export_end_token(tok);
    char eos_text[16];
    if (eos >= 0) snprintf(eos_text, sizeof eos_text, "%d", eos);
    else snprintf(eos_text, sizeof eos_text, "null");
    text_printf(j,
                "{\n"
                "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
                "  \"model_type\": \"gpt2\",\n"
                "  \"vocab_size\": %d,\n"
                "  \"n_positions\": %d,\n"
                "  \"n_ctx\": %d,\n"
                "  \"n_embd\": %d,\n"
                "  \"n_layer\": %d,\n"
                "  \"n_head\": %d,\n"
                "  \"n_inner\": %d,\n"
                "  \"activation_function\": \"gelu_new\",\n"
                "  \"layer_norm_epsilon\": 1e-05,\n"
                "  \"resid_pdrop\": 0.0,\n"
                "  \"embd_pdrop\": 0.0,\n"
                "  \"attn_pdrop\": 0.0,\n"
                "  \"scale_attn_weights\": true,\n"
                "  \"scale_attn_by_inverse_layer_idx\": false,\n"
                "  \"reorder_and_upcast_attn\": false,\n"
                "  \"tie_word_embeddings\": true,\n"
                "  \"bos_token_id\": %d,\n"
                "  \"eos_token_id\": %s,\n"
                "  \"torch_dtype\": \"%s\",\n"
                "  \"gpt_c_tokenizer\": \"%s\"\n"
                "}\n",
                c->vocab_size, c->block_size, c->block_size, c->n_embd, c->n_layer, c->n_head, 4 * c->n_embd,
                export_start_token(tok), eos_text, type == EXPORT_F16 ? "float16" : "float32",
                tokenizer_kind_name(tokenizer_kind(tok)));
}

// Gives up a temporary file that will not be committed.
static void discard(AtomicFile *f) {
    close(f->fd);
    unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

static char *join(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

bool safetensors_export(const char *dir, const GPT *m, const Tokenizer *tok, ExportType type, char *err,
                        size_t errlen) {
    assert(type == EXPORT_F32 || type == EXPORT_F16);
    if (!export_check_features(m, "GPT2LMHeadModel", err, errlen)) return false;
    if (tokenizer_vocab_size(tok) != m->config.vocab_size) {
        set_error(err, errlen, "the tokenizer has %d tokens but the model's vocabulary is %d",
                  tokenizer_vocab_size(tok), m->config.vocab_size);
        return false;
    }
    // One level, like mkdir: a directory this call made is removed again if anything fails.
    struct stat st;
    bool made_dir = false;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            set_error(err, errlen, "'%s' exists and is not a directory (safetensors --out names a directory)", dir);
            return false;
        }
    } else if (mkdir(dir, 0755) == 0) {
        made_dir = true;
    } else {
        set_error(err, errlen, "cannot create directory '%s': %s", dir, strerror(errno));
        return false;
    }

    Tensor *t = xmalloc((4 + 12 * (size_t)m->config.n_layer) * sizeof *t);
    int n = build_tensors(m, t);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        t[i].begin = at;
        at += export_type_bytes(type, t[i].shape[0] * t[i].shape[1]);
        t[i].end = at;
    }
    Text header = {0}, config = {0};
    header_json(&header, t, n, type);
    config_json(&config, m, tok, type);

    char *model_path = join(dir, "model.safetensors"), *config_path = join(dir, "config.json");
    AtomicFile fm, fc;
    bool ok = false;
    if (atomic_open(&fm, model_path, err, errlen)) {
        if (atomic_open(&fc, config_path, err, errlen)) {
            unsigned char len8[8];
            for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)header.n >> 8 * k);
            atomic_write(&fm, len8, 8);
            atomic_write(&fm, header.p, header.n);
            for (int i = 0; i < n; i++) write_tensor(&fm, &t[i], type);
            atomic_write(&fc, config.p, config.n);
            if (atomic_commit(&fm, model_path, err, errlen)) {
                ok = atomic_commit(&fc, config_path, err, errlen);
                if (!ok) unlink(model_path);  // a model without its config is no use to anyone
            } else {
                discard(&fc);
            }
        } else {
            discard(&fm);
        }
    }
    if (!ok && made_dir) rmdir(dir);
    free(model_path);
    free(config_path);
    free(header.p);
    free(config.p);
    free(t);
    return ok;
}
