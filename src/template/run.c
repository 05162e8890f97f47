/* run.c: walking compiled nodes over a context stack.
 *
 * The stack holds sf_val frames; a name is looked up from the top frame down
 * and the first map that has it wins (a present-but-null value stops the
 * search: SQL NULL never falls through to an outer name). The stack is
 * allocated once and grows only with deeper nesting, so rendering row after
 * row allocates nothing. */
#include <string.h>

#include "template.h"

#define MAX_PARTIAL_RECURSION 256
#define MAX_NESTING 1024 /* sections and partials open at once: bounds the C stack */
#define STACK_INITIAL 32

typedef struct runner {
    const sf_template *t;
    sf_wbuf *w;
    sf_errbuf *err;
    sf_val *stack;
    size_t depth, cap;
    int prec; /* partial recursion depth */
    int nest; /* render_range calls open */
    sf_val stack0[STACK_INITIAL];
} runner;

static sf_status push(runner *r, const sf_val *v)
{
    if (r->depth == r->cap) {
        sf_census *cs = r->t->cref.census;
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

/* Resolves a node's name; 0 (out->kind may be SF_VAL_MISSING) or -1. */
static int resolve(runner *r, const sf_node *nd, sf_val *out)
{
    const sf_template *t = r->t;
    if (nd->nparts == 0) {
        *out = r->stack[r->depth - 1];
        return 0;
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
            return -1;
        if (rc > 0)
            goto found;
    }
    out->kind = SF_VAL_MISSING;
    out->truthy = 0;
    return 0;
found:
    /* Later parts resolve only inside what the previous part found. */
    for (uint16_t i = 1; i < nd->nparts; i++) {
        if (out->kind != SF_VAL_MAP) {
            out->kind = SF_VAL_MISSING;
            out->truthy = 0;
            return 0;
        }
        sy = &t->syms[parts[i]];
        sf_val next;
        int rc = out->ops->lookup(out->obj, parts[i], sy->name, sy->len, &next);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            out->kind = SF_VAL_MISSING;
            out->truthy = 0;
            return 0;
        }
        *out = next;
    }
    return 0;
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

static sf_status section(runner *r, uint32_t unit, const sf_node *nd, uint32_t body,
                         const sf_val *v)
{
    sf_status st;
    if (v->kind == SF_VAL_LIST) {
        if (!v->truthy)
            return SF_OK;
        for (size_t idx = 0;; idx++) {
            sf_val item;
            int rc = v->ops->item(v->obj, idx, &item);
            if (rc < 0)
                return SF_ERR_SOURCE;
            if (rc == 0)
                return SF_OK;
            if ((st = push(r, &item)) != SF_OK)
                return st;
            st = render_range(r, unit, body, nd->b);
            r->depth--;
            if (st != SF_OK)
                return st;
        }
    }
    if (!v->truthy)
        return SF_OK;
    if ((st = push(r, v)) != SF_OK)
        return st;
    st = render_range(r, unit, body, nd->b);
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
    r->nest++;
    sf_status st = render_range_body(r, unit, from, to);
    r->nest--;
    return st;
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
            if (resolve(r, nd, &v) != 0)
                return SF_ERR_SOURCE;
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
            if (resolve(r, nd, &v) != 0)
                return SF_ERR_SOURCE;
            if ((st = section(r, unit, nd, i + 1, &v)) != SF_OK)
                return st;
            i = nd->b;
            break;
        case SF_N_INVERTED:
            if (resolve(r, nd, &v) != 0)
                return SF_ERR_SOURCE;
            if (!v.truthy || v.kind == SF_VAL_MISSING || v.kind == SF_VAL_NULL) {
                if ((st = render_range(r, unit, i + 1, nd->b)) != SF_OK)
                    return st;
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
    r.t = t;
    r.w = w;
    r.err = err;
    r.stack = r.stack0;
    r.depth = 0;
    r.cap = STACK_INITIAL;
    r.prec = 0;
    r.nest = 0;
    r.stack0[r.depth++] = *root;
    sf_status st = render_range(&r, 0, 0, t->units[0].nnodes);
    if (r.stack != r.stack0)
        sf_dealloc(t->cref.census, r.stack);
    return st;
}
