
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

void (*die_hook)(int status) = NULL;

void die_with_status(int status, const char *fmt, va_list ap) {
    fflush(stdout);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (die_hook) die_hook(status);
    exit(status);
}

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    die_with_status(1, fmt, ap);
}

void warn(const char *fmt, ...) {
    va_list ap;
    fputs("warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) die("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory reallocating to %zu bytes", n);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

#define HUGE_BLOCK ((size_t)2 << 20)

float *xalloc_floats(size_t count) {
    size_t bytes = (count ? count : 1) * sizeof(float);
    if (count > SIZE_MAX / sizeof(float)) die("out of memory: %zu floats do not fit in memory", count);
    // Blocks of 2 MiB or more (weights, gradients, optimizer state, activations) are aligned
    // to 2 MiB and offered to the kernel for transparent huge pages, where it has them: the
    // training step walks tens of MiB, more than the TLB covers in 4 KiB pages.
    size_t align = bytes >= HUGE_BLOCK ? HUGE_BLOCK : 64;
    bytes = (bytes + align - 1) & ~(align - 1);
    float *p = aligned_alloc(align, bytes);
    if (!p) die("out of memory allocating %zu bytes (%.1f MiB)", bytes, bytes / 1048576.0);
#ifdef MADV_HUGEPAGE
    if (align == HUGE_BLOCK) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
    memset(p, 0, bytes);
    return p;
}

void set_error(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

unsigned char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_error(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        set_error(err, errlen, "'%s' is a directory, expected a file", path);
        close(fd);
        return NULL;
    }
    // Regular files are read at their size; pipes and the like grow the buffer as needed.
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        set_error(err, errlen, "out of memory reading '%s' (%zu bytes)", path, cap);
        close(fd);
        return NULL;
    }
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                set_error(err, errlen, "out of memory reading '%s'", path);
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            set_error(err, errlen, "cannot read '%s': %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}

bool atomic_open(AtomicFile *f, const char *path, char *err, size_t errlen) {
    size_t plen = strlen(path);
    f->tmp = xmalloc(plen + 32);
    snprintf(f->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    f->error = 0;
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        set_error(err, errlen, "cannot create '%s': %s", f->tmp, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return false;
    }
    return true;
}

void atomic_write(AtomicFile *f, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len && !f->error) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno != EINTR) f->error = errno;
        } else if (w == 0) {
            f->error = EIO;
        } else {
            p += w;
            len -= (size_t)w;
        }
    }
}

// Best effort: make the rename itself durable. A failure here cannot undo a good save.
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xmalloc((size_t)(slash - path) + 2) : xstrdup(".");
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

bool atomic_commit(AtomicFile *f, const char *path, char *err, size_t errlen) {
    if (!f->error && fsync(f->fd) != 0) f->error = errno;
    if (close(f->fd) != 0 && !f->error) f->error = errno;
    bool ok = false;
    if (f->error) {
        set_error(err, errlen, "cannot write '%s': %s", f->tmp, strerror(f->error));
    } else if (rename(f->tmp, path) != 0) {
        set_error(err, errlen, "cannot rename '%s' to '%s': %s", f->tmp, path, strerror(errno));
    } else {
        ok = true;
        sync_parent_dir(path);
    }
    if (!ok) unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
    f->fd = -1;
    return ok;
}

bool write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    AtomicFile f;
    if (!atomic_open(&f, path, err, errlen)) return false;
    atomic_write(&f, data, len);
    return atomic_commit(&f, path, err, errlen);
}

bool ensure_dir(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            set_error(err, errlen, "'%s' exists and is not a directory", path);
            return false;
        }
        if (access(path, W_OK | X_OK) != 0) {
            set_error(err, errlen, "cannot write into directory '%s': %s", path, strerror(errno));
            return false;
        }
        return true;
    }
    // Like mkdir -p: the parents first.
    char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            set_error(err, errlen, "cannot create directory '%s': %s", copy, strerror(errno));
            free(copy);
            return false;
        }
        *p = '/';
    }
    free(copy);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        set_error(err, errlen, "cannot create directory '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

bool parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) return false;
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return false;
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) return false;
    *out = (uint64_t)v;
    return true;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(Rng *r, uint64_t n) {
    // Rejection sampling: draws in the incomplete top range are redrawn.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_u64(r);
    while (x >= limit);
    return x % n;
}

float rng_float(Rng *r) { return (float)(rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double rng_double(Rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double rng_normal(Rng *r) {
    double u1 = rng_double(r), u2 = rng_double(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    // The second byte's range carries the strictness: E0 and F0 would be overlong below A0
    // and 90, ED would be a surrogate from A0 up, F4 would pass U+10FFFF from 90 up.
    int len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;  // a continuation byte, C0/C1 (always overlong) or F5..FF (beyond U+10FFFF)
    }
    if (n < (size_t)len || s[1] < lo || s[1] > hi) return 0;
    v = v << 6 | (s[1] & 0x3F);
    for (int k = 2; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3F);
    }
    *cp = v;
    return len;
}

void format_duration(double seconds, char *out, size_t cap) {
    if (!isfinite(seconds) || seconds < 0) seconds = 0;
    long t = (long)(seconds + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__SSE4_2__)
#include <nmmintrin.h>

// CRC-32C with the SSE4.2 instruction that computes exactly this CRC (polynomial 0x1EDC6F41,
// reflected), 8 bytes at a time. A text of gigabytes is checksummed at every start-up.
uint32_t crc32c(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#else
// CRC-32C, slicing by 8: eight 256-entry tables built once.
static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = 1;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t n) {
    if (!crc_ready) crc_init();
    const unsigned char *p = data;
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;  // little-endian: the low four bytes meet the current crc
        crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^ crc_table[5][(w >> 16) & 0xff] ^
              crc_table[4][(w >> 24) & 0xff] ^ crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
              crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][(w >> 56) & 0xff];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}
#endif

int threads_get(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void threads_set(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}
