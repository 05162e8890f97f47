/* sqlite_mem.c: routes SQLite's allocator into the census, so its page cache
 * and statements are a census row ("sqlite") like everything else. SQLite's
 * hook (SQLITE_CONFIG_MALLOC) is process-wide and its functions get no
 * context pointer, so it lives here, in the program, not in the library. */
#include <sqlite3.h>

#include "cli.h"

static sf_census *sqlite_census;

static void *sq_malloc(int n)
{
    return n > 0 ? sf_census_malloc(sqlite_census, SF_MEM_SQLITE, (size_t)n) : NULL;
}
static void sq_free(void *p) { sf_census_dealloc(sqlite_census, p); }
static void *sq_realloc(void *p, int n)
{
    return n > 0 ? sf_census_realloc(sqlite_census, SF_MEM_SQLITE, p, (size_t)n) : NULL;
}
static int sq_size(void *p) { return (int)sf_census_block_size(p); }
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *ud) { (void)ud; return SQLITE_OK; }
static void sq_shutdown(void *ud) { (void)ud; }

int cli_route_sqlite(sf_census *census)
{
    static sqlite3_mem_methods methods = {sq_malloc, sq_free,  sq_realloc, sq_size,
                                          sq_roundup, sq_init, sq_shutdown, NULL};
    sqlite_census = census;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
        return -1;
    /* The census counts; SQLite's own (mutex-guarded) statistics are not needed. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return 0;
}

void cli_unroute_sqlite(void) { sqlite3_shutdown(); }
