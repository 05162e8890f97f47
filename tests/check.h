/* check.h: the PASS/FAIL lines of the C test programs (tests/run.sh counts
 * them). Included by one .c file each; the counters are that file's. */
#ifndef SF_TEST_CHECK_H
#define SF_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int failures, passes;

/* Prints "PASS: name" or "FAIL: name: <fmt...>" and counts it. */
static void check(int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("PASS: %s\n", name);
        passes++;
        return;
    }
    printf("FAIL: %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    failures++;
}

#endif
