// attention_page.c -- every head's attention over a prompt, the numbers that summarise
// each head, and the self-contained HTML page of heat maps (see attention_page.h).
#include "report/attention_page.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "model/generate.h"
#include "report/markup.h"

// ---- the numbers ------------------------------------------------------------------------
AttentionStats attention_stats(const float *att, int T) {
    double dist = 0.0, ent = 0.0;
    for (int i = 0; i < T; i++) {
        const float *row = att + (size_t)i * T;
        for (int j = 0; j <= i; j++) {
            double p = row[j];
            dist += p * (i - j);
            if (p > 0.0) ent -= p * log(p);  // p ln p -> 0 as p -> 0
        }
    }
    AttentionStats st = {.mean_distance = T > 0 ? dist / T : 0.0, .mean_entropy = T > 0 ? ent / T : 0.0};
    return st;
}

void attention_maps_compute(AttentionMaps *am, const GPT *m, const int *tokens, size_t n) {
    assert(n >= 1);
    memset(am, 0, sizeof *am);
    Generator *g = generator_new(m);
    generator_record_attention(g, true);
    generator_feed(g, tokens, n);
    am->L = m->config.n_layer;
    am->H = m->config.n_head;
    am->T = generator_window(g);
    am->n_prompt = n;
    size_t T = (size_t)am->T, TT = T * T;
    am->tokens = xmalloc(T * sizeof(int));
    memcpy(am->tokens, tokens + (n - T), T * sizeof(int));
    am->att = xmalloc((size_t)am->L * am->H * TT * sizeof(float));
    am->stats = xmalloc((size_t)am->L * am->H * sizeof(AttentionStats));
    for (int l = 0; l < am->L; l++) {
        for (int h = 0; h < am->H; h++) {
            const float *a = generator_attention(g, l, h);
            assert(a);  // recording was on for the one feed over an empty window
            size_t lh = (size_t)l * am->H + h;
            memcpy(am->att + lh * TT, a, TT * sizeof(float));
            am->stats[lh] = attention_stats(a, am->T);
        }
    }
    generator_free(g);
}

void attention_maps_free(AttentionMaps *am) {
    free(am->tokens);
    free(am->att);
    free(am->stats);
    memset(am, 0, sizeof *am);
}

// ---- making text visible and safe ---------------------------------------------------------
// Appends bytes as visible, HTML-escaped text of at most max_width columns (0: no limit,
// and newlines also break the line; a longer text ends in "…"): ␣ for a space, ⏎ for a
// newline, ⇥ for a tab, \xNN for other control bytes and for bytes that are not valid UTF-8,
// so that every token has a label and no label can break the markup.
static void add_visible(Buf *b, const unsigned char *s, size_t n, int max_width) {
    // Pass 0 measures; pass 1 writes, stopping early when the text is too wide.
    int total = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool cut = pass == 1 && max_width > 0 && total > max_width;
        int width = 0;
        for (size_t i = 0; i < n;) {
            char tmp[16];
            const char *piece = tmp;
            int w = 1;
            uint32_t cp;
            size_t len = (size_t)utf8_decode(s + i, n - i, &cp), plen = 0;
            unsigned char c = s[i];
            if (len == 0) snprintf(tmp, sizeof tmp, "\\x%02X", c), w = 4, len = 1;
            else if (c == ' ') piece = "\xE2\x90\xA3";      // ␣
            else if (c == '\n') piece = max_width ? "\xE2\x8F\x8E" : "\xE2\x8F\x8E\n";  // ⏎, a break in running text
            else if (c == '\t') piece = "\xE2\x87\xA5";     // ⇥
            else if (c == '<') piece = "&lt;";
            else if (c == '>') piece = "&gt;";
            else if (c == '&') piece = "&amp;";
            else if (c == '"') piece = "&quot;";
            else if (c == '\'') piece = "&#39;";
            else if (c < 0x20 || c == 0x7F) snprintf(tmp, sizeof tmp, "\\x%02X", c), w = 4;
            else piece = (const char *)s + i, plen = len;
            if (pass == 1) {
                if (cut && width + w > max_width - 1) {
                    buf_puts(b, "\xE2\x80\xA6");  // …
                    return;
                }
                buf_add(b, piece, plen ? plen : strlen(piece));
            }
            width += w;
            i += len;
        }
        total = width;
    }
}

// ---- the page -----------------------------------------------------------------------------
#define LABEL_WIDTH 6  // columns of a token label on the axes

static const char page_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1b1b;background:#fff}"
    "h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}"
    "p,li{max-width:60em;line-height:1.45}"
    ".tok{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:1px 3px;"
    "white-space:pre-wrap;word-break:break-all}"
    ".maps{display:flex;flex-wrap:wrap;gap:20px}"
    "figure{margin:0;border:1px solid #ddd;border-radius:4px;padding:8px}"
    "figcaption{font-size:13px;margin-bottom:4px}figcaption b{font-size:14px}"
    "table.stats{border-collapse:collapse;font-size:14px}"
    "table.stats td,table.stats th{border:1px solid #ddd;padding:3px 10px;text-align:right}"
    "table.stats th{background:#f6f6f6}"
    "svg text{fill:#333}";

// The heat map of one head: row i (query) against column j (key), shading p_ij.
static void add_heatmap(Buf *b, const AttentionMaps *am, char **labels, int l, int h) {
    int T = am->T;
    // Cells shrink as the window grows; below 8 px labels cannot be read, so position
    // numbers replace them.
    int cs = T <= 16 ? 18 : T <= 32 ? 14 : T <= 64 ? 10 : T <= 128 ? 6 : 3;
    bool text_labels = cs >= 8;
    int fs = text_labels ? (cs < 12 ? cs : 11) : 9;
    int margin = text_labels ? (int)(LABEL_WIDTH * 0.62 * fs) + 8 : 30;
    int side = margin + T * cs + 2;
    bool tips = T <= 64;  // hover text on every cell: worth its bytes only for small maps
    const float *att = am->att + ((size_t)l * am->H + h) * (size_t)T * T;

    buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
                  "aria-label=\"attention of layer %d head %d\">\n", side, side, l, h);
    buf_printf(b, "<g font-family=\"ui-monospace,Menlo,Consolas,monospace\" font-size=\"%d\">\n", fs);
    for (int i = 0; i < T; i++) {
        bool show = text_labels || i % 10 == 0 || i == T - 1;
        if (!show) continue;
        double mid = margin + (i + 0.5) * cs;
        // Row label (the query) on the left, column label (the key) rotated on top.
        buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"central\">", margin - 4, mid);
        if (text_labels) buf_printf(b, "<title>position %d</title>%s", i, labels[i]);
        else buf_printf(b, "%d", i);
        buf_puts(b, "</text>");
        buf_printf(b, "<text transform=\"translate(%.1f %d) rotate(-90)\" dominant-baseline=\"central\">", mid,
                   margin - 4);
        if (text_labels) buf_printf(b, "<title>position %d</title>%s", i, labels[i]);
        else buf_printf(b, "%d", i);
        buf_puts(b, "</text>\n");
    }
    buf_puts(b, "</g>\n");
    // The grid in cell units: one unit per token.
    buf_printf(b, "<g transform=\"translate(%d %d) scale(%d)\">\n", margin, margin, cs);
    buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", T, T);
    if (T > 1) {
        // The masked future (j > i) as one grey staircase.
        buf_printf(b, "<path fill=\"#e9e9e9\" d=\"M1 0H%dV%d", T, T - 1);
        for (int k = T - 1; k >= 1; k--) buf_printf(b, "H%dV%d", k, k - 1);
        buf_puts(b, "Z\"/>\n");
    }
    buf_puts(b, "<g fill=\"#08306b\">\n");
    for (int i = 0; i < T; i++) {
        for (int j = 0; j <= i; j++) {
            float p = att[(size_t)i * T + j];
            if (p < 0.0005f) continue;  // would round to white
            buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"1\" height=\"1\" fill-opacity=\"%.3f\">", j, i, (double)p);
            if (tips) buf_printf(b, "<title>%d \xE2\x86\x92 %d: %.3f</title>", i, j, (double)p);
            buf_puts(b, "</rect>\n");
        }
    }
    buf_puts(b, "</g>\n");
    buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\" stroke-width=\"%g\"/>\n", T, T,
               1.0 / cs);
    buf_puts(b, "</g>\n</svg>\n");
}

char *attention_page_html(const AttentionMaps *am, const Tokenizer *tok, int layer, int head, const char *title,
                          size_t *len) {
    int T = am->T;
    // Each token's axis label, once.
    char **labels = xmalloc((size_t)T * sizeof *labels);
    for (int i = 0; i < T; i++) {
        Buf lb = {0};
        size_t n = 0;
        const unsigned char *bytes = tokenizer_token_bytes(tok, am->tokens[i], &n);
        if (bytes && n > 0) add_visible(&lb, bytes, n, LABEL_WIDTH);
        else buf_printf(&lb, "#%d", am->tokens[i]);
        labels[i] = buf_take(&lb, NULL);
    }

    Buf b = {0};
    buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Attention: ");
    markup_escape(&b, title);
    buf_printf(&b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Attention: ", page_css);
    markup_escape(&b, title);
    buf_puts(&b, "</h1>\n");
    buf_printf(&b, "<p>%d layer%s &times; %d head%s over %d token%s", am->L, am->L == 1 ? "" : "s", am->H,
               am->H == 1 ? "" : "s", T, T == 1 ? "" : "s");
    if (am->n_prompt > (size_t)T)
        buf_printf(&b, " (the last %d of the prompt's %zu: attention spans one window of block_size tokens)", T,
                   am->n_prompt);
    buf_puts(&b, ". The tokens shown:</p>\n<p><span class=\"tok\">");
    // As one text: a character split over two tokens is whole again.
    Buf text = {0};
    for (int i = 0; i < T; i++) {
        size_t n = 0;
        const unsigned char *bytes = tokenizer_token_bytes(tok, am->tokens[i], &n);
        if (bytes) buf_add(&text, (const char *)bytes, n);
    }
    if (text.len) add_visible(&b, (const unsigned char *)text.s, text.len, 0);
    buf_free(&text);
    buf_puts(&b, "</span></p>\n");

    buf_puts(&b,
             "<h2>How to read it</h2>\n<ul>\n"
             "<li>Each map is one head. Row <i>i</i> is the query at position <i>i</i> (the token whose "
             "representation is being updated), column <i>j</i> the key it attends to; the shading is the "
             "attention probability <i>p<sub>ij</sub></i>, from white (0) to dark blue (1). Every row sums to 1. "
             "Grey cells (<i>j</i> &gt; <i>i</i>) are the masked future. Hover a cell for its value.</li>\n"
             "<li><b>Mean distance</b> = the average over rows of &sum;<sub><i>j</i></sub> <i>p<sub>ij</sub></i> "
             "(<i>i</i> &minus; <i>j</i>), in tokens: about 0 means a head mostly looks at the token itself, about 1 "
             "at the previous token, larger values further back.</li>\n"
             "<li><b>Mean entropy</b> = the average over rows of &minus;&sum;<sub><i>j</i></sub> "
             "<i>p<sub>ij</sub></i> ln <i>p<sub>ij</sub></i>, in nats: 0 means each row puts all its weight on one "
             "token; a row spread evenly over its <i>i</i>+1 visible tokens has ln(<i>i</i>+1).</li>\n"
             "<li>Token labels show a space as &#9251;, a newline as &#9166;, a tab as &#8677;, and bytes that "
             "are not printable text as \\xNN; long tokens are cut with &hellip;.</li>\n</ul>\n");

    buf_puts(&b, "<h2>Summary</h2>\n<table class=\"stats\">\n<tr><th>layer</th><th>head</th>"
                "<th>mean distance (tokens)</th><th>mean entropy (nats)</th></tr>\n");
    for (int l = 0; l < am->L; l++) {
        if (layer >= 0 && l != layer) continue;
        for (int h = 0; h < am->H; h++) {
            if (head >= 0 && h != head) continue;
            const AttentionStats *st = &am->stats[(size_t)l * am->H + h];
            buf_printf(&b, "<tr><td>%d</td><td>%d</td><td>%.2f</td><td>%.2f</td></tr>\n", l, h, st->mean_distance,
                       st->mean_entropy);
        }
    }
    buf_puts(&b, "</table>\n");

    for (int l = 0; l < am->L; l++) {
        if (layer >= 0 && l != layer) continue;
        buf_printf(&b, "<h2>Layer %d</h2>\n<div class=\"maps\">\n", l);
        for (int h = 0; h < am->H; h++) {
            if (head >= 0 && h != head) continue;
            const AttentionStats *st = &am->stats[(size_t)l * am->H + h];
            buf_printf(&b, "<figure>\n<figcaption><b>layer %d, head %d</b> &middot; mean distance %.2f &middot; "
                           "mean entropy %.2f nats</figcaption>\n", l, h, st->mean_distance, st->mean_entropy);
            add_heatmap(&b, am, labels, l, h);
            buf_puts(&b, "</figure>\n");
        }
        buf_puts(&b, "</div>\n");
    }
    buf_puts(&b, "</body>\n</html>\n");

    for (int i = 0; i < T; i++) free(labels[i]);
    free(labels);
    return buf_take(&b, len);
}
