/*
 * thinp backup: a snapshot of a live pool that someone else owns (the
 * kernel, another process), as a stream on standard output, read through
 * the held metadata snapshot (thinp_backup, backup.h). It opens nothing
 * read-write and takes no lock; the metadata and data are read with
 * O_DIRECT where the filesystem allows it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libthinp/backup.h>
#include "thinp.h"

/* FNV-1a, 64 bits, from offset basis @h. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* --pool-id NAME, by default the canonical path of META, as 16 bytes. */
static int pool_id(struct invocation *inv, uint8_t id[16])
{
	const char *name = opt(inv, "pool-id")->str;
	char path[PATH_MAX];
	uint64_t h[2];

	if (!name && !(name = realpath(inv->meta_path, path)))
		return err("%s: %s", inv->meta_path, strerror(errno));
	h[0] = fnv1a(0xcbf29ce484222325ull, name);
	h[1] = fnv1a(0x84222325cbf29ce4ull, name);
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
	return EXIT_OK;
}

static void backup_progress(uint64_t done, uint64_t total, void *ctx)
{
	progress_update(ctx, done, total, done == total);
}

static int run(struct invocation *inv)
{
	const struct arg *from = opt(inv, "from");
	thinp_backup_options o = THINP_BACKUP_OPTIONS_INIT;
	struct progress p;
	thinp_io *data = NULL;
	char msg[512];
	int r;

	if (isatty(STDOUT_FILENO))
		return usage_err("standard output is a terminal: redirect the stream");
	if ((r = pool_id(inv, o.pool_id)))
		return r;
	/* Our own ios replace the framework's (which has no O_DIRECT). */
	thinp_io_close(inv->meta_io);
	inv->meta_io = NULL;
	if ((r = open_file_direct(&inv->meta_io, inv->meta_path)))
		return fail(inv, r, "%s", inv->meta_path);
	if ((r = open_file_direct(&data, opt(inv, "data")->str)))
		return fail(inv, r, "%s", opt(inv, "data")->str);
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	o.size = opt(inv, "size")->num;
	o.checkpoint_bytes = opt(inv, "checkpoint")->num;
	progress_start(&p, inv, "backup");
	if (p.on) {
		o.progress = backup_progress;
		o.progress_ctx = &p;
	}
	r = thinp_backup(inv->meta_io, data, opt(inv, "snap")->num,
			 from->given ? from->num : THINP_BACKUP_FULL, stream_write_stdout, NULL, &o, NULL);
	thinp_io_close(data);
	return r ? err("%s", *msg ? msg : thinp_strerror(r)) : EXIT_OK;
}

static const struct option_spec options[] = {
	{ "data", 'd', "DATA", OPT_REQUIRED, NULL, "the pool's data file or block device" },
	{ "snap", 's', "DEV", OPT_REQUIRED, parse_u64,
	  "the snapshot to back up, as the held metadata\nsnapshot has it" },
	{ "from", 'f', "BASE", 0, parse_u64,
	  "an incremental stream: only what changed since\nBASE, the previous backup's snapshot" },
	{ "size", 0, "SIZE", 0, parse_size,
	  "DEV's size (default: up to its highest mapped\nblock)" },
	{ "pool-id", 0, "NAME", 0, NULL,
	  "names the pool in the stream's guids (default:\nthe canonical path of META); keep it for a chain" },
	{ "checkpoint", 0, "SIZE", 0, parse_size,
	  "a resume point every SIZE bytes of stream\n(default 64m)" },
	OPT_PROGRESS,
	{ NULL },
};

const struct command cmd_backup = {
	.name = "backup",
	.summary = "a snapshot of a live pool as a stream, through the held metadata snapshot",
	.description =
		"Write snapshot DEV of a pool that another owner (the kernel, a program)\n"
		"has open as a stream (docs/STREAM.md) on standard output, full or with\n"
		"--from only what changed since BASE. It reads only the held metadata\n"
		"snapshot and DEV's data blocks on DATA, read-only and without a lock.\n"
		"The owner reserves the metadata snapshot first (kernel: dmsetup message\n"
		"POOL 0 reserve_metadata_snap) and releases it after; DEV and BASE must\n"
		"be snapshots nobody writes (docs/REPLICA.md). A snapshot released during\n"
		"the backup cuts the stream. thinp receive takes the stream.\n",
	.options = options,
	.open = OPEN_META_IO,
	.rdonly = true,
	.run = run,
};
