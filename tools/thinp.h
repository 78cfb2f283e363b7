/*
 * Internal interface of the thinp command-line tool.
 *
 * A command is a `const struct command` in its own cmd_<name>.c: its options,
 * operands, what it opens, its help text and its handler, all declared there,
 * plus one line in the table in main.c. cli.c does the rest the same way for
 * every command: parses and checks the command line against the declaration,
 * prints `--help` from it, opens the metadata (and data, pool, thin device)
 * read-only or read-write as declared, runs the handler and closes
 * everything. Every error is one line on stderr, "thinp CMD: ...". The tool
 * uses only the public libthinp API.
 */
#ifndef THINP_TOOL_THINP_H
#define THINP_TOOL_THINP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libthinp/thinp.h>
#include <libthinp/meta.h>

/* Zero an output struct of the API and set its struct_size (the library's
 * *_INIT macros leave fields to implicit zeroing, which -Wextra dislikes). */
#define STRUCT_INIT(s) (memset(&(s), 0, sizeof(s)), (s).struct_size = sizeof(s))

/* Exit codes shared by all commands. */
#define EXIT_OK 0
#define EXIT_FAIL 1  /* the operation failed, or check found problems */
#define EXIT_USAGE 2 /* bad command line */

/*
 * Converts an option value or operand to a number. Returns NULL if it is
 * good, else why not ("" when "bad --NAME 'VALUE'" says it all).
 */
typedef const char *(*arg_parser)(const char *s, uint64_t *out);

/* An option: --name (and -letter, unless letter is 0). */
struct option_spec {
	const char *name;
	char letter;
	const char *value;   /* the value's name in help ("SIZE"); NULL: a flag */
	unsigned flags;      /* OPT_* */
	arg_parser parse;    /* NULL: the value is kept as a string */
	const char *help;    /* one line (may wrap with "\n") for --help */
};
#define OPT_REQUIRED 1u       /* the command line must give it */
#define OPT_OPTIONAL_VALUE 2u /* --name or --name=VALUE */

/* An operand, in command-line order. */
struct operand_spec {
	const char *name;     /* in the synopsis and in messages */
	arg_parser parse;     /* NULL: a string */
};

/* What the framework opens before the handler runs (struct invocation). */
enum open_level {
	OPEN_NONE,    /* nothing: no -m either */
	OPEN_META_IO, /* the metadata device (-m) */
	OPEN_META,    /* and its metadata handle */
	OPEN_POOL,    /* the metadata and data (-d) devices and the pool on them
		       * (which owns the metadata: no separate handle) */
	OPEN_THIN,    /* and thin device DEV, the first operand, on --origin if given */
};

/* What a writer is told when another one owns the metadata (-EBUSY). */
#define METADATA_BUSY "metadata device is in use by another writer"

struct invocation;

struct command {
	const char *name;
	const char *summary;          /* one line for `thinp --help` */
	const char *description;      /* the paragraph(s) of `thinp CMD --help` */
	const struct option_spec *options; /* ends with { NULL }; -m, -d, --help are added */
	const struct operand_spec *operands; /* ends with { NULL }; NULL: none */
	unsigned min_operands;        /* fewer than all: the rest are optional, together */
	bool more_operands;           /* the last operand repeats; options stop at the first */
	enum open_level open;
	bool rdonly;                  /* open everything read-only */
	int (*run)(struct invocation *inv); /* returns an EXIT_* code */
};

#define MAX_OPTIONS 16
#define MAX_OPERANDS 4

/* A parsed argument. */
struct arg {
	bool given;
	const char *str;  /* as on the command line (NULL for a flag) */
	uint64_t num;     /* parsed, if the spec has a parser */
};

/* One run of a command: its arguments and what was opened for it. */
struct invocation {
	const struct command *cmd;
	const struct option_spec *opt_spec[MAX_OPTIONS];
	struct arg opt[MAX_OPTIONS];
	struct arg operand[MAX_OPERANDS];
	int nr_operands;
	char **operands;            /* all operands as given (more_operands) */
	const char *meta_path, *data_path;
	thinp_io *meta_io, *data_io, *origin_io;
	thinp_meta *meta;
	thinp_pool *pool;
	thinp_thin *thin;
	char last_log[512];         /* last error line from the library's log */
	char errmsg[512];           /* the pool's or metadata's message, copied by describe() */
};

/* The table (main.c) and the framework entry point (cli.c). */
extern const struct command *current_command;
int run_command(const struct command *cmd, int argc, char **argv);

/* The option --name of the running command (it must be declared). */
const struct arg *opt(const struct invocation *inv, const char *name);

/* "thinp CMD: <message>\n" on stderr. Returns EXIT_FAIL for `return err(...)`. */
int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As err(), ending "(see 'thinp CMD --help')". Returns EXIT_USAGE. */
int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * The one place a library error becomes a message: "thinp CMD: <what>:
 * <description>" (just the description if what is NULL), where the
 * description is the pool's or the metadata's last error message, else the
 * library's last logged error, else thinp_strerror(e). Returns EXIT_FAIL.
 */
int fail(struct invocation *inv, int e, const char *what, ...)
	__attribute__((format(printf, 3, 4)));
/* fail() about thin device DEV (OPEN_THIN commands). */
int thin_fail(struct invocation *inv, int e);
/* The description fail() prints. */
const char *describe(struct invocation *inv, int e);

/* Options for the library's metadata calls: the log goes to inv->last_log. */
void meta_options(struct invocation *inv, thinp_meta_options *o);
void log_to_invocation(int level, const char *msg, void *ctx);

/* Parsers. Strict unsigned decimal (no sign, no spaces, no overflow). */
const char *parse_u64(const char *s, uint64_t *out);
/* A size in bytes: decimal with an optional k/m/g (KiB/MiB/GiB) suffix. */
const char *parse_size(const char *s, uint64_t *bytes);
/* A number of data blocks the format can address (< 2^40). */
const char *parse_data_blocks(const char *s, uint64_t *blocks);
/* --metadata-snap[=BLOCK]: a snapshot superblock's block number. */
const char *parse_snap_block(const char *s, uint64_t *block);

/* --metadata-snap[=BLOCK], for the commands that can read a snapshot. */
#define OPT_METADATA_SNAP(help) \
	{ "metadata-snap", 0, "BLOCK", OPT_OPTIONAL_VALUE, parse_snap_block, help }
/* --origin FILE, for the commands that open a thin device (OPEN_THIN). */
#define OPT_ORIGIN { "origin", 'o', "FILE", 0, NULL, "read-only external origin of the device" }
/* The metadata source --metadata-snap selects: live, held or a block. */
uint64_t snap_source(const struct invocation *inv);
/* fail(), with a clearer word for "no snapshot held". */
int source_fail(struct invocation *inv, uint64_t source, int e);

/* The catalog file of a pool by convention: META.vol (docs/CATALOG.md).
 * malloc'ed; NULL when out of memory. */
char *catalog_default_path(const char *meta_path);
/* Open the catalog of --catalog FILE (which the command must declare), by
 * default META.vol, created if missing. Prints the error. EXIT_*. */
int open_catalog(struct invocation *inv, thinp_io **io, thinp_catalog **cat);
/* Attach entry e of a device just created in inv->pool (dropping stale
 * entries) and commit the catalog. Prints the error. EXIT_*. */
int attach_entry(struct invocation *inv, thinp_catalog *cat, const thinp_catalog_entry *e);
/* --catalog FILE, for the commands that use the pool's catalog. */
#define OPT_CATALOG { "catalog", 'c', "FILE", 0, NULL, "the catalog file (default META.vol, created\nif missing)" }

/* --origin FILE[=GUID] (create, receive): the path into @path
 * (THINP_CATALOG_ORIGIN_MAX bytes) and GUID, 32 hex digits, into @guid
 * (zeroes without it). Only a trailing "=" and 32 hex digits are a GUID:
 * any other '=' belongs to the path. Prints the error. EXIT_*. */
int parse_origin(const char *arg, char *path, uint8_t guid[16]);

/* The stream transport to standard output (stream.h's write callback). */
int stream_write_stdout(const void *buf, size_t len, void *ctx);
/* A read-only io on PATH with O_DIRECT, or without it where the filesystem
 * refuses it: a pool someone else owns is read from the device, not from a
 * stale page cache. */
int open_file_direct(thinp_io **io, const char *path);
/* inv->meta on inv->meta_io, as OPEN_META opens it (read-only for a
 * read-only command); cache_bytes 0: the default cache. Prints the error.
 * EXIT_*. */
int open_meta_live(struct invocation *inv, size_t cache_bytes);
/* Open inv->meta read-only on the metadata of `source` (snap_source) for a
 * command declared OPEN_META_IO: the live superblock's (open_meta_live), or
 * a snapshot's through a handle on the snapshot alone, on an io of its own
 * read with O_DIRECT (open_file_direct) that replaces the framework's.
 * cache_bytes 0: the default cache. Prints the error. EXIT_*. */
int open_meta_source(struct invocation *inv, uint64_t source, size_t cache_bytes);
/* For output read through the held snapshot (source THINP_META_HELD_ROOT):
 * EXIT_OK if the snapshot at block `before` is still the held one, else
 * an error saying the output is not valid (it may have been released and
 * its blocks reused meanwhile). */
int snapshot_still_held(struct invocation *inv, uint64_t before);

/* Progress on stderr, at most once a second: with --progress (which the
 * command must declare) or when stderr is a terminal. */
struct progress {
	const char *what;   /* the command's name in the line */
	bool on;
	time_t last;        /* time of the last line */
};
void progress_start(struct progress *p, const struct invocation *inv, const char *what);
/* @done bytes (of @total, 0: unknown); @final ends the line. */
void progress_update(struct progress *p, uint64_t done, uint64_t total, bool final);
/* --progress, for the commands that report it. */
#define OPT_PROGRESS { "progress", 0, NULL, 0, NULL, "progress on stderr (the default when it is a\nterminal)" }

/* What thinp merge and thinp hydrate share (origin_job.c). */
struct origin_job {
	thinp_catalog *cat;
	thinp_io *cio, *origin;
	thinp_catalog_entry *entry; /* DEV's (the first operand) */
	thinp_job *job;
	struct progress p;
};
/* Open the catalog, DEV's entry and the origin it names (--origin FILE
 * instead), writable or read-only, and a job with --rate and progress.
 * Prints the error. EXIT_*; origin_job_close() in every case. */
int origin_job_open(struct invocation *inv, struct origin_job *oj, bool writable,
		    const char *what);
/* End the progress line, report the workflow's result @r and close
 * everything. EXIT_*. */
int origin_job_close(struct invocation *inv, struct origin_job *oj, int r);
/* The options every origin job has. */
#define OPT_ORIGIN_JOB(batch_help)                                                          \
	{ "origin", 'o', "FILE", 0, NULL,                                                   \
	  "the external origin (default: the path in DEV's\ncatalog entry)" },             \
	{ "batch", 'b', "BLOCKS", 0, parse_u64, batch_help },                               \
	{ "rate", 0, "SIZE", 0, parse_size, "copy at most SIZE bytes per second (k/m/g)" }, \
	OPT_PROGRESS, OPT_CATALOG

#endif
