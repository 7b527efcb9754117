/*
 * table_static - static:VALUE, the table in which every key is found with
 * the same VALUE (Postfix's static: type).  "static:{ text with spaces }"
 * gives the text inside the braces, trimmed.  Keys are not looked at, so
 * case does not matter; a static table cannot be listed.
 *
 *     table_open("static:local", 0, &error);
 *     table_open("static:{ 550 5.1.1 no such user }", 0, &error);
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table_driver.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int static_open(struct table *t, const char *name, struct buf *error)
{
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
        name++;
        len -= 2;
        while (len > 0 && is_space(*name)) {
            name++;
            len--;
        }
        while (len > 0 && is_space(name[len - 1]))
            len--;
    } else if (len > 0 && name[0] == '{') {
        (void)buf_printf(error, "%s: missing '}'", t->spec);
        return -1;
    }
    struct buf *value = malloc(sizeof(*value));
    if (value == NULL) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(ENOMEM));
        return -1;
    }
    buf_init(value, TABLE_VALUE_MAX);
    if (buf_set(value, name, len) != 0) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(errno));
        buf_free(value);
        free(value);
        return -1;
    }
    t->state = value;
    return 0;
}

static int static_lookup(struct table *t, const char *key, struct buf *value,
                         struct buf *error)
{
    (void)key;
    const struct buf *fixed = t->state;
    if (buf_set(value, buf_cstr(fixed), fixed->len) != 0) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(errno));
        return TABLE_ERROR;
    }
    return TABLE_FOUND;
}

static void static_close(struct table *t)
{
    struct buf *value = t->state;
    if (value != NULL)
        buf_free(value);
    free(value);
    t->state = NULL;
}

const struct table_ops table_static_ops = {
    .type = "static",
    .open = static_open,
    .lookup = static_lookup,
    .iterate = NULL,
    .close = static_close,
};
