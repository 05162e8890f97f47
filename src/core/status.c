/* status.c: status text and the per-handle message helpers. */
#include <stdio.h>
#include <string.h>

#include "../common.h"

const char *sf_strerror(sf_status status)
{
    switch (status) {
    case SF_OK: return "success";
    case SF_ERR_NOMEM: return "out of memory";
    case SF_ERR_ARG: return "invalid argument";
    case SF_ERR_TEMPLATE: return "template error";
    case SF_ERR_NAME: return "template names something the query does not provide";
    case SF_ERR_SOURCE: return "database error";
    case SF_ERR_OUTPUT: return "output error";
    case SF_ERR_CANCELLED: return "cancelled";
    case SF_ERR_STATE: return "call out of order";
    case SF_ERR_REFUSED: return "refused to publish (safety rail)";
    case SF_ERR_BUSY: return "output locked by another run";
    case SF_ERR_INVALID: return "a row failed a check or a formatter";
    }
    return "unknown status";
}

const char *sf_version(void) { return SF_VERSION_STRING; }

sf_status sf_vfail(sf_errbuf *e, sf_status status, const char *fmt, va_list ap)
{
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    if (n >= (int)sizeof e->msg)
        memcpy(e->msg + sizeof e->msg - 4, "...", 4);
    return status;
}

sf_status sf_fail(sf_errbuf *e, sf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sf_vfail(e, status, fmt, ap);
    va_end(ap);
    return status;
}

sf_status sf_fail_from(sf_errbuf *e, sf_status status, const char *prefix, const char *msg)
{
    if (e->msg == msg) /* already there */
        return status;
    return prefix ? sf_fail(e, status, "%s: %s", prefix, msg) : sf_fail(e, status, "%s", msg);
}
