/* SPDX-License-Identifier: MIT */
/* Recursive-descent JSON reader: enough for our own benchmark output. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
        const char *p;
        int depth;
};

static void skip_ws(struct parser *ps)
{
        while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')
                ps->p++;
}

static int parse_value(struct parser *ps, struct json *out);

/* The length of the JSON number at @p (RFC 8259:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), 0 if there is none:
 * strtod() takes inf, nan, hex, a leading + or ., which no JSON reader
 * after us would. */
static size_t number_len(const char *p)
{
        const char *s = p;

        if (*s == '-')
                s++;
        if (*s == '0')
                s++;
        else if (*s >= '1' && *s <= '9')
                while (isdigit((unsigned char)*s))
                        s++;
        else
                return 0;
        if (*s == '.') {
                if (!isdigit((unsigned char)*++s))
                        return 0;
                while (isdigit((unsigned char)*s))
                        s++;
        }
        if (*s == 'e' || *s == 'E') {
                if (*++s == '+' || *s == '-')
                        s++;
                if (!isdigit((unsigned char)*s))
                        return 0;
                while (isdigit((unsigned char)*s))
                        s++;
        }
        return (size_t)(s - p);
}
static void free_inner(struct json *j);

static char *parse_string(struct parser *ps)
{
        const char *s = ++ps->p;        /* after the quote */
        size_t n = 0, cap = 16;
        char *buf = malloc(cap);

        if (!buf)
                return NULL;
        while (*s && *s != '"') {
                char c = *s++;

                if ((unsigned char)c < 0x20) {
                        free(buf);      /* a raw control byte: no JSON string */
                        return NULL;
                }
                if (c == '\\') {
                        c = *s++;
                        switch (c) {
                        case 'n': c = '\n'; break;
                        case 't': c = '\t'; break;
                        case 'r': c = '\r'; break;
                        case 'b': c = '\b'; break;
                        case 'f': c = '\f'; break;
                        case 'u':
                                /* Our output only escapes control bytes: keep the low byte. */
                                if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
                                    !isxdigit((unsigned char)s[2]) || !isxdigit((unsigned char)s[3])) {
                                        free(buf);
                                        return NULL;
                                }
                                c = (char)strtol((char[]){ s[2], s[3], 0 }, NULL, 16);
                                s += 4;
                                break;
                        case '"':
                        case '\\':
                        case '/':
                                break;
                        default:                /* \0, \q...: no JSON escape */
                                free(buf);
                                return NULL;
                        }
                }
                if (n + 1 >= cap) {
                        char *nb = realloc(buf, cap *= 2);

                        if (!nb) {
                                free(buf);
                                return NULL;
                        }
                        buf = nb;
                }
                buf[n++] = c;
        }
        if (*s != '"') {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        ps->p = s + 1;
        return buf;
}

static int push(struct json *parent, struct json *kid)
{
        struct json *nk = realloc(parent->kids, (parent->nkids + 1) * sizeof(*nk));

        if (!nk)
                return -1;
        parent->kids = nk;
        parent->kids[parent->nkids++] = *kid;
        return 0;
}

static int parse_container(struct parser *ps, struct json *out, char close)
{
        ps->p++;
        out->type = close == '}' ? JSON_OBJ : JSON_ARR;
        skip_ws(ps);
        if (*ps->p == close) {
                ps->p++;
                return 0;
        }
        for (;;) {
                struct json kid = { 0 };
                char *key = NULL;

                skip_ws(ps);
                if (close == '}') {
                        if (*ps->p != '"' || !(key = parse_string(ps)))
                                return -1;
                        skip_ws(ps);
                        if (*ps->p++ != ':') {
                                free(key);
                                return -1;
                        }
                }
                if (parse_value(ps, &kid) < 0) {
                        free(key);
                        free_inner(&kid);
                        return -1;
                }
                kid.key = key;
                if (push(out, &kid) < 0) {
                        free_inner(&kid);       /* its key, string and children */
                        return -1;
                }
                skip_ws(ps);
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p == close) {
                        ps->p++;
                        return 0;
                }
                return -1;
        }
}

static int parse_scalar(struct parser *ps, struct json *out);

static int parse_value(struct parser *ps, struct json *out)
{
        int r;

        if (ps->depth >= 64)
                return -1;              /* nesting bound: no stack exhaustion */
        ps->depth++;
        r = parse_scalar(ps, out);
        ps->depth--;
        return r;
}

static int parse_scalar(struct parser *ps, struct json *out)
{
        char *end;
        size_t n;

        skip_ws(ps);
        switch (*ps->p) {
        case '{': return parse_container(ps, out, '}');
        case '[': return parse_container(ps, out, ']');
        case '"':
                out->type = JSON_STR;
                out->str = parse_string(ps);
                return out->str ? 0 : -1;
        case 't':
                if (strncmp(ps->p, "true", 4))
                        return -1;
                ps->p += 4;
                out->type = JSON_BOOL;
                out->num = 1;
                return 0;
        case 'f':
                if (strncmp(ps->p, "false", 5))
                        return -1;
                ps->p += 5;
                out->type = JSON_BOOL;
                return 0;
        case 'n':
                if (strncmp(ps->p, "null", 4))
                        return -1;
                ps->p += 4;
                out->type = JSON_NULL;
                return 0;
        default:
                out->type = JSON_NUM;
                n = number_len(ps->p);
                if (!n)
                        return -1;
                out->num = strtod(ps->p, &end);
                if (end != ps->p + n)
                        return -1;
                ps->p = end;
                return 0;
        }
}

static void free_inner(struct json *j)
{
        size_t i;

        for (i = 0; i < j->nkids; i++)
                free_inner(&j->kids[i]);
        free(j->kids);
        free(j->str);
        free(j->key);
}

void json_free(struct json *j)
{
        if (j) {
                free_inner(j);
                free(j);
        }
}

struct json *json_parse(const char *text)
{
        struct parser ps = { text, 0 };
        struct json *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        if (parse_value(&ps, j) < 0) {
                free_inner(j);
                free(j);
                return NULL;
        }
        skip_ws(&ps);
        if (*ps.p) {
                free_inner(j);
                free(j);
                return NULL;
        }
        return j;
}

const struct json *json_get(const struct json *j, const char *key)
{
        size_t i;

        if (!j || j->type != JSON_OBJ)
                return NULL;
        for (i = 0; i < j->nkids; i++)
                if (j->kids[i].key && !strcmp(j->kids[i].key, key))
                        return &j->kids[i];
        return NULL;
}

const struct json *json_at(const struct json *j, size_t i)
{
        return j && j->type == JSON_ARR && i < j->nkids ? &j->kids[i] : NULL;
}

double json_num(const struct json *j, double def, ...)
{
        const char *key;
        va_list ap;

        va_start(ap, def);
        while (j && (key = va_arg(ap, const char *)))
                j = json_get(j, key);
        va_end(ap);
        return j && (j->type == JSON_NUM || j->type == JSON_BOOL) ? j->num : def;
}
