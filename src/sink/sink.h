/* sink.h: the output layer. sf_output owns the write buffer the renderer
 * appends to; when it fills, the buffer drains into a chain of sinks (today
 * the file sink; compressors slot in front of it). A sink type is a table of
 * functions; an instance puts `struct sf_sink` first. Internal. */
#ifndef SF_SINK_H
#define SF_SINK_H

#include <stdatomic.h>

#include "../common.h"
#include "../xml/xml.h"

typedef struct sf_sink sf_sink;

typedef struct sf_sink_vt {
    const char *name;
    /* Consumes all n bytes or fails (message in the output's errbuf). */
    sf_status (*write)(sf_sink *k, const char *p, size_t n);
    /* Ends the stream and makes it durable and visible (file: fsync, rename). */
    sf_status (*finish)(sf_sink *k);
    /* Drops everything written; must be safe after a failed finish. */
    void (*abort)(sf_sink *k);
    void (*destroy)(sf_sink *k);
} sf_sink_vt;

struct sf_sink {
    const sf_sink_vt *vt;
    sf_sink *next;
    sf_output *out;
};

enum { SF_OUT_NEW = 0, SF_OUT_OPEN, SF_OUT_DONE, SF_OUT_FAILED };

struct sf_output {
    sf_wbuf w; /* first: the drain callback casts back to sf_output */
    sf_sink *head;
    sf_census_ref cref;
    sf_errbuf err;
    _Atomic uint64_t drained; /* bytes handed to the sink chain (read by monitors) */
    int state;
    int published; /* the file sink renamed the document into place */
    int atomic;    /* opened as a file published by rename (stays 1 after) */
    /* Set by sf_output_cancel() (a signal handler): a commit not yet at its
     * rename gives up, and so does a blocked write. */
    atomic_int cancelled;
    /* While a render runs: its cancel flag, so a write interrupted by a
     * signal (EINTR) gives up instead of retrying. */
    const atomic_int *cancel;
};

#define SF_OUTPUT_BUFFER ((size_t)256 << 10)

/* The file sink: atomic (temp + rename) when fd < 0, else plain writes to fd. */
sf_status sf_sink_file_open(sf_output *out, sf_sink **k, const char *path, int fd,
                            const char *label);
const char *sf_sink_file_temp(const sf_sink *k);
/* Whether the output was cancelled (sf_output_cancel, or the render's flag). */
int sf_output_is_cancelled(const sf_output *o);
/* Whether `dir` (open as dirfd) lies in a kernel file system where no file
 * is created: /dev and everything under it, /proc, /sys (docs/sink.md). */
int sf_sink_kernel_dir(const char *dir, int dirfd);

#endif
