/* builtin.c: a built-in template's query for one backend. Most built-ins
 * have one portable query (templates/NAME.sql, sf_builtin_template_query);
 * one whose query needs a backend's own functions (a JSON aggregate of a
 * child table) ships NAME.pg.sql and NAME.my.sql beside it, embedded in
 * sf_builtin_queries by tools/embed.c. */
#include <string.h>

#include "builtin.h"
#include "sqlfeed.h"

const char *sf_builtin_template_query_for(const char *name, const char *backend)
{
    if (!name)
        return NULL;
    for (size_t i = 0; backend && i < sf_builtin_query_count; i++)
        if (!strcmp(sf_builtin_queries[i].name, name) &&
            !strcmp(sf_builtin_queries[i].backend, backend))
            return sf_builtin_queries[i].query;
    return sf_builtin_template_query(name);
}
