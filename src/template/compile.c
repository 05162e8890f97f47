/* compile.c: Mustache source to nodes.
 *
 * Everything the spec decides from the template alone is decided here, once:
 * standalone lines are cut, partial indentation is applied to the partial's
 * source, delimiters are tracked, and (in XML mode) the escaping of every
 * {{tag}} is fixed from the XML context its position gives it. Rendering is
 * then a straight walk that only appends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template.h"
#include "value/format.h"

#define MAX_DELIM 32
#define MAX_OPEN 1024        /* sections open at once in one unit (= run.c MAX_NESTING) */
#define MAX_PARTIAL_DEPTH 64 /* partials compiled inside partials */
#define MAX_TEMPLATE_SIZE ((size_t)64 << 20) /* 64 MiB, a template or a partial */

/* A section open while compiling: its node, the element depth and the XML
 * context its body starts in (its end must find both again). */
typedef struct open_sec {
    uint32_t node;
    uint32_t height;
    sf_xml_lexer lx;
} open_sec;

/* An element open in the literal markup, or an attribute of the current
 * start tag: a name in the unit's source. An attribute also lists the
 * sections around it inside the tag ([goff, goff + gn) in guards: node
 * indices), so that k="1" in {{#x}} and k="2" in {{^x}} are seen to
 * exclude each other. */
typedef struct xml_name {
    uint32_t off, len;
    uint32_t goff, gn;
} xml_name;

/* A namespace declaration in scope: the prefix (plen 0: the default
 * namespace) in the unit's source, the namespace name (normalized) in
 * nsbuf, and the element depth that declared it. */
typedef struct ns_bind {
    uint32_t depth;
    uint32_t poff, plen;
    uint32_t uoff, ulen;
} ns_bind;

#define XML_NS "http://www.w3.org/XML/1998/namespace"
#define XMLNS_NS "http://www.w3.org/2000/xmlns/"

typedef struct compiler {
    sf_template *t;
    uint32_t unit;
    const char *src;
    size_t len;
    char otag[MAX_DELIM], ctag[MAX_DELIM];
    size_t olen, clen;
    sf_node *nodes;
    uint32_t nnodes, capnodes;
    open_sec *open;
    uint32_t nopen, capopen;
    sf_xml_lexer lx;
    int depth;
    int xml;              /* XML mode: the literal markup is lexed and checked */
    xml_name *elems;      /* open elements, innermost last */
    uint32_t nelems, capelems;
    xml_name *attrs;      /* the current start tag's attributes */
    uint32_t nattrs, capattrs;
    uint32_t *guards;     /* sections around each attribute (xml_name.goff) */
    uint32_t nguards, capguards;
    uint32_t tag_nopen;   /* sections open when the current start tag began */
    ns_bind *binds;       /* namespace declarations in scope, innermost last */
    uint32_t nbinds, capbinds;
    char *nsbuf;          /* their namespace names */
    uint32_t nslen, nscap;
    int ns_value;         /* reading a namespace declaration's value */
    /* The section that closed last, if nothing followed it yet: a
     * {{^x}} right after {{/x}} renders only where {{#x}} did not. */
    uint32_t last_node, last_at;
    sf_xml_lexer last_lx;
    /* The first error in the literal markup waits for the end of the scan:
     * a Mustache syntax error (an unclosed section) explains more. */
    int markup_failed;
    sf_errbuf markup;
    /* Compiled inside a section on a JSON value (a partial included in
     * one): a name there may be a key of it, {{url.text}}. */
    int json_outer;
} compiler;

static sf_status compile_unit(sf_template *t, uint32_t unit, int depth, int xml, int json_outer);

/* ---- positions and errors ---------------------------------------------- */

void sf_tpl_where(const sf_template *t, const sf_unit *u, uint32_t pos, char *buf, size_t n)
{
    (void)t;
    unsigned line = 1, col = 1;
    for (uint32_t i = 0; i < pos && i < u->srclen; i++) {
        char ch = u->src[i];
        /* LF, CRLF and a lone CR each end a line. */
        if (ch == '\n' || (ch == '\r' && (i + 1 >= u->srclen || u->src[i + 1] != '\n')))
            line++, col = 1;
        else if (ch != '\r')
            col++;
    }
    /* A partial's source carries its indentation; report the column of the
     * partial's own file. */
    if (u->indent_len && col > u->indent_len)
        col -= (unsigned)u->indent_len;
    snprintf(buf, n, "%s:%u:%u", u->label ? u->label : u->name, line, col);
}

static sf_status cfail(compiler *c, size_t pos, const char *fmt, ...) SF_PRINTF(3, 4);
static sf_status cfail(compiler *c, size_t pos, const char *fmt, ...)
{
    char where[512], what[512];
    sf_tpl_where(c->t, &c->t->units[c->unit], (uint32_t)pos, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sf_fail(&c->t->err, SF_ERR_TEMPLATE, "%s: %s", where, what);
}

static sf_status nomem(sf_template *t)
{
    return sf_fail(&t->err, SF_ERR_NOMEM, "out of memory compiling the template");
}

/* ---- symbols ------------------------------------------------------------ */

static int intern(sf_template *t, const char *s, size_t n, uint32_t *id)
{
    for (uint32_t i = 0; i < t->nsyms; i++) {
        if (t->syms[i].len == n && memcmp(t->syms[i].name, s, n) == 0) {
            *id = i;
            return 0;
        }
    }
    sf_census *cs = t->cref.census;
    if (t->nsyms == t->capsyms) {
        uint32_t cap = t->capsyms ? t->capsyms * 2 : 32;
        sf_sym *p = sf_realloc(cs, SF_MEM_TEMPLATE, t->syms, cap * sizeof *p);
        if (!p)
            return -1;
        t->syms = p;
        t->capsyms = cap;
    }
    char *name = sf_strndup(cs, SF_MEM_TEMPLATE, s, n);
    if (!name)
        return -1;
    t->syms[t->nsyms].name = name;
    t->syms[t->nsyms].len = (uint32_t)n;
    *id = t->nsyms++;
    return 0;
}

static int add_part(sf_template *t, uint32_t sym)
{
    if (t->nparts == t->capparts) {
        uint32_t cap = t->capparts ? t->capparts * 2 : 64;
        uint32_t *p = sf_realloc(t->cref.census, SF_MEM_TEMPLATE, t->parts, cap * sizeof *p);
        if (!p)
            return -1;
        t->parts = p;
        t->capparts = cap;
    }
    t->parts[t->nparts++] = sym;
    return 0;
}

/* ---- nodes -------------------------------------------------------------- */

static sf_node *new_node(compiler *c, sf_node_type type, size_t pos)
{
    if (c->nnodes == c->capnodes) {
        uint32_t cap = c->capnodes ? c->capnodes * 2 : 32;
        sf_node *p = sf_realloc(c->t->cref.census, SF_MEM_TEMPLATE, c->nodes, cap * sizeof *p);
        if (!p)
            return NULL;
        c->nodes = p;
        c->capnodes = cap;
    }
    sf_node *nd = &c->nodes[c->nnodes++];
    memset(nd, 0, sizeof *nd);
    nd->type = (uint8_t)type;
    nd->pos = (uint32_t)pos;
    return nd;
}

/* ---- the literal markup -------------------------------------------------- */

static size_t node_name(const sf_template *t, const sf_node *nd, char *buf, size_t n);

/* Makes room for one more element of `size` bytes in *p (census memory). */
static int grow(sf_census *cs, void **p, uint32_t *cap, uint32_t n, size_t size)
{
    if (n < *cap)
        return 0;
    uint32_t nc = *cap ? *cap * 2 : 16;
    void *q = sf_realloc(cs, SF_MEM_TEMPLATE, *p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static void where_at(compiler *c, size_t pos, char *buf, size_t n)
{
    sf_tpl_where(c->t, &c->t->units[c->unit], (uint32_t)pos, buf, n);
}

/* The element depth a section's body starts at: end tags may not go below. */
static uint32_t section_base(const compiler *c)
{
    return c->nopen ? c->open[c->nopen - 1].height : 0;
}

static const char *open_section_name(compiler *c, char *buf, size_t n)
{
    node_name(c->t, &c->nodes[c->open[c->nopen - 1].node], buf, n);
    return buf;
}

#define NAME_ARG(x) (int)((x).len > 100 ? 100 : (x).len), c->src + (x).off

/* ---- namespaces ------------------------------------------------------------ */

static int span_is(const compiler *c, uint32_t off, uint32_t len, const char *w)
{
    size_t k = strlen(w);
    return len == k && memcmp(c->src + off, w, k) == 0;
}

/* The prefix of a name: its length before ':', or 0 when it has none. */
static uint32_t prefix_len(const compiler *c, xml_name nm)
{
    const char *colon = memchr(c->src + nm.off, ':', nm.len);
    return colon ? (uint32_t)(colon - (c->src + nm.off)) : 0;
}

/* The binding of prefix src[off..off+len) in scope, or NULL. */
static const ns_bind *ns_lookup(const compiler *c, const char *p, uint32_t len)
{
    for (uint32_t i = c->nbinds; i-- > 0;) {
        const ns_bind *b = &c->binds[i];
        if (b->plen == len && memcmp(c->src + b->poff, p, len) == 0)
            return b;
    }
    return NULL;
}

/* Prefixes a partial uses without declaring them: the including context
 * must (units' free_pfx, one "prefix " after another). */
static int free_has(const sf_unit *u, const char *p, size_t len)
{
    for (size_t i = 0; i < u->free_len;) {
        const char *sp = memchr(u->free_pfx + i, ' ', u->free_len - i);
        size_t k = (size_t)(sp - (u->free_pfx + i));
        if (k == len && memcmp(u->free_pfx + i, p, len) == 0)
            return 1;
        i += k + 1;
    }
    return 0;
}

static int free_add(sf_template *t, uint32_t unit, const char *p, size_t len)
{
    sf_unit *u = &t->units[unit];
    if (free_has(u, p, len))
        return 0;
    char *n = sf_realloc(t->cref.census, SF_MEM_TEMPLATE, u->free_pfx, u->free_len + len + 1);
    if (!n)
        return -1;
    memcpy(n + u->free_len, p, len);
    n[u->free_len + len] = ' ';
    u->free_pfx = n;
    u->free_len += len + 1;
    return 0;
}

/* A partial included in element content may use prefixes declared around it. */
static int partial_in_content(const compiler *c)
{
    return c->unit != 0 && c->t->units[c->unit].xstart.level == 1;
}

/* Resolves the prefix of `nm` (element or attribute name): 0 with *uri (NULL
 * for a prefix the including context must declare), or a template error. */
static sf_status ns_resolve(compiler *c, xml_name nm, int element, const char **uri,
                            uint32_t *ulen)
{
    *uri = NULL, *ulen = 0;
    if (!sf_xml_qname_ok(c->src + nm.off, nm.len))
        return cfail(c, nm.off, "'%.*s' is not a qualified name (Namespaces in XML: one ':' "
                                "at most, between a prefix and a local name)",
                     NAME_ARG(nm));
    uint32_t pl = prefix_len(c, nm);
    if (!pl) {
        if (element) {
            const ns_bind *b = ns_lookup(c, "", 0);
            if (b)
                *uri = c->nsbuf + b->uoff, *ulen = b->ulen;
        }
        return SF_OK;
    }
    const char *p = c->src + nm.off;
    if (pl == 3 && memcmp(p, "xml", 3) == 0) {
        *uri = XML_NS, *ulen = (uint32_t)strlen(XML_NS);
        return SF_OK;
    }
    if (pl == 5 && memcmp(p, "xmlns", 5) == 0)
        return cfail(c, nm.off, "<%.*s>: the prefix xmlns is reserved for namespace "
                                "declarations", NAME_ARG(nm));
    const ns_bind *b = ns_lookup(c, p, pl);
    if (b) {
        *uri = c->nsbuf + b->uoff, *ulen = b->ulen;
        return SF_OK;
    }
    if (partial_in_content(c)) {
        if (free_add(c->t, c->unit, p, pl) != 0)
            return nomem(c->t);
        return SF_OK;
    }
    return cfail(c, nm.off, "prefix '%.*s' of '%.*s' is not declared (write xmlns:%.*s=\"...\" "
                            "on this element or one around it)",
                 (int)pl, p, NAME_ARG(nm), (int)pl, p);
}

/* A namespace declaration's value ends: checks it and puts it in scope. */
static sf_status ns_declare(compiler *c, xml_name attr, size_t voff, size_t vlen)
{
    sf_census *cs = c->t->cref.census;
    if (!sf_xml_qname_ok(c->src + attr.off, attr.len))
        return cfail(c, attr.off, "'%.*s' is not a qualified name (Namespaces in XML: one ':' "
                                  "at most, between a prefix and a local name)",
                     NAME_ARG(attr));
    while (c->nslen + vlen + 1 > c->nscap) {
        uint32_t cap = c->nscap ? c->nscap * 2 : 256;
        char *n = sf_realloc(cs, SF_MEM_TEMPLATE, c->nsbuf, cap);
        if (!n)
            return nomem(c->t);
        c->nsbuf = n, c->nscap = cap;
    }
    if (grow(cs, (void **)&c->binds, &c->capbinds, c->nbinds, sizeof *c->binds) != 0)
        return nomem(c->t);
    uint32_t ulen = (uint32_t)sf_xml_attr_value(c->src + voff, vlen, c->nsbuf + c->nslen);
    const char *uri = c->nsbuf + c->nslen;
    int is_xml = ulen == strlen(XML_NS) && memcmp(uri, XML_NS, ulen) == 0;
    int is_xmlns = ulen == strlen(XMLNS_NS) && memcmp(uri, XMLNS_NS, ulen) == 0;
    uint32_t poff = attr.off + 6, plen = attr.len > 5 ? attr.len - 6 : 0;
    const char *p = c->src + poff;
    if (plen == 5 && memcmp(p, "xmlns", 5) == 0)
        return cfail(c, attr.off, "xmlns:xmlns: the prefix xmlns cannot be declared");
    if (plen == 3 && memcmp(p, "xml", 3) == 0) {
        if (!is_xml)
            return cfail(c, attr.off, "xmlns:xml may only bind the prefix xml to " XML_NS);
    } else if (is_xml || is_xmlns) {
        return cfail(c, voff, "%.*s: the namespace %.*s is reserved%s", NAME_ARG(attr),
                     (int)ulen, uri, is_xml ? " for the prefix xml" : "");
    } else if (plen && ulen == 0) {
        return cfail(c, voff, "%.*s=\"\": a prefix cannot be undeclared (Namespaces in XML "
                              "1.0); give it a namespace name",
                     NAME_ARG(attr));
    }
    /* A namespace name is a URI reference, which holds no white space
     * (and expat-based readers that join names with a space refuse it). */
    for (uint32_t k = 0; k < ulen; k++)
        if (uri[k] == ' ' || uri[k] == '\t' || uri[k] == '\n' || uri[k] == '\r')
            return cfail(c, voff, "%.*s: a namespace name is a URI and holds no white space "
                                  "(write %%20)",
                         NAME_ARG(attr));
    ns_bind *b = &c->binds[c->nbinds++];
    b->depth = c->nelems;
    b->poff = poff, b->plen = plen;
    b->uoff = c->nslen, b->ulen = ulen;
    c->nslen += ulen;
    return SF_OK;
}

static int is_nsdecl(const compiler *c, xml_name nm)
{
    return span_is(c, nm.off, nm.len, "xmlns") ||
           (nm.len > 6 && memcmp(c->src + nm.off, "xmlns:", 6) == 0);
}

/* Declarations of elements that closed leave scope. */
static void ns_pop(compiler *c)
{
    while (c->nbinds && c->binds[c->nbinds - 1].depth > c->nelems) {
        c->nbinds--;
        c->nslen = c->binds[c->nbinds].uoff;
    }
}

/* Attributes a and b of one tag cannot both be written: one sits in
 * {{#x}}, the other in {{^x}} (the same name: one value per tag). */
static int exclusive(const compiler *c, const xml_name *a, const xml_name *b)
{
    const sf_template *t = c->t;
    for (uint32_t i = 0; i < a->gn; i++) {
        const sf_node *x = &c->nodes[c->guards[a->goff + i]];
        for (uint32_t j = 0; j < b->gn; j++) {
            const sf_node *y = &c->nodes[c->guards[b->goff + j]];
            if (x->type != y->type && x->nparts && x->nparts == y->nparts &&
                memcmp(&t->parts[x->parts], &t->parts[y->parts], x->nparts * sizeof *t->parts) == 0)
                return 1;
        }
    }
    return 0;
}

/* At the end of a start tag: the element's and attributes' prefixes are
 * declared, and no two attributes have the same expanded name. */
static sf_status ns_check_tag(compiler *c)
{
    const char *uri;
    uint32_t ulen;
    sf_status st = ns_resolve(c, c->elems[c->nelems - 1], 1, &uri, &ulen);
    if (st != SF_OK)
        return st;
    for (uint32_t i = 0; i < c->nattrs; i++) {
        xml_name a = c->attrs[i];
        if (is_nsdecl(c, a))
            continue;
        const char *ua;
        uint32_t la;
        if ((st = ns_resolve(c, a, 0, &ua, &la)) != SF_OK)
            return st;
        uint32_t pa = prefix_len(c, a);
        if (!pa)
            continue;
        for (uint32_t j = 0; j < i; j++) {
            xml_name b = c->attrs[j];
            uint32_t pb = prefix_len(c, b);
            if (!pb || is_nsdecl(c, b) || a.len - pa != b.len - pb ||
                memcmp(c->src + a.off + pa, c->src + b.off + pb, a.len - pa) != 0 ||
                exclusive(c, &a, &b))
                continue;
            const char *ub;
            uint32_t lb;
            if ((st = ns_resolve(c, b, 0, &ub, &lb)) != SF_OK)
                return st;
            if (!ua || !ub)
                return cfail(c, a.off, "'%.*s' and '%.*s': whether their prefixes name the "
                                       "same namespace depends on where the partial is "
                                       "included; declare them in the partial",
                             NAME_ARG(a), NAME_ARG(b));
            if (la == lb && memcmp(ua, ub, la) == 0)
                return cfail(c, a.off, "'%.*s' and '%.*s' are the same attribute: both "
                                       "prefixes name the namespace %.*s",
                             NAME_ARG(a), NAME_ARG(b), (int)(la > 100 ? 100 : la), ua);
        }
    }
    return SF_OK;
}

/* What the lexer reports, checked against the element stack. */
static sf_status on_event(compiler *c, const sf_xml_event *ev)
{
    sf_census *cs = c->t->cref.census;
    xml_name nm = {(uint32_t)ev->name, (uint32_t)ev->len, 0, 0};
    sf_status st;
    char where[512], sec[512];
    switch (ev->type) {
    case SF_XE_NONE:
        return SF_OK;
    case SF_XE_ERROR:
        return cfail(c, ev->pos, "%s", ev->msg);
    case SF_XE_DOCTYPE:
        if (c->nopen)
            return cfail(c, ev->pos, "a DOCTYPE inside section {{#%s}}",
                         open_section_name(c, sec, sizeof sec));
        return SF_OK;
    case SF_XE_STAG:
        if (c->lx.level == 2)
            return cfail(c, ev->pos, "a second root element <%.*s>: a document has one",
                         NAME_ARG(nm));
        if (c->lx.level == 0 && c->nopen)
            return cfail(c, ev->pos,
                         "the root element <%.*s> inside section {{#%s}}: it would appear "
                         "once per value or not at all; write the root once and put the "
                         "sections inside it (<%.*s{{#x}} a=\"...\"{{/x}}> chooses its "
                         "attributes, sections between its tags its content)",
                         NAME_ARG(nm), open_section_name(c, sec, sizeof sec), NAME_ARG(nm));
        if (grow(cs, (void **)&c->elems, &c->capelems, c->nelems, sizeof *c->elems) != 0)
            return nomem(c->t);
        c->elems[c->nelems++] = nm;
        c->nattrs = c->nguards = 0;
        c->tag_nopen = c->nopen;
        return SF_OK;
    case SF_XE_ATTR:
        /* The sections around it inside this tag. */
        nm.goff = c->nguards;
        nm.gn = c->nopen - c->tag_nopen;
        for (uint32_t k = c->tag_nopen; k < c->nopen; k++) {
            if (grow(cs, (void **)&c->guards, &c->capguards, c->nguards, sizeof *c->guards) != 0)
                return nomem(c->t);
            c->guards[c->nguards++] = c->open[k].node;
        }
        for (uint32_t i = 0; i < c->nattrs; i++)
            if (c->attrs[i].len == nm.len &&
                memcmp(c->src + c->attrs[i].off, c->src + nm.off, nm.len) == 0 &&
                !exclusive(c, &c->attrs[i], &nm))
                return cfail(c, ev->pos,
                             "attribute '%.*s' twice in one tag (also when sections around "
                             "them could leave one out; {{#x}} and {{^x}} of one name exclude "
                             "each other)",
                             NAME_ARG(nm));
        if (is_nsdecl(c, nm)) {
            if (nm.gn)
                return cfail(c, ev->pos, "namespace declaration %.*s inside section {{#%s}}: "
                                         "declare namespaces unconditionally, so the names "
                                         "that use them are always bound",
                             NAME_ARG(nm), open_section_name(c, sec, sizeof sec));
            c->ns_value = 1;
        }
        if (grow(cs, (void **)&c->attrs, &c->capattrs, c->nattrs, sizeof *c->attrs) != 0)
            return nomem(c->t);
        c->attrs[c->nattrs++] = nm;
        return SF_OK;
    case SF_XE_ATTR_END: {
        /* A section or partial that starts in an attribute value must end
         * in it: leaving it, its body could repeat or drop attributes. */
        const sf_xml_lexer *from = c->nopen ? &c->open[c->nopen - 1].lx
                                   : c->unit ? &c->t->units[c->unit].xstart
                                             : NULL;
        if (from && (from->state == SF_XS_ATTR_DQ || from->state == SF_XS_ATTR_SQ)) {
            if (c->nopen)
                return cfail(c, ev->pos, "section {{#%s}} starts in an attribute value and "
                                         "ends it: its body could repeat or leave out the "
                                         "attributes after it; keep the section inside the value",
                             open_section_name(c, sec, sizeof sec));
            return cfail(c, ev->pos, "the partial starts in an attribute value and ends it: it "
                                     "could repeat the tag's attributes; keep it inside the value");
        }
        if (c->ns_value) {
            c->ns_value = 0;
            return ns_declare(c, c->attrs[c->nattrs - 1], ev->name, ev->len);
        }
        return SF_OK;
    }
    case SF_XE_STAG_END:
        if ((st = ns_check_tag(c)) != SF_OK)
            return st;
        if (c->lx.level == 0)
            c->lx.level = 1;
        return SF_OK;
    case SF_XE_EMPTY:
        if (c->nelems == section_base(c)) /* the tag began before the section or partial */
            return cfail(c, ev->pos, "'/>' ends a tag that began outside this %s",
                         c->nopen ? "section" : "partial");
        if ((st = ns_check_tag(c)) != SF_OK)
            return st;
        c->nelems--;
        ns_pop(c);
        if (c->lx.level == 0)
            c->lx.level = 2;
        return SF_OK;
    case SF_XE_ETAG:
        if (c->nelems == section_base(c)) {
            if (c->nelems) {
                xml_name top = c->elems[c->nelems - 1];
                where_at(c, top.off - 1, where, sizeof where);
                return cfail(c, ev->pos,
                             "</%.*s> closes <%.*s> (opened at %s) from inside section "
                             "{{#%s}}: each section's body must be balanced on its own",
                             NAME_ARG(nm), NAME_ARG(top), where,
                             open_section_name(c, sec, sizeof sec));
            }
            if (c->unit != 0 && c->t->units[c->unit].xstart.level == 1)
                return cfail(c, ev->pos,
                             "</%.*s> closes an element the partial did not open: a partial "
                             "must be balanced on its own",
                             NAME_ARG(nm));
            return cfail(c, ev->pos, "</%.*s> closes no open element", NAME_ARG(nm));
        }
        xml_name top = c->elems[c->nelems - 1];
        if (top.len != nm.len || memcmp(c->src + top.off, c->src + nm.off, nm.len) != 0) {
            where_at(c, top.off - 1, where, sizeof where);
            return cfail(c, ev->pos, "</%.*s> does not match <%.*s> opened at %s", NAME_ARG(nm),
                         NAME_ARG(top), where);
        }
        c->nelems--;
        ns_pop(c);
        if (c->nelems == 0 && c->lx.level == 1 && c->t->units[c->unit].xstart.level == 0)
            c->lx.level = 2;
        return SF_OK;
    }
    return SF_OK;
}

/* Checks and lexes literal text src[from..to) in XML mode. */
static sf_status lex_markup2(compiler *c, size_t from, size_t to);
static sf_status lex_markup(compiler *c, size_t from, size_t to)
{
    sf_status st = lex_markup2(c, from, to);
    if (st != SF_ERR_TEMPLATE)
        return st;
    c->markup_failed = 1;
    c->markup = c->t->err;
    c->xml = 0; /* the rest is scanned for syntax only */
    return SF_OK;
}

static sf_status lex_markup2(compiler *c, size_t from, size_t to)
{
    size_t bad = sf_xml_check_chars(c->src + from, to - from);
    if (bad != to - from)
        return cfail(c, from + bad,
                     "the template's text holds invalid UTF-8 or a character XML 1.0 forbids "
                     "(byte 0x%02X)",
                     (unsigned)(unsigned char)c->src[from + bad]);
    size_t i = from;
    while (i < to) {
        sf_xml_event ev;
        i = sf_xml_lex(&c->lx, c->src, i, to, &ev);
        if (ev.type == SF_XE_NONE)
            break;
        sf_status st = on_event(c, &ev);
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}

static sf_status emit_text(compiler *c, size_t from, size_t to)
{
    if (to <= from)
        return SF_OK;
    if (c->xml) {
        sf_status st = lex_markup(c, from, to);
        if (st != SF_OK)
            return st;
    }
    sf_node *nd = new_node(c, SF_N_TEXT, from);
    if (!nd)
        return nomem(c->t);
    nd->a = (uint32_t)from;
    nd->b = (uint32_t)(to - from);
    return SF_OK;
}

/* The id of the json formatter (the part after which keys may follow). */
static uint16_t json_id(void)
{
    sf_fmt_call jc = {0, 0};
    sf_fmt_parse("json", 4, &jc, NULL, 0);
    return jc.id;
}

/* Whether a node's name has a json part: inside its section the values may
 * be JSON objects, whose keys a name may read. */
static int has_json(const sf_template *t, const sf_node *nd)
{
    uint16_t jid = json_id();
    for (uint16_t i = 1; i < nd->nparts; i++) {
        uint32_t p = t->parts[nd->parts + i];
        if ((p & SF_PART_FMT) && t->fcalls[p & ~SF_PART_FMT].id == jid)
            return 1;
    }
    return 0;
}

static int in_json_section(const compiler *c)
{
    if (c->json_outer)
        return 1;
    for (uint32_t i = 0; i < c->nopen; i++) {
        const sf_node *nd = &c->nodes[c->open[i].node];
        if (nd->type == SF_N_SECTION && has_json(c->t, nd)) /* not {{^x.json}}: no value */
            return 1;
    }
    return 0;
}

/* The index of a formatter call in t->fcalls, added when new: equal calls
 * share one index, so equal names have equal parts. */
static int add_fcall(sf_template *t, const sf_fmt_call *call, uint32_t *idx)
{
    for (uint32_t i = 0; i < t->nfcalls; i++)
        if (t->fcalls[i].id == call->id && t->fcalls[i].arg == call->arg) {
            *idx = i;
            return 0;
        }
    if (t->nfcalls == t->capfcalls) {
        uint32_t cap = t->capfcalls ? t->capfcalls * 2 : 8;
        sf_fmt_call *p = sf_realloc(t->cref.census, SF_MEM_TEMPLATE, t->fcalls, cap * sizeof *p);
        if (!p)
            return -1;
        t->fcalls = p;
        t->capfcalls = cap;
    }
    t->fcalls[t->nfcalls] = *call;
    *idx = t->nfcalls++;
    return 0;
}

/* Splits a trimmed tag name into interned parts ("." is zero parts). In a
 * feed template (not the spec's HTML mode) a later part is a formatter
 * call (SF_PART_FMT), or a key of a JSON value: after a json part, or,
 * before any formatter, inside a section on a JSON value. Anything else is
 * a misspelt formatter (docs/value.md). */
static sf_status parse_name(compiler *c, sf_node *nd, const char *s, size_t n, size_t pos)
{
    if (n == 0)
        return cfail(c, pos, "empty tag name");
    if (n == 1 && s[0] == '.') {
        nd->nparts = 0;
        return SF_OK;
    }
    int feed = c->t->eff_mode != SF_TEMPLATE_HTML;
    uint16_t jid = json_id();
    /* What the last formatter was: none yet (keys allowed only inside a
     * JSON section), json (keys allowed), or a text formatter (none). */
    enum { LAST_NONE, LAST_JSON, LAST_TEXT } last = LAST_NONE;
    const char *sigil = nd->type == SF_N_SECTION ? "#" : nd->type == SF_N_INVERTED ? "^" : "";
    int show = (int)(n > 200 ? 200 : n);
    nd->parts = c->t->nparts;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '.')
            j++;
        if (j == i)
            return cfail(c, pos, "invalid name '%.*s': empty part", (int)n, s);
        for (size_t k = i; k < j; k++) {
            unsigned char ch = (unsigned char)s[k];
            if (ch <= ' ' || ch == '{' || ch == '}')
                return cfail(c, pos, "invalid name '%.*s'", (int)n, s);
        }
        uint32_t part;
        int rc = 0;
        sf_fmt_call call = {0, 0};
        char why[256];
        if (feed && i > 0 && (rc = sf_fmt_parse(s + i, j - i, &call, why, sizeof why)) < 0)
            return cfail(c, pos, "{{%s%.*s}}: %s", sigil, show, s, why);
        if (rc > 0) {
            if (add_fcall(c->t, &call, &part) != 0)
                return nomem(c->t);
            part |= SF_PART_FMT;
            last = call.id == jid ? LAST_JSON : LAST_TEXT;
        } else {
            if (feed && i > 0 && !(last == LAST_JSON || (last == LAST_NONE && in_json_section(c))))
                return cfail(c, pos,
                             "{{%s%.*s}}: '%.*s' is not a formatter (formatters: %s; a key of "
                             "a JSON value comes after json, as in NAME.json.KEY)",
                             sigil, show, s, (int)(j - i > 60 ? 60 : j - i), s + i,
                             sf_fmt_names());
            if (intern(c->t, s + i, j - i, &part) != 0)
                return nomem(c->t);
        }
        if (add_part(c->t, part) != 0)
            return nomem(c->t);
        if (nd->nparts == UINT16_MAX)
            return cfail(c, pos, "name has too many parts");
        nd->nparts++;
        i = j + 1;
    }
    return SF_OK;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

static void trim(const char **s, size_t *n)
{
    while (*n && (is_blank(**s) || **s == '\r' || **s == '\n'))
        (*s)++, (*n)--;
    while (*n && (is_blank((*s)[*n - 1]) || (*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\n'))
        (*n)--;
}

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen)
        return NULL;
    const char *end = hay + hlen - nlen + 1;
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, nlen) == 0)
            return p;
    }
    return NULL;
}

/* ---- partials ----------------------------------------------------------- */

static int valid_partial_name(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\0')
            return 0;
    return 1;
}

/* Reads a whole file (a pipe too) into census memory; 1 read, 0 absent,
 * -1 error (errno; EFBIG: more than MAX_TEMPLATE_SIZE bytes). */
static int read_file(sf_census *cs, const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
        close(fd);
        errno = err;
        return -1;
    }
    /* Room for the limit, one byte more (to see a file that exceeds it) and
     * the terminating NUL; a regular file's size is read first. */
    const size_t most = MAX_TEMPLATE_SIZE + 2;
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0
                     ? ((uint64_t)st.st_size + 2 > most ? most : (size_t)st.st_size + 2)
                     : 4096,
           n = 0;
    char *buf = NULL;
    for (;;) {
        if (n > MAX_TEMPLATE_SIZE) {
            sf_dealloc(cs, buf);
            close(fd);
            errno = EFBIG;
            return -1;
        }
        if (n + 1 >= cap || !buf) {
            if (buf)
                cap = cap > most / 2 ? most : cap * 2;
            char *nb = sf_realloc(cs, SF_MEM_TEMPLATE, buf, cap);
            if (!nb) {
                sf_dealloc(cs, buf);
                close(fd);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            sf_dealloc(cs, buf);
            close(fd);
            errno = err;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 1;
}

/* The source of partial `name`, as census memory; 1 found, 0 not, -1 error
 * (described in t->err). */
static int load_partial(compiler *c, const char *name, size_t pos, char **text, size_t *len,
                        sf_status *st)
{
    sf_template *t = c->t;
    sf_census *cs = t->cref.census;
    if (t->dir) {
        char path[4096];
        int k = snprintf(path, sizeof path, "%s/%s.mustache", t->dir, name);
        if (k < 0 || (size_t)k >= sizeof path) {
            cfail(c, pos, "partial path too long");
            return -1;
        }
        int rc = read_file(cs, path, text, len);
        if (rc < 0)
            *st = errno == ENOMEM ? nomem(t)
                  : errno == EFBIG ? cfail(c, pos, "partial %s is larger than %zu MiB, the "
                                                   "limit", path, MAX_TEMPLATE_SIZE >> 20)
                                   : cfail(c, pos, "cannot read partial %s: %s", path, strerror(errno));
        return rc;
    }
    const char *src = NULL;
    size_t n = 0;
    if (t->builtin) {
        src = sf_builtin_template_text(name, &n);
    } else if (t->partial_fn) {
        if (!t->partial_fn(t->partial_ud, name, &src, &n))
            src = NULL;
    }
    if (!src)
        return 0;
    if (n > MAX_TEMPLATE_SIZE) {
        *st = cfail(c, pos, "partial '%s' is larger than %zu MiB, the limit", name,
                    MAX_TEMPLATE_SIZE >> 20);
        return -1;
    }
    *text = sf_strndup(cs, SF_MEM_TEMPLATE, src, n);
    if (!*text) {
        *st = nomem(t);
        return -1;
    }
    *len = n;
    return 1;
}

/* A copy of src with `indent` before every line that has content after it. */
static char *indent_source(sf_census *cs, const char *src, size_t len, const char *indent,
                           size_t ilen, size_t *outlen)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += src[i] == '\n';
    char *out = sf_alloc(cs, SF_MEM_TEMPLATE, len + lines * ilen + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    int at_line_start = 1;
    for (size_t i = 0; i < len; i++) {
        if (at_line_start) {
            memcpy(out + o, indent, ilen);
            o += ilen;
            at_line_start = 0;
        }
        out[o++] = src[i];
        if (src[i] == '\n')
            at_line_start = 1;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static sf_status add_unit(sf_template *t, const char *name, size_t namelen, uint32_t *idx)
{
    sf_census *cs = t->cref.census;
    if (t->nunits == t->capunits) {
        uint32_t cap = t->capunits ? t->capunits * 2 : 8;
        sf_unit *p = sf_realloc(cs, SF_MEM_TEMPLATE, t->units, cap * sizeof *p);
        if (!p)
            return nomem(t);
        t->units = p;
        t->capunits = cap;
    }
    sf_unit *u = &t->units[t->nunits];
    memset(u, 0, sizeof *u);
    u->name = sf_strndup(cs, SF_MEM_TEMPLATE, name, namelen);
    u->indent = sf_strndup(cs, SF_MEM_TEMPLATE, "", 0);
    if (!u->name || !u->indent) {
        sf_dealloc(cs, u->name);
        sf_dealloc(cs, u->indent);
        return nomem(t);
    }
    *idx = t->nunits++;
    return SF_OK;
}

/* The part of the lexer's state that decides how a partial compiles. */
static sf_xml_lexer lx_key(const sf_xml_lexer *lx)
{
    sf_xml_lexer k = *lx;
    sf_xml_normalize(&k);
    return k;
}

/* The unit for partial `name` with this indentation and starting context:
 * found in the cache, or loaded and compiled. */
static sf_status partial_unit(compiler *c, const char *name, size_t nlen, const char *indent,
                              size_t ilen, size_t pos, uint32_t *idx)
{
    sf_template *t = c->t;
    sf_xml_lexer key = lx_key(&c->lx);
    /* Inside a JSON section a dotted name may be a key, outside it not: a
     * partial compiled in one is not the one the other includes. */
    uint8_t json = (uint8_t)in_json_section(c);
    for (uint32_t i = 1; i < t->nunits; i++) {
        sf_unit *u = &t->units[i];
        if (strlen(u->name) == nlen && memcmp(u->name, name, nlen) == 0 &&
            u->indent_len == ilen && memcmp(u->indent, indent, ilen) == 0 &&
            memcmp(&u->xstart, &key, sizeof key) == 0 && u->json_outer == json) {
            if (u->compiling && key.level == 0 && c->xml)
                return cfail(c, pos, "partial '%.*s' includes itself before the root element "
                                     "(it could add a second root)",
                             (int)nlen, name);
            *idx = i;
            return SF_OK;
        }
    }
    if (c->depth >= MAX_PARTIAL_DEPTH)
        return cfail(c, pos, "partials nested more than %d deep (a recursive partial whose "
                             "indentation grows?)", MAX_PARTIAL_DEPTH);
    char namez[256];
    if (nlen >= sizeof namez || !valid_partial_name(name, nlen))
        return cfail(c, pos, "invalid partial name '%.*s'", (int)nlen, name);
    memcpy(namez, name, nlen);
    namez[nlen] = '\0';

    char *text;
    size_t len;
    sf_status lst = SF_OK;
    int rc = load_partial(c, namez, pos, &text, &len, &lst);
    if (rc < 0)
        return lst;
    if (rc == 0) {
        if (t->eff_mode == SF_TEMPLATE_HTML) { /* the spec: a missing partial is empty */
            *idx = SF_NO_UNIT;
            return SF_OK;
        }
        if (t->dir)
            return cfail(c, pos, "partial '%s' not found (no %s/%s.mustache)", namez, t->dir,
                         namez);
        return cfail(c, pos, "partial '%s' not found", namez);
    }
    sf_census *cs = t->cref.census;
    /* A byte-order mark opening a partial's file says how the file is
     * encoded; it is not text to include (it would be a second one, or a
     * U+FEFF in the middle of the output). */
    if (t->eff_mode != SF_TEMPLATE_HTML && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        memmove(text, text + 3, len - 3 + 1);
        len -= 3;
    }
    if (ilen) {
        size_t n2;
        char *ind = indent_source(cs, text, len, indent, ilen, &n2);
        sf_dealloc(cs, text);
        if (!ind)
            return nomem(t);
        text = ind;
        len = n2;
    }
    uint32_t u;
    sf_status st = add_unit(t, namez, nlen, &u);
    if (st != SF_OK) {
        sf_dealloc(cs, text);
        return st;
    }
    t->units[u].src = text;
    t->units[u].srclen = len;
    t->units[u].xstart = key;
    t->units[u].xend = key;
    t->units[u].json_outer = json;
    if (t->dir) { /* messages name the partial's file */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.mustache", t->dir, namez);
        if (!(t->units[u].label = sf_strdup(cs, SF_MEM_TEMPLATE, path)))
            return nomem(t);
    }
    if (ilen) {
        char *ind = sf_strndup(cs, SF_MEM_TEMPLATE, indent, ilen);
        if (!ind)
            return nomem(t);
        sf_dealloc(cs, t->units[u].indent);
        t->units[u].indent = ind;
        t->units[u].indent_len = ilen;
    }
    *idx = u;
    /* When the includer's markup already failed, its lexer's state is not
     * where the partial starts: the partial is scanned for syntax only. */
    return compile_unit(t, u, c->depth + 1, c->xml, json);
}

/* The prefixes partial `u` uses undeclared are declared where it is
 * included, or (in a partial itself included in content) left to its
 * includer. */
static sf_status partial_prefixes(compiler *c, uint32_t u, size_t pos)
{
    sf_template *t = c->t;
    for (size_t i = 0; i < t->units[u].free_len;) {
        const char *p = t->units[u].free_pfx + i;
        size_t k = (size_t)((const char *)memchr(p, ' ', t->units[u].free_len - i) - p);
        if (!ns_lookup(c, p, (uint32_t)k)) {
            if (!partial_in_content(c))
                return cfail(c, pos, "partial '%s' uses the namespace prefix '%.*s', which is "
                                     "not declared where it is included",
                             t->units[u].name, (int)k, p);
            /* The list of u may be the one appended to (a recursive partial):
             * re-read it after. */
            if (free_add(t, c->unit, p, k) != 0)
                return nomem(t);
        }
        i += k + 1;
    }
    return SF_OK;
}

/* ---- tags --------------------------------------------------------------- */

static sf_status set_delimiters(compiler *c, const char *s, size_t n, size_t pos)
{
    trim(&s, &n);
    size_t i = 0;
    while (i < n && !is_blank(s[i]))
        i++;
    size_t olen = i;
    while (i < n && is_blank(s[i]))
        i++;
    const char *close = s + i;
    size_t clen = n - i;
    if (olen == 0 || clen == 0 || olen >= MAX_DELIM || clen >= MAX_DELIM)
        return cfail(c, pos, "invalid delimiters '%.*s': need two, like {{=<%% %%>=}}", (int)n,
                     s);
    for (size_t k = 0; k < clen; k++)
        if (is_blank(close[k]) || close[k] == '=')
            return cfail(c, pos, "invalid delimiters '%.*s'", (int)n, s);
    for (size_t k = 0; k < olen; k++)
        if (s[k] == '=')
            return cfail(c, pos, "invalid delimiters '%.*s'", (int)n, s);
    memcpy(c->otag, s, olen);
    c->otag[olen] = '\0';
    c->olen = olen;
    memcpy(c->ctag, close, clen);
    c->ctag[clen] = '\0';
    c->clen = clen;
    return SF_OK;
}

/* A new node of `type` named s[0..n); its index in *idx. */
static sf_status named_node(compiler *c, sf_node_type type, const char *s, size_t n, size_t pos,
                            uint32_t *idx)
{
    sf_node *nd = new_node(c, type, pos);
    if (!nd)
        return nomem(c->t);
    *idx = c->nnodes - 1;
    return parse_name(c, nd, s, n, pos);
}

static sf_status var_tag(compiler *c, char kind, const char *s, size_t n, size_t pos)
{
    uint32_t idx = 0;
    sf_status st = named_node(c, SF_N_VAR, s, n, pos, &idx);
    if (st != SF_OK)
        return st;
    sf_node *nd = &c->nodes[idx];
    if (c->xml)
        c->lx.flags |= SF_XF_STARTED; /* no XML declaration after a value */
    int raw = kind == '&' || kind == '{';
    if (raw && c->t->eff_mode != SF_TEMPLATE_XML) {
        nd->esc = SF_ESC_RAW;
    } else if (c->t->eff_mode == SF_TEMPLATE_TEXT) {
        nd->esc = SF_ESC_RAW;
    } else if (c->t->eff_mode == SF_TEMPLATE_HTML) {
        nd->esc = SF_ESC_HTML;
    } else if (!c->xml) {
        nd->esc = SF_ESC_TEXT; /* the markup already failed: the compile will */
    } else {
        sf_esc esc;
        const char *o = raw ? (kind == '&' ? "{{&" : "{{{") : "{{";
        const char *e = raw && kind == '{' ? "}}}" : "}}";
        if (sf_xml_context(&c->lx, &esc) != 0)
            return cfail(c, pos,
                         "%s%.*s%s sits in %s, where no value can go; put it in element "
                         "text, a quoted attribute value, a CDATA section or a comment",
                         o, (int)n, s, e, sf_xml_state_name(&c->lx));
        /* A raw value is written as it is: in element text or an attribute
         * value, data holding '<', '&' or an unbalanced tag would break the
         * document, which no check made before the data is read can
         * prevent. In CDATA sections and comments nothing is markup, so it
         * gets that context's writing, like {{x}}. */
        if (raw && (esc == SF_ESC_TEXT || esc == SF_ESC_ATTR))
            return cfail(c, pos,
                         "%s%.*s%s in %s would write the value unescaped, and data holding "
                         "'<', '&' or an unbalanced tag would break the feed; write {{%.*s}} "
                         "(escaped)%s, or declare the template plain text with "
                         "{{! sqlfeed-format: text }}",
                         o, (int)n, s, e, sf_xml_state_name(&c->lx), (int)n, s,
                         esc == SF_ESC_TEXT ? " or <![CDATA[{{x}}]]> (markup kept literal)" : "");
        nd->esc = (uint8_t)esc;
        /* The literal before the tag ends with part of "]]>" or "-->": the
         * value is written after a break (a closed and reopened CDATA
         * section, or a space) so neither it nor an empty value can complete
         * the token. In element text the lexer goes on counting the ']'s
         * through the tag (the value may be empty); a value never adds to
         * them, since it writes a ']' at its end as &#93;. */
        if ((c->lx.state == SF_XS_CDATA || c->lx.state == SF_XS_COMMENT) && c->lx.match) {
            nd->a = 1;
            c->lx.match = 0;
        }
    }
    return SF_OK;
}

/* A section or partial tag placed inside a "]]>", "-->" or "?>" that the
 * template's text is spelling (e.g. "]]{{#a}}{{/a}}>") would make whether
 * the token ends depend on the data; refuse it. */
static sf_status check_edge(compiler *c, size_t pos, const char *what)
{
    const sf_xml_lexer *lx = &c->lx;
    sf_xml_event ev;
    if (c->xml && sf_xml_flush(&c->lx, pos, &ev)) { /* a name ends at the tag */
        sf_status st = on_event(c, &ev);
        if (st != SF_OK)
            return st;
    }
    if (!c->xml || sf_xml_boundary_ok(lx))
        return SF_OK;
    if (lx->state == SF_XS_TEXT)
        return cfail(c, pos, "%s follows a ']' of element text: with what the section renders "
                             "(or leaves out) a ']]>' could form; move it away from the ']'",
                     what);
    if (lx->match && (lx->state == SF_XS_CDATA || lx->state == SF_XS_COMMENT || lx->state == SF_XS_PI)) {
        const char *token = lx->state == SF_XS_CDATA ? "]]>" : lx->state == SF_XS_COMMENT ? "-->" : "?>";
        return cfail(c, pos, "%s splits the '%s' that ends %s; move it away from the '%c'", what,
                     token, sf_xml_state_name(lx), token[0]);
    }
    return cfail(c, pos, "%s sits in %s, which it cannot split; put it in element text, "
                         "between attributes, in an attribute value, a CDATA section or a comment",
                 what, sf_xml_state_name(lx));
}

static sf_status open_section(compiler *c, char kind, const char *s, size_t n, size_t pos)
{
    sf_status est = check_edge(c, pos, "a section tag");
    if (est != SF_OK)
        return est;
    if (c->nopen == MAX_OPEN)
        return cfail(c, pos, "sections nested more than %d deep", MAX_OPEN);
    if (c->xml && kind == '#' && n == 4 && memcmp(s, "rows", 4) == 0 &&
        (c->lx.state == SF_XS_TAG || c->lx.state == SF_XS_ATTR_DQ || c->lx.state == SF_XS_ATTR_SQ))
        return cfail(c, pos, "{{#rows}} inside a tag would repeat its attributes (or its "
                             "attribute's value) once per row; put {{#rows}} around the element");
    uint32_t idx = 0;
    sf_status st = named_node(c, kind == '#' ? SF_N_SECTION : SF_N_INVERTED, s, n, pos, &idx);
    if (st != SF_OK)
        return st;
    if (grow(c->t->cref.census, (void **)&c->open, &c->capopen, c->nopen, sizeof *c->open) != 0)
        return nomem(c->t);
    /* {{#x}}..{{/x}}{{^x}} (or ^ then #): the second body follows what
     * preceded the first, since only one renders; between attributes, it
     * may then start without white space after the first body's value. */
    if (c->xml && c->last_at == idx && c->lx.state == SF_XS_TAG &&
        c->last_lx.state == SF_XS_TAG) {
        const sf_node *a = &c->nodes[c->last_node], *b = &c->nodes[idx];
        if (a->type != b->type && a->nparts && a->nparts == b->nparts &&
            memcmp(&c->t->parts[a->parts], &c->t->parts[b->parts], a->nparts * sizeof *c->t->parts) == 0)
            c->lx.sub = c->last_lx.sub;
    }
    c->lx.flags |= SF_XF_STARTED;
    c->open[c->nopen].node = idx;
    c->open[c->nopen].height = c->nelems;
    c->open[c->nopen].lx = c->lx;
    c->nopen++;
    return SF_OK;
}

/* The text of a node's name, for messages and comparisons: formatter
 * parts spelt as written (a formatter's spelling is unique: trunc150, not
 * trunc0150). */
size_t sf_tpl_node_name(const sf_template *t, const sf_node *nd, char *buf, size_t n)
{
    if (nd->nparts == 0)
        return (size_t)snprintf(buf, n, ".");
    size_t o = 0;
    buf[0] = '\0';
    for (uint16_t i = 0; i < nd->nparts && o < n; i++) {
        uint32_t p = t->parts[nd->parts + i];
        char fb[32];
        const char *name = p & SF_PART_FMT ? sf_fmt_spell(&t->fcalls[p & ~SF_PART_FMT], fb, sizeof fb)
                                           : t->syms[p].name;
        int k = snprintf(buf + o, n - o, "%s%s", i ? "." : "", name);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    return o < n ? o : n - 1;
}

static size_t node_name(const sf_template *t, const sf_node *nd, char *buf, size_t n)
{
    return sf_tpl_node_name(t, nd, buf, n);
}

/* A section whose body ends with `m` ']'s of element text, rendered again:
 * 1 when the body's start cannot complete "]]>" with them (values are
 * transparent: they may be empty, and never add a ']'). A body of nothing
 * but ']'s can pile up any number of them: what follows is read after two. */
static int body_may_follow(compiler *c, const open_sec *o, unsigned m)
{
    if (c->nodes[o->node].type == SF_N_INVERTED)
        return 1; /* renders at most once */
    for (uint32_t i = o->node + 1; i < c->nnodes; i++) {
        const sf_node *nd = &c->nodes[i];
        if (nd->type == SF_N_VAR)
            continue;
        if (nd->type != SF_N_TEXT)
            return 0;
        for (uint32_t k = 0; k < nd->b; k++) {
            char ch = c->src[nd->a + k];
            if (ch == ']')
                m = m < 2 ? m + 1 : 2;
            else if (ch == '>' && m == 2)
                return 0;
            else
                return 1;
        }
    }
    c->lx.match = 2;
    return 1;
}

static sf_status close_section(compiler *c, const char *s, size_t n, size_t pos)
{
    /* ']'s of element text before the end are checked below, against what
     * may follow them. */
    sf_status est = c->lx.state == SF_XS_TEXT ? SF_OK : check_edge(c, pos, "a section tag");
    if (est != SF_OK)
        return est;
    if (c->nopen == 0)
        return cfail(c, pos, "{{/%.*s}} closes no open section", (int)n, s);
    uint32_t idx = c->open[c->nopen - 1].node;
    char name[512];
    size_t k = node_name(c->t, &c->nodes[idx], name, sizeof name);
    if (k != n || memcmp(name, s, n) != 0) {
        char where[512];
        sf_tpl_where(c->t, &c->t->units[c->unit], c->nodes[idx].pos, where, sizeof where);
        return cfail(c, pos, "{{/%.*s}} does not close {{#%s}} opened at %s", (int)n, s, name,
                     where);
    }
    const open_sec *o = &c->open[c->nopen - 1];
    if (c->xml && !sf_xml_same_context(&o->lx, &c->lx))
        return cfail(c, pos,
                     "section {{#%s}} starts in %s but ends in %s; a section must leave the "
                     "XML context as it found it",
                     name, sf_xml_state_name(&o->lx), sf_xml_state_name(&c->lx));
    if (c->xml && (c->lx.flags & SF_XF_DOCTYPE) && !(o->lx.flags & SF_XF_DOCTYPE))
        return cfail(c, pos,
                     "section {{#%s}} holds a DOCTYPE (from a partial): it would appear once "
                     "per value or not at all; put the DOCTYPE before any section",
                     name);
    if (c->xml && c->nelems > o->height) {
        char where[512];
        xml_name top = c->elems[c->nelems - 1];
        where_at(c, top.off - 1, where, sizeof where);
        return cfail(c, pos,
                     "<%.*s> opened at %s is not closed before {{/%s}}: each section's body "
                     "must be balanced on its own",
                     NAME_ARG(top), where, name);
    }
    if (c->xml && c->lx.state == SF_XS_TEXT && c->lx.match &&
        !body_may_follow(c, o, c->lx.match))
        return cfail(c, pos,
                     "section {{#%s}} ends with ']' and may render again: with the start of its "
                     "body a ']]>' could form in element text; move the ']'",
                     name);
    if (c->xml)
        sf_xml_merge(&c->lx, &o->lx);
    c->last_node = idx, c->last_at = c->nnodes, c->last_lx = o->lx;
    c->nopen--;
    c->nodes[idx].b = c->nnodes;
    return SF_OK;
}

/* {{! sqlfeed-format: text }} (or xml) as the template's first tag: whether
 * the template is XML (checked, values escaped by context) or plain text
 * (values through the character filter only). */
static int blank_range(const char *s, size_t from, size_t to);

static sf_status format_pragma(compiler *c, const char *s, size_t n, size_t pos)
{
    static const char key[] = "sqlfeed-format:";
    if (n < sizeof key - 1 || memcmp(s, key, sizeof key - 1) != 0)
        return SF_OK;
    sf_template *t = c->t;
    if (t->mode == SF_TEMPLATE_HTML)
        return SF_OK; /* the spec mode: a comment is a comment */
    s += sizeof key - 1;
    n -= sizeof key - 1;
    trim(&s, &n);
    /* Only white space (and a byte-order mark opening the file) before it. */
    int first = c->unit == 0 && c->nopen == 0;
    for (uint32_t i = 0; first && i < c->nnodes; i++) {
        const sf_node *nd = &c->nodes[i];
        if (nd->type != SF_N_TEXT) {
            first = 0;
            break;
        }
        size_t a = nd->a, b = (size_t)nd->a + nd->b;
        if (a == 0 && b >= 3 && memcmp(c->src, "\xEF\xBB\xBF", 3) == 0)
            a = 3;
        for (size_t k = a; first && k < b; k++)
            first = is_blank(c->src[k]) || c->src[k] == '\n' || c->src[k] == '\r';
    }
    if (!first)
        return cfail(c, pos, "{{! sqlfeed-format: }} must be the template's first tag");
    if (n == 4 && memcmp(s, "text", 4) == 0)
        t->eff_mode = SF_TEMPLATE_TEXT;
    else if (n == 3 && memcmp(s, "xml", 3) == 0)
        t->eff_mode = SF_TEMPLATE_XML;
    else
        return cfail(c, pos, "sqlfeed-format '%.*s': use 'xml' or 'text'", (int)(n > 40 ? 40 : n), s);
    c->xml = t->eff_mode == SF_TEMPLATE_XML;
    return SF_OK;
}

static sf_status comment_tag(compiler *c, const char *s, size_t n, size_t pos)
{
    sf_template *t = c->t;
    trim(&s, &n);
    sf_status st = format_pragma(c, s, n, pos);
    if (st == SF_OK && c->unit != 0 && n >= 14 && memcmp(s, "sqlfeed-check:", 14) == 0)
        return cfail(c, pos, "sqlfeed-check in a partial: row checks go in the template's own "
                             "file");
    if (st != SF_OK || c->unit != 0)
        return st;
    char why[256];
    int rc = sf_tpl_rules_comment(t, s, n, why, sizeof why);
    if (rc == -2)
        return nomem(t);
    if (rc < 0)
        return cfail(c, pos, "%s", why);
    if (t->description)
        return SF_OK;
    static const char key[] = "sqlfeed:";
    if (n >= sizeof key - 1 && memcmp(s, key, sizeof key - 1) == 0) {
        s += sizeof key - 1;
        n -= sizeof key - 1;
        trim(&s, &n);
        t->description = sf_strndup(t->cref.census, SF_MEM_TEMPLATE, s, n);
        if (!t->description)
            return nomem(t);
    }
    return SF_OK;
}

/* ---- the scanner -------------------------------------------------------- */

static int blank_range(const char *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (!is_blank(s[i]))
            return 0;
    return 1;
}

static sf_status scan(compiler *c)
{
    const char *src = c->src;
    size_t len = c->len;
    size_t pos = 0, text_start = 0, line_start = 0, prev_tag_end = 0;
    sf_status st;

    /* A byte-order mark opening the template is not on its first line: a
     * tag after it may be standalone ({{! sqlfeed: ... }} then <?xml). */
    if (c->unit == 0 && c->t->eff_mode != SF_TEMPLATE_HTML && len >= 3 &&
        memcmp(src, "\xEF\xBB\xBF", 3) == 0) {
        if ((st = emit_text(c, 0, 3)) != SF_OK)
            return st;
        pos = text_start = line_start = prev_tag_end = 3;
    }

    for (;;) {
        const char *o = find(src + pos, len - pos, c->otag, c->olen);
        if (!o)
            break;
        size_t t0 = (size_t)(o - src);
        for (size_t i = pos; i < t0; i++)
            if (src[i] == '\n')
                line_start = i + 1;

        size_t p = t0 + c->olen;
        char kind = p < len ? src[p] : '\0';
        char close[MAX_DELIM + 1];
        size_t cl = 0;
        if (kind == '{' || kind == '=')
            close[cl++] = kind == '{' ? '}' : '=';
        memcpy(close + cl, c->ctag, c->clen);
        cl += c->clen;
        int sigil = strchr("#^/!>&{=", kind) != NULL && kind != '\0';
        size_t cs = p + (sigil ? 1 : 0);
        const char *e = find(src + cs, len - cs, close, cl);
        if (!e)
            return cfail(c, t0, "unclosed tag: no '%.*s' after '%s'", (int)cl, close, c->otag);
        size_t ce = (size_t)(e - src);
        size_t tag_end = ce + cl;
        const char *content = src + cs;
        size_t clen = ce - cs;
        /* Standalone: alone on its line but for blanks; the line goes. */
        int standalone = 0;
        size_t after = tag_end;
        if (strchr("#^/!>=", kind) && kind != '\0' && prev_tag_end <= line_start &&
            line_start <= t0 && blank_range(src, line_start, t0)) {
            size_t q = tag_end;
            while (q < len && is_blank(src[q]))
                q++;
            if (q == len)
                standalone = 1, after = len;
            else if (src[q] == '\n')
                standalone = 1, after = q + 1;
            else if (src[q] == '\r' && q + 1 < len && src[q + 1] == '\n')
                standalone = 1, after = q + 2;
        }
        if ((st = emit_text(c, text_start, standalone ? line_start : t0)) != SF_OK)
            return st;

        if (!standalone) /* a multi-line tag moves the line start */
            for (size_t i = t0; i < tag_end; i++)
                if (src[i] == '\n')
                    line_start = i + 1;

        const char *name = content;
        size_t nlen = clen;
        if (kind != '!')
            trim(&name, &nlen);
        /* Names, references and declarations are read from the source as
         * a whole: a tag inside one, even a comment, would be read in it. */
        if (c->xml && c->ns_value)
            return cfail(c, t0, "a Mustache tag in a namespace declaration's value: namespace "
                                "names must be literal, so that the names using them can be "
                                "checked");
        if (c->xml && (kind == '!' || kind == '=') && sf_xml_in_token(&c->lx))
            return cfail(c, t0, "a %s tag inside %s: it would split a name or token that is "
                                "read whole; move it after the white space or the '>' that "
                                "follows",
                         kind == '!' ? "comment" : "delimiter", sf_xml_state_name(&c->lx));
        switch (kind) {
        case '!':
            st = comment_tag(c, content, clen, t0);
            break;
        case '=':
            st = set_delimiters(c, content, clen, t0);
            break;
        case '#':
        case '^':
            st = open_section(c, kind, name, nlen, t0);
            break;
        case '/':
            st = close_section(c, name, nlen, t0);
            break;
        case '>': {
            uint32_t u = SF_NO_UNIT;
            const char *ind = standalone ? src + line_start : "";
            size_t ilen = standalone ? t0 - line_start : 0;
            uint32_t here = c->unit;
            st = check_edge(c, t0, "a partial");
            if (st == SF_OK && c->xml && c->lx.state == SF_XS_TAG)
                st = cfail(c, t0, "a partial inside a tag: its attributes could repeat the "
                                  "tag's; write them in the tag (sections may choose them)");
            if (st == SF_OK)
                st = partial_unit(c, name, nlen, ind, ilen, t0, &u);
            c->unit = here;
            if (st == SF_OK) {
                sf_node *nd = new_node(c, SF_N_PARTIAL, t0);
                if (!nd)
                    return nomem(c->t);
                nd->b = u;
                if (c->xml && u != SF_NO_UNIT) { /* go on where the partial ends */
                    uint8_t flags = c->lx.flags;
                    c->lx = c->t->units[u].xend;
                    c->lx.flags |= flags & (SF_XF_STARTED | SF_XF_DOCTYPE | SF_XF_BOM);
                    if ((st = partial_prefixes(c, u, t0)) != SF_OK)
                        return st;
                }
            }
            break;
        }
        default:
            st = var_tag(c, kind, name, nlen, t0);
            break;
        }
        if (st != SF_OK)
            return st;
        pos = text_start = prev_tag_end = standalone ? after : tag_end;
        if (standalone)
            line_start = after;
    }
    if ((st = emit_text(c, text_start, len)) != SF_OK)
        return st;
    if (c->nopen) {
        char name[512];
        node_name(c->t, &c->nodes[c->open[c->nopen - 1].node], name, sizeof name);
        return cfail(c, c->nodes[c->open[c->nopen - 1].node].pos,
                     "section {{#%s}} is never closed", name);
    }
    return SF_OK;
}

/* At the end of a unit: every element closed; the template ends after its
 * root element, a partial in the context it started in (or, started before
 * the root, after it: it held the root element). */
static sf_status finish_markup(compiler *c)
{
    const sf_unit *u = &c->t->units[c->unit];
    if (c->nelems) {
        char where[512];
        xml_name top = c->elems[c->nelems - 1];
        where_at(c, top.off - 1, where, sizeof where);
        return cfail(c, c->len, "<%.*s> opened at %s is never closed%s", NAME_ARG(top), where,
                     c->unit ? " in the partial: a partial must be balanced on its own" : "");
    }
    if (c->unit == 0) {
        if (c->lx.state != SF_XS_TEXT)
            return cfail(c, c->len, "the template ends inside %s", sf_xml_state_name(&c->lx));
        if (c->lx.level != 2)
            return cfail(c, c->len, "the template has no root element (or declare it plain "
                                    "text with {{! sqlfeed-format: text }})");
        return SF_OK;
    }
    sf_status st = check_edge(c, c->len, "the end of a partial");
    if (st != SF_OK)
        return st;
    if (!sf_xml_same_context(&u->xstart, &c->lx) &&
        !(u->xstart.state == SF_XS_TEXT && u->xstart.level == 0 && c->lx.state == SF_XS_TEXT &&
          c->lx.level == 2))
        return cfail(c, c->len, "partial starts in %s but ends in %s", sf_xml_state_name(&u->xstart),
                     sf_xml_state_name(&c->lx));
    sf_xml_merge(&c->lx, &u->xstart);
    return SF_OK;
}

static sf_status compile_unit(sf_template *t, uint32_t unit, int depth, int xml, int json_outer)
{
    compiler c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.json_outer = json_outer;
    c.unit = unit;
    c.src = t->units[unit].src;
    c.len = t->units[unit].srclen;
    memcpy(c.otag, "{{", 3);
    memcpy(c.ctag, "}}", 3);
    c.olen = c.clen = 2;
    c.last_at = UINT32_MAX;
    c.lx = t->units[unit].xstart;
    c.depth = depth;
    c.xml = xml && t->eff_mode == SF_TEMPLATE_XML;
    if (c.len > MAX_TEMPLATE_SIZE)
        return cfail(&c, 0, "template larger than %zu MiB, the limit", MAX_TEMPLATE_SIZE >> 20);
    t->units[unit].compiling = 1;
    sf_status st = scan(&c);
    if (st == SF_OK && c.markup_failed) {
        t->err = c.markup;
        st = SF_ERR_TEMPLATE;
    }
    if (st == SF_OK && c.xml)
        st = finish_markup(&c);
    /* t->units may have moved while partials compiled; index again. */
    t->units[unit].compiling = 0;
    t->units[unit].xend = c.lx;
    t->units[unit].nodes = c.nodes;
    t->units[unit].nnodes = c.nnodes;
    sf_census *cs = t->cref.census;
    sf_dealloc(cs, c.open);
    sf_dealloc(cs, c.elems);
    sf_dealloc(cs, c.attrs);
    sf_dealloc(cs, c.guards);
    sf_dealloc(cs, c.binds);
    sf_dealloc(cs, c.nsbuf);
    return st;
}

/* ---- names the template reads ------------------------------------------- */

#define WALK_BUDGET 1000000 /* nodes visited by one walk */

typedef struct walker {
    const sf_template *t;
    uint8_t *active; /* per unit: on the current path (a recursive partial) */
    size_t budget;
    /* in_json: inside a section on a JSON value, where a name may be a
     * key of the value rather than a column or parameter. */
    sf_status (*visit)(struct walker *w, const sf_unit *u, const sf_node *nd, int in_rows,
                       int in_json);
    const char *rows;
    /* The section over the run's first row ({{#first}}): names read in it
     * are columns, as in the rows (NULL: none; the name lists set it). */
    const char *first;
    void *ud;
} walker;

static int is_rows(const sf_template *t, const sf_node *nd, const char *rows)
{
    return nd->nparts == 1 && strcmp(t->syms[t->parts[nd->parts]].name, rows) == 0;
}

/* Visits every node as rendering would reach it: a partial included twice
 * is walked twice (so two rows sections through one partial are seen), a
 * partial that includes itself once per path. */
static sf_status walk(walker *w, uint32_t unit, uint32_t from, uint32_t to, int in_rows,
                      int in_json)
{
    const sf_unit *u = &w->t->units[unit];
    for (uint32_t i = from; i < to;) {
        const sf_node *nd = &u->nodes[i];
        sf_status st;
        if (w->budget-- == 0)
            return SF_ERR_TEMPLATE;
        switch ((sf_node_type)nd->type) {
        case SF_N_TEXT:
            i++;
            break;
        case SF_N_VAR:
            if ((st = w->visit(w, u, nd, in_rows, in_json)) != SF_OK)
                return st;
            i++;
            break;
        case SF_N_SECTION:
        case SF_N_INVERTED:
            if ((st = w->visit(w, u, nd, in_rows, in_json)) != SF_OK)
                return st;
            if ((st = walk(w, unit, i + 1, nd->b,
                           in_rows || (nd->type == SF_N_SECTION &&
                                       (is_rows(w->t, nd, w->rows) ||
                                        (w->first && is_rows(w->t, nd, w->first)))),
                           in_json || (nd->type == SF_N_SECTION && has_json(w->t, nd))))
                != SF_OK)
                return st;
            i = nd->b;
            break;
        case SF_N_PARTIAL:
            if (nd->b != SF_NO_UNIT && !w->active[nd->b]) {
                w->active[nd->b] = 1;
                st = walk(w, nd->b, 0, w->t->units[nd->b].nnodes, in_rows, in_json);
                w->active[nd->b] = 0;
                if (st != SF_OK)
                    return st;
            }
            i++;
            break;
        }
    }
    return SF_OK;
}

static sf_status run_walk(walker *w)
{
    const sf_template *t = w->t;
    w->active = sf_calloc(t->cref.census, SF_MEM_TEMPLATE, t->nunits, 1);
    if (!w->active)
        return SF_ERR_NOMEM;
    w->active[0] = 1;
    w->budget = WALK_BUDGET;
    sf_status st = walk(w, 0, 0, t->units[0].nnodes, 0, 0);
    sf_dealloc(t->cref.census, w->active);
    return st;
}

static sf_status list_add(const sf_template *t, char ***list, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], name) == 0)
            return SF_OK;
    char **p = sf_realloc(t->cref.census, SF_MEM_TEMPLATE, *list, (*n + 1) * sizeof *p);
    if (!p)
        return SF_ERR_NOMEM;
    *list = p;
    p[*n] = sf_strdup(t->cref.census, SF_MEM_TEMPLATE, name);
    if (!p[*n])
        return SF_ERR_NOMEM;
    (*n)++;
    return SF_OK;
}

/* A name's first part is what it reads (a column, a parameter); the parts
 * after it are formatters or keys of a JSON value. Names inside a section
 * on a JSON value may be its keys: not collected. */
static sf_status collect_visit(walker *w, const sf_unit *u, const sf_node *nd, int in_rows,
                               int in_json)
{
    (void)u;
    sf_template *t = w->ud;
    if (nd->nparts == 0 || is_rows(t, nd, w->rows) || in_json ||
        (nd->type == SF_N_SECTION && !in_rows && is_rows(t, nd, w->first)))
        return SF_OK;
    const char *first = t->syms[t->parts[nd->parts]].name;
    return in_rows ? list_add(t, &t->row_names, &t->nrow_names, first)
                   : list_add(t, &t->root_names, &t->nroot_names, first);
}

/* Names read inside rows that are also read outside are parameters; keep
 * them out of the column list. */
static sf_status collect_names(sf_template *t)
{
    walker w = {.t = t, .visit = collect_visit, .rows = "rows", .first = "first", .ud = t};
    sf_status st = run_walk(&w);
    if (st == SF_ERR_TEMPLATE)
        return sf_fail(&t->err, st, "%s: partials include each other more than %d nodes deep",
                       t->units[0].name, WALK_BUDGET);
    if (st != SF_OK)
        return st;
    size_t k = 0;
    for (size_t i = 0; i < t->nrow_names; i++) {
        int outside = 0;
        for (size_t j = 0; j < t->nroot_names; j++)
            outside |= strcmp(t->row_names[i], t->root_names[j]) == 0;
        if (outside)
            sf_dealloc(t->cref.census, t->row_names[i]);
        else
            t->row_names[k++] = t->row_names[i];
    }
    t->nrow_names = k;
    return SF_OK;
}

/* ---- the render-time name check ----------------------------------------- */

typedef struct check_ctx {
    sf_name_pred is_col, is_root;
    void *ud;
    sf_errbuf *err;
    char missing[SF_ERRMSG_SIZE];
    size_t mlen;
    unsigned nmissing;
    char rows_at[512];
    sf_status fatal;
} check_ctx;

static void add_missing(check_ctx *k, const char *name, const char *where)
{
    /* Each name once, with the first place it is read. */
    char needle[300];
    snprintf(needle, sizeof needle, "%s (", name);
    for (const char *p = k->missing; (p = strstr(p, needle)) != NULL; p++)
        if (p == k->missing || (p >= k->missing + 2 && p[-2] == ',' && p[-1] == ' '))
            return;
    k->nmissing++;
    int n = snprintf(k->missing + k->mlen, sizeof k->missing - k->mlen, "%s%s (%s)",
                     k->mlen ? ", " : "", name, where);
    if (n > 0)
        k->mlen = k->mlen + (size_t)n < sizeof k->missing ? k->mlen + (size_t)n
                                                           : sizeof k->missing - 1;
}

static sf_status check_visit(walker *w, const sf_unit *u, const sf_node *nd, int in_rows,
                             int in_json)
{
    check_ctx *k = w->ud;
    const sf_template *t = w->t;
    if (nd->nparts == 0)
        return SF_OK;
    char where[512], name[512];
    sf_tpl_where(t, u, nd->pos, where, sizeof where);
    node_name(t, nd, name, sizeof name);
    if (is_rows(t, nd, w->rows)) {
        if (nd->type == SF_N_VAR)
            return sf_fail(k->err, SF_ERR_TEMPLATE,
                           "%s: {{%s}} is the list of rows; iterate it with {{#%s}}...{{/%s}}",
                           where, name, name, name);
        if (nd->type == SF_N_SECTION && in_rows)
            return sf_fail(k->err, SF_ERR_TEMPLATE,
                           "%s: {{#%s}} inside {{#%s}}: the query's rows stream once and "
                           "cannot be iterated inside themselves",
                           where, name, name);
        if (nd->type == SF_N_SECTION) {
            if (k->rows_at[0])
                return sf_fail(k->err, SF_ERR_TEMPLATE,
                               "%s: {{#%s}} again (first at %s): the query's rows stream "
                               "once; iterate them in one section",
                               where, name, k->rows_at);
            snprintf(k->rows_at, sizeof k->rows_at, "%s", where);
        }
        return SF_OK;
    }
    /* Inside a section on a JSON value a name may be one of its keys,
     * which no check before the data can know. */
    if (in_json)
        return SF_OK;
    if (t->eff_mode == SF_TEMPLATE_HTML && nd->nparts > 1) {
        add_missing(k, name, where); /* no value has members */
        return SF_OK;
    }
    /* A feed template's later parts are formatters (or keys after json):
     * the first part is the name to provide. */
    if (nd->nparts > 1)
        snprintf(name, sizeof name, "%s", t->syms[t->parts[nd->parts]].name);
    if ((in_rows && k->is_col(k->ud, name)) || k->is_root(k->ud, name))
        return SF_OK;
    if (!in_rows && k->is_col(k->ud, name)) {
        /* A column, read where there is no row. */
        char w2[600];
        snprintf(w2, sizeof w2, "%s: a column, and columns are read inside {{#rows}}", where);
        add_missing(k, name, w2);
        return SF_OK;
    }
    add_missing(k, name, where);
    return SF_OK;
}

sf_status sf_tpl_check(const sf_template *t, const char *rows_name, sf_name_pred is_col,
                       sf_name_pred is_root, void *ud, sf_errbuf *err)
{
    check_ctx k;
    memset(&k, 0, sizeof k);
    k.is_col = is_col;
    k.is_root = is_root;
    k.ud = ud;
    k.err = err;
    walker w = {.t = t, .visit = check_visit, .rows = rows_name, .ud = &k};
    sf_status st = run_walk(&w);
    if (st == SF_ERR_NOMEM)
        return sf_fail(err, st, "out of memory checking the template");
    if (st == SF_ERR_TEMPLATE && !err->msg[0])
        return sf_fail(err, st, "the template's partials are too many to check");
    if (st != SF_OK)
        return st;
    if (k.nmissing)
        return sf_fail(err, SF_ERR_NAME,
                       "the template reads %u name%s that no column, parameter or built-in "
                       "provides: %s",
                       k.nmissing, k.nmissing == 1 ? "" : "s", k.missing);
    return SF_OK;
}

/* ---- public ------------------------------------------------------------- */

static void template_clear(sf_template *t)
{
    sf_census *cs = t->cref.census;
    for (uint32_t i = 0; i < t->nunits; i++) {
        sf_dealloc(cs, t->units[i].name);
        sf_dealloc(cs, t->units[i].label);
        sf_dealloc(cs, t->units[i].src);
        sf_dealloc(cs, t->units[i].indent);
        sf_dealloc(cs, t->units[i].nodes);
        sf_dealloc(cs, t->units[i].free_pfx);
    }
    sf_dealloc(cs, t->units);
    for (uint32_t i = 0; i < t->nsyms; i++)
        sf_dealloc(cs, t->syms[i].name);
    sf_dealloc(cs, t->syms);
    sf_dealloc(cs, t->parts);
    sf_dealloc(cs, t->fcalls);
    t->fcalls = NULL;
    t->nfcalls = t->capfcalls = 0;
    sf_tpl_rules_free(t);
    sf_dealloc(cs, t->description);
    sf_dealloc(cs, t->dir);
    for (size_t i = 0; i < t->nrow_names; i++)
        sf_dealloc(cs, t->row_names[i]);
    for (size_t i = 0; i < t->nroot_names; i++)
        sf_dealloc(cs, t->root_names[i]);
    sf_dealloc(cs, t->row_names);
    sf_dealloc(cs, t->root_names);
    t->units = NULL;
    t->syms = NULL;
    t->parts = NULL;
    t->description = t->dir = NULL;
    t->row_names = t->root_names = NULL;
    t->nunits = t->capunits = t->nsyms = t->capsyms = t->nparts = t->capparts = 0;
    t->nrow_names = t->nroot_names = 0;
    t->builtin = NULL;
    t->partial_fn = NULL;
    t->partial_ud = NULL;
    t->loaded = 0;
}

sf_template *sf_template_create(sf_census *census, sf_template_mode mode)
{
    sf_template *t = SF_HANDLE_CREATE(sf_template, census);
    if (!t)
        return NULL;
    t->mode = mode == SF_TEMPLATE_HTML || mode == SF_TEMPLATE_TEXT ? mode : SF_TEMPLATE_XML;
    t->eff_mode = t->mode;
    return t;
}

void sf_template_free(sf_template *t)
{
    if (!t)
        return;
    template_clear(t);
    SF_HANDLE_FREE(sf_template, t);
}

/* Compiles `src` (adopted: census memory) as unit 0. */
static sf_status load(sf_template *t, const char *name, char *src, size_t len)
{
    uint32_t u;
    sf_status st = add_unit(t, name, strlen(name), &u);
    if (st != SF_OK) {
        sf_dealloc(t->cref.census, src);
        return st;
    }
    t->units[u].src = src;
    t->units[u].srclen = len;
    memset(&t->units[u].xstart, 0, sizeof t->units[u].xstart);
    t->units[u].xend = t->units[u].xstart;
    st = compile_unit(t, u, 0, 1, 0);
    if (st == SF_OK && (st = collect_names(t)) == SF_ERR_NOMEM)
        st = nomem(t);
    if (st != SF_OK) {
        /* Keep the message, drop the half-built template. */
        sf_errbuf keep = t->err;
        template_clear(t);
        t->err = keep;
        return st;
    }
    t->loaded = 1;
    return SF_OK;
}

static sf_status begin_load(sf_template *t)
{
    if (!t)
        return SF_ERR_ARG;
    sf_err_clear(&t->err);
    if (t->loaded)
        template_clear(t);
    t->eff_mode = t->mode;
    return SF_OK;
}

sf_status sf_template_load_file(sf_template *t, const char *path)
{
    sf_status st = begin_load(t);
    if (st != SF_OK)
        return st;
    if (!path)
        return sf_fail(&t->err, SF_ERR_ARG, "no template path");
    char *src;
    size_t len;
    /* Not found or not readable is a usage error (like an unknown built-in);
     * found but broken, a template error. */
    int rc = read_file(t->cref.census, path, &src, &len);
    if (rc == 0)
        return sf_fail(&t->err, SF_ERR_ARG, "cannot read template %s: no such file", path);
    if (rc < 0 && errno == ENOMEM)
        return sf_fail(&t->err, SF_ERR_NOMEM, "out of memory reading template %s", path);
    if (rc < 0 && errno == EFBIG)
        return sf_fail(&t->err, SF_ERR_TEMPLATE, "template %s is larger than %zu MiB, the limit",
                       path, MAX_TEMPLATE_SIZE >> 20);
    if (rc < 0)
        return sf_fail(&t->err, SF_ERR_ARG, "cannot read template %s: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    t->dir = slash ? sf_strndup(t->cref.census, SF_MEM_TEMPLATE, path,
                                slash == path ? 1 : (size_t)(slash - path))
                   : sf_strdup(t->cref.census, SF_MEM_TEMPLATE, ".");
    if (!t->dir) {
        sf_dealloc(t->cref.census, src);
        return nomem(t);
    }
    return load(t, path, src, len);
}

sf_status sf_template_load_builtin(sf_template *t, const char *name)
{
    sf_status st = begin_load(t);
    if (st != SF_OK)
        return st;
    size_t len;
    const char *text = name ? sf_builtin_template_text(name, &len) : NULL;
    if (!text)
        return sf_fail(&t->err, SF_ERR_ARG, "no built-in template named '%s' (see 'sqlfeed "
                                            "templates')", name ? name : "(null)");
    char *src = sf_strndup(t->cref.census, SF_MEM_TEMPLATE, text, len);
    if (!src)
        return nomem(t);
    t->builtin = name; /* partials of a built-in are built-ins; only while loading */
    st = load(t, name, src, len);
    t->builtin = NULL;
    return st;
}

sf_status sf_template_load_string(sf_template *t, const char *name, const char *text,
                                  size_t len, sf_partial_fn partial, void *ud)
{
    sf_status st = begin_load(t);
    if (st != SF_OK)
        return st;
    if (!text)
        return sf_fail(&t->err, SF_ERR_ARG, "no template text");
    char *src = sf_strndup(t->cref.census, SF_MEM_TEMPLATE, text, len);
    if (!src)
        return nomem(t);
    t->partial_fn = partial;
    t->partial_ud = ud;
    st = load(t, name ? name : "(string)", src, len);
    t->partial_fn = NULL;
    t->partial_ud = NULL;
    return st;
}

size_t sf_template_row_name_count(const sf_template *t) { return t ? t->nrow_names : 0; }
const char *sf_template_row_name(const sf_template *t, size_t i)
{
    return t && i < t->nrow_names ? t->row_names[i] : NULL;
}
size_t sf_template_root_name_count(const sf_template *t) { return t ? t->nroot_names : 0; }
const char *sf_template_root_name(const sf_template *t, size_t i)
{
    return t && i < t->nroot_names ? t->root_names[i] : NULL;
}
const char *sf_template_description(const sf_template *t)
{
    return t && t->description ? t->description : "";
}
/* The path unit u was read from, or NULL (a file template's units: the
 * template by its name, partials by their label). */
static const char *unit_file(const sf_template *t, uint32_t u)
{
    if (!t->dir)
        return NULL;
    return u == 0 ? t->units[0].name : t->units[u].label;
}

/* Whether unit u is the first one read from its file (a partial is compiled
 * once per indentation and context, from the same file). */
static int first_of_file(const sf_template *t, uint32_t u)
{
    const char *f = unit_file(t, u);
    if (!f)
        return 0;
    for (uint32_t v = 0; v < u; v++) {
        const char *g = unit_file(t, v);
        if (g && strcmp(f, g) == 0)
            return 0;
    }
    return 1;
}

size_t sf_template_file_count(const sf_template *t)
{
    size_t n = 0;
    for (uint32_t u = 0; t && t->loaded && u < t->nunits; u++)
        n += (size_t)first_of_file(t, u);
    return n;
}

const char *sf_template_file(const sf_template *t, size_t i)
{
    for (uint32_t u = 0; t && t->loaded && u < t->nunits; u++)
        if (first_of_file(t, u) && i-- == 0)
            return unit_file(t, u);
    return NULL;
}

const char *sf_template_errmsg(const sf_template *t) { return t ? t->err.msg : ""; }

const char *sf_builtin_template_name(size_t i)
{
    return i < sf_builtin_count ? sf_builtins[i].name : NULL;
}

static const sf_builtin *builtin_find(const char *name)
{
    for (size_t i = 0; i < sf_builtin_count; i++)
        if (strcmp(sf_builtins[i].name, name) == 0)
            return &sf_builtins[i];
    return NULL;
}

const char *sf_builtin_template_text(const char *name, size_t *len)
{
    const sf_builtin *b = name ? builtin_find(name) : NULL;
    if (b && len)
        *len = b->len;
    return b ? b->text : NULL;
}

const char *sf_builtin_template_query(const char *name)
{
    const sf_builtin *b = name ? builtin_find(name) : NULL;
    return b ? b->query : NULL;
}
