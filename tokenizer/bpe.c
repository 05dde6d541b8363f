// bpe.c -- the byte-level BPE tokenizer: training and encoding.
//
// Ids 0..255 are the bytes themselves. Merge i joins two earlier ids into id 256 + i, and that
// token's bytes are its two parts' bytes, concatenated; so any byte string encodes, and the
// tokens' bytes always concatenate back to the text.
//
// Training and encoding both cut the text into chunks first (tokenizer_bpe_chunk_len) and merge
// only inside a chunk, as GPT-2 does: tokens become pieces of words, not spans across them, and
// a text has far fewer distinct chunks than chunks, so training counts each distinct chunk once
// with its multiplicity and encoding caches each distinct chunk's ids.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tokenizer/internal.h"

// ---------------------------------------------------------------------------------------------
// The pre-split.

enum { CLASS_LETTER, CLASS_DIGIT, CLASS_SPACE, CLASS_OTHER, CLASS_NUL };

// Bytes >= 0x80 count as letters, so that a UTF-8 word (and any run of raw high bytes) stays in
// one chunk. NUL is a class of its own, always a chunk by itself, so that chunks of two or more
// bytes never hold a NUL and can key the encoder's string-keyed cache.
static inline int byte_class(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CLASS_LETTER;
    if (c >= '0' && c <= '9') return CLASS_DIGIT;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return CLASS_SPACE;
    if (c == 0) return CLASS_NUL;
    return CLASS_OTHER;
}

// A chunk is, like GPT-2's pre-tokenizer: an English contraction ('s 't 'm 'd 're 've 'll);
// an optional space and then a run of letters, or of digits, or of other symbols; a run of
// whitespace, which leaves its last space to the word after it, so " the" is one chunk
// however many spaces come before it; or a lone NUL.
size_t tokenizer_bpe_chunk_len(const unsigned char *t, size_t len, size_t i) {
    assert(i < len);
    unsigned char c = t[i];
    if (c == '\'' && i + 1 < len) {
        unsigned char d = t[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
        if (i + 2 < len &&
            ((d == 'r' && t[i + 2] == 'e') || (d == 'v' && t[i + 2] == 'e') || (d == 'l' && t[i + 2] == 'l')))
            return 3;
    }
    int cls = byte_class(c);
    if (cls == CLASS_NUL) return 1;
    size_t j = i;
    if (c == ' ' && i + 1 < len) {
        int next = byte_class(t[i + 1]);
        if (next != CLASS_SPACE && next != CLASS_NUL) {
            j = i + 1;
            cls = next;
        }
    }
    size_t e = j + 1;
    while (e < len && byte_class(t[e]) == cls) e++;
    if (cls == CLASS_SPACE && e < len && e - i > 1 && t[e - 1] == ' ' && byte_class(t[e]) != CLASS_NUL) e--;
    return e - i;
}

// Whether every pre-split puts a chunk boundary before t[p], whatever came before t[p - 1]
// (p >= 1; t[p - 1] and t[p] are read). A sufficient rule, local to two bytes: the classes
// of t[p - 1] and t[p] differ, and t[p - 1] is neither a space (which would join the word
// after it) nor an apostrophe (which could open a contraction). A chunk holding t[p - 1] then
// ends at p: a run holds one class, a contraction starting at p - 1 needs an apostrophe there
// and one starting earlier holds letters only, and an optional leading space is the first
// byte of its chunk. Since a chunk is decided by the bytes from its start onwards, the
// chunks after p are those of t[p..] alone, and those before p those of t[..p) alone.
bool tokenizer_bpe_boundary(const unsigned char *t, size_t p) {
    unsigned char a = t[p - 1], b = t[p];
    return byte_class(a) != byte_class(b) && a != ' ' && a != '\'';
}

// ---------------------------------------------------------------------------------------------
// Training.
//
// Each distinct chunk (a "word") holds its current ids and its multiplicity. The pair table
// holds every adjacent pair's count over the text and the words that have held it. A merge of
// (a, b) visits only the words listed for (a, b), rewrites them, and adjusts the counts of the
// pairs around each occurrence -- never a recount of the text. A max-heap with lazy deletion
// finds the next pair: an entry whose count no longer matches the table is stale and skipped.

typedef struct {
    int *ids;  // (n) the chunk's current token ids, rewritten in place by merges
    int n;
    int64_t weight;  // how many times the chunk occurs in the text
    int stamp;       // the last merge step that rewrote this word
} BpeWord;

typedef struct {
    int left, right;
    int64_t count;  // occurrences in the text, each weighted by its word's multiplicity
    int *words;     // stb_ds array: words that have held this pair (may repeat or be stale)
    int last_word;  // the word appended last, to skip the commonest repeat
    int stamp;      // the last merge step that changed the count
} BpePair;

typedef struct {
    int64_t count;
    int left, right;
    int pair;  // index into BpeTrainer.pairs
} BpeHeapEntry;

typedef struct {
    BpeWord *words;        // stb_ds array
    BpePair *pairs;        // stb_ds array
    TokIdMap *pair_index;  // stb_ds map: bpe_pair_key(left, right) -> index into pairs
    BpeHeapEntry *heap;    // stb_ds array, a binary max-heap
    int *touched;          // stb_ds array: pairs whose count changed in this step
    int step;
} BpeTrainer;

// The heap's order, which is also the tie-break: the higher count first, then the smaller
// (left, right) pair, so training is deterministic whatever the hash maps' layout.
static bool heap_above(const BpeHeapEntry *x, const BpeHeapEntry *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->left != y->left) return x->left < y->left;
    return x->right < y->right;
}

static void heap_push(BpeTrainer *tr, BpeHeapEntry e) {
    arrput(tr->heap, e);
    size_t i = arrlenu(tr->heap) - 1;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_above(&tr->heap[i], &tr->heap[parent])) break;
        BpeHeapEntry t = tr->heap[i];
        tr->heap[i] = tr->heap[parent];
        tr->heap[parent] = t;
        i = parent;
    }
}

static BpeHeapEntry heap_pop(BpeTrainer *tr) {
    BpeHeapEntry top = tr->heap[0];
    BpeHeapEntry last = arrpop(tr->heap);
    size_t n = arrlenu(tr->heap);
    if (n == 0) return top;
    size_t i = 0;
    for (;;) {
        size_t best = i, l = 2 * i + 1, r = l + 1;
        const BpeHeapEntry *b = &last;
        if (l < n && heap_above(&tr->heap[l], b)) best = l, b = &tr->heap[l];
        if (r < n && heap_above(&tr->heap[r], b)) best = r;
        if (best == i) break;
        tr->heap[i] = tr->heap[best];
        i = best;
    }
    tr->heap[i] = last;
    return top;
}

// Adds delta to the count of pair (a, b) as seen in word w.
static void pair_add(BpeTrainer *tr, int a, int b, int64_t delta, int w) {
    uint64_t key = bpe_pair_key(a, b);
    ptrdiff_t slot = hmgeti(tr->pair_index, key);
    int p;
    if (slot < 0) {
        assert(delta > 0);
        p = (int)arrlen(tr->pairs);
        BpePair np = {.left = a, .right = b, .count = 0, .words = NULL, .last_word = -1, .stamp = -1};
        arrput(tr->pairs, np);
        hmput(tr->pair_index, key, p);
    } else {
        p = tr->pair_index[slot].value;
    }
    BpePair *pr = &tr->pairs[p];
    pr->count += delta;
    assert(pr->count >= 0);
    if (delta > 0 && pr->last_word != w) {
        arrput(pr->words, w);
        pr->last_word = w;
    }
    if (pr->stamp != tr->step) {
        pr->stamp = tr->step;
        arrput(tr->touched, p);
    }
}

// Pushes this step's changed pairs; a pair seen fewer than twice is never merged, so it is
// left out.
static void push_touched(BpeTrainer *tr) {
    for (ptrdiff_t k = 0; k < arrlen(tr->touched); k++) {
        const BpePair *pr = &tr->pairs[tr->touched[k]];
        if (pr->count >= 2) heap_push(tr, (BpeHeapEntry){pr->count, pr->left, pr->right, tr->touched[k]});
    }
    if (tr->touched) arrdeln(tr->touched, 0, arrlen(tr->touched));
}

// Replaces every occurrence of pair p by new_id, left to right (so "aaa" becomes [aa, a]).
// Around an occurrence x a b y, the pairs (x,a) (a,b) (b,y) go and (x,new) (new,y) come; x is
// read from the rewritten prefix, so back-to-back occurrences (a b a b) come out right.
static void merge_pair(BpeTrainer *tr, int p, int new_id) {
    int a = tr->pairs[p].left, b = tr->pairs[p].right;
    // (a, b) never forms again: a new neighbour pair always holds the new id. So its word list
    // is done with. (Held locally: pair_add may move tr->pairs, but not this array.)
    int *list = tr->pairs[p].words;
    tr->pairs[p].words = NULL;
    for (ptrdiff_t k = 0; k < arrlen(list); k++) {
        int w = list[k];
        BpeWord *wd = &tr->words[w];
        if (wd->stamp == tr->step) continue;
        wd->stamp = tr->step;
        int *s = wd->ids;
        int n = wd->n, j = 0;
        int64_t wt = wd->weight;
        for (int i = 0; i < n;) {
            if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                if (j > 0) {
                    pair_add(tr, s[j - 1], a, -wt, w);
                    pair_add(tr, s[j - 1], new_id, wt, w);
                }
                if (i + 2 < n) {
                    pair_add(tr, b, s[i + 2], -wt, w);
                    pair_add(tr, new_id, s[i + 2], wt, w);
                }
                tr->pairs[p].count -= wt;
                s[j++] = new_id;
                i += 2;
            } else {
                s[j++] = s[i++];
            }
        }
        wd->n = j;
    }
    arrfree(list);
    assert(tr->pairs[p].count == 0);  // every occurrence was found through the word list
}

// Collects the distinct chunks of two or more bytes (a one-byte chunk holds no pair), piece
// by piece: the chunk index lives between pieces, so a text fed in pieces cut at chunk
// boundaries (tokenizer_cut) gives the words, weights and order of the whole text at once.
struct BpeCollector {
    BpeTrainer tr;
    struct {
        char *key;
        int value;
    } *index;  // stb_ds string map: chunk -> word
    char *key;
    size_t key_cap;
    uint64_t bytes;  // fed so far
};

BpeCollector *tokenizer_bpe_collector_new(void) {
    BpeCollector *c = xcalloc(1, sizeof *c);
    sh_new_strdup(c->index);
    return c;
}

void tokenizer_bpe_collector_add(BpeCollector *c, const unsigned char *text, size_t len) {
    BpeTrainer *tr = &c->tr;
    for (size_t i = 0; i < len;) {
        size_t n = tokenizer_bpe_chunk_len(text, len, i);
        if (n >= 2) {
            if (n + 1 > c->key_cap) {
                c->key_cap = 2 * (n + 1);
                c->key = xrealloc(c->key, c->key_cap);
            }
            memcpy(c->key, text + i, n);
            c->key[n] = 0;
            ptrdiff_t slot = shgeti(c->index, c->key);
            if (slot >= 0) {
                tr->words[c->index[slot].value].weight++;
            } else {
                assert(n <= (size_t)INT32_MAX);
                BpeWord w = {.ids = xmalloc(n * sizeof(int)), .n = (int)n, .weight = 1, .stamp = -1};
                for (size_t k = 0; k < n; k++) w.ids[k] = text[i + k];
                shput(c->index, c->key, (int)arrlen(tr->words));
                arrput(tr->words, w);
            }
        }
        i += n;
    }
    c->bytes += len;
}

void tokenizer_bpe_collector_free(BpeCollector *c) {
    if (!c) return;
    for (ptrdiff_t w = 0; w < arrlen(c->tr.words); w++) free(c->tr.words[w].ids);
    arrfree(c->tr.words);
    free(c->key);
    shfree(c->index);
    free(c);
}

Tokenizer *tokenizer_train_bpe(const unsigned char *text, size_t len, int vocab_size, bool progress) {
    double t0 = now_seconds();
    BpeCollector *c = tokenizer_bpe_collector_new();
    tokenizer_bpe_collector_add(c, text, len);
    return tokenizer_bpe_collector_finish(c, vocab_size, progress, t0);
}

Tokenizer *tokenizer_bpe_collector_finish(BpeCollector *c, int vocab_size, bool progress, double t0) {
    // The caller validates flags: 256 byte tokens are the minimum, and an image with more than
    // TOKENIZER_MAX_VOCAB ids would not load back.
    BpeTrainer tr = c->tr;
    uint64_t len = c->bytes;
    free(c->key);
    shfree(c->index);
    free(c);
    assert(vocab_size >= 256 && vocab_size <= TOKENIZER_MAX_VOCAB);
    if (vocab_size < 256 || vocab_size > TOKENIZER_MAX_VOCAB) {
        for (ptrdiff_t w = 0; w < arrlen(tr.words); w++) free(tr.words[w].ids);
        arrfree(tr.words);
        return NULL;
    }
    double last_print = t0;
    bool printed = false;
    if (progress && now_seconds() - t0 >= 1.0) {
        fprintf(stderr, "bpe: %llu bytes in %td distinct chunks, %.1f s\n", (unsigned long long)len, arrlen(tr.words),
                now_seconds() - t0);
        printed = true;
    }

    tr.step = 0;
    for (ptrdiff_t w = 0; w < arrlen(tr.words); w++)
        for (int i = 0; i + 1 < tr.words[w].n; i++)
            pair_add(&tr, tr.words[w].ids[i], tr.words[w].ids[i + 1], tr.words[w].weight, (int)w);
    push_touched(&tr);

    int target = vocab_size - 256;
    int *merges = NULL;  // stb_ds array of (left, right)
    size_t *tok_len = xmalloc((size_t)vocab_size * sizeof *tok_len);
    size_t total_bytes = 256;
    for (int b = 0; b < 256; b++) tok_len[b] = 1;
    int n_merges = 0;
    const char *stopped = NULL;
    while (n_merges < target) {
        int best = -1;
        while (arrlen(tr.heap) > 0) {
            BpeHeapEntry e = heap_pop(&tr);
            if (tr.pairs[e.pair].count == e.count) {
                best = e.pair;
                break;
            }
        }
        if (best < 0) {
            stopped = "no pair of tokens occurs twice or more";
            break;
        }
        int a = tr.pairs[best].left, b = tr.pairs[best].right, new_id = 256 + n_merges;
        if (total_bytes + tok_len[a] + tok_len[b] > TOKENIZER_MAX_TOKEN_BYTES) {
            stopped = "the tokens' bytes reached the size limit";
            break;
        }
        tok_len[new_id] = tok_len[a] + tok_len[b];
        total_bytes += tok_len[new_id];
        arrput(merges, a);
        arrput(merges, b);
        tr.step = n_merges + 1;
        merge_pair(&tr, best, new_id);
        push_touched(&tr);
        n_merges++;
        if (progress && (n_merges & 63) == 0) {
            double now = now_seconds();
            if (now - last_print >= 1.0) {
                fprintf(stderr, "bpe: %d/%d merges, %.1f s\n", n_merges, target, now - t0);
                last_print = now;
                printed = true;
            }
        }
    }
    if (progress && stopped)
        warn("bpe: stopped after %d of %d merges because %s; the vocabulary has %d tokens, not %d", n_merges, target,
             stopped, 256 + n_merges, vocab_size);
    else if (printed)
        fprintf(stderr, "bpe: %d/%d merges, %.1f s\n", n_merges, target, now_seconds() - t0);

    for (ptrdiff_t w = 0; w < arrlen(tr.words); w++) free(tr.words[w].ids);
    arrfree(tr.words);
    for (ptrdiff_t p = 0; p < arrlen(tr.pairs); p++) arrfree(tr.pairs[p].words);
    arrfree(tr.pairs);
    hmfree(tr.pair_index);
    arrfree(tr.heap);
    arrfree(tr.touched);
    free(tok_len);

    Tokenizer *tok = tokenizer_alloc(TOKENIZER_BPE);
    tok->vocab_size = 256 + n_merges;
    tok->n_merges = n_merges;
    tok->merges = xmalloc(((size_t)n_merges * 2 + 1) * sizeof *tok->merges);
    if (n_merges) memcpy(tok->merges, merges, (size_t)n_merges * 2 * sizeof *tok->merges);
    arrfree(merges);
    tokenizer_bpe_build(tok);
    return tok;
}

void tokenizer_bpe_build(Tokenizer *tok) {
    assert(tok->kind == TOKENIZER_BPE && tok->vocab_size == 256 + tok->n_merges);
    int v = tok->vocab_size;
    tok->offsets = xmalloc(((size_t)v + 1) * sizeof *tok->offsets);
    size_t total = 256;
    // Lengths first (the offsets array holds them for now), then the bytes in one block.
    for (int id = 0; id < 256; id++) tok->offsets[id] = 1;
    for (int m = 0; m < tok->n_merges; m++) {
        size_t n = tok->offsets[tok->merges[2 * m]] + tok->offsets[tok->merges[2 * m + 1]];
        tok->offsets[256 + m] = n;
        total += n;
    }
    assert(total <= TOKENIZER_MAX_TOKEN_BYTES);  // training stops short of it, deserialize refuses more
    tok->bytes = xmalloc(total + 1);
    size_t off = 0;
    for (int id = 0; id < v; id++) {
        size_t n = tok->offsets[id];
        tok->offsets[id] = off;
        if (id < 256) {
            tok->bytes[off] = (unsigned char)id;
        } else {
            int l = tok->merges[2 * (id - 256)], r = tok->merges[2 * (id - 256) + 1];
            assert(l >= 0 && l < id && r >= 0 && r < id);       // validated by the caller
            size_t nl = tok->offsets[l + 1] - tok->offsets[l];  // l < id: its offsets are final
            memcpy(tok->bytes + off, tok->bytes + tok->offsets[l], nl);
            memcpy(tok->bytes + off + nl, tok->bytes + tok->offsets[r], n - nl);
        }
        off += n;
    }
    tok->offsets[v] = off;
    for (int m = 0; m < tok->n_merges; m++)
        hmput(tok->merge_ids, bpe_pair_key(tok->merges[2 * m], tok->merges[2 * m + 1]), 256 + m);
}

// ---------------------------------------------------------------------------------------------
// Encoding.
//
// Inside a chunk the merges apply in training order: the lowest merged id first and, among
// equal ones, the leftmost first -- what training did to the same chunk. A merge only creates
// pairs that merge later than itself (their merged id is higher), so a min-heap of candidate
// pairs over a linked list of the chunk's tokens does it in O(n log n), even for a chunk of
// megabytes (a text without spaces).

typedef struct {
    int rank;  // the merged id
    ptrdiff_t pos;
} MergeCandidate;

typedef struct {
    int *id;                 // (cap) the token starting at each position; -1 once merged away
    ptrdiff_t *next, *prev;  // (cap) the linked list of live positions
    MergeCandidate *heap;    // (3 * cap) a chunk of n bytes pushes at most n - 1 + 2 (n - 1)
    size_t cap;
} MergeWork;

// Chunks longer than this are encoded without the cache: long chunks rarely repeat, and
// caching them would only copy them.
#define BPE_CACHE_MAX_CHUNK 256

typedef struct {
    size_t start;  // into the cache's pool of ids
    int n;
} BpeCached;

static int merge_rank(TokIdMap *merge_ids, int a, int b) {
    // hmgeti_ts leaves the map untouched, so several threads may encode with one tokenizer.
    ptrdiff_t tmp;
    ptrdiff_t slot = hmgeti_ts(merge_ids, bpe_pair_key(a, b), tmp);
    return slot < 0 ? -1 : merge_ids[slot].value;
}

static bool candidate_before(const MergeCandidate *x, const MergeCandidate *y) {
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void candidate_push(MergeCandidate *heap, size_t *n, MergeCandidate c) {
    size_t i = (*n)++;
    while (i > 0 && candidate_before(&c, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = c;
}

static MergeCandidate candidate_pop(MergeCandidate *heap, size_t *n) {
    MergeCandidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t best = i, l = 2 * i + 1, r = l + 1;
        const MergeCandidate *b = &last;
        if (l < *n && candidate_before(&heap[l], b)) best = l, b = &heap[l];
        if (r < *n && candidate_before(&heap[r], b)) best = r;
        if (best == i) break;
        heap[i] = heap[best];
        i = best;
    }
    if (*n) heap[i] = last;
    return top;
}

// Encodes one chunk of m >= 2 bytes into out; returns the number of ids.
static size_t merge_chunk(const Tokenizer *tok, const unsigned char *s, size_t m, int *out, MergeWork *w) {
    if (m > w->cap) {
        w->cap = m > 2 * w->cap ? m : 2 * w->cap;
        w->id = xrealloc(w->id, w->cap * sizeof *w->id);
        w->next = xrealloc(w->next, w->cap * sizeof *w->next);
        w->prev = xrealloc(w->prev, w->cap * sizeof *w->prev);
        w->heap = xrealloc(w->heap, 3 * w->cap * sizeof *w->heap);
    }
    TokIdMap *map = tok->merge_ids;
    ptrdiff_t end = (ptrdiff_t)m;
    size_t hn = 0;
    for (ptrdiff_t i = 0; i < end; i++) {
        w->id[i] = s[i];
        w->prev[i] = i - 1;
        w->next[i] = i + 1;
    }
    for (ptrdiff_t i = 0; i + 1 < end; i++) {
        int r = merge_rank(map, w->id[i], w->id[i + 1]);
        if (r >= 0) candidate_push(w->heap, &hn, (MergeCandidate){r, i});
    }
    while (hn) {
        MergeCandidate c = candidate_pop(w->heap, &hn);
        ptrdiff_t i = c.pos, j = w->next[i];
        const int *pair = &tok->merges[2 * (c.rank - 256)];
        // Stale when an earlier merge took either token away.
        if (w->id[i] != pair[0] || j >= end || w->id[j] != pair[1]) continue;
        w->id[i] = c.rank;
        w->id[j] = -1;
        w->next[i] = w->next[j];
        if (w->next[j] < end) w->prev[w->next[j]] = i;
        if (w->prev[i] >= 0) {
            int r = merge_rank(map, w->id[w->prev[i]], c.rank);
            if (r >= 0) candidate_push(w->heap, &hn, (MergeCandidate){r, w->prev[i]});
        }
        if (w->next[i] < end) {
            int r = merge_rank(map, c.rank, w->id[w->next[i]]);
            if (r >= 0) candidate_push(w->heap, &hn, (MergeCandidate){r, i});
        }
    }
    size_t n = 0;
    for (ptrdiff_t i = 0; i < end; i = w->next[i]) out[n++] = w->id[i];  // position 0 never dies
    return n;
}

// The cache of a text's distinct chunks lives in an encoder, not in the tokenizer, so that
// encoding stays const and safe from several threads (one encoder each); a text encoded in
// pieces through one encoder keeps it from piece to piece.
struct BpeEncoder {
    struct {
        char *key;
        BpeCached value;
    } *cache;   // stb_ds string map: chunk -> its ids in pool
    int *pool;  // stb_ds array
    MergeWork work;
};

// Beyond this many cached chunks the cache starts afresh: a text of gigabytes with millions
// of distinct words must not grow it without bound.
#define BPE_CACHE_MAX_ENTRIES (1 << 20)

BpeEncoder *tokenizer_bpe_encoder_new(void) {
    BpeEncoder *e = xcalloc(1, sizeof *e);
    sh_new_strdup(e->cache);
    return e;
}

void tokenizer_bpe_encoder_free(BpeEncoder *e) {
    if (!e) return;
    shfree(e->cache);
    arrfree(e->pool);
    free(e->work.id);
    free(e->work.next);
    free(e->work.prev);
    free(e->work.heap);
    free(e);
}

void tokenizer_bpe_encode_with(const Tokenizer *tok, BpeEncoder *e, const unsigned char *text, size_t len, int *ids,
                               size_t *n_out) {
    if (tok->n_merges == 0) {
        for (size_t i = 0; i < len; i++) ids[i] = text[i];
        *n_out = len;
        return;
    }
    char key[BPE_CACHE_MAX_CHUNK + 1];
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t m = tokenizer_bpe_chunk_len(text, len, i);
        if (m == 1) {
            ids[n++] = text[i];
        } else if (m <= BPE_CACHE_MAX_CHUNK) {
            memcpy(key, text + i, m);  // chunks of two or more bytes hold no NUL
            key[m] = 0;
            ptrdiff_t slot = shgeti(e->cache, key);
            if (slot >= 0) {
                BpeCached c = e->cache[slot].value;
                memcpy(ids + n, e->pool + c.start, (size_t)c.n * sizeof *ids);
                n += (size_t)c.n;
            } else {
                if (shlen(e->cache) >= BPE_CACHE_MAX_ENTRIES) {
                    shfree(e->cache);
                    sh_new_strdup(e->cache);
                    arrfree(e->pool);
                }
                size_t k = merge_chunk(tok, text + i, m, ids + n, &e->work);
                BpeCached c = {arrlenu(e->pool), (int)k};
                memcpy(arraddnptr(e->pool, k), ids + n, k * sizeof *ids);
                shput(e->cache, key, c);
                n += k;
            }
        } else {
            n += merge_chunk(tok, text + i, m, ids + n, &e->work);
        }
        i += m;
    }
    *n_out = n;
}

void tokenizer_bpe_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int *ids, size_t *n_out) {
    BpeEncoder *e = tokenizer_bpe_encoder_new();
    tokenizer_bpe_encode_with(tok, e, text, len, ids, n_out);
    tokenizer_bpe_encoder_free(e);
}
