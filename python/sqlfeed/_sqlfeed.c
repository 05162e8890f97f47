/* _sqlfeed.c: the CPython extension behind the `sqlfeed` package, written
 * against the public header (include/sqlfeed.h) only.
 *
 * The render (sf_render_execute: one scan into every output added with
 * sf_render_add_output, split into parts with sf_output_open_parts, with
 * an index over them from sf_render_add_index; then sf_render_commit,
 * which publishes them all or none) runs on a worker thread that never
 * touches Python. The calling thread releases the GIL and
 * waits for it; every `interval` seconds (0.1 by default) it takes the GIL
 * back, runs PyErr_CheckSignals() (so Ctrl-C raises KeyboardInterrupt in the
 * main thread) and the `progress` callback. When either raises, it cancels
 * the render (sf_render_cancel, sf_source_cancel, sf_output_cancel), waits
 * for the worker, discards the temporary files and re-raises that exception:
 * nothing is published. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sqlfeed.h"

static PyObject *Error;
static PyObject *status_class[SF_ERR_INVALID + 1];

/* Raises the exception class for `st` with .status and .message. */
static PyObject *raise_status(sf_status st, const char *msg)
{
    PyObject *cls = st >= 0 && st <= SF_ERR_INVALID && status_class[st] ? status_class[st] : Error;
    if (!msg || !*msg)
        msg = sf_strerror(st);
    PyObject *exc = PyObject_CallFunction(cls, "s", msg);
    if (!exc)
        return NULL;
    PyObject *s = PyLong_FromLong((long)st), *m = PyUnicode_FromString(msg);
    if (!s || !m || PyObject_SetAttrString(exc, "status", s) < 0 ||
        PyObject_SetAttrString(exc, "message", m) < 0) {
        Py_XDECREF(s);
        Py_XDECREF(m);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(s);
    Py_DECREF(m);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

enum phase { PHASE_OPEN, PHASE_PREPARE, PHASE_RENDER };

struct doc;
static void cancel_docs(struct doc *docs, size_t n);

struct job {
    enum phase phase;
    const char *db, *sql;
    sf_render *r;
    sf_source *src;
    struct doc *docs; /* the render's outputs and indexes, cancelled with it */
    size_t ndocs;
    sf_status st;
    int done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker(void *p)
{
    struct job *j = p;
    sf_status st;
    if (j->phase == PHASE_OPEN)
        st = sf_source_open(j->src, j->db);
    else if (j->phase == PHASE_PREPARE)
        st = sf_source_prepare(j->src, j->sql);
    else if ((st = sf_render_execute(j->r, j->src)) == SF_OK)
        st = sf_render_commit(j->r);
    pthread_mutex_lock(&j->mu);
    j->st = st;
    j->done = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static PyObject *progress_dict(sf_watch *w);

/* Runs j->phase on a worker thread; the calling thread waits with the GIL
 * released and, every `interval` seconds, checks signals and calls
 * `progress` (when given, with the watch's snapshot). Returns 0 when the
 * phase ended by itself (j->st its status), -1 when a Python exception
 * (set) cancelled it, -2 when the thread could not start (OSError set). */
static int run_phase(struct job *j, double interval, PyObject *progress, sf_watch *watch)
{
    pthread_t tid;
    j->done = 0;
    int perr = pthread_create(&tid, NULL, worker, j);
    if (perr) {
        errno = perr;
        PyErr_SetFromErrno(PyExc_OSError);
        return -2;
    }
    int cancelled = 0;
    for (;;) {
        int finished;
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&j->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long ns = dl.tv_nsec + (long long)(interval * 1e9);
        dl.tv_sec += ns / 1000000000LL;
        dl.tv_nsec = ns % 1000000000LL;
        while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &dl) != ETIMEDOUT)
            ;
        finished = j->done;
        pthread_mutex_unlock(&j->mu);
        Py_END_ALLOW_THREADS
        if (finished)
            break;
        if (cancelled)
            continue; /* cancelled: wait for the worker to stop */
        int failed = PyErr_CheckSignals() < 0;
        if (!failed && progress && watch) {
            PyObject *d = progress_dict(watch);
            PyObject *rv = d ? PyObject_CallOneArg(progress, d) : NULL;
            Py_XDECREF(d);
            failed = rv == NULL;
            Py_XDECREF(rv);
        }
        if (failed) {
            cancelled = 1;
            if (j->r)
                sf_render_cancel(j->r);
            sf_source_cancel(j->src);
            cancel_docs(j->docs, j->ndocs);
        }
    }
    pthread_join(tid, NULL);
    return cancelled ? -1 : 0;
}

static PyObject *progress_dict(sf_watch *w)
{
    sf_watch_progress p;
    sf_watch_get_progress(w, &p);
    return Py_BuildValue("{s:d,s:K,s:d,s:K,s:K,s:K,s:K,s:d,s:d}", "elapsed", p.elapsed, "rows",
                         (unsigned long long)p.rows, "rate", p.rate, "bytes",
                         (unsigned long long)p.bytes, "rss", (unsigned long long)p.rss,
                         "peak_rss", (unsigned long long)p.peak_rss, "total",
                         (unsigned long long)p.total, "percent", p.percent, "eta", p.eta);
}

static PyObject *census_dict(sf_census *c)
{
    PyObject *d = PyDict_New();
    for (int t = 0; d && t < SF_MEM_TYPE_COUNT; t++) {
        sf_mem_stat s;
        if (sf_census_stat(c, (sf_mem_type)t, &s) != SF_OK)
            continue;
        PyObject *v = Py_BuildValue("{s:K,s:K,s:K,s:K}", "count", (unsigned long long)s.count,
                                    "bytes", (unsigned long long)s.bytes, "peak_bytes",
                                    (unsigned long long)s.peak_bytes, "allocs",
                                    (unsigned long long)s.allocs);
        if (!v || PyDict_SetItemString(d, s.name, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

static int is_file_template(const char *name)
{
    return sf_builtin_template_text(name, NULL) == NULL;
}

/* A template file's own query: NAME.sql beside NAME.mustache (or NAME). */
static char *own_query_file(const char *tpl_path)
{
    size_t n = strlen(tpl_path);
    const char *suffix = ".mustache";
    size_t sl = strlen(suffix);
    if (n > sl && !strcmp(tpl_path + n - sl, suffix))
        n -= sl;
    char *path = malloc(n + 5);
    if (!path)
        return NULL;
    memcpy(path, tpl_path, n);
    memcpy(path + n, ".sql", 5);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

/* One document of the scan: its template and output, and the index over
 * its parts when it has one. The strings belong to the outputs tuple the
 * caller passed (held for the call). */
struct doc {
    const char *tname, *path, *parts, *itname, *ipath, *base_url, *lastmod;
    PyObject *opts; /* a dict for sf_output_set_option, or NULL */
    sf_template *tpl, *itpl;
    sf_output *out, *iout;
    int file_tpl, ifile_tpl;
};

/* Applies a dict of options to the render (out NULL) or to an output:
 * names and values through str(). 0, or -1 with an exception set. */
static int apply_options(PyObject *o, const char *what, sf_render *r, sf_output *out,
                         sf_source *src)
{
    if (!o || o == Py_None)
        return 0;
    if (!PyDict_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a dict", what);
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o, &pos, &k, &v)) {
        PyObject *ks = PyObject_Str(k), *vs = PyObject_Str(v);
        const char *kc = ks ? PyUnicode_AsUTF8(ks) : NULL, *vc = vs ? PyUnicode_AsUTF8(vs) : NULL;
        sf_status st = !kc || !vc ? SF_OK
                       : src      ? sf_source_set_option(src, kc, vc)
                       : out      ? sf_output_set_option(out, kc, vc)
                                  : sf_render_set_option(r, kc, vc);
        Py_XDECREF(ks);
        Py_XDECREF(vs);
        if (!kc || !vc)
            return -1;
        if (st != SF_OK) {
            raise_status(st, src ? sf_source_errmsg(src)
                             : out ? sf_output_errmsg(out)
                                   : sf_render_errmsg(r));
            return -1;
        }
    }
    return 0;
}

/* Parameters: a mapping of str to str (other values through str()); None or
 * NULL: none. 0, or -1 with the exception set. */
static int set_params(sf_render *r, PyObject *params)
{
    if (!params || params == Py_None)
        return 0;
    if (!PyDict_Check(params)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(params, &pos, &k, &v)) {
        PyObject *ks = PyObject_Str(k), *vs = PyObject_Str(v);
        const char *kc = ks ? PyUnicode_AsUTF8(ks) : NULL, *vc = vs ? PyUnicode_AsUTF8(vs) : NULL;
        sf_status st = kc && vc ? sf_render_set_param(r, kc, vc) : SF_OK;
        Py_XDECREF(ks);
        Py_XDECREF(vs);
        if (!kc || !vc)
            return -1;
        if (st != SF_OK) {
            raise_status(st, sf_render_errmsg(r));
            return -1;
        }
    }
    return 0;
}

static sf_status load_template(sf_template *tpl, const char *name, int file)
{
    sf_status st;
    Py_BEGIN_ALLOW_THREADS
    st = file ? sf_template_load_file(tpl, name) : sf_template_load_builtin(tpl, name);
    Py_END_ALLOW_THREADS
    return st;
}

/* What one document did: its file (the index's for a set with one, None
 * for a set without), parts pattern, rows written and skipped, bytes, and
 * each part's path, rows and bytes. */
static PyObject *doc_dict(sf_render *r, const struct doc *d)
{
    size_t n = sf_output_part_count(d->out);
    PyObject *parts = PyList_New(0);
    for (size_t i = 0; parts && i < n; i++) {
        const char *pp = sf_output_part_path(d->out, i);
        PyObject *p = Py_BuildValue("{s:s,s:K,s:K}", "path", pp ? pp : "", "rows",
                                    (unsigned long long)sf_output_part_rows(d->out, i), "bytes",
                                    (unsigned long long)sf_output_part_bytes(d->out, i));
        if (!p || PyList_Append(parts, p) < 0)
            Py_CLEAR(parts);
        Py_XDECREF(p);
    }
    if (!parts)
        return NULL;
    PyObject *index;
    if (d->iout)
        index = Py_BuildValue("{s:s,s:K,s:K}", "path", d->ipath, "bytes",
                              (unsigned long long)sf_output_bytes(d->iout), "bytes_out",
                              (unsigned long long)sf_output_bytes_out(d->iout));
    else
        index = Py_NewRef(Py_None);
    if (!index) {
        Py_DECREF(parts);
        return NULL;
    }
    return Py_BuildValue("{s:z,s:z,s:s,s:K,s:K,s:K,s:K,s:N,s:N}", "path",
                         d->iout ? d->ipath : d->path, "parts_pattern", d->parts, "template",
                         d->tname, "rows", (unsigned long long)sf_render_rows_written(r, d->out),
                         "rows_skipped", (unsigned long long)sf_render_rows_skipped(r, d->out),
                         "bytes", (unsigned long long)sf_output_bytes(d->out), "bytes_out",
                         (unsigned long long)sf_output_bytes_out(d->out), "parts", parts, "index",
                         index);
}

static int any_published(const struct doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((docs[i].out && sf_output_published(docs[i].out)) ||
            (docs[i].iout && sf_output_published(docs[i].iout)))
            return 1;
    return 0;
}

static void cancel_docs(struct doc *docs, size_t n)
{
    for (size_t i = 0; docs && i < n; i++) {
        if (docs[i].out)
            sf_output_cancel(docs[i].out);
        if (docs[i].iout)
            sf_output_cancel(docs[i].iout);
    }
}

static void abort_docs(struct doc *docs, size_t n)
{
    for (size_t i = 0; docs && i < n; i++) {
        sf_output_abort(docs[i].out);
        sf_output_abort(docs[i].iout);
    }
}

/* render(db, outputs, params, query, progress, interval, time, options):
 * `outputs` a sequence of (template, path, parts, output_options, index
 * template, index path, base_url, lastmod), resolved by sqlfeed.render()
 * (python/sqlfeed/__init__.py): path None for a set of parts without an
 * index; parts None for one document; the index's four None without one.
 * Every document is rendered from one scan and published only if all
 * succeed (sf_render_commit). */
static PyObject *py_render(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"db",       "outputs", "params",  "query",          "progress",
                             "interval", "time",    "options", "source_options", NULL};
    const char *db, *query = NULL;
    PyObject *outs_arg, *params = NULL, *progress = NULL, *timeobj = NULL, *ropts = NULL,
             *sopts = NULL;
    double interval = 0.1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|OzOdOOO", kwlist, &db, &outs_arg, &params,
                                     &query, &progress, &interval, &timeobj, &ropts, &sopts))
        return NULL;
    if (progress == Py_None)
        progress = NULL;
    if (progress && !PyCallable_Check(progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable");
    if (interval <= 0 || interval > 3600)
        return PyErr_Format(PyExc_ValueError, "interval must be in (0, 3600] seconds");
    PyObject *outs = PySequence_Tuple(outs_arg);
    if (!outs)
        return NULL;
    size_t ndocs = (size_t)PyTuple_GET_SIZE(outs);
    if (ndocs == 0) {
        Py_DECREF(outs);
        return PyErr_Format(PyExc_ValueError, "no outputs");
    }
    struct doc *docs = PyMem_Calloc(ndocs, sizeof *docs);
    if (!docs) {
        Py_DECREF(outs);
        return PyErr_NoMemory();
    }

    PyObject *result = NULL;
    char *own_query = NULL;
    sf_census *census = sf_census_create();
    sf_source *src = sf_source_create(census);
    sf_render *r = sf_render_create(census);
    sf_watch *watch = NULL;
    int opened = 0, nomem = !census || !src || !r;
    sf_status st;
    struct job j = {.st = SF_OK};
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    for (size_t i = 0; i < ndocs; i++) {
        struct doc *d = &docs[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(outs, (Py_ssize_t)i), "szzOzzzz;an output",
                              &d->tname, &d->path, &d->parts, &d->opts, &d->itname, &d->ipath,
                              &d->base_url, &d->lastmod))
            goto done;
        if (!d->path && !d->parts) {
            PyErr_SetString(PyExc_ValueError, "an output needs a path or a parts pattern");
            goto done;
        }
        if (!d->itname != !d->ipath) {
            PyErr_SetString(PyExc_ValueError, "an index needs a template and a path");
            goto done;
        }
        if (d->itname && !d->parts) {
            PyErr_SetString(PyExc_ValueError, "an index needs a set of parts");
            goto done;
        }
        d->tpl = sf_template_create(census, SF_TEMPLATE_XML);
        d->out = sf_output_create(census);
        nomem |= !d->tpl || !d->out;
        if (d->itname) {
            d->itpl = sf_template_create(census, SF_TEMPLATE_XML);
            d->iout = sf_output_create(census);
            nomem |= !d->itpl || !d->iout;
        }
    }
    if (nomem) {
        PyErr_NoMemory();
        goto done;
    }
    /* The database is read on a scan thread of its own, as sqlfeed render
     * does by default (--threads on): without it the same render took 1.19x
     * the CLI's time (200,000 rows, 5 interleaved runs, medians 1.20 s and
     * 1.01 s). The outputs' writer threads are the library's default. */
    if ((st = sf_source_set_option(src, "prefetch", "on")) != SF_OK) {
        raise_status(st, sf_source_errmsg(src));
        goto done;
    }
    if (set_params(r, params) < 0)
        goto done;
    if (apply_options(ropts, "options", r, NULL, NULL) < 0 ||
        apply_options(sopts, "source options", NULL, NULL, src) < 0)
        goto done;
    /* Output options are set (and checked) before anything connects. */
    for (size_t i = 0; i < ndocs; i++)
        if (apply_options(docs[i].opts, "output options", NULL, docs[i].out, NULL) < 0)
            goto done;
    /* The time generated_* show: time=, else SOURCE_DATE_EPOCH, else now. */
    if (timeobj && timeobj != Py_None) {
        long long t = PyLong_AsLongLong(timeobj);
        if (t == -1 && PyErr_Occurred())
            goto done;
        sf_render_set_time(r, (int64_t)t);
    } else {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        if (sde && *sde) {
            char *end;
            errno = 0;
            long long t = strtoll(sde, &end, 10);
            if (errno || *end || t < 0 || t > 253402300799LL) {
                PyErr_Format(PyExc_ValueError,
                             "SOURCE_DATE_EPOCH must be seconds since 1970, got '%s'", sde);
                goto done;
            }
            sf_render_set_time(r, (int64_t)t);
        }
    }
    for (size_t i = 0; i < ndocs; i++) {
        struct doc *d = &docs[i];
        d->file_tpl = is_file_template(d->tname);
        if ((st = load_template(d->tpl, d->tname, d->file_tpl)) != SF_OK) {
            raise_status(st, sf_template_errmsg(d->tpl));
            goto done;
        }
        if (!d->itname)
            continue;
        d->ifile_tpl = is_file_template(d->itname);
        if ((st = load_template(d->itpl, d->itname, d->ifile_tpl)) != SF_OK) {
            raise_status(st, sf_template_errmsg(d->itpl));
            goto done;
        }
        /* As the command: without base_url a part's url would be its bare
         * file name, not the absolute URL an index such as sitemap-index lists. */
        for (size_t k = 0; !d->base_url && k < sf_template_row_name_count(d->itpl); k++)
            if (!strcmp(sf_template_row_name(d->itpl, k), "url")) {
                char msg[512];
                snprintf(msg, sizeof msg, "the index template %s reads url (each part's absolute "
                                          "URL): give base_url, where the parts will be served",
                         d->itname);
                raise_status(SF_ERR_ARG, msg);
                goto done;
            }
    }
    j.phase = PHASE_OPEN;
    j.db = db;
    j.src = src;
    /* Connecting (a server that never answers) can be interrupted too. */
    if (run_phase(&j, interval, NULL, NULL) < 0)
        goto done;
    if ((st = j.st) != SF_OK) {
        raise_status(st, sf_source_errmsg(src));
        goto done;
    }
    /* The query, when not given, is the first template's own (as the command's). */
    if (!query) {
        if (!docs[0].file_tpl)
            query = sf_builtin_template_query_for(docs[0].tname, sf_source_backend(src));
        else
            query = own_query = own_query_file(docs[0].tname);
        if (!query) {
            raise_status(SF_ERR_ARG, "no query given and the template has none of its own");
            goto done;
        }
    }
    j.phase = PHASE_PREPARE;
    j.sql = query;
    if (run_phase(&j, interval, NULL, NULL) < 0)
        goto done;
    if ((st = j.st) != SF_OK) {
        raise_status(st, sf_source_errmsg(src));
        goto done;
    }
    /* Opening takes each output's lock (another run: BusyError). */
    opened = 1;
    for (size_t i = 0; i < ndocs; i++) {
        struct doc *d = &docs[i];
        st = d->parts ? sf_output_open_parts(d->out, d->parts) : sf_output_open_file(d->out, d->path);
        if (st != SF_OK) {
            raise_status(st, sf_output_errmsg(d->out));
            goto done;
        }
        if ((st = sf_render_add_output(r, d->tpl, d->out)) != SF_OK) {
            raise_status(st, sf_render_errmsg(r));
            goto done;
        }
        if (!d->iout)
            continue;
        /* The index is small: written inline, compressed by its own name's
         * suffix (as the command writes it). */
        if ((st = sf_output_set_option(d->iout, "writer", "inline")) != SF_OK ||
            (st = sf_output_open_file(d->iout, d->ipath)) != SF_OK) {
            raise_status(st, sf_output_errmsg(d->iout));
            goto done;
        }
        if ((st = sf_render_add_index(r, d->out, d->itpl, d->iout,
                                      d->base_url ? d->base_url : "", d->lastmod)) != SF_OK) {
            raise_status(st, sf_render_errmsg(r));
            goto done;
        }
    }
    sf_watch_opts wo = {.interval_ms = 0, .output = docs[0].out};
    if (!(watch = sf_watch_create(census, r, &wo))) {
        PyErr_NoMemory();
        goto done;
    }
    if ((st = sf_watch_start(watch)) != SF_OK) {
        raise_status(st, "the watch's sampler thread cannot start");
        goto done;
    }

    j.phase = PHASE_RENDER;
    j.r = r;
    j.docs = docs;
    j.ndocs = ndocs;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int how = run_phase(&j, interval, progress, watch);
    if (how == -2) {
        sf_watch_stop(watch);
        goto done;
    }
    int cancelled_by_python = how == -1; /* an exception is set: raise it, not Cancelled */
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sf_watch_stop(watch);
    st = j.st;
    int published = any_published(docs, ndocs);
    if (cancelled_by_python && !published)
        goto done; /* the KeyboardInterrupt or the callback's exception */
    if (cancelled_by_python)
        PyErr_Clear(); /* published before the cancel arrived: the run stands */
    if (st != SF_OK) {
        const char *msg = sf_render_errmsg(r);
        for (size_t i = 0; !*msg && i < ndocs; i++) {
            msg = sf_output_errmsg(docs[i].out);
            if (!*msg && docs[i].iout)
                msg = sf_output_errmsg(docs[i].iout);
        }
        raise_status(st, msg);
        goto done;
    }
    char verdict[512];
    sf_watch_verdict(watch, verdict, sizeof verdict);
    char grew[128];
    sf_watch_grew_most(watch, grew, sizeof grew);
    sf_watch_progress p;
    sf_watch_get_progress(watch, &p);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    unsigned long long bytes = 0, bytes_out = 0;
    PyObject *docs_l = PyList_New(0);
    for (size_t i = 0; docs_l && i < ndocs; i++) {
        PyObject *dd = doc_dict(r, &docs[i]);
        if (!dd || PyList_Append(docs_l, dd) < 0)
            Py_CLEAR(docs_l);
        Py_XDECREF(dd);
        bytes += (unsigned long long)sf_output_bytes(docs[i].out);
        bytes_out += (unsigned long long)sf_output_bytes_out(docs[i].out);
    }
    if (!docs_l)
        goto done;
    PyObject *census_d = census_dict(census);
    if (!census_d) {
        Py_DECREF(docs_l);
        goto done;
    }
    result = Py_BuildValue(
        "{s:K,s:K,s:K,s:d,s:K,s:s,s:s,s:s,s:N,s:s,s:K,s:K,s:N}", "rows",
        (unsigned long long)sf_render_rows(r), "bytes", bytes, "bytes_out", bytes_out, "seconds",
        secs, "peak_rss", (unsigned long long)p.peak_rss, "flatness",
        sf_flat_verdict_name(sf_watch_flatness(watch)), "verdict", verdict, "grew_most", grew,
        "census", census_d, "output",
        docs[0].iout ? docs[0].ipath : docs[0].path ? docs[0].path : docs[0].parts,
        "census_live_bytes", (unsigned long long)sf_census_live_bytes(census),
        "census_peak_bytes", (unsigned long long)sf_census_peak_bytes(census), "outputs", docs_l);
done:
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
    /* Nothing published on any failure: every temporary file goes. */
    if (opened && !result)
        abort_docs(docs, ndocs);
    sf_watch_free(watch);
    sf_render_free(r);
    for (size_t i = 0; i < ndocs; i++) {
        sf_output_free(docs[i].out);
        sf_output_free(docs[i].iout);
        sf_template_free(docs[i].tpl);
        sf_template_free(docs[i].itpl);
    }
    sf_source_free(src);
    sf_census_free(census);
    free(own_query);
    PyMem_Free(docs);
    Py_DECREF(outs);
    return result;
}
static PyObject *py_templates(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    PyObject *l = PyList_New(0);
    for (size_t i = 0; l && sf_builtin_template_name(i); i++) {
        PyObject *s = PyUnicode_FromString(sf_builtin_template_name(i));
        if (!s || PyList_Append(l, s) < 0)
            Py_CLEAR(l);
        Py_XDECREF(s);
    }
    return l;
}

static PyObject *py_mask(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *db = PyUnicode_AsUTF8(arg);
    if (!db)
        return NULL;
    size_t n = sf_db_mask(db, NULL, 0) + 1;
    char *buf = PyMem_Malloc(n);
    if (!buf)
        return PyErr_NoMemory();
    sf_db_mask(db, buf, n);
    PyObject *s = PyUnicode_FromString(buf);
    PyMem_Free(buf);
    return s;
}

/* publish_shards(template, is_file, dir, shards, output, params, time,
 *                index, index_is_file, parts, base_url) -> rows: the shards
 * joined into output; with index (split shards), their parts copied into
 * the set `parts` and output the index over them. */
static PyObject *py_publish(PyObject *self, PyObject *args)
{
    (void)self;
    const char *tname, *dir, *path, *iname = NULL, *pattern = NULL, *base_url = NULL,
               *run = NULL, *min_rows = NULL, *max_drop = NULL;
    int file, ifile = 0;
    unsigned shards;
    PyObject *params, *timeobj;
    if (!PyArg_ParseTuple(args, "spsIsOO|zpzzzzz", &tname, &file, &dir, &shards, &path, &params,
                          &timeobj, &iname, &ifile, &pattern, &base_url, &run, &min_rows,
                          &max_drop))
        return NULL;
    if (iname && !pattern)
        return PyErr_Format(PyExc_ValueError, "an index needs the parts' pattern");
    sf_census *census = sf_census_create();
    sf_render *r = sf_render_create(census);
    sf_template *tpl = sf_template_create(census, SF_TEMPLATE_XML);
    sf_template *itpl = NULL;
    sf_output *parts = NULL, *index = NULL;
    PyObject *result = NULL;
    sf_status st;
    if (iname && (!(itpl = sf_template_create(census, SF_TEMPLATE_XML)) ||
                  !(parts = sf_output_create(census)) || !(index = sf_output_create(census)))) {
        PyErr_NoMemory();
        goto done;
    }
    if (!census || !r || !tpl) {
        PyErr_NoMemory();
        goto done;
    }
    if (set_params(r, params) < 0)
        goto done;
    if (timeobj != Py_None) {
        long long t = PyLong_AsLongLong(timeobj);
        if (t == -1 && PyErr_Occurred())
            goto done;
        sf_render_set_time(r, (int64_t)t);
    }
    if ((run && (st = sf_render_set_option(r, "shard_run", run)) != SF_OK) ||
        (min_rows && (st = sf_render_set_option(r, "min_rows", min_rows)) != SF_OK) ||
        (max_drop && (st = sf_render_set_option(r, "max_drop", max_drop)) != SF_OK)) {
        raise_status(st, sf_render_errmsg(r));
        goto done;
    }
    if ((st = load_template(tpl, tname, file)) != SF_OK) {
        raise_status(st, sf_template_errmsg(tpl));
        goto done;
    }
    if (iname) {
        if ((st = load_template(itpl, iname, ifile)) != SF_OK) {
            raise_status(st, sf_template_errmsg(itpl));
            goto done;
        }
        if ((st = sf_output_set_option(parts, "compress", "none")) != SF_OK ||
            (st = sf_output_open_parts(parts, pattern)) != SF_OK) {
            raise_status(st, sf_output_errmsg(parts));
            goto done;
        }
        if ((st = sf_output_open_file(index, path)) != SF_OK) {
            raise_status(st, sf_output_errmsg(index));
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    st = iname ? sf_render_publish_shard_parts(r, tpl, itpl, dir, shards, parts, index, base_url)
               : sf_render_publish_shards(r, tpl, dir, shards, path);
    Py_END_ALLOW_THREADS
    if (st != SF_OK)
        raise_status(st, sf_render_errmsg(r));
    else
        result = PyLong_FromUnsignedLongLong((unsigned long long)sf_render_rows(r));
done:
    sf_output_free(parts);
    sf_output_free(index);
    sf_template_free(itpl);
    sf_template_free(tpl);
    sf_render_free(r);
    sf_census_free(census);
    return result;
}

/* export_snapshot(db) -> (id, holder): holder keeps the transaction open
 * until it is released (release_snapshot) or collected. The capsule holds a
 * struct whose source is taken (set to NULL) under the GIL before it is
 * freed, so a second release, or two threads releasing at once, find
 * nothing to free. */
struct snapshot_hold {
    sf_source *src;
    sf_census *census;
};

static void hold_free(struct snapshot_hold *h)
{
    sf_source_free(h->src);
    sf_census_free(h->census);
    PyMem_Free(h);
}

static void snapshot_free(PyObject *cap)
{
    struct snapshot_hold *h = PyCapsule_GetPointer(cap, "sqlfeed.snapshot");
    if (h)
        hold_free(h);
}

static PyObject *py_export_snapshot(PyObject *self, PyObject *args)
{
    (void)self;
    const char *db;
    if (!PyArg_ParseTuple(args, "s", &db))
        return NULL;
    struct snapshot_hold *h = PyMem_Calloc(1, sizeof *h);
    if (!h)
        return PyErr_NoMemory();
    h->census = sf_census_create();
    h->src = h->census ? sf_source_create(h->census) : NULL;
    if (!h->src) {
        hold_free(h);
        return PyErr_NoMemory();
    }
    char id[128];
    sf_status st;
    Py_BEGIN_ALLOW_THREADS
    st = sf_source_open(h->src, db);
    if (st == SF_OK)
        st = sf_source_export_snapshot(h->src, id, sizeof id);
    Py_END_ALLOW_THREADS
    if (st != SF_OK) {
        raise_status(st, sf_source_errmsg(h->src));
        hold_free(h);
        return NULL;
    }
    PyObject *cap = PyCapsule_New(h, "sqlfeed.snapshot", snapshot_free);
    if (!cap) {
        hold_free(h);
        return NULL;
    }
    return Py_BuildValue("(sN)", id, cap);
}

static PyObject *py_release_snapshot(PyObject *self, PyObject *cap)
{
    (void)self;
    struct snapshot_hold *h = PyCapsule_GetPointer(cap, "sqlfeed.snapshot");
    if (!h)
        return NULL;
    sf_source *src = h->src; /* taken under the GIL: released once */
    h->src = NULL;
    if (src) {
        Py_BEGIN_ALLOW_THREADS
        sf_source_free(src);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"publish_shards", py_publish, METH_VARARGS,
     "publish_shards(template, is_file, dir, shards, output, params, time) -> rows"},
    {"export_snapshot", py_export_snapshot, METH_VARARGS,
     "export_snapshot(db) -> (id, holder): a PostgreSQL snapshot held by holder"},
    {"release_snapshot", py_release_snapshot, METH_O,
     "release_snapshot(holder): ends the snapshot's transaction"},
    {"render", (PyCFunction)(void (*)(void))py_render, METH_VARARGS | METH_KEYWORDS,
     "render(db, outputs, params=None, query=None, progress=None, interval=0.1, time=None,\n"
     "       options=None) -> dict; outputs: (template, path, parts, output_options,\n"
     "       index_template, index_path, base_url, lastmod) each (sqlfeed.render resolves them)"},
    {"templates", py_templates, METH_NOARGS, "The built-in templates' names."},
    {"mask_db", py_mask, METH_O, "The --db string with its passwords masked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "sqlfeed._sqlfeed",
                                    "libsqlfeed, linked statically.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__sqlfeed(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Error = PyErr_NewException("sqlfeed.Error", NULL, NULL);
    if (!Error || PyModule_AddObjectRef(m, "Error", Error) < 0)
        return NULL;
    static const struct { int st; const char *name; } cls[] = {
        {SF_ERR_NOMEM, "sqlfeed.OutOfMemory"},   {SF_ERR_ARG, "sqlfeed.UsageError"},
        {SF_ERR_TEMPLATE, "sqlfeed.TemplateError"}, {SF_ERR_NAME, "sqlfeed.TemplateNameError"},
        {SF_ERR_SOURCE, "sqlfeed.DatabaseError"}, {SF_ERR_OUTPUT, "sqlfeed.OutputError"},
        {SF_ERR_CANCELLED, "sqlfeed.Cancelled"},  {SF_ERR_STATE, "sqlfeed.StateError"},
        {SF_ERR_REFUSED, "sqlfeed.RefusedError"}, {SF_ERR_BUSY, "sqlfeed.BusyError"},
        {SF_ERR_INVALID, "sqlfeed.InvalidRowError"},
    };
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++) {
        /* A missing name is a TemplateError too; a busy output an OutputError. */
        PyObject *base = Error;
        if (cls[i].st == SF_ERR_NAME)
            base = status_class[SF_ERR_TEMPLATE];
        else if (cls[i].st == SF_ERR_BUSY)
            base = status_class[SF_ERR_OUTPUT];
        PyObject *c = PyErr_NewException(cls[i].name, base, NULL);
        if (!c || PyModule_AddObjectRef(m, strchr(cls[i].name, '.') + 1, c) < 0)
            return NULL;
        status_class[cls[i].st] = c;
    }
    if (PyModule_AddStringConstant(m, "library_version", sf_version()) < 0)
        return NULL;
    return m;
}
