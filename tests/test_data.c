// test_data.c -- the data path: texts in pieces (cuts, trainers and encoders that give what the
// whole text gives), the checks on a text (non-regular files, binary files, files that change
// while read, characters a vocabulary lacks, a resumed run's text), the token file (written,
// reused, refused when stale or damaged, 16- and 32-bit ids), batches read from the map, and
// the run directory's lock.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/text.h"
#include "data/tokens.h"
#include "tests/run_util.h"
#include "tests/tests.h"
#include "tokenizer/tokenizer.h"
#include "train/lock.h"

#define SHAKESPEARE "data/tinyshakespeare.txt"

// ---- helpers --------------------------------------------------------------------------------
static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static unsigned char *shakespeare(size_t *len) {
    char err[256];
    unsigned char *text = read_file(SHAKESPEARE, len, err, sizeof err);
    ck_assert_msg(text != NULL, "%s (tests run from the repository root)", err);
    return text;
}

// A text made to meet every rule of both pre-splits: words, digits, runs of spaces and other
// whitespace, contractions, apostrophes at the edges, multi-byte characters, invalid and
// truncated UTF-8, lone continuation bytes and NULs.
static unsigned char *hostile_text(size_t target, uint64_t seed, size_t *len) {
    static const char *bits[] = {
        "the", " quick", "brown", " fox", "'s", "'re", "'ll", "'ve", "'d", "'", "''", " '", "don't", "  ",  " ",
        "   ", "\n", "\n\n", "\t", " \n ", "\r\n", "42", " 1999", "!!", "?", ".", ", ", "--", "\xc3\xa9", "caf\xc3\xa9",
        "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xe2\x82", "\x80", "\x80\x80\x80\x80", "\xc0\xaf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3\xa9\xc3\xa9", "\xe4\xb8\xad\xe6\x96\x87", "a\xcc\x81", "x",
    };
    size_t nbits = sizeof bits / sizeof bits[0];
    unsigned char *t = xmalloc(target + 16);
    Rng r;
    rng_seed(&r, seed);
    size_t n = 0;
    while (n < target) {
        if (rng_below(&r, 50) == 0) {
            t[n++] = 0;  // NUL: its own class for the bpe pre-split
            continue;
        }
        const char *b = bits[rng_below(&r, nbits)];
        size_t k = strlen(b);
        if (n + k > target + 15) break;
        memcpy(t + n, b, k);
        n += k;
    }
    *len = n;
    return t;
}

static int *encode_all(const Tokenizer *tok, const unsigned char *s, size_t n, size_t *k) {
    int *ids;
    char err[256] = "";
    ck_assert_msg(tokenizer_encode(tok, s, n, &ids, k, err, sizeof err), "encode failed: %s", err);
    return ids;
}

static Tokenizer *train_kind(TokenizerKind kind, const unsigned char *s, size_t n) {
    return kind == TOKENIZER_CHAR ? tokenizer_train_char(s, n) : tokenizer_train_bpe(s, n, 300, false);
}

// ---- texts in pieces ----------------------------------------------------------------------
// Wherever tokenizer_cut says a text may be cut, the two sides encode to the ids of the whole.
static void check_cuts(TokenizerKind kind, const unsigned char *text, size_t n, uint64_t seed) {
    Tokenizer *tok = train_kind(kind, text, n);
    size_t k;
    int *whole = encode_all(tok, text, n, &k);
    Rng r;
    rng_seed(&r, seed);
    int found = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t L = 1 + (size_t)rng_below(&r, n);
        size_t p = tokenizer_cut(kind, text, L);
        if (!p) continue;
        found++;
        ck_assert_uint_lt(p, L);
        size_t ka, kb;
        int *a = encode_all(tok, text, p, &ka), *b = encode_all(tok, text + p, n - p, &kb);
        ck_assert_msg(ka + kb == k && memcmp(a, whole, ka * sizeof(int)) == 0 &&
                          memcmp(b, whole + ka, kb * sizeof(int)) == 0,
                      "%s: cutting at %zu (asked for < %zu) changes the ids", tokenizer_kind_name(kind), p, L);
        free(a), free(b);
    }
    ck_assert_int_gt(found, 200);  // the rule is not so cautious that it never cuts
    free(whole);
    tokenizer_free(tok);
}

START_TEST(test_a_cut_never_changes_the_ids) {
    size_t n;
    unsigned char *t = hostile_text(20000, 1, &n);
    check_cuts(TOKENIZER_CHAR, t, n, 2);
    check_cuts(TOKENIZER_BPE, t, n, 3);
    free(t);
    unsigned char *s = shakespeare(&n);
    check_cuts(TOKENIZER_CHAR, s, 200000, 4);
    check_cuts(TOKENIZER_BPE, s, 200000, 5);
    free(s);
}
END_TEST

// Random pieces, each cut where tokenizer_cut allows: the pieces' starts.
static size_t cut_pieces(TokenizerKind kind, const unsigned char *t, size_t n, uint64_t seed, size_t *starts,
                         size_t max) {
    Rng r;
    rng_seed(&r, seed);
    size_t k = 0, at = 0;
    while (at < n && k + 1 < max) {
        starts[k++] = at;
        size_t want = 1 + (size_t)rng_below(&r, 200), p = 0;
        while (at + want < n && !(p = tokenizer_cut(kind, t + at, want))) want *= 2;
        at = at + want >= n ? n : at + p;
    }
    starts[k] = n;
    return k;
}

START_TEST(test_training_and_encoding_in_pieces_equal_the_whole) {
    size_t n;
    unsigned char *t = hostile_text(30000, 7, &n);
    size_t *starts = xmalloc(40000 * sizeof *starts);
    for (int kind = TOKENIZER_CHAR; kind <= TOKENIZER_BPE; kind++) {
        size_t k = cut_pieces((TokenizerKind)kind, t, n, 8 + (uint64_t)kind, starts, 40000);
        ck_assert_uint_gt(k, 50);
        TokenizerTrainer *tr = tokenizer_trainer_new((TokenizerKind)kind);
        size_t invalid = 0;
        for (size_t i = 0; i < k; i++) invalid += tokenizer_trainer_add(tr, t + starts[i], starts[i + 1] - starts[i]);
        ck_assert_uint_eq(invalid, tokenizer_count_invalid_utf8(t, n));
        Tokenizer *pieces = tokenizer_trainer_finish(tr, 300, false), *whole = train_kind((TokenizerKind)kind, t, n);
        size_t la, lb;
        unsigned char *ia = tokenizer_serialize(pieces, &la), *ib = tokenizer_serialize(whole, &lb);
        ck_assert_msg(la == lb && memcmp(ia, ib, la) == 0, "%s: trained in pieces, another tokenizer",
                      tokenizer_kind_name((TokenizerKind)kind));
        free(ia), free(ib);
        // One encoder through all the pieces (its bpe cache carried along) gives the whole's ids.
        size_t nw;
        int *ids = encode_all(whole, t, n, &nw);
        int *got = xmalloc((n + 1) * sizeof *got);
        size_t ng = 0;
        TokenizerEncoder *enc = tokenizer_encoder_new(whole);
        for (size_t i = 0; i < k; i++) {
            size_t m;
            char err[256];
            ck_assert(tokenizer_encoder_run(enc, t + starts[i], starts[i + 1] - starts[i], got + ng, &m, err, sizeof err));
            ng += m;
        }
        tokenizer_encoder_free(enc);
        ck_assert_uint_eq(ng, nw);
        ck_assert_int_eq(memcmp(got, ids, nw * sizeof(int)), 0);
        free(ids), free(got);
        tokenizer_free(pieces), tokenizer_free(whole);
    }
    free(starts);
    free(t);
}
END_TEST

// The count of invalid bytes is the char tokenizer's count of fallback tokens.
START_TEST(test_invalid_utf8_counts_the_fallback_bytes) {
    size_t n;
    unsigned char *t = hostile_text(10000, 11, &n);
    Tokenizer *tok = tokenizer_train_char(t, n);
    size_t k;
    int *ids = encode_all(tok, t, n, &k);
    size_t fallback = 0;
    for (size_t i = 0; i < k; i++) {
        size_t len;
        const unsigned char *b = tokenizer_token_bytes(tok, ids[i], &len);
        // A fallback token is one byte >= 0x80 (a character's is its UTF-8 form: 2+ bytes then).
        if (len == 1 && b[0] >= 0x80) fallback++;
    }
    ck_assert_uint_gt(fallback, 100);
    ck_assert_uint_eq(tokenizer_count_invalid_utf8(t, n), fallback);
    ck_assert_uint_eq(tokenizer_count_invalid_utf8((const unsigned char *)"plain ascii, 8+ bytes long", 26), 0);
    free(ids);
    tokenizer_free(tok);
    free(t);
}
END_TEST

typedef struct {
    TokenizerUnknown u[16];
    int n;
} Unknowns;

static void collect_unknown(void *ctx, const TokenizerUnknown *u) {
    Unknowns *s = ctx;
    if (s->n < 16) s->u[s->n++] = *u;
}

START_TEST(test_find_unknown_reports_each_character_the_vocabulary_lacks) {
    const char *base = "abc \n\xc3\xa9\xff";  // a b c space newline é and the fallback byte FF
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)base, strlen(base));
    const char *text = "ab\xc3\xa9Z\xe2\x82\xac c\xfe\xff\n\x01";
    Unknowns s = {.n = 0};
    size_t count = tokenizer_find_unknown(tok, (const unsigned char *)text, strlen(text), collect_unknown, &s);
    ck_assert_uint_eq(count, 4);
    ck_assert_int_eq(s.n, 4);
    ck_assert(s.u[0].unit == 'Z' && !s.u[0].is_byte && s.u[0].offset == 4);
    ck_assert(s.u[1].unit == 0x20AC && !s.u[1].is_byte && s.u[1].offset == 5);
    ck_assert(s.u[2].unit == 0xFE && s.u[2].is_byte && s.u[2].offset == 10);
    ck_assert(s.u[3].unit == 0x01 && !s.u[3].is_byte && s.u[3].offset == 13);
    ck_assert(tokenizer_has_unit(tok, 0xE9, false) && tokenizer_has_unit(tok, 0xFF, true));
    ck_assert(!tokenizer_has_unit(tok, 0xFF, false) && !tokenizer_has_unit(tok, 0xE9, true));
    char d[64];
    tokenizer_describe_unit(0x20AC, false, d, sizeof d);
    ck_assert_str_eq(d, "'\xe2\x82\xac' (U+20AC)");
    tokenizer_describe_unit(0x07, false, d, sizeof d);
    ck_assert_str_eq(d, "U+0007");
    tokenizer_describe_unit(0xFE, true, d, sizeof d);
    ck_assert_str_eq(d, "byte 0xFE (not UTF-8)");
    // A bpe vocabulary lacks nothing.
    Tokenizer *bpe = tokenizer_train_bpe((const unsigned char *)base, strlen(base), 256, false);
    ck_assert_uint_eq(tokenizer_find_unknown(bpe, (const unsigned char *)text, strlen(text), NULL, NULL), 0);
    tokenizer_free(bpe);
    tokenizer_free(tok);
}
END_TEST

// ---- the text file --------------------------------------------------------------------------
START_TEST(test_only_regular_nonempty_files_open) {
    char *dir = make_tmpdir(), err[512];
    TextFile t;
    char *fifo = path_in(dir, "fifo"), *empty = path_in(dir, "empty"), *missing = path_in(dir, "missing");
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert(!text_open(&t, fifo, err, sizeof err));  // and it does not wait for a writer
    ck_assert_msg(strstr(err, "is a FIFO, not a regular file"), "%s", err);
    ck_assert(!text_open(&t, "/dev/zero", err, sizeof err));
    ck_assert_msg(strstr(err, "'/dev/zero' is a character device"), "%s", err);
    ck_assert(!text_open(&t, dir, err, sizeof err));
    ck_assert_msg(strstr(err, "is a directory"), "%s", err);
    write_bytes(empty, "", 0);
    ck_assert(!text_open(&t, empty, err, sizeof err));
    ck_assert_msg(strstr(err, "is empty"), "%s", err);
    ck_assert(!text_open(&t, missing, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot open") && strstr(err, "No such file"), "%s", err);
    ck_assert(!text_open(&t, "/proc/self/status", err, sizeof err));
    ck_assert_msg(strstr(err, "reports a size of 0 bytes yet has content"), "%s", err);
    free(fifo), free(empty), free(missing);
    rm_rf(dir);
    free(dir);
}
END_TEST

typedef enum { GROW, SHRINK, REWRITE } Change;
typedef struct {
    const char *path;
    Change how;
    int pieces;
} Changer;

// Changes the file under the pass, after its first piece.
static bool change_file(void *ctx, const unsigned char *piece, size_t len, uint64_t off, char *err, size_t errlen) {
    (void)piece, (void)len, (void)err, (void)errlen;
    Changer *c = ctx;
    if (c->pieces++ || off != 0) return true;
    if (c->how == GROW) {
        int fd = open(c->path, O_WRONLY | O_APPEND);
        ck_assert(fd >= 0 && write(fd, "more\n", 5) == 5);
        close(fd);
    } else if (c->how == SHRINK) {
        ck_assert_int_eq(truncate(c->path, 30000), 0);
    } else {
        int fd = open(c->path, O_WRONLY);
        ck_assert(fd >= 0 && pwrite(fd, "X", 1, 50000) == 1);
        // A modification time surely different from the one at opening, however coarse the clock.
        struct timespec ts[2] = {{.tv_sec = 1000, .tv_nsec = 0}, {.tv_sec = 1000, .tv_nsec = 0}};
        ck_assert_int_eq(futimens(fd, ts), 0);
        close(fd);
    }
    return true;
}

static bool count_pieces(void *ctx, const unsigned char *piece, size_t len, uint64_t off, char *err, size_t errlen) {
    (void)piece, (void)err, (void)errlen;
    uint64_t *sum = ctx;
    ck_assert_uint_eq(off, *sum);  // in order, with nothing left out
    *sum += len;
    return true;
}

START_TEST(test_a_file_that_changes_while_read_is_refused) {
    char *dir = make_tmpdir(), err[512];
    char *p = path_in(dir, "text.txt");
    size_t n;
    unsigned char *s = shakespeare(&n);
    const char *want[] = {"(60000 bytes when opened, at least 60005 now)", "(60000 bytes when opened, 30000 now)",
                          "(modified, still 60000 bytes)"};
    for (int how = GROW; how <= REWRITE; how++) {
        write_bytes(p, s, 60000);
        TextFile t;
        ck_assert(text_open(&t, p, err, sizeof err));
        Changer c = {.path = p, .how = (Change)how};
        TextPassOptions o = {.cut = TOKENIZER_CHAR, .block = 4096};
        uint32_t crc;
        ck_assert(!text_pass(&t, &o, change_file, &c, &crc, err, sizeof err));
        ck_assert_msg(strstr(err, "changed while it was being read") && strstr(err, want[how]), "%s", err);
        text_close(&t);
    }
    // Untouched, the same pass reads every byte once, in order, and gets the file's CRC.
    write_bytes(p, s, 60000);
    TextFile t;
    ck_assert(text_open(&t, p, err, sizeof err));
    TextPassOptions o = {.cut = TOKENIZER_BPE, .block = 4096};
    uint32_t crc;
    uint64_t sum = 0;
    ck_assert_msg(text_pass(&t, &o, count_pieces, &sum, &crc, err, sizeof err), "%s", err);
    ck_assert_uint_eq(sum, 60000);
    ck_assert_uint_eq(crc, crc32c(0, s, 60000));
    text_close(&t);
    free(s), free(p);
    rm_rf(dir);
    free(dir);
}
END_TEST

static bool scan_file(const char *path, const DataScanSpec *spec, char *err, size_t errlen) {
    DataText dt;
    bool ok = data_scan(&dt, path, spec, err, errlen);
    if (ok) data_text_close(&dt);
    return ok;
}

START_TEST(test_binary_files_are_refused_by_a_stated_rule) {
    char *dir = make_tmpdir(), err[1024];
    char *p = path_in(dir, "f");
    DataScanSpec spec = {.train_kind = TOKENIZER_CHAR, .block = 64};
    write_bytes(p, "first line\nsecond\0line\n", 23);
    ck_assert(!scan_file(p, &spec, err, sizeof err));
    ck_assert_msg(strstr(err, "looks binary") && strstr(err, "NUL byte (0x00) at byte 17 (line 2)"), "%s", err);
    write_bytes(p, "\xff\xfeh\0i\0", 6);
    ck_assert(!scan_file(p, &spec, err, sizeof err));
    ck_assert_msg(strstr(err, "UTF-16 byte-order mark"), "%s", err);
    // The limit is DATA_MAX_INVALID_PERCENT (30) of the bytes: 31 invalid bytes of 100 are
    // binary, 29 are text (a few bad bytes in a text are byte-fallback tokens).
    unsigned char b[100];
    for (int bad = 29; bad <= 31; bad += 2) {
        for (int i = 0; i < 100; i++) b[i] = i < bad ? 0xFF : 'a';
        write_bytes(p, b, 100);
        for (int kind = TOKENIZER_CHAR; kind <= TOKENIZER_BPE; kind++) {
            spec.train_kind = (TokenizerKind)kind;
            spec.bpe_vocab_size = 256;
            bool ok = scan_file(p, &spec, err, sizeof err);
            ck_assert_msg(ok == (bad == 29), "%d invalid bytes of 100, %s: %s", bad,
                          tokenizer_kind_name((TokenizerKind)kind), ok ? "accepted" : err);
            if (!ok) ck_assert_msg(strstr(err, "more than 30% of its 100 bytes are not valid UTF-8"), "%s", err);
        }
    }
    free(p);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_characters_a_given_vocabulary_lacks_are_named) {
    char *dir = make_tmpdir(), err[1024];
    char *p = path_in(dir, "new.txt");
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)"abc \n", 5);
    // Unknown: 'X' (twice), 'é', 'Y', 'Z', '\x07', '€', 0xFF: 8 occurrences, 7 distinct.
    const char *text = "abc\nab Xc\n\xc3\xa9 a X\nYZ\x07\n\xe2\x82\xac\xff";
    write_bytes(p, text, strlen(text));
    DataScanSpec spec = {.tok = tok, .tok_source = "the checkpoint 'base.bin'", .block = 8};
    ck_assert(!scan_file(p, &spec, err, sizeof err));
    ck_assert_msg(strstr(err, "holds 8 characters that the char vocabulary of the checkpoint 'base.bin' (5 tokens) "
                              "cannot encode, 7 distinct; the first: 'X' (U+0058) at byte 7 (line 2), "
                              "'\xc3\xa9' (U+00E9) at byte 10 (line 3), 'Y' (U+0059) at byte 17 (line 4), "
                              "'Z' (U+005A) at byte 18 (line 4), U+0007 at byte 19 (line 4), ..."),
                  "%s", err);
    // What the vocabulary covers passes, and the tokenizer is the one given.
    write_bytes(p, "ab c\ncab", 8);
    DataText dt;
    ck_assert_msg(data_scan(&dt, p, &spec, err, sizeof err), "%s", err);
    ck_assert_ptr_eq(dt.tok, tok);
    ck_assert_ptr_null(dt.trained);
    ck_assert_uint_eq(dt.crc, crc32c(0, "ab c\ncab", 8));
    data_text_close(&dt);
    tokenizer_free(tok);
    free(p);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_a_resumed_runs_text_must_be_the_same) {
    char *dir = make_tmpdir(), err[1024];
    char *p = path_in(dir, "text.txt");
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)"abc\n", 4);
    write_bytes(p, "abcabc\n", 7);
    DataScanSpec spec = {.tok = tok, .check_text = true, .text_bytes = 7, .text_crc = crc32c(0, "abcabc\n", 7)};
    ck_assert_msg(scan_file(p, &spec, err, sizeof err), "%s", err);
    write_bytes(p, "abcab\n", 6);
    ck_assert(!scan_file(p, &spec, err, sizeof err));
    ck_assert_msg(strstr(err, "has changed since the checkpoint was written (6 bytes now, 7 then)"), "%s", err);
    write_bytes(p, "cbacba\n", 7);
    ck_assert(!scan_file(p, &spec, err, sizeof err));
    ck_assert_msg(strstr(err, "has changed since the checkpoint was written (the same 7 bytes, but CRC-32C"), "%s", err);
    tokenizer_free(tok);
    free(p);
    rm_rf(dir);
    free(dir);
}
END_TEST

// ---- the token file -------------------------------------------------------------------------
// The dataset's ids, as ints.
static int *ids_of(const Dataset *d) {
    int *ids = xmalloc(d->n_tokens * sizeof *ids);
    for (size_t i = 0; i < d->n_tokens; i++) ids[i] = dataset_token(d, i);
    return ids;
}

static bool tokens_via(const char *text, const char *cache, const DataScanSpec *scan, int block_size, Dataset *d,
                       DataIdsSource *src, char *err, size_t errlen) {
    DataText dt;
    if (!data_scan(&dt, text, scan, err, errlen)) return false;
    DataTokensSpec spec = {.cache_path = cache, .write = true, .block_size = block_size, .block = 4096};
    double s;
    bool ok = data_tokens(&dt, &spec, d, src, &s, err, errlen);
    data_text_close(&dt);
    return ok;
}

START_TEST(test_token_file_is_written_reused_and_rewritten) {
    char *dir = make_tmpdir(), err[1024];
    char *text = path_in(dir, "text.txt"), *cache = path_in(dir, "tokens.bin");
    size_t n;
    unsigned char *s = shakespeare(&n);
    n = 300000;
    write_bytes(text, s, n);
    for (int kind = TOKENIZER_CHAR; kind <= TOKENIZER_BPE; kind++) {
        remove(cache);
        DataScanSpec scan = {.train_kind = (TokenizerKind)kind, .bpe_vocab_size = 400, .block = 4096};
        Tokenizer *tok = kind == TOKENIZER_CHAR ? tokenizer_train_char(s, n) : tokenizer_train_bpe(s, n, 400, false);
        size_t k;
        int *want = encode_all(tok, s, n, &k);
        Dataset d;
        DataIdsSource src;
        // Written, in pieces of 4 KiB encoded in parallel parts: the ids of the whole text.
        ck_assert_msg(tokens_via(text, cache, &scan, 16, &d, &src, err, sizeof err), "%s", err);
        ck_assert_int_eq(src, DATA_IDS_WRITTEN);
        ck_assert_ptr_nonnull(d.map.map);
        ck_assert_int_eq(d.id_bytes, 2);
        ck_assert_uint_eq(d.n_tokens, k);
        int *got = ids_of(&d);
        ck_assert_int_eq(memcmp(got, want, k * sizeof(int)), 0);
        free(got);
        dataset_free(&d);
        struct stat st;
        ck_assert_int_eq(stat(cache, &st), 0);
        ck_assert_uint_eq((uint64_t)st.st_size, TOKENS_HEADER_BYTES + 2 * k);
        // Reused; and what a killed writer left is cleared away by the next one that holds
        // the directory.
        char *leftover = path_in(dir, "tokens.bin.tmp.99999");
        write_bytes(leftover, "x", 1);
        ck_assert_msg(tokens_via(text, cache, &scan, 16, &d, &src, err, sizeof err), "%s", err);
        ck_assert_int_eq(src, DATA_IDS_CACHED);
        ck_assert(!exists(leftover));
        free(leftover);
        ck_assert_uint_eq(d.n_tokens, k);
        dataset_free(&d);
        // Damaged (one id flipped): warned about and rewritten, the ids right again.
        int fd = open(cache, O_RDWR);
        unsigned char byte;
        ck_assert(pread(fd, &byte, 1, TOKENS_HEADER_BYTES + 1000) == 1);
        byte ^= 1;
        ck_assert(pwrite(fd, &byte, 1, TOKENS_HEADER_BYTES + 1000) == 1);
        close(fd);
        char *warned = path_in(dir, "stderr.txt");
        fflush(stderr);
        int saved = dup(2), to = open(warned, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(to, 2);
        bool ok = tokens_via(text, cache, &scan, 16, &d, &src, err, sizeof err);
        fflush(stderr);
        dup2(saved, 2);
        close(saved), close(to);
        ck_assert_msg(ok, "%s", err);
        ck_assert_int_eq(src, DATA_IDS_WRITTEN);
        size_t wl;
        char *w = (char *)read_file(warned, &wl, err, sizeof err);
        ck_assert_msg(w && strstr(w, "warning: '") && strstr(w, "tokens.bin' is damaged (its ids do not match their "
                                                            "checksum); encoding the text again"),
                      "%s", w ? w : err);
        free(w);
        remove(warned);
        free(warned);
        got = ids_of(&d);
        ck_assert_int_eq(memcmp(got, want, k * sizeof(int)), 0);
        free(got);
        dataset_free(&d);
        free(want);
        tokenizer_free(tok);
    }
    // The other tokenizer's file is stale for this one: rewritten, not used.
    DataScanSpec scan = {.train_kind = TOKENIZER_CHAR, .block = 4096};
    Dataset d;
    DataIdsSource src;
    ck_assert_msg(tokens_via(text, cache, &scan, 16, &d, &src, err, sizeof err), "%s", err);
    ck_assert_int_eq(src, DATA_IDS_WRITTEN);
    ck_assert_uint_eq(d.n_tokens, n);
    dataset_free(&d);
    // A text too short for the block size: refused, and no token file or temporary file left.
    remove(cache);
    ck_assert(!tokens_via(text, cache, &scan, 200000, &d, &src, err, sizeof err));
    ck_assert_msg(strstr(err, "is too short"), "%s", err);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep -v '^text.txt$')\"", dir);
    ck_assert_msg(system(cmd) == 0, "files left in %s", dir);
    free(s), free(text), free(cache);
    rm_rf(dir);
    free(dir);
}
END_TEST

// Bytes changed between the scan and the encoding (with the size and the modification time
// put back) are caught by the second reading's CRC, and leave no token file.
START_TEST(test_a_text_changed_between_the_two_readings_is_refused) {
    char *dir = make_tmpdir(), err[1024];
    char *text = path_in(dir, "text.txt"), *cache = path_in(dir, "tokens.bin");
    write_bytes(text, "abcd\nabcd\nabcd\nabcd\nabcd\nabcd\n", 30);
    struct stat before;
    ck_assert_int_eq(stat(text, &before), 0);
    DataText dt;
    DataScanSpec scan = {.train_kind = TOKENIZER_CHAR};
    ck_assert(data_scan(&dt, text, &scan, err, sizeof err));
    int fd = open(text, O_WRONLY);
    ck_assert(pwrite(fd, "dcba", 4, 0) == 4);
    struct timespec ts[2] = {before.st_atim, before.st_mtim};
    ck_assert_int_eq(futimens(fd, ts), 0);
    close(fd);
    DataTokensSpec spec = {.cache_path = cache, .write = true, .block_size = 2};
    Dataset d;
    DataIdsSource src;
    double s;
    ck_assert(!data_tokens(&dt, &spec, &d, &src, &s, err, sizeof err));
    ck_assert_msg(strstr(err, "changed while it was being read (its bytes differ between two readings)"), "%s", err);
    ck_assert(!exists(cache));
    data_text_close(&dt);
    free(text), free(cache);
    rm_rf(dir);
    free(dir);
}
END_TEST

// A vocabulary of more than 65,536 ids takes 32-bit ids.
START_TEST(test_a_vocabulary_beyond_65536_takes_32_bit_ids) {
    char *dir = make_tmpdir(), err[1024];
    char *text = path_in(dir, "text.txt"), *cache = path_in(dir, "tokens.bin");
    // Every code point from U+4E00 up to 70,000 of them (surrogates skipped), twice.
    unsigned char *t = xmalloc(70000 * 8 + 16);
    size_t n = 0;
    for (int rep = 0; rep < 2; rep++) {
        int made = 0;
        for (uint32_t cp = 0x4E00; made < 70000; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            if (cp < 0x10000) {
                t[n++] = (unsigned char)(0xE0 | cp >> 12), t[n++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            } else {
                t[n++] = (unsigned char)(0xF0 | cp >> 18), t[n++] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
                t[n++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            }
            t[n++] = (unsigned char)(0x80 | (cp & 0x3F));
            made++;
        }
    }
    write_bytes(text, t, n);
    DataScanSpec scan = {.train_kind = TOKENIZER_CHAR, .block = 4096};
    Dataset d;
    DataIdsSource src;
    ck_assert_msg(tokens_via(text, cache, &scan, 64, &d, &src, err, sizeof err), "%s", err);
    ck_assert_int_eq(d.id_bytes, 4);
    ck_assert_uint_eq(d.n_tokens, 140000);
    for (size_t i = 0; i < 70000; i++)
        if (dataset_token(&d, i) != (int)i || dataset_token(&d, 70000 + i) != (int)i)
            ck_abort_msg("id %zu is %d", i, dataset_token(&d, i));
    dataset_free(&d);
    free(t), free(text), free(cache);
    rm_rf(dir);
    free(dir);
}
END_TEST

// Batches from the mapped file are the batches of the same ids in memory.
START_TEST(test_batches_from_the_map_equal_batches_from_memory) {
    char *dir = make_tmpdir(), err[1024];
    char *text = path_in(dir, "text.txt"), *cache = path_in(dir, "tokens.bin");
    size_t n;
    unsigned char *s = shakespeare(&n);
    write_bytes(text, s, 100000);
    DataScanSpec scan = {.train_kind = TOKENIZER_CHAR};
    Dataset mapped, mem;
    DataIdsSource src;
    ck_assert_msg(tokens_via(text, cache, &scan, 32, &mapped, &src, err, sizeof err), "%s", err);
    Tokenizer *tok = tokenizer_train_char(s, 100000);
    ck_assert_msg(dataset_load(&mem, text, tok, 32, err, sizeof err), "%s", err);
    ck_assert_ptr_null(mem.map.map);
    ck_assert_uint_eq(mapped.n_train, mem.n_train);
    ck_assert_uint_eq(mapped.text_crc, mem.text_crc);
    Rng ra, rb;
    rng_seed(&ra, 9), rng_seed(&rb, 9);
    int xa[8 * 32], ya[8 * 32], xb[8 * 32], yb[8 * 32];
    for (int i = 0; i < 50; i++) {
        Split sp = i % 3 ? SPLIT_TRAIN : SPLIT_VAL;
        dataset_batch(&mapped, sp, &ra, 8, 32, xa, ya);
        dataset_batch(&mem, sp, &rb, 8, 32, xb, yb);
        ck_assert_int_eq(memcmp(xa, xb, sizeof xa), 0);
        ck_assert_int_eq(memcmp(ya, yb, sizeof ya), 0);
    }
    dataset_free(&mapped), dataset_free(&mem);
    tokenizer_free(tok);
    free(s), free(text), free(cache);
    rm_rf(dir);
    free(dir);
}
END_TEST

// ---- the lock -------------------------------------------------------------------------------
START_TEST(test_a_run_directory_has_one_writer_until_it_dies) {
    char *dir = make_tmpdir(), err[1024];
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char e[1024];
        if (!run_lock_create(dir, e, sizeof e)) _exit(3);
        ck_assert(write(ready[1], "x", 1) == 1);
        pause();
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)child);
    ck_assert(!run_lock_probe(dir, err, sizeof err));
    ck_assert_msg(strstr(err, "is in use: another gpt train") && strstr(err, pid), "%s", err);
    ck_assert(!run_lock_existing(dir, err, sizeof err));
    ck_assert_msg(strstr(err, pid), "%s", err);
    ck_assert(!run_lock_create(dir, err, sizeof err));
    // Killed outright: the kernel drops its lock, and the file it leaves is taken over.
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    char *lock = path_in(dir, "lock");
    ck_assert(exists(lock));
    ck_assert(run_lock_probe(dir, err, sizeof err));
    ck_assert_msg(run_lock_existing(dir, err, sizeof err), "%s", err);
    run_lock_release();
    ck_assert(!exists(lock));  // released in order: nothing left
    ck_assert(exists(dir));    // a directory the lock did not make stays
    // Directories the lock made go again if nothing was written into them.
    char *deep = path_in(dir, "a/b/c");
    ck_assert_msg(run_lock_create(deep, err, sizeof err), "%s", err);
    ck_assert(exists(deep));
    run_lock_release();
    char *a = path_in(dir, "a");
    ck_assert(!exists(a));
    ck_assert_msg(run_lock_create(deep, err, sizeof err), "%s", err);
    char *f = path_in(deep, "ckpt.bin");
    write_bytes(f, "x", 1);
    run_lock_release();
    ck_assert(exists(f));  // a run that wrote something keeps its directory
    free(f), free(a), free(deep), free(lock);
    close(ready[0]), close(ready[1]);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_a_cut_never_changes_the_ids);
    tcase_add_test(tc, test_training_and_encoding_in_pieces_equal_the_whole);
    tcase_add_test(tc, test_invalid_utf8_counts_the_fallback_bytes);
    tcase_add_test(tc, test_find_unknown_reports_each_character_the_vocabulary_lacks);
    tcase_add_test(tc, test_only_regular_nonempty_files_open);
    tcase_add_test(tc, test_a_file_that_changes_while_read_is_refused);
    tcase_add_test(tc, test_binary_files_are_refused_by_a_stated_rule);
    tcase_add_test(tc, test_characters_a_given_vocabulary_lacks_are_named);
    tcase_add_test(tc, test_a_resumed_runs_text_must_be_the_same);
    tcase_add_test(tc, test_token_file_is_written_reused_and_rewritten);
    tcase_add_test(tc, test_a_text_changed_between_the_two_readings_is_refused);
    tcase_add_test(tc, test_a_vocabulary_beyond_65536_takes_32_bit_ids);
    tcase_add_test(tc, test_batches_from_the_map_equal_batches_from_memory);
    tcase_add_test(tc, test_a_run_directory_has_one_writer_until_it_dies);
    suite_add_tcase(s, tc);
    return s;
}
