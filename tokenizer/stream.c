// stream.c -- texts in pieces: where a text may be cut, tokenizers trained from pieces, and
// what a char vocabulary lacks (see "Texts in pieces" in tokenizer.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tokenizer/internal.h"

// Whether a cut before t[p] splits no UTF-8 sequence that strict decoding could take whole.
// Only a continuation byte (10xxxxxx) can continue a sequence, and only a lead byte at most
// three bytes back, followed by continuation bytes up to p, can reach it. Leads that could
// never be valid (C0, C1, F5..FF) are treated as leads too: refusing a cut costs nothing.
static bool char_cut_ok(const unsigned char *t, size_t p) {
    if ((t[p] & 0xC0) != 0x80) return true;
    for (size_t k = 1; k <= 3 && k <= p; k++) {
        unsigned b = t[p - k];
        if ((b & 0xC0) == 0x80) continue;
        if (b < 0x80) return true;  // ASCII ends any sequence
        size_t longest = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        return longest <= k;
    }
    // Three continuation bytes before p (a lead further back ends by p - 1), or the start of
    // the piece, which is a cut itself.
    return true;
}

size_t tokenizer_cut(TokenizerKind kind, const unsigned char *text, size_t len) {
    // A bpe boundary is also a char cut: a byte >= 0x80 is a letter to the pre-split, so a
    // boundary before one follows an ASCII byte, which no UTF-8 sequence spans.
    for (size_t p = len; p-- > 1;)
        if (kind == TOKENIZER_BPE ? tokenizer_bpe_boundary(text, p) : char_cut_ok(text, p)) return p;
    return 0;
}

struct TokenizerTrainer {
    TokenizerKind kind;
    CharCollector *chars;
    BpeCollector *bpe;
    double t0;
};

TokenizerTrainer *tokenizer_trainer_new(TokenizerKind kind) {
    TokenizerTrainer *tr = xcalloc(1, sizeof *tr);
    tr->kind = kind;
    tr->t0 = now_seconds();
    if (kind == TOKENIZER_BPE) tr->bpe = tokenizer_bpe_collector_new();
    else tr->chars = tokenizer_char_collector_new();
    return tr;
}

size_t tokenizer_trainer_add(TokenizerTrainer *tr, const unsigned char *piece, size_t len) {
    if (!tr->bpe) return tokenizer_char_collector_add(tr->chars, piece, len);
    tokenizer_bpe_collector_add(tr->bpe, piece, len);
    return tokenizer_count_invalid_utf8(piece, len);
}

Tokenizer *tokenizer_trainer_finish(TokenizerTrainer *tr, int bpe_vocab_size, bool progress) {
    Tokenizer *tok = tr->bpe ? tokenizer_bpe_collector_finish(tr->bpe, bpe_vocab_size, progress, tr->t0)
                             : tokenizer_char_collector_finish(tr->chars);
    free(tr);
    return tok;
}

void tokenizer_trainer_free(TokenizerTrainer *tr) {
    if (!tr) return;
    tokenizer_bpe_collector_free(tr->bpe);
    tokenizer_char_collector_free(tr->chars);
    free(tr);
}

bool tokenizer_has_unit(const Tokenizer *tok, uint32_t unit, bool is_byte) {
    if (tok->kind != TOKENIZER_CHAR) return true;
    if (is_byte) return unit < 256 && tok->fallback_id[unit] >= 0;
    if (unit < 128) return tok->ascii_id[unit] >= 0;
    TokIdMap *cp_ids = tok->cp_ids;
    if (!cp_ids) return false;
    ptrdiff_t tmp;
    return hmgeti_ts(cp_ids, (uint64_t)unit, tmp) >= 0;
}

size_t tokenizer_find_unknown(const Tokenizer *tok, const unsigned char *text, size_t len, TokenizerUnknownFn fn,
                              void *ctx) {
    if (tok->kind != TOKENIZER_CHAR) return 0;
    unsigned char lacks[128];  // the ASCII characters the vocabulary lacks
    for (int c = 0; c < 128; c++) lacks[c] = tok->ascii_id[c] < 0;
    size_t count = 0, i = 0;
    while (i < len) {
        if (i + 8 <= len) {  // eight known ASCII characters at once, the common case
            uint64_t w;
            memcpy(&w, text + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                const unsigned char *b = text + i;
                if (!(lacks[b[0]] | lacks[b[1]] | lacks[b[2]] | lacks[b[3]] | lacks[b[4]] | lacks[b[5]] | lacks[b[6]] |
                      lacks[b[7]])) {
                    i += 8;
                    continue;
                }
            }
        }
        TokenizerUnknown u = {.offset = i};
        size_t n = 1;
        if (text[i] < 0x80) {
            if (tok->ascii_id[text[i]] >= 0) {
                i++;
                continue;
            }
            u.unit = text[i];
        } else {
            uint32_t cp;
            int k = utf8_decode(text + i, len - i, &cp);
            if (k) {
                u.unit = cp;
                n = (size_t)k;
            } else {
                u.unit = text[i];
                u.is_byte = true;
            }
            if (tokenizer_has_unit(tok, u.unit, u.is_byte)) {
                i += n;
                continue;
            }
        }
        count++;
        if (fn) fn(ctx, &u);
        i += n;
    }
    return count;
}

struct TokenizerEncoder {
    const Tokenizer *tok;
    BpeEncoder *bpe;
};

TokenizerEncoder *tokenizer_encoder_new(const Tokenizer *tok) {
    TokenizerEncoder *e = xcalloc(1, sizeof *e);
    e->tok = tok;
    if (tok->kind == TOKENIZER_BPE) e->bpe = tokenizer_bpe_encoder_new();
    return e;
}

bool tokenizer_encoder_run(TokenizerEncoder *e, const unsigned char *text, size_t len, int *ids, size_t *n, char *err,
                           size_t errlen) {
    if (!e->bpe) return tokenizer_char_encode(e->tok, text, len, ids, n, err, errlen);
    tokenizer_bpe_encode_with(e->tok, e->bpe, text, len, ids, n);
    return true;
}

void tokenizer_encoder_free(TokenizerEncoder *e) {
    if (!e) return;
    tokenizer_bpe_encoder_free(e->bpe);
    free(e);
}

size_t tokenizer_count_invalid_utf8(const unsigned char *text, size_t len) {
    size_t bad = 0, i = 0;
    while (i < len) {
        if (i + 8 <= len) {  // eight ASCII bytes at once
            uint64_t w;
            memcpy(&w, text + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (text[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = utf8_decode(text + i, len - i, &cp);
        if (k) {
            i += (size_t)k;
        } else {
            bad++;
            i++;
        }
    }
    return bad;
}

void tokenizer_describe_unit(uint32_t unit, bool is_byte, char *buf, size_t n) {
    if (is_byte) {
        snprintf(buf, n, "byte 0x%02X (not UTF-8)", (unsigned)unit);
        return;
    }
    // Printable where a terminal shows it; the code point always, so that an invisible or
    // look-alike character is still identifiable.
    bool printable = (unit >= 0x20 && unit < 0x7F) || (unit >= 0xA0 && unit != 0xAD && unit <= 0x10FFFF);
    if (!printable) {
        snprintf(buf, n, "U+%04X", (unsigned)unit);
        return;
    }
    char utf8[5] = {0};
    if (unit < 0x80) {
        utf8[0] = (char)unit;
    } else if (unit < 0x800) {
        utf8[0] = (char)(0xC0 | unit >> 6), utf8[1] = (char)(0x80 | (unit & 0x3F));
    } else if (unit < 0x10000) {
        utf8[0] = (char)(0xE0 | unit >> 12), utf8[1] = (char)(0x80 | (unit >> 6 & 0x3F));
        utf8[2] = (char)(0x80 | (unit & 0x3F));
    } else {
        utf8[0] = (char)(0xF0 | unit >> 18), utf8[1] = (char)(0x80 | (unit >> 12 & 0x3F));
        utf8[2] = (char)(0x80 | (unit >> 6 & 0x3F)), utf8[3] = (char)(0x80 | (unit & 0x3F));
    }
    snprintf(buf, n, "'%s' (U+%04X)", utf8, (unsigned)unit);
}
