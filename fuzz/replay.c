/*
 * main() for every fuzz harness (see fuzz/Makefile.inc for how to add one).
 *
 * Built normally, a harness replays inputs: the files and directories named on
 * the command line, or by default every file of fuzz/corpus/<target>/ (the
 * target's name is the program's). `make check` runs it that way, so each
 * corpus is a regression suite that needs no AFL++; an empty or missing corpus
 * is an error, not a pass.
 *
 * Built with afl-clang-fast (CC=afl-clang-fast ./configure), the same program
 * is an AFL++ persistent-mode fuzzer when afl-fuzz runs it (afl-fuzz exports
 * __AFL_SHM_ID), and still replays when run by hand or by `make check`.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_CORPUS_DIR
#define FUZZ_CORPUS_DIR "fuzz/corpus"
#endif

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (!nb) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	fclose(f);
	/* Name the input first: if it crashes, the log says which one. */
	fprintf(stderr, "  %s (%zu bytes)\n", path, len);
	fuzz_one(buf, len);
	free(buf);
	return 0;
}

/* Replay a file, or every file under a directory (sorted, dot files skipped).
 * Returns the number of inputs replayed, or -1. */
static long replay_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	long total = 0, n;
	int i, count;

	if (stat(path, &st)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) ? -1 : 1;
	count = scandir(path, &names, NULL, alphasort);
	if (count < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < count; i++) {
		char sub[4096];

		if (names[i]->d_name[0] == '.' || total < 0) {
			free(names[i]);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
		n = replay_path(sub);
		total = n < 0 ? -1 : total + n;
		free(names[i]);
	}
	free(names);
	return total;
}

static int replay_main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	char dflt[4096];
	long total = 0, n;
	int i;

	if (strncmp(name, "lt-", 3) == 0) /* libtool's wrapper-run binary */
		name += 3;
	if (argc < 2) {
		snprintf(dflt, sizeof(dflt), "%s/%s", FUZZ_CORPUS_DIR, name);
		fprintf(stderr, "%s: replaying %s\n", name, dflt);
		n = replay_path(dflt);
		total = n;
	}
	for (i = 1; i < argc && total >= 0; i++) {
		n = replay_path(argv[i]);
		total = n < 0 ? -1 : total + n;
	}
	if (total <= 0) {
		fprintf(stderr, "%s: %s\n", name,
			total ? "could not read the inputs" : "no inputs to replay (empty corpus?)");
		return 1;
	}
	fprintf(stderr, "%s: replayed %ld inputs, no crash\n", name, total);
	return 0;
}

#ifdef __AFL_HAVE_MANUAL_CONTROL
__AFL_FUZZ_INIT();

int main(int argc, char **argv)
{
	unsigned char *buf;

	if (argc > 1 || !getenv("__AFL_SHM_ID"))
		return replay_main(argc, argv);
	__AFL_INIT();
	buf = __AFL_FUZZ_TESTCASE_BUF;
	while (__AFL_LOOP(10000))
		fuzz_one(buf, (size_t)__AFL_FUZZ_TESTCASE_LEN);
	return 0;
}
#else
int main(int argc, char **argv)
{
	return replay_main(argc, argv);
}
#endif
