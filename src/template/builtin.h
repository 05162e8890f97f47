/* builtin.h: the per-backend queries of the built-in templates, generated
 * from templates/NAME.pg.sql and NAME.my.sql by tools/embed.c (beside
 * sf_builtins, which holds each template and its NAME.sql). */
#ifndef SQLFEED_TEMPLATE_BUILTIN_H
#define SQLFEED_TEMPLATE_BUILTIN_H

#include <stddef.h>

typedef struct sf_builtin_query {
    const char *name;    /* the built-in template */
    const char *backend; /* "postgresql" or "mysql", as sf_source_backend names them */
    const char *query;
} sf_builtin_query;
extern const sf_builtin_query sf_builtin_queries[];
extern const size_t sf_builtin_query_count;

#endif
