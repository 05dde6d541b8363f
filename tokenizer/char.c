// char.c -- the character tokenizer.
//
// The vocabulary rule (ids end up in checkpoints, so this is a contract):
//   1. The text is read as UTF-8, strictly: a sequence counts only in its shortest form (no
//      overlong encodings such as C0 AF for '/'), never as a UTF-16 surrogate (U+D800..U+DFFF),
//      never above U+10FFFF, and only when complete (a lead byte needs all its continuation
//      bytes, each in the range its lead allows).
//   2. The code point of every valid sequence is a character. A byte that does not begin a
//      valid sequence is a fallback byte: it becomes a token of its own, and reading resumes
//      at the next byte. Fallback bytes are always >= 0x80, since ASCII is always valid.
//   3. The ids: first the distinct code points in increasing order (ids 0 .. C-1), then the
//      distinct fallback bytes in increasing order (ids C .. V-1). For valid UTF-8 text this
//      is exactly Python's sorted(set(text)); on tinyshakespeare, 65 ids with '\n' = 0.
// A token's bytes are its code point's UTF-8 form or its single fallback byte, so the bytes
// of the encoded tokens, concatenated, are exactly the encoded text.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tokenizer/internal.h"

static int utf8_encode(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

// The set of code points and fallback bytes of a text, which may come in pieces (cut where
// tokenizer_cut allows, so that no UTF-8 sequence is split).
struct CharCollector {
    unsigned char *seen;  // a bit per code point (136 KiB): the sorted order comes free
    bool ascii[128];      // the ASCII ones, kept apart: a plain store per byte is the fast path
    bool fallback[256];
};

CharCollector *tokenizer_char_collector_new(void) {
    CharCollector *c = xcalloc(1, sizeof *c);
    c->seen = xcalloc(0x110000 / 8, 1);
    return c;
}

size_t tokenizer_char_collector_add(CharCollector *c, const unsigned char *text, size_t len) {
    unsigned char *seen = c->seen;
    size_t i = 0, invalid = 0;
    while (i < len) {
        if (text[i] < 0x80) {  // the common case, without the decoder
            c->ascii[text[i]] = true;
            i++;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode(text + i, len - i, &cp);
        if (n) {
            seen[cp >> 3] |= (unsigned char)(1u << (cp & 7));
            i += (size_t)n;
        } else {
            c->fallback[text[i]] = true;
            invalid++;
            i++;
        }
    }
    return invalid;
}

Tokenizer *tokenizer_char_collector_finish(CharCollector *c) {
    for (int a = 0; a < 128; a++)
        if (c->ascii[a]) c->seen[a >> 3] |= (unsigned char)(1u << (a & 7));
    uint32_t *units = NULL;  // stb_ds array
    for (uint32_t byte = 0; byte < 0x110000 / 8; byte++) {
        if (!c->seen[byte]) continue;
        for (uint32_t bit = 0; bit < 8; bit++)
            if (c->seen[byte] >> bit & 1) arrput(units, byte << 3 | bit);
    }
    int n_codepoints = (int)arrlen(units);
    for (int b = 0x80; b < 256; b++)
        if (c->fallback[b]) arrput(units, (uint32_t)b);
    free(c->seen);
    free(c);

    Tokenizer *tok = tokenizer_alloc(TOKENIZER_CHAR);
    tok->vocab_size = (int)arrlen(units);
    tok->n_codepoints = n_codepoints;
    tok->units = xmalloc((size_t)tok->vocab_size * sizeof *tok->units);
    if (tok->vocab_size) memcpy(tok->units, units, (size_t)tok->vocab_size * sizeof *tok->units);
    arrfree(units);
    tokenizer_char_build(tok);
    return tok;
}

void tokenizer_char_collector_free(CharCollector *c) {
    if (!c) return;
    free(c->seen);
    free(c);
}

Tokenizer *tokenizer_train_char(const unsigned char *text, size_t len) {
    CharCollector *c = tokenizer_char_collector_new();
    tokenizer_char_collector_add(c, text, len);
    return tokenizer_char_collector_finish(c);
}

void tokenizer_char_build(Tokenizer *tok) {
    assert(tok->kind == TOKENIZER_CHAR && tok->n_codepoints <= tok->vocab_size);
    int v = tok->vocab_size;
    tok->offsets = xmalloc(((size_t)v + 1) * sizeof *tok->offsets);
    tok->bytes = xmalloc((size_t)v * 4 + 1);
    for (int c = 0; c < 128; c++) tok->ascii_id[c] = -1;
    for (int b = 0; b < 256; b++) tok->fallback_id[b] = -1;
    size_t off = 0;
    for (int id = 0; id < v; id++) {
        uint32_t u = tok->units[id];
        tok->offsets[id] = off;
        if (id < tok->n_codepoints) {
            off += (size_t)utf8_encode(u, tok->bytes + off);
            if (u < 128)
                tok->ascii_id[u] = id;
            else
                hmput(tok->cp_ids, u, id);
        } else {
            assert(u >= 0x80 && u <= 0xFF);
            tok->bytes[off++] = (unsigned char)u;
            tok->fallback_id[u] = id;
        }
    }
    tok->offsets[v] = off;
}

// Names a character the vocabulary lacks: its printable form where a terminal shows one,
// and always its code point, so an invisible or look-alike character is still identifiable.
static void describe_missing(const unsigned char *seq, int n, uint32_t cp, size_t offset, char *err, size_t errlen) {
    bool printable = (cp >= 0x20 && cp < 0x7F) || (cp >= 0xA0 && cp != 0xAD);
    if (printable)
        set_error(err, errlen, "character '%.*s' (U+%04X) at byte %zu is not in the vocabulary", n, (const char *)seq,
                  (unsigned)cp, offset);
    else
        set_error(err, errlen, "character U+%04X at byte %zu is not in the vocabulary", (unsigned)cp, offset);
}

bool tokenizer_char_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int *ids, size_t *n, char *err,
                           size_t errlen) {
    TokIdMap *cp_ids = tok->cp_ids;  // a local copy: stb_ds macros assign to the map pointer
    size_t k = 0, i = 0;
    while (i < len) {
        if (text[i] < 0x80) {  // the common case, without the decoder
            int id = tok->ascii_id[text[i]];
            if (id < 0) {
                describe_missing(text + i, 1, text[i], i, err, errlen);
                return false;
            }
            ids[k++] = id;
            i++;
            continue;
        }
        uint32_t cp;
        int len_cp = utf8_decode(text + i, len - i, &cp);
        int id = -1;
        if (len_cp) {
            // hmgeti_ts leaves the map untouched, so several threads may encode at once.
            ptrdiff_t slot = -1;
            if (cp_ids) {
                ptrdiff_t tmp;
                slot = hmgeti_ts(cp_ids, (uint64_t)cp, tmp);
            }
            if (slot < 0) {
                describe_missing(text + i, len_cp, cp, i, err, errlen);
                return false;
            }
            id = cp_ids[slot].value;
            i += (size_t)len_cp;
        } else {
            id = tok->fallback_id[text[i]];
            if (id < 0) {
                set_error(err, errlen, "byte 0x%02X (not valid UTF-8) at byte %zu is not in the vocabulary", text[i],
                          i);
                return false;
            }
            i++;
        }
        ids[k++] = id;
    }
    *n = k;
    return true;
}
