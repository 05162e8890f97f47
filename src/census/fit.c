/* fit.c: does memory grow with the rows? A least-squares line through
 * samples of (rows done, bytes), after a warm-up, with a verdict decided on
 * growth in bytes, not on a per-row rate (a tiny rate over many rows is a
 * real leak): the line must rise by 256 KiB over the window, and each half
 * of the window by 64 KiB, so a one-time step (a cache filling up, a buffer
 * growing once) is flat and growth that goes on is not. */
#include "../common.h"

#define WARMUP_FRACTION 0.2
#define MIN_SAMPLES 8
#define GROW_TOTAL (256.0 * 1024.0) /* bytes the line rises over the window */
#define GROW_HALF (64.0 * 1024.0)   /* ... and over each half: above RSS's page noise */

/* Slope of the least-squares line through (x[i], y[i]), i in [a, b). */
static double ols_slope(const double *x, const double *y, size_t a, size_t b)
{
    double n = (double)(b - a), sx = 0, sy = 0;
    for (size_t i = a; i < b; i++)
        sx += x[i], sy += y[i];
    double mx = sx / n, my = sy / n, sxx = 0, sxy = 0;
    for (size_t i = a; i < b; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    return sxx > 0 ? sxy / sxx : 0.0;
}

sf_status sf_flatness_fit(const double *rows, const double *bytes, size_t n, sf_flatness *out)
{
    if (!out || (n && (!rows || !bytes)))
        return SF_ERR_ARG;
    *out = (sf_flatness){.verdict = SF_FLAT_UNKNOWN};
    if (n == 0)
        return SF_OK;
    double warm = rows[n - 1] * WARMUP_FRACTION;
    size_t a = 0;
    while (a < n && rows[a] < warm)
        a++;
    /* Samples taken while the rows stood still (waiting on the database)
     * say nothing about bytes per row; the window needs distinct rows. */
    size_t distinct = 0;
    for (size_t i = a; i < n; i++)
        distinct += i == a || rows[i] != rows[i - 1];
    out->samples = n - a;
    if (distinct < MIN_SAMPLES)
        return SF_OK;
    size_t mid = a + (n - a) / 2;
    out->from_row = rows[a];
    out->to_row = rows[n - 1];
    out->slope = ols_slope(rows, bytes, a, n);
    out->slope_first = ols_slope(rows, bytes, a, mid);
    out->slope_second = ols_slope(rows, bytes, mid, n);
    double first_rows = rows[mid] - rows[a], second_rows = rows[n - 1] - rows[mid];
    int grows = out->slope * (out->to_row - out->from_row) >= GROW_TOTAL &&
                out->slope_first * first_rows >= GROW_HALF &&
                out->slope_second * second_rows >= GROW_HALF;
    out->verdict = grows ? SF_GROWS : SF_FLAT;
    return SF_OK;
}

const char *sf_flat_verdict_name(sf_flat_verdict v)
{
    switch (v) {
    case SF_FLAT: return "flat";
    case SF_GROWS: return "grows";
    case SF_FLAT_UNKNOWN: break;
    }
    return "unknown";
}
