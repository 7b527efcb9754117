/*
 * text - bounded C string helpers.  See text.h.
 */
#include "text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ASCII only, whatever the locale: <ctype.h> answers by LC_CTYPE, so once
 * a program calls setlocale() bytes above 127 may count as letters or
 * space in an 8-bit locale (cutting UTF-8 sequences apart), and in a
 * Turkish ISO-8859-9 locale tolower('I') is the dotless i, not 'i'. */
static int ascii_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

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
    if (!ascii_digit(*p))
        return -1;
    for (const char *q = p; *q; q++)
        if (!ascii_digit(*q))
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
    while (ascii_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && ascii_space(s[n - 1]))
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
        if (ascii_lower(*a) != ascii_lower(*b))
            return 0;
    return *a == *b;
}
