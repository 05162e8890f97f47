/* memlog.c: a --mem-log file read back and drawn (see memlog.h). */
#include "memlog.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The whole number after `key` (spaces allowed after the colon, as JSON
 * does), or -1. Digits only: the monitor writes %llu, and a fraction or an
 * exponent would let a value be as small as 5e-324, which the chart cannot
 * step through (a grid step of 0 never ends). */
static int field(const char *line, size_t len, const char *key, double *out)
{
    size_t klen = strlen(key);
    const char *p = memmem(line, len, key, klen);
    if (!p)
        return -1;
    const char *end = line + len;
    p += klen;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    uint64_t v = 0;
    const char *digits = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > MEMLOG_MAX)
            return -1;
    }
    if (p == digits || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
        return -1;
    *out = (double)v;
    return 0;
}

int memlog_parse_line(const char *line, size_t len, memlog_sample *out)
{
    memlog_sample x;
    if (!line || field(line, len, "\"rows\":", &x.rows) || field(line, len, "\"rss\":", &x.rss) ||
        field(line, len, "\"tracked\":", &x.tracked))
        return -1;
    *out = x;
    return 0;
}

int memlog_series_add(memlog_series *s, const memlog_sample *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if (cap > SIZE_MAX / sizeof(double))
            return -1;
        /* Each array that grew is kept: all three hold at least s->cap. */
        double *a = realloc(s->rows, cap * sizeof *a);
        if (!a)
            return -1;
        s->rows = a;
        double *b = realloc(s->rss, cap * sizeof *b);
        if (!b)
            return -1;
        s->rss = b;
        double *c = realloc(s->tracked, cap * sizeof *c);
        if (!c)
            return -1;
        s->tracked = c;
        s->cap = cap;
    }
    s->rows[s->n] = x->rows;
    s->rss[s->n] = x->rss;
    s->tracked[s->n] = x->tracked;
    s->n++;
    return 0;
}

void memlog_series_free(memlog_series *s)
{
    free(s->rows);
    free(s->rss);
    free(s->tracked);
    *s = (memlog_series){0};
}

/* A round step near range/5: 1, 2 or 5 times a power of ten. */
static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    double step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
    /* The parser admits whole numbers only, so range >= 1e-6 here; a step
     * that is not positive would never end the grid's loops. */
    return step > 0 && isfinite(step) ? step : range > 0 ? range : 1;
}

/* Length of the UTF-8 sequence at s that is a character XML 1.0 allows
 * (tab, newline, CR, U+0020..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF), or
 * 0. */
static size_t xml_char(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n)
        return 0;
    unsigned long cp = c & (0x3Fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    int shortest = (n == 2 && cp >= 0x80) || (n == 3 && cp >= 0x800) || (n == 4 && cp >= 0x10000);
    int allowed = cp <= 0xD7FF || (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
    return shortest && allowed ? n : 0;
}

/* The title comes from the log's file name, which may be any bytes: what is
 * not a character XML allows becomes U+FFFD, so the chart stays well-formed. */
static void xml_text(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        size_t n = xml_char(s);
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (n) fwrite(s, 1, n, f);
        else fputs("\xEF\xBF\xBD", f);
        s += n ? n : 1;
    }
}

void memlog_chart(FILE *f, const memlog_series *s, const char *title)
{
    const double W = 820, H = 460, L = 80, R = 30, T = 50, B = 60;
    double xmax = s->rows[s->n - 1] > 0 ? s->rows[s->n - 1] : 1, ymax = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->rss[i] > ymax) ymax = s->rss[i];
        if (s->tracked[i] > ymax) ymax = s->tracked[i];
    }
    ymax = ymax / 1048576.0 * 1.15;
    if (ymax <= 0) ymax = 1;
    double xs = nice_step(xmax), ys = nice_step(ymax);
    ymax = ceil(ymax / ys) * ys;
    double pw = W - L - R, ph = H - T - B;
#define PX(x) (L + (x) / xmax * pw)
#define PY(y) (T + ph - (y) / ymax * ph)
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<title>", W, H, W, H);
    xml_text(f, title);
    fprintf(f, "</title>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">", L);
    xml_text(f, title);
    fputs("</text>\n<g stroke=\"#ddd\">\n", f);
    for (double x = 0; x <= xmax * 1.0001; x += xs)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(x), T, PX(x), T + ph);
    for (double y = 0; y <= ymax * 1.0001; y += ys)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, PY(y), L + pw, PY(y));
    fputs("</g>\n<g text-anchor=\"middle\">\n", f);
    for (double x = 0; x <= xmax * 1.0001; x += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.0f</text>\n", PX(x), T + ph + 18, x);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">rows done</text>\n</g>\n<g text-anchor=\"end\">\n",
            L + pw / 2, H - 14);
    for (double y = 0; y <= ymax * 1.0001; y += ys)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%g</text>\n", L - 8, PY(y) + 4, y);
    fprintf(f, "</g>\n<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">"
               "memory (MiB)</text>\n",
            T + ph / 2);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n",
            L, T, pw, ph);
    const char *colour[2] = {"#1f77b4", "#d62728"};
    const double *ys2[2] = {s->rss, s->tracked};
    for (int k = 0; k < 2; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour[k]);
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(s->rows[i]), PY(ys2[k][i] / 1048576.0));
        fputs("\"/>\n", f);
    }
    const char *label[2] = {"RSS (resident set size)", "tracked by the census"};
    for (int k = 0; k < 2; k++) {
        double y = T + 16 + k * 18;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                L + pw - 210, y - 4, L + pw - 186, y - 4, colour[k], L + pw - 180, y, label[k]);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
}

