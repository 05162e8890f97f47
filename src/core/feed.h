/* feed.h: the render handle and the feed loop's per-output state, shared by
 * render.c (the handle, names, parameters) and feed.c (the loop, indexes,
 * commit). Internal. */
#ifndef SF_CORE_FEED_H
#define SF_CORE_FEED_H

#include <stdatomic.h>

#include "../sink/sink.h"
#include "../source/source.h"
#include "../template/template.h"
#include "split.h"

#define ROWS_NAME "rows"
enum { B_AT, B_DATE, B_RFC822, B_VERSION, B_COUNT };
/* Root names a feed template reads besides parameters and built-ins, and
 * their codes in a rootmap (find_root's indexes are >= 0): the run's first
 * row ({{#first}}...{{/first}}) and the rows written to the document or
 * part ({{row_count}}, after the rows). Reserved: no parameter takes them.
 * An index template has neither (its rows have their own row_count). */
#define FIRST_NAME "first"
#define ROW_COUNT_NAME "row_count"
enum { ROOT_FIRST = -2, ROOT_ROW_COUNT = -3 };
/* What --measure of a split-by-bytes tail reads as row_count: 20 digits,
 * the most a row count has, so the measured tail is an upper bound. */
#define ROW_COUNT_BOUND "18446744073709551615"

typedef struct sf_param {
    char *name;
    char *value;
    size_t len;
} sf_param;

/* A row rendered before it is written (split by bytes): grows to the
 * largest row, never past `bound`; past it, bytes are counted, not kept. */
typedef struct sf_scratch {
    sf_wbuf w; /* first: the drain callback casts back */
    sf_census *cs;
    size_t bound;
    uint64_t over; /* bytes counted and dropped past the bound */
    int nomem;
} sf_scratch;

typedef struct sf_feed_out sf_feed_out;
struct sf_feed_out {
    sf_render *r;
    sf_template *tpl;
    sf_output *out;
    size_t num; /* 1, 2 ... in the order added: messages name it */
    int32_t *colmap;  /* template symbol -> column (index: part field), or -1 */
    int32_t *rootmap; /* template symbol -> root value, or -1 */
    uint32_t rows_sym;
    sf_tpl_run *run;
    int reached; /* the head reached the rows: the output takes rows */
    int split;   /* opened as parts */
    uint64_t split_bytes, head_bytes, tail_bytes;
    int measured; /* head_bytes and tail_bytes are known (first part) */
    sf_scratch sc;
    /* An output with an index: the largest value of max_column in the
     * current part, and each finished part's (values end to end, with the
     * offset where each part's begins). */
    sf_feed_out *index;
    char *max_column;
    int maxcol;
    int have_max;
    sf_buf cur_max, maxes, offs;
    size_t nparts; /* parts finished */
    /* An index: the output whose parts it lists, and the part being rendered
     * as a row. */
    int is_index;
    int failed; /* its publication failed (sf_render_commit) */
    sf_feed_out *parts;
    char *base_url;
    size_t base_len;
    size_t ipart;
    char inum[3][24];
    sf_buf iurl;
    /* Row checks (issue 9): the template's rules, evaluated per row before
     * it renders, and the counts. */
    sf_tpl_checker *checker; /* NULL: the template has no rules */
    int32_t *rulemap;        /* rule column (sf_tpl_rules_column) -> query column */
    int can_fail;            /* on_invalid skip and the template has formatters: rows
                                render into sc first, so a failed one writes nothing */
    uint64_t rows_written, rows_skipped;
    uint64_t part_rows; /* rows written to the current document or part */
    int measuring;      /* the tail is being measured: row_count is ROW_COUNT_BOUND (1)
                           or 0 (2) */
    char rc_text[24];
    /* A shard's output (shard.c): the rows only; the head and tail render
     * into `hide` and are dropped (publish writes them once). */
    int body_only;
    sf_scratch hide;
    /* A shard's split output: each part's largest lastmod is kept, as for
     * an index, for the manifest (publish writes the index). */
    int shard_parts;
};

struct sf_render {
    sf_census_ref cref;
    sf_errbuf err;
    sf_param *params;
    size_t nparams;
    int64_t when;
    int when_set;
    int ran, executed, committed;
    /* Written by sf_render_cancel() from a signal handler or another thread:
     * lock-free atomics, safe in both. */
    atomic_int cancel;
    _Atomic(sf_source *) running; /* the source to interrupt */
    _Atomic uint64_t rows;        /* one writer (the run); monitors read it */
    /* Rails (sf_render_set_option). */
    uint64_t min_rows;
    double max_drop;
    int min_rows_set, max_drop_set;

    sf_feed_out **outs; /* outputs and indexes, in the order added */
    size_t nouts;

    /* During a run. */
    sf_source *src;
    int has_row;
    sf_status fail; /* a provider's failure (the rows read twice) */
    char btext[B_COUNT][64];

    /* Issue 9: what to do with a row that fails a check or a formatter, and
     * where the rows left out are listed (a TSV file published with the
     * outputs: docs/checks.md). */
    int skip_invalid;  /* on_invalid: 1 skip, 0 fail (the default) */
    sf_output *reject; /* reject_log, opened when the option is set */
    int reject_failed; /* its publication failed */
    /* The run's first row, copied once when the rows start ({{#first}}). */
    sf_val *first_vals;
    char *first_text;
    int reads_first;
    /* A sharded read (shard.c, docs/shards.md): the plan, the render's own
     * shard options, the largest --lastmod value of the shard's rows. */
    sf_shard_plan *shard;
    char *shard_lastmod;
    char *lastmod_column;
    char *shard_run; /* "shard_run": the run every shard and publish name ("": none) */
    /* A shard's unique values, the text of its K-of-N.unique (made when the
     * rows end, from the checker, which goes with the loop as before). */
    sf_buf shard_unique;
    size_t shard_unique_sets;
};

/* render.c: the value each of src's parameters is bound to for a query over
 * the prepared one (a count, a shard's plan): the --param's, the shard's
 * own for every row. SF_ERR_NAME naming one without a value. */
#define SF_QUERY_PARAMS_MAX 64
sf_status sf_render_query_values(sf_render *r, const sf_source *src, const char **values);

/* shard.c: the render's side of a sharded read. */
sf_status sf_shard_begin(sf_render *r);
/* The value a shard parameter is bound to (NULL: not one). */
const char *sf_shard_param_value(const sf_render *r, const char *name);
/* When a shard's rows end: its unique values, from f's checker. */
sf_status sf_shard_take_unique(sf_render *r, sf_feed_out *f);
/* After the part is published: its manifest beside it. */
sf_status sf_shard_manifest(sf_render *r);
void sf_shard_release(sf_render *r);
/* feed.c: the rails (min_rows, max_drop) for `rows` going to `out`, named
 * `name` in the refusal. */
sf_status sf_feed_rail(sf_render *r, const sf_output *out, uint64_t rows, const char *name);
/* feed.c, for publishing shards: a walk's head and tail alone. */
sf_status sf_feed_head_tail(sf_render *r, sf_feed_out *f, sf_output *head, sf_output *tail,
                            uint64_t rows);
/* render.c, for publishing shards: adds tpl (no source) and readies it
 * for sf_feed_head_tail. */
sf_status sf_render_ready_pieces(sf_render *r, sf_template *tpl, sf_output *head,
                                 sf_feed_out **made);
/* render.c, for publishing split shards: readies index ix (added with
 * sf_render_add_index) with no source: names checked, maps built. */
sf_status sf_render_ready_index(sf_render *r, sf_feed_out *ix);

/* render.c */
int sf_feed_root_value(const sf_render *r, int32_t k, sf_val *out);
/* feed.c */
int sf_feed_index_field(const char *name); /* an index row's field, or -1 */
void sf_feed_release_first(sf_render *r);  /* the first row's copy */
sf_status sf_feed_loop(sf_render *r);
void sf_feed_release_loop(sf_feed_out *f); /* frees what only the loop needs */
void sf_feed_release(sf_feed_out *f);      /* frees everything a run made */

#endif
