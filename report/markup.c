// markup.c -- see markup.h.
#include "report/markup.h"

#include <string.h>

#include "common/common.h"

void markup_escape(Buf *b, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c == '<') buf_puts(b, "&lt;");
            else if (c == '>') buf_puts(b, "&gt;");
            else if (c == '&') buf_puts(b, "&amp;");
            else if (c == '"') buf_puts(b, "&quot;");
            else if (c == '\'') buf_puts(b, "&apos;");
            else if (c < 0x20 || c == 0x7f) buf_putc(b, ' ');
            else buf_putc(b, (char)c);
            i++;
            continue;
        }
        uint32_t cp;
        int len = utf8_decode(p + i, n - i, &cp);
        if (len > 0 && cp != 0xFFFE && cp != 0xFFFF) {
            buf_add(b, p + i, (size_t)len);
            i += (size_t)len;
        } else {
            buf_puts(b, "\xef\xbf\xbd");  // U+FFFD, one for each byte that is not part of a character
            i++;
        }
    }
}
