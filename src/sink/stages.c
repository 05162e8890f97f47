/* stages.c: the stage table and the chain builder.
 *
 * A chain is, head to tail:  [hop] -> [compressor] -> file sink.
 * The compressor is a row of `codecs` below (one file defining its open
 * function plus one row adds one); the hop (src/sink/hop.c) moves the rest
 * of the chain onto a writer thread. */
#include <string.h>

#include "sink.h"

/* hop.c (declared here, its one caller, until sink.h has them). */

static const sf_stage_type codecs[] = {
    /* name, suffix, levels min/max/default/best, constructor */
    {"gzip", ".gz", 1, 9, 1, 9, sf_stage_gzip_open},
    {"zstd", ".zst", 1, 19, 3, 19, sf_stage_zstd_open},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

const sf_stage_type *sf_stage_type_find(const char *name)
{
    for (const sf_stage_type *t = codecs; t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

const sf_stage_type *sf_stage_type_by_suffix(const char *path)
{
    size_t n = strlen(path);
    for (const sf_stage_type *t = codecs; t->name; t++) {
        size_t k = strlen(t->suffix);
        if (n > k && !strcmp(path + n - k, t->suffix))
            return t;
    }
    return NULL;
}

const char *sf_stage_type_names(void) { return "gzip, zstd"; }

void sf_stage_chain_free(sf_stage *head)
{
    while (head) {
        sf_stage *s = head;
        head = s->next;
        s->vt->destroy(s);
    }
}

sf_stage *sf_stage_chain_trim(sf_stage *head)
{
    while (head && head->next) {
        sf_stage *s = head;
        head = s->next;
        s->vt->destroy(s);
    }
    return head;
}

sf_stage *sf_stage_chain_tail(sf_stage *head)
{
    while (head && head->next)
        head = head->next;
    return head;
}

sf_status sf_stage_chain_finish(sf_stage *head)
{
    for (sf_stage *s = head; s; s = s->next) {
        sf_status st = s->vt->finish(s);
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}

void sf_stage_chain_abort(sf_stage *head)
{
    for (sf_stage *s = head; s; s = s->next)
        s->vt->abort(s);
}

/* The level a codec runs at, from the options: SF_ERR_ARG when out of its
 * range (the option accepted any number: the codec was not known yet). */
static sf_status codec_level(sf_output *o, const sf_stage_type *t, int *level)
{
    if (o->opt.level_best)
        *level = t->level_best;
    else if (o->opt.level < 0)
        *level = t->level_default;
    else if (o->opt.level < t->level_min || o->opt.level > t->level_max)
        return sf_fail(&o->err, SF_ERR_ARG, "level %d is out of range for %s (%d-%d, or best)",
                       o->opt.level, t->name, t->level_min, t->level_max);
    else
        *level = o->opt.level;
    return SF_OK;
}

sf_status sf_stage_chain_open(sf_output *o, const char *path, int fd, const char *label,
                              sf_stage **headp)
{
    *headp = NULL;
    /* "auto": by the path's suffix; a descriptor has none, so it stays
     * plain unless a codec is asked for. */
    const sf_stage_type *codec =
        o->opt.compress_auto ? (path ? sf_stage_type_by_suffix(path) : NULL) : o->opt.compress;
    int level = 0;
    sf_status st = codec ? codec_level(o, codec, &level) : SF_OK;
    if (st != SF_OK)
        return st;
    sf_stage *head = NULL;
    st = sf_sink_file_open(o, &head, path, fd, label, o->opt.sync_step, o->opt.cache_keep);
    if (st != SF_OK)
        return st;
    if (codec) {
        sf_stage *c = NULL;
        if ((st = codec->open(o, level, &c)) != SF_OK) {
            sf_stage_chain_free(head);
            return st;
        }
        c->next = head;
        head = c;
    }
    o->codec = codec;
    /* The hop (src/sink/hop.c): with o->opt.writer SF_WRITER_THREAD, in
     * front of a regular file, it runs the compressor and the file sink on a
     * writer thread. */
    if (o->opt.writer == SF_WRITER_THREAD && sf_stage_hop_wanted(sf_stage_chain_tail(head), fd)) {
        sf_stage *h = NULL;
        if ((st = sf_stage_hop_open(o, &h)) != SF_OK) {
            sf_stage_chain_free(head);
            return st;
        }
        if (h) { /* NULL: no thread could be made; inline */
            h->next = head;
            head = h;
        }
    }
    *headp = head;
    return SF_OK;
}
