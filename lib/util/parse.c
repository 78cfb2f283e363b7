#include "os/os.h"

#include "util/parse.h"

int parse_split_words(char *buf, const char *blanks, char **words, int max)
{
	char *p = buf;
	int n = 0;

	for (;;) {
		while (*p && strchr(blanks, *p))
			*p++ = '\0';
		if (!*p)
			return n;
		if (n == max)
			return -EINVAL;
		words[n++] = p;
		while (*p && !strchr(blanks, *p))
			p++;
	}
}

int parse_decimal_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = s;
	*out = v;
	return 0;
}
