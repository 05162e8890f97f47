/* formats.h: what a template says about its format in comments
 * (cli/formats.c): {{! sqlfeed-check: ... }} and {{! sqlfeed-defaults: ... }}. */
#ifndef SQLFEED_CLI_FORMATS_H
#define SQLFEED_CLI_FORMATS_H

#include <stddef.h>

#include "cli.h"

/* The text of the first {{! KEY: ... }} comment of a template (KEY e.g.
 * "sqlfeed-defaults"), trimmed, into out[n]; 1 when found, else 0 (out ""). */
int cli_format_comment(const char *text, size_t len, const char *key, char *out, size_t n);

/* Applies the template's {{! sqlfeed-defaults: KEY=VALUE ... }} to output c
 * for each key the user did not give (docs/formats.md): split-rows and
 * split-bytes to a file output (stdout is one stream: none apply);
 * compress to a split output whose parts sqlfeed names; index (and then
 * lastmod) to a split output whose -o names a file (not a %d pattern), the
 * user's --parts included, which then needs --base-url. None applies to
 * stdout, a descriptor, a device or a FIFO. `file` is the template file,
 * NULL for a built-in (c->template names it). A file that cannot be read
 * (or is not a regular file) is left to the template's load. EXIT_OK, or an exit status
 * (printed). */
int cli_format_defaults(cli_output *c, const char *file);

#endif
