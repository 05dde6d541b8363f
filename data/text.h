// text.h -- a text file to train on, read in pieces: never whole in memory, checked for being
// a real file that holds still while it is read.
#ifndef GPT_TEXT_H
#define GPT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

typedef struct {
    char *path;
    int fd;
    uint64_t bytes;         // the size when opened
    dev_t dev;              // the file's identity and modification time when opened: a pass
    ino_t ino;              // fails if they change
    struct timespec mtime;
} TextFile;

// Opens a text to train on. False with a one-line reason naming the path when it is missing,
// unreadable, a directory, empty, or not a regular file: a FIFO, a device such as /dev/zero,
// a socket (an endless stream could not be read to its end, and a text is read more than
// once), or a file that claims a size of 0 yet has content (/proc, /sys).
bool text_open(TextFile *t, const char *path, char *err, size_t errlen);
void text_close(TextFile *t);

// Called with each piece of the text in order: its bytes and its offset in the file. False
// (with err set) stops the pass.
typedef bool (*TextPieceFn)(void *ctx, const unsigned char *piece, size_t len, uint64_t offset, char *err,
                            size_t errlen);

typedef struct {
    TokenizerKind cut;   // pieces end where tokenizer_cut allows for this kind
    size_t block;        // bytes read at a time (0: TEXT_BLOCK); a piece is shorter by the
                         // few bytes kept back to cut safely, or longer when no cut was found
    const char *label;   // progress on stderr as "LABEL PATH: 45% ..." for long passes; NULL: none
} TextPassOptions;

#define TEXT_BLOCK ((size_t)16 << 20)

// Reads the whole text once, from its start, in pieces (memory: about one block). *crc gets
// the CRC-32C of every byte. False with a one-line reason when the file cannot be read or
// changes while it is read (shorter or longer than when opened, or modified), or when fn
// stops the pass.
bool text_pass(TextFile *t, const TextPassOptions *o, TextPieceFn fn, void *ctx, uint32_t *crc, char *err,
               size_t errlen);

// Progress of a long job on stderr, in the style of the training loop: on a terminal one live
// line, redrawn at most every 0.1 s once the job has run 0.5 s; otherwise a line every 5 s.
// Silent for jobs that end sooner. (Shared by the passes over the text and the token file.)
typedef struct {
    const char *label, *path;
    uint64_t total;
    double t0, last;
    bool tty, drawn;
} TextProgress;

void text_progress_start(TextProgress *p, const char *label, const char *path, uint64_t total);
void text_progress_update(TextProgress *p, uint64_t done);
void text_progress_end(TextProgress *p);  // clears the live line

#endif
