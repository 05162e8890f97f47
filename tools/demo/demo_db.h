/* demo_db.h: the demo-data generator behind `sqlfeed demo-db`. Not part of
 * the library: linked into the command (and whatever else wants demo data)
 * from tools/demo/, built against the public header only. */
#ifndef SQLFEED_DEMO_DB_H
#define SQLFEED_DEMO_DB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlfeed.h"

/* Writes a new SQLite database at `path` (replacing it atomically) with the
 * jobs/companies schema of the reference dataset and `rows` job rows of
 * realistic text, deterministic for a given (rows, seed). When `cancel` is
 * not NULL and becomes non-zero (e.g. from a signal handler), stops with
 * SF_ERR_CANCELLED and removes the partial file. On failure writes a message
 * to errbuf (errlen bytes, may be 0): SF_ERR_ARG (no path, too many rows, a
 * path too long), SF_ERR_OUTPUT (create, sync, rename), SF_ERR_SOURCE (a
 * SQLite failure). */
sf_status demo_db_write(const char *path, uint64_t rows, uint64_t seed,
                        const volatile sig_atomic_t *cancel, char *errbuf, size_t errlen);

#endif
