/* outputs.c: no output may be an input or another output. A render that
 * appends its --mem-log to the feed it publishes, or publishes over the
 * query file it reads, destroys what it was asked to keep. Files are
 * compared by identity, not by spelling: (st_dev, st_ino) after following
 * symlinks for a file that exists; for one that does not exist yet, the
 * identity of its directory (symlinks resolved) and its name. Character
 * devices (/dev/null, a terminal) may be shared: they hold no file. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
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
    if (stat(dir, &st) != 0 || strlen(base) > NAME_MAX)
        return; /* it cannot be created either: opening it will say why */
    id->kind = 2;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    snprintf(id->name, sizeof id->name, "%s", base);
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

int cli_check_files(const char *cmd, const cli_file *inputs, size_t ninputs,
                    const cli_file *outputs, size_t noutputs, const char *partials_dir)
{
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
            if (same(&o, &x))
                return cli_usage(cmd, "%s %s is the same file as %s %s, which sqlfeed reads; "
                                      "write it elsewhere",
                                 outputs[j].option, outputs[j].path, inputs[i].option,
                                 inputs[i].path);
        }
        if (partials_dir && strcmp(outputs[j].path, "-") && in_partials(outputs[j].path, &pd))
            return cli_usage(cmd, "%s %s is a possible partial of the template (partials are "
                                  "NAME.mustache in %s); write it elsewhere",
                             outputs[j].option, outputs[j].path, partials_dir);
        for (size_t i = 0; i < j; i++) {
            if (!outputs[i].path)
                continue;
            identify(outputs[i].path, &x);
            if (same(&o, &x))
                return cli_usage(cmd, "%s %s is the same file as %s %s; give each its own file",
                                 outputs[j].option, outputs[j].path, outputs[i].option,
                                 outputs[i].path);
        }
    }
    return EXIT_OK;
}
