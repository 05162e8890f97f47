/* demo_db.h: the demo-data generator behind `sqlfeed demo-db`. Not part of
 * the library: linked into the command (and whatever else wants demo data)
 * from tools/demo/, built against the public header only. */
#ifndef SQLFEED_DEMO_DB_H
#define SQLFEED_DEMO_DB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlfeed.h"

/* Writes the demo database into `file`, an empty file that exists (the
 * temporary file of an sf_output opened on the destination: the caller
 * publishes it with sf_output_commit), with the jobs/companies schema of the
 * reference dataset and `rows` job rows of realistic text, plus the tables
 * the built-in formats read (locations, products, images: docs/formats.md),
 * deterministic for a given (rows, seed). `label` (NULL: file) names the database in
 * messages. When `cancel` is not NULL and becomes non-zero (a signal
 * handler's flag), stops with SF_ERR_CANCELLED. On failure writes a message
 * to errbuf (errlen bytes, may be 0): SF_ERR_ARG (no file, too many rows),
 * SF_ERR_SOURCE (a SQLite failure: a full disk too). */
sf_status demo_db_write(const char *file, const char *label, uint64_t rows, uint64_t seed,
                        const volatile sig_atomic_t *cancel, char *errbuf, size_t errlen);

#endif
