/*
 * Internal interface of the thinp command-line tool. Each command lives in
 * its own cmd_<name>.c and is listed once in the table in main.c; the helpers
 * here give every command the same option conventions and the same one-line
 * error style ("thinp CMD: what went wrong"). The tool uses only the public
 * libthinp API.
 */
#ifndef THINP_TOOL_THINP_H
#define THINP_TOOL_THINP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libthinp/thinp.h>
#include <libthinp/meta.h>

/* Zero an output struct of the API and set its struct_size (the library's
 * *_INIT macros leave fields to implicit zeroing, which -Wextra dislikes). */
#define STRUCT_INIT(s) (memset(&(s), 0, sizeof(s)), (s).struct_size = sizeof(s))

/* Exit codes shared by all commands. */
#define EXIT_OK 0
#define EXIT_FAIL 1  /* the operation failed, or check found problems */
#define EXIT_USAGE 2 /* bad command line */

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;               /* one line for `thinp --help` */
	const char *usage;                 /* full text for `thinp CMD --help` */
};

/* The running command, for messages. */
extern const struct command *current_command;

/* "thinp CMD: <message>\n" on stderr. Returns EXIT_FAIL for `return err(...)`. */
int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As err(), ending "(see 'thinp CMD --help')". Returns EXIT_USAGE. */
int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the running command's usage text to stdout; returns EXIT_OK. */
int print_usage(void);

/* For getopt_long's ':' (missing value) and '?' (unknown option), with an
 * optstring that starts with ':'. Returns EXIT_USAGE. */
int bad_option(int c, int argc, char **argv);
/* The options of a command that takes only -m FILE and --help: sets *path
 * (NULL if absent). operands_verbatim stops at the first operand, so that
 * operands are never taken for options. Returns -1 to go on, else the exit
 * status (usage printed, or a bad option). */
int parse_metadata_only(int argc, char **argv, bool operands_verbatim, const char **path);
/* EXIT_USAGE with a message if operands are left after the options. */
int no_operands(int argc, char **argv);
/* Strict unsigned decimal (no sign, no spaces, no overflow). */
bool parse_u64(const char *s, uint64_t *out);
/* A size in bytes: decimal with an optional k/m/g (KiB/MiB/GiB) suffix. */
bool parse_size(const char *s, uint64_t *bytes);

/* An open metadata device: the io and, once opened, the metadata handle. */
struct meta_ctx {
	thinp_io *io;
	thinp_meta *meta;
	char last_log[512]; /* last error line from the library's log callback */
};

#define OPEN_RDONLY 1u

/*
 * Open `path` and its metadata. On failure prints the error and returns
 * EXIT_FAIL, with nothing left open.
 */
int meta_open(struct meta_ctx *c, const char *path, unsigned flags);
void meta_close(struct meta_ctx *c);
/* Open just the file io (used by format, restore and check). */
int io_open(struct meta_ctx *c, const char *path, unsigned flags);
/* Fill a thinp_meta_options with the log callback feeding c->last_log. */
void meta_options(struct meta_ctx *c, thinp_meta_options *o);
/* A description of `e` from the library: errmsg of the handle if it has one,
 * else the last logged error, else thinp_strerror(). */
const char *meta_error(struct meta_ctx *c, int e);

/* --metadata-snap[=BLOCK]: NULL means the held snapshot. */
int parse_source(const char *arg, uint64_t *source);
/* meta_error(), with a clearer word for "no snapshot held". */
const char *source_error(struct meta_ctx *c, uint64_t source, int e);

/* The catalog file of a pool by convention: META.vol (docs/CATALOG.md).
 * malloc'ed; NULL when out of memory. */
char *catalog_default_path(const char *meta_path);

int cmd_format(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_control(int argc, char **argv);
int cmd_message(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_resize(int argc, char **argv);

#endif
