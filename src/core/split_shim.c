/* split_shim.c: TEMPORARY. Stand-ins for output-layer calls that other
 * parts of issue 8 implement (H-set: src/sink/fileset.c, output.c), so that
 * the library links before they land. Delete this file when they do (each
 * function separately if they land apart). Every stand-in describes an
 * output that is never split and has no record of a previous run. */
#include "split.h"

int sf_output_is_split(const sf_output *o)
{
    (void)o;
    return 0;
}

int sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes)
{
    (void)o, (void)row_bytes, (void)tail_bytes;
    return 0;
}

sf_status sf_output_next_part(sf_output *o)
{
    (void)o;
    return SF_ERR_STATE;
}

int sf_output_previous_rows(const sf_output *o, uint64_t *rows)
{
    (void)o, (void)rows;
    return 0;
}
