/*
 * Parsing the words of a message line (pool messages, catalog messages)
 * without the C library's strtok_r and strtoull, which a kernel build lacks.
 */
#ifndef THINP_UTIL_PARSE_H
#define THINP_UTIL_PARSE_H

#include "os/os.h"

/* Split buf in place into at most max words separated by any of the
 * characters of blanks (which become NULs). Returns the number of words,
 * or -EINVAL if there are more than max. */
int parse_split_words(char *buf, const char *blanks, char **words, int max);

/* One or more decimal digits at s, as an unsigned 64-bit number; *end is set
 * past the last digit. -EINVAL if s does not start with a digit, -ERANGE if
 * the number does not fit. */
int parse_decimal_u64(const char *s, const char **end, uint64_t *out);

#endif
