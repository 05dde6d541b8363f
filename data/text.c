// text.c -- a text file read in pieces (see text.h).
#include "data/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

static const char *file_kind(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

bool text_open(TextFile *t, const char *path, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    t->fd = -1;
    // O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        set_error(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        set_error(err, errlen, "'%s' is a directory, expected a file", path);
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        set_error(err, errlen,
                  "'%s' is %s, not a regular file: gpt reads its text more than once and to its end, so it "
                  "must be an ordinary file (save the stream to a file first)",
                  path, file_kind(st.st_mode));
        close(fd);
        return false;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (st.st_size == 0) {
        // Files of /proc and /sys claim 0 bytes and have content; a read tells them apart.
        unsigned char probe;
        ssize_t r;
        do r = read(fd, &probe, 1);
        while (r < 0 && errno == EINTR);
        if (r < 0) set_error(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        else if (r > 0)
            set_error(err, errlen,
                      "'%s' reports a size of 0 bytes yet has content (a file of /proc or /sys?): copy it to an "
                      "ordinary file first",
                      path);
        else set_error(err, errlen, "'%s' is empty, expected a text file to train on", path);
        close(fd);
        return false;
    }
    t->path = xstrdup(path);
    t->fd = fd;
    t->bytes = (uint64_t)st.st_size;
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->mtime = st.st_mtim;
    return true;
}

void text_close(TextFile *t) {
    if (t->fd >= 0) close(t->fd);
    free(t->path);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

// ---- progress -----------------------------------------------------------------------------
void text_progress_start(TextProgress *p, const char *label, const char *path, uint64_t total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->path = path;
    p->total = total;
    p->t0 = p->last = now_seconds();
    p->tty = label && isatty(STDERR_FILENO);
}

void text_progress_update(TextProgress *p, uint64_t done) {
    if (!p->label) return;
    double now = now_seconds(), elapsed = now - p->t0;
    if (p->tty ? (elapsed < 0.5 || now - p->last < 0.1) : now - p->last < 5.0) return;
    p->last = now;
    double rate = (double)done / (elapsed > 0 ? elapsed : 1e-9);
    char eta[32];
    format_duration(rate > 0 ? (double)(p->total - done) / rate : 0, eta, sizeof eta);
    char line[1400];
    snprintf(line, sizeof line, "%s %s: %3.0f%% (%.0f/%.0f MB) | %.1f MB/s | ETA %s", p->label, p->path,
             p->total ? 100.0 * (double)done / (double)p->total : 100.0, (double)done / 1e6, (double)p->total / 1e6,
             rate / 1e6, eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->drawn = true;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

void text_progress_end(TextProgress *p) {
    if (p->tty && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}

// ---- the pass -----------------------------------------------------------------------------
static bool changed(const TextFile *t, uint64_t now_bytes, const char *how, char *err, size_t errlen) {
    set_error(err, errlen,
              "'%s' changed while it was being read (%llu bytes when opened, %s%llu now): train on a file that "
              "nothing is writing to",
              t->path, (unsigned long long)t->bytes, how, (unsigned long long)now_bytes);
    return false;
}

bool text_pass(TextFile *t, const TextPassOptions *o, TextPieceFn fn, void *ctx, uint32_t *crc, char *err,
               size_t errlen) {
    size_t cap = o->block ? o->block : TEXT_BLOCK;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        set_error(err, errlen, "out of memory reading '%s' (%zu bytes)", t->path, cap);
        return false;
    }
    TextProgress prog;
    text_progress_start(&prog, o->label, t->path, t->bytes);
    uint64_t off = 0;  // the file offset of buf[0]
    size_t have = 0;   // bytes in buf
    bool eof = false, ok = false;
    uint32_t c = 0;
    for (;;) {
        while (!eof && have < cap) {
            ssize_t r = pread(t->fd, buf + have, cap - have, (off_t)(off + have));
            if (r < 0) {
                if (errno == EINTR) continue;
                set_error(err, errlen, "cannot read '%s': %s", t->path, strerror(errno));
                goto out;
            }
            if (r == 0) eof = true;
            have += (size_t)r;
            if (off + have > t->bytes) {
                changed(t, off + have, "at least ", err, errlen);
                goto out;
            }
        }
        if (have == 0) break;
        size_t piece = eof ? have : tokenizer_cut(o->cut, buf, have);
        if (piece == 0) {
            // Not one place to cut in a whole block (a single word of megabytes): read more.
            size_t ncap = cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                set_error(err, errlen, "out of memory reading '%s' (%zu bytes)", t->path, ncap);
                goto out;
            }
            buf = nb;
            cap = ncap;
            continue;
        }
        c = crc32c(c, buf, piece);
        if (!fn(ctx, buf, piece, off, err, errlen)) goto out;
        memmove(buf, buf + piece, have - piece);
        have -= piece;
        off += piece;
        text_progress_update(&prog, off);
    }
    struct stat st;
    if (fstat(t->fd, &st) != 0) {
        set_error(err, errlen, "cannot stat '%s': %s", t->path, strerror(errno));
        goto out;
    }
    if (off != t->bytes || (uint64_t)st.st_size != t->bytes) {
        changed(t, off != t->bytes ? off : (uint64_t)st.st_size, "", err, errlen);
        goto out;
    }
    if (st.st_mtim.tv_sec != t->mtime.tv_sec || st.st_mtim.tv_nsec != t->mtime.tv_nsec) {
        set_error(err, errlen,
                  "'%s' changed while it was being read (modified, still %llu bytes): train on a file that "
                  "nothing is writing to",
                  t->path, (unsigned long long)t->bytes);
        goto out;
    }
    *crc = c;
    ok = true;
out:
    text_progress_end(&prog);
    free(buf);
    return ok;
}
