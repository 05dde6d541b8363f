// buf.c -- the growing buffer and the little-endian codec (see buf.h).
#include "common/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Room for n more bytes and the NUL after them.
static void buf_reserve(Buf *b, size_t n) {
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void buf_add(Buf *b, const void *data, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = 0;
}

void buf_puts(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_putc(Buf *b, char c) { buf_add(b, &c, 1); }

void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert(n >= 0);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *buf_take(Buf *b, size_t *len) {
    char *s = b->s ? b->s : xstrdup("");
    if (len) *len = b->len;
    *b = (Buf){0};
    return s;
}

void buf_free(Buf *b) {
    free(b->s);
    *b = (Buf){0};
}

void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void buf_u32(Buf *b, uint32_t v) {
    unsigned char p[4];
    put_u32(p, v);
    buf_add(b, p, 4);
}

void buf_u64(Buf *b, uint64_t v) {
    unsigned char p[8];
    put_u64(p, v);
    buf_add(b, p, 8);
}

void buf_i32(Buf *b, int32_t v) { buf_u32(b, (uint32_t)v); }
void buf_i64(Buf *b, int64_t v) { buf_u64(b, (uint64_t)v); }
void buf_f32(Buf *b, float v) { buf_u32(b, f32_bits(v)); }

void buf_f64(Buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    buf_u64(b, u);
}

const unsigned char *br_take(ByteReader *r, size_t n) {
    if (!r->ok || n > r->left) {
        r->ok = false;
        r->left = 0;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint32_t br_u32(ByteReader *r) {
    const unsigned char *p = br_take(r, 4);
    return p ? get_u32(p) : 0;
}

uint64_t br_u64(ByteReader *r) {
    const unsigned char *p = br_take(r, 8);
    return p ? get_u64(p) : 0;
}

int32_t br_i32(ByteReader *r) { return (int32_t)br_u32(r); }
int64_t br_i64(ByteReader *r) { return (int64_t)br_u64(r); }
float br_f32(ByteReader *r) { return f32_from_bits(br_u32(r)); }

double br_f64(ByteReader *r) {
    uint64_t u = br_u64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
