/* fuzz_mask.c: libFuzzer target for the secret scanner (src/source/secret.c).
 *
 * Input: byte 0 picks the output buffer size for sf_db_mask (0..255, and
 * the full size too); the rest, up to a NUL, is a --db string. Checks:
 *  - sf_db_mask never writes past its buffer (ASan), NUL-terminates within
 *    it, and returns the full masked length (the same at every size);
 *  - sf_db_scrub of any message stays in its buffer and NUL-terminates;
 *  - libpq is the oracle: when PQconninfoParse accepts the string and finds
 *    a password or sslpassword, the masked text does not hold it (unless it
 *    also shows outside every secret, as a user name may), and after
 *    sf_db_hide_secrets libpq reads from the string (if it still parses)
 *    only passwords made of 'x', so argv shows nothing of them.
 * libpq is loaded with dlopen, as the library does, so the target links like
 * every other (no -lpq); without libpq5 installed it aborts at once. */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "source/sqltext.h"

static PQconninfoOption *(*conninfo_parse)(const char *, char **);
static void (*conninfo_free)(PQconninfoOption *);
static void (*pq_freemem)(void *);

static void load_libpq(void)
{
    if (conninfo_parse)
        return;
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "fuzz_mask: the oracle needs libpq (Debian package libpq5): %s\n", dlerror());
        abort();
    }
    conninfo_parse = (PQconninfoOption * (*)(const char *, char **))dlsym(lib, "PQconninfoParse");
    conninfo_free = (void (*)(PQconninfoOption *))dlsym(lib, "PQconninfoFree");
    pq_freemem = (void (*)(void *))dlsym(lib, "PQfreemem");
    if (!conninfo_parse || !conninfo_free || !pq_freemem)
        abort();
}

static int is_secret_keyword(const char *k)
{
    return !strcmp(k, "password") || !strcmp(k, "sslpassword");
}

static void check_hidden(const char *hidden)
{
    char *err = NULL;
    PQconninfoOption *o = conninfo_parse(hidden, &err);
    pq_freemem(err);
    if (!o)
        return; /* hiding swallowed some structure (an '@' inside a merged
                   secret): libpq reads no password from it at all */
    for (PQconninfoOption *p = o; p->keyword; p++)
        if (is_secret_keyword(p->keyword) && p->val)
            for (const char *c = p->val; *c; c++)
                if (*c != 'x')
                    abort(); /* a password byte left in argv */
    conninfo_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_libpq();
    if (size < 1)
        return 0;
    size_t bufsize = data[0];
    size_t len = strnlen((const char *)data + 1, size - 1);
    char *db = malloc(len + 1);
    memcpy(db, data + 1, len);
    db[len] = '\0';

    /* Masking: bounded, terminated, and the same length at every size. */
    size_t full = sf_db_mask(db, NULL, 0);
    char *big = malloc(full + 1);
    if (sf_db_mask(db, big, full + 1) != full || strlen(big) != full)
        abort();
    char *small = malloc(bufsize ? bufsize : 1);
    if (sf_db_mask(db, small, bufsize) != full)
        abort();
    if (bufsize && (strlen(small) >= bufsize || strncmp(small, big, strlen(small)) != 0))
        abort();

    /* Scrubbing the string itself and a message quoting a piece of it. */
    char scrub[64];
    sf_db_scrub(db, db, scrub, sizeof scrub);
    if (strlen(scrub) >= sizeof scrub)
        abort();
    char msg[300];
    size_t half = len / 2 < 200 ? len / 2 : 200;
    msg[0] = '"';
    memcpy(msg + 1, db + len - half, half);
    msg[half + 1] = '"';
    msg[half + 2] = '\0';
    char out[1024];
    sf_db_scrub(db, msg, out, bufsize < sizeof out ? bufsize : sizeof out);

    /* The libpq oracle. */
    char *err = NULL;
    PQconninfoOption *opts = conninfo_parse(db, &err);
    pq_freemem(err);
    if (opts) {
        int any = 0;
        for (PQconninfoOption *p = opts; p->keyword; p++) {
            if (!is_secret_keyword(p->keyword) || !p->val || !*p->val)
                continue;
            any = 1;
            /* Where libpq reads another password than the scanner (an '@'
             * unencoded in it: libpq stops at the first), pg_open refuses the
             * string; hiding must cover libpq's reading anyway (below). */
            (void)sf_db_has_secret(db, p->val);
            /* The masked text must not show it (unless it shows elsewhere in
             * the string, e.g. as the user name: then it is not a leak). */
            size_t vlen = strlen(p->val);
            if (vlen >= 3 && strstr(big, p->val)) {
                char *hidden = strdup(db); /* what is left outside the secrets */
                sf_db_hide_secrets(hidden);
                if (!strstr(hidden, p->val))
                    abort();
                free(hidden);
            }
        }
        conninfo_free(opts);
        if (any) {
            char *hidden = strdup(db);
            sf_db_hide_secrets(hidden);
            check_hidden(hidden);
            free(hidden);
        }
    }
    free(small);
    free(big);
    free(db);
    return 0;
}
