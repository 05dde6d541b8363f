// prepare.c -- a text file to the ids a run trains on (see prepare.h).
#include "data/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

#define MAX_NAMED 5  // unknown characters named in the message

static uint64_t count_newlines(const unsigned char *p, size_t len) {
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) n += p[i] == '\n';
    return n;
}

// The line (from 1) of each of n byte offsets of the text, in increasing order. Only messages
// need lines, so they are counted afresh when one is written, not along every pass.
static void lines_at(const TextFile *t, const uint64_t *offsets, uint64_t *lines, int n) {
    unsigned char buf[1 << 16];
    uint64_t at = 0, line = 1;
    for (int k = 0; k < n; k++) {
        while (at < offsets[k]) {
            size_t want = offsets[k] - at < sizeof buf ? (size_t)(offsets[k] - at) : sizeof buf;
            ssize_t r = pread(t->fd, buf, want, (off_t)at);
            if (r <= 0) break;  // the file changed under us: a wrong line number is the least of it
            line += count_newlines(buf, (size_t)r);
            at += (uint64_t)r;
        }
        lines[k] = line;
    }
}

// ---- the scan -----------------------------------------------------------------------------
typedef struct {
    uint32_t unit;
    bool is_byte;
    uint64_t offset;
} Named;

typedef struct {
    const DataScanSpec *spec;
    DataText *dt;
    TokenizerTrainer *trainer;
    uint64_t invalid;      // bytes that are not valid UTF-8, so far
    bool utf16_bom;
    // what a given char vocabulary lacks
    uint64_t piece_off;
    uint64_t unknown;      // occurrences
    uint64_t *set;         // distinct units seen unknown: open addressing, key + 1 (0: empty)
    size_t set_cap, set_n;
    Named named[MAX_NAMED];
    int n_named;
} Scan;

// Adds key (> 0) to the set; true when it was not there.
static bool set_add(Scan *s, uint64_t key) {
    if (2 * (s->set_n + 1) > s->set_cap) {
        size_t cap = s->set_cap ? 2 * s->set_cap : 64;
        uint64_t *t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < s->set_cap; i++) {
            if (!s->set[i]) continue;
            size_t j = (size_t)(s->set[i] * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = s->set[i];
        }
        free(s->set);
        s->set = t;
        s->set_cap = cap;
    }
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & (s->set_cap - 1);
    while (s->set[j]) {
        if (s->set[j] == key) return false;
        j = (j + 1) & (s->set_cap - 1);
    }
    s->set[j] = key;
    s->set_n++;
    return true;
}

static void on_unknown(void *ctx, const TokenizerUnknown *u) {
    Scan *s = ctx;
    s->unknown++;
    uint64_t key = ((uint64_t)u->is_byte << 32 | u->unit) + 1;
    if (set_add(s, key) && s->n_named < MAX_NAMED)
        s->named[s->n_named++] = (Named){.unit = u->unit, .is_byte = u->is_byte, .offset = s->piece_off + u->offset};
}

static bool binary(const Scan *s, char *err, size_t errlen, const char *why) {
    set_error(err, errlen, "'%s' looks binary, not like text: %s%s", s->dt->text.path, why,
              s->utf16_bom ? " (it starts with a UTF-16 byte-order mark: convert it with iconv -f UTF-16 -t UTF-8)"
                           : "; gpt trains on UTF-8 text");
    return false;
}

static bool scan_piece(void *ctx, const unsigned char *p, size_t len, uint64_t off, char *err, size_t errlen) {
    Scan *s = ctx;
    if (off == 0 && len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF))) s->utf16_bom = true;
    const unsigned char *nul = memchr(p, 0, len);
    if (nul) {
        uint64_t at = off + (uint64_t)(nul - p), line;
        lines_at(&s->dt->text, &at, &line, 1);
        char why[128];
        snprintf(why, sizeof why, "it holds a NUL byte (0x00) at byte %llu (line %llu)", (unsigned long long)at,
                 (unsigned long long)line);
        return binary(s, err, errlen, why);
    }
    if (s->trainer) {
        s->invalid += tokenizer_trainer_add(s->trainer, p, len);
    } else {
        s->invalid += tokenizer_count_invalid_utf8(p, len);
        if (s->spec->tok) {
            s->piece_off = off;
            tokenizer_find_unknown(s->spec->tok, p, len, on_unknown, s);
        }
    }
    // Decided as soon as the bytes seen so far exceed the limit for the whole file.
    if (s->invalid * 100 > (uint64_t)DATA_MAX_INVALID_PERCENT * s->dt->text.bytes) {
        char why[192];
        snprintf(why, sizeof why, "more than %d%% of its %llu bytes are not valid UTF-8 (%llu in the first %llu)",
                 DATA_MAX_INVALID_PERCENT, (unsigned long long)s->dt->text.bytes, (unsigned long long)s->invalid,
                 (unsigned long long)(off + len));
        return binary(s, err, errlen, why);
    }
    return true;
}

static void unknown_message(const Scan *s, char *err, size_t errlen) {
    const Tokenizer *tok = s->spec->tok;
    uint64_t offsets[MAX_NAMED], lines[MAX_NAMED];
    for (int i = 0; i < s->n_named; i++) offsets[i] = s->named[i].offset;
    lines_at(&s->dt->text, offsets, lines, s->n_named);
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < s->n_named && used < sizeof list; i++) {
        char what[64];
        tokenizer_describe_unit(s->named[i].unit, s->named[i].is_byte, what, sizeof what);
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s at byte %llu (line %llu)", i ? ", " : "", what,
                                 (unsigned long long)offsets[i], (unsigned long long)lines[i]);
    }
    set_error(err, errlen,
              "'%s' holds %llu character%s that the char vocabulary of %s (%d tokens) cannot encode, %zu distinct; "
              "%s%s%s (that vocabulary is fixed: remove or replace these characters in the text)",
              s->dt->text.path, (unsigned long long)s->unknown, s->unknown == 1 ? "" : "s",
              s->spec->tok_source ? s->spec->tok_source : "the tokenizer", tokenizer_vocab_size(tok), s->set_n,
              s->set_n > (size_t)s->n_named ? "the first: " : "", list, s->set_n > (size_t)s->n_named ? ", ..." : "");
}

bool data_scan(DataText *dt, const char *path, const DataScanSpec *spec, char *err, size_t errlen) {
    memset(dt, 0, sizeof *dt);
    double t0 = now_seconds();
    if (!text_open(&dt->text, path, err, errlen)) return false;
    if (spec->check_text && dt->text.bytes != spec->text_bytes) {
        set_error(err, errlen,
                  "'%s' has changed since the checkpoint was written (%llu bytes now, %llu then); resuming needs the "
                  "same text",
                  path, (unsigned long long)dt->text.bytes, (unsigned long long)spec->text_bytes);
        data_text_close(dt);
        return false;
    }
    Scan s = {.spec = spec, .dt = dt};
    if (!spec->tok) s.trainer = tokenizer_trainer_new(spec->train_kind);
    TokenizerKind cut = spec->tok ? tokenizer_kind(spec->tok) : spec->train_kind;
    TextPassOptions o = {.cut = cut, .block = spec->block, .label = spec->progress ? "reading" : NULL};
    bool ok = text_pass(&dt->text, &o, scan_piece, &s, &dt->crc, err, errlen);
    if (ok && spec->check_text && dt->crc != spec->text_crc) {
        set_error(err, errlen,
                  "'%s' has changed since the checkpoint was written (the same %llu bytes, but CRC-32C %08x now, "
                  "%08x then); resuming needs the same text",
                  path, (unsigned long long)dt->text.bytes, dt->crc, spec->text_crc);
        ok = false;
    }
    if (ok && s.unknown) {
        unknown_message(&s, err, errlen);
        ok = false;
    }
    free(s.set);
    if (!ok) {
        tokenizer_trainer_free(s.trainer);
        data_text_close(dt);
        return false;
    }
    if (s.trainer) {
        // Announced once the text has passed its checks: a bad one gets its error line alone.
        if (spec->progress && spec->train_kind == TOKENIZER_BPE)
            fprintf(stderr, "training a BPE tokenizer of %d tokens on %s\n", spec->bpe_vocab_size, path);
        dt->trained = tokenizer_trainer_finish(s.trainer, spec->bpe_vocab_size, spec->progress);
        dt->tok = dt->trained;
    } else {
        dt->tok = spec->tok;
    }
    dt->seconds = now_seconds() - t0;
    return true;
}

void data_text_close(DataText *dt) {
    text_close(&dt->text);
    tokenizer_free(dt->trained);
    memset(dt, 0, sizeof *dt);
}

// ---- encoding -----------------------------------------------------------------------------
#define MAX_PARTS 16
// Text read at a time while encoding: each byte of it may need 4 bytes of ids and 2 more of
// their narrowed copy, so about 7 x 8 MiB of buffers.
#define ENCODE_BLOCK ((size_t)8 << 20)

typedef struct {
    const Tokenizer *tok;
    const char *path;       // the text's, for messages
    TokensWriter *w;        // the ids go to a token file...
    unsigned char *mem;     // ...or into memory, id_bytes each
    size_t mem_cap;
    int id_bytes;
    uint64_t n;
    int parts;              // a piece is encoded in this many parts, in parallel
    int *ids[MAX_PARTS];    // each part's ids, reused from piece to piece
    size_t cap[MAX_PARTS];
    TokenizerEncoder *enc[MAX_PARTS];  // each part's encoder, likewise (a bpe one caches chunks)
} Enc;

static bool encode_piece(void *ctx, const unsigned char *p, size_t len, uint64_t off, char *err, size_t errlen) {
    (void)off;
    Enc *e = ctx;
    // Parts cut where tokenizer_cut allows encode independently to the ids of the whole piece.
    size_t start[MAX_PARTS + 1];
    int k = 0;
    start[0] = 0;
    size_t target = len / (size_t)e->parts + 1;
    while (k + 1 < e->parts && start[k] + target < len) {
        size_t c = tokenizer_cut(tokenizer_kind(e->tok), p + start[k], target);
        if (c == 0) break;
        start[k + 1] = start[k] + c;
        k++;
    }
    start[++k] = len;
    size_t n[MAX_PARTS];
    bool ok[MAX_PARTS];
    for (int i = 0; i < k; i++) {
        size_t need = start[i + 1] - start[i];
        if (need > e->cap[i]) {
            e->cap[i] = need;
            free(e->ids[i]);
            e->ids[i] = xmalloc(need * sizeof(int));
        }
    }
    for (int i = 0; i < k; i++)
        if (!e->enc[i]) e->enc[i] = tokenizer_encoder_new(e->tok);
    int **ids = e->ids;
    TokenizerEncoder **enc = e->enc;
#pragma omp parallel for schedule(dynamic, 1) if (k > 1)
    for (int i = 0; i < k; i++)
        ok[i] = tokenizer_encoder_run(enc[i], p + start[i], start[i + 1] - start[i], ids[i], &n[i], NULL, 0);
    bool all = true;
    for (int i = 0; i < k; i++) {
        if (!ok[i]) {
            all = false;
            continue;
        }
        if (all && e->w) {
            tokens_writer_add(e->w, ids[i], n[i]);
        } else if (all) {
            size_t need = (size_t)(e->n + n[i]) * (size_t)e->id_bytes;
            if (need > e->mem_cap) {
                e->mem_cap = need > 2 * e->mem_cap ? need : 2 * e->mem_cap;
                e->mem = xrealloc(e->mem, e->mem_cap);
            }
            if (e->id_bytes == 2)
                for (size_t j = 0; j < n[i]; j++) ((uint16_t *)e->mem)[e->n + j] = (uint16_t)ids[i][j];
            else
                for (size_t j = 0; j < n[i]; j++) ((uint32_t *)e->mem)[e->n + j] = (uint32_t)ids[i][j];
        }
        e->n += n[i];
    }
    // The scan found every character in the vocabulary: one missing now is a changed file.
    if (!all)
        set_error(err, errlen,
                  "'%s' changed while it was being read (it now holds characters it did not): train on a file that "
                  "nothing is writing to",
                  e->path);
    return all;
}

static bool changed_since_scan(const DataText *dt, char *err, size_t errlen) {
    set_error(err, errlen, "'%s' changed while it was being read (its bytes differ between two readings): train on "
              "a file that nothing is writing to", dt->text.path);
    return false;
}

bool data_tokens(DataText *dt, const DataTokensSpec *spec, Dataset *d, DataIdsSource *src, double *seconds,
                 char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    double t0 = now_seconds();
    const char *name = dt->text.path;
    TokensKey key;
    tokens_key(&key, dt->tok, dt->text.bytes, dt->crc);
    if (spec->cache_path && spec->write) {
        // The caller holds the directory: a temporary file in it is a killed writer's.
        const char *slash = strrchr(spec->cache_path, '/');
        char *dir = xstrdup(slash ? spec->cache_path : ".");
        if (slash) dir[slash == spec->cache_path ? 1 : slash - spec->cache_path] = 0;
        tokens_remove_leftovers(dir);
        free(dir);
    }
    if (spec->cache_path) {
        TokensMap m;
        char why[512];
        TokensStatus st = tokens_open(&m, spec->cache_path, &key, true, spec->progress ? "checking" : NULL, why,
                                      sizeof why);
        if (st == TOKENS_OK) {
            *src = DATA_IDS_CACHED;
            *seconds = now_seconds() - t0;
            return dataset_from_map(d, &m, spec->block_size, name, err, errlen);
        }
        if (st == TOKENS_BAD) warn("%s; %s", why, spec->write ? "encoding the text again" : "encoding into memory");
    }
    Enc e = {.tok = dt->tok, .path = name, .id_bytes = (int)key.id_bytes, .parts = 2 * threads_get()};
    if (e.parts > MAX_PARTS) e.parts = MAX_PARTS;
    TokensWriter w;
    bool to_file = spec->cache_path && spec->write;
    if (to_file) {
        if (!tokens_writer_open(&w, spec->cache_path, &key, err, errlen)) return false;
        e.w = &w;
    }
    TextPassOptions o = {.cut = tokenizer_kind(dt->tok), .block = spec->block ? spec->block : ENCODE_BLOCK,
                         .label = spec->progress ? "tokenizing" : NULL};
    uint32_t crc;
    bool ok = text_pass(&dt->text, &o, encode_piece, &e, &crc, err, errlen);
    for (int i = 0; i < MAX_PARTS; i++) free(e.ids[i]), tokenizer_encoder_free(e.enc[i]);
    if (ok && crc != dt->crc) {
        ok = changed_since_scan(dt, err, errlen);
    }
    size_t n_train;
    if (ok) ok = dataset_split((size_t)e.n, spec->block_size, &n_train, name, err, errlen);
    if (!to_file) {
        if (ok) {
            d->owned = e.mem;
            d->ids = e.mem;
            d->id_bytes = e.id_bytes;
            d->n_tokens = (size_t)e.n;
            d->n_train = n_train;
            d->text_crc = dt->crc;
            d->text_bytes = dt->text.bytes;
            *src = DATA_IDS_IN_MEMORY;
        } else {
            free(e.mem);
        }
        *seconds = now_seconds() - t0;
        return ok;
    }
    if (!ok) {
        tokens_writer_abort(&w);
        return false;
    }
    if (!tokens_writer_commit(&w, spec->cache_path, err, errlen)) return false;
    TokensMap m;
    TokensStatus st = tokens_open(&m, spec->cache_path, &key, false, NULL, err, errlen);
    if (st != TOKENS_OK) {
        if (st != TOKENS_BAD) set_error(err, errlen, "'%s' was not written as expected", spec->cache_path);
        return false;
    }
    *src = DATA_IDS_WRITTEN;
    *seconds = now_seconds() - t0;
    return dataset_from_map(d, &m, spec->block_size, name, err, errlen);
}
