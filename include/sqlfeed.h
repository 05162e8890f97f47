/*
 * sqlfeed.h: the one public header of libsqlfeed.
 *
 * sqlfeed streams the rows of a SQL query through a Mustache template into a
 * well-formed XML document, in memory that does not grow with the row count,
 * and publishes the document atomically.
 *
 * The pieces, each an opaque handle with a create/free pair (free accepts NULL):
 *
 *   sf_census    the allocator every other handle allocates through, with a
 *                live count and byte total per type of object;
 *   sf_source    a database connection and one prepared query (SQLite);
 *   sf_template  a compiled Mustache template (built-in, file or string);
 *   sf_output    where the document goes: a file published atomically, or a
 *                descriptor such as stdout;
 *   sf_render    one run: parameters, the render itself, its counters, and a
 *                cancel switch that is safe to pull from a signal handler;
 *   sf_watch     a run seen from a sampler thread: the memory budget, the
 *                mem-log, the flatness verdict, the census report, progress.
 *
 * Errors: every fallible call returns an sf_status; SF_OK is 0. sf_strerror()
 * gives static text for a code; each handle's *_errmsg() gives the detail of
 * its last failure (template file:line:col, SQL error text, row number, output
 * path). The library never exits, never prints, and keeps no global state.
 *
 * A handle is used by one thread at a time, except sf_render_cancel(). A
 * census may be allocated from and read by several threads at once (its
 * counters are atomics), so handles that share one may run on different
 * threads, and the library's own threads (a source's scan thread, an
 * output's writer thread, zstd's workers, a watch's sampler) allocate
 * through it or read it too. The library installs no signal handler: its
 * threads start with the asynchronous signals blocked. A watch's queries
 * may be called from any thread while it runs.
 * sf_render_cancel() from another thread must not race sf_source_free() of
 * the source being rendered.
 */
#ifndef SQLFEED_H
#define SQLFEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_VERSION_STRING "0.1.0"

/* What the shared library exports: every function declared here, and
 * nothing else (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define SF_API __attribute__((visibility("default")))
#else
#define SF_API
#endif

/* Status codes. The numeric values are stable and documented in docs/. */
typedef enum sf_status {
    SF_OK = 0,
    SF_ERR_NOMEM = 1,     /* an allocation failed */
    SF_ERR_ARG = 2,       /* a call's arguments are wrong (NULL handle, bad name) */
    SF_ERR_TEMPLATE = 3,  /* template syntax, missing partial, context error */
    SF_ERR_NAME = 4,      /* template names something the query does not provide */
    SF_ERR_SOURCE = 5,    /* database open, prepare, bind or step failed */
    SF_ERR_OUTPUT = 6,    /* creating, writing, syncing or publishing output failed */
    SF_ERR_CANCELLED = 7, /* sf_render_cancel() was called */
    SF_ERR_STATE = 8,     /* a call made in the wrong order (e.g. render twice) */
    SF_ERR_REFUSED = 9,   /* a safety rail refused to publish (min_rows, max_drop), or
                             publish refused its shards (sf_render_publish_shards) */
    SF_ERR_BUSY = 10,     /* another run holds the output's lock */
    SF_ERR_INVALID = 11   /* a row failed a check or a formatter (not a date, too
                             long, bad JSON); the message names the row and column */
} sf_status;

/* Static, English text for a status code; never NULL. */
SF_API const char *sf_strerror(sf_status status);

/* The library's version, "MAJOR.MINOR.PATCH". */
SF_API const char *sf_version(void);

/* ------------------------------------------------------------------------ */
/* Census: the allocator with a live count per type.                        */

typedef struct sf_census sf_census;

/* The types every allocation of the library is tagged with. */
typedef enum sf_mem_type {
    SF_MEM_HANDLE = 0,    /* the handles themselves */
    SF_MEM_TEMPLATE,      /* compiled template nodes, names, template text */
    SF_MEM_SOURCE,        /* source state: column names, parameter copies */
    SF_MEM_ROW,           /* per-row scratch: number formatting, name maps */
    SF_MEM_RENDER,        /* the render's context stack and parameters */
    SF_MEM_OUTPUT,        /* output buffers */
    SF_MEM_SINK,          /* sink state: paths */
    SF_MEM_SQLITE,        /* SQLite's own memory, when routed to the census */
    SF_MEM_OTHER,         /* anything else (messages, sf_watch samples) */
    SF_MEM_DRIVER,        /* a database driver's own buffers, as it reports them
                             (libpq results: PQresultMemorySize) */
    SF_MEM_TYPE_COUNT
} sf_mem_type;

typedef struct sf_mem_stat {
    const char *name;     /* short type name, e.g. "template" */
    uint64_t count;       /* live blocks */
    uint64_t bytes;       /* live bytes requested */
    uint64_t peak_bytes;  /* highest live bytes seen */
    uint64_t allocs;      /* allocations made since creation */
} sf_mem_stat;

/* A new census, or NULL when out of memory. */
SF_API sf_census *sf_census_create(void);
SF_API void sf_census_free(sf_census *census);
/* Fills *out for one type; SF_ERR_ARG for a type out of range. Iterate the
 * types with `for (t = 0; t < SF_MEM_TYPE_COUNT; t++)`. A census may be read
 * from another thread while its handles work (a monitor): each counter reads
 * whole, possibly a moment behind. */
SF_API sf_status sf_census_stat(const sf_census *census, sf_mem_type type, sf_mem_stat *out);
/* Totals over every type; peak is the peak of the total. */
SF_API uint64_t sf_census_live_bytes(const sf_census *census);
SF_API uint64_t sf_census_peak_bytes(const sf_census *census);
/* A budget for the census's live bytes (all types): an allocation through
 * the census that would take them past `bytes` fails (the caller sees an
 * allocation failure); memory accounted with sf_census_account() is counted
 * but never refused. 0 removes the limit (the default). Returns SF_OK, or
 * SF_ERR_NOMEM when the limit in force until this call refused at least one
 * allocation: call it again (with 0 to lift the limit) to learn whether a
 * failed run hit the budget. From any thread. */
SF_API sf_status sf_census_set_limit(sf_census *census, uint64_t bytes);

/* The short name of a type ("template", "output buffer", ...). */
SF_API const char *sf_mem_type_name(sf_mem_type type);

/* Accounts memory the census does not allocate (a driver's result buffers):
 * adds `bytes` (negative to give back) and `objects` to a type's live
 * counts, from any thread. */
SF_API void sf_census_account(sf_census *census, sf_mem_type type, int64_t objects, int64_t bytes);

/* Allocation through a census, to count another library's memory under a
 * type (the CLI routes SQLite's allocator here, as SF_MEM_SQLITE). Blocks
 * carry their size: sf_census_block_size() gives the size requested. Any
 * thread may allocate and free (SQLite's memory is allocated on a source's
 * scan thread when prefetch is on). */
SF_API void *sf_census_malloc(sf_census *census, sf_mem_type type, size_t n);
SF_API void *sf_census_realloc(sf_census *census, sf_mem_type type, void *p, size_t n);
SF_API void sf_census_dealloc(sf_census *census, void *p);
SF_API size_t sf_census_block_size(const void *p);

/* A testing aid, as expat's allocation tests use: from now on the first `n`
 * allocations through `census` succeed and every later one fails, as when
 * memory runs out. Counts each allocation and reallocation of every handle
 * on the census and of sf_census_malloc()/sf_census_realloc() (so SQLite's
 * memory too, when routed there). A test loops n = 0, 1, 2, ... until the
 * operation succeeds, checking each failure is clean (SF_ERR_NOMEM, a
 * message, nothing leaked). SF_CENSUS_FAIL_NEVER disarms it (the default).
 * Costs one predictable branch per allocation; n counts the allocations of
 * every thread together.
 * The command arms it from SQLFEED_FAIL_ALLOC_AFTER=N. */
#define SF_CENSUS_FAIL_NEVER UINT64_MAX
SF_API void sf_census_fail_after(sf_census *census, uint64_t n);

/* The verdict on whether memory grows with the rows, from samples of
 * (rows done, bytes) taken during a run. The first 20 % of the rows are a
 * warm-up and left out; a least-squares line through the rest gives the
 * slope. Memory "grows" when that line rises by at least 256 KiB over the
 * window and the lines through each half of it by at least 64 KiB each: a
 * one-time step (a cache filling) is flat, growth that goes on is not,
 * however small per row. */
typedef enum sf_flat_verdict {
    SF_FLAT_UNKNOWN = 0, /* too few samples after the warm-up (fewer than 8) */
    SF_FLAT = 1,
    SF_GROWS = 2
} sf_flat_verdict;

typedef struct sf_flatness {
    sf_flat_verdict verdict;
    double slope;            /* bytes per row over the window */
    double slope_first;      /* ... over its first half */
    double slope_second;     /* ... over its second half */
    double from_row, to_row; /* the window fitted */
    size_t samples;          /* samples in the window */
} sf_flatness;

/* rows[] must not decrease. Returns SF_ERR_ARG for NULL arrays. */
SF_API sf_status sf_flatness_fit(const double *rows, const double *bytes, size_t n,
                                 sf_flatness *out);
SF_API const char *sf_flat_verdict_name(sf_flat_verdict v); /* "flat", "grows", "unknown" */

/* ------------------------------------------------------------------------ */
/* Source: a database and one query.                                        */

typedef struct sf_source sf_source;

/* A new, unopened source that allocates through `census` (NULL: a private
 * census owned by the source). NULL when out of memory. */
SF_API sf_source *sf_source_create(sf_census *census);
SF_API void sf_source_free(sf_source *source);

/* Opens a database read-only. `db` is a SQLite file path (or a file: URI),
 * a PostgreSQL URL (postgresql://, postgres://) or conninfo string, or a
 * MySQL/MariaDB URL (mysql://, mariadb://). The backend is chosen from the
 * form of `db`. Messages never show a password from `db` (sf_db_mask), nor
 * the client library's text quoting it. `db` is not kept: the caller may
 * wipe it once this returns. Out of memory, in sqlfeed or in a client
 * library, is SF_ERR_NOMEM. */
SF_API sf_status sf_source_open(sf_source *source, const char *db);

/* The passwords a --db string carries, read the way libpq and sqlfeed's
 * MySQL URL reader read them: scheme://USER:PASSWORD@HOST..., the URL query's
 * password= and sslpassword=, and password= / sslpassword= in a conninfo
 * string (bare or 'quoted', with backslash escapes). A string that does not
 * parse is masked from its first "password" to its end; a value that is
 * itself a URL has its own password masked.
 *
 * sf_db_hide_secrets overwrites each in place with 'x' (the same length):
 * call it on argv's copy so that ps and /proc/PID/cmdline do not show it,
 * after keeping a copy to connect with. Returns how many it overwrote.
 *
 * sf_db_mask copies db into buf (n bytes; NUL-terminated when n > 0) with
 * each replaced by "***", for messages. Returns the masked text's length,
 * as snprintf does (>= n: truncated, never inside a password). */
SF_API size_t sf_db_hide_secrets(char *db);
SF_API size_t sf_db_mask(const char *db, char *buf, size_t n);

/* Sets a backend option before sf_source_open(): "timeout" (seconds a
 * statement may run on a server, enforced by the server and, 2 s later, by
 * the client should the server not answer; 0: no limit, the default), "pg_mode"
 * ("single-row", the default: libpq's single-row mode; or "cursor": DECLARE
 * and FETCH) and "fetch_size" (rows per FETCH in cursor mode; default 1000).
 * "prefetch" ("on" or "off", the default; until the first row): a thread of
 * the source's own steps the database and copies each row into a ring of a
 * few fixed batches, read back by the render on its own thread (errors,
 * cancels and the row they happened at come through in order); tuned by
 * "prefetch_batches" (2 to 64; default 4), "prefetch_batch" (bytes of each;
 * default 262144) and "prefetch_row_max" (the bytes of values one row may
 * hold, default 64 MiB, at most 1 GiB: a larger row fails the render).
 * "sqlite_cache" (KiB of SQLite's page cache, 64 to 1048576; default 4096:
 * enough for a join's lookup table of a few MB beside the streaming rows).
 * SF_ERR_ARG for an unknown option or a bad value. */
SF_API sf_status sf_source_set_option(sf_source *source, const char *name, const char *value);
/* Sharded reads (docs/shards.md), set before sf_source_prepare():
 *   "shard"      "K/N" (1 <= K <= N <= 1024): read only shard K of N, split
 *                by "shard_key" (an integer column the query returns): shard
 *                1 holds the NULL keys and the keys below b1, shard K the
 *                keys from b(K-1) up to bK, shard N those from b(N-1). The
 *                N-1 boundaries come from the key's distribution (ntile over
 *                the non-NULL keys), computed by each shard in the
 *                transaction it reads the rows in: a render over the source
 *                does it (sf_render_execute), before the first row. Rows
 *                come in key order, NULL keys first. Every row is in
 *                exactly one shard, whatever the boundaries.
 *   "shard_key"  the column ([A-Za-z_][A-Za-z0-9_]*).
 *   "snapshot"   PostgreSQL, before sf_source_open(): read in a REPEATABLE
 *                READ transaction that imports this exported snapshot
 *                (sf_source_export_snapshot in another process), so every
 *                shard sees the same data. */

/* PostgreSQL: begins this source's REPEATABLE READ transaction and exports
 * its snapshot (pg_export_snapshot()) into buf (n bytes): an id that other
 * sources take as their "snapshot" option while this one stays open (free
 * it when they have all begun, or better, finished: a shard retried later
 * imports it again). SF_ERR_ARG for another backend; call it after open,
 * before any prepare. */
SF_API sf_status sf_source_export_snapshot(sf_source *source, char *buf, size_t n);

/* Prepares the query: exactly one read-only statement. Parameters are named
 * (:name, @name or $name) and bound by sf_render_set_param(); positional `?`
 * parameters are refused. */
SF_API sf_status sf_source_prepare(sf_source *source, const char *sql);

/* The columns of the prepared query; valid after sf_source_prepare(). */
SF_API int sf_source_column_count(const sf_source *source);
SF_API const char *sf_source_column_name(const sf_source *source, int i);

/* The backend's name ("sqlite"), or "" before open. */
SF_API const char *sf_source_backend(const sf_source *source);

/* The last failure on this source, "" if none. */
SF_API const char *sf_source_errmsg(const sf_source *source);

/* After sf_source_open(): the file the source reads, as SQLite opened it
 * (sqlite3_db_filename: absolute, whatever the spelling, a file: URI too);
 * NULL for a server, an in-memory database, or before open. A program
 * writing files can refuse to overwrite it. */
SF_API const char *sf_source_file(const sf_source *source);

/* Makes sf_source_open() (connecting included), sf_source_prepare() and a
 * render reading this source stop soon with SF_ERR_CANCELLED, whatever the
 * server does (a host that never answers, a query waiting for a lock): for
 * a signal handler, which calls it as well as sf_render_cancel(). It stays
 * cancelled: every later call fails the same way. Async-signal-safe; from
 * another thread, it must not race sf_source_free(). */
SF_API void sf_source_cancel(sf_source *source);

/* ------------------------------------------------------------------------ */
/* Template: a compiled Mustache template.                                  */

typedef struct sf_template sf_template;

/* How interpolations are escaped. */
typedef enum sf_template_mode {
    /* The default: each {{tag}} is escaped for the XML context its position
     * in the template's literal text gives it (element text, attribute value,
     * CDATA section, comment); invalid UTF-8 and characters XML 1.0 forbids
     * are replaced by U+FFFD everywhere. {{{raw}}} and {{&raw}} are written
     * like {{x}} in CDATA and comments and refused elsewhere (data could
     * break the document). The literal markup must be well-formed, with
     * namespaces, however sections go (docs/template.md, docs/xml.md), and
     * an XML declaration may only declare version 1.0 and UTF-8. */
    SF_TEMPLATE_XML = 0,
    /* Mustache spec behaviour: & " < > are escaped wherever the tag is. */
    SF_TEMPLATE_HTML = 1,
    /* Plain text, not XML: the literal text is not checked and values are
     * written through the character filter only (invalid UTF-8, C0 controls
     * other than TAB, LF, CR, and U+FFFE, U+FFFF become U+FFFD); raw tags
     * too. A template in XML mode switches itself to text with
     * {{! sqlfeed-format: text }} as its first tag. */
    SF_TEMPLATE_TEXT = 2
} sf_template_mode;

SF_API sf_template *sf_template_create(sf_census *census, sf_template_mode mode);
SF_API void sf_template_free(sf_template *tpl);

/* Compiles the template in file `path`. Partials {{>name}} are read from
 * name.mustache in the same directory. A file that cannot be found or read
 * is SF_ERR_ARG (as an unknown built-in is); a template that is read but
 * broken (syntax, markup, a missing partial, over 64 MiB) SF_ERR_TEMPLATE. */
SF_API sf_status sf_template_load_file(sf_template *tpl, const char *path);

/* Compiles a built-in template by name (see sf_builtin_template_name). */
SF_API sf_status sf_template_load_builtin(sf_template *tpl, const char *name);

/* Compiles template text held in memory; `name` is used in messages.
 * Partials are looked up with `partial` (may be NULL: none exist). The
 * callback returns 1 and sets *text and *len (memory that stays valid for the
 * call to this function) when it knows the partial, 0 when not. */
typedef int (*sf_partial_fn)(void *ud, const char *name, const char **text, size_t *len);
SF_API sf_status sf_template_load_string(sf_template *tpl, const char *name, const char *text,
                                  size_t len, sf_partial_fn partial, void *ud);

/* The names the template reads inside {{#rows}}...{{/rows}} and inside
 * {{#first}}...{{/first}} (the run's first row): the columns its query must
 * provide, in order of first use. Valid after a load. */
SF_API size_t sf_template_row_name_count(const sf_template *tpl);
SF_API const char *sf_template_row_name(const sf_template *tpl, size_t i);

/* The names the template reads outside the rows section: the parameters
 * and built-ins it needs. Valid after a load. */
SF_API size_t sf_template_root_name_count(const sf_template *tpl);
SF_API const char *sf_template_root_name(const sf_template *tpl, size_t i);

/* The text of the template's first comment when it starts with "sqlfeed:",
 * the rest of that comment with surrounding white space trimmed; "" if none. */
SF_API const char *sf_template_description(const sf_template *tpl);

/* The files a template file's load read: the template (index 0) and each
 * partial file, once each, in the order first read; none for a built-in or
 * string template. A program writing files next to it can refuse to
 * overwrite one of them. Valid after a load. */
SF_API size_t sf_template_file_count(const sf_template *tpl);
SF_API const char *sf_template_file(const sf_template *tpl, size_t i);

SF_API const char *sf_template_errmsg(const sf_template *tpl);

/* Built-in templates: names by index (NULL past the end), and their text. */
SF_API const char *sf_builtin_template_name(size_t i);
SF_API const char *sf_builtin_template_text(const char *name, size_t *len);
/* The query a built-in template was written for, or NULL if none. */
SF_API const char *sf_builtin_template_query(const char *name);
/* The query a built-in template was written for on `backend` ("sqlite",
 * "postgresql", "mysql": sf_source_backend's names): its own for that
 * backend when it ships one (templates/NAME.pg.sql, NAME.my.sql: a JSON
 * aggregate is written differently on each), else the one above. NULL if
 * the template has no query. */
SF_API const char *sf_builtin_template_query_for(const char *name, const char *backend);

/* ------------------------------------------------------------------------ */
/* Output: where the rendered document goes.                                */

typedef struct sf_output sf_output;

SF_API sf_output *sf_output_create(sf_census *census);
SF_API void sf_output_free(sf_output *out);

/* Writes to a new temporary file in the directory of `path`; the document
 * replaces `path` only when sf_output_commit() succeeds (fsync, rename,
 * fsync of the directory). The new file gets the mode a newly created file
 * gets (0666 less the umask). What `path` names decides (docs/sink.md):
 *   a descriptor (/dev/stdout, /dev/fd/N, /proc/self/fd/N, or a symlink to
 *     one): written like sf_output_open_fd(), not atomic, never replaced;
 *   a directory: SF_ERR_OUTPUT;
 *   a device, FIFO or socket (also through a symlink): opened and written,
 *     not atomic, never replaced; a FIFO without a reader is waited for
 *     10 s at most (a signal caught meanwhile ends the wait: SF_ERR_OUTPUT);
 *   anything else: published atomically; a symlink at `path` is replaced,
 *     its target untouched. No file is ever created in /dev or anywhere
 *     under it (/dev/shm, /dev/mqueue too), /proc or /sys (SF_ERR_OUTPUT;
 *     see sf_output_kernel_dir).
 * Any name the file system accepts works (the temporary name is cut to
 * fit); a longer one is SF_ERR_OUTPUT here, before anything is written. */
SF_API sf_status sf_output_open_file(sf_output *out, const char *path);

/* Writes to an already open descriptor (e.g. 1 for stdout); not atomic, not
 * closed by the output. `label` names it in messages. When the descriptor
 * is a regular file opened without O_APPEND, sf_output_commit() truncates
 * it where the document ends (so `1<>old.xml` leaves no tail of the old
 * file); with O_APPEND, what follows belongs to others and is kept. */
SF_API sf_status sf_output_open_fd(sf_output *out, int fd, const char *label);

/* Flushes, syncs and publishes. After a failure the previous file at the
 * path is untouched and the temporary file is gone. SF_ERR_CANCELLED when
 * sf_output_cancel() was called before the rename (also during the fsync
 * that precedes it); a cancel after the rename changes nothing: the
 * document is published. */
SF_API sf_status sf_output_commit(sf_output *out);

/* Asks a write blocked on a stalled reader, or a commit not yet at its
 * rename, to give up (SF_ERR_CANCELLED). Async-signal-safe: one atomic
 * store; may be called from a signal handler or another thread. */
SF_API void sf_output_cancel(sf_output *out);

/* 1 once the document has replaced the path (the rename is done), even if
 * the directory sync that follows then failed; else 0. */
SF_API int sf_output_published(const sf_output *out);

/* Discards everything: removes the temporary file. Safe to call at any time,
 * more than once, and after a failed commit. */
SF_API void sf_output_abort(sf_output *out);

/* Appends bytes to the document (e.g. what a program writes around a
 * render). SF_ERR_OUTPUT (message in sf_output_errmsg) when a write fails. */
SF_API sf_status sf_output_write(sf_output *out, const void *p, size_t n);

/* Document bytes handed on to the file so far (uncompressed): while a render
 * runs, up to one buffer (256 KiB) behind; exact after sf_output_commit().
 * Safe to read from another thread. */
SF_API uint64_t sf_output_bytes(const sf_output *out);

/* 1 when the output was opened as a file published atomically (a temporary
 * file renamed at commit), from sf_output_open_file() on, whatever happens
 * after (a commit, an abort); 0 when it is written as it goes (a descriptor,
 * device, FIFO) or was never opened. */
SF_API int sf_output_atomic(const sf_output *out);

/* 1 when `dir` is a directory where no output file is ever created: /dev
 * and everything under it, /proc, /sys (by real path), or a kernel pseudo
 * file system mounted elsewhere (procfs, sysfs, devpts, mqueue, cgroup...).
 * sf_output_open_file() refuses those; a program creating other files (a
 * log) should too. 0 otherwise, also when `dir` cannot be opened. */
SF_API int sf_output_kernel_dir(const char *dir);

/* 1 when sf_output_open_file(path) would write an open descriptor in place
 * rather than create a file: /dev/stdout, /dev/fd/N, /proc/self/fd/N, by
 * their spelling, their directory's real path or a symlink leading to one,
 * as the sink reads them. 0 otherwise. */
SF_API int sf_output_names_descriptor(const char *path);

/* The path of the temporary file while one exists, else NULL. */
SF_API const char *sf_output_temp_path(const sf_output *out);

SF_API const char *sf_output_errmsg(const sf_output *out);

/* ---- Output options, stages and publication (issue 8) -------------------
 * Set before sf_output_open_*(); SF_ERR_ARG for an unknown name or a bad
 * value, SF_ERR_STATE once open. Names and values:
 *   "compress"   "auto" (the default: by the path's suffix, ".gz" gzip,
 *                ".zst" zstd, anything else none), "none", "gzip", "zstd"
 *   "level"      the compressor's level: gzip 1-9 (default 1), zstd 1-19
 *                (default 3); "best": the codec's highest ratio
 *   "workers"    compressor threads. gzip (default 2): 256 KiB blocks
 *                deflated on N threads, each primed with the 32 KiB before
 *                it, joined in order into one member (the same bytes for
 *                any N >= 1; about 0.6 MiB a thread); 0: one stream on the
 *                thread running the chain. zstd (default 0: on the thread
 *                running the chain, the writer thread): libzstd's worker
 *                threads, about 6 MiB + 7 MiB a worker (docs/sink.md)
 *   "writer"     "thread" (the default: compressing and writing run on a
 *                second thread, behind a few fixed buffers) or "inline"
 *   "sync_step"  a durable file is written back every this many bytes while
 *                it is written (default 32M; 0: only at the end; K, M, G):
 *                each step starts its writeback and waits for the previous
 *                step's, and a thread of the output's fdatasyncs (none with
 *                "writer" "inline"), so the final fsync waits for one step
 *   "cache"      "drop" (the default): a durable file's pages leave the page
 *                cache once written back, so a feed of hundreds of MB holds a
 *                few steps of cache, not its size; "keep": leave them cached
 *                (a server reading the feed right after)
 *   "split_rows" / "split_bytes"
 *                with sf_output_open_parts(): start a new part before a row
 *                that would take the part past this many rows / bytes
 *                (uncompressed, head and tail included); 0: no limit. */
SF_API sf_status sf_output_set_option(sf_output *out, const char *name, const char *value);

/* Opens a set of parts named from `pattern`: a file name (path) with one
 * %d or %0Nd (the part number, from 1) and, for a set with an index, %r (the
 * run's tag, so a new set never replaces a file the published index names).
 * Each part is a complete document, published as sf_output_open_file()
 * publishes one file; the set is published by sf_output_publish(), or by
 * sf_render_commit() with its index (docs/sink.md). */
SF_API sf_status sf_output_open_parts(sf_output *out, const char *pattern);

/* Ends the document(s): flushes every stage, writes the compressors'
 * trailers, fsyncs and closes the temporary file(s). Nothing is visible
 * yet; SF_ERR_* as sf_output_commit(). */
SF_API sf_status sf_output_finish(sf_output *out);

/* Makes a finished output visible: renames (each part, then) the file into
 * place and fsyncs the directory. sf_output_commit() is finish + publish. */
SF_API sf_status sf_output_publish(sf_output *out);

/* Bytes written to the file(s) after compression: exact after finish. */
SF_API uint64_t sf_output_bytes_out(const sf_output *out);

/* The parts of a split output (1 for a single document), and each part's
 * final path, rows and uncompressed bytes: exact after finish. */
SF_API size_t sf_output_part_count(const sf_output *out);
SF_API const char *sf_output_part_path(const sf_output *out, size_t i);
SF_API uint64_t sf_output_part_rows(const sf_output *out, size_t i);
SF_API uint64_t sf_output_part_bytes(const sf_output *out, size_t i);

/* The row count the previous published run of this output recorded beside
 * it (.NAME.sqlfeed.state): 1 and *rows set, or 0 when there is none. */
SF_API int sf_output_previous_rows(const sf_output *out, uint64_t *rows);

/* The lock file an output opened by path (a file, or a set of parts) holds
 * from open to free (.NAME.sqlfeed.lock beside it; another run is refused
 * with SF_ERR_BUSY), or NULL. A crash handler may unlink it, as it unlinks
 * the temporary file: the kernel drops the lock with the process. */
SF_API const char *sf_output_lock_path(const sf_output *out);

/* ------------------------------------------------------------------------ */
/* Render: one run of a template over a source into an output.              */

typedef struct sf_render sf_render;

SF_API sf_render *sf_render_create(sf_census *census);
SF_API void sf_render_free(sf_render *r);

/* A parameter: bound as :name in the query and readable as {{name}} outside
 * the rows. Setting the same name again replaces the value. `name` must be
 * [A-Za-z_][A-Za-z0-9_]* and not one of the built-in names: rows,
 * generated_at, generated_date, generated_rfc822, sqlfeed_version, and the
 * two a feed template reads from the rows, first ({{#first}}...{{/first}}:
 * the run's first row, in the head too) and row_count (the rows written to
 * the document or part, read after the rows section): SF_ERR_ARG. */
SF_API sf_status sf_render_set_param(sf_render *r, const char *name, const char *value);

/* The time the built-in names generated_* show (seconds since the epoch,
 * UTC). Defaults to the time sf_render_run() starts. */
SF_API void sf_render_set_time(sf_render *r, int64_t unix_seconds);

/* Checks that every name the template reads is provided (columns inside the
 * rows section; parameters and built-ins everywhere), binds the parameters,
 * reads the first row, then renders into `out`. Nothing is written to `out`
 * when a check, the binding or the first row fails. Does not commit. */
SF_API sf_status sf_render_run(sf_render *r, sf_template *tpl, sf_source *src, sf_output *out);

/* Asks a running sf_render_run() (or sf_render_count()) to stop with
 * SF_ERR_CANCELLED at the next row (and interrupts a query the database is
 * still working on).
 * Async-signal-safe; may be called from another thread. */
SF_API void sf_render_cancel(sf_render *r);

/* Rows rendered so far; safe to read from another thread during a run. */
SF_API uint64_t sf_render_rows(const sf_render *r);

/* Counts the rows the source's query returns, with this render's parameters
 * bound, by running SELECT count(*) over it first (for a progress total).
 * Costs a second execution of the query. */
SF_API sf_status sf_render_count(sf_render *r, sf_source *src, uint64_t *rows);

SF_API const char *sf_render_errmsg(const sf_render *r);

/* ---- One scan, several outputs (issue 8) ---------------------------------
 * sf_render_add_output() adds a document to write from the scan; each has
 * its own template and output (compressed, split). sf_render_execute() reads
 * the rows once and renders every output; sf_render_run() is add + execute
 * for one. */
SF_API sf_status sf_render_add_output(sf_render *r, sf_template *tpl, sf_output *out);

/* An index over the parts of `parts` (an output added above, opened with
 * sf_output_open_parts()): rendered with `tpl` into `index` once the parts
 * are finished, with one row per part: part (1, 2 ...), name (file name),
 * url (base_url, then "/" if base_url lacks one, then the name
 * percent-encoded as RFC 3986 asks), row_count (the part's rows: {{rows}} is
 * the list itself), bytes (uncompressed), and lastmod (the largest value of column
 * `max_column` in the part's rows: the latest instant when both values
 * compared are dates (any zone), else the larger as bytes; "" when max_column
 * is NULL or the part has no value). The index's template may also read
 * the parameters and built-ins. */
SF_API sf_status sf_render_add_index(sf_render *r, sf_output *parts, sf_template *tpl,
                              sf_output *index, const char *base_url, const char *max_column);

/* Options, before the run:
 *   "min_rows"   N: publish nothing when an output wrote fewer rows;
 *   "max_drop"   PCT: publish nothing when the rows an output wrote fell by
 *                more than PCT percent since its previous published run;
 *   "on_invalid" "fail" (the default) or "skip": what a row that fails one
 *                of its template's {{! sqlfeed-check: ... }} rules, or a
 *                formatter ({{posted_at.rfc822}} over "yesterday"), does.
 *                fail: the run stops with SF_ERR_INVALID, "row N: column C:
 *                REASON (rule at FILE:LINE:COL)", nothing is published.
 *                skip: the row is left out of that output only (the other
 *                outputs of the scan still get it), counted
 *                (sf_render_rows_skipped) and listed in the reject log;
 *   "reject_log" PATH: a TSV file listing every row left out, one line
 *                each after a header: row, key (the row's first column;
 *                NULL as \N), output, column, reason; tab, newline, CR and
 *                backslash in a field written \t \n \r \\. Opened when
 *                set (its lock and temporary file, as sf_output_open_file;
 *                SF_ERR_OUTPUT, SF_ERR_BUSY), published by sf_render_commit
 *                with the outputs, after them (an empty log when no row was
 *                left out), discarded when the run fails.
 * The rails (min_rows, max_drop) count the rows an output wrote: skipped
 * rows are not among them. docs/checks.md. */
SF_API sf_status sf_render_set_option(sf_render *r, const char *name, const char *value);

/* After a run: the rows `out` (an output added to the render) wrote, and
 * the rows left out of it by on_invalid skip; 0 for another output. */
SF_API uint64_t sf_render_rows_written(const sf_render *r, const sf_output *out);
SF_API uint64_t sf_render_rows_skipped(const sf_render *r, const sf_output *out);
/* The reject log's output (reject_log), or NULL: a program may cancel it
 * (sf_output_cancel) or remove its temporary file and lock in a crash
 * handler, as for its own outputs. The render owns it. */
SF_API sf_output *sf_render_reject_log(const sf_render *r);

/* Reads the rows once and renders each output added. Does not publish. */
SF_API sf_status sf_render_execute(sf_render *r, sf_source *src);

/* After a successful execute: checks the safety rails (SF_ERR_REFUSED,
 * naming both counts), finishes every output, then publishes them all
 * (parts, then each index, then removes the parts of an earlier run that
 * no index names). On any failure before the first rename nothing is
 * published and every temporary file is gone. */
SF_API sf_status sf_render_commit(sf_render *r);

/* ---- Sharded renders (docs/shards.md) -----------------------------------
 * A render whose source is sharded ("shard", "shard_key") writes the rows of
 * its shard only, into its one output, a file: one document (e.g.
 * DIR/K-of-N.part) of the rows alone, the head and tail being publish's; or,
 * opened with sf_output_open_parts() (e.g. DIR/K-of-N-%04d.part), complete
 * parts, which publish names and indexes. The render option "shard_lastmod"
 * COLUMN records the largest value of COLUMN in the shard (in each part),
 * "shard_run" ID the build it belongs to (a chord's id): publish refuses
 * shards of different runs, and with its own "shard_run" any other run. A
 * shard's render removes its earlier manifest when it executes, so a shard
 * whose re-render failed is missing, never joined from an earlier run; a
 * program should also remove DIR/K-of-N.json itself before it opens the
 * source (the command and the Python package do), so that a failure before
 * the rows (a database down) leaves the shard missing too.
 * sf_render_commit() publishes the part(s), then the manifest K-of-N.json in
 * the (first) part's directory: rows, bytes, bytes out, CRC-32 (each part's),
 * boundaries, the query's total rows, hashes of the template, query and
 * parameters, compression, snapshot, time, lastmod.
 *
 * sf_render_publish_shards() joins the N one-document shards in `dir`
 * (manifests K-of-N.json) into `path`: it refuses (SF_ERR_REFUSED, naming the
 * shard and what is wrong) a missing manifest or part, a manifest of another
 * split in `dir`, shards that disagree (boundaries, total, template, query,
 * parameters, compression, snapshot), rows that do not add up to the total,
 * a part whose size or CRC-32 is not its manifest's, and a template or
 * parameters (sf_render_set_param) other than the shards'. Then it writes
 * the head and tail once (rendered with row_count = the total; a template
 * that reads {{#first}} is refused), compressed as the parts are, around the
 * parts copied byte for byte in shard order, and publishes the file
 * atomically (sf_output_open_file's rules). Nothing changes at `path` on a
 * failure. The feed's time (generated_*) is the first shard's unless
 * sf_render_set_time() set one; publishing twice gives the same file. `r` is
 * a new render, used for nothing else. */
SF_API sf_status sf_render_publish_shards(sf_render *r, sf_template *tpl, const char *dir,
                                          unsigned shards, const char *path);

/* The same for shards whose output was split (split_rows, split_bytes), `tpl`
 * their template (checked to be the shards'): each shard's parts are complete documents, listed in its manifest with
 * their rows, bytes, CRC-32 and largest lastmod. They are copied, in shard
 * order, into `parts` (opened with sf_output_open_parts() and "compress"
 * "none": the bytes are copied as they are, so name the parts with the
 * shards' compression suffix), and `index_tpl` renders the index over them
 * into `index` (opened as a file), as sf_render_add_index() describes: part,
 * name, url (from base_url), row_count, bytes (uncompressed), lastmod (the
 * manifest's). A part with no rows (an empty shard's) is left out unless every
 * part is empty. The set is published as a render publishes one: the parts,
 * then the index, then the parts of an earlier run the index no longer names
 * are removed. The same refusals as above (SF_ERR_REFUSED), and shards that
 * are one document each. */
SF_API sf_status sf_render_publish_shard_parts(sf_render *r, sf_template *tpl,
                                               sf_template *index_tpl, const char *dir,
                                               unsigned shards, sf_output *parts,
                                               sf_output *index, const char *base_url);

/* ------------------------------------------------------------------------ */
/* Watch: a running render seen from a sampler thread (docs/watch.md).       */
/* What `sqlfeed render` reports about memory, for any embedding program:
 * the memory budget (RSS crossing it cancels the render), the mem-log (one
 * JSON line per 100 ms), samples for the flatness verdict, the census report
 * and a progress snapshot. The sampler only reads (atomic counters, /proc)
 * and writes the mem-log; the render never waits for it. The library
 * installs no signal handler: a program that wants the report on SIGUSR1
 * reads the signal its own way (the command: a signalfd) and calls
 * sf_watch_report() from that thread. */

typedef struct sf_watch sf_watch;

typedef struct sf_watch_opts {
    unsigned interval_ms;  /* sampling and budget checks: every this many ms
                              (0: 20); samples thin out on a long run (at most
                              2048 kept), the budget is checked every tick */
    FILE *mem_log;         /* JSON lines (docs/census.md), appended and flushed
                              at most every 100 ms, plus a first (t = 0) and a
                              last ("final": true) line; NULL: none. Not closed
                              by the watch. */
    uint64_t max_memory;   /* RSS budget in bytes (0: none): when the RSS or
                              the kernel's high-water mark passes it, the watch
                              calls sf_render_cancel() (sf_watch_over_budget) */
    uint64_t total;        /* rows expected, for percent and ETA (0: unknown) */
    sf_output *output;     /* whose bytes the report and mem-log count (NULL: 0) */
} sf_watch_opts;

/* A watch over `census` (required) and `render` (NULL: rows stay 0 and the
 * budget cancels nothing). `opts` NULL: the defaults. The watch allocates
 * through `census` (about 50 KiB, once, before it takes the census the
 * growth is measured from). NULL when out of memory or census is NULL. */
SF_API sf_watch *sf_watch_create(sf_census *census, sf_render *render, const sf_watch_opts *opts);
/* Starts the sampler thread (its asynchronous signals blocked: signals stay
 * with the program's threads) and writes the mem-log's first line: time 0
 * (of the mem-log, the report and the progress) is this call.
 * SF_ERR_STATE when started before; SF_ERR_NOMEM when no thread. */
SF_API sf_status sf_watch_start(sf_watch *w);
/* Stops and joins the thread, then takes the last sample, checks the budget
 * once more and writes the mem-log's final line. Idempotent; NULL is a
 * no-op. A watch never started gets the last sample (and lines) all the same. */
SF_API void sf_watch_stop(sf_watch *w);
/* Stops the watch if it runs and frees it. NULL is a no-op. */
SF_API void sf_watch_free(sf_watch *w);

/* The rows expected, once known (after sf_render_count): from now on the
 * progress has a percent and an ETA. Safe from any thread. */
SF_API void sf_watch_set_total(sf_watch *w, uint64_t rows);

/* 1 when the RSS crossed max_memory (then *rss, when not NULL, is the figure
 * seen), else 0. Safe from any thread at any time. */
SF_API int sf_watch_over_budget(const sf_watch *w, uint64_t *rss);

/* The flatness verdict from the samples so far (final after sf_watch_stop):
 * "flat (RSS +0.1 B/row, tracked +0.0 B/row, rows 4000..20000)" or
 * "grows (...)" written into buf (truncated to n); returns 1 when known, 0
 * when "unknown (too few rows sampled after the warm-up)". The kind alone:
 * sf_watch_flatness(). */
SF_API int sf_watch_verdict(sf_watch *w, char *buf, size_t n);
/* The verdict over RSS and tracked bytes together: SF_GROWS when either
 * grows, SF_FLAT_UNKNOWN when either is unknown. */
SF_API sf_flat_verdict sf_watch_flatness(sf_watch *w);
/* The census type whose peak live bytes grew most since the start:
 * "row (+1.2 MiB since the start)". */
SF_API void sf_watch_grew_most(sf_watch *w, char *buf, size_t n);

/* The census report (the table the command prints on SIGUSR1): every type's
 * live blocks, bytes, peak and change since the last report, the tracked
 * total, heap, RSS and peak RSS, rows and rate, bytes written, and the
 * verdict once known; `why` names the occasion in its first line. Written
 * into buf (truncated to n, always terminated; 4096 bytes hold it); returns
 * the length written. Allocates nothing and takes only the watch's own lock:
 * call it from any thread but a signal handler (the command: the thread that
 * reads its signalfd). */
SF_API size_t sf_watch_report(sf_watch *w, char *buf, size_t n, const char *why);

/* A progress snapshot, for a progress line or a Python object. */
typedef struct sf_watch_progress {
    double elapsed;      /* seconds since sf_watch_start */
    uint64_t rows;       /* rows rendered */
    double rate;         /* rows per second over the whole run */
    uint64_t bytes;      /* document bytes written (opts.output) */
    uint64_t rss;        /* resident set size now */
    uint64_t peak_rss;   /* this process's high-water mark */
    uint64_t total;      /* rows expected, 0: unknown */
    double percent;      /* 0..100 when total is known, else -1 */
    double eta;          /* seconds left when total is known and 0 < rows < total, else -1 */
} sf_watch_progress;
SF_API void sf_watch_get_progress(sf_watch *w, sf_watch_progress *out);

/* errno of the first failed mem-log write (the log is incomplete), or 0. */
SF_API int sf_watch_log_error(const sf_watch *w);

/* This process's resident set size now (/proc/self/statm), and its own
 * high-water mark (VmHWM of /proc/self/status; not getrusage's ru_maxrss,
 * which survives execve and so reports a parent's peak), in bytes; 0 when
 * /proc cannot be read. */
SF_API uint64_t sf_rss_current(void);
SF_API uint64_t sf_rss_peak(void);

#ifdef __cplusplus
}
#endif

#endif /* SQLFEED_H */
