/* thinp migrate: a thin device (or its family) moved to another pool. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

/* Set by SIGINT and SIGTERM: stop at the next consistent point. */
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

struct control {
	struct invocation *inv;
	thinp_job *job;
	struct progress p;
	uint64_t rounds;   /* --rounds: live rounds, then stop */
	bool final;        /* --final: the source is quiesced */
};

/*
 * Before each round: what the options say. The command owns the source
 * pool while it runs, so nothing writes the source meanwhile: live rounds
 * are for the writes between one invocation and the next.
 */
static int next_round(void *ctx, uint64_t round, uint64_t last_bytes)
{
	struct control *c = ctx;

	(void)last_bytes;
	if (stopping)
		return -ECANCELED;
	if (c->final)
		return THINP_MIGRATE_FINAL;
	return round < c->rounds ? THINP_MIGRATE_ROUND : THINP_MIGRATE_STOP;
}

static void on_progress(const thinp_job_progress *pr, void *ctx)
{
	struct control *c = ctx;

	if (stopping)
		thinp_job_cancel(c->job);
	progress_update(&c->p, pr->done, pr->total, false);
}

/* The destination: its pool from --to-meta/--to-data, its catalog from
 * --to-catalog or TO-META.vol. */
struct dest {
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
};

static int open_dest(struct invocation *inv, struct dest *d)
{
	const struct arg *given = opt(inv, "to-catalog");
	const char *meta = opt(inv, "to-meta")->str, *data = opt(inv, "to-data")->str;
	char *path = given->given ? NULL : catalog_default_path(meta);
	const char *cpath = given->given ? given->str : path;
	const char *what = meta;
	int r;

	memset(d, 0, sizeof(*d));
	if (!cpath)
		return err("out of memory");
	r = thinp_io_open_file(&d->meta, meta, 0);
	if (!r && !(r = thinp_io_open_file(&d->data, data, 0)))
		r = thinp_pool_open(&d->pool, d->meta, d->data, NULL);
	if (!r) {
		what = cpath;
		if (!(r = thinp_io_open_file(&d->cio, cpath, THINP_IO_CREATE)))
			r = thinp_catalog_open(&d->cat, d->cio, 0);
	}
	if (r)
		err("%s: %s", r == -EBUSY ? meta : what,
		    r == -EBUSY ? METADATA_BUSY : thinp_strerror(r));
	free(path);
	return r ? EXIT_FAIL : EXIT_OK;
}

/* Closing the pool commits: a failure there fails the command. */
static int close_dest(struct dest *d, const char *meta, int rc)
{
	int r;

	thinp_catalog_close(d->cat);
	r = thinp_pool_close(d->pool);
	thinp_io_close(d->cio);
	thinp_io_close(d->data);
	thinp_io_close(d->meta);
	if (r && rc == EXIT_OK)
		rc = err("%s: closing the pool: %s", meta, thinp_strerror(r));
	return rc;
}

static int migrate(struct invocation *inv, struct control *c, thinp_catalog *cat, struct dest *d)
{
	thinp_migrate_options o = THINP_MIGRATE_OPTIONS_INIT;
	const struct arg *rate = opt(inv, "rate");
	struct sigaction sa;
	char msg[512];
	uint64_t id;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	o.flags = opt(inv, "family")->given ? THINP_MIGRATE_FAMILY : 0;
	o.next = next_round;
	o.next_ctx = c;
	o.checkpoint_bytes = opt(inv, "checkpoint")->num;
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	if (rate->given)
		thinp_job_set_rate_limit(c->job, rate->num);
	thinp_job_set_progress_fn(c->job, on_progress, c);
	progress_start(&c->p, inv, "migrate");
	r = thinp_migrate(inv->pool, cat, inv->operand[0].num, d->pool, d->cat, &o, c->job, &id);
	progress_update(&c->p, 0, 0, true);
	if (r == -EINPROGRESS) {
		err("%" PRIu64 " live round(s) done; quiesce the source and run again with --final",
		    c->rounds);
		return EXIT_OK;
	}
	if (r == -ECANCELED)
		return err("stopped; run the same command again to go on");
	if (r)
		return err("%s", *msg ? msg : thinp_strerror(r));
	printf("%" PRIu64 "\n", id);
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	struct control c = { .inv = inv };
	struct dest d;
	thinp_catalog *cat;
	thinp_io *cio;
	int r;

	c.final = opt(inv, "final")->given;
	c.rounds = opt(inv, "rounds")->given ? opt(inv, "rounds")->num : 1;
	if (c.final && opt(inv, "rounds")->given)
		return usage_err("--final and --rounds exclude each other");
	if (open_catalog(inv, &cio, &cat))
		return EXIT_FAIL;
	r = open_dest(inv, &d);
	if (!r && (r = thinp_job_new(&c.job)))
		r = err("%s", thinp_strerror(r));
	if (!r)
		r = migrate(inv, &c, cat, &d);
	thinp_job_free(c.job);
	r = close_dest(&d, opt(inv, "to-meta")->str, r);
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	return r;
}

static const struct option_spec options[] = {
	{ "to-meta", 'M', "FILE", OPT_REQUIRED, NULL, "the destination pool's metadata device" },
	{ "to-data", 'D', "FILE", OPT_REQUIRED, NULL, "the destination pool's data device" },
	{ "to-catalog", 0, "FILE", 0, NULL,
	  "the destination's catalog file (default\nTO-META.vol, created if missing)" },
	{ "family", 'F', NULL, 0, NULL,
	  "move every device sharing blocks with DEV too\n(its snapshots), sharing them there too" },
	{ "final", 0, NULL, 0, NULL,
	  "the source is quiesced: the final round, the\nswitch, the source deleted" },
	{ "rounds", 'n', "N", 0, parse_u64,
	  "live rounds (the source in use) before stopping\nfor a later --final (default 1)" },
	{ "rate", 'r', "SIZE", 0, parse_size, "at most SIZE bytes of stream a second" },
	{ "checkpoint", 0, "SIZE", 0, parse_size,
	  "a resume point every SIZE bytes of stream\n(default 64m)" },
	OPT_PROGRESS,
	OPT_CATALOG,
	{ NULL },
};
static const struct operand_spec operands[] = { { "DEV", parse_u64 }, { NULL, NULL } };

const struct command cmd_migrate = {
	.name = "migrate",
	.summary = "move a thin device (or its snapshot family) to another pool",
	.description =
		"Move thin device DEV (with --family, every device sharing blocks with\n"
		"it) to the pool of --to-meta and --to-data, in rounds: a full copy of a\n"
		"snapshot, then incremental rounds: without --final, --rounds N (default\n"
		"1) rounds run and the command stops, the source staying in use between\n"
		"invocations; once it is quiesced, --final runs the last round and the\n"
		"switch: one commit makes the copies visible with the source devices'\n"
		"identities, then the source devices are deleted.\n"
		"Only mapped blocks move. Until the switch the copies stay hidden; a\n"
		"crash, an error or SIGINT/SIGTERM (a clean stop) leaves the source\n"
		"usable, and running the command again goes on where it stopped.\n"
		"Prints the id of DEV's copy once switched. Both pools need the same\n"
		"data block size.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
