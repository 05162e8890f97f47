/* template.h: the compiled form of a Mustache template and the entry points
 * the render layer (and the spec tests) use. Internal. */
#ifndef SF_TEMPLATE_H
#define SF_TEMPLATE_H

#include "../common.h"
#include "../value.h"
#include "../xml/xml.h"

typedef enum sf_node_type {
    SF_N_TEXT = 0, /* literal text: a = offset in the unit's source, b = length */
    SF_N_VAR,      /* {{name}}: esc says how to write it; a = 1: break the
                      "]]>" or "-->" the text before began, then write */
    SF_N_SECTION,  /* {{#name}}: body is [index + 1, b) */
    SF_N_INVERTED, /* {{^name}}: body is [index + 1, b) */
    SF_N_PARTIAL   /* {{>name}}: b = unit index, or SF_NO_UNIT (renders nothing) */
} sf_node_type;

#define SF_NO_UNIT UINT32_MAX

/* A name's parts (sf_template.parts) are symbols, or formatter calls: a
 * part with SF_PART_FMT set is sf_template.fcalls[part & ~SF_PART_FMT],
 * applied to the value the parts before it resolved to (value/format.h). */
#define SF_PART_FMT UINT32_C(0x80000000)

typedef struct sf_node {
    uint8_t type;    /* sf_node_type */
    uint8_t esc;     /* sf_esc, for SF_N_VAR */
    uint16_t nparts; /* name parts (a.b.c is 3); 0 is the implicit iterator "." */
    uint32_t parts;  /* first part's index in sf_template.parts */
    uint32_t a, b;
    uint32_t pos;    /* offset of the tag (or text) in the unit's source */
} sf_node;

/* One compiled piece: the template itself (unit 0) or a partial compiled for
 * one indentation and one XML starting context. */
typedef struct sf_unit {
    char *name;      /* file name or partial name */
    char *label;     /* what messages call it, when not name (a partial's file) */
    char *src;       /* the source compiled (indented copy for partials) */
    size_t srclen;
    char *indent;    /* standalone partial indentation, "" otherwise */
    size_t indent_len;
    sf_xml_lexer xstart; /* the XML context the unit starts in (a partial's cache key) */
    sf_xml_lexer xend;   /* ... and ends in (the same, or after the root element) */
    uint8_t compiling;   /* being compiled: an include of it is recursive */
    uint8_t json_outer;  /* compiled inside a JSON section (keys allowed): part of
                            a partial's cache key */
    char *free_pfx;      /* namespace prefixes it uses undeclared, which the
                            including context must declare: "p q " */
    size_t free_len;
    sf_node *nodes;
    uint32_t nnodes;
} sf_unit;

typedef struct sf_sym {
    char *name;
    uint32_t len;
} sf_sym;

struct sf_template {
    sf_census_ref cref;
    sf_template_mode mode;     /* as created */
    sf_template_mode eff_mode; /* this load's: a {{! sqlfeed-format: }} pragma may change it */
    sf_errbuf err;
    int loaded;
    sf_unit *units;
    uint32_t nunits, capunits;
    uint32_t *parts;
    uint32_t nparts, capparts;
    sf_sym *syms;
    uint32_t nsyms, capsyms;
    struct sf_fmt_call *fcalls; /* formatter calls named by SF_PART_FMT parts */
    uint32_t nfcalls, capfcalls;
    struct sf_tpl_rules *rules; /* row checks, {{! sqlfeed-check: }} (checks.c) */
    char *description;
    char *dir;               /* file templates: where partials are read from */
    const char *builtin;     /* built-in templates: partials are built-ins */
    sf_partial_fn partial_fn; /* string templates: the caller's lookup */
    void *partial_ud;
    char **row_names, **root_names;
    size_t nrow_names, nroot_names;
};

/* Renders unit 0 with `root` as the bottom of the context stack. Provider
 * errors (a lookup or item returning -1) return SF_ERR_SOURCE and leave
 * `err` to the provider; a failed drain returns SF_ERR_OUTPUT and leaves
 * `err` to the output. Other failures are described in `err`. */
sf_status sf_tpl_render(const sf_template *t, sf_wbuf *w, const sf_val *root, sf_errbuf *err);

/* The cut: a template rendered in pieces around its rows section, for a
 * loop that pushes rows (src/core/feed.c). `rows` identifies the rows list
 * (its ops and obj): the first section reached on that list, when the list
 * is truthy, is where the head stops. Then each sf_tpl_row() renders the
 * section's body once with `row` pushed, and sf_tpl_tail() renders what the
 * whole-template walk renders after the section's last row, closing every
 * section and partial open around it. head + rows + tail writes exactly the
 * bytes sf_tpl_render() writes over a list with those rows. When the head
 * does not reach the rows (a falsy list, an enclosing section that is falsy,
 * an inverted branch), it renders the whole template, *reached is 0 and
 * the tail writes nothing. A second walk over the rows list (after the cut)
 * asks the list for items as sf_tpl_render() would: the provider decides.
 * After a tail, sf_tpl_head() starts the template again (a new part).
 * The state is allocated once (sf_tpl_run_create); rendering rows allocates
 * nothing but the context stack's growth to the deepest nesting seen.
 * Errors: as sf_tpl_render(); the state stays usable only for free. */
typedef struct sf_tpl_run sf_tpl_run;
sf_tpl_run *sf_tpl_run_create(sf_census *cs, const sf_template *t, const sf_val *root,
                              const sf_val *rows, sf_errbuf *err); /* NULL: out of memory */
void sf_tpl_run_free(sf_tpl_run *k);
sf_status sf_tpl_head(sf_tpl_run *k, sf_wbuf *w, int *reached);
sf_status sf_tpl_row(sf_tpl_run *k, sf_wbuf *w, const sf_val *row);
sf_status sf_tpl_tail(sf_tpl_run *k, sf_wbuf *w);
/* The tail with keep = 1 leaves the state in the rows section, as before
 * the call: renders the tail to measure it (the tail reads no row). */
sf_status sf_tpl_tail_ex(sf_tpl_run *k, sf_wbuf *w, int keep);
/* 1 between a head that reached the rows and its tail. */
int sf_tpl_in_rows(const sf_tpl_run *k);

/* Checks, before a render, that every name is provided: in rows sections by
 * is_col or is_root, elsewhere by is_root; also that the rows list is
 * iterated at most once and never inside itself. On failure, describes every
 * missing name with its file:line:col in `err`. */
typedef int (*sf_name_pred)(void *ud, const char *name);
sf_status sf_tpl_check(const sf_template *t, const char *rows_name, sf_name_pred is_col,
                       sf_name_pred is_root, void *ud, sf_errbuf *err);

/* A row value a formatter refused (SF_ERR_INVALID from sf_tpl_row, or from
 * sf_tpl_head reading the first row): the name's first part and the
 * formatter's reason. The message in `err` says the same with the tag and
 * its file:line:col; the feed layer adds the row number. */
typedef struct sf_tpl_bad {
    char column[128];
    char reason[256];
} sf_tpl_bad;
const sf_tpl_bad *sf_tpl_run_bad(const sf_tpl_run *k);

/* Row checks (checks.c): a {{! sqlfeed-check: ... }} comment of the
 * template's own file adds its rules to t->rules. Returns 0 (not such a
 * comment, or added), -1 for a bad rule (`why` says which; the compiler
 * reports it at the comment's file:line:col), -2 out of memory. */
int sf_tpl_rules_comment(sf_template *t, const char *s, size_t n, char *why, size_t whylen);
void sf_tpl_rules_free(sf_template *t);

/* The rules' columns: each name a rule reads, once, in order of first use.
 * Evaluation asks for a column by this index (and name), so a caller maps
 * the names to its columns once per run. */
size_t sf_tpl_rules_count(const sf_template *t); /* rules (0: the template has none) */
size_t sf_tpl_rules_unique_count(const sf_template *t); /* its `unique` rules */
size_t sf_tpl_rules_column_count(const sf_template *t);
const char *sf_tpl_rules_column(const sf_template *t, size_t i);
/* Checks, with the render's other names, that every rule's column is one
 * is_col knows: SF_ERR_NAME naming the rule and its file:line:col. */
sf_status sf_tpl_rules_check_names(const sf_template *t, sf_name_pred is_col, void *ud,
                                   sf_errbuf *err);

/* One run's evaluation of a template's rules (the `unique` sets live here,
 * not in the template, which several runs may share). Allocated once per
 * run; evaluating a row allocates nothing; keeping a row's unique values
 * grows their hash sets geometrically (the one check whose memory grows
 * with the rows: 8 bytes a slot, at most 70 % full: docs/checks.md). */
typedef struct sf_tpl_checker sf_tpl_checker;
/* The column a rule reads, by its index in sf_tpl_rules_column(): 1 and
 * *out set, 0 when there is none (then it is checked as missing). */
typedef int (*sf_tpl_col_fn)(void *ud, size_t i, const char *name, sf_val *out);
typedef struct sf_tpl_verdict {
    char column[128];
    char reason[256]; /* "required, is NULL", "max 100 characters, has 143" ... */
    char where[512];  /* the rule's file:line:col */
} sf_tpl_verdict;
sf_tpl_checker *sf_tpl_checker_create(sf_census *cs, const sf_template *t); /* NULL: no memory */
/* After the rows (a shard's render): unique rule `set`'s value hashes,
 * sorted, and the column it names; the checker checks no more rows. */
size_t sf_tpl_checker_take_unique(sf_tpl_checker *k, size_t set, const uint64_t **out,
                                  const char **column);
void sf_tpl_checker_free(sf_tpl_checker *k);
/* Checks one row against every rule, in the order written: SF_OK when it
 * passes, SF_ERR_INVALID with *v the first failing rule's column, reason
 * and position. A passing row's unique values are pending: the caller keeps
 * them once the row is written (sf_tpl_checker_keep), so a row left out of
 * the output does not take its value from a later one. */
sf_status sf_tpl_checker_row(sf_tpl_checker *k, sf_tpl_col_fn col, void *ud, sf_tpl_verdict *v);
/* Records the pending unique values of the last passing row. SF_OK, or a
 * failure of the run (not of the row), described in err: SF_ERR_NOMEM, or
 * SF_ERR_INVALID past SF_TPL_UNIQUE_MAX distinct values of one rule. */
#define SF_TPL_UNIQUE_MAX 10000000u
sf_status sf_tpl_checker_keep(sf_tpl_checker *k, sf_errbuf *err);

/* "file:line:col" of a node, into buf. */
void sf_tpl_where(const sf_template *t, const sf_unit *u, uint32_t pos, char *buf, size_t n);
/* A node's name as written ("posted_at.rfc822"; "." for the iterator), into
 * buf; returns its length (cut to n - 1). */
size_t sf_tpl_node_name(const sf_template *t, const sf_node *nd, char *buf, size_t n);

/* Built-in templates (generated from templates/ at build time). */
typedef struct sf_builtin {
    const char *name;
    const char *text;
    size_t len;
    const char *query; /* NULL when the template has no .sql beside it */
} sf_builtin;
extern const sf_builtin sf_builtins[];
extern const size_t sf_builtin_count;

#endif
