// tokenizer.c -- what both kinds share: lookups, decode, and the byte image and file format.
// Training and encoding live in char.c and bpe.c.
//
// The image (tokenizer_serialize), all integers u32 little-endian:
//   version (1), kind (1 char, 2 bpe), vocab_size, count, then
//   char: count = C, the number of code points; then vocab_size units: the code points of ids
//         0..C-1 (strictly increasing valid scalar values), then the fallback bytes of ids
//         C..V-1 (strictly increasing, 0x80..0xFF).
//   bpe:  count = vocab_size - 256 merges; then per merge its left and right id, each an id
//         defined before it (< 256 + the merge's index). Token bytes are derived, not stored.
// The file (tokenizer_save): the magic "GPTTOK1\n", the image, then the CRC-32C of both, u32 LE.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "tokenizer/internal.h"

#define TOKENIZER_IMAGE_VERSION 1u
#define TOKENIZER_HEADER_BYTES 16
#define TOKENIZER_FILE_MAGIC "GPTTOK1\n"
#define TOKENIZER_MAGIC_BYTES 8

Tokenizer *tokenizer_alloc(TokenizerKind kind) {
    Tokenizer *tok = xcalloc(1, sizeof *tok);
    tok->kind = kind;
    return tok;
}

void tokenizer_free(Tokenizer *tok) {
    if (!tok) return;
    free(tok->bytes);
    free(tok->offsets);
    free(tok->units);
    hmfree(tok->cp_ids);
    free(tok->merges);
    hmfree(tok->merge_ids);
    free(tok);
}

TokenizerKind tokenizer_kind(const Tokenizer *tok) { return tok->kind; }

const char *tokenizer_kind_name(TokenizerKind kind) {
    switch (kind) {
    case TOKENIZER_CHAR: return "char";
    case TOKENIZER_BPE: return "bpe";
    }
    return "unknown";
}

int tokenizer_vocab_size(const Tokenizer *tok) { return tok->vocab_size; }

bool tokenizer_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int **ids, size_t *n, char *err,
                      size_t errlen) {
    // Neither kind makes more ids than there are bytes, so one allocation up front suffices.
    if (len > SIZE_MAX / sizeof(int)) die("out of memory: cannot encode %zu bytes", len);
    int *buf = xmalloc(len * sizeof *buf);
    size_t k = 0;
    if (tok->kind == TOKENIZER_CHAR) {
        if (!tokenizer_char_encode(tok, text, len, buf, &k, err, errlen)) {
            free(buf);
            *ids = NULL;
            *n = 0;
            return false;
        }
    } else {
        tokenizer_bpe_encode(tok, text, len, buf, &k);
    }
    if (k < len) buf = xrealloc(buf, k * sizeof *buf);
    *ids = buf;
    *n = k;
    return true;
}

const unsigned char *tokenizer_token_bytes(const Tokenizer *tok, int id, size_t *len) {
    if (id < 0 || id >= tok->vocab_size) return NULL;
    *len = tok->offsets[id + 1] - tok->offsets[id];
    return tok->bytes + tok->offsets[id];
}

int tokenizer_bpe_merge_count(const Tokenizer *tok) { return tok->kind == TOKENIZER_BPE ? tok->n_merges : 0; }

bool tokenizer_bpe_merge(const Tokenizer *tok, int i, int *left, int *right) {
    if (i < 0 || i >= tokenizer_bpe_merge_count(tok)) return false;
    *left = tok->merges[2 * i];
    *right = tok->merges[2 * i + 1];
    return true;
}

bool tokenizer_decode(const Tokenizer *tok, const int *ids, size_t n, unsigned char **out, size_t *len, char *err,
                      size_t errlen) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size) {
            set_error(err, errlen, "token id %d at position %zu is out of range (this %s tokenizer has ids 0..%d)",
                      ids[i], i, tokenizer_kind_name(tok->kind), tok->vocab_size - 1);
            *out = NULL;
            *len = 0;
            return false;
        }
        total += tok->offsets[ids[i] + 1] - tok->offsets[ids[i]];
    }
    unsigned char *buf = xmalloc(total + 1);
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t off = tok->offsets[ids[i]], k = tok->offsets[ids[i] + 1] - off;
        memcpy(p, tok->bytes + off, k);
        p += k;
    }
    *p = 0;
    *out = buf;
    *len = total;
    return true;
}

// ---------------------------------------------------------------------------------------------
// The image.

unsigned char *tokenizer_serialize(const Tokenizer *tok, size_t *len) {
    bool is_char = tok->kind == TOKENIZER_CHAR;
    size_t entries = is_char ? (size_t)tok->vocab_size : 2 * (size_t)tok->n_merges;
    size_t n = TOKENIZER_HEADER_BYTES + 4 * entries;
    unsigned char *buf = xmalloc(n);
    put_u32(buf, TOKENIZER_IMAGE_VERSION);
    put_u32(buf + 4, (uint32_t)tok->kind);
    put_u32(buf + 8, (uint32_t)tok->vocab_size);
    put_u32(buf + 12, (uint32_t)(is_char ? tok->n_codepoints : tok->n_merges));
    for (size_t i = 0; i < entries; i++)
        put_u32(buf + TOKENIZER_HEADER_BYTES + 4 * i, is_char ? tok->units[i] : (uint32_t)tok->merges[i]);
    *len = n;
    return buf;
}

// Checks the payload's size against what the header promised, before anything is allocated.
static bool check_payload_size(size_t have, uint64_t entries, const char *what, char *err, size_t errlen) {
    uint64_t need = 4 * entries;
    if (have < need) {
        set_error(err, errlen, "tokenizer image is truncated: %s need %llu bytes, only %zu follow the header", what,
                  (unsigned long long)need, have);
        return false;
    }
    if (have > need) {
        set_error(err, errlen, "tokenizer image has %llu unexpected bytes after its %s",
                  (unsigned long long)(have - need), what);
        return false;
    }
    return true;
}

static Tokenizer *deserialize_char(const unsigned char *p, size_t have, uint32_t vocab, uint32_t n_cp, char *err,
                                   size_t errlen) {
    if (vocab > TOKENIZER_MAX_CHAR_VOCAB) {
        set_error(err, errlen, "char tokenizer image claims %u ids, more than the %u characters and bytes there are",
                  vocab, (unsigned)TOKENIZER_MAX_CHAR_VOCAB);
        return NULL;
    }
    if (n_cp > vocab) {
        set_error(err, errlen, "char tokenizer image claims %u code points among only %u ids", n_cp, vocab);
        return NULL;
    }
    if (!check_payload_size(have, vocab, "the code points and fallback bytes", err, errlen)) return NULL;
    for (uint32_t id = 0; id < vocab; id++) {
        uint32_t u = get_u32(p + 4 * id), prev = id ? get_u32(p + 4 * (id - 1)) : 0;
        if (id < n_cp) {
            if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF)) {
                set_error(err, errlen, "char tokenizer image: id %u has 0x%X, which is not a Unicode scalar value", id,
                          u);
                return NULL;
            }
            if (id > 0 && u <= prev) {
                set_error(err, errlen,
                          "char tokenizer image: code points not strictly increasing at id %u (U+%04X after U+%04X)",
                          id, u, prev);
                return NULL;
            }
        } else {
            if (u < 0x80 || u > 0xFF) {
                set_error(err, errlen, "char tokenizer image: fallback byte of id %u is 0x%X, expected 0x80..0xFF", id,
                          u);
                return NULL;
            }
            if (id > n_cp && u <= prev) {
                set_error(err, errlen,
                          "char tokenizer image: fallback bytes not strictly increasing at id %u (0x%02X after 0x%02X)",
                          id, u, prev);
                return NULL;
            }
        }
    }
    Tokenizer *tok = tokenizer_alloc(TOKENIZER_CHAR);
    tok->vocab_size = (int)vocab;
    tok->n_codepoints = (int)n_cp;
    tok->units = xmalloc((size_t)vocab * sizeof *tok->units + 1);
    for (uint32_t id = 0; id < vocab; id++) tok->units[id] = get_u32(p + 4 * id);
    tokenizer_char_build(tok);
    return tok;
}

static Tokenizer *deserialize_bpe(const unsigned char *p, size_t have, uint32_t vocab, uint32_t n_merges, char *err,
                                  size_t errlen) {
    if (vocab < 256 || vocab > TOKENIZER_MAX_VOCAB) {
        set_error(err, errlen, "bpe tokenizer image has vocab size %u, expected 256..%d", vocab, TOKENIZER_MAX_VOCAB);
        return NULL;
    }
    if (n_merges != vocab - 256) {
        set_error(err, errlen, "bpe tokenizer image has %u merges for vocab size %u, expected %u (vocab size - 256)",
                  n_merges, vocab, vocab - 256);
        return NULL;
    }
    if (!check_payload_size(have, 2 * (uint64_t)n_merges, "merges", err, errlen)) return NULL;
    Tokenizer *tok = tokenizer_alloc(TOKENIZER_BPE);
    tok->vocab_size = (int)vocab;
    tok->n_merges = (int)n_merges;
    tok->merges = xmalloc((2 * (size_t)n_merges + 1) * sizeof *tok->merges);
    // Token lengths are checked as the merges are read, since each merge can double a length.
    size_t *lens = xmalloc((size_t)vocab * sizeof *lens);
    for (int b = 0; b < 256; b++) lens[b] = 1;
    size_t total = 256;
    TokIdMap *seen = NULL;  // stb_ds map: the pairs merged so far
    bool ok = true;
    for (uint32_t m = 0; m < n_merges; m++) {
        uint32_t l = get_u32(p + 8 * m), r = get_u32(p + 8 * m + 4), id = 256 + m;
        if (l >= id || r >= id) {
            set_error(err, errlen, "bpe tokenizer image: merge %u (id %u) uses id %u, which is not defined before it",
                      m, id, l >= id ? l : r);
            ok = false;
            break;
        }
        uint64_t key = bpe_pair_key((int)l, (int)r);
        if (hmgeti(seen, key) >= 0) {
            set_error(err, errlen, "bpe tokenizer image: merge %u (id %u) repeats the pair (%u, %u) of id %d", m, id, l,
                      r, hmget(seen, key));
            ok = false;
            break;
        }
        hmput(seen, key, (int)id);
        lens[id] = lens[l] + lens[r];
        total += lens[id];
        if (total > TOKENIZER_MAX_TOKEN_BYTES) {
            set_error(err, errlen,
                      "bpe tokenizer image: merge %u (id %u) takes the tokens' bytes past the size limit of %zu", m, id,
                      TOKENIZER_MAX_TOKEN_BYTES);
            ok = false;
            break;
        }
        tok->merges[2 * m] = (int)l;
        tok->merges[2 * m + 1] = (int)r;
    }
    free(lens);
    hmfree(seen);
    if (!ok) {
        tokenizer_free(tok);
        return NULL;
    }
    tokenizer_bpe_build(tok);
    return tok;
}

Tokenizer *tokenizer_deserialize(const unsigned char *data, size_t len, char *err, size_t errlen) {
    if (!data || len < TOKENIZER_HEADER_BYTES) {
        set_error(err, errlen, "tokenizer image is truncated: %zu bytes, the header alone needs %d", data ? len : 0,
                  TOKENIZER_HEADER_BYTES);
        return NULL;
    }
    uint32_t version = get_u32(data), kind = get_u32(data + 4), vocab = get_u32(data + 8), count = get_u32(data + 12);
    if (version != TOKENIZER_IMAGE_VERSION) {
        set_error(err, errlen, "tokenizer image has version %u, this program reads version %u", version,
                  TOKENIZER_IMAGE_VERSION);
        return NULL;
    }
    const unsigned char *p = data + TOKENIZER_HEADER_BYTES;
    size_t have = len - TOKENIZER_HEADER_BYTES;
    if (kind == TOKENIZER_CHAR) return deserialize_char(p, have, vocab, count, err, errlen);
    if (kind == TOKENIZER_BPE) return deserialize_bpe(p, have, vocab, count, err, errlen);
    set_error(err, errlen, "tokenizer image has kind %u, expected %d (char) or %d (bpe)", kind, TOKENIZER_CHAR,
              TOKENIZER_BPE);
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// The standalone file.

bool tokenizer_save(const Tokenizer *tok, const char *path, char *err, size_t errlen) {
    size_t n;
    unsigned char *image = tokenizer_serialize(tok, &n);
    size_t total = TOKENIZER_MAGIC_BYTES + n + 4;
    unsigned char *buf = xmalloc(total);
    memcpy(buf, TOKENIZER_FILE_MAGIC, TOKENIZER_MAGIC_BYTES);
    memcpy(buf + TOKENIZER_MAGIC_BYTES, image, n);
    put_u32(buf + TOKENIZER_MAGIC_BYTES + n, crc32c(0, buf, TOKENIZER_MAGIC_BYTES + n));
    bool ok = write_file_atomic(path, buf, total, err, errlen);
    free(image);
    free(buf);
    return ok;
}

Tokenizer *tokenizer_load(const char *path, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_file(path, &len, err, errlen);
    if (!buf) return NULL;
    Tokenizer *tok = NULL;
    if (len == 0) {
        set_error(err, errlen, "'%s' is empty, expected a tokenizer file", path);
    } else if (len < TOKENIZER_MAGIC_BYTES || memcmp(buf, TOKENIZER_FILE_MAGIC, TOKENIZER_MAGIC_BYTES) != 0) {
        set_error(err, errlen, "'%s' is not a tokenizer file (it does not start with \"GPTTOK1\")", path);
    } else if (len < TOKENIZER_MAGIC_BYTES + 4) {
        set_error(err, errlen, "'%s' is truncated: %zu bytes, too short for a tokenizer file", path, len);
    } else {
        size_t body = len - 4;
        uint32_t stored = get_u32(buf + body), actual = crc32c(0, buf, body);
        if (stored != actual) {
            set_error(err, errlen, "'%s' is corrupt or truncated: checksum 0x%08X, expected 0x%08X", path, actual,
                      stored);
        } else {
            char why[256];
            tok = tokenizer_deserialize(buf + TOKENIZER_MAGIC_BYTES, body - TOKENIZER_MAGIC_BYTES, why, sizeof why);
            if (!tok) set_error(err, errlen, "'%s': %s", path, why);
        }
    }
    free(buf);
    return tok;
}
