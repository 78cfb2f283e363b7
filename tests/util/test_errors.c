/*
 * thinp_strerror: every errno code the library returns (found by scanning
 * the library's sources for "-E...") has a real description; the codes
 * include/libthinp/common.h gives a meaning get exactly that text; others
 * get the C library's description; unknown ones a fixed fallback, never NULL.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>

#define NAME(e) { #e, e }
/* Every errno name the library may use. A code found in lib/ but missing
 * here fails the scan: add it, and give it a meaning if it has one. */
static const struct {
	const char *name;
	int code;
} names[] = {
	NAME(ENODATA), NAME(ENOSPC), NAME(EILSEQ), NAME(ENOTBLK), NAME(EEXIST),
	NAME(EBUSY), NAME(EROFS), NAME(EINVAL), NAME(ENOMEM), NAME(EIO),
	NAME(EOPNOTSUPP), NAME(ENOTSUP), NAME(EAGAIN), NAME(EOVERFLOW), NAME(ERANGE),
	NAME(EFBIG), NAME(ETIMEDOUT), NAME(ENOENT), NAME(EACCES), NAME(EPERM),
	NAME(ENOTDIR), NAME(EISDIR), NAME(ESTALE), NAME(EPROTO), NAME(ENXIO),
	NAME(EINTR), NAME(EBADF), NAME(ENODEV), NAME(ENOTTY), NAME(EDEADLK),
	NAME(ENOLCK), NAME(EWOULDBLOCK), NAME(ECANCELED), NAME(ENOSYS),
	NAME(EMFILE), NAME(ENFILE), NAME(ETXTBSY), NAME(ELOOP), NAME(ENAMETOOLONG),
	NAME(EPIPE), NAME(ECONNRESET), NAME(ENOTCONN), NAME(EINPROGRESS),
};

static int code_of(const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(names[i].name, name))
			return names[i].code;
	return 0;
}

static char *read_source(const char *rel)
{
	const char *top = getenv("THINP_SRCDIR");
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void need_srcdir(void)
{
	if (!getenv("THINP_SRCDIR") || !getenv("THINP_LIB_SOURCES")) {
		print_message("THINP_SRCDIR/THINP_LIB_SOURCES unset (run through make check)\n");
		skip();
	}
}

/* " *   -ECODE  meaning" lines of common.h's header comment. */
static void test_documented_meanings(void **state)
{
	char *src, *line;
	int found = 0;

	(void)state;
	need_srcdir();
	src = read_source("include/libthinp/common.h");
	for (line = strtok(src, "\n"); line; line = strtok(NULL, "\n")) {
		char name[32], text[256];
		int code;

		if (strncmp(line, " *   -E", 7) ||
		    sscanf(line + 6, "%31[A-Z0-9] %255[^\n]", name, text) != 2)
			continue;
		code = code_of(name);
		if (!code)
			fail_msg("common.h documents %s, unknown to this test", name);
		assert_string_equal(thinp_strerror(-code), text);
		assert_string_equal(thinp_strerror(code), text);
		found++;
	}
	free(src);
	assert_true(found >= 10);
}

/* Each "-EXXX" in a library source names a code with a real description. */
static void scan(const char *rel, int *found)
{
	char *src = read_source(rel);

	for (char *p = src; (p = strstr(p, "-E")); p++) {
		char name[32];
		size_t n = 0;
		int code;

		if (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		while (n + 1 < sizeof(name) && (isupper((unsigned char)p[1 + n]) ||
						isdigit((unsigned char)p[1 + n])))
			name[n] = p[1 + n], n++;
		name[n] = '\0';
		if (n < 3 || isalnum((unsigned char)p[1 + n]) || p[1 + n] == '_')
			continue;
		code = code_of(name);
		if (!code)
			fail_msg("%s returns -%s: add it to this test's list", rel, name);
		assert_non_null(thinp_strerror(-code));
		if (!strcmp(thinp_strerror(-code), "unknown error"))
			fail_msg("%s returns -%s, which thinp_strerror does not describe", rel, name);
		(*found)++;
	}
	free(src);
}

static void test_every_library_code_described(void **state)
{
	char *list, *rel;
	int found = 0, files = 0;

	(void)state;
	need_srcdir();
	list = strdup(getenv("THINP_LIB_SOURCES"));
	assert_non_null(list);
	for (rel = strtok(list, " \t\n"); rel; rel = strtok(NULL, " \t\n"), files++) {
		char *copy = strdup(rel);

		assert_non_null(copy);
		scan(copy, &found);
		free(copy);
	}
	free(list);
	print_message("%d files, %d error returns described\n", files, found);
	assert_true(files > 20);
	assert_true(found > 100);
}

/* Codes the library passes through from the system (open(2) and I/O): the C
 * library's own description, not a libthinp meaning. */
static void test_passed_through_codes(void **state)
{
	static const int codes[] = { ENOENT, EACCES, EPERM, ENOTDIR, EISDIR, ESTALE, EPROTO, ENXIO };

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = thinp_strerror(-codes[i]);

		assert_non_null(s);
		assert_string_equal(s, strerror(codes[i])); /* one thread: strerror is fine here */
	}
	assert_string_equal(thinp_strerror(-ENOTSUP), thinp_strerror(-EOPNOTSUPP));
}

static void test_unknown_codes(void **state)
{
	(void)state;
	assert_string_equal(thinp_strerror(0), "success");
	assert_string_equal(thinp_strerror(-99999), "unknown error");
	assert_string_equal(thinp_strerror(99999), "unknown error");
	assert_string_equal(thinp_strerror(INT_MIN), "unknown error");
	assert_string_equal(thinp_strerror(INT_MAX), "unknown error");
	for (int e = -5000; e <= 5000; e++)
		assert_true(thinp_strerror(e) && thinp_strerror(e)[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented_meanings),
		cmocka_unit_test(test_every_library_code_described),
		cmocka_unit_test(test_passed_through_codes),
		cmocka_unit_test(test_unknown_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
