/* thinp receive: a stream from standard input into a new thin device. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "thinp.h"

static int read_stdin(void *buf, size_t len, size_t *got, void *ctx)
{
	ssize_t n;

	(void)ctx;
	do
		n = read(STDIN_FILENO, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*got = (size_t)n;
	return 0;
}

static int run(struct invocation *inv)
{
	const struct arg *name = opt(inv, "name");
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	thinp_catalog *cat;
	thinp_io *cio;
	uint64_t id;
	char msg[512], token[THINP_STREAM_TOKEN_SIZE];
	int r;

	if (open_catalog(inv, &cio, &cat))
		return EXIT_FAIL;
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	if (name->given)
		o.id = name->num;
	if (opt(inv, "resumable")->given) {
		o.flags |= THINP_RECEIVE_RESUMABLE;
		o.token = token;
		o.token_size = sizeof(token);
	}
	r = thinp_receive(inv->pool, cat, read_stdin, NULL, &o, &id);
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	if (r && o.token && *token) {
		err("%s; the device is kept: resume with thinp send --resume %s", *msg ? msg :
		    thinp_strerror(r), token);
		return EXIT_FAIL;
	}
	if (r)
		return err("%s", *msg ? msg : thinp_strerror(r));
	printf("%" PRIu64 "\n", id);
	return EXIT_OK;
}

static const struct option_spec options[] = {
	{ "name", 'n', "ID", 0, parse_u64, "the new device's id (default: the lowest free)" },
	{ "resumable", 'r', NULL, 0, NULL,
	  "if the stream breaks off after a checkpoint, keep\nthe hidden device and print a resume token" },
	OPT_CATALOG,
	{ NULL },
};

const struct command cmd_receive = {
	.name = "receive",
	.summary = "read a stream from standard input into a new thin device",
	.description =
		"Read one stream (thinp send) from standard input into a new thin\n"
		"device, which is published (its catalog entry no longer partial) only\n"
		"after the whole stream checked out; print its id. An incremental stream\n"
		"goes onto a snapshot of the device with its base guid, which must not\n"
		"have been modified since it was received. A stream of a device already\n"
		"here changes nothing and prints that device's id. On any error no\n"
		"visible device changes. With --resumable, an interrupted receive keeps\n"
		"its hidden device and prints a token; `thinp send --resume TOKEN` sends\n"
		"the rest, which this command then receives.\n",
	.options = options,
	.open = OPEN_POOL,
	.run = run,
};
