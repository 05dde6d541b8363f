// buf.h -- bytes in and out: a growing buffer (for text -- CSV, SVG, HTML -- and for binary
// records alike), the little-endian integers every file of gpt stores, and a bounds-checked
// reader of them.
#ifndef GPT_BUF_H
#define GPT_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

// A growing buffer. Start from {0}; s then holds len bytes and, once anything was added, a NUL
// after them, so that text in it is a C string. buf_take or buf_free ends it.
typedef struct {
    char *s;
    size_t len, cap;
} Buf;

void buf_add(Buf *b, const void *data, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_putc(Buf *b, char c);
void buf_printf(Buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
// Hands the bytes over: a malloc'd, NUL-terminated block (an empty string when nothing was
// added) of *len bytes (len may be NULL). b is empty again.
char *buf_take(Buf *b, size_t *len);
void buf_free(Buf *b);

// Little-endian two's complement integers; floats as their IEEE-754 bit patterns.
void put_u32(unsigned char *p, uint32_t v);
void put_u64(unsigned char *p, uint64_t v);
uint32_t get_u32(const unsigned char *p);
uint64_t get_u64(const unsigned char *p);
uint32_t f32_bits(float f);
float f32_from_bits(uint32_t u);

// The same, appended to a buffer.
void buf_u32(Buf *b, uint32_t v);
void buf_u64(Buf *b, uint64_t v);
void buf_i32(Buf *b, int32_t v);
void buf_i64(Buf *b, int64_t v);
void buf_f32(Buf *b, float v);
void buf_f64(Buf *b, double v);

// Reads values off n bytes at p, in order. A read past the end yields zeros (NULL from
// br_take) and clears ok, so that a record is decoded straight through and checked once, at
// its end: ok and nothing left over.
typedef struct {
    const unsigned char *p;
    size_t left;
    bool ok;
} ByteReader;

static inline ByteReader byte_reader(const void *p, size_t n) { return (ByteReader){p, n, true}; }
const unsigned char *br_take(ByteReader *r, size_t n);
uint32_t br_u32(ByteReader *r);
uint64_t br_u64(ByteReader *r);
int32_t br_i32(ByteReader *r);
int64_t br_i64(ByteReader *r);
float br_f32(ByteReader *r);
double br_f64(ByteReader *r);

#endif
