/* thinp message: one pool message, parsed by the library as the kernel does. */
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

static int run(struct invocation *inv)
{
	char *msg = join_words(inv->nr_operands, inv->operands);
	int e, r = EXIT_OK;

	if (!msg)
		return err("out of memory");
	e = thinp_meta_message(inv->meta, msg);
	if (e)
		r = fail(inv, e, "'%s'", msg);
	free(msg);
	return r;
}

static const struct operand_spec operands[] = { { "MESSAGE", NULL }, { NULL } };

const struct command cmd_message = {
	.name = "message",
	.summary = "send a pool message (create_thin, create_snap, ...)",
	.description =
		"Run one thin-pool message as `dmsetup message POOL 0 MESSAGE` would,\n"
		"then commit. The words may also be given as separate arguments.\n"
		"  create_thin ID                 a new thin device\n"
		"  create_snap ID ORIGIN_ID       a snapshot of ORIGIN_ID\n"
		"  delete ID                      delete a device and its mappings\n"
		"  set_transaction_id CUR NEW     set the transaction id if it is CUR\n"
		"  reserve_metadata_snap          take a metadata snapshot\n"
		"  release_metadata_snap          drop the metadata snapshot\n"
		"Ids are 0 .. 16777215.\n",
	.operands = operands,
	.min_operands = 1,
	.more_operands = true,
	.open = OPEN_META,
	.run = run,
};
