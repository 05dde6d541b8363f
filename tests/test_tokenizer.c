// test_tokenizer.c -- the tokenizer suite: the char vocabulary rule, BPE training against a
// naive reference, round trips of arbitrary bytes, the image and file formats under truncation
// and corruption, and the `gpt tokenizer` command.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/common.h"
#include "tests/tests.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

#define SHAKESPEARE "data/tinyshakespeare.txt"

// ---------------------------------------------------------------------------------------------
// Helpers.

static unsigned char *shakespeare(size_t *len) {
    char err[256];
    unsigned char *text = read_file(SHAKESPEARE, len, err, sizeof err);
    ck_assert_msg(text != NULL, "%s (tests run from the repository root)", err);
    return text;
}

static const unsigned char *u8(const char *s) { return (const unsigned char *)s; }

// Encodes (must succeed), checks every id is in range, decodes, and compares byte for byte.
static void assert_round_trip(const Tokenizer *tok, const unsigned char *s, size_t n) {
    int *ids;
    size_t k;
    char err[256] = "";
    ck_assert_msg(tokenizer_encode(tok, s, n, &ids, &k, err, sizeof err), "encode failed: %s", err);
    ck_assert_uint_le(k, n);
    // One check for all ids: each ck_assert reports to Check's parent process, a syscall.
    size_t bad = k;
    for (size_t i = 0; i < k && bad == k; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(tok)) bad = i;
    ck_assert_msg(bad == k, "id %d at %zu is out of range", bad < k ? ids[bad] : 0, bad);
    unsigned char *out;
    size_t out_len;
    ck_assert_msg(tokenizer_decode(tok, ids, k, &out, &out_len, err, sizeof err), "decode failed: %s", err);
    ck_assert_uint_eq(out_len, n);
    if (n) ck_assert_mem_eq(out, s, n);
    ck_assert_int_eq(out[out_len], 0);
    free(ids);
    free(out);
}

// Encodes text that must encode; returns the ids and their count.
static int *encode_ok(const Tokenizer *tok, const unsigned char *s, size_t n, size_t *k) {
    int *ids;
    char err[256] = "";
    ck_assert_msg(tokenizer_encode(tok, s, n, &ids, k, err, sizeof err), "encode failed: %s", err);
    return ids;
}

static void assert_token(const Tokenizer *tok, int id, const char *bytes, size_t n) {
    size_t len;
    const unsigned char *b = tokenizer_token_bytes(tok, id, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, n);
    ck_assert_mem_eq(b, bytes, n);
}

enum { TEXT_BYTES, TEXT_ASCII, TEXT_UTF8, TEXT_MIXED, TEXT_MODES };

// A random byte string of up to max bytes: uniform bytes; ASCII words; valid UTF-8 of every
// length (1 to 4 bytes); or a mix of those with NULs and broken sequences.
static size_t random_text(Rng *r, unsigned char *buf, size_t max, int mode) {
    size_t n = rng_below(r, max + 1), i = 0;
    static const char *words[] = {"the ", "a", "and ", "\n", "  ", "ab", "ba", "'s ", "42", ", ", "..."};
    while (i < n) {
        int m = mode == TEXT_MIXED ? (int)rng_below(r, 3) : mode;
        if (mode == TEXT_MIXED && rng_below(r, 8) == 0) {
            static const unsigned char broken[][3] = {
                {0xC0, 0xAF}, {0xED, 0xA0, 0x80}, {0xF4, 0x90}, {0xE2, 0x82}, {0x80}, {0}};
            const unsigned char *b = broken[rng_below(r, 6)];
            for (int k = 0; k < 3 && i < n; k++) {
                buf[i++] = b[k];
                if (b[k] == 0 || k + 1 == 3 || b[k + 1] == 0) break;
            }
            continue;
        }
        if (m == TEXT_BYTES) {
            buf[i++] = (unsigned char)rng_below(r, 256);
        } else if (m == TEXT_ASCII) {
            const char *w = words[rng_below(r, sizeof words / sizeof words[0])];
            for (size_t k = 0; w[k] && i < n; k++) buf[i++] = (unsigned char)w[k];
        } else {
            static const uint32_t ranges[][2] = {
                {0x20, 0x7E}, {0xA0, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF}, {0x10000, 0x10FFFF}};
            const uint32_t *rg = ranges[rng_below(r, 5)];
            uint32_t cp = rg[0] + (uint32_t)rng_below(r, rg[1] - rg[0] + 1);
            unsigned char tmp[4];
            int len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (len == 1) tmp[0] = (unsigned char)cp;
            if (len == 2) tmp[0] = (unsigned char)(0xC0 | cp >> 6), tmp[1] = (unsigned char)(0x80 | (cp & 0x3F));
            if (len == 3)
                tmp[0] = (unsigned char)(0xE0 | cp >> 12), tmp[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)),
                tmp[2] = (unsigned char)(0x80 | (cp & 0x3F));
            if (len == 4)
                tmp[0] = (unsigned char)(0xF0 | cp >> 18), tmp[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F)),
                tmp[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), tmp[3] = (unsigned char)(0x80 | (cp & 0x3F));
            if (i + (size_t)len > n) break;
            memcpy(buf + i, tmp, (size_t)len);
            i += (size_t)len;
        }
    }
    return i;
}

static unsigned char *image_of(const Tokenizer *tok, size_t *len) { return tokenizer_serialize(tok, len); }

static bool same_image(const Tokenizer *a, const Tokenizer *b) {
    size_t na, nb;
    unsigned char *ia = image_of(a, &na), *ib = image_of(b, &nb);
    bool same = na == nb && memcmp(ia, ib, na) == 0;
    free(ia);
    free(ib);
    return same;
}

// ---------------------------------------------------------------------------------------------
// The char tokenizer.

START_TEST(test_char_shakespeare_has_pythons_65_sorted_ids) {
    size_t len;
    unsigned char *text = shakespeare(&len);
    Tokenizer *tok = tokenizer_train_char(text, len);
    ck_assert_int_eq(tokenizer_kind(tok), TOKENIZER_CHAR);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 65);
    // The ids of Python's sorted(set(open('data/tinyshakespeare.txt').read())).
    assert_token(tok, 0, "\n", 1);
    assert_token(tok, 1, " ", 1);
    assert_token(tok, 2, "!", 1);
    assert_token(tok, 9, "3", 1);
    assert_token(tok, 13, "A", 1);
    assert_token(tok, 38, "Z", 1);
    assert_token(tok, 39, "a", 1);
    assert_token(tok, 64, "z", 1);
    size_t n;
    int *ids = encode_ok(tok, u8("First Citizen:"), 14, &n);
    const int expect[] = {18, 47, 56, 57, 58, 1, 15, 47, 58, 47, 64, 43, 52, 10};
    ck_assert_uint_eq(n, 14);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(ids[i], expect[i]);
    free(ids);
    assert_round_trip(tok, text, len);
    tokenizer_free(tok);
    free(text);
}
END_TEST

START_TEST(test_char_multibyte_utf8_sorted_by_code_point) {
    // U+0041 'A', U+00E9 'é', U+20AC '€', U+1D11E (4 bytes), U+0000 (NUL is a character too)
    const char text[] =
        "\xF0\x9D\x84\x9E"
        "\xE2\x82\xAC"
        "A\xC3\xA9"
        "A"
        "\0"
        "\xE2\x82\xAC";
    size_t len = sizeof text - 1;
    Tokenizer *tok = tokenizer_train_char(u8(text), len);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 5);
    assert_token(tok, 0, "\0", 1);
    assert_token(tok, 1, "A", 1);
    assert_token(tok, 2, "\xC3\xA9", 2);
    assert_token(tok, 3, "\xE2\x82\xAC", 3);
    assert_token(tok, 4, "\xF0\x9D\x84\x9E", 4);
    size_t n;
    int *ids = encode_ok(tok, u8(text), len, &n);
    const int expect[] = {4, 3, 1, 2, 1, 0, 3};
    ck_assert_uint_eq(n, 7);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(ids[i], expect[i]);
    free(ids);
    assert_round_trip(tok, u8(text), len);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_char_invalid_utf8_becomes_one_fallback_token_per_byte) {
    // Overlong '/', a surrogate, above U+10FFFF, a stray continuation, 0xFF, and a truncated
    // euro sign at the very end: every one of those bytes is a fallback byte.
    const char text[] =
        "b"
        "\xC0\xAF"
        "\xED\xA0\x80"
        "\xF4\x90\x80\x80"
        "\x80"
        "\xFF"
        "a"
        "\xE2\x82";
    size_t len = sizeof text - 1;
    Tokenizer *tok = tokenizer_train_char(u8(text), len);
    // code points a, b; then the distinct bytes 0x80 0x82 0x90 0xA0 0xAF 0xC0 0xE2 0xED 0xF4 0xFF
    const unsigned char fallback[] = {0x80, 0x82, 0x90, 0xA0, 0xAF, 0xC0, 0xE2, 0xED, 0xF4, 0xFF};
    ck_assert_int_eq(tokenizer_vocab_size(tok), 2 + (int)sizeof fallback);
    assert_token(tok, 0, "a", 1);
    assert_token(tok, 1, "b", 1);
    for (size_t i = 0; i < sizeof fallback; i++) assert_token(tok, 2 + (int)i, (const char *)&fallback[i], 1);
    size_t n;
    int *ids = encode_ok(tok, u8(text), len, &n);
    ck_assert_uint_eq(n, len);  // every byte here is a token of its own
    free(ids);
    assert_round_trip(tok, u8(text), len);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_char_utf8_decoder_is_strict_at_every_boundary) {
    struct {
        const char *s;
        int len;
        uint32_t cp;
    } cases[] = {
        {"\x7F", 1, 0x7F},
        {"\xC2\x80", 2, 0x80},
        {"\xDF\xBF", 2, 0x7FF},
        {"\xE0\xA0\x80", 3, 0x800},
        {"\xED\x9F\xBF", 3, 0xD7FF},
        {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBF", 3, 0xFFFF},
        {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
        {"\xC1\xBF", 0, 0},
        {"\xE0\x9F\xBF", 0, 0},
        {"\xF0\x8F\xBF\xBF", 0, 0},  // overlong
        {"\xED\xA0\x80", 0, 0},
        {"\xED\xBF\xBF", 0, 0},  // surrogates
        {"\xF4\x90\x80\x80", 0, 0},
        {"\xF5\x80\x80\x80", 0, 0},  // > U+10FFFF
        {"\xE2\x82", 0, 0},
        {"\xC3", 0, 0},
        {"\xE2\x28\xA1", 0, 0},  // truncated
        {"\xBF", 0, 0},
        {"\xFE", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0xDEAD;
        int len = utf8_decode(u8(cases[i].s), strlen(cases[i].s), &cp);
        ck_assert_msg(len == cases[i].len, "case %zu: length %d, expected %d", i, len, cases[i].len);
        if (len) ck_assert_uint_eq(cp, cases[i].cp);
    }
}
END_TEST

START_TEST(test_char_encode_names_missing_character_and_offset) {
    Tokenizer *tok = tokenizer_train_char(u8("abc \xC3\xA9\xFF"), 7);
    int *ids = (int *)&ids;
    size_t n = 99;
    char err[256];
    ck_assert(!tokenizer_encode(tok, u8("abZ"), 3, &ids, &n, err, sizeof err));
    ck_assert_ptr_null(ids);
    ck_assert_str_eq(err, "character 'Z' (U+005A) at byte 2 is not in the vocabulary");
    ck_assert(!tokenizer_encode(tok, u8("a\x07"), 2, &ids, &n, err, sizeof err));
    ck_assert_str_eq(err, "character U+0007 at byte 1 is not in the vocabulary");
    ck_assert(!tokenizer_encode(tok, u8("ab \xE2\x82\xAC"), 6, &ids, &n, err, sizeof err));
    ck_assert_str_eq(err, "character '\xE2\x82\xAC' (U+20AC) at byte 3 is not in the vocabulary");
    ck_assert(!tokenizer_encode(tok, u8("\xFF\xFE"), 2, &ids, &n, err, sizeof err));
    ck_assert_str_eq(err, "byte 0xFE (not valid UTF-8) at byte 1 is not in the vocabulary");
    // 0xC3 was only ever part of 'é' in training, so alone it is an unseen byte.
    ck_assert(!tokenizer_encode(tok, u8("a\xC3"), 2, &ids, &n, err, sizeof err));
    ck_assert_str_eq(err, "byte 0xC3 (not valid UTF-8) at byte 1 is not in the vocabulary");
    ck_assert(tokenizer_encode(tok, u8("c\xFF\xC3\xA9 "), 5, &ids, &n, err, sizeof err));
    ck_assert_uint_eq(n, 4);
    free(ids);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_char_empty_text_gives_empty_vocabulary) {
    Tokenizer *tok = tokenizer_train_char(u8(""), 0);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 0);
    assert_round_trip(tok, u8(""), 0);
    int *ids;
    size_t n;
    char err[256];
    ck_assert(!tokenizer_encode(tok, u8("a"), 1, &ids, &n, err, sizeof err));
    ck_assert_str_eq(err, "character 'a' (U+0061) at byte 0 is not in the vocabulary");
    size_t len;
    ck_assert_ptr_null(tokenizer_token_bytes(tok, 0, &len));
    Tokenizer *back = NULL;
    unsigned char *img = image_of(tok, &len);
    back = tokenizer_deserialize(img, len, err, sizeof err);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(tokenizer_vocab_size(back), 0);
    free(img);
    tokenizer_free(back);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_char_one_repeated_character) {
    unsigned char text[1000];
    memset(text, 'x', sizeof text);
    Tokenizer *tok = tokenizer_train_char(text, sizeof text);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 1);
    size_t n;
    int *ids = encode_ok(tok, text, sizeof text, &n);
    ck_assert_uint_eq(n, sizeof text);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(ids[i], 0);
    free(ids);
    assert_round_trip(tok, text, sizeof text);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_char_random_bytes_round_trip) {
    Rng r;
    rng_seed(&r, 1234);
    unsigned char buf[600];
    for (int trial = 0; trial < 400; trial++) {
        size_t n = random_text(&r, buf, sizeof buf, trial % TEXT_MODES);
        Tokenizer *tok = tokenizer_train_char(buf, n);
        assert_round_trip(tok, buf, n);
        // The ids are sorted: code points increasing, then fallback bytes increasing.
        bool sorted = true;
        for (int id = 1; id < tok->vocab_size; id++)
            sorted &= id == tok->n_codepoints || tok->units[id] > tok->units[id - 1];
        ck_assert(sorted);
        tokenizer_free(tok);
    }
}
END_TEST

// ---------------------------------------------------------------------------------------------
// BPE.

START_TEST(test_bpe_learns_aa_then_aaaa_on_repeated_letter) {
    unsigned char text[64];
    memset(text, 'a', sizeof text);
    Tokenizer *tok = tokenizer_train_bpe(text, sizeof text, 259, false);
    ck_assert_int_eq(tokenizer_kind(tok), TOKENIZER_BPE);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 259);
    ck_assert_int_eq(tok->merges[0], 'a');
    ck_assert_int_eq(tok->merges[1], 'a');
    ck_assert_int_eq(tok->merges[2], 256);
    ck_assert_int_eq(tok->merges[3], 256);
    assert_token(tok, 256, "aa", 2);
    assert_token(tok, 257, "aaaa", 4);
    assert_token(tok, 258, "aaaaaaaa", 8);
    size_t n;
    int *ids = encode_ok(tok, u8("aaaaaaaaaaaaa"), 13, &n);  // 8 + 4 + 1
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[0], 258);
    ck_assert_int_eq(ids[1], 257);
    ck_assert_int_eq(ids[2], 'a');
    free(ids);
    ids = encode_ok(tok, u8("aaa"), 3, &n);  // leftmost first: [aa, a]
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 256);
    ck_assert_int_eq(ids[1], 'a');
    free(ids);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_bpe_ab_ab_learns_ab_then_space_ab_and_stops) {
    const char *text = "ab ab ab ab";  // chunks: "ab" " ab" " ab" " ab"
    Tokenizer *tok = tokenizer_train_bpe(u8(text), strlen(text), 300, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 258);  // then no pair occurs twice
    ck_assert_int_eq(tok->merges[0], 'a');
    ck_assert_int_eq(tok->merges[1], 'b');
    ck_assert_int_eq(tok->merges[2], ' ');
    ck_assert_int_eq(tok->merges[3], 256);
    assert_token(tok, 257, " ab", 3);
    size_t n;
    int *ids = encode_ok(tok, u8(text), strlen(text), &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 256);
    for (int i = 1; i < 4; i++) ck_assert_int_eq(ids[i], 257);
    free(ids);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_bpe_ties_go_to_the_smallest_pair) {
    // Chunks "cd" " ab" " cd" " ab": (' ','a'), ('a','b') and ('c','d') all occur twice.
    const char *text = "cd ab cd ab";
    Tokenizer *tok = tokenizer_train_bpe(u8(text), strlen(text), 257, false);
    ck_assert_int_eq(tok->merges[0], ' ');
    ck_assert_int_eq(tok->merges[1], 'a');
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_bpe_merges_never_cross_chunk_boundaries) {
    // Letters and punctuation alternate, so every chunk is one byte: nothing to merge.
    const char *text = "x.x.x.x.x.x.x.x.";
    Tokenizer *tok = tokenizer_train_bpe(u8(text), strlen(text), 300, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 256);
    tokenizer_free(tok);
    // The pre-split, chunk by chunk.
    const char *s = "Hello,  world's 42nd\n\n  x\0y!?";
    size_t len = 29, at = 0;
    const char *expect[] = {"Hello", ",", " ", " world", "'s", " 42", "nd", "\n\n ", " x", "\0", "y", "!?"};
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; k++) {
        size_t n = tokenizer_bpe_chunk_len(u8(s), len, at);
        size_t want = k == 9 ? 1 : strlen(expect[k]);
        ck_assert_msg(n == want && memcmp(s + at, expect[k], n) == 0, "chunk %zu: '%.*s'", k, (int)n, s + at);
        at += n;
    }
    ck_assert_uint_eq(at, len);
}
END_TEST

START_TEST(test_bpe_stops_early_when_no_pair_repeats) {
    Tokenizer *tok = tokenizer_train_bpe(u8("abcdefg"), 7, 1000, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 256);
    assert_round_trip(tok, u8("gfedcba\0\xFF"), 9);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_bpe_empty_text_gives_the_256_bytes) {
    Tokenizer *tok = tokenizer_train_bpe(u8(""), 0, 512, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 256);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        assert_token(tok, b, &c, 1);
    }
    assert_round_trip(tok, u8(""), 0);
    assert_round_trip(tok, u8("\0\x01\xFFz"), 4);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_bpe_vocab_below_256_is_a_caller_bug) {
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});  // the abort is expected; no core file
    tokenizer_train_bpe(u8("abc"), 3, 255, false);
}
END_TEST

START_TEST(test_bpe_shakespeare_512_compresses_and_round_trips) {
    size_t len;
    unsigned char *text = shakespeare(&len);
    Tokenizer *tok = tokenizer_train_bpe(text, len, 512, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 512);
    // Every merged token is its parts' bytes, and the commonest pairs come first.
    for (int m = 0; m < tok->n_merges; m++) {
        size_t nl, nr, n;
        const unsigned char *l = tokenizer_token_bytes(tok, tok->merges[2 * m], &nl);
        const unsigned char *r = tokenizer_token_bytes(tok, tok->merges[2 * m + 1], &nr);
        const unsigned char *t = tokenizer_token_bytes(tok, 256 + m, &n);
        ck_assert_uint_eq(n, nl + nr);
        ck_assert_mem_eq(t, l, nl);
        ck_assert_mem_eq(t + nl, r, nr);
    }
    assert_token(tok, 256, " t", 2);
    assert_token(tok, 257, "he", 2);
    size_t n;
    int *ids = encode_ok(tok, text, len, &n);
    ck_assert_uint_lt(n, len * 6 / 10);  // about 1.96 bytes per token
    free(ids);
    assert_round_trip(tok, text, len);
    tokenizer_free(tok);
    free(text);
}
END_TEST

START_TEST(test_bpe_random_bytes_round_trip) {
    Rng r;
    rng_seed(&r, 99);
    size_t len;
    unsigned char *text = shakespeare(&len);
    Tokenizer *toks[3];
    toks[0] = tokenizer_train_bpe(text, len / 4, 400, false);
    unsigned char *train = xmalloc(20000);
    size_t n = 0;
    while (n < 19000) n += random_text(&r, train + n, 20000 - n, TEXT_MIXED);
    toks[1] = tokenizer_train_bpe(train, n, 600, false);
    for (size_t i = 0; i < 20000; i++) train[i] = (unsigned char)rng_below(&r, 4);  // NULs and control bytes
    toks[2] = tokenizer_train_bpe(train, 20000, 300, false);
    unsigned char buf[800];
    for (int trial = 0; trial < 600; trial++) {
        size_t k = random_text(&r, buf, sizeof buf, trial % TEXT_MODES);
        assert_round_trip(toks[trial % 3], buf, k);
    }
    for (int t = 0; t < 3; t++) tokenizer_free(toks[t]);
    free(train);
    free(text);
}
END_TEST

START_TEST(test_bpe_long_chunk_encodes_and_round_trips) {
    // One chunk of 200 KB (no spaces): the encoder must not be quadratic in the chunk length.
    size_t n = 200000;
    unsigned char *text = xmalloc(n);
    Rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++) text[i] = (unsigned char)("abc\xC3\xA9"[rng_below(&r, 5)]);
    Tokenizer *tok = tokenizer_train_bpe(text, n, 700, false);
    ck_assert_int_eq(tokenizer_vocab_size(tok), 700);
    assert_round_trip(tok, text, n);
    tokenizer_free(tok);
    free(text);
}
END_TEST

// A naive BPE trainer: recounts every pair over every chunk occurrence before each merge.
// Slow, but obviously right, so the incremental trainer must agree with it exactly.
static int reference_train(const unsigned char *text, size_t len, int vocab, int *merges) {
    int **chunks = NULL, *lens = NULL;
    size_t nc = 0;
    for (size_t i = 0; i < len;) {
        size_t m = tokenizer_bpe_chunk_len(text, len, i);
        chunks = xrealloc(chunks, (nc + 1) * sizeof *chunks);
        lens = xrealloc(lens, (nc + 1) * sizeof *lens);
        chunks[nc] = xmalloc(m * sizeof(int));
        for (size_t k = 0; k < m; k++) chunks[nc][k] = text[i + k];
        lens[nc++] = (int)m;
        i += m;
    }
    int64_t *count = xmalloc((size_t)vocab * vocab * sizeof *count);
    int n_merges = 0;
    for (; n_merges < vocab - 256; n_merges++) {
        memset(count, 0, (size_t)vocab * vocab * sizeof *count);
        for (size_t c = 0; c < nc; c++)
            for (int k = 0; k + 1 < lens[c]; k++) count[(size_t)chunks[c][k] * vocab + chunks[c][k + 1]]++;
        int64_t best = 1;
        int ba = -1, bb = -1;
        for (int a = 0; a < vocab; a++)
            for (int b = 0; b < vocab; b++)
                if (count[(size_t)a * vocab + b] > best) best = count[(size_t)a * vocab + b], ba = a, bb = b;
        if (ba < 0) break;
        merges[2 * n_merges] = ba;
        merges[2 * n_merges + 1] = bb;
        for (size_t c = 0; c < nc; c++) {
            int j = 0;
            for (int k = 0; k < lens[c];) {
                if (k + 1 < lens[c] && chunks[c][k] == ba && chunks[c][k + 1] == bb) {
                    chunks[c][j++] = 256 + n_merges;
                    k += 2;
                } else {
                    chunks[c][j++] = chunks[c][k++];
                }
            }
            lens[c] = j;
        }
    }
    for (size_t c = 0; c < nc; c++) free(chunks[c]);
    free(chunks);
    free(lens);
    free(count);
    return n_merges;
}

// A naive encoder: per chunk, apply the lowest-ranked merge present everywhere, repeat.
static size_t reference_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t m = tokenizer_bpe_chunk_len(text, len, i);
        int *ids = out + n, k = (int)m;
        for (size_t j = 0; j < m; j++) ids[j] = text[i + j];
        for (int merge = 0; merge < tok->n_merges; merge++) {
            int a = tok->merges[2 * merge], b = tok->merges[2 * merge + 1], j = 0;
            for (int x = 0; x < k;) {
                if (x + 1 < k && ids[x] == a && ids[x + 1] == b) {
                    ids[j++] = 256 + merge;
                    x += 2;
                } else {
                    ids[j++] = ids[x++];
                }
            }
            k = j;
        }
        n += (size_t)k;
        i += m;
    }
    return n;
}

START_TEST(test_bpe_incremental_training_matches_naive_recount) {
    Rng r;
    rng_seed(&r, 2024);
    static const char alphabet[] = "aabbbc  \n'sd1.\xC3\xA9";
    for (int trial = 0; trial < 6; trial++) {
        size_t len = 1500 + rng_below(&r, 1500);
        unsigned char *text = xmalloc(len);
        for (size_t i = 0; i < len; i++) text[i] = (unsigned char)alphabet[rng_below(&r, sizeof alphabet - 1)];
        int vocab = 256 + 30 + (int)rng_below(&r, 60);
        int *want = xmalloc((size_t)(vocab - 256) * 2 * sizeof *want + 1);
        int n_want = reference_train(text, len, vocab, want);
        Tokenizer *tok = tokenizer_train_bpe(text, len, vocab, false);
        ck_assert_int_eq(tok->n_merges, n_want);
        for (int m = 0; m < n_want; m++) {
            ck_assert_msg(tok->merges[2 * m] == want[2 * m] && tok->merges[2 * m + 1] == want[2 * m + 1],
                          "trial %d merge %d: (%d, %d), expected (%d, %d)", trial, m, tok->merges[2 * m],
                          tok->merges[2 * m + 1], want[2 * m], want[2 * m + 1]);
        }
        // And the heap-based encoder agrees with the naive one, on the text and on noise.
        unsigned char noise[500];
        for (int k = 0; k < 2; k++) {
            const unsigned char *s = k ? noise : text;
            size_t n = k ? random_text(&r, noise, sizeof noise, TEXT_MIXED) : len;
            int *ref = xmalloc((n + 1) * sizeof *ref);
            size_t n_ref = reference_encode(tok, s, n, ref), n_got;
            int *got = encode_ok(tok, s, n, &n_got);
            ck_assert_uint_eq(n_got, n_ref);
            ck_assert_mem_eq(got, ref, n_ref * sizeof *ref);
            free(ref);
            free(got);
        }
        tokenizer_free(tok);
        free(want);
        free(text);
    }
}
END_TEST

START_TEST(test_training_is_deterministic) {
    size_t len;
    unsigned char *text = shakespeare(&len);
    len /= 8;
    Tokenizer *a = tokenizer_train_bpe(text, len, 600, false), *b = tokenizer_train_bpe(text, len, 600, false);
    ck_assert(same_image(a, b));
    tokenizer_free(a);
    tokenizer_free(b);
    a = tokenizer_train_char(text, len);
    b = tokenizer_train_char(text, len);
    ck_assert(same_image(a, b));
    tokenizer_free(a);
    tokenizer_free(b);
    free(text);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// The image.

START_TEST(test_kind_names_and_out_of_range_ids) {
    ck_assert_str_eq(tokenizer_kind_name(TOKENIZER_CHAR), "char");
    ck_assert_str_eq(tokenizer_kind_name(TOKENIZER_BPE), "bpe");
    Tokenizer *tok = tokenizer_train_char(u8("ab"), 2);
    size_t len = 7;
    ck_assert_ptr_null(tokenizer_token_bytes(tok, -1, &len));
    ck_assert_ptr_null(tokenizer_token_bytes(tok, 2, &len));
    int ids[] = {0, 1, 2};
    unsigned char *out = (unsigned char *)&out;
    char err[256];
    ck_assert(!tokenizer_decode(tok, ids, 3, &out, &len, err, sizeof err));
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "token id 2 at position 2 is out of range (this char tokenizer has ids 0..1)");
    ids[0] = -5;
    ck_assert(!tokenizer_decode(tok, ids, 1, &out, &len, err, sizeof err));
    ck_assert_str_eq(err, "token id -5 at position 0 is out of range (this char tokenizer has ids 0..1)");
    ck_assert(tokenizer_decode(tok, ids, 0, &out, &len, err, sizeof err));
    ck_assert_uint_eq(len, 0);
    free(out);
    tokenizer_free(tok);
}
END_TEST

// Tokenizers of both kinds, trained on shakespeare and on broken UTF-8.
static Tokenizer **sample_tokenizers(int *count) {
    size_t len;
    unsigned char *text = shakespeare(&len);
    Tokenizer **t = xmalloc(4 * sizeof *t);
    t[0] = tokenizer_train_char(text, len);
    t[1] = tokenizer_train_bpe(text, len / 10, 420, false);
    const char odd[] = "a\xC3\xA9\xFF\x80 \xF0\x9F\x98\x80\xED\xA0\x80 a\xC3\xA9 \0 \xFF\xFF";
    t[2] = tokenizer_train_char(u8(odd), sizeof odd - 1);
    t[3] = tokenizer_train_bpe(u8(odd), sizeof odd - 1, 300, false);
    free(text);
    *count = 4;
    return t;
}

static void free_tokenizers(Tokenizer **t, int count) {
    for (int i = 0; i < count; i++) tokenizer_free(t[i]);
    free(t);
}

START_TEST(test_serialize_round_trip_encodes_identically) {
    int count;
    Tokenizer **toks = sample_tokenizers(&count);
    Rng r;
    rng_seed(&r, 7);
    size_t len;
    unsigned char *text = shakespeare(&len);
    for (int t = 0; t < count; t++) {
        size_t n;
        unsigned char *img = image_of(toks[t], &n);
        char err[256] = "";
        Tokenizer *back = tokenizer_deserialize(img, n, err, sizeof err);
        ck_assert_msg(back != NULL, "%s", err);
        ck_assert_int_eq(tokenizer_kind(back), tokenizer_kind(toks[t]));
        ck_assert_int_eq(tokenizer_vocab_size(back), tokenizer_vocab_size(toks[t]));
        ck_assert(same_image(back, toks[t]));
        for (int id = 0; id < tokenizer_vocab_size(back); id++) {
            size_t la, lb;
            const unsigned char *a = tokenizer_token_bytes(toks[t], id, &la), *b = tokenizer_token_bytes(back, id, &lb);
            ck_assert_uint_eq(la, lb);
            ck_assert_mem_eq(a, b, la);
        }
        for (int trial = 0; trial < 50; trial++) {
            const unsigned char *s = text + rng_below(&r, len - 2000);
            size_t k = rng_below(&r, 2000);
            int *ia, *ib;
            size_t na, nb;
            bool oka = tokenizer_encode(toks[t], s, k, &ia, &na, err, sizeof err);
            bool okb = tokenizer_encode(back, s, k, &ib, &nb, err, sizeof err);
            ck_assert_int_eq(oka, okb);
            if (oka) {
                ck_assert_uint_eq(na, nb);
                ck_assert_mem_eq(ia, ib, na * sizeof *ia);
                free(ia);
                free(ib);
            }
        }
        tokenizer_free(back);
        free(img);
    }
    free(text);
    free_tokenizers(toks, count);
}
END_TEST

START_TEST(test_deserialize_rejects_every_truncated_prefix) {
    int count;
    Tokenizer **toks = sample_tokenizers(&count);
    for (int t = 0; t < count; t++) {
        size_t n;
        unsigned char *img = image_of(toks[t], &n);
        for (size_t k = 0; k < n; k++) {
            unsigned char *copy = xmalloc(k + 1);  // exactly k bytes, so ASan sees any overread
            memcpy(copy, img, k);
            char err[256] = "";
            Tokenizer *back = tokenizer_deserialize(k ? copy : NULL, k, err, sizeof err);
            ck_assert_msg(back == NULL, "prefix of %zu of %zu bytes was accepted", k, n);
            ck_assert_msg(strstr(err, "truncated") != NULL, "prefix %zu: '%s'", k, err);
            free(copy);
        }
        // One byte too many is as wrong as one too few.
        unsigned char *longer = xmalloc(n + 1);
        memcpy(longer, img, n);
        longer[n] = 0;
        char err[256] = "";
        ck_assert_ptr_null(tokenizer_deserialize(longer, n + 1, err, sizeof err));
        ck_assert_msg(strstr(err, "unexpected bytes") != NULL, "'%s'", err);
        free(longer);
        free(img);
    }
    free_tokenizers(toks, count);
}
END_TEST

// Flipped bytes either fail with a reason or give a tokenizer that still keeps its promise.
START_TEST(test_deserialize_survives_random_corruption) {
    int count;
    Tokenizer **toks = sample_tokenizers(&count);
    Rng r;
    rng_seed(&r, 31337);
    unsigned char buf[300];
    int rejected = 0, accepted = 0;
    for (int t = 0; t < count; t++) {
        size_t n;
        unsigned char *img = image_of(toks[t], &n);
        unsigned char *bad = xmalloc(n);
        for (int trial = 0; trial < 400; trial++) {
            memcpy(bad, img, n);
            int flips = 1 + (int)rng_below(&r, 3);
            for (int f = 0; f < flips; f++) {
                size_t at = rng_below(&r, n);
                // Half the time flip one bit (a nearby value), else write a random byte.
                if (rng_below(&r, 2))
                    bad[at] ^= (unsigned char)(1u << rng_below(&r, 8));
                else
                    bad[at] = (unsigned char)rng_below(&r, 256);
            }
            char err[256] = "";
            Tokenizer *back = tokenizer_deserialize(bad, n, err, sizeof err);
            if (!back) {
                ck_assert_msg(err[0] != 0, "rejected without a reason");
                ck_assert_ptr_null(strchr(err, '\n'));
                rejected++;
                continue;
            }
            accepted++;
            for (int k = 0; k < 5; k++) {
                size_t len = random_text(&r, buf, sizeof buf, k % TEXT_MODES);
                int *ids;
                size_t m;
                if (tokenizer_encode(back, buf, len, &ids, &m, err, sizeof err)) {
                    free(ids);
                    assert_round_trip(back, buf, len);
                } else {
                    ck_assert_int_eq(tokenizer_kind(back), TOKENIZER_CHAR);
                    ck_assert(err[0] != 0);
                }
            }
            tokenizer_free(back);
        }
        free(bad);
        free(img);
    }
    ck_assert_int_gt(rejected, 100);
    ck_assert_int_gt(accepted, 10);  // e.g. a merge now joining two other earlier ids
    free_tokenizers(toks, count);
}
END_TEST

// Builds an image from u32 words.
static unsigned char *words_image(const uint32_t *w, size_t n, size_t *len) {
    unsigned char *img = xmalloc(4 * n);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) img[4 * i + b] = (unsigned char)(w[i] >> (8 * b));
    *len = 4 * n;
    return img;
}

static void assert_rejected(const uint32_t *w, size_t n, const char *reason) {
    size_t len;
    unsigned char *img = words_image(w, n, &len);
    char err[256] = "";
    Tokenizer *tok = tokenizer_deserialize(img, len, err, sizeof err);
    ck_assert_msg(tok == NULL, "accepted an image that should fail with '%s'", reason);
    ck_assert_msg(strstr(err, reason) != NULL, "'%s' does not say '%s'", err, reason);
    free(img);
}

START_TEST(test_deserialize_names_what_is_wrong) {
    // version, kind, vocab, count, payload...
    const uint32_t good_char[] = {1, 1, 3, 2, 'a', 'b', 0xFF};
    size_t len;
    unsigned char *img = words_image(good_char, 7, &len);
    char err[256];
    Tokenizer *tok = tokenizer_deserialize(img, len, err, sizeof err);
    ck_assert_ptr_nonnull(tok);
    assert_token(tok, 2, "\xFF", 1);
    tokenizer_free(tok);
    free(img);

    assert_rejected((const uint32_t[]){2, 1, 3, 2, 'a', 'b', 0xFF}, 7, "version 2");
    assert_rejected((const uint32_t[]){1, 3, 3, 2, 'a', 'b', 0xFF}, 7, "kind 3");
    assert_rejected((const uint32_t[]){1, 1, 3, 2, 'b', 'a', 0xFF}, 7, "not strictly increasing at id 1");
    assert_rejected((const uint32_t[]){1, 1, 3, 2, 'a', 'a', 0xFF}, 7, "not strictly increasing at id 1");
    assert_rejected((const uint32_t[]){1, 1, 3, 2, 'a', 0xD800, 0xFF}, 7, "not a Unicode scalar value");
    assert_rejected((const uint32_t[]){1, 1, 3, 2, 'a', 0x110000, 0xFF}, 7, "not a Unicode scalar value");
    assert_rejected((const uint32_t[]){1, 1, 3, 2, 'a', 'b', 0x41}, 7, "expected 0x80..0xFF");
    assert_rejected((const uint32_t[]){1, 1, 4, 2, 'a', 'b', 0xFF, 0xFF}, 8, "fallback bytes not strictly increasing");
    assert_rejected((const uint32_t[]){1, 1, 3, 4, 'a', 'b', 0xFF}, 7, "4 code points among only 3 ids");
    assert_rejected((const uint32_t[]){1, 1, 0x7FFFFFFF, 2, 'a'}, 5, "more than the");
    assert_rejected((const uint32_t[]){1, 1, 1000, 2, 'a'}, 5, "truncated");

    assert_rejected((const uint32_t[]){1, 2, 255, 0}, 4, "vocab size 255");
    assert_rejected((const uint32_t[]){1, 2, 258, 1, 'a', 'b'}, 6, "1 merges for vocab size 258");
    assert_rejected((const uint32_t[]){1, 2, 258, 2, 'a', 'b', 'a', 258}, 8, "merge 1 (id 257) uses id 258");
    assert_rejected((const uint32_t[]){1, 2, 258, 2, 'a', 256, 'a', 'b'}, 8, "merge 0 (id 256) uses id 256");
    assert_rejected((const uint32_t[]){1, 2, 258, 2, 'a', 'b', 'a', 'b'}, 8, "repeats the pair (97, 98) of id 256");
    assert_rejected((const uint32_t[]){1, 2, 0x7FFFFFFF, 0x7FFFFFFF - 256}, 4, "expected 256..");
    assert_rejected((const uint32_t[]){1, 2, 100000, 100000 - 256, 'a'}, 5, "truncated");
    // 40 merges, each doubling the last token: 2^40 bytes, refused before anything is built.
    uint32_t doubling[4 + 80] = {1, 2, 256 + 40, 40, 'a', 'a'};
    for (uint32_t m = 1; m < 40; m++) doubling[4 + 2 * m] = doubling[5 + 2 * m] = 255 + m;
    assert_rejected(doubling, 84, "size limit");
}
END_TEST

// ---------------------------------------------------------------------------------------------
// The file.

typedef struct {
    char dir[64];
    char path[128];
} TempDir;

static void temp_dir(TempDir *t) {
    strcpy(t->dir, "/tmp/gpt_tok_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
}

static const char *temp_path(TempDir *t, const char *name) {
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static void temp_cleanup(TempDir *t) {
    static const char *names[] = {"tok", "bad", "text", "ids", "out", "err", "in", "empty", "x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(temp_path(t, names[i]));
    rmdir(t->dir);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    char err[256];
    ck_assert_msg(write_file_atomic(path, data, n, err, sizeof err), "%s", err);
}

START_TEST(test_save_load_round_trip) {
    TempDir td;
    temp_dir(&td);
    int count;
    Tokenizer **toks = sample_tokenizers(&count);
    for (int t = 0; t < count; t++) {
        char err[256] = "";
        ck_assert_msg(tokenizer_save(toks[t], temp_path(&td, "tok"), err, sizeof err), "%s", err);
        Tokenizer *back = tokenizer_load(temp_path(&td, "tok"), err, sizeof err);
        ck_assert_msg(back != NULL, "%s", err);
        ck_assert(same_image(back, toks[t]));
        tokenizer_free(back);
    }
    // The file is the magic, the image and a CRC-32C of both.
    size_t n, flen;
    unsigned char *img = image_of(toks[count - 1], &n);
    char err[256];
    unsigned char *file = read_file(temp_path(&td, "tok"), &flen, err, sizeof err);
    ck_assert_uint_eq(flen, 8 + n + 4);
    ck_assert_mem_eq(file, "GPTTOK1\n", 8);
    ck_assert_mem_eq(file + 8, img, n);
    uint32_t crc = crc32c(0, file, 8 + n);
    ck_assert_uint_eq(file[8 + n] | file[9 + n] << 8 | file[10 + n] << 16 | (uint32_t)file[11 + n] << 24, crc);
    free(file);
    free(img);
    free_tokenizers(toks, count);
    temp_cleanup(&td);
}
END_TEST

static void assert_load_fails(const char *path, const char *reason) {
    char err[512] = "";
    Tokenizer *tok = tokenizer_load(path, err, sizeof err);
    ck_assert_msg(tok == NULL, "loaded a file that should fail with '%s'", reason);
    ck_assert_msg(strstr(err, reason) != NULL, "'%s' does not say '%s'", err, reason);
    ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_load_of_bad_files_fails_with_a_message) {
    TempDir td;
    temp_dir(&td);
    Tokenizer *tok = tokenizer_train_bpe(u8("ab ab ab ab"), 11, 300, false);
    char err[256];
    ck_assert(tokenizer_save(tok, temp_path(&td, "tok"), err, sizeof err));
    size_t n;
    unsigned char *file = read_file(temp_path(&td, "tok"), &n, err, sizeof err);

    assert_load_fails(temp_path(&td, "missing"), "cannot open");
    assert_load_fails(td.dir, "is a directory");
    write_bytes(temp_path(&td, "empty"), "", 0);
    assert_load_fails(temp_path(&td, "empty"), "is empty");
    write_bytes(temp_path(&td, "bad"), "hello world, not a tokenizer", 28);
    assert_load_fails(temp_path(&td, "bad"), "not a tokenizer file");
    for (size_t k = 1; k < n; k++) {  // every truncation
        write_bytes(temp_path(&td, "bad"), file, k);
        char e[512] = "";
        ck_assert_ptr_null(tokenizer_load(temp_path(&td, "bad"), e, sizeof e));
        ck_assert(e[0] != 0);
    }
    for (size_t at = 0; at < n; at++) {  // every single-bit flip
        file[at] ^= 0x10;
        write_bytes(temp_path(&td, "bad"), file, n);
        file[at] ^= 0x10;
        char e[512] = "";
        ck_assert_ptr_null(tokenizer_load(temp_path(&td, "bad"), e, sizeof e));
        ck_assert_msg(strstr(e, at < 8 ? "not a tokenizer file" : "checksum") != NULL, "flip at %zu: '%s'", at, e);
    }
    // A correct checksum over a malformed image: the image's own reason, with the path.
    unsigned char *fake = xmalloc(n);
    memcpy(fake, file, n);
    fake[8] = 9;  // version 9
    uint32_t crc = crc32c(0, fake, n - 4);
    for (int b = 0; b < 4; b++) fake[n - 4 + b] = (unsigned char)(crc >> (8 * b));
    write_bytes(temp_path(&td, "bad"), fake, n);
    assert_load_fails(temp_path(&td, "bad"), "version 9");
    assert_load_fails(temp_path(&td, "bad"), temp_path(&td, "bad"));
    free(fake);
    free(file);
    tokenizer_free(tok);
    temp_cleanup(&td);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// The command line. Each run is a child process: the command may exit (cli_fail, cli_misuse)
// rather than return, and its stdin, stdout and stderr are files.

typedef struct {
    int status;
    char *out, *err;
    size_t out_len;
} CmdResult;

static CmdResult run_cmd(TempDir *td, const char *stdin_path, const char **args) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/out", td->dir);
    snprintf(err_path, sizeof err_path, "%s/err", td->dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[32];
        int argc = 0;
        argv[argc++] = "tokenizer";
        while (args[argc - 1] && argc < 31) argv[argc] = (char *)args[argc - 1], argc++;
        argv[argc] = NULL;
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(99);
        exit(cmd_tokenizer(argc, argv));  // exit, not _exit: stdout is flushed as by main
    }
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFEXITED(wstatus), "the command died of signal %d", WTERMSIG(wstatus));
    CmdResult res = {.status = WEXITSTATUS(wstatus)};
    char e[256];
    size_t err_len;
    res.out = (char *)read_file(out_path, &res.out_len, e, sizeof e);
    res.err = (char *)read_file(err_path, &err_len, e, sizeof e);
    ck_assert(res.out && res.err);
    return res;
}

static void cmd_free(CmdResult *r) {
    free(r->out);
    free(r->err);
}

// A failed command: the status (2 for misuse of the command line, 1 for a bad value or file),
// nothing on stdout, and one line on stderr, "error: ...", that names the problem.
static void assert_cmd_fails(TempDir *td, const char *stdin_path, const char **args, int status, const char *reason) {
    CmdResult r = run_cmd(td, stdin_path, args);
    ck_assert_msg(r.status == status, "status %d, expected %d; stderr: %s", r.status, status, r.err);
    ck_assert_uint_eq(r.out_len, 0);
    ck_assert_msg(strncmp(r.err, "error: ", 7) == 0, "stderr: '%s'", r.err);
    ck_assert_msg(strstr(r.err, reason) != NULL, "'%s' does not say '%s'", r.err, reason);
    ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
    cmd_free(&r);
}

START_TEST(test_cli_train_encode_decode_vocab) {
    TempDir td;
    temp_dir(&td);
    char tok_path[128], text_path[128], ids_path[128];
    snprintf(tok_path, sizeof tok_path, "%s/tok", td.dir);
    snprintf(text_path, sizeof text_path, "%s/text", td.dir);
    snprintf(ids_path, sizeof ids_path, "%s/ids", td.dir);
    const char text[] = "to be, or not to be: that is the question \xC3\xA9\xFF\n";
    write_bytes(text_path, text, sizeof text - 1);
    const char *kinds[][2] = {{"char", NULL}, {"bpe", "300"}};
    for (int k = 0; k < 2; k++) {
        const char *train[] = {"train",     "--data",      text_path,   "--out",
                               tok_path,    "--tokenizer", kinds[k][0], kinds[k][1] ? "--vocab-size" : NULL,
                               kinds[k][1], NULL};
        CmdResult r = run_cmd(&td, NULL, train);
        ck_assert_msg(r.status == 0, "%s", r.err);
        ck_assert_ptr_nonnull(strstr(r.err, "vocab size"));
        cmd_free(&r);

        const char *encode[] = {"encode", "--tokenizer-file", tok_path, NULL};
        r = run_cmd(&td, text_path, encode);
        ck_assert_msg(r.status == 0, "%s", r.err);
        ck_assert(r.out_len > 0 && r.out[r.out_len - 1] == '\n');
        write_bytes(ids_path, r.out, r.out_len);
        cmd_free(&r);

        const char *decode[] = {"decode", "--tokenizer-file", tok_path, "--input", ids_path, NULL};
        r = run_cmd(&td, NULL, decode);
        ck_assert_msg(r.status == 0, "%s", r.err);
        ck_assert_uint_eq(r.out_len, sizeof text - 1);
        ck_assert_mem_eq(r.out, text, sizeof text - 1);
        cmd_free(&r);

        const char *vocab[] = {"vocab", "--tokenizer-file", tok_path, NULL};
        r = run_cmd(&td, NULL, vocab);
        ck_assert_int_eq(r.status, 0);
        if (k == 0) {
            const char *head = "0\t\"\\n\"\n1\t\" \"\n2\t\",\"\n";
            ck_assert_msg(strncmp(r.out, head, strlen(head)) == 0, "%s", r.out);
            ck_assert_ptr_nonnull(strstr(r.out, "\t\"\\xFF\"\n"));
        } else {
            ck_assert_ptr_nonnull(strstr(r.out, "\n255\t\"\\xFF\"\n256\t\""));
        }
        cmd_free(&r);
    }
    // The char file encodes as expected: ids in sorted-character order.
    const char *train[] = {"train", "--data", text_path, "--out", tok_path, NULL};
    CmdResult r = run_cmd(&td, NULL, train);
    ck_assert_int_eq(r.status, 0);
    cmd_free(&r);
    write_bytes(text_path, "be be\n", 6);
    const char *encode[] = {"encode", "--tokenizer-file", tok_path, "--input", text_path, NULL};
    r = run_cmd(&td, NULL, encode);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "5 6 1 5 6 0\n");
    cmd_free(&r);
    temp_cleanup(&td);
}
END_TEST

START_TEST(test_cli_bad_input_fails_with_one_line_and_no_file) {
    TempDir td;
    temp_dir(&td);
    char tok[128], text[128], empty[128], out[128], ids[128];
    snprintf(tok, sizeof tok, "%s/tok", td.dir);
    snprintf(text, sizeof text, "%s/text", td.dir);
    snprintf(empty, sizeof empty, "%s/empty", td.dir);
    snprintf(out, sizeof out, "%s/x", td.dir);
    snprintf(ids, sizeof ids, "%s/ids", td.dir);
    write_bytes(text, "abc abc\n", 8);
    write_bytes(empty, "", 0);
    const char *train[] = {"train", "--data", text, "--out", tok, NULL};
    CmdResult r = run_cmd(&td, NULL, train);  // a char tokenizer of "\n", " ", a, b, c: ids 0..4
    ck_assert_int_eq(r.status, 0);
    cmd_free(&r);

    // What a person might get wrong; stdin_text, when set, is written to a file given as stdin.
    struct {
        const char *args[12];
        const char *stdin_text;
        int status;
        const char *reason;
    } cases[] = {
        {{NULL}, NULL, 2, "missing tokenizer command"},
        {{"frobnicate"}, NULL, 2, "unknown tokenizer command 'frobnicate'"},
        {{"train", "--out", out}, NULL, 1, "missing --data"},
        {{"train", "--data", text}, NULL, 1, "missing --out"},
        {{"train", "--data", empty, "--out", out}, NULL, 1, "is empty"},
        {{"train", "--data", "/nonexistent/x", "--out", out}, NULL, 1, "cannot open '/nonexistent/x'"},
        {{"train", "--data", text, "--out", out, "--colour"}, NULL, 2, "tokenizer train: unknown option '--colour'"},
        {{"train", "--data", text, "--out"}, NULL, 2, "tokenizer train: option '--out' needs a value"},
        {{"train", "--data", text, "--out", out, "stray"}, NULL, 2, "tokenizer train: unexpected argument 'stray'"},
        {{"train", "--data", text, "--out", out, "--tokenizer", "wordpiece"},
         NULL,
         1,
         "--tokenizer 'wordpiece' is not a tokenizer kind; expected char or bpe"},
        {{"train", "--data", text, "--out", out, "--tokenizer", "bpe", "--vocab-size", "255"},
         NULL,
         1,
         "--vocab-size expects a whole number from 256 to 1048576, got '255'"},
        {{"train", "--data", text, "--out", out, "--tokenizer", "bpe", "--vocab-size", "5k"}, NULL, 1, "got '5k'"},
        {{"train", "--data", text, "--out", out, "--tokenizer", "bpe", "--vocab-size", "2000000"},
         NULL,
         1,
         "got '2000000'"},
        {{"train", "--data", text, "--out", out, "--tokenizer", "bpe", "--vocab-size", "-99999999999999999999"},
         NULL,
         1,
         "got '-99999999999999999999'"},
        {{"train", "--data", text, "--out", out, "--vocab-size", "300"},
         NULL,
         1,
         "--vocab-size applies to --tokenizer bpe only"},
        {{"encode"}, NULL, 1, "missing --tokenizer-file"},
        {{"encode", "--tokenizer-file", text}, NULL, 1, "is not a tokenizer file"},
        {{"encode", "--tokenizer-file", empty}, NULL, 1, "is empty"},
        {{"encode", "--tokenizer-file", tok, "--input", "/nonexistent/y"}, NULL, 1, "cannot open '/nonexistent/y'"},
        {{"encode", "--tokenizer-file", tok},
         "abcd",
         1,
         "cannot encode standard input: character 'd' (U+0064) at byte 3 is not in the vocabulary"},
        {{"encode", "--tokenizer-file", tok, "one", "two"}, NULL, 2, "tokenizer encode: unexpected argument 'one'"},
        {{"decode", "--tokenizer-file", tok}, "1 2\n 3x 4", 1, "\"3x\" (item 3 of standard input) is not a token id"},
        {{"decode", "--tokenizer-file", tok, "--input", ids}, "0 5", 1, "token id 5 (item 2 of '"},
        {{"decode", "--tokenizer-file", tok}, "-1", 1, "token id -1 (item 1 of standard input) is out of range"},
        {{"decode", "--tokenizer-file", tok},
         "123456789012345678901234567890",
         1,
         "is out of range; this tokenizer has ids 0..4"},
        {{"decode", "--tokenizer-file", tok, "--bogus"}, NULL, 2, "tokenizer decode: unknown option '--bogus'"},
        {{"vocab"}, NULL, 1, "missing --tokenizer-file"},
        {{"vocab", "--tokenizer-file", tok, "-q"}, NULL, 2, "tokenizer vocab: unknown option '-q'"},
        {{"vocab", "--tokenizer-file"}, NULL, 2, "tokenizer vocab: option '--tokenizer-file' needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].stdin_text) write_bytes(ids, cases[i].stdin_text, strlen(cases[i].stdin_text));
        assert_cmd_fails(&td, cases[i].stdin_text ? ids : NULL, cases[i].args, cases[i].status, cases[i].reason);
    }
    write_bytes(ids, "1\0002", 3);  // a NUL inside a word, shown escaped
    assert_cmd_fails(&td, ids, (const char *[]){"decode", "--tokenizer-file", tok, NULL}, 1,
                     "\"1\\x002\" (item 1 of standard input) is not a token id");
    struct stat st;
    ck_assert_int_ne(stat(out, &st), 0);  // no failed train left a file

    // --help succeeds, on stdout, for every command.
    const char *helps[][3] = {
        {"--help"}, {"train", "--help"}, {"encode", "--help"}, {"decode", "-h"}, {"vocab", "--help"}};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        r = run_cmd(&td, NULL, helps[i]);
        ck_assert_int_eq(r.status, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "usage: gpt tokenizer"));
        ck_assert_uint_eq(strlen(r.err), 0);
        cmd_free(&r);
    }
    temp_cleanup(&td);
}
END_TEST

Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("char");
    tcase_add_test(tc, test_char_shakespeare_has_pythons_65_sorted_ids);
    tcase_add_test(tc, test_char_multibyte_utf8_sorted_by_code_point);
    tcase_add_test(tc, test_char_invalid_utf8_becomes_one_fallback_token_per_byte);
    tcase_add_test(tc, test_char_utf8_decoder_is_strict_at_every_boundary);
    tcase_add_test(tc, test_char_encode_names_missing_character_and_offset);
    tcase_add_test(tc, test_char_empty_text_gives_empty_vocabulary);
    tcase_add_test(tc, test_char_one_repeated_character);
    tcase_add_test(tc, test_char_random_bytes_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("bpe");
    tcase_add_test(tc, test_bpe_learns_aa_then_aaaa_on_repeated_letter);
    tcase_add_test(tc, test_bpe_ab_ab_learns_ab_then_space_ab_and_stops);
    tcase_add_test(tc, test_bpe_ties_go_to_the_smallest_pair);
    tcase_add_test(tc, test_bpe_merges_never_cross_chunk_boundaries);
    tcase_add_test(tc, test_bpe_stops_early_when_no_pair_repeats);
    tcase_add_test(tc, test_bpe_empty_text_gives_the_256_bytes);
    tcase_add_test_raise_signal(tc, test_bpe_vocab_below_256_is_a_caller_bug, SIGABRT);
    tcase_add_test(tc, test_bpe_shakespeare_512_compresses_and_round_trips);
    tcase_add_test(tc, test_bpe_random_bytes_round_trip);
    tcase_add_test(tc, test_bpe_long_chunk_encodes_and_round_trips);
    tcase_add_test(tc, test_bpe_incremental_training_matches_naive_recount);
    tcase_add_test(tc, test_training_is_deterministic);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, test_kind_names_and_out_of_range_ids);
    tcase_add_test(tc, test_serialize_round_trip_encodes_identically);
    tcase_add_test(tc, test_deserialize_rejects_every_truncated_prefix);
    tcase_add_test(tc, test_deserialize_survives_random_corruption);
    tcase_add_test(tc, test_deserialize_names_what_is_wrong);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_load_of_bad_files_fails_with_a_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("cli");
    tcase_add_test(tc, test_cli_train_encode_decode_vocab);
    tcase_add_test(tc, test_cli_bad_input_fails_with_one_line_and_no_file);
    suite_add_tcase(s, tc);
    return s;
}
