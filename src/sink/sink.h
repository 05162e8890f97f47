/* sink.h: the output layer. sf_output owns the write buffer the renderer
 * appends to; when it fills, the buffer drains into a chain of stages:
 *
 *     [hop] -> [gzip | zstd] -> file
 *
 * A stage type is a table of functions (sf_stage_vt); an instance puts
 * `struct sf_stage` first. A stage consumes what its write is given and
 * hands what it produces to the next stage only through sf_stage_emit().
 * The last stage is a sink (the file sink, file.c): it has no next and is
 * the only one with a publish. The chain is built by sf_stage_chain_open()
 * (stages.c) from the output's options; a stage that changes bytes is one
 * file plus one row of the table there. Internal. */
#ifndef SF_SINK_H
#define SF_SINK_H

#include <stdatomic.h>

#include "../common.h"
#include "../xml/xml.h"

typedef struct sf_stage sf_stage;

typedef struct sf_stage_vt {
    const char *name; /* "gzip", "zstd", "hop", "file" */
    /* Consumes all n bytes or fails (sf_fail on s->out->err, naming the
     * output). Output goes on only through sf_stage_emit(). */
    sf_status (*write)(sf_stage *s, const void *p, size_t n);
    /* End of stream: a compressor emits what it holds and its trailer
     * downstream; the file sink fsyncs and closes (nothing visible yet).
     * The chain calls finish head to tail, each after the previous one
     * returned, so a stage's finish sees every byte of the stream. */
    sf_status (*finish)(sf_stage *s);
    /* Sinks only (NULL elsewhere): makes the finished file visible (the
     * rename). The directory fsync is the caller's (sf_stage_file_sync_dir),
     * so a set of files pays it once. */
    sf_status (*publish)(sf_stage *s);
    /* Drops everything: idempotent, safe after any failure, after finish. */
    void (*abort)(sf_stage *s);
    void (*destroy)(sf_stage *s);
} sf_stage_vt;

struct sf_stage {
    const sf_stage_vt *vt;
    sf_stage *next;
    sf_output *out;
    uint64_t in;        /* bytes given to this stage's write */
    uint64_t out_bytes; /* bytes it emitted downstream */
};

/* Feeds n bytes to stage s (counted in s->in). */
static inline sf_status sf_stage_write(sf_stage *s, const void *p, size_t n)
{
    s->in += n;
    return s->vt->write(s, p, n);
}

/* What a stage calls with the bytes it produced: counts them in
 * s->out_bytes and writes them to s->next. */
static inline sf_status sf_stage_emit(sf_stage *s, const void *p, size_t n)
{
    if (n == 0)
        return SF_OK;
    s->out_bytes += n;
    return sf_stage_write(s->next, p, n);
}

/* ---- the stage table (stages.c) ----------------------------------------- */

/* A compressor (an encoding stage): name, the suffix "auto" picks it by,
 * its levels, and its constructor. A new codec is a file defining its
 * open function plus one row in stages.c. */
typedef struct sf_stage_type {
    const char *name;   /* the "compress" value: "gzip" */
    const char *suffix; /* picked by "auto" when the path ends so: ".gz" */
    int level_min, level_max, level_default, level_best;
    /* A new stage at *s (its next is set by the caller); the level is
     * already checked against [level_min, level_max]. */
    sf_status (*open)(sf_output *out, int level, sf_stage **s);
} sf_stage_type;

/* The row named `name`, or NULL ("none" and "auto" are not rows). */
const sf_stage_type *sf_stage_type_find(const char *name);
/* The row whose suffix `path` ends with, or NULL (plain). */
const sf_stage_type *sf_stage_type_by_suffix(const char *path);
/* The names of the table, for messages: "gzip, zstd". */
const char *sf_stage_type_names(void);

/* Builds a chain from o's options into *head: the file sink (path, or fd
 * when path is NULL), the compressor before it, the hop before that. On
 * failure every stage built so far is destroyed and *head is NULL. A single
 * output keeps its chain in o->head; a file set builds one per part. */
sf_status sf_stage_chain_open(sf_output *o, const char *path, int fd, const char *label,
                              sf_stage **head);
/* Destroys a chain (each stage's destroy, head to tail); NULL is fine. */
void sf_stage_chain_free(sf_stage *head);
/* The last stage of a chain (its sink), or NULL. */
sf_stage *sf_stage_chain_tail(sf_stage *head);
/* A finished chain's stages before its sink destroyed (their buffers,
 * threads, compressors): what the sink needs to publish is all it keeps.
 * Returns the sink, now the chain's head. */
sf_stage *sf_stage_chain_trim(sf_stage *head);
/* Drives a chain: finish every stage head to tail (each after the previous
 * returned); abort every stage. */
sf_status sf_stage_chain_finish(sf_stage *head);
void sf_stage_chain_abort(sf_stage *head);

/* The codecs' constructors (gzip.c, zstd.c). */
sf_status sf_stage_gzip_open(sf_output *out, int level, sf_stage **s);
sf_status sf_stage_zstd_open(sf_output *out, int level, sf_stage **s);

/* ---- the output --------------------------------------------------------- */

enum { SF_OUT_NEW = 0, SF_OUT_OPEN, SF_OUT_FINISHED, SF_OUT_DONE, SF_OUT_FAILED };

enum { SF_WRITER_THREAD = 0, SF_WRITER_INLINE };

/* What sf_output_set_option() sets (before open). */
typedef struct sf_output_opts {
    int compress_auto;              /* 1: by the path's suffix (the default) */
    const sf_stage_type *compress;  /* when not auto: NULL = none */
    int level;                      /* -1: the codec's default */
    int level_best;                 /* "best": the codec's highest ratio */
    int workers;                    /* compressor threads; -1: the codec's
                                       default (gzip 2, zstd 0) */
    int writer;                     /* SF_WRITER_THREAD (default) or _INLINE */
    uint64_t sync_step;             /* fdatasync every this many bytes; 0: off */
    int cache_keep;                 /* 1: "cache" "keep": leave the written pages
                                       in the page cache (default: drop) */
    uint64_t split_rows, split_bytes; /* kept for the file set (0: no limit) */
} sf_output_opts;

#define SF_SYNC_STEP_DEFAULT ((uint64_t)32 << 20)
#define SF_ZSTD_WORKERS_DEFAULT 0
#define SF_GZIP_WORKERS_DEFAULT 2

struct sf_output {
    sf_wbuf w; /* first: the drain callback casts back to sf_output */
    sf_stage *head;
    sf_census_ref cref;
    sf_errbuf err;
    sf_output_opts opt;
    const sf_stage_type *codec; /* the compressor in the chain, or NULL */
    _Atomic uint64_t drained;   /* bytes handed to the chain (read by monitors) */
    uint64_t rows;              /* rows of the document (sf_output_count_row) */
    struct sf_fileset *set;     /* a split output's parts (fileset.c), or NULL */
    struct sf_side *side;       /* lock and previous run (lock.c), or NULL */
    int keep_state;             /* write the state record even with no rows */
    int state;
    int published; /* the file sink renamed the document into place */
    int atomic;    /* opened as a file published by rename (stays 1 after) */
    /* Set by sf_output_cancel() (a signal handler): a commit not yet at its
     * rename gives up, and so does a blocked write. */
    atomic_int cancelled;
    /* Set once something of the run is visible (the first rename): from
     * then on a cancel no longer stops the publication (docs/sink.md). */
    atomic_int no_return;
    /* The status of the stage failure that stopped a drain (the buffer's
     * drain callback can only say -1): SF_ERR_OUTPUT, _NOMEM, _CANCELLED. */
    sf_status drain_status;
    /* While a render runs: its cancel flag, so a write interrupted by a
     * signal (EINTR) gives up instead of retrying. */
    _Atomic(const atomic_int *) cancel; /* read by the writer thread too */
};

#define SF_OUTPUT_BUFFER ((size_t)256 << 10)

/* One more row in the current document (part): the render calls it per row,
 * for every output, split or not (the state record and the parts count
 * them). */
void sf_output_count_row(sf_output *o);

/* ---- file sets (fileset.c; docs/sink.md "File sets") --------------------- */

/* Whether o was opened with sf_output_open_parts(). */
int sf_output_is_split(const sf_output *o);
/* 1 when the next row (row_bytes rendered; tail_bytes: the part's tail)
 * must start a new part: split_rows reached, or the part's bytes + row_bytes
 * + tail_bytes > split_bytes. Never before the first row of a part. */
int sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes);
/* The current part (its tail already written) is drained and finished (a
 * complete, fsynced temporary file); a new part is opened. */
sf_status sf_output_next_part(sf_output *o);
/* A set an index covers (the default when its pattern has %r): then
 * sf_output_publish() renames the parts and syncs the directory only; once
 * the index is published, sf_output_settle() writes the set's state record
 * and removes the parts of earlier runs (idempotent; SF_OK for an output
 * that is not split). Otherwise publish does all of it (a set without an
 * index). */
void sf_output_set_indexed(sf_output *o);
/* The index over set o (before settle): the state record says which index
 * published the set, and a run removes the previous run's parts only when
 * the same index published them (two indexes over one pattern keep each
 * other's). */
void sf_output_set_index(sf_output *o, const sf_output *index);
sf_status sf_output_settle(sf_output *o);
/* The output is a feed: its publication writes the state record
 * (.NAME.sqlfeed.state) even when it has no rows (one with rows, or a set,
 * always does). The render calls it for each output it renders. */
void sf_output_keep_state(sf_output *o);

/* fileset.c's side of output.c. */
sf_status sf_fileset_open(sf_output *o, const char *pattern);
void sf_fileset_finished(sf_output *o);
/* Renames every part (*renamed 1 once all are), syncs the directory, and
 * unless indexed settles; a rename that fails removes the rest. */
sf_status sf_fileset_publish(sf_output *o, int *renamed);
uint64_t sf_fileset_bytes_out(const sf_output *o);
size_t sf_fileset_count(const sf_output *o);
/* Part i's path, and its rows and uncompressed bytes; NULL past the end. */
const char *sf_fileset_part(const sf_output *o, size_t i, uint64_t *rows, uint64_t *bytes);
/* Each part's CRC-32 kept from now on (a shard's parts: docs/shards.md). */
void sf_fileset_crc_on(sf_output *o);
uint32_t sf_fileset_part_crc(const sf_output *o, size_t i);
/* Publishing shards' parts copied as they are: part i's figures are the
 * shard's (rows, uncompressed bytes), not what the copy counted. */
void sf_fileset_set_part(sf_output *o, size_t i, uint64_t rows, uint64_t bytes);
uint64_t sf_fileset_part_bytes_out(const sf_output *o, size_t i); /* exact after finish */
void sf_fileset_abort(sf_output *o);
void sf_fileset_free(sf_output *o);

/* The options the file set reads (0: no limit). */
uint64_t sf_output_split_rows(const sf_output *o);
uint64_t sf_output_split_bytes(const sf_output *o);

/* The file sink: atomic (temp + rename) when fd < 0, else plain writes to
 * fd. A durable (atomic) file is fdatasync'ed every `sync_step` bytes. */
sf_status sf_sink_file_open(sf_output *out, sf_stage **s, const char *path, int fd,
                            const char *label, uint64_t sync_step, int cache_keep);
/* The temporary file's path while it exists (NULL for another stage). */
const char *sf_sink_file_temp(const sf_stage *s);
/* The CRC-32 (zlib's) of every byte the file sink writes, kept from this
 * call on (a shard's part: docs/shards.md); 0 for another stage. */
void sf_sink_file_crc_on(sf_stage *k);
uint32_t sf_sink_file_crc(const sf_stage *k);
/* The same for an output's file (a single document). */
void sf_output_crc_on(sf_output *o);
/* The level the output's compressor runs at (0: none). */
int sf_output_level(const sf_output *o);
uint32_t sf_output_crc(const sf_output *o);
uint32_t sf_output_part_crc(const sf_output *o, size_t i); /* exact after finish */
/* The destination path (atomic), or the label. */
const char *sf_sink_file_path(const sf_stage *s);
/* After publish: fsyncs the destination's directory (EINVAL/EROFS, a file
 * system that cannot, is tolerated). SF_OK for a descriptor. */
sf_status sf_sink_file_sync_dir(sf_stage *s);
/* Whether the output was cancelled (sf_output_cancel, or the render's flag). */
int sf_output_is_cancelled(const sf_output *o);
/* Whether `dir` (open as dirfd) lies in a kernel file system where no file
 * is created: /dev and everything under it, /proc, /sys (docs/sink.md). */
int sf_sink_kernel_dir(const char *dir, int dirfd);

/* The writer thread (hop.c): whether a chain ending in `sink` (writing to
 * fd) gets one (regular files only: a blocked write to a pipe or terminal
 * ends only by a signal on the writing thread), and the stage itself. */
int sf_stage_hop_wanted(const sf_stage *sink, int fd);
sf_status sf_stage_hop_open(sf_output *out, sf_stage **sp);

/* Past the point of no return: cancels are ignored from now on, so a
 * publication that has begun (a set's parts, a run's several outputs)
 * completes. */
void sf_output_no_return(sf_output *o);

/* Why the last drain failed (SF_OK when none did): a render maps its
 * buffer's -1 back to out of memory, a cancel or an output error. */
sf_status sf_output_drain_status(const sf_output *o);

#endif
