/* hop.c: the writer thread, a stage ("hop") at the head of an output's chain
 * (output option "writer" = "thread"). It copies what the render writes into
 * a queue of a few fixed buffers and a thread of its own runs the rest of the
 * chain on them (compressor, file sink: compressing, write(2) and the
 * periodic fdatasync), so the render's core only renders.
 *
 * Contract (sink.h, "stages"): write consumes all n bytes or fails; finish
 * queues the last partial buffer and returns once the thread has handed
 * every byte downstream and is idle, so the chain may then finish the next
 * stages from the caller's thread; abort and destroy join the thread.
 *
 * Errors are sticky: a downstream failure (its message in the output's
 * errbuf, written by the thread) is returned by the next write or finish,
 * and the buffers still queued are dropped. Ownership of the output's errbuf:
 * the thread writes it only inside a downstream call; the caller reads it
 * only after the lock told it the thread failed, or after the thread is idle.
 *
 * Cancel: the caller's waits (for room, for the drain) are timed and look at
 * sf_output_is_cancelled(), so a cancel stops the render within HOP_POLL_NS
 * plus the downstream call in progress (a 256 KiB write: the chain puts a
 * hop only in front of a regular file, where a write never waits on a
 * reader; a FIFO, pipe, socket or terminal is written inline, where a signal
 * still interrupts a blocked write(2): docs/sink.md).
 *
 * Memory: HOP_BUFS buffers of SF_OUTPUT_BUFFER bytes, allocated at open;
 * nothing per write. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sink.h"

/* Declared here and in stages.c, its one caller (sink.h is not this file's
 * to edit; the integrator may move it there). */
/* *sp is NULL (and SF_OK) when no thread could be made: no hop then. */

#define HOP_BUFS 4
#define HOP_POLL_NS (20 * 1000 * 1000L)

typedef struct hop_buf {
    char *data;
    size_t len;
} hop_buf;

typedef struct hop {
    sf_stage base;
    hop_buf q[HOP_BUFS];
    pthread_mutex_t mu;
    pthread_cond_t work; /* the thread waits: a buffer queued, or stop */
    pthread_cond_t room; /* the caller waits: a buffer done */
    int mu_ok, work_ok, room_ok;
    /* Under the lock. Buffers [tail, head) are queued (sequence numbers,
     * modulo HOP_BUFS); the caller fills q[head % HOP_BUFS]. */
    uint64_t head, tail;
    int busy;          /* the thread is inside a downstream call */
    int stop;          /* the thread must end (abort, destroy) */
    int drop;          /* cancelled: queued buffers are dropped, not written */
    sf_status sticky;  /* the first downstream failure */
    /* The caller's. */
    pthread_t thread;
    int running;
} hop;

static void *hop_main(void *arg)
{
    hop *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stop && h->tail == h->head)
            pthread_cond_wait(&h->work, &h->mu);
        if (h->stop)
            break;
        hop_buf *b = &h->q[h->tail % HOP_BUFS];
        sf_status st = h->sticky;
        if (st == SF_OK && !h->drop) {
            h->busy = 1;
            pthread_mutex_unlock(&h->mu);
            st = sf_stage_emit(&h->base, b->data, b->len);
            pthread_mutex_lock(&h->mu);
            h->busy = 0;
            if (st != SF_OK && h->sticky == SF_OK)
                h->sticky = st;
        }
        b->len = 0;
        h->tail++;
        pthread_cond_signal(&h->room);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Waits on `room` until `done` holds, a downstream failure, or a cancel.
 * Called and returns with the lock held. */
static sf_status hop_wait(hop *h, int (*done)(const hop *))
{
    for (;;) {
        if (h->sticky != SF_OK)
            return h->sticky;
        if (done(h))
            return SF_OK;
        if (sf_output_is_cancelled(h->base.out)) {
            /* Drop what is queued; once the call in progress returns the
             * errbuf is ours to write. */
            h->drop = 1;
            while (h->busy)
                pthread_cond_wait(&h->room, &h->mu);
            if (h->sticky == SF_OK)
                h->sticky = sf_fail(&h->base.out->err, SF_ERR_CANCELLED,
                                    "cancelled while writing the output");
            return h->sticky;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += HOP_POLL_NS;
        if (t.tv_nsec >= 1000000000L)
            t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&h->room, &h->mu, &t);
    }
}

static int has_room(const hop *h) { return h->head - h->tail < HOP_BUFS; }
static int drained(const hop *h) { return h->tail == h->head && !h->busy; }

/* Queues the buffer being filled. Lock held. */
static void queue(hop *h)
{
    h->head++;
    pthread_cond_signal(&h->work);
}

/* After abort nothing runs the queue: a late write or finish fails. */
static sf_status hop_stopped(hop *h)
{
    return sf_fail(&h->base.out->err, SF_ERR_STATE,
                   "the output was aborted: nothing more is written");
}

static sf_status hop_write(sf_stage *s, const void *p, size_t n)
{
    hop *h = (hop *)s;
    const char *c = p;
    if (!h->running)
        return h->sticky != SF_OK ? h->sticky : hop_stopped(h);
    pthread_mutex_lock(&h->mu);
    sf_status st = h->sticky;
    while (st == SF_OK && n) {
        if ((st = hop_wait(h, has_room)) != SF_OK)
            break;
        /* The buffer at head is the caller's alone until queued. */
        hop_buf *b = &h->q[h->head % HOP_BUFS];
        pthread_mutex_unlock(&h->mu);
        size_t k = SF_OUTPUT_BUFFER - b->len;
        if (k > n)
            k = n;
        memcpy(b->data + b->len, c, k);
        b->len += k;
        c += k;
        n -= k;
        pthread_mutex_lock(&h->mu);
        if (b->len == SF_OUTPUT_BUFFER)
            queue(h);
    }
    pthread_mutex_unlock(&h->mu);
    return st;
}

static sf_status hop_finish(sf_stage *s)
{
    hop *h = (hop *)s;
    if (!h->running)
        return h->sticky != SF_OK ? h->sticky : hop_stopped(h);
    pthread_mutex_lock(&h->mu);
    sf_status st = h->sticky;
    if (st == SF_OK && h->q[h->head % HOP_BUFS].len && (st = hop_wait(h, has_room)) == SF_OK)
        queue(h);
    if (st == SF_OK)
        st = hop_wait(h, drained);
    pthread_mutex_unlock(&h->mu);
    return st;
}

static void hop_abort(sf_stage *s)
{
    hop *h = (hop *)s;
    if (!h->running)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->running = 0;
}

static void hop_destroy(sf_stage *s)
{
    hop *h = (hop *)s;
    sf_census *cs = s->out->cref.census;
    hop_abort(s);
    for (int i = 0; i < HOP_BUFS; i++)
        sf_dealloc(cs, h->q[i].data);
    if (h->work_ok)
        pthread_cond_destroy(&h->work);
    if (h->room_ok)
        pthread_cond_destroy(&h->room);
    if (h->mu_ok)
        pthread_mutex_destroy(&h->mu);
    sf_dealloc(cs, h);
}

static const sf_stage_vt hop_vt = {
    .name = "hop",
    .write = hop_write,
    .finish = hop_finish,
    .publish = NULL,
    .abort = hop_abort,
    .destroy = hop_destroy,
};

/* Whether a hop goes in front of this sink: only a regular file, where a
 * write never waits for a reader (an atomic output's temporary file, or a
 * descriptor that is a regular file); a FIFO, pipe, socket or terminal keeps
 * its writes on the caller's thread, where a signal interrupts one that
 * blocks (see the top of this file). */
int sf_stage_hop_wanted(const sf_stage *sink, int fd)
{
    if (sf_sink_file_temp(sink))
        return 1;
    struct stat sb;
    return fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
}

sf_status sf_stage_hop_open(sf_output *out, sf_stage **sp)
{
    *sp = NULL;
    sf_census *cs = out->cref.census;
    hop *h = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *h);
    if (!h)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory");
    h->base.vt = &hop_vt;
    h->base.out = out;
    sf_status st = SF_OK;
    for (int i = 0; i < HOP_BUFS && st == SF_OK; i++)
        if (!(h->q[i].data = sf_alloc(cs, SF_MEM_OUTPUT, SF_OUTPUT_BUFFER)))
            st = sf_fail(&out->err, SF_ERR_NOMEM, "out of memory");
    if (st == SF_OK) {
        h->mu_ok = pthread_mutex_init(&h->mu, NULL) == 0;
        pthread_condattr_t ca;
        int ca_ok = pthread_condattr_init(&ca) == 0;
        if (ca_ok)
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        h->room_ok = ca_ok && pthread_cond_init(&h->room, &ca) == 0;
        h->work_ok = pthread_cond_init(&h->work, NULL) == 0;
        if (ca_ok)
            pthread_condattr_destroy(&ca);
        if (!h->mu_ok || !h->room_ok || !h->work_ok)
            st = sf_fail(&out->err, SF_ERR_NOMEM, "out of resources for the writer thread");
    }
    if (st == SF_OK) {
        int rc = sf_thread_start(&h->thread, hop_main, h); /* signals stay ours */
        if (rc != 0) {
            /* No thread: the chain runs inline, as with writer=inline. */
            hop_destroy(&h->base);
            return SF_OK;
        }
        h->running = 1;
    }
    if (st != SF_OK) {
        hop_destroy(&h->base);
        return st;
    }
    *sp = &h->base;
    return SF_OK;
}
