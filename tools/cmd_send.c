/* thinp send: a thin device as a stream (docs/STREAM.md) on standard output. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "thinp.h"

struct counted {
	struct progress p;
	uint64_t bytes;
};

/* Standard output, counting the bytes for progress. */
static int write_counted(const void *buf, size_t len, void *ctx)
{
	struct counted *c = ctx;
	int r = stream_write_stdout(buf, len, NULL);

	c->bytes += len;
	progress_update(&c->p, c->bytes, 0, false);
	return r;
}

static int run(struct invocation *inv)
{
	const struct arg *from = opt(inv, "from");
	thinp_send_options o = THINP_SEND_OPTIONS_INIT;
	thinp_catalog *cat;
	thinp_io *cio;
	struct counted c = { .bytes = 0 };
	char msg[512];
	int r;

	if (isatty(STDOUT_FILENO))
		return usage_err("standard output is a terminal: redirect the stream");
	if (open_catalog(inv, &cio, &cat))
		return EXIT_FAIL;
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	o.resume_token = opt(inv, "resume")->str;
	o.checkpoint_bytes = opt(inv, "checkpoint")->num;
	progress_start(&c.p, inv, "send");
	r = thinp_send(inv->pool, cat, inv->operand[0].num,
		       from->given ? from->num : THINP_SEND_FULL, write_counted, &c, &o);
	progress_update(&c.p, c.bytes, 0, true);
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	return r ? err("%s", *msg ? msg : thinp_strerror(r)) : EXIT_OK;
}

static const struct option_spec options[] = {
	{ "from", 'f', "BASE", 0, parse_u64,
	  "an incremental stream: only what changed since\nBASE, a device the receiver already has" },
	{ "checkpoint", 0, "SIZE", 0, parse_size,
	  "a resume point every SIZE bytes of stream\n(default 64m)" },
	{ "resume", 'r', "TOKEN", 0, NULL,
	  "the rest of an interrupted stream, from the token\nthinp receive --resumable printed" },
	OPT_PROGRESS,
	OPT_CATALOG,
	{ NULL },
};
static const struct operand_spec operands[] = { { "DEV", parse_u64 }, { NULL, NULL } };

const struct command cmd_send = {
	.name = "send",
	.summary = "write a thin device as a stream to standard output",
	.description =
		"Write thin device DEV as a stream (docs/STREAM.md) to standard output:\n"
		"every mapped block, or with --from only the blocks that differ from\n"
		"BASE. The stream names DEV and BASE by their catalog guids; a device\n"
		"without one is given one. Send snapshots: DEV and BASE must not be\n"
		"written during the send.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
