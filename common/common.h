// common.h -- the helpers every module uses: the error convention, checked allocation and
// I/O, strict number parsing, the seeded random number generator, timing.
#ifndef GPT_COMMON_H
#define GPT_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

// ---- errors: one convention ----
//   - A person's bad input -- a malformed flag, a missing, empty or unreadable file, a
//     damaged checkpoint, a prompt the vocabulary lacks -- is found by library code, which
//     returns false (or NULL) with a one-line reason in the caller's buffer (char *err,
//     size_t errlen; set_error formats it). The reason travels up to the command layer
//     (cli/), which prints it as the one "error: ..." line and exits non-zero (cli/cli.h).
//     Library code never exits on a person's input.
//   - A caller's bug (an argument no correct caller passes) is an assert.
//   - What no caller could do anything about -- running out of memory -- is die().

// Prints "error: <message>" as one line on stderr and exits with status 1.
_Noreturn void die(const char *fmt, ...) PRINTF_LIKE(1, 2);
// What die() and the command layer's cli_fail do: stdout flushed, "error: <message>" as one
// line on stderr, die_hook, exit with status.
_Noreturn void die_with_status(int status, const char *fmt, va_list ap);
// When set, called with the exit status after the error line, before exit: under MPI it
// ends the whole job (train/dist.c), so that one rank's fatal error never leaves the others
// waiting for it. It must not return.
extern void (*die_hook)(int status);
// Prints "warning: <message>" as one line on stderr.
void warn(const char *fmt, ...) PRINTF_LIKE(1, 2);

// How a kernel writes its output (a gradient, or a product): added to what the buffer
// holds, or written afresh, so that the first writer of a step needs no cleared buffer.
typedef enum { GRAD_SET, GRAD_ADD } GradWrite;

// Allocation that never returns NULL (it dies naming the size instead).
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
// count floats, 64-byte aligned (one cache line, one AVX-512 vector), zeroed. Free with free().
float *xalloc_floats(size_t count);

// Formats into a caller's error buffer (snprintf that tolerates err == NULL).
void set_error(char *err, size_t errlen, const char *fmt, ...) PRINTF_LIKE(3, 4);

// Reads a whole regular file. On failure returns NULL and writes a one-line reason naming
// the path into err (missing, a directory, unreadable, ...). The buffer has one extra NUL
// byte after *len bytes.
unsigned char *read_file(const char *path, size_t *len, char *err, size_t errlen);

// A file written under a temporary name (path.tmp.<pid>) and renamed into place only when
// complete and synced, so a reader, or a crash at any moment, sees either the old file or
// the whole new one. Writes may come in pieces; the first failure sticks (later writes do
// nothing) and is reported by the commit, which then removes the temporary file.
typedef struct {
    int fd;
    char *tmp;   // the temporary name
    int error;   // errno of the first failure, 0 while all is well
} AtomicFile;

// Writes all len bytes to fd, at offset at (pwrite) or, for at < 0, at the file position,
// retrying short writes and EINTR. 0, or the errno of the failure (EIO for no progress).
int write_all(int fd, const void *data, size_t len, long long at);

bool atomic_open(AtomicFile *f, const char *path, char *err, size_t errlen);
void atomic_write(AtomicFile *f, const void *data, size_t len);
// fsync, close, rename over path, and sync the directory. False with a reason in err.
bool atomic_commit(AtomicFile *f, const char *path, char *err, size_t errlen);

// The whole of data, written as above.
bool write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

// Creates a directory (one level) if it does not exist. False with reason in err.
bool ensure_dir(const char *path, char *err, size_t errlen);

// Strict parsing of a whole string: no trailing characters, no overflow, within [lo, hi].
bool parse_long(const char *s, long lo, long hi, long *out);
bool parse_double(const char *s, double lo, double hi, double *out);
bool parse_u64(const char *s, uint64_t *out);

// A small, fast, seedable generator (xoshiro256**-style state advanced by splitmix64 at
// seeding). Same seed, same stream, on every machine.
typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
// Uniform integer in [0, n), n > 0, without modulo bias.
uint64_t rng_below(Rng *r, uint64_t n);
// Uniform in [0, 1) with 24 bits (float) or 53 bits (double).
float rng_float(Rng *r);
double rng_double(Rng *r);
// Standard normal (Box-Muller in double).
double rng_normal(Rng *r);

// Strict UTF-8: the length (1..4) of the valid sequence at s[0..n), with its code point in
// *cp, or 0 when s[0] does not begin one (overlong, surrogate, > U+10FFFF, truncated, or a
// stray continuation byte).
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

// Monotonic wall time in seconds.
double now_seconds(void);
// A duration as a clock shows it: "4:05" (minutes and seconds), "1:02:03" from an hour on.
void format_duration(double seconds, char *out, size_t cap);

// CRC-32C (Castagnoli), incremental: crc = crc32c(crc, data, n), starting from 0.
uint32_t crc32c(uint32_t crc, const void *data, size_t n);

// The number of OpenMP threads in use (1 without OpenMP), and setting it.
int threads_get(void);
void threads_set(int n);

#endif
