/*
 * thinp: command-line access to dm-thin pool metadata through libthinp.
 *
 * `thinp COMMAND -m METADATA [options]`. Commands are rows of one table;
 * adding one (the data commands write/read/discard/resize will come) means a
 * cmd_<name>.c with its run function and usage text, and a row here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

static const struct command commands[] = {
	{ "format", cmd_format, "create a new, empty pool metadata",
	  "Usage: thinp format -m META --block-size SIZE --data-blocks N [--force]\n"
	  "\n"
	  "Write fresh pool metadata on META (an existing file or block device;\n"
	  "its size is the metadata size, used up to ~15.9 GiB).\n"
	  "  -m, --metadata META    the metadata file\n"
	  "  -b, --block-size SIZE  data block size in bytes, k/m/g suffixes allowed\n"
	  "                         (64k .. 1g, a multiple of 64k)\n"
	  "  -n, --data-blocks N    size of the data device in data blocks\n"
	  "  -f, --force            overwrite valid metadata already on META\n" },
	{ "message", cmd_message, "send a pool message (create_thin, create_snap, ...)",
	  "Usage: thinp message -m META 'MESSAGE'\n"
	  "\n"
	  "Run one thin-pool message as `dmsetup message POOL 0 MESSAGE` would,\n"
	  "then commit. The words may also be given as separate arguments.\n"
	  "  create_thin ID                 a new thin device\n"
	  "  create_snap ID ORIGIN_ID       a snapshot of ORIGIN_ID\n"
	  "  delete ID                      delete a device and its mappings\n"
	  "  set_transaction_id CUR NEW     set the transaction id if it is CUR\n"
	  "  reserve_metadata_snap          take a metadata snapshot\n"
	  "  release_metadata_snap          drop the metadata snapshot\n"
	  "Ids are 0 .. 16777215.\n" },
	{ "create", cmd_create, "create a thin device or snapshot and its catalog entry",
	  "Usage: thinp create -m META -d DATA --size SIZE [--origin FILE]\n"
	  "                    [--snapshot-of ID] [--read-only] [--catalog FILE] ID\n"
	  "\n"
	  "Create thin device ID in the pool (or, with --snapshot-of, a snapshot\n"
	  "of device ID), then record it in the pool's catalog (docs/CATALOG.md):\n"
	  "its virtual size, flags and external origin, and a new random guid.\n"
	  "Front-ends (the nbdkit plugin, thinp-fuse) serve it from that entry.\n"
	  "  -m, --metadata META     the metadata file\n"
	  "  -d, --data DATA         the data file\n"
	  "  -s, --size SIZE         virtual size in bytes, k/m/g suffixes allowed;\n"
	  "                          a snapshot takes its origin's when not given\n"
	  "  -o, --origin FILE       read-only external origin: unprovisioned blocks\n"
	  "                          read from FILE (a snapshot inherits its origin's)\n"
	  "  -S, --snapshot-of ID    make a snapshot of device ID\n"
	  "  -r, --read-only         mark the device read-only for front-ends\n"
	  "  -c, --catalog FILE      the catalog file (default META.vol, created\n"
	  "                          if missing)\n" },
	{ "control", cmd_control, "send a command to a running server",
	  "Usage: thinp control SOCKET 'COMMAND'\n"
	  "\n"
	  "Send COMMAND to the control socket of a running server (the nbdkit\n"
	  "plugin's control=SOCKET) and print its reply. Exit status 0 when the\n"
	  "reply is 'ok ...', 1 when it is 'error: ...'. Commands:\n"
	  "  create_thin ID SIZE      a new device of SIZE bytes\n"
	  "  create_snap ID ORIGIN    a snapshot of a device, served or not\n"
	  "  delete ID                delete a device no client has open\n"
	  "  commit                   commit the pool\n"
	  "  ls                       ID:SIZE of every catalog entry\n"
	  "  status                   transaction id, used/total data blocks\n" },
	{ "status", cmd_status, "print the pool status line",
	  "Usage: thinp status -m META\n"
	  "\n"
	  "Print the kernel's thin-pool status fields:\n"
	  "  <transaction id> <used>/<total metadata blocks> <used>/<total data blocks>\n"
	  "  <held metadata root|-> <rw|ro> discard_passdown queue_if_no_space\n"
	  "  <needs_check|-> <metadata low watermark>\n"
	  "Used metadata includes the kernel's reserve of min(4096, total/10) blocks.\n"
	  "The discard and no-space fields belong to the pool table, not the\n"
	  "metadata: the kernel's defaults are printed.\n" },
	{ "ls", cmd_ls, "list thin devices",
	  "Usage: thinp ls -m META [--metadata-snap[=BLOCK]] [--no-headers]\n"
	  "                [--catalog FILE]\n"
	  "\n"
	  "One line per thin device: id, mapped blocks, transaction id, creation\n"
	  "time and snapshot time; when the pool has a catalog (META.vol), also\n"
	  "the virtual size in bytes ('-' for a device without an entry).\n"
	  "  --metadata-snap[=BLOCK]  list the metadata snapshot instead\n"
	  "  --catalog FILE           the catalog file (default META.vol)\n"
	  "  --no-headers             leave out the header line\n" },
	{ "dump", cmd_dump, "write the metadata as thin_dump XML",
	  "Usage: thinp dump -m META [--metadata-snap[=BLOCK]] [-o FILE]\n"
	  "\n"
	  "Write the pool metadata as XML, byte for byte as thin_dump 0.9.0 does.\n"
	  "  --metadata-snap[=BLOCK]  dump the held metadata snapshot (or the\n"
	  "                           snapshot superblock at BLOCK)\n"
	  "  -o, --output FILE        write to FILE instead of stdout\n" },
	{ "restore", cmd_restore, "write metadata from thin_dump XML",
	  "Usage: thinp restore -m META -i FILE.xml\n"
	  "\n"
	  "Replace the metadata on META (an existing file or block device; its\n"
	  "size is the metadata size) with the pool described by FILE.xml, as\n"
	  "thin_restore does. The new metadata is built in memory and written to\n"
	  "META only after the whole input was read and applied without error;\n"
	  "on any error META is left untouched.\n"
	  "  -i, --input FILE   the XML (thin_dump format; '-' for stdin)\n" },
	{ "check", cmd_check, "check the metadata thoroughly",
	  "Usage: thinp check -m META [-q]\n"
	  "\n"
	  "Check every block, tree and reference count, including the metadata\n"
	  "snapshot if one is held. Each finding is one line on stderr; harmless\n"
	  "ones (such as thin_restore 0.9.0's nr_allocated artefact) say\n"
	  "'warning:'. Exit status 0 when there are no errors (warnings allowed),\n"
	  "1 when an error was found or the check could not run.\n"
	  "  -q, --quiet   print nothing, only set the exit status\n" },
	{ "lookup", cmd_lookup, "look mappings up",
	  "Usage: thinp lookup -m META [DEV VBLOCK]\n"
	  "\n"
	  "Print `DEV VBLOCK DATA_BLOCK TIME` for a mapped block, `DEV VBLOCK -`\n"
	  "for an unmapped one. Without DEV VBLOCK, read such pairs from stdin,\n"
	  "one per line.\n" },
#ifdef THINP_TOOL_DATA_COMMANDS /* set once thinp_pool_open is built */
	{ "write", cmd_write, "write standard input to a thin device",
	  "Usage: thinp write -m META -d DATA [--origin FILE] DEV OFFSET\n"
	  "\n"
	  "Open the pool on META and DATA, write standard input into thin device\n"
	  "DEV at byte OFFSET (k/m/g suffixes allowed), then flush: the data is\n"
	  "durable when the command succeeds.\n"
	  "  -m, --metadata META  the metadata file\n"
	  "  -d, --data DATA      the data file\n"
	  "  -o, --origin FILE    read-only external origin of the device\n" },
	{ "read", cmd_read, "read from a thin device to standard output",
	  "Usage: thinp read -m META -d DATA [--origin FILE] DEV OFFSET LENGTH\n"
	  "\n"
	  "Write LENGTH bytes of thin device DEV from byte OFFSET to standard\n"
	  "output. Blocks never written read as zeroes (or from the origin).\n"
	  "The pool is opened read-only.\n" },
	{ "discard", cmd_discard, "discard a range of a thin device",
	  "Usage: thinp discard -m META -d DATA DEV OFFSET LENGTH\n"
	  "\n"
	  "Unmap the data blocks entirely inside the byte range (a partial block\n"
	  "is left alone), passing the discard down to DATA for blocks no other\n"
	  "device shares, then flush.\n" },
	{ "resize", cmd_resize, "grow the pool's data device",
	  "Usage: thinp resize -m META -d DATA --data-blocks N\n"
	  "\n"
	  "Grow the pool to N data blocks (a regular DATA file is extended to\n"
	  "hold them). Shrinking is refused.\n" },
#endif
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct command *current_command;

static void print_commands(FILE *f)
{
	fprintf(f, "Usage: thinp COMMAND -m METADATA [options]\n\nCommands:\n");
	for (size_t i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`thinp COMMAND --help` describes a command.\n"
		   "Exit status: 0 success, 1 failure, 2 bad command line.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_commands(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		print_commands(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("thinp (libthinp) %s\n", thinp_version());
		return EXIT_OK;
	}
	current_command = find_command(argv[1]);
	if (!current_command) {
		fprintf(stderr, "thinp: unknown command '%s' (try 'thinp --help')\n", argv[1]);
		return EXIT_USAGE;
	}
	return current_command->run(argc - 1, argv + 1);
}
