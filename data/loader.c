// loader.c -- text file to batches (see loader.h).
#include "data/loader.h"

#include <stdlib.h>
#include <string.h>

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
    size_t n_train = (size_t)((double)n * 0.9);
    size_t need = (size_t)block_size + 1;
    if (n_train < need || n - n_train < need) {
        set_error(err, errlen,
                  "'%s' is too short: %zu tokens give a training split of %zu and a validation split of %zu, "
                  "but each needs at least block_size + 1 = %zu (use a longer text or a smaller --block-size)",
                  name, n, n_train, n - n_train, need);
        free(ids);
        return false;
    }
    d->tokens = ids;
    d->n_tokens = n;
    d->n_train = n_train;
    d->text_crc = crc32c(0, text, len);
    d->text_bytes = len;
    return true;
}

bool dataset_load(Dataset *d, const char *path, const Tokenizer *tok, int block_size, char *err, size_t errlen) {
    size_t len;
    unsigned char *text = read_file(path, &len, err, errlen);
    if (!text) {
        memset(d, 0, sizeof *d);
        return false;
    }
    bool ok = dataset_from_text(d, text, len, tok, block_size, path, err, errlen);
    free(text);
    return ok;
}

void dataset_free(Dataset *d) {
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

void dataset_batch(const Dataset *d, Split split, Rng *rng, int B, int T, int *x, int *y) {
    const int *base = split == SPLIT_TRAIN ? d->tokens : d->tokens + d->n_train;
    size_t len = split == SPLIT_TRAIN ? d->n_train : d->n_tokens - d->n_train;
    for (int b = 0; b < B; b++) {
        size_t i = (size_t)rng_below(rng, (uint64_t)(len - (size_t)T));
        memcpy(x + (size_t)b * T, base + i, (size_t)T * sizeof(int));
        memcpy(y + (size_t)b * T, base + i + 1, (size_t)T * sizeof(int));
    }
}
