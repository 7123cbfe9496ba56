/* SPDX-License-Identifier: MIT */
/* A small JSON reader for the benchmark programs' output (brood bench --plot). */
#ifndef BROOD_TOOL_JSON_H
#define BROOD_TOOL_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
        enum json_type type;
        double num;                     /* NUM, BOOL (0/1) */
        char *str;                      /* STR; the key of an object member */
        char *key;
        struct json *kids;              /* ARR elements / OBJ members */
        size_t nkids;
};

/* Parse @text; NULL on a syntax error or no memory.  Free with json_free(). */
struct json *json_parse(const char *text);
void json_free(struct json *j);
/* Member @key of an object, element @i of an array; NULL if absent. */
const struct json *json_get(const struct json *j, const char *key);
const struct json *json_at(const struct json *j, size_t i);
/* A number at a path of keys ("a", "b", NULL); @def if absent or not a number.
 * The compiler checks that the path ends with a null pointer (glibc's NULL
 * is one, so a plain NULL ends it). */
double json_num(const struct json *j, double def, ...) __attribute__((sentinel));

#endif
