/* set.h: what an output keeps beside its file: the lock that keeps two runs
 * apart, the state record of the last published run, and the file set of a
 * split output (pattern, run tag, parts). Internal to src/sink/.
 *
 * Names beside an output NAME in its directory (docs/sink.md, "File sets"):
 *   .NAME.sqlfeed.lock       the lock (flock), removed when the run ends
 *   .NAME.sqlfeed.state      the state record of the last published run
 *   .NAME.sqlfeed-XXXXXXXX   a temporary file (the document, or the state
 *                            record being replaced); X: 8 lowercase hex
 * The lock and the state record are deliberately not of the temporary
 * files' shape `.*.sqlfeed-*`, which docs/sink.md tells users is safe to
 * delete. A NAME too long for the extra text is cut at a UTF-8 character
 * boundary, as file.c's create_temp cuts it. */
#ifndef SF_SET_H
#define SF_SET_H

#include "../common.h"

#define SF_LOCK_SUFFIX ".sqlfeed.lock"
#define SF_STATE_SUFFIX ".sqlfeed.state"
/* What a temporary name adds to NAME: "." before, ".sqlfeed-XXXXXXXX" after
 * (file.c's TEMP_EXTRA). */
#define SF_TEMP_EXTRA 18

/* How many bytes of `name` a side name adding `extra` bytes keeps so that it
 * fits `name_max` (cut back to a UTF-8 character boundary), as create_temp
 * does. */
size_t sf_side_keep(const char *name, size_t extra, long name_max);
/* NAME_MAX of the directory open as dirfd (255 when unknown). */
long sf_dir_name_max(int dirfd);
/* Calls fn for each name in dirfd (not . and ..) until it returns nonzero;
 * allocates nothing (getdents64 into the stack). 0, or -1 and errno. */
int sf_dir_each(int dirfd, int (*fn)(const char *name, void *ctx), void *ctx);
/* Whether `s` is exactly 8 lowercase hex digits. */
int sf_is_tag8(const char *s, size_t n);

/* ---- pattern (fileset.c) ------------------------------------------------- */

enum { SF_SEG_LIT, SF_SEG_NUM, SF_SEG_TAG };
typedef struct sf_seg {
    int kind;
    size_t off, len; /* SF_SEG_LIT: the text in pattern.lit */
    int width;       /* SF_SEG_NUM: %0Nd's N, 0 for %d */
} sf_seg;

typedef struct sf_pattern {
    char *dir;  /* the directory as given ("." when none) */
    char *base; /* the file-name part, as given */
    char *lit;  /* the literal text of every SF_SEG_LIT, %% undone */
    sf_seg seg[5];
    int nseg;
    int has_tag;
} sf_pattern;

/* Parses `pattern`: a path whose file name holds exactly one %d or %0Nd
 * (N 1-9), at most one %r, %% for a '%', nothing else after a '%'; the
 * directory part holds no field. SF_ERR_ARG with a message naming what is
 * wrong. */
sf_status sf_pattern_parse(sf_pattern *p, sf_census *cs, sf_errbuf *e, const char *pattern);
void sf_pattern_free(sf_pattern *p, sf_census *cs);
/* The file name of part `n` with run tag `tag` (8 hex, or NULL without %r)
 * into buf; its length, or 0 when it does not fit cap. */
size_t sf_pattern_expand(const sf_pattern *p, const char *tag, uint64_t n, char *buf,
                         size_t cap);
/* Whether `name` (n bytes) is a name the pattern makes, with any tag and
 * number: 1, and *tag (9 bytes) the tag when there is one, *num the number.
 * With `prefix`, also a leading part of such a name (a name cut to fit). */
int sf_pattern_match(const sf_pattern *p, const char *name, size_t n, int prefix, char *tag,
                     uint64_t *num);

/* A fresh run tag (8 lowercase hex) into tag[9]: not the previous run's
 * (`prev_tag`, "" or NULL: none) and not the tag of any name of the pattern
 * already in dirfd. -1 when none is found (a directory full of them). */
int sf_set_choose_tag(const sf_pattern *p, int dirfd, const char *prev_tag, char tag[9]);
/* Removes the parts of the previous run: of the `nold` names in `old`
 * (NUL-separated: the previous state record's), each that the pattern makes,
 * that the new set (run tag `tag`, parts 1..count) does not name, and that
 * is a regular file. Never a name the record does not list: that may be
 * someone else's file. Returns how many; *err the first errno of a failed
 * removal (0: none). */
size_t sf_set_remove_stale(int dirfd, const sf_pattern *p, const char *old, size_t nold,
                           const char *tag, uint64_t count, int *err);

/* ---- state record (state.c) ---------------------------------------------- */

typedef struct sf_state {
    const char *name; /* writing: the output's file name, in full */
    uint64_t rows, bytes, time;
    char tag[9]; /* "" when the run had none */
    size_t parts;
    /* The part names, NUL-separated, `parts` of them; read: in census
     * memory that sf_state_clear() frees. */
    const char *names;
    /* The index over the set: a hash of its directory and name (0: none). */
    uint64_t owner;
    /* Names still to remove (NUL-separated, `nremove` of them): earlier
     * runs' parts this run's record replaced, which the next run removes
     * if this one could not (docs/sink.md, "the to-remove list"). */
    size_t nremove;
    const char *remove;
    void *mem; /* read: the census memory holding names and remove */
} sf_state;

/* Frees what sf_state_read() allocated; st zeroed. */
void sf_state_clear(sf_state *st, sf_census *cs);

/* The record's file name (`.NAME.sqlfeed.state`, NAME cut as the temporary
 * files cut it) and a buffer for its temporary file's name (*tmpcap bytes),
 * in census memory, so writing the record later allocates nothing. -1 out
 * of memory. */
int sf_state_names(sf_census *cs, const char *name, long name_max, char **sname, char **tmp,
                   size_t *tmpcap);
/* Reads record `sname` in dirfd (its part names into census memory:
 * sf_state_clear): 1 and *st filled, 0 when it is missing,
 * unreadable, larger than 16 MiB, not a record this version writes, or not
 * for output `name` (all "no previous run"); -1 out of memory. A record up
 * to 4 KiB is read without an allocation. */
int sf_state_read(int dirfd, const char *sname, const char *name, sf_census *cs, sf_state *st);
/* Parses a record's text in place (no allocation): 1 and *st, or 0. `name`
 * (NULL: any) is the output it must be for. */
int sf_state_parse(const char *text, size_t n, const char *name, sf_state *st);
/* The most a record of st can take, and the record into buf: its length,
 * or 0 when it does not fit. */
size_t sf_state_format_size(const sf_state *st);
size_t sf_state_format(const sf_state *st, char *buf, size_t cap);
/* Writes `text` as the record `sname` of output `name` atomically
 * (temporary file named in `tmp`, fsync, rename, directory fsync); no
 * allocation, so it cannot fail for memory after a publication. `path` and
 * `dir` name the output in messages. */
sf_status sf_state_write(int dirfd, const char *dir, const char *name, const char *sname,
                         char *tmp, size_t tmpcap, const char *path, const char *text,
                         size_t len, sf_errbuf *e);

/* ---- lock and stale temporary files (lock.c) ----------------------------- */

typedef struct sf_lock {
    int fd;     /* -1: not held */
    int dirfd;  /* the directory the lock lives in (ours: closed on release) */
    char *name; /* the lock file's name in dirfd */
    char *path; /* ... and its path (sf_output_lock_path) */
} sf_lock;

#define SF_LOCK_INIT {-1, -1, NULL, NULL}

/* Takes `.NAME.sqlfeed.lock` in `dir` (flock LOCK_EX|LOCK_NB), writing this
 * process's PID into it. SF_ERR_BUSY "another sqlfeed run (PID n) is
 * writing PATH" when another process holds it; SF_ERR_OUTPUT when the lock
 * file cannot be created. */
sf_status sf_lock_take(sf_lock *l, sf_census *cs, sf_errbuf *e, const char *dir,
                       const char *name, const char *path);
/* Removes the lock file and releases the lock; idempotent. */
void sf_lock_release(sf_lock *l, sf_census *cs);

/* Holding the lock: removes the temporary files a killed run left in dirfd:
 * `.NAME.sqlfeed-XXXXXXXX` for `name` (NULL: none) and for each name the
 * pattern `pat` makes (NULL: none), regular files only, never `keep` (a
 * temporary file of this run, NULL: none). Returns how many it removed. */
size_t sf_stale_temps_remove(int dirfd, const char *name, const sf_pattern *pat,
                             const char *keep);

/* ---- what an output keeps beside it (lock.c) ----------------------------
 * An output published by rename (a file, or a set of parts) holds its lock
 * from open to free, and knows its previous run's record. */
typedef struct sf_side {
    sf_lock lock; /* lock.dirfd: the output's directory */
    char *dir;    /* the directory as given, for messages */
    char *name;   /* the output's file name (a set: its pattern's) */
    char *path;   /* the output as given, for messages */
    char *state_name, *state_tmp; /* the record's names (sf_state_names) */
    size_t state_tmpcap;
    sf_state prev; /* the previous run's record, read at open */
    int have_prev;
} sf_side;

/* For the output at `path` (a file, or a pattern of parts `pat`): takes the
 * lock, removes the temporary files a killed run left (never `keep`, this
 * run's own temporary file's name), reads the previous run's record. */
sf_status sf_side_open(sf_side **sp, sf_census *cs, sf_errbuf *e, const char *path,
                       const sf_pattern *pat, const char *keep);
/* The previous run's record, or NULL. */
const sf_state *sf_side_previous(const sf_side *s);
/* Records a published run: formats st into buf (cap bytes: at least
 * sf_state_format_size) and writes it. No allocation. */
sf_status sf_side_record(sf_side *s, sf_errbuf *e, const sf_state *st, char *buf, size_t cap);
/* Releases the lock; NULL is fine. */
void sf_side_free(sf_side *s, sf_census *cs);

#endif
