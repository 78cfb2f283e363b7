/*
 * thinp: command-line access to dm-thin pools through libthinp.
 *
 * `thinp COMMAND -m METADATA [options]`. Each command is declared in its own
 * cmd_<name>.c (struct command: options, operands, what it opens, help text,
 * handler) and listed once in COMMANDS below; cli.c runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

/* Every command, in `thinp --help` order: one line each. */
#define COMMANDS(X) \
	X(format)   \
	X(message)  \
	X(create)   \
	X(control)  \
	X(status)   \
	X(ls)       \
	X(dump)     \
	X(delta)    \
	X(send)     \
	X(backup)   \
	X(receive)  \
	X(migrate)  \
	X(merge)    \
	X(hydrate)  \
	X(replicate) \
	X(export)   \
	X(import)   \
	X(restore)  \
	X(check)    \
	X(lookup)   \
	X(write)    \
	X(read)     \
	X(discard)  \
	X(resize)

#define DECLARE(name) extern const struct command cmd_##name;
#define ENTRY(name) &cmd_##name,
COMMANDS(DECLARE)
static const struct command *const commands[] = { COMMANDS(ENTRY) };

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct command *current_command;

static void print_commands(FILE *f)
{
	fprintf(f, "Usage: thinp COMMAND -m METADATA [options]\n\nCommands:\n");
	for (size_t i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n`thinp COMMAND --help` describes a command.\n"
		   "Exit status: 0 success, 1 failure, 2 bad command line.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
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
	return run_command(current_command, argc - 1, argv + 1);
}
