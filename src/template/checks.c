/* checks.c: row checks declared in a template (issue 9, point 4):
 *
 *   {{! sqlfeed-check: required title, city; max title 100;
 *       enum type full-time|part-time; unique id }}
 *
 * The compiler hands every comment of the template's own file (unit 0) to
 * sf_tpl_rules_comment(); a comment that starts with "sqlfeed-check:" adds
 * its rules to t->rules. Each rule remembers where its text starts in unit
 * 0's source (the comment's text is a slice of it), so a failing row and a
 * rule naming a column the query lacks are reported at file:line:col.
 *
 * The rules are the template's (read-only while rendering); what a run
 * accumulates, the values `unique` has seen, is an sf_tpl_checker's: one per
 * output run. docs/checks.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "value/format.h"

enum { R_REQUIRED, R_MAX, R_ENUM, R_UNIQUE };
static const char *const kind_names[] = {"required", "max", "enum", "unique"};

#define RULE_FMT_MAX 4 /* formatters on a rule's name ("description.text") */

typedef struct rule {
    uint8_t kind;
    uint8_t nfmt;   /* the name's formatters: the rule judges the value as written */
    sf_fmt_call fmt[RULE_FMT_MAX];
    uint32_t col;   /* index in rules->cols */
    uint32_t pos;   /* offset of the rule's text in unit 0's source */
    uint32_t max;   /* R_MAX: characters (code points) */
    uint32_t val0;  /* R_ENUM: first value in rules->vals */
    uint32_t nvals;
    uint32_t set;   /* R_UNIQUE: its set in a checker */
} rule;

typedef struct rval {
    char *s;
    size_t n;
} rval;

struct sf_tpl_rules {
    rule *r;
    size_t n, cap;
    char **cols;
    size_t ncols, capcols;
    rval *vals;
    size_t nvals, capvals;
    size_t nunique;
};

/* ---- parsing ---------------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ws(**s))
        (*s)++, (*n)--;
    while (*n && is_ws((*s)[*n - 1]))
        (*n)--;
}

/* A column name as a template writes it: letters, digits, _ and -, and any
 * byte of a non-ASCII character. */
static int name_ok(const char *s, size_t n)
{
    if (!n || n >= 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c >= 0x80 || c == '_' || c == '-' || (c >= '0' && c <= '9') ||
              ((c | 32) >= 'a' && (c | 32) <= 'z')))
            return 0;
    }
    return 1;
}

/* A rule's name: a column name, then optionally ".formatter..." (each part
 * checked by add_rule). */
static int rule_name_ok(const char *s, size_t n)
{
    const char *dot = memchr(s, '.', n);
    return name_ok(s, dot ? (size_t)(dot - s) : n);
}

static int grow(sf_census *cs, void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void *q = sf_realloc(cs, SF_MEM_TEMPLATE, *p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -1)
#define SHOW(s, n) (int)((n) > 60 ? 60 : (n)), (s)

/* The index of column `s[0..n)`, added if new; -1 out of memory. */
static long col_index(sf_census *cs, struct sf_tpl_rules *R, const char *s, size_t n)
{
    for (size_t i = 0; i < R->ncols; i++)
        if (strlen(R->cols[i]) == n && memcmp(R->cols[i], s, n) == 0)
            return (long)i;
    if (grow(cs, (void **)&R->cols, &R->capcols, R->ncols + 1, sizeof *R->cols))
        return -1;
    if (!(R->cols[R->ncols] = sf_strndup(cs, SF_MEM_TEMPLATE, s, n)))
        return -1;
    return (long)R->ncols++;
}

/* Adds a rule on s[0..n): a column, then the formatters the template
 * writes it through ("description.text", "loc.url"), so the rule judges
 * the value as it is published. 0; -1 a part that is not a formatter (or
 * json, which gives no text), `why` set; -2 out of memory. */
static int add_rule(sf_census *cs, struct sf_tpl_rules *R, uint8_t kind, const char *s,
                    size_t n, uint32_t pos, rule **made, char *why, size_t whylen)
{
    const char *dot = memchr(s, '.', n);
    size_t cn = dot ? (size_t)(dot - s) : n;
    sf_fmt_call f[RULE_FMT_MAX];
    uint8_t nf = 0;
    for (const char *p = dot; p;) {
        const char *q = p + 1, *end = s + n;
        const char *next = memchr(q, '.', (size_t)(end - q));
        size_t pl = (size_t)((next ? next : end) - q);
        char fwhy[160] = "";
        int rc = pl ? sf_fmt_parse(q, pl, &f[nf], fwhy, sizeof fwhy) : 0;
        if (rc <= 0 || (pl == 4 && memcmp(q, "json", 4) == 0))
            return WHY("sqlfeed-check: '%.*s': '%.*s' is not a formatter a rule can read%s%s "
                       "(a rule's name is a column, then formatters: %s)",
                       SHOW(s, n), SHOW(q, pl), fwhy[0] ? ": " : "", fwhy, sf_fmt_names());
        if (++nf == RULE_FMT_MAX && next)
            return WHY("sqlfeed-check: '%.*s': more than %d formatters", SHOW(s, n),
                       RULE_FMT_MAX);
        p = next;
    }
    long c = col_index(cs, R, s, cn);
    if (c < 0 || grow(cs, (void **)&R->r, &R->cap, R->n + 1, sizeof *R->r))
        return -2;
    rule *r = &R->r[R->n++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->nfmt = nf;
    memcpy(r->fmt, f, nf * sizeof *f);
    r->col = (uint32_t)c;
    r->pos = pos;
    if (kind == R_UNIQUE)
        r->set = (uint32_t)R->nunique++;
    *made = r;
    return 0;
}

static const char usage[] =
    "(rules: required NAME[, NAME...]; max NAME N; enum NAME VALUE|VALUE...; unique NAME)";

/* One rule's text s[0..n) (trimmed, not empty) at `pos`. */
static int parse_rule(sf_template *t, struct sf_tpl_rules *R, const char *s, size_t n,
                      uint32_t pos, char *why, size_t whylen)
{
    sf_census *cs = t->cref.census;
    size_t k = 0;
    while (k < n && !is_ws(s[k]))
        k++;
    const char *rest = s + k;
    size_t rn = n - k;
    trim(&rest, &rn);
    int kind = -1;
    for (int i = 0; i < 4; i++)
        if (strlen(kind_names[i]) == k && memcmp(kind_names[i], s, k) == 0)
            kind = i;
    if (kind < 0)
        return WHY("sqlfeed-check: unknown rule '%.*s' %s", SHOW(s, k), usage);
    if (!rn)
        return WHY("sqlfeed-check: '%.*s' names no column %s", SHOW(s, n), usage);
    rule *r;
    if (kind == R_REQUIRED) {
        /* NAME, NAME, ...: each its own rule, at its own position. */
        const char *p = rest, *end = rest + rn;
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            const char *nm = p;
            size_t nl = (size_t)(e - p);
            trim(&nm, &nl);
            if (!rule_name_ok(nm, nl))
                return WHY("sqlfeed-check: 'required %.*s': '%.*s' is not a column name "
                           "(letters, digits, _ and -; names separated by commas)",
                           SHOW(rest, rn), SHOW(nm, nl));
            int rc = add_rule(cs, R, R_REQUIRED, nm, nl, pos + (uint32_t)(nm - s), &r, why,
                              whylen);
            if (rc)
                return rc;
            if (!comma)
                break;
            p = comma + 1;
        }
        return 0;
    }
    size_t nl = 0;
    while (nl < rn && !is_ws(rest[nl]))
        nl++;
    const char *arg = rest + nl;
    size_t an = rn - nl;
    trim(&arg, &an);
    if (!rule_name_ok(rest, nl))
        return WHY("sqlfeed-check: '%.*s': '%.*s' is not a column name (letters, digits, _ and -)",
                   SHOW(s, n), SHOW(rest, nl));
    if (kind == R_UNIQUE) {
        if (an)
            return WHY("sqlfeed-check: '%.*s': unique takes one column", SHOW(s, n));
        return add_rule(cs, R, R_UNIQUE, rest, nl, pos, &r, why, whylen);
    }
    if (kind == R_MAX) {
        uint64_t v = 0;
        size_t i = 0;
        while (i < an && arg[i] >= '0' && arg[i] <= '9' && v <= 1000000000)
            v = v * 10 + (uint64_t)(arg[i++] - '0');
        if (!an || i != an || v == 0 || v > 1000000000)
            return WHY("sqlfeed-check: '%.*s': expected max NAME N, N a number of characters "
                       "from 1 to 1000000000",
                       SHOW(s, n));
        int rc = add_rule(cs, R, R_MAX, rest, nl, pos, &r, why, whylen);
        if (rc)
            return rc;
        r->max = (uint32_t)v;
        return 0;
    }
    /* enum NAME A|B|...: the values exact, white space around each trimmed. */
    if (!an)
        return WHY("sqlfeed-check: '%.*s': expected enum NAME VALUE|VALUE...", SHOW(s, n));
    size_t first = R->nvals;
    const char *p = arg, *end = arg + an;
    for (;;) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *e = bar ? bar : end;
        const char *v = p;
        size_t vl = (size_t)(e - p);
        trim(&v, &vl);
        if (!vl)
            return WHY("sqlfeed-check: '%.*s': an empty value between '|'s", SHOW(s, n));
        if (grow(cs, (void **)&R->vals, &R->capvals, R->nvals + 1, sizeof *R->vals))
            return -2;
        if (!(R->vals[R->nvals].s = sf_strndup(cs, SF_MEM_TEMPLATE, v, vl)))
            return -2;
        R->vals[R->nvals++].n = vl;
        if (!bar)
            break;
        p = bar + 1;
    }
    int rc = add_rule(cs, R, R_ENUM, rest, nl, pos, &r, why, whylen);
    if (rc)
        return rc;
    r->val0 = (uint32_t)first;
    r->nvals = (uint32_t)(R->nvals - first);
    return 0;
}

int sf_tpl_rules_comment(sf_template *t, const char *s, size_t n, char *why, size_t whylen)
{
    static const char key[] = "sqlfeed-check:";
    trim(&s, &n);
    if (n < sizeof key - 1 || memcmp(s, key, sizeof key - 1) != 0)
        return 0;
    s += sizeof key - 1;
    n -= sizeof key - 1;
    /* The comment's text is a slice of unit 0's source: positions are
     * offsets in it (0 if it is not, which the compiler never does). */
    const sf_unit *u = t->nunits ? &t->units[0] : NULL;
    uint32_t base = 0;
    if (u && s >= u->src && s <= u->src + u->srclen)
        base = (uint32_t)(s - u->src);
    sf_census *cs = t->cref.census;
    if (!t->rules && !(t->rules = sf_calloc(cs, SF_MEM_TEMPLATE, 1, sizeof *t->rules)))
        return -2;
    size_t added = 0;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *r = p;
        size_t rl = (size_t)(e - p);
        trim(&r, &rl);
        if (rl) {
            size_t before = t->rules->n;
            int rc = parse_rule(t, t->rules, r, rl, base + (uint32_t)(r - s), why, whylen);
            if (rc)
                return rc;
            added += t->rules->n - before;
        }
        if (!semi)
            break;
        p = semi + 1;
    }
    if (!added)
        return WHY("sqlfeed-check: no rule %s", usage);
    return 0;
}

void sf_tpl_rules_free(sf_template *t)
{
    struct sf_tpl_rules *R = t->rules;
    if (!R)
        return;
    sf_census *cs = t->cref.census;
    for (size_t i = 0; i < R->ncols; i++)
        sf_dealloc(cs, R->cols[i]);
    for (size_t i = 0; i < R->nvals; i++)
        sf_dealloc(cs, R->vals[i].s);
    sf_dealloc(cs, R->cols);
    sf_dealloc(cs, R->vals);
    sf_dealloc(cs, R->r);
    sf_dealloc(cs, R);
    t->rules = NULL;
}

size_t sf_tpl_rules_count(const sf_template *t) { return t->rules ? t->rules->n : 0; }
size_t sf_tpl_rules_unique_count(const sf_template *t) { return t->rules ? t->rules->nunique : 0; }
size_t sf_tpl_rules_column_count(const sf_template *t) { return t->rules ? t->rules->ncols : 0; }
const char *sf_tpl_rules_column(const sf_template *t, size_t i)
{
    return t->rules && i < t->rules->ncols ? t->rules->cols[i] : NULL;
}

/* An enum's values, "full-time|part-time". */
static void spell_vals(const struct sf_tpl_rules *R, const rule *r, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->nvals && at < n - 1; i++) {
        const rval *v = &R->vals[r->val0 + i];
        int k = snprintf(buf + at, n - at, "%s%.*s", i ? "|" : "", SHOW(v->s, v->n));
        at = k > 0 && at + (size_t)k < n ? at + (size_t)k : n - 1;
    }
}

/* "max title 100" as written (normalised), for messages. */
static void spell(const struct sf_tpl_rules *R, const rule *r, char *buf, size_t n)
{
    char vals[160] = "";
    if (r->kind == R_MAX)
        snprintf(vals, sizeof vals, "%u", r->max);
    else if (r->kind == R_ENUM)
        spell_vals(R, r, vals, sizeof vals);
    char fm[96] = "";
    for (uint8_t f = 0, at = 0; f < r->nfmt && at < sizeof fm - 20; f++) {
        char one[24];
        int w = snprintf(fm + at, sizeof fm - at, ".%s", sf_fmt_spell(&r->fmt[f], one, sizeof one));
        at = (uint8_t)(at + (w > 0 ? w : 0));
    }
    snprintf(buf, n, "%s %s%s%s%s", kind_names[r->kind], R->cols[r->col], fm, vals[0] ? " " : "",
             vals);
}

static void where(const sf_template *t, const rule *r, char *buf, size_t n)
{
    sf_tpl_where(t, &t->units[0], r->pos, buf, n);
}

sf_status sf_tpl_rules_check_names(const sf_template *t, sf_name_pred is_col, void *ud,
                                   sf_errbuf *err)
{
    const struct sf_tpl_rules *R = t->rules;
    for (size_t i = 0; R && i < R->n; i++) {
        const rule *r = &R->r[i];
        if (is_col(ud, R->cols[r->col]))
            continue;
        char at[512], sp[200];
        where(t, r, at, sizeof at);
        spell(R, r, sp, sizeof sp);
        return sf_fail(err, SF_ERR_NAME,
                       "%s: sqlfeed-check '%s': '%s' is not a column of the query", at, sp,
                       R->cols[r->col]);
    }
    return SF_OK;
}

/* ---- evaluation ------------------------------------------------------------- */

typedef struct uset {
    uint64_t *slot; /* 0: empty */
    size_t cap, count;
} uset;

struct sf_tpl_checker {
    sf_census *cs;
    const sf_template *t;
    sf_arena arena;   /* the formatted values rules judge: reset each row */
    uset *sets;       /* one per unique rule */
    uint64_t *pending; /* the last passing row's hash per set (0: NULL, none) */
};

sf_tpl_checker *sf_tpl_checker_create(sf_census *cs, const sf_template *t)
{
    sf_tpl_checker *k = sf_calloc(cs, SF_MEM_RENDER, 1, sizeof *k);
    if (!k)
        return NULL;
    k->cs = cs;
    k->t = t;
    sf_arena_init(&k->arena, cs, 0);
    size_t nu = t->rules ? t->rules->nunique : 0;
    if (nu && (!(k->sets = sf_calloc(cs, SF_MEM_RENDER, nu, sizeof *k->sets)) ||
               !(k->pending = sf_calloc(cs, SF_MEM_RENDER, nu, sizeof *k->pending)))) {
        sf_tpl_checker_free(k);
        return NULL;
    }
    return k;
}

void sf_tpl_checker_free(sf_tpl_checker *k)
{
    if (!k)
        return;
    size_t nu = k->t->rules ? k->t->rules->nunique : 0;
    for (size_t i = 0; k->sets && i < nu; i++)
        sf_dealloc(k->cs, k->sets[i].slot);
    sf_dealloc(k->cs, k->sets);
    sf_dealloc(k->cs, k->pending);
    sf_arena_free(&k->arena);
    sf_dealloc(k->cs, k);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t sf_tpl_checker_take_unique(sf_tpl_checker *k, size_t set, const uint64_t **out,
                                  const char **column)
{
    size_t nu = k->t->rules ? k->t->rules->nunique : 0;
    *out = NULL;
    *column = "";
    if (set >= nu)
        return 0;
    for (size_t i = 0; i < k->t->rules->n; i++)
        if (k->t->rules->r[i].kind == R_UNIQUE && k->t->rules->r[i].set == set)
            *column = k->t->rules->cols[k->t->rules->r[i].col];
    uset *u = &k->sets[set];
    size_t n = 0;
    for (size_t i = 0; i < u->cap; i++) /* the table becomes a sorted array */
        if (u->slot[i])
            u->slot[n++] = u->slot[i];
    if (n)
        qsort(u->slot, n, sizeof *u->slot, cmp_u64);
    u->count = n;
    u->cap = 0; /* no longer a table: uset_has sees nothing */
    *out = u->slot;
    return n;
}

/* FNV-1a over the bytes, then a 64-bit finaliser (splitmix64's) so the low
 * bits index the table well; never 0 (the empty slot). */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h ? h : 1;
}

static int uset_has(const uset *u, uint64_t h)
{
    if (!u->cap)
        return 0;
    size_t m = u->cap - 1;
    for (size_t i = (size_t)h & m;; i = (i + 1) & m) {
        if (u->slot[i] == h)
            return 1;
        if (u->slot[i] == 0)
            return 0;
    }
}

static void uset_put(uset *u, uint64_t h)
{
    size_t m = u->cap - 1;
    size_t i = (size_t)h & m;
    while (u->slot[i] != 0 && u->slot[i] != h)
        i = (i + 1) & m;
    if (u->slot[i] == 0) {
        u->slot[i] = h;
        u->count++;
    }
}

/* Room for one more at most 70 % full: doubles (old and new live for the
 * copy). */
static int uset_room(sf_census *cs, uset *u)
{
    if (u->cap && (u->count + 1) * 10 <= u->cap * 7)
        return 0;
    size_t cap = u->cap ? u->cap * 2 : 1024;
    uint64_t *p = sf_calloc(cs, SF_MEM_RENDER, cap, sizeof *p);
    if (!p)
        return -1;
    uset nu = {p, cap, 0};
    for (size_t i = 0; i < u->cap; i++)
        if (u->slot[i])
            uset_put(&nu, u->slot[i]);
    sf_dealloc(cs, u->slot);
    *u = nu;
    return 0;
}

/* The value as text for a rule (BOOL reads "true"/"false"); 0 when it has
 * none (missing, NULL, a list or map). */
static int as_text(const sf_val *v, const char **s, size_t *n)
{
    if (v->kind == SF_VAL_TEXT) {
        *s = v->s;
        *n = v->n;
        return 1;
    }
    if (v->kind == SF_VAL_BOOL) {
        *s = v->truthy ? "true" : "false";
        *n = strlen(*s);
        return 1;
    }
    return 0;
}

/* 'value' for a reason: its first 40 bytes, cut on a character, controls
 * shown as '?'. */
static void quote(const char *s, size_t n, char *buf, size_t bn)
{
    size_t cut = n;
    if (cut > 40) {
        cut = 40;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < cut && o + 5 < bn; i++)
        buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (cut < n && o + 5 < bn)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o++] = '\'';
    buf[o] = '\0';
}

static size_t code_points(const char *s, size_t n)
{
    size_t cut;
    return sf_fmt_chars(s, n, SIZE_MAX, &cut);
}

sf_status sf_tpl_checker_row(sf_tpl_checker *k, sf_tpl_col_fn col, void *ud, sf_tpl_verdict *v)
{
    const struct sf_tpl_rules *R = k->t->rules;
    sf_arena_reset(&k->arena);
    if (R && R->nunique)
        memset(k->pending, 0, R->nunique * sizeof *k->pending);
    for (size_t i = 0; R && i < R->n; i++) {
        const rule *r = &R->r[i];
        const char *name = R->cols[r->col];
        sf_val val = {.kind = SF_VAL_MISSING};
        if (!col(ud, r->col, name, &val))
            val.kind = SF_VAL_MISSING;
        v->reason[0] = '\0';
        for (uint8_t f = 0; f < r->nfmt; f++) { /* the value as the template writes it */
            sf_val out;
            char why[200];
            int rc = sf_fmt_apply(&k->arena, &r->fmt[f], &val, &out, why, sizeof why);
            if (rc == SF_FMT_NOMEM && !k->arena.over) {
                snprintf(v->column, sizeof v->column, "%s", name);
                snprintf(v->reason, sizeof v->reason, "out of memory");
                where(k->t, r, v->where, sizeof v->where);
                return SF_ERR_NOMEM;
            }
            if (rc != SF_FMT_OK) {
                if (rc == SF_FMT_NOMEM)
                    snprintf(why, sizeof why, "the formatted value passes the per-row limit "
                                              "of %zu MiB", k->arena.limit >> 20);
                snprintf(v->column, sizeof v->column, "%s", name);
                snprintf(v->reason, sizeof v->reason, "%s", why);
                where(k->t, r, v->where, sizeof v->where);
                return SF_ERR_INVALID;
            }
            val = out;
        }
        const char *s = NULL;
        size_t n = 0;
        int text = as_text(&val, &s, &n);
        char q[64];
        switch (r->kind) {
        case R_REQUIRED:
            if (val.kind == SF_VAL_MISSING || val.kind == SF_VAL_NULL) {
                snprintf(v->reason, sizeof v->reason, "required, is %s",
                         val.kind == SF_VAL_NULL ? "NULL" : "missing");
            } else if (text) {
                const char *ts = s;
                size_t tn = n;
                trim(&ts, &tn);
                if (!tn)
                    snprintf(v->reason, sizeof v->reason, "required, is empty");
            }
            break;
        case R_MAX:
            if (text && n > r->max) { /* fewer bytes than N: fewer characters too */
                size_t cp = code_points(s, n);
                if (cp > r->max)
                    snprintf(v->reason, sizeof v->reason, "max %u characters, has %zu", r->max,
                             cp);
            }
            break;
        case R_ENUM:
            if (text) {
                int found = 0;
                for (uint32_t j = 0; !found && j < r->nvals; j++) {
                    const rval *e = &R->vals[r->val0 + j];
                    found = e->n == n && memcmp(e->s, s, n) == 0;
                }
                if (!found) {
                    char vs[160];
                    spell_vals(R, r, vs, sizeof vs);
                    quote(s, n, q, sizeof q);
                    snprintf(v->reason, sizeof v->reason, "enum %s, is %s", vs, q);
                }
            }
            break;
        case R_UNIQUE:
            if (text) {
                uint64_t h = hash_bytes(s, n);
                if (uset_has(&k->sets[r->set], h)) {
                    quote(s, n, q, sizeof q);
                    snprintf(v->reason, sizeof v->reason, "unique, %s came before", q);
                } else {
                    k->pending[r->set] = h;
                }
            }
            break;
        }
        if (v->reason[0] && r->nfmt) { /* say which value was judged */
            char sp[200], *sp1;
            spell(R, r, sp, sizeof sp);
            sp1 = strchr(sp, ' ');
            size_t at = strlen(v->reason), nm = strcspn(sp1 ? sp1 + 1 : sp, " ");
            snprintf(v->reason + at, sizeof v->reason - at, " (as %.*s)", (int)nm,
                     sp1 ? sp1 + 1 : sp);
        }
        if (v->reason[0]) {
            snprintf(v->column, sizeof v->column, "%s", name);
            where(k->t, r, v->where, sizeof v->where);
            return SF_ERR_INVALID;
        }
    }
    return SF_OK;
}

sf_status sf_tpl_checker_keep(sf_tpl_checker *k, sf_errbuf *err)
{
    const struct sf_tpl_rules *R = k->t->rules;
    for (size_t i = 0; R && i < R->n; i++) {
        const rule *r = &R->r[i];
        if (r->kind != R_UNIQUE || !k->pending[r->set])
            continue;
        uset *u = &k->sets[r->set];
        if (u->count >= SF_TPL_UNIQUE_MAX && !uset_has(u, k->pending[r->set])) {
            char at[512];
            where(k->t, r, at, sizeof at);
            return sf_fail(err, SF_ERR_INVALID,
                           "sqlfeed-check 'unique %s' (at %s): more than %u distinct values, "
                           "the limit of a unique check",
                           R->cols[r->col], at, SF_TPL_UNIQUE_MAX);
        }
        if (uset_room(k->cs, u) != 0)
            return sf_fail(err, SF_ERR_NOMEM, "out of memory: the values of 'unique %s'",
                           R->cols[r->col]);
        uset_put(u, k->pending[r->set]);
        k->pending[r->set] = 0;
    }
    return SF_OK;
}
