// loader.c -- token ids to batches (see loader.h).
#include "data/loader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "data/prepare.h"

bool dataset_split(size_t n, int block_size, size_t *n_train, const char *name, char *err, size_t errlen) {
    size_t train = (size_t)((double)n * 0.9);
    size_t need = (size_t)block_size + 1;
    if (train < need || n - train < need) {
        set_error(err, errlen,
                  "'%s' is too short: %zu tokens give a training split of %zu and a validation split of %zu, "
                  "but each needs at least block_size + 1 = %zu (use a longer text or a smaller --block-size)",
                  name, n, train, n - train, need);
        return false;
    }
    *n_train = train;
    return true;
}

bool dataset_from_map(Dataset *d, TokensMap *map, int block_size, const char *name, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    size_t n_train;
    if (!dataset_split((size_t)map->n, block_size, &n_train, name, err, errlen)) {
        tokens_close(map);
        return false;
    }
    d->map = *map;
    memset(map, 0, sizeof *map);
    d->ids = d->map.ids;
    d->id_bytes = (int)d->map.key.id_bytes;
    d->n_tokens = (size_t)d->map.n;
    d->n_train = n_train;
    d->text_crc = d->map.key.text_crc;
    d->text_bytes = d->map.key.text_bytes;
    return true;
}

bool dataset_from_ids(Dataset *d, const int *ids, size_t n, int vocab_size, uint32_t text_crc, uint64_t text_bytes,
                      int block_size, const char *name, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    size_t n_train;
    if (!dataset_split(n, block_size, &n_train, name, err, errlen)) return false;
    d->id_bytes = vocab_size <= 65536 ? 2 : 4;
    d->owned = xmalloc(n * (size_t)d->id_bytes);
    if (d->id_bytes == 2)
        for (size_t i = 0; i < n; i++) ((uint16_t *)d->owned)[i] = (uint16_t)ids[i];
    else
        for (size_t i = 0; i < n; i++) ((uint32_t *)d->owned)[i] = (uint32_t)ids[i];
    d->ids = d->owned;
    d->n_tokens = n;
    d->n_train = n_train;
    d->text_crc = text_crc;
    d->text_bytes = text_bytes;
    return true;
}

bool dataset_from_text(Dataset *d, const unsigned char *text, size_t len, const Tokenizer *tok, int block_size,
                       const char *name, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    if (len == 0) {
        set_error(err, errlen, "'%s' is empty, expected a text file to train on", name);
        return false;
    }
    int *ids = NULL;
    size_t n = 0;
    char why[256];
    if (!tokenizer_encode(tok, text, len, &ids, &n, why, sizeof why)) {
        set_error(err, errlen, "cannot encode '%s': %s", name, why);
        return false;
    }
    bool ok = dataset_from_ids(d, ids, n, tokenizer_vocab_size(tok), crc32c(0, text, len), len, block_size, name, err,
                               errlen);
    free(ids);
    return ok;
}

bool dataset_load(Dataset *d, const char *path, const Tokenizer *tok, int block_size, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    DataText dt;
    DataScanSpec scan = {.tok = tok, .tok_source = "the tokenizer"};
    if (!data_scan(&dt, path, &scan, err, errlen)) return false;
    DataTokensSpec spec = {.block_size = block_size};
    DataIdsSource src;
    double s;
    bool ok = data_tokens(&dt, &spec, d, &src, &s, err, errlen);
    data_text_close(&dt);
    return ok;
}

void dataset_free(Dataset *d) {
    tokens_close(&d->map);
    free(d->owned);
    memset(d, 0, sizeof *d);
}

void dataset_batch(const Dataset *d, Split split, Rng *rng, int B, int T, int *x, int *y) {
    size_t base = split == SPLIT_TRAIN ? 0 : d->n_train;
    size_t len = split == SPLIT_TRAIN ? d->n_train : d->n_tokens - d->n_train;
    for (int b = 0; b < B; b++) {
        size_t i = base + (size_t)rng_below(rng, (uint64_t)(len - (size_t)T));
        int *xb = x + (size_t)b * T, *yb = y + (size_t)b * T;
        if (d->id_bytes == 2) {
            const uint16_t *s = (const uint16_t *)d->ids + i;
            for (int t = 0; t < T; t++) xb[t] = s[t], yb[t] = s[t + 1];
        } else {
            const uint32_t *s = (const uint32_t *)d->ids + i;
            for (int t = 0; t < T; t++) xb[t] = (int)s[t], yb[t] = (int)s[t + 1];
        }
    }
    if (d->map.map) (void)madvise(d->map.map, d->map.map_len, MADV_DONTNEED);
}
