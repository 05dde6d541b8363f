// tokens.c -- token ids in a file (see tokens.h).
#include "data/tokens.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "data/text.h"

#define TOKENS_MAGIC "GPTIDS1\n"
#define TOKENS_VERSION 1u

void tokens_key(TokensKey *k, const Tokenizer *tok, uint64_t text_bytes, uint32_t text_crc) {
    size_t len;
    unsigned char *image = tokenizer_serialize(tok, &len);
    memset(k, 0, sizeof *k);
    k->text_bytes = text_bytes;
    k->text_crc = text_crc;
    k->tokenizer_crc = crc32c(0, image, len);
    k->vocab_size = (uint32_t)tokenizer_vocab_size(tok);
    k->id_bytes = k->vocab_size <= 65536 ? 2 : 4;
    free(image);
}

static void encode_header(unsigned char *h, const TokensKey *k, uint64_t n, uint32_t ids_crc) {
    memset(h, 0, TOKENS_HEADER_BYTES);
    memcpy(h, TOKENS_MAGIC, 8);
    put_u32(h + 8, TOKENS_VERSION);
    put_u32(h + 12, k->id_bytes);
    put_u64(h + 16, n);
    put_u64(h + 24, k->text_bytes);
    put_u32(h + 32, k->text_crc);
    put_u32(h + 36, k->tokenizer_crc);
    put_u32(h + 40, k->vocab_size);
    put_u32(h + 44, ids_crc);
    put_u32(h + 60, crc32c(0, h, 60));
}

// ---- writing ------------------------------------------------------------------------------
// Written under a temporary name and renamed into place, like every file gpt writes, but not
// synced: the file is a cache, verified against its checksum each time it is used, so a crash
// that leaves it damaged costs one encoding, not a wrong run -- and syncing gigabytes would
// cost seconds at every first start.
typedef struct {
    int fd;
    char *tmp;
    int error;  // errno of the first failure
} TmpFile;

static void tmp_write(TmpFile *f, const void *data, size_t len, off_t at) {
    const unsigned char *p = data;
    while (len && !f->error) {
        ssize_t w = at >= 0 ? pwrite(f->fd, p, len, at) : write(f->fd, p, len);
        if (w < 0) {
            if (errno != EINTR) f->error = errno;
        } else if (w == 0) {
            f->error = EIO;
        } else {
            p += w;
            len -= (size_t)w;
            if (at >= 0) at += w;
        }
    }
}

bool tokens_writer_open(TokensWriter *w, const char *path, const TokensKey *key, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    TmpFile *f = xcalloc(1, sizeof *f);
    size_t n = strlen(path) + 32;
    f->tmp = xmalloc(n);
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        set_error(err, errlen, "cannot create '%s': %s", f->tmp, strerror(errno));
        free(f->tmp);
        free(f);
        return false;
    }
    w->file = f;
    w->key = *key;
    unsigned char h[TOKENS_HEADER_BYTES] = {0};  // the real header comes last, once n is known
    tmp_write(f, h, sizeof h, -1);
    return true;
}

void tokens_writer_add(TokensWriter *w, const int *ids, size_t n) {
    size_t bytes = n * w->key.id_bytes;
    if (bytes > w->buf_cap) {
        w->buf_cap = bytes;
        w->buf = xrealloc(w->buf, bytes);
    }
    if (w->key.id_bytes == 2) {
        uint16_t *o = w->buf;
        for (size_t i = 0; i < n; i++) o[i] = (uint16_t)ids[i];
    } else {
        uint32_t *o = w->buf;
        for (size_t i = 0; i < n; i++) o[i] = (uint32_t)ids[i];
    }
    w->ids_crc = crc32c(w->ids_crc, w->buf, bytes);
    tmp_write(w->file, w->buf, bytes, -1);
    w->n += n;
}

static void writer_done(TokensWriter *w) {
    TmpFile *f = w->file;
    if (f) {
        free(f->tmp);
        free(f);
    }
    free(w->buf);
    memset(w, 0, sizeof *w);
}

bool tokens_writer_commit(TokensWriter *w, const char *path, char *err, size_t errlen) {
    TmpFile *f = w->file;
    unsigned char h[TOKENS_HEADER_BYTES];
    encode_header(h, &w->key, w->n, w->ids_crc);
    tmp_write(f, h, sizeof h, 0);
    if (close(f->fd) != 0 && !f->error) f->error = errno;
    bool ok = false;
    if (f->error) set_error(err, errlen, "cannot write '%s': %s", f->tmp, strerror(f->error));
    else if (rename(f->tmp, path) != 0)
        set_error(err, errlen, "cannot rename '%s' to '%s': %s", f->tmp, path, strerror(errno));
    else ok = true;
    if (!ok) unlink(f->tmp);
    writer_done(w);
    return ok;
}

void tokens_writer_abort(TokensWriter *w) {
    TmpFile *f = w->file;
    if (f) {
        close(f->fd);
        unlink(f->tmp);
    }
    writer_done(w);
}

// ---- reading ------------------------------------------------------------------------------
static TokensStatus bad(char *err, size_t errlen, const char *path, const char *why) {
    set_error(err, errlen, "'%s' %s", path, why);
    return TOKENS_BAD;
}

// Reads the ids with read(), not through a map: the check then leaves the file in the page
// cache, not in this process's resident memory.
static TokensStatus verify_ids(int fd, const char *path, const TokensKey *key, uint64_t n, uint32_t want_crc,
                               const char *label, char *err, size_t errlen) {
    size_t chunk = (size_t)4 << 20;
    unsigned char *buf = malloc(chunk);
    if (!buf) return bad(err, errlen, path, "cannot be checked: out of memory");
    uint64_t total = n * key->id_bytes, done = 0;
    uint32_t crc = 0, max_id = 0;
    TextProgress prog;
    text_progress_start(&prog, label, path, total);
    TokensStatus st = TOKENS_OK;
    while (done < total) {
        size_t want = total - done < chunk ? (size_t)(total - done) : chunk;
        ssize_t r = pread(fd, buf, want, (off_t)(TOKENS_HEADER_BYTES + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || r % key->id_bytes) {
            set_error(err, errlen, "'%s' cannot be read: %s", path, r < 0 ? strerror(errno) : "it is shorter than its header says");
            st = TOKENS_BAD;
            break;
        }
        crc = crc32c(crc, buf, (size_t)r);
        if (key->id_bytes == 2) {
            const uint16_t *p = (const uint16_t *)buf;
            uint16_t m = 0;
            for (size_t i = 0; i < (size_t)r / 2; i++) m = p[i] > m ? p[i] : m;
            if (m > max_id) max_id = m;
        } else {
            const uint32_t *p = (const uint32_t *)buf;
            uint32_t m = 0;
            for (size_t i = 0; i < (size_t)r / 4; i++) m = p[i] > m ? p[i] : m;
            if (m > max_id) max_id = m;
        }
        done += (uint64_t)r;
        text_progress_update(&prog, done);
    }
    text_progress_end(&prog);
    free(buf);
    if (st != TOKENS_OK) return st;
    if (crc != want_crc) return bad(err, errlen, path, "is damaged (its ids do not match their checksum)");
    if (max_id >= key->vocab_size) return bad(err, errlen, path, "is damaged (it holds an id beyond the vocabulary)");
    return TOKENS_OK;
}

TokensStatus tokens_open(TokensMap *m, const char *path, const TokensKey *key, bool verify, const char *label,
                         char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return TOKENS_MISSING;
        set_error(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return TOKENS_BAD;
    }
    TokensStatus st = TOKENS_BAD;
    struct stat sb;
    unsigned char h[TOKENS_HEADER_BYTES];
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        bad(err, errlen, path, "is not a regular file");
        goto out;
    }
    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
        bad(err, errlen, path, "is truncated (no complete header)");
        goto out;
    }
    if (memcmp(h, TOKENS_MAGIC, 8) != 0) {
        bad(err, errlen, path, "is not a token file (bad magic)");
        goto out;
    }
    if (get_u32(h + 60) != crc32c(0, h, 60)) {
        bad(err, errlen, path, "is damaged (its header does not match its checksum)");
        goto out;
    }
    TokensKey k = {.text_bytes = get_u64(h + 24), .text_crc = get_u32(h + 32), .tokenizer_crc = get_u32(h + 36),
                   .vocab_size = get_u32(h + 40), .id_bytes = get_u32(h + 12)};
    uint64_t n = get_u64(h + 16);
    bool same = k.text_bytes == key->text_bytes && k.text_crc == key->text_crc &&
                k.tokenizer_crc == key->tokenizer_crc && k.vocab_size == key->vocab_size && k.id_bytes == key->id_bytes;
    if (get_u32(h + 8) != TOKENS_VERSION || !same) {
        st = TOKENS_STALE;
        goto out;
    }
    if ((k.id_bytes != 2 && k.id_bytes != 4) || n == 0 || n > k.text_bytes ||
        (uint64_t)sb.st_size != TOKENS_HEADER_BYTES + n * k.id_bytes) {
        bad(err, errlen, path, "is damaged (its size does not match its header)");
        goto out;
    }
    if (verify && (st = verify_ids(fd, path, &k, n, get_u32(h + 44), label, err, errlen)) != TOKENS_OK) goto out;
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        set_error(err, errlen, "cannot map '%s' into memory: %s", path, strerror(errno));
        st = TOKENS_BAD;
        goto out;
    }
    // Batches read windows at random offsets: no read-ahead around them.
    (void)madvise(map, (size_t)sb.st_size, MADV_RANDOM);
    m->map = map;
    m->map_len = (size_t)sb.st_size;
    m->ids = (const unsigned char *)map + TOKENS_HEADER_BYTES;
    m->n = n;
    m->key = k;
    st = TOKENS_OK;
out:
    close(fd);
    return st;
}

void tokens_close(TokensMap *m) {
    if (m->map) munmap(m->map, m->map_len);
    memset(m, 0, sizeof *m);
}

void tokens_remove_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "tokens.bin.tmp.", 15) == 0) (void)unlinkat(dfd, e->d_name, 0);
    closedir(d);
}
