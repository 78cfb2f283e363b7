/*
 * bench_migrate: thinp_migrate's rate against a plain sparse copy of the
 * same device in the same process (issue #12's target: >= 0.8x).
 *
 *   tests/workflow/bench_migrate [MiB] [DIR]     (default 512, $TMPDIR or /tmp)
 *
 * Two pools on files in DIR; the source gets one device of 2 x MiB with
 * every other MiB written (MiB of data, holes between). Then, best of three
 * each: the baseline copies every mapped run of the device into a new
 * device of the destination (thinp_thin_read, thinp_thin_write, one flush),
 * and thinp_migrate moves it (one round, the source quiesced: snapshot,
 * send, receive, switch, delete). Each run has fresh pools and a fresh fill
 * before it, in the order copy, migrate, migrate, copy, copy, migrate: a run
 * straight after the other one on the same pools inherits its writeback and
 * journal work (at 512 MiB that made the migration 30-40% slower).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>

#define BS (64u << 10)
#define CHUNK (1u << 20)

struct side {
	char mpath[4096], dpath[4096], cpath[4096];
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int side_open(struct side *s, const char *dir, const char *name, uint64_t bytes)
{
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;

	snprintf(s->mpath, sizeof(s->mpath), "%s/bench_migrate_%s.meta", dir, name);
	snprintf(s->dpath, sizeof(s->dpath), "%s/bench_migrate_%s.data", dir, name);
	snprintf(s->cpath, sizeof(s->cpath), "%s/bench_migrate_%s.vol", dir, name);
	close(open(s->mpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	close(open(s->dpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	close(open(s->cpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	if (truncate(s->mpath, 64 << 20) || truncate(s->dpath, (off_t)bytes))
		return -1;
	po.data_block_size = BS;
	return thinp_io_open_file(&s->meta, s->mpath, 0) || thinp_io_open_file(&s->data, s->dpath, 0) ||
	       thinp_io_open_file(&s->cio, s->cpath, 0) ||
	       thinp_pool_format(&s->pool, s->meta, s->data, &po) ||
	       thinp_catalog_open(&s->cat, s->cio, 0) ? -1 : 0;
}

static void side_close(struct side *s)
{
	thinp_catalog_close(s->cat);
	thinp_pool_close(s->pool);
	thinp_io_close(s->cio);
	thinp_io_close(s->data);
	thinp_io_close(s->meta);
	unlink(s->mpath);
	unlink(s->dpath);
	unlink(s->cpath);
}

static thinp_thin *open_dev(thinp_pool *pool, uint64_t id, uint64_t size)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;

	o.size = size;
	return thinp_thin_open(&t, pool, id, &o) ? NULL : t;
}

/* Device 1 of @s: 2 x @bytes, every other MiB written. */
static int fill(struct side *s, uint64_t bytes, void *buf)
{
	char msg[64];
	thinp_thin *t;

	snprintf(msg, sizeof(msg), "create_thin 1 %llu", (unsigned long long)(2 * bytes));
	if (thinp_catalog_message(s->cat, s->pool, msg, 0) || !(t = open_dev(s->pool, 1, 2 * bytes)))
		return -1;
	for (uint64_t off = 0; off < 2 * bytes; off += 2 * CHUNK) {
		memset(buf, (int)(off >> 20) | 1, CHUNK);
		if (thinp_thin_write(t, buf, CHUNK, off))
			return -1;
	}
	thinp_thin_close(t);
	return thinp_pool_commit(s->pool);
}

/* The baseline: every mapped run of device 1 into device 1 of @d. */
static double sparse_copy(struct side *s, struct side *d, uint64_t bytes, void *buf)
{
	thinp_thin *from = open_dev(s->pool, 1, 2 * bytes), *to;
	thinp_mapping m = THINP_MAPPING_INIT;
	double t = now();
	uint64_t vb, begin = 0, len = 0;
	int r = thinp_pool_create_thin(d->pool, 1);

	if (r || !from || !(to = open_dev(d->pool, 1, 2 * bytes)))
		return -1;
	for (uint64_t next = 0; !r; next = vb + 1) {
		int e = thinp_pool_thin_next_map(s->pool, 1, next, &vb, &m);

		if (!e && len && vb == begin + len && len * BS < CHUNK) {
			len++;
			continue;
		}
		if (len && !(r = thinp_thin_read(from, buf, len * BS, begin * BS)))
			r = thinp_thin_write(to, buf, len * BS, begin * BS);
		if (e)
			break;
		begin = vb;
		len = 1;
	}
	if (!r)
		r = thinp_thin_flush(to);
	thinp_thin_close(to);
	thinp_thin_close(from);
	return r ? -1 : now() - t;
}

static double migrate(struct side *s, struct side *d)
{
	double t = now();
	uint64_t id;

	return thinp_migrate(s->pool, s->cat, 1, d->pool, d->cat, NULL, NULL, &id) ? -1
										    : now() - t;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512, bytes = mib << 20;
	const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	double tc = 1e9, tm = 1e9;
	void *buf = malloc(CHUNK);

	if (!buf)
		return 1;
	for (int i = 0; i < 6; i++) {
		bool copy = i % 4 == 0 || i % 4 == 3;
		struct side s, d;
		double t;

		/* Data files with room for the device and a copy of it. */
		if (side_open(&s, dir, "src", 4 * bytes) || side_open(&d, dir, "dst", 4 * bytes) ||
		    fill(&s, bytes, buf)) {
			fprintf(stderr, "bench_migrate: setup failed\n");
			return 1;
		}
		t = copy ? sparse_copy(&s, &d, bytes, buf) : migrate(&s, &d);
		side_close(&s);
		side_close(&d);
		if (t < 0) {
			fprintf(stderr, "bench_migrate: %s failed\n", copy ? "the copy" : "migrate");
			return 1;
		}
		if (copy)
			tc = t < tc ? t : tc;
		else
			tm = t < tm ? t : tm;
	}
	printf("device %llu MiB mapped of %llu MiB\n", (unsigned long long)mib,
	       (unsigned long long)(2 * mib));
	printf("plain sparse copy          %8.1f MiB/s\n", mib / tc);
	printf("thinp_migrate (one round)  %8.1f MiB/s\n", mib / tm);
	printf("ratio migrate / copy       %8.2f  (target >= 0.80)\n", tc / tm);
	free(buf);
	return 0;
}
