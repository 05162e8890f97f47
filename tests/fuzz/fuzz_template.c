/* fuzz_template.c: libFuzzer target for the template compiler and renderer.
 *
 * The input is split at NUL bytes: the template text, then a partial (named
 * "p"), then values. The template is compiled in XML mode; when it compiles
 * (and stays XML: no {{! sqlfeed-format: text }}; raw tags and a DOCTYPE's
 * internal subset are checked like the rest), it is rendered over an in-memory context: names a b c d are the values (a NULL
 * for n), rows is a list of three rows whose a b c d rotate the values, and
 * any other name is a one-item list (so sections render). Whatever the
 * values, the output must be well-formed XML with namespaces: expat parses
 * it in namespace mode, as feed readers do, and the target aborts when it
 * does not.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_template.c
 *   fuzz_template tests/fuzz/corpus/template */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"

#define NVALS 4

typedef struct input {
    const char *tpl, *partial;
    size_t tlen, plen;
    const char *val[NVALS];
    size_t vlen[NVALS];
    int has_partial;
} input;

typedef struct ctx {
    const input *in;
    int rot; /* a row's rotation of the values */
} ctx;

static const sf_data_ops map_ops, rows_ops, one_ops;
static ctx rows_ctx[3];

static int val_index(const char *name, size_t len)
{
    if (len == 1 && name[0] >= 'a' && name[0] < 'a' + NVALS)
        return name[0] - 'a';
    return -1;
}

static int map_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym;
    ctx *c = obj;
    memset(out, 0, sizeof *out);
    int k = val_index(name, len);
    if (k >= 0) {
        k = (k + c->rot) % NVALS;
        out->kind = SF_VAL_TEXT;
        out->s = c->in->val[k];
        out->n = c->in->vlen[k];
        out->truthy = out->n > 0;
        return 1;
    }
    if (len == 1 && name[0] == 'n') {
        out->kind = SF_VAL_NULL;
        return 1;
    }
    if (c->rot == 0 && len == 4 && memcmp(name, "rows", 4) == 0) {
        out->kind = SF_VAL_LIST;
        out->truthy = 1;
        out->ops = &rows_ops;
        out->obj = c;
        return 1;
    }
    if (len == 1 && name[0] == 'z')
        return 0; /* missing */
    out->kind = SF_VAL_LIST; /* a one-item list whose item is the same map */
    out->truthy = 1;
    out->ops = &one_ops;
    out->obj = c;
    return 1;
}

static int rows_item(void *obj, size_t idx, sf_val *out)
{
    ctx *c = obj;
    if (idx >= 3)
        return 0;
    rows_ctx[idx].in = c->in;
    rows_ctx[idx].rot = (int)idx + 1;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &map_ops;
    out->obj = &rows_ctx[idx];
    return 1;
}

static int one_item(void *obj, size_t idx, sf_val *out)
{
    if (idx >= 1)
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &map_ops;
    out->obj = obj;
    return 1;
}

static const sf_data_ops map_ops = {.lookup = map_lookup};
static const sf_data_ops rows_ops = {.item = rows_item};
static const sf_data_ops one_ops = {.item = one_item};

/* ---- output ------------------------------------------------------------ */

typedef struct outbuf {
    sf_wbuf w;
    char small[SF_WBUF_MIN];
    char *all;
    size_t len, cap;
} outbuf;

static int out_drain(sf_wbuf *w)
{
    outbuf *o = (outbuf *)w;
    if (o->len + w->len > ((size_t)4 << 20))
        return -1; /* too big to be worth checking */
    if (o->len + w->len > o->cap) {
        size_t cap = (o->len + w->len) * 2;
        char *p = realloc(o->all, cap);
        if (!p)
            return -1;
        o->all = p;
        o->cap = cap;
    }
    memcpy(o->all + o->len, w->buf, w->len);
    o->len += w->len;
    w->len = 0;
    return 0;
}

static int partial_fn(void *ud, const char *name, const char **text, size_t *len)
{
    const input *in = ud;
    if (!in->has_partial || strcmp(name, "p") != 0)
        return 0;
    *text = in->partial;
    *len = in->plen;
    return 1;
}

static int checkable(const sf_template *t)
{
    if (t->eff_mode != SF_TEMPLATE_XML)
        return 0;
    /* An XML template has no raw node: {{{x}}} is refused or escaped. */
    for (uint32_t u = 0; u < t->nunits; u++)
        for (uint32_t i = 0; i < t->units[u].nnodes; i++)
            if (t->units[u].nodes[i].type == SF_N_VAR && t->units[u].nodes[i].esc == SF_ESC_RAW)
                abort();
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    memset(&in, 0, sizeof in);
    const char *p = (const char *)data, *end = p + size;
    const char *parts[2 + NVALS];
    size_t lens[2 + NVALS];
    int np = 0;
    while (np < 2 + NVALS) {
        const char *z = np < 1 + NVALS ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        parts[np] = p;
        lens[np] = z ? (size_t)(z - p) : (size_t)(end - p);
        np++;
        if (!z)
            break;
        p = z + 1;
    }
    in.tpl = parts[0];
    in.tlen = lens[0];
    if (np > 1) {
        in.partial = parts[1];
        in.plen = lens[1];
        in.has_partial = 1;
    }
    static const char dflt[NVALS][8] = {"]]", "-", ">", "]"};
    for (int k = 0; k < NVALS; k++) {
        in.val[k] = 2 + k < np ? parts[2 + k] : dflt[k];
        in.vlen[k] = 2 + k < np ? lens[2 + k] : strlen(dflt[k]);
    }

    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    if (!t)
        return 0;
    if (sf_template_load_string(t, "fuzz", in.tpl, in.tlen, partial_fn, &in) == SF_OK &&
        checkable(t)) {
        outbuf o;
        memset(&o, 0, sizeof o);
        o.w.buf = o.small;
        o.w.cap = sizeof o.small;
        o.w.drain = out_drain;
        ctx root = {&in, 0};
        sf_val rv = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &map_ops, .obj = &root};
        sf_errbuf err;
        err.msg[0] = '\0';
        if (sf_tpl_render(t, &o.w, &rv, &err) == SF_OK && out_drain(&o.w) == 0) {
            XML_Parser xp = XML_ParserCreateNS(NULL, ' ');
            if (XML_Parse(xp, o.all ? o.all : "", (int)o.len, 1) == XML_STATUS_ERROR) {
                fprintf(stderr, "not well-formed: %s at line %lu col %lu\n--- template:\n%.*s\n"
                                "--- output:\n%.*s\n",
                        XML_ErrorString(XML_GetErrorCode(xp)),
                        (unsigned long)XML_GetCurrentLineNumber(xp),
                        (unsigned long)XML_GetCurrentColumnNumber(xp), (int)in.tlen, in.tpl,
                        (int)(o.len > 4000 ? 4000 : o.len), o.all ? o.all : "");
                abort();
            }
            XML_ParserFree(xp);
        }
        free(o.all);
    }
    sf_template_free(t);
    return 0;
}
