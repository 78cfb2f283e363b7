/* thinp message: one pool message, parsed by the library as the kernel does. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

/* The operands joined by single spaces: `message create_thin 0` and
 * `message 'create_thin 0'` mean the same. */
static char *join_words(int argc, char **argv)
{
	size_t len = 1;
	char *msg;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	msg = calloc(1, len);
	if (!msg)
		return NULL;
	for (int i = 0; i < argc; i++) {
		if (i)
			strcat(msg, " ");
		strcat(msg, argv[i]);
	}
	return msg;
}

int cmd_message(int argc, char **argv)
{
	const char *path;
	struct meta_ctx c;
	char *msg;
	int r, e;

	if ((r = parse_metadata_only(argc, argv, true, &path)) >= 0)
		return r;
	if (!path)
		return usage_err("the metadata file is required (-m FILE)");
	if (optind == argc)
		return usage_err("no message given");
	msg = join_words(argc - optind, argv + optind);
	if (!msg)
		return err("out of memory");
	r = meta_open(&c, path, 0);
	if (!r) {
		e = thinp_meta_message(c.meta, msg);
		if (e)
			r = err("'%s': %s", msg, meta_error(&c, e));
		meta_close(&c);
	}
	free(msg);
	return r;
}
