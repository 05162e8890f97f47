/* run.c: walking compiled nodes over a context stack.
 *
 * The stack holds sf_val frames; a name is looked up from the top frame down
 * and the first map that has it wins (a present-but-null value stops the
 * search: SQL NULL never falls through to an outer name). The stack is
 * allocated once and grows only with deeper nesting, so rendering row after
 * row allocates nothing.
 *
 * The cut (sf_tpl_head / sf_tpl_row / sf_tpl_tail): the same walk, stopped
 * where the rows section is reached. While the head renders, every range
 * open (a section's body, a list item's body, an inverted body, a partial)
 * is recorded as a frame: its unit, where it goes on after the node being
 * rendered, where it ends, the context depth and partial depth inside it and
 * what was pushed to enter it. At the rows section the walk returns SUSPEND
 * up through every level without popping; each level notes where it goes on.
 * A row is then the section's body with the row pushed, as the recursive
 * walk renders it; the tail renders the rest of each recorded range from the
 * innermost out, popping what each pushed (and going on with a list's next
 * items), which is what the recursion would have done after the last row.
 *
 * Formatters (SF_PART_FMT parts) write into an arena: the head's values in
 * one that lives until the next head (what the head pushed stays on the
 * stack through the rows and the tail), the rows' and the tail's in one
 * reset at the start of each sf_tpl_row and sf_tpl_tail. Both keep their
 * chunks, so rows after the largest allocate nothing. */
#include <stdio.h>
#include <string.h>

#include "template.h"
#include "value/arena.h"
#include "value/format.h"

#define MAX_PARTIAL_RECURSION 256
#define MAX_NESTING 1024 /* sections and partials open at once: bounds the C stack */
#define STACK_INITIAL 32

/* Internal status: the head reached the rows section (never returned). */
#define SUSPEND ((sf_status)1000)

/* How a recorded range was entered. */
enum { ENTER_TOP = 0, ENTER_VALUE, ENTER_ITEM, ENTER_INVERTED, ENTER_PARTIAL };

typedef struct tframe {
    uint32_t unit, next, end; /* the rest of the range is [next, end) of unit */
    uint32_t body;            /* ENTER_ITEM: the list section's body start */
    uint32_t depth;           /* context depth inside the range */
    int prec;                 /* partial depth inside the range */
    uint8_t enter;
    size_t idx;  /* ENTER_ITEM: the item being rendered */
    sf_val val;  /* ENTER_VALUE / ENTER_ITEM: the value pushed to enter */
    sf_val list; /* ENTER_ITEM: the list */
} tframe;

typedef struct runner {
    const sf_template *t;
    sf_census *cs; /* where the stack (and frames) grow */
    sf_wbuf *w;
    sf_errbuf *err;
    sf_val *stack;
    size_t depth, cap;
    int prec; /* partial recursion depth */
    int nest; /* render_range calls open */
    /* The cut: while `head` is set, ranges are recorded and the rows list
     * (identified by ops and obj) stops the walk. */
    int head;
    const sf_data_ops *rows_ops;
    const void *rows_obj;
    tframe *fr;
    size_t nfr, frcap;
    uint32_t row_unit, row_from, row_to; /* the rows section's body */
    sf_arena *arena; /* where formatted values go now */
    sf_arena *outer; /* the head's arena while rows or the tail render, or NULL:
                        a JSON view made in the head allocates there */
    sf_tpl_bad bad;  /* the last value a formatter refused */
    sf_val stack0[STACK_INITIAL];
} runner;

static sf_status push(runner *r, const sf_val *v)
{
    if (r->depth == r->cap) {
        sf_census *cs = r->cs;
        size_t cap = r->cap * 2;
        sf_val *p;
        if (r->stack == r->stack0) {
            p = sf_alloc(cs, SF_MEM_RENDER, cap * sizeof *p);
            if (p)
                memcpy(p, r->stack0, r->depth * sizeof *p);
        } else {
            p = sf_realloc(cs, SF_MEM_RENDER, r->stack, cap * sizeof *p);
        }
        if (!p)
            return sf_fail(r->err, SF_ERR_NOMEM, "out of memory: context stack");
        r->stack = p;
        r->cap = cap;
    }
    r->stack[r->depth++] = *v;
    return SF_OK;
}

/* "{{#name}}" as the tag was written, for messages. */
static void tag_text(const runner *r, const sf_node *nd, char *buf, size_t n)
{
    char name[300];
    sf_tpl_node_name(r->t, nd, name, sizeof name);
    snprintf(buf, n, "{{%s%s}}",
             nd->type == SF_N_SECTION ? "#" : nd->type == SF_N_INVERTED ? "^" : "", name);
}

/* A value of the node's name refused by a formatter: sf_tpl_bad and the
 * message, "column NAME: REASON ({{TAG}} at FILE:LINE:COL)". */
static sf_status refused(runner *r, const sf_unit *u, const sf_node *nd, const char *reason)
{
    const sf_template *t = r->t;
    char where[512], tag[340];
    sf_tpl_where(t, u, nd->pos, where, sizeof where);
    tag_text(r, nd, tag, sizeof tag);
    snprintf(r->bad.column, sizeof r->bad.column, "%s",
             nd->nparts ? t->syms[t->parts[nd->parts]].name : ".");
    snprintf(r->bad.reason, sizeof r->bad.reason, "%s", reason);
    return sf_fail(r->err, SF_ERR_INVALID, "column %s: %s (%s at %s)", r->bad.column, reason,
                   tag, where);
}

/* An arena refused: the row's values are too large (a row problem,
 * SF_ERR_INVALID), or memory ran out. */
static sf_status arena_failed(runner *r, const sf_unit *u, const sf_node *nd, const sf_arena *a)
{
    if (a->over) {
        char reason[128];
        snprintf(reason, sizeof reason,
                 "the row's formatted values pass the per-row limit of %zu MiB", a->limit >> 20);
        return refused(r, u, nd, reason);
    }
    char where[512], tag[340];
    sf_tpl_where(r->t, u, nd->pos, where, sizeof where);
    tag_text(r, nd, tag, sizeof tag);
    return sf_fail(r->err, SF_ERR_NOMEM, "out of memory formatting a value (%s at %s)", tag,
                   where);
}

/* A provider's lookup or item returned -1: a JSON view's means its arena
 * failed (the flags say so); any other provider's is SF_ERR_SOURCE, with
 * the message left to it. */
static sf_status provider_failed(runner *r, const sf_unit *u, const sf_node *nd)
{
    if (r->arena && r->arena->failed)
        return arena_failed(r, u, nd, r->arena);
    if (r->outer && r->outer->failed)
        return arena_failed(r, u, nd, r->outer);
    return SF_ERR_SOURCE;
}

/* Resolves a node's name: SF_OK (out->kind may be SF_VAL_MISSING), or the
 * failure (provider_failed, refused). Formatter parts apply in order to
 * what the parts before resolved to. */
static sf_status resolve(runner *r, const sf_unit *u, const sf_node *nd, sf_val *out)
{
    const sf_template *t = r->t;
    if (nd->nparts == 0) {
        *out = r->stack[r->depth - 1];
        return SF_OK;
    }
    const uint32_t *parts = t->parts + nd->parts;
    const sf_sym *sy = &t->syms[parts[0]];
    size_t d = r->depth;
    while (d--) {
        const sf_val *f = &r->stack[d];
        if (f->kind != SF_VAL_MAP)
            continue;
        int rc = f->ops->lookup(f->obj, parts[0], sy->name, sy->len, out);
        if (rc < 0)
            return provider_failed(r, u, nd);
        if (rc > 0)
            goto found;
    }
    out->kind = SF_VAL_MISSING;
    out->truthy = 0;
    /* Formatters pass a missing value through: nothing to apply. */
    return SF_OK;
found:
    /* Later parts resolve only inside what the previous part found, or
     * format it. */
    for (uint16_t i = 1; i < nd->nparts; i++) {
        sf_val next;
        if (parts[i] & SF_PART_FMT) {
            char why[256];
            int rc = sf_fmt_apply(r->arena, &t->fcalls[parts[i] & ~SF_PART_FMT], out, &next, why,
                                  sizeof why);
            if (SF_UNLIKELY(rc != SF_FMT_OK))
                return rc == SF_FMT_NOMEM ? arena_failed(r, u, nd, r->arena)
                                          : refused(r, u, nd, why);
            *out = next;
            continue;
        }
        if (out->kind != SF_VAL_MAP) {
            out->kind = SF_VAL_MISSING;
            out->truthy = 0;
            continue; /* a formatter after it passes MISSING through */
        }
        sy = &t->syms[parts[i]];
        int rc = out->ops->lookup(out->obj, parts[i], sy->name, sy->len, &next);
        if (rc < 0)
            return provider_failed(r, u, nd);
        if (rc == 0) {
            out->kind = SF_VAL_MISSING;
            out->truthy = 0;
            continue;
        }
        *out = next;
    }
    return SF_OK;
}

static sf_status render_range(runner *r, uint32_t unit, uint32_t from, uint32_t to);

static sf_status write_val(runner *r, const sf_val *v, sf_esc esc)
{
    int rc = 0;
    if (v->kind == SF_VAL_TEXT)
        rc = sf_xml_write(r->w, esc, v->s, v->n);
    else if (v->kind == SF_VAL_BOOL)
        rc = v->truthy ? sf_wbuf_put(r->w, "true", 4) : sf_wbuf_put(r->w, "false", 5);
    return rc ? SF_ERR_OUTPUT : SF_OK;
}

/* The frame the range just suspended below the current one recorded: how
 * it was entered. */
static void entered(runner *r, uint8_t how, const sf_val *val)
{
    tframe *f = &r->fr[r->nest];
    f->enter = how;
    if (val)
        f->val = *val;
}

/* Renders a list's items from idx on: each pushed, the body rendered. */
static sf_status list_items(runner *r, uint32_t unit, uint32_t body, uint32_t end,
                            const sf_val *v, size_t idx)
{
    for (;; idx++) {
        sf_val item;
        int rc = v->ops->item(v->obj, idx, &item);
        if (rc < 0) {
            const sf_unit *u = &r->t->units[unit];
            return provider_failed(r, u, &u->nodes[body - 1]); /* the section */
        }
        if (rc == 0)
            return SF_OK;
        sf_status st = push(r, &item);
        if (st != SF_OK)
            return st;
        st = render_range(r, unit, body, end);
        if (st == SUSPEND) { /* the rows inside a list: resumed at this item */
            tframe *f = &r->fr[r->nest];
            entered(r, ENTER_ITEM, &item);
            f->list = *v;
            f->idx = idx;
            f->body = body;
            return st;
        }
        r->depth--;
        if (st != SF_OK)
            return st;
    }
}

static sf_status section(runner *r, uint32_t unit, const sf_node *nd, uint32_t body,
                         const sf_val *v)
{
    sf_status st;
    if (v->kind == SF_VAL_LIST) {
        if (!v->truthy)
            return SF_OK;
        if (r->head && v->ops == r->rows_ops && v->obj == r->rows_obj) {
            /* The cut: this level goes on after the section (set by the
             * caller); the rows are the section's body. */
            r->row_unit = unit;
            r->row_from = body;
            r->row_to = nd->b;
            r->nfr = (size_t)r->nest;
            return SUSPEND;
        }
        return list_items(r, unit, body, nd->b, v, 0);
    }
    if (!v->truthy)
        return SF_OK;
    if ((st = push(r, v)) != SF_OK)
        return st;
    st = render_range(r, unit, body, nd->b);
    if (st == SUSPEND) {
        entered(r, ENTER_VALUE, v);
        return st;
    }
    r->depth--;
    return st;
}

static sf_status render_range_body(runner *r, uint32_t unit, uint32_t from, uint32_t to);

static sf_status render_range(runner *r, uint32_t unit, uint32_t from, uint32_t to)
{
    if (r->nest == MAX_NESTING) {
        const sf_unit *u = &r->t->units[unit];
        char where[512];
        sf_tpl_where(r->t, u, from < u->nnodes ? u->nodes[from].pos : 0, where, sizeof where);
        return sf_fail(r->err, SF_ERR_TEMPLATE,
                       "%s: sections and partials nested more than %d deep", where, MAX_NESTING);
    }
    if (r->head) {
        size_t lv = (size_t)r->nest;
        if (lv == r->frcap) {
            size_t cap = r->frcap ? r->frcap * 2 : 16;
            tframe *p = sf_realloc(r->cs, SF_MEM_RENDER, r->fr, cap * sizeof *p);
            if (!p)
                return sf_fail(r->err, SF_ERR_NOMEM, "out of memory: template frames");
            r->fr = p;
            r->frcap = cap;
        }
        tframe *f = &r->fr[lv];
        f->unit = unit;
        f->next = from;
        f->end = to;
        f->depth = (uint32_t)r->depth;
        f->prec = r->prec;
        f->enter = ENTER_TOP;
    }
    r->nest++;
    sf_status st = render_range_body(r, unit, from, to);
    r->nest--;
    return st;
}

/* A level below suspended at node i: this level goes on at `next`. */
static sf_status suspended(runner *r, uint32_t next)
{
    r->fr[r->nest - 1].next = next;
    return SUSPEND;
}

static sf_status render_range_body(runner *r, uint32_t unit, uint32_t from, uint32_t to)
{
    const sf_unit *u = &r->t->units[unit];
    sf_status st;
    for (uint32_t i = from; i < to;) {
        const sf_node *nd = &u->nodes[i];
        sf_val v;
        switch ((sf_node_type)nd->type) {
        case SF_N_TEXT:
            if (sf_wbuf_put(r->w, u->src + nd->a, nd->b) != 0)
                return SF_ERR_OUTPUT;
            i++;
            break;
        case SF_N_VAR:
            if ((st = resolve(r, u, nd, &v)) != SF_OK)
                return st;
            if (nd->a) { /* break a "]]>" / "-->" the text before began */
                int rc = nd->esc == SF_ESC_CDATA ? sf_wbuf_put(r->w, "]]><![CDATA[", 12)
                                                 : sf_wbuf_put(r->w, " ", 1);
                if (rc != 0)
                    return SF_ERR_OUTPUT;
            }
            if ((st = write_val(r, &v, (sf_esc)nd->esc)) != SF_OK)
                return st;
            i++;
            break;
        case SF_N_SECTION:
            if ((st = resolve(r, u, nd, &v)) != SF_OK)
                return st;
            if ((st = section(r, unit, nd, i + 1, &v)) != SF_OK)
                return st == SUSPEND ? suspended(r, nd->b) : st;
            i = nd->b;
            break;
        case SF_N_INVERTED:
            if ((st = resolve(r, u, nd, &v)) != SF_OK)
                return st;
            if (!v.truthy || v.kind == SF_VAL_MISSING || v.kind == SF_VAL_NULL) {
                if ((st = render_range(r, unit, i + 1, nd->b)) != SF_OK) {
                    if (st != SUSPEND)
                        return st;
                    entered(r, ENTER_INVERTED, NULL);
                    return suspended(r, nd->b);
                }
            }
            i = nd->b;
            break;
        case SF_N_PARTIAL:
            if (nd->b != SF_NO_UNIT) {
                if (r->prec == MAX_PARTIAL_RECURSION) {
                    char where[512];
                    sf_tpl_where(r->t, u, nd->pos, where, sizeof where);
                    return sf_fail(r->err, SF_ERR_TEMPLATE,
                                   "%s: partials recurse more than %d deep", where,
                                   MAX_PARTIAL_RECURSION);
                }
                r->prec++;
                st = render_range(r, nd->b, 0, r->t->units[nd->b].nnodes);
                if (st == SUSPEND) {
                    entered(r, ENTER_PARTIAL, NULL);
                    return suspended(r, i + 1);
                }
                r->prec--;
                if (st != SF_OK)
                    return st;
                u = &r->t->units[unit];
            }
            i++;
            break;
        }
    }
    return SF_OK;
}

sf_status sf_tpl_render(const sf_template *t, sf_wbuf *w, const sf_val *root, sf_errbuf *err)
{
    if (!t || !t->loaded)
        return sf_fail(err, SF_ERR_STATE, "no template loaded");
    runner r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.cs = t->cref.census;
    r.w = w;
    r.err = err;
    r.stack = r.stack0;
    r.cap = STACK_INITIAL;
    r.stack0[r.depth++] = *root;
    /* One arena for the whole walk: a value stays valid while anything
     * pushed may point into it. */
    sf_arena arena;
    sf_arena_init(&arena, r.cs, 0);
    r.arena = &arena;
    sf_status st = render_range(&r, 0, 0, t->units[0].nnodes);
    if (r.stack != r.stack0)
        sf_dealloc(r.cs, r.stack);
    sf_arena_free(&arena);
    return st;
}

/* ---- the cut: head, rows, tail ------------------------------------------ */

enum { PH_IDLE = 0, PH_ROWS, PH_DONE };

struct sf_tpl_run {
    runner r;
    sf_val root;
    int phase;
    sf_arena head_arena; /* the head's values: until the next head */
    sf_arena row_arena;  /* a row's (or the tail's): reset before each */
};

sf_tpl_run *sf_tpl_run_create(sf_census *cs, const sf_template *t, const sf_val *root,
                              const sf_val *rows, sf_errbuf *err)
{
    if (!t || !t->loaded || !root || !rows)
        return NULL;
    sf_tpl_run *k = sf_calloc(cs, SF_MEM_RENDER, 1, sizeof *k);
    if (!k)
        return NULL;
    k->r.t = t;
    k->r.cs = cs;
    k->r.err = err;
    k->r.stack = k->r.stack0;
    k->r.cap = STACK_INITIAL;
    k->r.rows_ops = rows->ops;
    k->r.rows_obj = rows->obj;
    k->root = *root;
    sf_arena_init(&k->head_arena, cs, 0);
    sf_arena_init(&k->row_arena, cs, 0);
    return k;
}

const sf_tpl_bad *sf_tpl_run_bad(const sf_tpl_run *k) { return &k->r.bad; }

/* Before a head, a row or a tail: the arena it formats into, emptied. */
static void use_arena(sf_tpl_run *k, int head)
{
    runner *r = &k->r;
    sf_arena *a = head ? &k->head_arena : &k->row_arena;
    sf_arena_reset(a);
    r->arena = a;
    r->outer = head ? NULL : &k->head_arena;
    k->head_arena.redirect = head ? NULL : &k->row_arena;
    r->bad.column[0] = r->bad.reason[0] = '\0';
}

void sf_tpl_run_free(sf_tpl_run *k)
{
    if (!k)
        return;
    if (k->r.stack != k->r.stack0)
        sf_dealloc(k->r.cs, k->r.stack);
    sf_dealloc(k->r.cs, k->r.fr);
    sf_arena_free(&k->head_arena);
    sf_arena_free(&k->row_arena);
    sf_dealloc(k->r.cs, k);
}

sf_status sf_tpl_head(sf_tpl_run *k, sf_wbuf *w, int *reached)
{
    runner *r = &k->r;
    *reached = 0;
    if (k->phase == PH_ROWS)
        return sf_fail(r->err, SF_ERR_STATE, "template head rendered twice without its tail");
    r->w = w;
    use_arena(k, 1);
    r->depth = 0;
    r->stack[r->depth++] = k->root;
    r->prec = 0;
    r->nest = 0;
    r->nfr = 0;
    r->head = 1;
    sf_status st = render_range(r, 0, 0, r->t->units[0].nnodes);
    r->head = 0;
    if (st == SUSPEND) {
        k->phase = PH_ROWS;
        *reached = 1;
        return SF_OK;
    }
    k->phase = PH_DONE;
    return st;
}

int sf_tpl_in_rows(const sf_tpl_run *k) { return k->phase == PH_ROWS; }

sf_status sf_tpl_row(sf_tpl_run *k, sf_wbuf *w, const sf_val *row)
{
    runner *r = &k->r;
    if (k->phase != PH_ROWS)
        return sf_fail(r->err, SF_ERR_STATE, "a template row outside the rows section");
    const tframe *f = &r->fr[r->nfr - 1];
    r->w = w;
    use_arena(k, 0);
    r->nest = (int)r->nfr;
    r->prec = f->prec;
    r->depth = f->depth;
    sf_status st = push(r, row);
    if (st != SF_OK)
        return st;
    st = render_range(r, r->row_unit, r->row_from, r->row_to);
    r->depth--;
    return st;
}

/* Puts back the context the recorded frames pushed, as at the cut. */
static void restore_frames(runner *r)
{
    for (size_t lv = 0; lv < r->nfr; lv++) {
        const tframe *f = &r->fr[lv];
        if (f->enter == ENTER_VALUE || f->enter == ENTER_ITEM)
            r->stack[f->depth - 1] = f->val;
    }
    r->depth = r->fr[r->nfr - 1].depth;
}

sf_status sf_tpl_tail_ex(sf_tpl_run *k, sf_wbuf *w, int keep)
{
    runner *r = &k->r;
    if (k->phase != PH_ROWS)
        return k->phase == PH_DONE ? SF_OK
                                   : sf_fail(r->err, SF_ERR_STATE, "a template tail before its head");
    r->w = w;
    use_arena(k, 0);
    sf_status st = SF_OK;
    for (size_t lv = r->nfr; st == SF_OK && lv-- > 0;) {
        const tframe *f = &r->fr[lv];
        r->nest = (int)lv;
        r->prec = f->prec;
        r->depth = f->depth;
        st = render_range(r, f->unit, f->next, f->end);
        if (st != SF_OK)
            break;
        /* Leave the level as its caller would have. */
        if (f->enter == ENTER_VALUE || f->enter == ENTER_ITEM)
            r->depth--;
        if (f->enter == ENTER_ITEM) {
            /* The list goes on with its next items, in the parent's body. */
            r->prec = lv ? r->fr[lv - 1].prec : 0;
            st = list_items(r, f->unit, f->body, f->end, &f->list, f->idx + 1);
        }
    }
    if (keep) {
        restore_frames(r);
        return st;
    }
    k->phase = PH_DONE;
    return st;
}

sf_status sf_tpl_tail(sf_tpl_run *k, sf_wbuf *w) { return sf_tpl_tail_ex(k, w, 0); }
