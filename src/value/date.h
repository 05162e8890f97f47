/* date.h: the dates the date formatters read and write (value/format.c).
 * Straight-line parsing and printing: no sscanf, strftime, mktime or
 * locale; weekdays and Unix seconds by day arithmetic. docs/value.md.
 * Internal. */
#ifndef SF_VALUE_DATE_H
#define SF_VALUE_DATE_H

#include <stddef.h>

/* A date as written: the local date and time in its zone's offset (a value
 * is printed in the zone it was given in, never converted). */
typedef struct sf_date {
    int year, month, day; /* 0000-9999, 1-12, 1-31 */
    int hour, min, sec;   /* 0-23, 0-59, 0-60 (a leap second) */
    int off;              /* the zone: minutes east of UTC (0: UTC) */
} sf_date;

/* Reads s[0..n) (white space around it allowed): YYYY-MM-DD, the same with
 * [T ]HH:MM[:SS[.frac]] and an optional zone (Z, +HH, +HHMM, +HH:MM, -...,
 * " UTC"; none is UTC), or a number of Unix seconds (negative and
 * fractional allowed). Fractions are dropped. Returns 0, or -1 with `why`
 * saying which field is out of range ("" when the text is no date at all;
 * the caller quotes the value). */
int sf_date_parse(const char *s, size_t n, sf_date *d, char *why, size_t whylen);

/* The printed forms; each writes at most SF_DATE_MAX bytes to buf and
 * returns how many. */
enum { SF_DATE_RFC3339, SF_DATE_DAY, SF_DATE_RFC822, SF_DATE_DDMMYYYY };
#define SF_DATE_MAX 32
size_t sf_date_print(const sf_date *d, int form, char *buf);

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; negative before). */
long long sf_days_from_civil(int y, int m, int d);

#endif
