/*
 * text - small, bounded helpers for C strings, used instead of strcpy,
 * strcat and sprintf.
 *
 *   text_copy(dst, size, src)      copies with a NUL; -1 if src did not fit
 *                                  (dst then holds nothing: "").
 *   text_parse_long(s, min, max, &v)  strict decimal: optional sign, digits,
 *                                  nothing else; -1 on junk or out of range.
 *   text_trim(s)                   strips white space at both ends in place
 *                                  and returns the first non-space char.
 *   text_next_word(&cursor, seps)  strtok-like, without hidden state:
 *                                  returns the next token of characters not
 *                                  in seps (NUL-terminating it in place) and
 *                                  advances cursor; NULL at the end.
 *   text_equal_nocase(a, b)        ASCII case-insensitive equality.
 */
#ifndef POSTINO_TEXT_H
#define POSTINO_TEXT_H

#include <stddef.h>

int text_copy(char *dst, size_t size, const char *src);
int text_parse_long(const char *s, long min, long max, long *value);
char *text_trim(char *s);
char *text_next_word(char **cursor, const char *separators);
int text_equal_nocase(const char *a, const char *b);

#endif
