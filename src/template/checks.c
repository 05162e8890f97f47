/* checks.c: row checks declared in a template (issue 9, point 4). Not yet
 * written: no comment is a check comment, so no template has rules. */
#include "template.h"

int sf_tpl_rules_comment(sf_template *t, const char *s, size_t n, char *why, size_t whylen)
{
    (void)t, (void)s, (void)n, (void)why, (void)whylen;
    return 0;
}

void sf_tpl_rules_free(sf_template *t) { t->rules = NULL; }
