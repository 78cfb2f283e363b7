/* thinp receive: a stream from standard input into a new thin device. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinp.h"

struct counted {
	struct progress p;
	uint64_t bytes;
};

/* Standard input, counting the bytes for progress. */
static int read_stdin(void *buf, size_t len, size_t *got, void *ctx)
{
	struct counted *c = ctx;
	ssize_t n;

	do
		n = read(STDIN_FILENO, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*got = (size_t)n;
	c->bytes += (size_t)n;
	progress_update(&c->p, c->bytes, 0, false);
	return 0;
}

/* --list: every partial receive, "ID NEXT_BLOCK STREAM_ID". */
static int list_partial(thinp_catalog *cat)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));

	if (!e)
		return err("%s", strerror(ENOMEM));
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(cat, id, e) == 0; id = e->id + 1) {
		if (!(e->flags & THINP_CATALOG_PARTIAL))
			continue;
		printf("%" PRIu64 " %" PRIu64 " ", e->id, e->recv_next_block);
		for (int i = 0; i < 16; i++)
			printf("%02x", e->recv_stream[i]);
		printf("\n");
	}
	free(e);
	return EXIT_OK;
}

/* --list, --abort, --resume-token: the partial receives; --prune: the
 * anchors. Not a stream. */
static int manage(struct invocation *inv, thinp_catalog *cat)
{
	const struct arg *abort_id = opt(inv, "abort"), *tok_id = opt(inv, "resume-token");
	uint64_t id = abort_id->given ? abort_id->num : tok_id->num;
	char token[THINP_STREAM_TOKEN_SIZE];
	int r;

	if (opt(inv, "list")->given)
		return list_partial(cat);
	if (opt(inv, "prune")->given) {
		uint64_t dropped;

		if ((r = thinp_receive_prune(inv->pool, cat, &dropped)))
			return fail(inv, r, "pruning anchors");
		printf("%" PRIu64 "\n", dropped);
		return EXIT_OK;
	}
	if (abort_id->given)
		r = thinp_receive_abort(inv->pool, cat, id);
	else if (!(r = thinp_receive_token(inv->pool, cat, id, token, sizeof(token))))
		printf("%s\n", token);
	if (r == -EINVAL)
		return err("device %" PRIu64 " is not a partial receive", id);
	if (r == -ENODATA)
		return err("device %" PRIu64 ": no partial receive with a resume point", id);
	return r ? fail(inv, r, "device %" PRIu64, id) : EXIT_OK;
}

static int run(struct invocation *inv)
{
	const struct arg *name = opt(inv, "name");
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	thinp_catalog *cat;
	thinp_io *cio;
	uint64_t id;
	struct counted c = { .bytes = 0 };
	char msg[512], token[THINP_STREAM_TOKEN_SIZE], origin[THINP_CATALOG_ORIGIN_MAX];
	int r, manage_ops = opt(inv, "list")->given + opt(inv, "abort")->given +
			    opt(inv, "resume-token")->given + opt(inv, "prune")->given;

	if (manage_ops > 1)
		return usage_err("--list, --abort, --resume-token and --prune exclude each other");
	if (opt(inv, "origin")->given) {
		if (parse_origin(opt(inv, "origin")->str, origin, o.origin_guid))
			return EXIT_FAIL;
		o.origin = origin;
	}
	if (open_catalog(inv, &cio, &cat))
		return EXIT_FAIL;
	if (manage_ops) {
		r = manage(inv, cat);
		thinp_catalog_close(cat);
		thinp_io_close(cio);
		return r;
	}
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	if (name->given)
		o.id = name->num;
	if (opt(inv, "resumable")->given) {
		o.flags |= THINP_RECEIVE_RESUMABLE;
		o.token = token;
		o.token_size = sizeof(token);
	}
	progress_start(&c.p, inv, "receive");
	r = thinp_receive(inv->pool, cat, read_stdin, &c, &o, &id);
	progress_update(&c.p, c.bytes, 0, true);
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
	{ "origin", 'o', "FILE[=GUID]", 0, NULL,
	  "FILE holds the stream's external origin (the same\nbytes as the sender's; GUID, 32 hex digits, must\n"
	  "then be the stream's origin guid)" },
	{ "resumable", 'r', NULL, 0, NULL,
	  "if the stream breaks off after a checkpoint, keep\nthe hidden device and print a resume token" },
	{ "list", 'l', NULL, 0, NULL,
	  "list the partial receives instead: ID, next block,\nstream id, one per line" },
	{ "abort", 'a', "ID", 0, parse_u64,
	  "give up partial receive ID instead: delete the\ndevice and its catalog entry" },
	{ "resume-token", 't', "ID", 0, parse_u64,
	  "print partial receive ID's resume token instead\n(for thinp send --resume)" },
	{ "prune", 0, NULL, 0, NULL,
	  "delete the anchors that serve no one instead (their\ndevice gone or modified); print how many" },
	OPT_PROGRESS,
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
		"the rest, which this command then receives. --list shows the partial\n"
		"receives kept, --abort ID deletes one, --resume-token ID prints its\n"
		"token again. --prune deletes the anchors (hidden snapshots of received\n"
		"devices) whose device was deleted behind the library's back or was\n"
		"modified.\n",
	.options = options,
	.open = OPEN_POOL,
	.run = run,
};
