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
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	struct meta_ctx c;
	char *msg;
	int ch, r, e;

	/* '+': stop at the first operand, so message words are never options. */
	while ((ch = getopt_long(argc, argv, "+:m:h", longopts, NULL)) != -1) {
		if (ch == 'm')
			path = optarg;
		else if (ch == 'h')
			return print_usage();
		else
			return bad_option(ch, argc, argv);
	}
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
