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

void sf_output_count_row(sf_output *o) { (void)o; }

sf_status sf_output_next_part(sf_output *o)
{
    (void)o;
    return SF_ERR_STATE;
}

uint64_t sf_output_split_bytes(const sf_output *o)
{
    (void)o;
    return 0;
}

size_t sf_output_part_count(const sf_output *o) { return o ? 1 : 0; }

const char *sf_output_part_path(const sf_output *o, size_t i)
{
    (void)o, (void)i;
    return NULL;
}

uint64_t sf_output_part_rows(const sf_output *o, size_t i)
{
    (void)o, (void)i;
    return 0;
}

uint64_t sf_output_part_bytes(const sf_output *o, size_t i)
{
    return i == 0 ? sf_output_bytes(o) : 0;
}

int sf_output_previous_rows(const sf_output *o, uint64_t *rows)
{
    (void)o, (void)rows;
    return 0;
}
