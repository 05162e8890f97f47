/* split.h: the output layer's calls the feed loop drives a split output
 * with (docs/plan: H-set implements them in src/sink/, declared in
 * src/sink/sink.h). Declared here too, with the same prototypes, so the
 * feed loop builds against them before and after they land. Internal. */
#ifndef SF_CORE_SPLIT_H
#define SF_CORE_SPLIT_H

#include "../common.h"

/* 1 when the output was opened with sf_output_open_parts(). */
int sf_output_is_split(const sf_output *o);
/* 1 when the next row (row_bytes rendered, tail_bytes the part's tail) must
 * start a new part: split_rows reached, or part bytes + row_bytes +
 * tail_bytes > split_bytes (never for the first row of a part). */
int sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes);
/* One more row in the current part. */
void sf_output_count_row(sf_output *o);
/* The current part (its tail written) is drained and finished; a new one
 * is opened. */
sf_status sf_output_next_part(sf_output *o);
/* The split_bytes option (0: no byte limit). Added to the plan's four: the
 * loop bounds its row buffer by it and refuses a row that can never fit. */
uint64_t sf_output_split_bytes(const sf_output *o);

#endif
