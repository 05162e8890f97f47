/* value.h: the one value type the template engine reads, whoever provides
 * it (a database row, the render's parameters, JSON in the spec tests).
 * Internal. */
#ifndef SF_VALUE_H
#define SF_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sf_val sf_val;

/* How the engine asks a provider for more: maps by name, lists by index.
 * `sym` is the template's interned id of `name` (providers that built a
 * map from ids answer in O(1); others compare `name`). */
typedef struct sf_data_ops {
    /* A map's value for a name: 1 found (*out set), 0 absent, -1 error. */
    int (*lookup)(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out);
    /* A list's element idx, asked for 0, 1, 2, ... in order, each once per
     * iteration: 1 got (*out set), 0 past the end, -1 error. */
    int (*item)(void *obj, size_t idx, sf_val *out);
} sf_data_ops;

typedef enum sf_val_kind {
    SF_VAL_MISSING = 0, /* no such name: renders empty, falsey */
    SF_VAL_NULL,        /* present but null (SQL NULL): renders empty, falsey */
    SF_VAL_BOOL,        /* renders "true"/"false" */
    SF_VAL_TEXT,        /* s[0..n): any bytes; numbers come as their text */
    SF_VAL_LIST,        /* ops->item */
    SF_VAL_MAP          /* ops->lookup */
} sf_val_kind;

struct sf_val {
    uint8_t kind;   /* sf_val_kind */
    uint8_t truthy; /* set by the provider; see docs/template.md */
    const char *s;
    size_t n;
    const sf_data_ops *ops;
    void *obj;
};

#endif
