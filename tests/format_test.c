/* format_test.c: value formatters (issue 9, point 1), end to end.
 *   format_test
 *
 * - every formatter's output and edge cases through sf_fmt_parse and
 *   sf_fmt_apply (dates with zones, leap years, leap seconds, Unix seconds
 *   negative and fractional, ranges; RFC 3986 url and query; HTML to text;
 *   trunc on code points; dec by decimal arithmetic), and the dates against
 *   the C library's gmtime over the whole range of years;
 * - the compiler: formatter parts in feed templates, the compile-time rule
 *   (keys only after json or inside a section on a JSON value) with its
 *   file:line:col errors, the spec's HTML mode unchanged, the names the
 *   template reads (the column, not the formatters);
 * - the renderer: formatted values escaped by their XML context, a refused
 *   value as SF_ERR_INVALID with sf_tpl_run_bad(), the per-row arena limit,
 *   out of memory, and a row loop that allocates nothing after its first row.
 * Prints "PASS: name" / "FAIL: name: detail"; exits 1 if anything failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "template/template.h"
#include "value/arena.h"
#include "value/date.h"
#include "value/format.h"

/* ---- formatters alone ------------------------------------------------------- */

static sf_census *g_cs;
static sf_arena g_arena;

/* Applies formatter `spell` to text in[0..n): the output (NUL-terminated
 * copy in a static buffer), or NULL with the reason in *why. */
static const char *apply(const char *spell, const char *in, size_t n, sf_val *outv,
                         const char **why)
{
    static char buf[1 << 16], whybuf[512];
    sf_fmt_call call;
    char pwhy[256];
    if (sf_fmt_parse(spell, strlen(spell), &call, pwhy, sizeof pwhy) != 1) {
        snprintf(whybuf, sizeof whybuf, "(not a formatter: %s)", spell);
        *why = whybuf;
        return NULL;
    }
    sf_val v = {.kind = SF_VAL_TEXT, .truthy = n > 0, .s = in, .n = n};
    sf_val out;
    whybuf[0] = '\0';
    sf_arena_reset(&g_arena);
    int rc = sf_fmt_apply(&g_arena, &call, &v, &out, whybuf, sizeof whybuf);
    *why = whybuf;
    if (rc != SF_FMT_OK)
        return NULL;
    if (outv)
        *outv = out;
    if (out.kind != SF_VAL_TEXT || out.n >= sizeof buf)
        return "(not text)";
    memcpy(buf, out.s, out.n);
    buf[out.n] = '\0';
    return buf;
}

static void fmt_ok(const char *spell, const char *in, const char *want)
{
    const char *why;
    const char *got = apply(spell, in, strlen(in), NULL, &why);
    char name[300];
    snprintf(name, sizeof name, "%s(\"%.60s\") = \"%.60s\"", spell, in, want);
    for (char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    check(got && strcmp(got, want) == 0, name, "got \"%s\" (%s)", got ? got : "(refused)", why);
}

static void fmt_bad(const char *spell, const char *in, const char *want_why)
{
    const char *why;
    const char *got = apply(spell, in, strlen(in), NULL, &why);
    char name[300];
    snprintf(name, sizeof name, "%s(\"%.60s\") refused: %s", spell, in, want_why);
    check(!got && strstr(why, want_why) != NULL, name, "got \"%s\", why \"%s\"",
          got ? got : "(refused)", why);
}

static void test_parse(void)
{
    static const struct {
        const char *s;
        int rc;
    } cases[] = {
        {"rfc3339", 1}, {"date", 1},      {"rfc822", 1},     {"ddmmyyyy", 1}, {"url", 1},
        {"query", 1},   {"text", 1},      {"json", 1},       {"trunc1", 1},   {"trunc150", 1},
        {"dec0", 1},    {"dec9", 1},      {"trunc0", -1},    {"trunc", -1},   {"trunc007", -1},
        {"trunc-1", 0}, {"trunc1000000001", -1}, {"dec10", -1}, {"dec", -1}, {"dec02", -1},
        {"truncate", 0}, {"decimal", 0},  {"description", 0}, {"RFC822", 0},  {"rfc3399", 0},
        {"url2", 0},    {"", 0},          {"dates", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_fmt_call call;
        char why[256] = "";
        int rc = sf_fmt_parse(cases[i].s, strlen(cases[i].s), &call, why, sizeof why);
        char name[100];
        snprintf(name, sizeof name, "parse '%s' -> %d", cases[i].s, cases[i].rc);
        check(rc == cases[i].rc && (rc != -1 || why[0]), name, "got %d (%s)", rc, why);
        if (rc == 1) {
            char sp[32];
            sf_fmt_spell(&call, sp, sizeof sp);
            snprintf(name, sizeof name, "spell '%s'", cases[i].s);
            check(strcmp(sp, cases[i].s) == 0, name, "got '%s'", sp);
        }
    }
    check(strstr(sf_fmt_names(), "rfc3339") && strstr(sf_fmt_names(), "truncN") &&
              strstr(sf_fmt_names(), "json"),
          "sf_fmt_names lists the formatters", "%s", sf_fmt_names());
}

static void test_dates(void)
{
    fmt_ok("rfc3339", "2026-01-31T09:05:00Z", "2026-01-31T09:05:00Z");
    fmt_ok("rfc3339", "2026-01-31 09:05:00", "2026-01-31T09:05:00Z"); /* no zone: UTC */
    fmt_ok("rfc3339", "2026-01-31", "2026-01-31T00:00:00Z");
    fmt_ok("rfc3339", "2026-01-31T09:05", "2026-01-31T09:05:00Z");
    fmt_ok("rfc3339", "2026-01-31 09:05:00+05:30", "2026-01-31T09:05:00+05:30");
    fmt_ok("rfc3339", "2026-01-31 09:05:00-0800", "2026-01-31T09:05:00-08:00");
    fmt_ok("rfc3339", "2026-01-31 09:05:00+00", "2026-01-31T09:05:00Z"); /* PostgreSQL */
    fmt_ok("rfc3339", "2026-01-31 09:05:00-00:00", "2026-01-31T09:05:00Z");
    fmt_ok("rfc3339", "2026-01-31 09:05:00.123456+02", "2026-01-31T09:05:00+02:00");
    fmt_ok("rfc3339", "2026-01-31T09:05:07.999", "2026-01-31T09:05:07Z"); /* truncated */
    fmt_ok("rfc3339", " 2026-01-31 09:05:00 UTC\n", "2026-01-31T09:05:00Z");
    fmt_ok("rfc3339", "2026-01-31t09:05:00z", "2026-01-31T09:05:00Z");
    fmt_ok("rfc3339", "2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"); /* leap second */
    fmt_ok("rfc822", "2016-12-31T23:59:60Z", "Sat, 31 Dec 2016 23:59:60 +0000");
    fmt_ok("rfc822", "2026-01-31T09:05:00Z", "Sat, 31 Jan 2026 09:05:00 +0000");
    fmt_ok("rfc822", "2026-01-31 09:05:00+05:30", "Sat, 31 Jan 2026 09:05:00 +0530");
    fmt_ok("rfc822", "2026-01-31 09:05:00-0800", "Sat, 31 Jan 2026 09:05:00 -0800");
    fmt_ok("rfc822", "2026-02-01 00:30:00+14:00", "Sun, 01 Feb 2026 00:30:00 +1400");
    fmt_ok("rfc822", "2024-02-29", "Thu, 29 Feb 2024 00:00:00 +0000");
    fmt_ok("rfc822", "2000-02-29", "Tue, 29 Feb 2000 00:00:00 +0000");
    fmt_ok("rfc822", "0000-01-01", "Sat, 01 Jan 0000 00:00:00 +0000");
    fmt_ok("rfc822", "9999-12-31 23:59:59", "Fri, 31 Dec 9999 23:59:59 +0000");
    fmt_ok("date", "2026-01-31T23:59:60+05:30", "2026-01-31"); /* the local date */
    fmt_ok("date", "2026-01-31", "2026-01-31");
    fmt_ok("ddmmyyyy", "2026-01-31 09:05:00", "31.01.2026");
    fmt_ok("ddmmyyyy", "0999-03-07", "07.03.0999");
    /* Unix seconds (SQLite's unixepoch). */
    fmt_ok("rfc3339", "0", "1970-01-01T00:00:00Z");
    fmt_ok("rfc3339", "1700000000", "2023-11-14T22:13:20Z");
    fmt_ok("rfc822", "1700000000", "Tue, 14 Nov 2023 22:13:20 +0000");
    fmt_ok("rfc3339", "-1", "1969-12-31T23:59:59Z");
    fmt_ok("rfc3339", "-1.5", "1969-12-31T23:59:58Z"); /* the instant's fraction dropped */
    fmt_ok("rfc3339", "1.999", "1970-01-01T00:00:01Z");
    fmt_ok("rfc3339", "-0.25", "1969-12-31T23:59:59Z");
    fmt_ok("rfc3339", "-86400", "1969-12-31T00:00:00Z");
    fmt_ok("rfc3339", "951782400", "2000-02-29T00:00:00Z");
    fmt_ok("rfc3339", "-62167219200", "0000-01-01T00:00:00Z");
    fmt_ok("rfc3339", "253402300799", "9999-12-31T23:59:59Z");
    fmt_ok("date", " 1700000000 ", "2023-11-14");
    fmt_bad("rfc3339", "253402300800", "'253402300800' is not a date: Unix seconds outside");
    fmt_bad("rfc3339", "-62167219201", "outside the years 0000-9999");
    fmt_bad("rfc3339", "99999999999999999999999", "outside the years 0000-9999");
    /* Invalid dates and ranges. */
    fmt_bad("rfc822", "yesterday", "'yesterday' is not a date");
    fmt_bad("rfc822", "2026-13-01", "'2026-13-01' is not a date: month 13 is out of range");
    fmt_bad("rfc822", "2026-00-01", "month 00 is out of range");
    fmt_bad("rfc822", "2026-02-30", "'2026-02-30' is not a date: 2026-02 has 28 days");
    fmt_bad("rfc822", "2023-02-29", "2023-02 has 28 days");
    fmt_bad("rfc822", "1900-02-29", "1900-02 has 28 days");
    fmt_bad("rfc822", "2100-02-29", "2100-02 has 28 days");
    fmt_bad("rfc822", "2026-04-31", "2026-04 has 30 days");
    fmt_bad("rfc822", "2026-01-00", "2026-01 has 31 days");
    fmt_bad("rfc822", "2026-01-31 24:00", "hour 24 is out of range");
    fmt_bad("rfc822", "2026-01-31 23:60", "minute 60 is out of range");
    fmt_bad("rfc822", "2026-01-31 23:59:61", "second 61 is out of range");
    fmt_bad("rfc822", "2026-01-31T09:05:00+24:00", "zone +24:00 is out of range");
    fmt_bad("rfc822", "2026-01-31T09:05:00-05:60", "zone -05:60 is out of range");
    static const char *const junk[] = {
        "2026-1-31", "2026-01-31T", "2026-01-31T09", "2026-01-31T09:5", "2026-01-31 09:05:00 PST",
        "2026-01-31T09:05:00+05:3", "2026-01-31T09:05:00+5", "2026-01-31T09:05:00.", "1e9",
        "12:30", "+", "-", "1.", "2026/01/31", "31.01.2026", "2026-01-31Z", "2026-01-31 UTC",
        "２０２６-01-31", "2026-01-31T09:05:00Z ", /* trailing blank trimmed: fine below */
    };
    for (size_t i = 0; i + 1 < sizeof junk / sizeof junk[0]; i++) {
        char want[100];
        snprintf(want, sizeof want, "'%s' is not a date", junk[i]);
        fmt_bad("rfc3339", junk[i], want);
    }
    fmt_ok("rfc3339", junk[sizeof junk / sizeof junk[0] - 1], "2026-01-31T09:05:00Z");
    /* A long value is quoted by its start, cut on a character boundary. */
    char longv[200] = "", longwhy[200] = "'";
    for (int i = 0; i < 37; i++)
        strcat(longv, "\xC3\xA9");
    strncat(longwhy, longv, 40); /* 20 characters */
    strcat(longwhy, "...' is not a date");
    fmt_bad("date", longv, longwhy);
    fmt_bad("date", "a\tb", "'a?b' is not a date");
}

/* Unix seconds and civil dates against gmtime() over the whole range. */
static void test_dates_sweep(void)
{
    const long long lo = -62167219200LL, hi = 253402300799LL;
    int bad = 0;
    long long n = 0;
    char first[200] = "";
    for (long long t = lo; t <= hi && bad < 5; t += 7000000 + (n++ % 86400)) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm))
            continue;
        char want[64], want3339[64], in[32];
        strftime(want, sizeof want, "%a, %d %b ", &tm);
        snprintf(want + strlen(want), sizeof want - strlen(want), "%04d %02d:%02d:%02d +0000",
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        snprintf(want3339, sizeof want3339, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        snprintf(in, sizeof in, "%lld", t);
        const char *why;
        sf_arena_reset(&g_arena);
        const char *got = apply("rfc822", in, strlen(in), NULL, &why);
        int ok = got && strcmp(got, want) == 0;
        /* The civil date written out reads back as the same date. */
        got = ok ? apply("rfc3339", want3339, strlen(want3339), NULL, &why) : NULL;
        ok = ok && got && strcmp(got, want3339) == 0;
        long long days = sf_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        ok = ok && days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec == t;
        if (!ok && bad++ == 0)
            snprintf(first, sizeof first, "%lld: want %s, got %s", t, want, got ? got : why);
    }
    check(bad == 0 && n > 40000, "dates: Unix seconds, weekdays and day numbers match gmtime over 0000-9999",
          "%d bad of %lld (%s)", bad, n, first);
}

static void test_url(void)
{
    fmt_ok("url", "https://example.com/a b?q=1&r=\xC3\xBC#frag",
           "https://example.com/a%20b?q=1&r=%C3%BC#frag");
    fmt_ok("url", "http://h/p?a=%20b%zz%4", "http://h/p?a=%20b%25zz%254"); /* %XX kept */
    fmt_ok("url", "a\"<>\\^`{|}b", "a%22%3C%3E%5C%5E%60%7B%7C%7Db");
    fmt_ok("url", "a\tb\x7f\x01", "a%09b%7F%01");
    fmt_ok("url", "http://[::1]:8080/x;y,z!$&'()*+=@~._-", "http://[::1]:8080/x;y,z!$&'()*+=@~._-");
    fmt_ok("url", "\xE6\x97\xA5\xFF", "%E6%97%A5%FF");
    fmt_ok("url", "%", "%25");
    fmt_ok("query", "a b&c=d/\xC3\xA9~._-", "a%20b%26c%3Dd%2F%C3%A9~._-");
    fmt_ok("query", "100%", "100%25");
    fmt_ok("query", "%41", "%2541"); /* one value: its '%' is data */
    fmt_ok("query", "ABCxyz019-._~", "ABCxyz019-._~");
    fmt_ok("query", "?#[]@!$'()*+,;:", "%3F%23%5B%5D%40%21%24%27%28%29%2A%2B%2C%3B%3A");
    /* Nothing to encode: the value itself, no copy. */
    const char *in = "https://example.com/ok";
    sf_val out;
    const char *why;
    apply("url", in, strlen(in), &out, &why);
    check(out.s == in && out.n == strlen(in), "url: a URL needing nothing is not copied", "%p %p",
          (const void *)out.s, (const void *)in);
}

static void test_text(void)
{
    {
        /* &#128;-&#159; as HTML reads them (Windows-1252), as Python's
         * html.unescape gives them (review: C1 controls came out). */
        static const char *const cp1252[32] = {"\xE2\x82\xAC", "\xC2\x81", "\xE2\x80\x9A", "\xC6\x92", "\xE2\x80\x9E", "\xE2\x80\xA6", "\xE2\x80\xA0", "\xE2\x80\xA1", "\xCB\x86", "\xE2\x80\xB0", "\xC5\xA0", "\xE2\x80\xB9", "\xC5\x92", "\xC2\x8D", "\xC5\xBD", "\xC2\x8F", "\xC2\x90", "\xE2\x80\x98", "\xE2\x80\x99", "\xE2\x80\x9C", "\xE2\x80\x9D", "\xE2\x80\xA2", "\xE2\x80\x93", "\xE2\x80\x94", "\xCB\x9C", "\xE2\x84\xA2", "\xC5\xA1", "\xE2\x80\xBA", "\xC5\x93", "\xC2\x9D", "\xC5\xBE", "\xC5\xB8"};
        for (int v = 128; v < 160; v++) {
            char in[16];
            snprintf(in, sizeof in, "&#%d;", v);
            fmt_ok("text", in, cp1252[v - 128]);
        }
    }
    fmt_ok("text", "a<!-->b<!--->c<!-- x -->d", "abcd"); /* HTML's empty comments */
    fmt_ok("text", "<p>Hello <b>world</b></p><p>Second&nbsp;para</p>", "Hello world Second para");
    fmt_ok("text", "a &amp; b &lt; c &gt; d &quot;e&quot; &#39;f&#39; &apos;g&apos;",
           "a & b < c > d \"e\" 'f' 'g'");
    fmt_ok("text", "&#x263A;&#9786;&#X263a; caf&eacute; &Uuml;ber &euro;5 &hellip;&mdash;&copy;",
           "\xE2\x98\xBA\xE2\x98\xBA\xE2\x98\xBA caf\xC3\xA9 \xC3\x9C" "ber \xE2\x82\xAC" "5 "
           "\xE2\x80\xA6\xE2\x80\x94\xC2\xA9");
    fmt_ok("text", "&#128512;", "\xF0\x9F\x98\x80");
    fmt_ok("text", "<script>alert('<b>x</b>')</script>Visible<style>p{a:b}</style> text",
           "Visible text");
    fmt_ok("text", "<SCRIPT type=\"x\">var a = '</scr' + 'ipt>';</SCRIPT>B", "B");
    fmt_ok("text", "<P>A</P><Script>x</Script >B", "A B");
    fmt_ok("text", "<div><ul><li>One</li><li>Two<br/>Three</li></ul></div>", "One Two Three");
    fmt_ok("text", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b c");
    fmt_ok("text", "a<span>b</span><em>c</em>", "abc");
    fmt_ok("text", "a<br>b<h2>c</h2>d<hr/>e", "a b c d e");
    fmt_ok("text", "a<!-- <p>hidden</p> -->b", "ab");
    fmt_ok("text", "a<!-- never closed", "a");
    fmt_ok("text", "<!DOCTYPE html><?xml version=\"1.0\"?>x", "x");
    fmt_ok("text", "1 < 2 and 3<4, a <= b", "1 < 2 and 3<4, a <= b");
    fmt_ok("text", "<a href=\"x>y\" title='>'>link</a>", "link");
    fmt_ok("text", "  a \n\t b  \r\n", "a b");
    fmt_ok("text", "\xC2\xA0 a\xC2\xA0\xC2\xA0" "b \xC2\xA0", "a b");
    fmt_ok("text", "&foo; &amp &#; &#x; &#12a; & ;", "&foo; &amp &#; &#x; &#12a; & ;");
    fmt_ok("text", "&#0;&#xD800;&#1114112;&#99999999999;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    fmt_ok("text", "a&#10;&#32;&#9;b", "a b");
    fmt_ok("text", "<![CDATA[x < y]]>z", "x < yz");
    fmt_ok("text", "text <b", "text");
    fmt_ok("text", "a</ >b</>c", "abc");
    fmt_ok("text", "<p>&lt;script&gt;x&lt;/script&gt;</p>", "<script>x</script>");
    fmt_ok("text", "<p><p><p></p>", "");
    fmt_ok("text", "<p>\xE6\x97\xA5\xE6\x9C\xAC</p> \xFF", "\xE6\x97\xA5\xE6\x9C\xAC \xFF");
    const char *in = "plain words, nothing to do";
    sf_val out;
    const char *why;
    apply("text", in, strlen(in), &out, &why);
    check(out.s == in, "text: plain text is not copied", "%p", (const void *)out.s);
}

static void test_trunc(void)
{
    fmt_ok("trunc5", "hello world", "hello");
    fmt_ok("trunc3", "h\xC3\xA9llo", "h\xC3\xA9l");
    fmt_ok("trunc2", "h\xC3\xA9llo", "h\xC3\xA9");
    fmt_ok("trunc2", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE6\x97\xA5\xE6\x9C\xAC");
    fmt_ok("trunc1", "\xF0\x9F\x98\x80x", "\xF0\x9F\x98\x80");
    fmt_ok("trunc4", "ab\xFF\xFE" "cd", "ab\xFF\xFE");
    fmt_ok("trunc3", "abc", "abc");
    /* Stray continuation bytes are characters too: each becomes a U+FFFD
     * in the output (review: "ab" + 9 x 0x80 passed trunc3 whole). */
    fmt_ok("trunc3", "ab\x80\x80\x80\x80\x80\x80\x80\x80\x80", "ab\x80");
    fmt_ok("trunc2", "\xC3\xA9\xA9\xA9\xA9\xA9", "\xC3\xA9\xA9");
    fmt_ok("trunc2", "\xE2\x82x", "\xE2\x82x"); /* E2 82: one ill-formed subpart, then x */
    fmt_ok("trunc1", "\xE2\x82x", "\xE2\x82");
    {
        size_t cut;
        check(sf_fmt_chars("a\xED\xA0\x80" "b", 5, SIZE_MAX, &cut) == 5 && cut == 5,
              "chars: an encoded surrogate is three ill-formed bytes, as the escaper reads it",
              "%zu", sf_fmt_chars("a\xED\xA0\x80" "b", 5, SIZE_MAX, &cut));
    }
    fmt_ok("trunc150", "short", "short");
    const char *in = "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    sf_val out;
    const char *why;
    apply("trunc3", in, strlen(in), &out, &why);
    check(out.s == in && out.n == 9, "trunc: 3 characters of 3 (9 bytes) is the value itself",
          "%zu", out.n);
}

static void test_dec(void)
{
    fmt_ok("dec2", "12.5", "12.50");
    fmt_ok("dec2", "-0.005", "-0.01");
    fmt_ok("dec2", "0.005", "0.01");
    fmt_ok("dec2", "0.004", "0.00");
    fmt_ok("dec2", "-0.004", "0.00"); /* no negative zero */
    fmt_ok("dec0", "12.5", "13");
    fmt_ok("dec0", "-12.5", "-13");
    fmt_ok("dec0", "12.49", "12");
    fmt_ok("dec0", "0", "0");
    fmt_ok("dec0", "-0", "0");
    fmt_ok("dec2", "9.995", "10.00");
    fmt_ok("dec2", "-999.999", "-1000.00");
    fmt_ok("dec3", "1", "1.000");
    fmt_ok("dec1", " +007.25 ", "7.3");
    fmt_ok("dec2", ".5", "0.50");
    fmt_ok("dec2", "5.", "5.00");
    fmt_ok("dec2", "00000", "0.00");
    fmt_ok("dec9", "0.1234567895", "0.123456790");
    fmt_ok("dec9", "-1", "-1.000000000");
    fmt_ok("dec2", "123456789012345678901234567890.125", "123456789012345678901234567890.13");
    fmt_ok("dec0", "99999999999999999999999999999999999999.5",
           "100000000000000000000000000000000000000");
    fmt_ok("dec2", "2.675", "2.68"); /* decimal, not the float 2.67499... */
    fmt_ok("dec1", "0.05", "0.1");
    fmt_ok("dec1", "0.0499999", "0.0");
    /* The exponent form databases print floats in (review: SQLite REAL
     * 0.00001 reaches the formatter as 1.0e-05, PostgreSQL's as 1e-05). */
    fmt_ok("dec2", "1e3", "1000.00");
    fmt_ok("dec2", "1.0e-05", "0.00");
    fmt_ok("dec5", "1.0e-05", "0.00001");
    fmt_ok("dec2", "1e-05", "0.00");
    fmt_ok("dec0", "1.0e+16", "10000000000000000");
    fmt_ok("dec2", "-2.675E0", "-2.68");
    fmt_ok("dec1", "12.34e1", "123.4");
    fmt_ok("dec2", "5E-3", "0.01");
    fmt_ok("dec2", ".5e1", "5.00");
    static const char *const bad[] = {"1e",  "1e+", "e3",    "1e3.5", "1e99999", "abc",
                                      "1.2.3", "--1", ".", "-", "1 000", "0x10",
                                      "Infinity", "NaN", "1,5", "+-1", "1-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "'%s' is not a number", bad[i]);
        fmt_bad("dec2", bad[i], want);
    }
    sf_val out;
    const char *why;
    apply("dec2", "0.001", 5, &out, &why);
    check(!out.truthy, "dec: a zero result is falsy", "%d", out.truthy);
    apply("dec2", "0.005", 5, &out, &why);
    check(out.truthy, "dec: a non-zero result is truthy", "%d", out.truthy);
}

static void test_values(void)
{
    static const char *const all[] = {"rfc3339", "date", "rfc822", "ddmmyyyy", "url", "query",
                                      "text", "trunc3", "dec2", "json"};
    int ok = 1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sf_fmt_call call;
        sf_fmt_parse(all[i], strlen(all[i]), &call, NULL, 0);
        for (int k = SF_VAL_MISSING; k <= SF_VAL_NULL; k++) {
            sf_val in = {.kind = (uint8_t)k}, out;
            char why[256];
            ok &= sf_fmt_apply(&g_arena, &call, &in, &out, why, sizeof why) == SF_FMT_OK &&
                  out.kind == k && !out.truthy;
        }
    }
    check(ok, "MISSING and NULL pass through every formatter, falsy", "%s", "");
    /* BOOL is text for text formatters; a list or map is refused. */
    sf_fmt_call call;
    char why[256];
    sf_fmt_parse("trunc3", 6, &call, NULL, 0);
    sf_val b = {.kind = SF_VAL_BOOL, .truthy = 0}, out;
    int rc = sf_fmt_apply(&g_arena, &call, &b, &out, why, sizeof why);
    check(rc == SF_FMT_OK && out.kind == SF_VAL_TEXT && out.n == 3 && !memcmp(out.s, "fal", 3),
          "BOOL false is the text \"false\" (trunc3: \"fal\")", "%d", rc);
    sf_fmt_parse("url", 3, &call, NULL, 0);
    sf_val l = {.kind = SF_VAL_LIST, .truthy = 1};
    rc = sf_fmt_apply(&g_arena, &call, &l, &out, why, sizeof why);
    check(rc == SF_FMT_INVALID && strstr(why, "a list, not text"), "a list given to url is refused",
          "%d %s", rc, why);
    sf_fmt_parse("json", 4, &call, NULL, 0);
    rc = sf_fmt_apply(&g_arena, &call, &l, &out, why, sizeof why);
    check(rc == SF_FMT_OK && out.kind == SF_VAL_LIST, "json passes a JSON value through", "%d", rc);
    fmt_ok("rfc822", "", ""); /* empty stays empty */
    fmt_ok("json", "", "");   /* json too: a column with no list (review) */
    fmt_ok("dec2", "", "");
    sf_val v = {.kind = SF_VAL_TEXT, .truthy = 1, .s = "[1,2]", .n = 5};
    rc = sf_fmt_apply(&g_arena, &call, &v, &out, why, sizeof why);
    check(rc == SF_FMT_OK && out.kind == SF_VAL_LIST && out.truthy, "json: an array is a list",
          "%d %s", rc, why);
    fmt_bad("json", "[1,", "'[1,' is not JSON: at byte 3 (the end): expected a value");
}

/* ---- a data model: a root map with a rows list, rows as name/value pairs ------ */

typedef struct kv {
    const char *k, *v; /* v NULL: SQL NULL */
} kv;

typedef struct model {
    const kv *root;
    const kv *const *rows; /* NULL-terminated */
    size_t nrows;
} model;

static const sf_data_ops map_ops, list_ops, rootmap_ops;

static int kv_lookup(const kv *m, const char *name, size_t len, sf_val *out)
{
    for (; m && m->k; m++)
        if (strlen(m->k) == len && memcmp(m->k, name, len) == 0) {
            memset(out, 0, sizeof *out);
            if (!m->v) {
                out->kind = SF_VAL_NULL;
                return 1;
            }
            out->kind = SF_VAL_TEXT;
            out->s = m->v;
            out->n = strlen(m->v);
            out->truthy = out->n > 0;
            return 1;
        }
    return 0;
}

static int map_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym;
    return kv_lookup(obj, name, len, out);
}

static int root_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym;
    model *m = obj;
    if (len == 4 && memcmp(name, "rows", 4) == 0) {
        memset(out, 0, sizeof *out);
        out->kind = SF_VAL_LIST;
        out->truthy = m->nrows > 0;
        out->ops = &list_ops;
        out->obj = m;
        return 1;
    }
    if (len == 3 && memcmp(name, "sub", 3) == 0) { /* a map, for the spec mode */
        memset(out, 0, sizeof *out);
        out->kind = SF_VAL_MAP;
        out->truthy = 1;
        out->ops = &map_ops;
        out->obj = (void *)m->root;
        return 1;
    }
    return kv_lookup(m->root, name, len, out);
}

static int list_item(void *obj, size_t idx, sf_val *out)
{
    model *m = obj;
    if (idx >= m->nrows)
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &map_ops;
    out->obj = (void *)m->rows[idx];
    return 1;
}

static const sf_data_ops map_ops = {.lookup = map_lookup};
static const sf_data_ops list_ops = {.item = list_item};
static const sf_data_ops rootmap_ops = {.lookup = root_lookup};

typedef struct membuf {
    sf_wbuf w;
} membuf;

static int mem_drain(sf_wbuf *w)
{
    size_t cap = w->cap * 2;
    char *p = realloc(w->buf, cap);
    if (!p)
        return -1;
    w->buf = p;
    w->cap = cap;
    return 0;
}

static void mem_init(membuf *m)
{
    m->w.cap = SF_WBUF_MIN;
    m->w.buf = malloc(m->w.cap);
    m->w.len = 0;
    m->w.drain = mem_drain;
}

static int partials(void *ud, const char *name, const char **text, size_t *len)
{
    (void)ud;
    static const char *const table[][2] = {
        {"key", "{{url.key}}"},
        {"fmt", "{{d.text.trunc3}}"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i][0], name) == 0) {
            *text = table[i][1];
            *len = strlen(*text);
            return 1;
        }
    return 0;
}

static sf_template *load(sf_census *cs, int mode, const char *src, sf_status *st)
{
    sf_template *t = sf_template_create(cs, (sf_template_mode)mode);
    *st = sf_template_load_string(t, "t.mustache", src, strlen(src), partials, NULL);
    return t;
}

/* ---- the compiler -------------------------------------------------------------- */

static void compile_err(const char *name, int mode, const char *src, const char *want)
{
    sf_status st;
    sf_template *t = load(NULL, mode, src, &st);
    const char *msg = sf_template_errmsg(t);
    check(st == SF_ERR_TEMPLATE && strstr(msg, want) != NULL, name, "status %d, message '%s'",
          (int)st, msg);
    sf_template_free(t);
}

static void compile_ok(const char *name, int mode, const char *src)
{
    sf_status st;
    sf_template *t = load(NULL, mode, src, &st);
    check(st == SF_OK, name, "status %d, message '%s'", (int)st, sf_template_errmsg(t));
    sf_template_free(t);
}

static const char *g_cols[8];

static int is_col(void *ud, const char *name)
{
    (void)ud;
    for (size_t i = 0; g_cols[i]; i++)
        if (strcmp(g_cols[i], name) == 0)
            return 1;
    return 0;
}

static int is_root(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "site") == 0;
}

static void test_compile(void)
{
    compile_err("compile: a misspelt formatter names file:line:col and the formatters",
                SF_TEMPLATE_XML, "<r>{{posted_at.rfc3399}}</r>",
                "t.mustache:1:4: {{posted_at.rfc3399}}: 'rfc3399' is not a formatter "
                "(formatters: rfc3339, date, rfc822, ddmmyyyy, url, query, text, truncN, decN, json");
    compile_err("compile: a misspelt formatter in a section, line 2", SF_TEMPLATE_XML,
                "<r>\n  {{#x.fo}}a{{/x.fo}}</r>", "t.mustache:2:3: {{#x.fo}}: 'fo' is not a formatter");
    compile_err("compile: a key after a text formatter", SF_TEMPLATE_XML, "<r>{{x.rfc822.foo}}</r>",
                "t.mustache:1:4: {{x.rfc822.foo}}: 'foo' is not a formatter");
    compile_err("compile: a dotted name without formatters", SF_TEMPLATE_XML,
                "<r>{{#rows}}{{a.b}}{{/rows}}</r>", "t.mustache:1:13: {{a.b}}: 'b' is not a formatter");
    compile_err("compile: trunc0", SF_TEMPLATE_XML, "<r>{{x.trunc0}}</r>",
                "t.mustache:1:4: {{x.trunc0}}: 'trunc0': truncN takes a number of characters from 1");
    compile_err("compile: dec10", SF_TEMPLATE_XML, "<r>{{x.dec10}}</r>",
                "{{x.dec10}}: 'dec10': decN takes a number of decimals from 0 to 9");
    compile_err("compile: text mode has formatters too", SF_TEMPLATE_TEXT, "{{a.bogus}}",
                "t.mustache:1:1: {{a.bogus}}: 'bogus' is not a formatter");
    compile_err("compile: the text pragma has formatters too", SF_TEMPLATE_XML,
                "{{! sqlfeed-format: text }}\n{{a}} {{^a.bogus}}{{/a.bogus}}",
                "t.mustache:2:7: {{^a.bogus}}: 'bogus' is not a formatter");
    compile_err("compile: a key after a formatter inside a JSON section", SF_TEMPLATE_XML,
                "<r>{{#x.json}}{{a.text.b}}{{/x.json}}</r>", "{{a.text.b}}: 'b' is not a formatter");
    compile_err("compile: a key outside a JSON section, in a partial", SF_TEMPLATE_XML,
                "<r>{{>key}}</r>", "key:1:1: {{url.key}}: 'key' is not a formatter");
    compile_err("compile: no keys inside an inverted section on a JSON value", SF_TEMPLATE_XML,
                "<r>{{^x.json}}{{a.b}}{{/x.json}}</r>", "{{a.b}}: 'b' is not a formatter");
    compile_ok("compile: keys after json", SF_TEMPLATE_XML, "<r>{{x.json.a.b}}{{x.json.a.text}}</r>");
    compile_ok("compile: keys inside a section on a JSON value", SF_TEMPLATE_XML,
               "<r>{{#x.json}}<i>{{url.text}}{{a.b}}</i>{{#c.d}}{{e.f}}{{/c.d}}{{/x.json}}</r>");
    compile_ok("compile: keys in a partial included inside a JSON section", SF_TEMPLATE_XML,
               "<r>{{#x.json}}{{>key}}{{/x.json}}</r>");
    /* The same partial inside and then outside a JSON section is two
     * compilations: the cached one must not let a key through outside
     * (review: it compiled and rendered empty, or failed by the order). */
    compile_err("compile: a partial cached inside a JSON section is not reused outside",
                SF_TEMPLATE_XML, "<r>{{#x.json}}{{>key}}{{/x.json}}{{>key}}</r>",
                "key:1:1: {{url.key}}: 'key' is not a formatter");
    compile_ok("compile: formatter chains, sections closed by their spelling", SF_TEMPLATE_XML,
               "<r a=\"{{u.url}}\">{{#d.text.trunc5000}}{{d.text.trunc5000}}{{/d.text.trunc5000}}"
               "{{p.dec2}}{{^p.dec0}}zero{{/p.dec0}}{{w.rfc822}}{{w.date}}{{w.ddmmyyyy}}"
               "{{w.rfc3339}}{{q.query}}<![CDATA[{{{c.text}}}]]></r>");
    /* A formatter's name is still a name as the first part. */
    compile_ok("compile: a formatter's name as the first part is a name", SF_TEMPLATE_XML,
               "<r>{{date}}{{text.text}}{{json.json.json}}</r>");
    /* The spec's HTML mode: dotted names are plain Mustache. */
    compile_ok("compile: spec mode keeps dotted names", SF_TEMPLATE_HTML,
               "{{a.rfc3399}}{{x.rfc822.foo}}{{a.trunc0}}");

    /* The names read: the column, not its formatters; keys inside a JSON
     * section are not names the query must provide. */
    sf_status st;
    sf_template *t = load(NULL, SF_TEMPLATE_XML,
                          "<r s=\"{{site.url}}\">{{#rows}}<i>{{posted_at.rfc822}}{{d.text.trunc5}}"
                          "{{#j.json}}{{url}}{{x.y}}{{/j.json}}{{k.json.z}}</i>{{/rows}}</r>",
                          &st);
    int ok = st == SF_OK && sf_template_row_name_count(t) == 4;
    static const char *const want[] = {"posted_at", "d", "j", "k"};
    for (size_t i = 0; ok && i < 4; i++)
        ok = strcmp(sf_template_row_name(t, i), want[i]) == 0;
    ok = ok && sf_template_root_name_count(t) == 1 && !strcmp(sf_template_root_name(t, 0), "site");
    check(ok, "names: the columns the formatters read, not the formatters or keys", "%d: %zu: %s %s",
          (int)st, sf_template_row_name_count(t), sf_template_row_name(t, 0),
          sf_template_row_name(t, 1));
    sf_errbuf err = {{0}};
    g_cols[0] = "posted_at", g_cols[1] = "d", g_cols[2] = "j", g_cols[3] = "k", g_cols[4] = NULL;
    st = sf_tpl_check(t, "rows", is_col, is_root, NULL, &err);
    check(st == SF_OK, "check: a formatted column is provided by the column", "%d %s", (int)st,
          err.msg);
    g_cols[0] = "d", g_cols[1] = "j", g_cols[2] = "k", g_cols[3] = NULL;
    st = sf_tpl_check(t, "rows", is_col, is_root, NULL, &err);
    check(st == SF_ERR_NAME && strstr(err.msg, "reads 1 name") && strstr(err.msg, "posted_at (t.mustache:1:33)"),
          "check: {{posted_at.rfc822}} requires the column posted_at", "%d %s", (int)st, err.msg);
    sf_template_free(t);

    /* A name read in the head's {{#first}} is a column of the first row:
     * listed with the rows' names, and `first` itself is not a name to
     * provide (review: atom's posted_at was listed as a parameter). */
    t = load(NULL, SF_TEMPLATE_XML,
             "<f u=\"{{site}}\">{{#first}}{{posted_at.rfc3339}}{{/first}}{{#rows}}<i>{{title}}"
             "</i>{{/rows}}</f>",
             &st);
    ok = st == SF_OK && sf_template_row_name_count(t) == 2 &&
         !strcmp(sf_template_row_name(t, 0), "posted_at") &&
         !strcmp(sf_template_row_name(t, 1), "title") && sf_template_root_name_count(t) == 1 &&
         !strcmp(sf_template_root_name(t, 0), "site");
    check(ok, "names: a name read in {{#first}} is a column", "%d: %zu rows, %zu roots", (int)st,
          sf_template_row_name_count(t), sf_template_root_name_count(t));
    sf_template_free(t);
}

/* ---- rendering ---------------------------------------------------------------- */

/* Renders src over one root (whole walk): the output, or NULL with err. */
static char *render(int mode, const char *src, const kv *root, const kv *const *rows,
                    size_t nrows, sf_status *st, sf_errbuf *err)
{
    sf_template *t = load(NULL, mode, src, st);
    if (*st != SF_OK) {
        snprintf(err->msg, sizeof err->msg, "%s", sf_template_errmsg(t));
        sf_template_free(t);
        return NULL;
    }
    model m = {root, rows, nrows};
    sf_val rv = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &rootmap_ops, .obj = &m};
    membuf b;
    mem_init(&b);
    *st = sf_tpl_render(t, &b.w, &rv, err);
    sf_template_free(t);
    if (*st != SF_OK) {
        free(b.w.buf);
        return NULL;
    }
    b.w.buf[b.w.len] = '\0'; /* cap > len: drains double */
    return b.w.buf;
}

static void render_ok(const char *name, int mode, const char *src, const kv *root,
                      const char *want)
{
    sf_status st;
    sf_errbuf err = {{0}};
    char *got = render(mode, src, root, NULL, 0, &st, &err);
    check(got && strcmp(got, want) == 0, name, "status %d: got \"%s\" want \"%s\" (%s)", (int)st,
          got ? got : "", want, err.msg);
    free(got);
}

static void test_render(void)
{
    static const kv root[] = {
        {"h", "<b>Tom &amp; Jerry</b> &lt;3 \"q\""},
        {"c", "<p>x ]]&gt; y</p>"},
        {"u", "http://x/?a=1&b=\xC3\xA9"},
        {"p", "3.14159"},
        {"z", "0.001"},
        {"when", "2026-01-31 09:05:00+02"},
        {"n", NULL},
        {"rfc822", "plain"},
        {NULL, NULL},
    };
    render_ok("render: formatted values escaped by their XML context", SF_TEMPLATE_XML,
              "<r a=\"{{h.text}}\" u=\"{{u.url}}\"><![CDATA[{{c.text}}]]><d>{{p.dec2}}</d>"
              "<t>{{when.rfc822}}</t><t>{{h.text}}</t><!-- {{u.query}} --></r>",
              root,
              "<r a=\"Tom &amp; Jerry &lt;3 &quot;q&quot;\" u=\"http://x/?a=1&amp;b=%C3%A9\">"
              "<![CDATA[x ]]]]><![CDATA[> y]]><d>3.14</d><t>Sat, 31 Jan 2026 09:05:00 +0200</t>"
              "<t>Tom &amp; Jerry &lt;3 \"q\"</t><!-- http%3A%2F%2Fx%2F%3Fa%3D1%26b%3D%C3%A9 --></r>");
    render_ok("render: sections on formatted values, NULL through formatters", SF_TEMPLATE_XML,
              "<r>{{#p.dec0}}yes{{/p.dec0}}{{^z.dec2}}zero{{/z.dec2}}{{#z.dec3}}{{z.dec3}}{{/z.dec3}}"
              "({{n.rfc822}}){{^n.text}}null{{/n.text}}({{missing.url}})</r>",
              root, "<r>yeszero0.001()null()</r>");
    render_ok("render: text mode writes formatted values raw", SF_TEMPLATE_TEXT,
              "{{h.text.trunc9}}|{{when.rfc3339}}|{{when.date}}|{{when.ddmmyyyy}}", root,
              "Tom & Jer|2026-01-31T09:05:00+02:00|2026-01-31|31.01.2026");
    render_ok("render: spec mode reads dotted names as members", SF_TEMPLATE_HTML,
              "{{sub.rfc822}}|{{sub.p}}|{{p.dec2}}|", root, "plain|3.14159||");
}

/* ---- the cut: errors, the arena, allocations ------------------------------------ */

typedef struct runres {
    sf_status st;
    size_t failed_row; /* 1-based; 0 none */
    char err[SF_ERRMSG_SIZE];
    sf_tpl_bad bad;
    char *out;
    uint64_t allocs_after_first, allocs_end;
} runres;

static uint64_t census_allocs(sf_census *cs)
{
    uint64_t n = 0;
    for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++) {
        sf_mem_stat s;
        sf_census_stat(cs, (sf_mem_type)ty, &s);
        n += s.allocs;
    }
    return n;
}

/* head, rows, tail over `rows`; fail_at: arm the census to fail every
 * allocation from that row on (0: never). */
static void run_rows_ex(int mode, const kv *root, const char *src, const kv *const *rows,
                        size_t nrows, size_t fail_at, runres *res)
{
    memset(res, 0, sizeof *res);
    sf_census *cs = sf_census_create();
    sf_status st;
    sf_template *t = load(cs, mode, src, &st);
    if (st != SF_OK) {
        res->st = st;
        snprintf(res->err, sizeof res->err, "%s", sf_template_errmsg(t));
        sf_template_free(t);
        sf_census_free(cs);
        return;
    }
    model m = {root, rows, nrows};
    sf_val rv = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &rootmap_ops, .obj = &m};
    sf_val rl = {.kind = SF_VAL_LIST, .truthy = nrows > 0, .ops = &list_ops, .obj = &m};
    sf_errbuf err = {{0}};
    membuf b;
    mem_init(&b);
    /* The output buffer grows by doubling: reserve it, so only the
     * engine's allocations are counted (and the output is not census
     * memory anyway). */
    free(b.w.buf);
    b.w.cap = (size_t)64 << 20;
    b.w.buf = malloc(b.w.cap);
    sf_tpl_run *k = sf_tpl_run_create(cs, t, &rv, &rl, &err);
    int reached = 0;
    st = sf_tpl_head(k, &b.w, &reached);
    for (size_t i = 0; st == SF_OK && reached && i < nrows; i++) {
        if (fail_at && i + 1 == fail_at)
            sf_census_fail_after(cs, 0);
        sf_val row;
        list_item(&m, i, &row);
        st = sf_tpl_row(k, &b.w, &row);
        if (st != SF_OK)
            res->failed_row = i + 1;
        if (i == 0)
            res->allocs_after_first = census_allocs(cs);
    }
    sf_census_fail_after(cs, SF_CENSUS_FAIL_NEVER);
    if (st == SF_OK)
        st = sf_tpl_tail(k, &b.w);
    res->allocs_end = census_allocs(cs);
    res->st = st;
    snprintf(res->err, sizeof res->err, "%s", err.msg);
    res->bad = *sf_tpl_run_bad(k);
    b.w.buf[b.w.len] = '\0';
    res->out = b.w.buf;
    sf_tpl_run_free(k);
    sf_template_free(t);
    check(sf_census_live_bytes(cs) == 0, "run: every block freed (arenas included)", "%llu live",
          (unsigned long long)sf_census_live_bytes(cs));
    sf_census_free(cs);
}

static void run_rows(const char *src, const kv *const *rows, size_t nrows, size_t fail_at,
                     runres *res)
{
    run_rows_ex(SF_TEMPLATE_XML, NULL, src, rows, nrows, fail_at, res);
}

/* A JSON view the head made (a section on it around the rows) is walked by
 * every row: what the walk makes (the nested list's state, the decoded
 * string) is the row's, freed with it, not piled up in the head's arena
 * (review: 16 MiB reached at row 69,328 of a small feed). */
static void test_head_json(void)
{
    static const kv root[] = {{"cfg", "{\"name\":\"caf\\u00e9\",\"tags\":[\"a\",\"b\"]}"},
                              {NULL, NULL}};
    enum { N = 3000 };
    static kv rkv[N][2];
    static const kv *rows[N];
    for (int i = 0; i < N; i++) {
        rkv[i][0] = (kv){"d", "x"};
        rkv[i][1] = (kv){NULL, NULL};
        rows[i] = rkv[i];
    }
    runres res;
    run_rows_ex(SF_TEMPLATE_XML, root,
                "<f>{{#cfg.json}}{{#rows}}<i>{{d}} {{name}} {{#tags}}{{.}}{{/tags}}</i>{{/rows}}"
                "{{/cfg.json}}</f>",
                rows, N, 0, &res);
    check(res.st == SF_OK && res.out && strstr(res.out, "<i>x caf\xC3\xA9 ab</i></f>"),
          "run: the rows walk a JSON view the head made", "%d %s", (int)res.st, res.err);
    check(res.allocs_after_first == res.allocs_end,
          "run: walking the head's JSON view allocates nothing after the first row",
          "%llu allocations after row 1, %llu at the end",
          (unsigned long long)res.allocs_after_first, (unsigned long long)res.allocs_end);
    free(res.out);
}

/* A formatted value the head pushed (a section on it around the rows)
 * stays valid through the rows and the tail, whose values reuse the rows'
 * arena; and head + rows + tail is the whole walk. */
static void test_head_values(void)
{
    static const kv root[] = {{"s", "<b>head</b>   value"}, {NULL, NULL}};
    static char u[8][300];
    static kv rkv[8][2];
    static const kv *rows[8];
    for (int i = 0; i < 8; i++) {
        snprintf(u[i], sizeof u[i], "%0*d \xC3\xA9", 100 + i * 20, i);
        rkv[i][0] = (kv){"d", u[i]};
        rkv[i][1] = (kv){NULL, NULL};
        rows[i] = rkv[i];
    }
    const char *src = "{{! sqlfeed-format: text }}{{#s.text}}<{{.}}>{{#rows}}{{d.url}};{{/rows}}"
                      "<{{.}}>{{/s.text}}";
    runres res;
    run_rows_ex(SF_TEMPLATE_XML, root, src, rows, 8, 0, &res);
    sf_status st;
    sf_errbuf err = {{0}};
    char *whole = render(SF_TEMPLATE_XML, src, root, rows, 8, &st, &err);
    check(res.st == SF_OK && whole && strcmp(res.out, whole) == 0 &&
              strncmp(res.out, "<head value>", 12) == 0 &&
              strcmp(res.out + strlen(res.out) - 12, "<head value>") == 0,
          "cut: a formatted value the head pushed survives the rows; head+rows+tail = whole walk",
          "%d %s: %.80s", (int)res.st, res.err, res.out);
    free(res.out);
    free(whole);
}

static void test_run_errors(void)
{
    static const kv r1[] = {{"posted_at", "2026-01-31 09:05:00"}, {NULL, NULL}};
    static const kv r2[] = {{"posted_at", "yesterday"}, {NULL, NULL}};
    static const kv *const rows[] = {r1, r2, r1};
    runres res;
    run_rows("<r>{{#rows}}\n<i>{{posted_at.rfc822}}</i>{{/rows}}</r>", rows, 3, 0, &res);
    check(res.st == SF_ERR_INVALID && res.failed_row == 2 &&
              strcmp(res.err, "column posted_at: 'yesterday' is not a date "
                              "({{posted_at.rfc822}} at t.mustache:2:4)") == 0,
          "run: a refused value is SF_ERR_INVALID naming column, reason, tag and file:line:col",
          "status %d row %zu: %s", (int)res.st, res.failed_row, res.err);
    check(!strcmp(res.bad.column, "posted_at") && !strcmp(res.bad.reason, "'yesterday' is not a date"),
          "run: sf_tpl_run_bad gives the column and the reason", "'%s' '%s'", res.bad.column,
          res.bad.reason);
    free(res.out);

    /* In a section's name, with a chain: the tag as written. */
    static const kv r3[] = {{"price", "12,50"}, {NULL, NULL}};
    static const kv *const rows3[] = {r3};
    run_rows("<r>{{#rows}}{{#price.trunc9.dec2}}<p>{{price.dec2}}</p>{{/price.trunc9.dec2}}{{/rows}}</r>",
             rows3, 1, 0, &res);
    check(res.st == SF_ERR_INVALID &&
              !strcmp(res.err, "column price: '12,50' is not a number ({{#price.trunc9.dec2}} at "
                               "t.mustache:1:13)"),
          "run: a section's refused value names the section tag", "%d %s", (int)res.st, res.err);
    free(res.out);

    /* The whole walk reports the same. */
    sf_status st;
    sf_errbuf err = {{0}};
    static const kv root[] = {{"d", "2026-02-29"}, {NULL, NULL}};
    char *out = render(SF_TEMPLATE_XML, "<r>\n\n   {{d.date}}</r>", root, NULL, 0, &st, &err);
    check(!out && st == SF_ERR_INVALID &&
              !strcmp(err.msg, "column d: '2026-02-29' is not a date: 2026-02 has 28 days "
                               "({{d.date}} at t.mustache:3:4)"),
          "render: a refused value in the whole walk", "%d %s", (int)st, err.msg);
    free(out);

    static const kv rj[] = {{"j", "[1,2]"}, {NULL, NULL}};
    static const kv *const rowsj[] = {rj, rj};
    run_rows("<r>{{#rows}}{{#j.json}}<i>{{.}}</i>{{/j.json}}{{/rows}}</r>", rowsj, 2, 0, &res);
    check(res.st == SF_OK && res.out && !strcmp(res.out, "<r><i>1</i><i>2</i><i>1</i><i>2</i></r>"),
          "run: a section on a JSON array renders once per element", "%d %s: %s", (int)res.st,
          res.err, res.out ? res.out : "");
    free(res.out);
}

static void test_arena(void)
{
    /* 6 MiB of 2-byte characters: url writes each byte as %XX, 18 MiB. */
    size_t n = (size_t)6 << 20;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2)
        big[i] = '\xC3', big[i + 1] = '\xA9';
    big[n] = '\0';
    kv r1[] = {{"big", "small"}, {NULL, NULL}};
    kv r2[] = {{"big", big}, {NULL, NULL}};
    const kv *const rows[] = {r1, r2};
    runres res;
    run_rows("<r>{{#rows}}<i>{{big.url}}</i>{{/rows}}</r>", rows, 2, 0, &res);
    check(res.st == SF_ERR_INVALID && res.failed_row == 2 &&
              !strcmp(res.err, "column big: the row's formatted values pass the per-row limit of "
                               "16 MiB ({{big.url}} at t.mustache:1:16)") &&
              !strcmp(res.bad.column, "big"),
          "arena: past the per-row limit is SF_ERR_INVALID", "%d row %zu: %s", (int)res.st,
          res.failed_row, res.err);
    free(res.out);
    /* 4 MiB of them make 12 MiB, which fits; the limit is per row (the
     * arena is reset before each), so every row may use as much. */
    size_t n4 = (size_t)4 << 20;
    char *big4 = malloc(n4 + 1);
    memcpy(big4, big, n4);
    big4[n4] = '\0';
    kv r3[] = {{"a", big4}, {NULL, NULL}};
    const kv *const rows3[] = {r3, r3, r3};
    run_rows("<r>{{#rows}}<i>{{a.url}}</i>{{/rows}}</r>", rows3, 3, 0, &res);
    check(res.st == SF_OK && strlen(res.out) == 3 * (3 * n4 + 7) + 7,
          "arena: the limit is per row (12 MiB in each of 3 rows)", "%d %s", (int)res.st, res.err);
    free(res.out);
    free(big4);
    free(big);

    /* Out of memory for the arena's first chunk: SF_ERR_NOMEM. */
    static const kv r4[] = {{"d", "2026-01-31"}, {NULL, NULL}};
    static const kv *const rows4[] = {r4, r4};
    run_rows("<r>{{#rows}}<i>{{d.rfc822}}</i>{{/rows}}</r>", rows4, 2, 1, &res);
    check(res.st == SF_ERR_NOMEM && res.failed_row == 1 && strstr(res.err, "out of memory formatting") &&
              strstr(res.err, "{{d.rfc822}} at t.mustache:1:16"),
          "arena: out of memory is SF_ERR_NOMEM", "%d row %zu: %s", (int)res.st, res.failed_row,
          res.err);
    free(res.out);
}

static void test_no_alloc(void)
{
    /* Rows of different values (none larger than the arena's first chunk):
     * after the first row nothing is allocated. */
    enum { N = 300 };
    static char dates[N][40], prices[N][40], descs[N][200], urls[N][100];
    static kv rows_kv[N][6];
    static const kv *rows[N];
    for (int i = 0; i < N; i++) {
        snprintf(dates[i], sizeof dates[i], "2026-%02d-%02d %02d:%02d:%02d+0%d:30", i % 12 + 1,
                 i % 28 + 1, i % 24, i % 60, (i * 7) % 60, i % 9);
        snprintf(prices[i], sizeof prices[i], "%d.%03d", i * 37, i * 13 % 1000);
        snprintf(descs[i], sizeof descs[i], "<p>Item&nbsp;%d &amp; <b>more</b></p>\n<ul><li>x</li></ul>%*s", i,
                 i % 40, "");
        snprintf(urls[i], sizeof urls[i], "https://example.com/item %d?q=caf\xC3\xA9", i);
        rows_kv[i][0] = (kv){"d", dates[i]};
        rows_kv[i][1] = (kv){"p", prices[i]};
        rows_kv[i][2] = (kv){"t", descs[i]};
        rows_kv[i][3] = (kv){"u", urls[i]};
        rows_kv[i][4] = (kv){"n", i % 3 ? "1700000000" : NULL};
        rows_kv[i][5] = (kv){NULL, NULL};
        rows[i] = rows_kv[i];
    }
    runres res;
    run_rows("<r>{{#rows}}<i d=\"{{d.rfc3339}}\" u=\"{{u.url}}\">{{d.rfc822}} {{p.dec2}} "
             "{{t.text.trunc20}}<q>{{u.query}}</q>{{#n.date}}{{n.date}}{{/n.date}}{{d.ddmmyyyy}}</i>"
             "{{/rows}}</r>",
             rows, N, 0, &res);
    check(res.st == SF_OK && res.allocs_after_first == res.allocs_end,
          "rows: formatters on every row allocate nothing after the first row",
          "%d %s: %llu allocations after row 1, %llu at the end", (int)res.st, res.err,
          (unsigned long long)res.allocs_after_first, (unsigned long long)res.allocs_end);
    check(res.out && strstr(res.out, "<i d=\"2026-01-01T00:00:00+00:30\" u=\"https://example.com/"
                                     "item%200?q=caf%C3%A9\">Thu, 01 Jan 2026 00:00:00 +0030 0.00 "
                                     "Item 0 &amp; more x<q>https%3A%2F%2Fexample.com%2Fitem%200%3F"
                                     "q%3Dcaf%C3%A9</q>01.01.2026</i>") &&
              strstr(res.out, "2023-11-14"),
          "rows: the formatted row", "%.400s", res.out ? res.out : "");
    free(res.out);
}

int main(void)
{
    g_cs = sf_census_create();
    sf_arena_init(&g_arena, g_cs, 0);
    test_parse();
    test_dates();
    test_dates_sweep();
    test_url();
    test_text();
    test_trunc();
    test_dec();
    test_values();
    sf_arena_free(&g_arena);
    check(sf_census_live_bytes(g_cs) == 0, "arena: freed", "%llu",
          (unsigned long long)sf_census_live_bytes(g_cs));
    sf_census_free(g_cs);
    test_compile();
    test_render();
    test_run_errors();
    test_head_values();
    test_head_json();
    test_arena();
    test_no_alloc();
    printf("format: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
