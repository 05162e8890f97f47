/* date.c: reading and printing the dates of the date formatters.
 *
 * A date-time string is printed in the offset it was written with, so
 * reading one needs no zone arithmetic at all: the fields are checked and
 * kept. Only Unix seconds are converted (to UTC), by counting days. The
 * weekday of rfc822 comes from the local date's day number. */
#include <stdio.h>
#include <string.h>

#include "date.h"

/* Day numbers in a calendar whose years begin on 1 March, so the leap day
 * is the last day of its year: a 400-year era has 146097 days, and the day
 * of the year of month m (March = 0) is (153 m + 2) / 5. 719468 is the day
 * number of 1970-01-01 counted from 0000-03-01. */
long long sf_days_from_civil(int y, int m, int d)
{
    long long yy = (long long)y - (m <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;                  /* 0..399 */
    long long mp = m > 2 ? m - 3 : m + 9;            /* March = 0 */
    long long doy = (153 * mp + 2) / 5 + d - 1;      /* 0..365 */
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse: the civil date of a day number. */
static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;                                  /* 0..146096 */
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int leap(int y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

static int month_days(int y, int m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

static int dig(char c) { return c >= '0' && c <= '9'; }

/* Two digits at p (the caller checked they are there). */
static int two(const char *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Unix seconds from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define UNIX_MIN (-62167219200LL)
#define UNIX_MAX 253402300799LL

/* [-]digits[.digits]: seconds since 1970-01-01T00:00:00Z. The instant's
 * fraction is dropped, so -1.5 is 23:59:58 (floor, like the fraction of a
 * written time). */
static int parse_unix(const char *s, size_t n, sf_date *d, char *why, size_t whylen)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i] == '-', i++;
    size_t d0 = i;
    long long v = 0;
    int big = 0;
    while (i < n && dig(s[i])) {
        if (v > UNIX_MAX)
            big = 1;
        else
            v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == d0)
        return -1;
    int frac = 0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && dig(s[i]))
            frac |= s[i++] != '0';
        if (i == f0)
            return -1;
    }
    if (i != n)
        return -1;
    if (neg)
        v = -v - frac; /* floor */
    if (big || v < UNIX_MIN || v > UNIX_MAX) {
        snprintf(why, whylen, "Unix seconds outside the years 0000-9999");
        return -2;
    }
    long long days = (v >= 0 ? v : v - 86399) / 86400;
    long long secs = v - days * 86400;
    civil_from_days(days, &d->year, &d->month, &d->day);
    d->hour = (int)(secs / 3600);
    d->min = (int)(secs / 60 % 60);
    d->sec = (int)(secs % 60);
    d->off = 0;
    return 0;
}

static int range(char *why, size_t whylen, const char *what, int v)
{
    snprintf(why, whylen, "%s %02d is out of range", what, v);
    return -1;
}

int sf_date_parse(const char *s, size_t n, sf_date *d, char *why, size_t whylen)
{
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    memset(d, 0, sizeof *d);
    if (n < 10 || s[4] != '-') {
        int rc = parse_unix(s, n, d, why, whylen);
        if (rc == -1 && whylen)
            why[0] = '\0';
        return rc < 0 ? -1 : 0;
    }
    if (!(dig(s[0]) && dig(s[1]) && dig(s[2]) && dig(s[3]) && dig(s[5]) && dig(s[6]) &&
          s[7] == '-' && dig(s[8]) && dig(s[9])))
        goto bad;
    d->year = two(s) * 100 + two(s + 2);
    d->month = two(s + 5);
    d->day = two(s + 8);
    if (d->month < 1 || d->month > 12)
        return range(why, whylen, "month", d->month);
    if (d->day < 1 || d->day > month_days(d->year, d->month)) {
        snprintf(why, whylen, "%04d-%02d has %d days", d->year, d->month,
                 month_days(d->year, d->month));
        return -1;
    }
    if (n == 10)
        return 0;
    /* [T ]HH:MM */
    if (n < 16 || !(s[10] == 'T' || s[10] == 't' || s[10] == ' ') || !dig(s[11]) ||
        !dig(s[12]) || s[13] != ':' || !dig(s[14]) || !dig(s[15]))
        goto bad;
    d->hour = two(s + 11);
    d->min = two(s + 14);
    size_t i = 16;
    if (i < n && s[i] == ':') {
        if (i + 3 > n || !dig(s[i + 1]) || !dig(s[i + 2]))
            goto bad;
        d->sec = two(s + i + 1);
        i += 3;
        if (i < n && s[i] == '.') {
            size_t f0 = ++i;
            while (i < n && dig(s[i]))
                i++;
            if (i == f0)
                goto bad;
        }
    }
    if (d->hour > 23)
        return range(why, whylen, "hour", d->hour);
    if (d->min > 59)
        return range(why, whylen, "minute", d->min);
    if (d->sec > 60)
        return range(why, whylen, "second", d->sec);
    /* The zone. */
    if (i == n)
        return 0;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
        return 0;
    if (n - i == 4 && memcmp(s + i, " UTC", 4) == 0)
        return 0;
    if (s[i] != '+' && s[i] != '-')
        goto bad;
    int sign = s[i] == '-' ? -1 : 1;
    size_t z = i + 1, left = n - z;
    int oh, om = 0;
    if (left == 2 && dig(s[z]) && dig(s[z + 1]))
        oh = two(s + z);
    else if (left == 4 && dig(s[z]) && dig(s[z + 1]) && dig(s[z + 2]) && dig(s[z + 3]))
        oh = two(s + z), om = two(s + z + 2);
    else if (left == 5 && dig(s[z]) && dig(s[z + 1]) && s[z + 2] == ':' && dig(s[z + 3]) &&
             dig(s[z + 4]))
        oh = two(s + z), om = two(s + z + 3);
    else
        goto bad;
    if (oh > 23 || om > 59) {
        snprintf(why, whylen, "zone %c%02d:%02d is out of range", s[i], oh, om);
        return -1;
    }
    d->off = sign * (oh * 60 + om);
    return 0;
bad:
    if (whylen)
        why[0] = '\0';
    return -1;
}

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

static char *put4(char *p, int v)
{
    p = put2(p, v / 100);
    return put2(p, v % 100);
}

static char *put_ymd(char *p, const sf_date *d)
{
    p = put4(p, d->year);
    *p++ = '-';
    p = put2(p, d->month);
    *p++ = '-';
    return put2(p, d->day);
}

static char *put_hms(char *p, const sf_date *d)
{
    p = put2(p, d->hour);
    *p++ = ':';
    p = put2(p, d->min);
    *p++ = ':';
    return put2(p, d->sec);
}

size_t sf_date_print(const sf_date *d, int form, char *buf)
{
    static const char wdays[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char *p = buf;
    int a = d->off < 0 ? -d->off : d->off;
    switch (form) {
    case SF_DATE_DAY:
        p = put_ymd(p, d);
        break;
    case SF_DATE_DDMMYYYY:
        p = put2(p, d->day);
        *p++ = '.';
        p = put2(p, d->month);
        *p++ = '.';
        p = put4(p, d->year);
        break;
    case SF_DATE_RFC822: {
        /* 1970-01-01 was a Thursday. */
        long long days = sf_days_from_civil(d->year, d->month, d->day);
        int wd = (int)(((days % 7) + 7 + 4) % 7);
        memcpy(p, wdays + 3 * wd, 3);
        p += 3;
        *p++ = ',';
        *p++ = ' ';
        p = put2(p, d->day);
        *p++ = ' ';
        memcpy(p, months + 3 * (d->month - 1), 3);
        p += 3;
        *p++ = ' ';
        p = put4(p, d->year);
        *p++ = ' ';
        p = put_hms(p, d);
        *p++ = ' ';
        *p++ = d->off < 0 ? '-' : '+';
        p = put2(p, a / 60);
        p = put2(p, a % 60);
        break;
    }
    default: /* SF_DATE_RFC3339 */
        p = put_ymd(p, d);
        *p++ = 'T';
        p = put_hms(p, d);
        if (d->off == 0) {
            *p++ = 'Z';
        } else {
            *p++ = d->off < 0 ? '-' : '+';
            p = put2(p, a / 60);
            *p++ = ':';
            p = put2(p, a % 60);
        }
        break;
    }
    return (size_t)(p - buf);
}
