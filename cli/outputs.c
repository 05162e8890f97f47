/* outputs.c: no output may be an input or another output. A render that
 * appends its --mem-log to the feed it publishes, or publishes over the
 * query file it reads, destroys what it was asked to keep. Files are
 * compared by identity, not by spelling: (st_dev, st_ino) after following
 * symlinks for a file that exists; for one that does not exist yet, the
 * identity of its directory (symlinks resolved) and its name. Character
 * devices (/dev/null, a terminal) may be shared: they hold no file. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct file_id {
    int kind; /* 0: unknown, 1: exists (dev, ino), 2: to be created (dir dev, ino + name) */
    dev_t dev;
    ino_t ino;
    int chr;
    char name[NAME_MAX + 1];
} file_id;

/* Follows a dangling symlink chain to the name a file would be created at. */
static void final_target(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    for (int hops = 0; hops < 40; hops++) {
        char link[PATH_MAX], next[PATH_MAX];
        ssize_t k = readlink(out, link, sizeof link - 1);
        if (k <= 0)
            return;
        link[k] = '\0';
        const char *slash = strrchr(out, '/');
        int w = link[0] == '/' || !slash
                    ? snprintf(next, sizeof next, "%s", link)
                    : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - out), out, link);
        if (w < 0 || (size_t)w >= sizeof next || (size_t)w >= n)
            return;
        memcpy(out, next, (size_t)w + 1);
    }
}

/* The directory of `path`'s final target (dangling symlinks followed, as
 * open(O_CREAT) would), into dir. */
static void target_dir(const char *path, char *dir, size_t n)
{
    char target[PATH_MAX];
    final_target(path, target, sizeof target);
    const char *slash = strrchr(target, '/');
    if (slash)
        snprintf(dir, n, "%.*s", slash == target ? 1 : (int)(slash - target), target);
    else
        snprintf(dir, n, ".");
}

int cli_new_file_forbidden(const char *path, char *dir, size_t n)
{
    struct stat st;
    if (!strcmp(path, "-") || stat(path, &st) == 0 || errno != ENOENT)
        return 0; /* it exists (or cannot be created anyway: open says why) */
    target_dir(path, dir, n);
    return sf_output_kernel_dir(dir);
}

static void identify(const char *path, file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (!strcmp(path, "-") ? fstat(STDOUT_FILENO, &st) == 0 : stat(path, &st) == 0) {
        id->kind = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->chr = S_ISCHR(st.st_mode);
        return;
    }
    char target[PATH_MAX], dir[PATH_MAX];
    final_target(path, target, sizeof target);
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", slash == target ? 1 : (int)(slash - target), target);
    else
        snprintf(dir, sizeof dir, ".");
    size_t len = strlen(base);
    if (stat(dir, &st) != 0 || len > NAME_MAX)
        return; /* it cannot be created either: opening it will say why */
    id->kind = 2;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    memcpy(id->name, base, len + 1); /* fits: len <= NAME_MAX (snprintf warned at -O1) */
}

static int same(const file_id *a, const file_id *b)
{
    if (!a->kind || a->kind != b->kind || a->dev != b->dev || a->ino != b->ino)
        return 0;
    if (a->kind == 1)
        return !(a->chr && b->chr);
    return strcmp(a->name, b->name) == 0;
}

/* Whether `path` could be a partial of a template in `dir`: a NAME.mustache
 * there (partials are looked up by name when the template is compiled). */
static int in_partials(const char *path, const file_id *pd)
{
    size_t n = strlen(path);
    if (n < 9 || strcmp(path + n - 9, ".mustache") != 0)
        return 0;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    struct stat st;
    return pd->kind == 1 && stat(dir, &st) == 0 && st.st_dev == pd->dev && st.st_ino == pd->ino;
}

/* The outputs the last failed check named (-1: an input, or none). */
static long culprit_a = -1, culprit_b = -1;

static void blame(size_t a, long b)
{
    culprit_a = (long)a;
    culprit_b = b;
}

void cli_check_culprits(long *a, long *b)
{
    *a = culprit_a;
    *b = culprit_b;
}

int cli_check_files(const char *cmd, const cli_file *inputs, size_t ninputs,
                    const cli_file *outputs, size_t noutputs, const char *partials_dir)
{
    culprit_a = culprit_b = -1;
    file_id pd = {0};
    if (partials_dir)
        identify(partials_dir, &pd);
    for (size_t j = 0; j < noutputs; j++) {
        if (!outputs[j].path)
            continue;
        file_id o, x;
        identify(outputs[j].path, &o);
        for (size_t i = 0; i < ninputs; i++) {
            if (!inputs[i].path)
                continue;
            identify(inputs[i].path, &x);
            if (same(&o, &x) && (blame(j, -1), 1))
                return cli_usage(cmd, "%s %s is the same file as %s %s, which sqlfeed reads; "
                                      "write it elsewhere",
                                 outputs[j].option, outputs[j].path, inputs[i].option,
                                 inputs[i].path);
        }
        if (partials_dir && strcmp(outputs[j].path, "-") && in_partials(outputs[j].path, &pd) &&
            (blame(j, -1), 1))
            return cli_usage(cmd, "%s %s is a possible partial of the template (partials are "
                                  "NAME.mustache in %s); write it elsewhere",
                             outputs[j].option, outputs[j].path, partials_dir);
        for (size_t i = 0; i < j; i++) {
            if (!outputs[i].path)
                continue;
            identify(outputs[i].path, &x);
            if (same(&o, &x) && (blame(j, (long)i), 1))
                return cli_usage(cmd, "%s %s is the same file as %s %s; give each its own file",
                                 outputs[j].option, outputs[j].path, outputs[i].option,
                                 outputs[i].path);
        }
    }
    return EXIT_OK;
}

/* ---- Names and patterns ---------------------------------------------------
 * A name is a sequence of units, each a set of bytes, once or any number of
 * times: "feed-%04d.xml" is f e e d - D D D D D* . x m l (D a digit), %r is
 * eight hex digits, and the companions .NAME.sqlfeed* end in any bytes.
 * Two names meet when one string matches both: a walk over pairs of
 * positions, one in each (at most NAME_MAX + a few units each). */
typedef struct unit {
    uint64_t set[4]; /* the bytes it takes */
    int star;        /* any number of times (0 or more) */
} unit;

#define MAX_UNITS (NAME_MAX + 64)

typedef struct name_units {
    unit u[MAX_UNITS];
    size_t n;
} name_units;

static void unit_add(name_units *nu, int star, int lo, int hi, int only)
{
    if (nu->n >= MAX_UNITS)
        return;
    unit *u = &nu->u[nu->n++];
    memset(u, 0, sizeof *u);
    u->star = star;
    for (int c = lo; c <= hi; c++)
        u->set[c / 64] |= 1ull << (c % 64);
    if (only == 'x')
        for (int c = 'a'; c <= 'f'; c++)
            u->set[c / 64] |= 1ull << (c % 64);
    if (only == '/')
        u->set['/' / 64] &= ~(1ull << ('/' % 64));
}

static void lit(name_units *nu, unsigned char c) { unit_add(nu, 0, c, c, 0); }

/* The units of a file name (no directory). pattern: read %d %0Nd %r;
 * companion: ".NAME.sqlfeed" and any bytes (the temporary files
 * .NAME.sqlfeed-XXXXXXXX, the lock .NAME.sqlfeed.lock, the state record
 * .NAME.sqlfeed.state). */
static void name_compile(const char *base, int pattern, int companion, name_units *nu)
{
    nu->n = 0;
    if (companion)
        lit(nu, '.');
    for (const char *p = base; *p; p++) {
        if (pattern && *p == '%') {
            const char *q = p + 1;
            int width = 0;
            while (*q >= '0' && *q <= '9')
                width = width * 10 + (*q++ - '0');
            if (*q == 'd') {
                for (int i = 0; i < (width > 1 ? width : 1); i++)
                    unit_add(nu, 0, '0', '9', 0);
                unit_add(nu, 1, '0', '9', 0);
                p = q;
                continue;
            }
            if (*q == 'r' && q == p + 1) {
                for (int i = 0; i < 8; i++)
                    unit_add(nu, 0, '0', '9', 'x');
                p = q;
                continue;
            }
        }
        lit(nu, (unsigned char)*p);
    }
    if (companion) {
        for (const char *s = ".sqlfeed"; *s; s++)
            lit(nu, (unsigned char)*s);
        unit_add(nu, 1, 1, 255, '/');
    }
}

static int sets_meet(const unit *a, const unit *b)
{
    for (int i = 0; i < 4; i++)
        if (a->set[i] & b->set[i])
            return 1;
    return 0;
}

/* Whether some string matches both. */
static int names_meet(const name_units *a, const name_units *b)
{
    size_t w = b->n + 1, cells = (a->n + 1) * w;
    unsigned char *seen = calloc(cells, 1);
    size_t *stack = malloc(cells * sizeof *stack);
    int met = 0;
    if (!seen || !stack) {
        free(seen);
        free(stack);
        return 1; /* cannot tell: say they meet, which refuses the run */
    }
    size_t top = 0;
    stack[top++] = 0;
    seen[0] = 1;
    while (top && !met) {
        size_t cell = stack[--top], i = cell / w, j = cell % w;
        if (i == a->n && j == b->n) {
            met = 1;
            break;
        }
        size_t next[3];
        int k = 0;
        if (i < a->n && a->u[i].star)
            next[k++] = (i + 1) * w + j;
        if (j < b->n && b->u[j].star)
            next[k++] = i * w + j + 1;
        if (i < a->n && j < b->n && sets_meet(&a->u[i], &b->u[j]))
            next[k++] = (a->u[i].star ? i : i + 1) * w + (b->u[j].star ? j : j + 1);
        for (int t = 0; t < k; t++)
            if (!seen[next[t]]) {
                seen[next[t]] = 1;
                stack[top++] = next[t];
            }
    }
    free(seen);
    free(stack);
    return met;
}

/* The directory's identity and the file name of `path`, as written (an
 * output replaces a symlink at its path, so the name is the path's own). */
static int split_path(const char *path, struct stat *dir, const char **base)
{
    const char *slash = strrchr(path, '/');
    char d[PATH_MAX];
    *base = slash ? slash + 1 : path;
    if (slash)
        snprintf(d, sizeof d, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(d, sizeof d, ".");
    return stat(d, dir);
}

/* A file that is not a regular file (a device, FIFO, stdout) gets no
 * companions: it is written in place. */
static int has_companions(const cli_name *o)
{
    struct stat st;
    if (o->kind == CLI_NAME_PLAIN || !strcmp(o->path, "-"))
        return 0;
    return o->kind == CLI_NAME_PATTERN || stat(o->path, &st) != 0 || S_ISREG(st.st_mode);
}

static int meets(const char *a, int apat, int acomp, const char *b, int bpat, int bcomp)
{
    static name_units ua, ub; /* large; the CLI's one thread */
    name_compile(a, apat, acomp, &ua);
    name_compile(b, bpat, bcomp, &ub);
    return names_meet(&ua, &ub);
}

/* What a variant of an output's names is: 0 the name (or a part), 1 its
 * companions, 2 a set's own companions (lock, state: named after the
 * pattern as written, docs/sink.md). */
static const char *what(int kind, int variant)
{
    return variant ? "its temporary, lock or state files (.NAME.sqlfeed*)"
                   : kind == CLI_NAME_PATTERN ? "a part it names" : "it";
}

/* The variants of an output's names to compare: the name, its companions,
 * and for a pattern the companions of the pattern itself. */
static int variants(const cli_name *o)
{
    return !has_companions(o) ? 1 : o->kind == CLI_NAME_PATTERN ? 3 : 2;
}

int cli_check_names(const char *cmd, const cli_file *inputs, size_t ninputs,
                    const cli_name *outputs, size_t noutputs)
{
    culprit_a = culprit_b = -1;
    for (size_t j = 0; j < noutputs; j++) {
        const cli_name *o = &outputs[j];
        struct stat od;
        const char *ob;
        if (!o->path || !strcmp(o->path, "-") || split_path(o->path, &od, &ob) != 0)
            continue;
        int opat = o->kind == CLI_NAME_PATTERN, ov = variants(o);
        for (size_t i = 0; i < ninputs; i++) {
            if (!inputs[i].path)
                continue;
            /* The input as named and, if a symlink, the file it reaches. */
            char real[PATH_MAX];
            const char *names[2] = {inputs[i].path, realpath(inputs[i].path, real) ? real : NULL};
            for (int k = 0; k < 2; k++) {
                struct stat id;
                const char *ib;
                if (!names[k] || split_path(names[k], &id, &ib) != 0 || id.st_dev != od.st_dev ||
                    id.st_ino != od.st_ino)
                    continue;
                for (int c = 0; c < ov; c++)
                    if ((opat || c) && meets(ob, opat && c < 2, c > 0, ib, 0, 0) &&
                        (blame(j, -1), 1))
                        return cli_usage(cmd, "%s %s: %s can be %s %s, which sqlfeed reads; "
                                              "write it elsewhere", o->option, o->path,
                                         what(o->kind, c), inputs[i].option, inputs[i].path);
            }
        }
        for (size_t i = 0; i < j; i++) {
            const cli_name *p = &outputs[i];
            struct stat pd;
            const char *pb;
            if (!p->path || !strcmp(p->path, "-") || split_path(p->path, &pd, &pb) != 0 ||
                pd.st_dev != od.st_dev || pd.st_ino != od.st_ino)
                continue;
            int ppat = p->kind == CLI_NAME_PATTERN, pv = variants(p);
            for (int c = 0; c < ov; c++)
                for (int d = 0; d < pv; d++) {
                    /* Two plain names are cli_check_files's (by identity). */
                    if (!opat && !ppat && !c && !d)
                        continue;
                    if (meets(ob, opat && c < 2, c > 0, pb, ppat && d < 2, d > 0) &&
                        (blame(j, (long)i), 1))
                        return cli_usage(cmd, "%s %s and %s %s can name the same file (%s, %s); "
                                              "give each its own names",
                                         o->option, o->path, p->option, p->path,
                                         what(o->kind, c), what(p->kind, d));
                }
        }
    }
    return EXIT_OK;
}
