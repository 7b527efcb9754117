/*
 * text - bounded C string helpers.  See text.h.
 */
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int text_copy(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return -1;
    size_t n = strlen(src);
    if (n >= size) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

int text_parse_long(const char *s, long min, long max, long *value)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || *end != '\0' || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

char *text_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

char *text_next_word(char **cursor, const char *separators)
{
    char *p = *cursor;
    if (p == NULL)
        return NULL;
    p += strspn(p, separators);
    if (*p == '\0') {
        *cursor = p;
        return NULL;
    }
    char *end = p + strcspn(p, separators);
    if (*end != '\0')
        *end++ = '\0';
    *cursor = end;
    return p;
}

int text_equal_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}
