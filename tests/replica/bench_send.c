/*
 * bench_send: thinp_send's rate against the data file's sequential read
 * rate, measured in the same process (issue #11's target: >= 0.8x).
 *
 *   tests/replica/bench_send [MiB] [DIR]     (default 1024, $TMPDIR or /tmp)
 *
 * A pool on files in DIR gets one device of MiB, written sequentially (so
 * its data blocks are in order on the data file). Then, best of three each,
 * alternating: the data file read sequentially with pread,
 * and a full thinp_send of the device to a callback that drops the bytes.
 * The read baseline is the best of 64 KiB and 16 MiB preads (small reads
 * stay in the CPU cache). Both read through the page cache when the files fit in memory; run with a
 * device larger than RAM (or after dropping caches) for the disk's rate.
 *
 * Then the incremental send's cost against the changed blocks (issue #11:
 * "proportional to the changed blocks"): for 0.1%, 1% and 10% of the
 * device's blocks, a snapshot of the device has that many blocks, spread
 * over the whole device, rewritten, and is sent incrementally from the
 * device (best of three). Printed per changed block: the time, against the
 * full send's time per block, and the stream bytes, against the block
 * size. Proportional cost shows as a time ratio that stays flat across the
 * three fractions.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>

#define BS (64u << 10)
#define CHUNK (16u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The fractions of changed blocks, in tenths of a percent. */
static const unsigned per_mille[] = { 1, 10, 100 };
#define NR_FRACTIONS (sizeof(per_mille) / sizeof(per_mille[0]))

static int drop(const void *buf, size_t len, void *ctx)
{
	(void)buf;
	*(uint64_t *)ctx += len;
	return 0;
}

static double read_file(const char *path, uint64_t bytes, void *buf, size_t chunk)
{
	int fd = open(path, O_RDONLY);
	double t = now();

	for (uint64_t off = 0; fd >= 0 && off < bytes; off += chunk)
		if (pread(fd, buf, chunk, (off_t)off) <= 0)
			break;
	t = now() - t;
	if (fd >= 0)
		close(fd);
	return t;
}

/* Device @dev sent (from @base) to a callback that counts the bytes: the
 * seconds it took, or -1. */
static double send_dev(thinp_pool *pool, thinp_catalog *cat, uint64_t dev, uint64_t base,
		       uint64_t *sent)
{
	double t = now();

	*sent = 0;
	if (thinp_send(pool, cat, dev, base, drop, sent, NULL))
		return -1;
	return now() - t;
}

/* Snapshot @snap of device 1 with one block in every 1000 / @pm rewritten,
 * at a pseudo-random place in its stretch: the count of changed blocks,
 * or 0 on failure. */
static uint64_t make_changed(thinp_pool *pool, uint64_t snap, uint64_t nr_blocks, unsigned pm,
			     void *blk)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	uint64_t stride = 1000 / pm, changed = 0, x = 0x9E3779B97F4A7C15ull ^ snap;
	thinp_thin *t;

	to.size = nr_blocks * BS;
	if (thinp_pool_create_snap(pool, snap, 1) || thinp_thin_open(&t, pool, snap, &to))
		return 0;
	memset(blk, 0xc3 ^ (int)pm, BS);
	for (uint64_t first = 0; first + stride <= nr_blocks; first += stride, changed++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (thinp_thin_write(t, blk, BS, (first + x % stride) * BS)) {
			changed = 0;
			break;
		}
	}
	thinp_thin_close(t);
	return thinp_pool_commit(pool) ? 0 : changed;
}

/* The incremental sends of the changed snapshots, against the full send
 * (@full seconds for @nr_blocks blocks). */
static int bench_incremental(thinp_pool *pool, thinp_catalog *cat, uint64_t nr_blocks,
			     double full, void *blk)
{
	double per_block = full / nr_blocks;

	printf("incremental send (changed blocks spread over the device):\n");
	printf("  changed  blocks   time ms  us/block  x full's us/block  stream bytes/block\n");
	for (size_t i = 0; i < NR_FRACTIONS; i++) {
		uint64_t snap = 10 + i, sent = 0;
		uint64_t changed = make_changed(pool, snap, nr_blocks, per_mille[i], blk);
		double best = 1e9;

		if (!changed)
			return 1;
		for (int k = 0; k < 3; k++) {
			double t = send_dev(pool, cat, snap, 1, &sent);

			if (t < 0)
				return 1;
			best = t < best ? t : best;
		}
		printf("  %5.1f%% %7llu %9.2f %9.2f %18.2f %19.1f\n", per_mille[i] / 10.0,
		       (unsigned long long)changed, best * 1e3, best / changed * 1e6,
		       best / changed / per_block, (double)sent / changed);
	}
	printf("  full send: %.2f us/block, block size %u bytes\n", per_block * 1e6, BS);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024, bytes = mib << 20, sent;
	const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char mpath[4096], dpath[4096], cpath[4096];
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
	thinp_thin *t;
	double tr = 1e9, ts = 1e9;
	void *buf = malloc(CHUNK);

	snprintf(mpath, sizeof(mpath), "%s/bench_send.meta", dir);
	snprintf(dpath, sizeof(dpath), "%s/bench_send.data", dir);
	snprintf(cpath, sizeof(cpath), "%s/bench_send.vol", dir);
	if (!buf)
		return 1;
	close(open(mpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	close(open(dpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	close(open(cpath, O_CREAT | O_WRONLY | O_TRUNC, 0600));
	/* Room for the changed snapshots' copies (0.1% + 1% + 10%). */
	if (truncate(mpath, 64 << 20) || truncate(dpath, (off_t)(bytes + bytes / 8 + (16 << 20))))
		return 1;
	po.data_block_size = BS;
	to.size = bytes;
	if (thinp_io_open_file(&meta, mpath, 0) || thinp_io_open_file(&data, dpath, 0) ||
	    thinp_io_open_file(&cio, cpath, 0) || thinp_pool_format(&pool, meta, data, &po) ||
	    thinp_catalog_open(&cat, cio, 0) || thinp_pool_create_thin(pool, 1) ||
	    thinp_thin_open(&t, pool, 1, &to)) {
		fprintf(stderr, "bench_send: setup failed\n");
		return 1;
	}
	for (uint64_t off = 0; off < bytes; off += CHUNK) {
		memset(buf, (int)(off >> 20) | 1, CHUNK);
		if (thinp_thin_write(t, buf, CHUNK, off))
			return 1;
	}
	thinp_thin_close(t);
	if (thinp_pool_commit(pool))
		return 1;
	for (int i = 0; i < 3; i++) {
		double a = read_file(dpath, bytes, buf, BS), b = send_dev(pool, cat, 1, THINP_SEND_FULL, &sent);
		double c = read_file(dpath, bytes, buf, CHUNK);

		if (b < 0)
			return 1;
		tr = a < tr ? a : tr;
		tr = c < tr ? c : tr;
		ts = b < ts ? b : ts;
	}
	printf("device %llu MiB, stream %llu bytes\n", (unsigned long long)mib,
	       (unsigned long long)sent);
	printf("data file sequential read  %8.1f MiB/s\n", mib / tr);
	printf("thinp_send (full)          %8.1f MiB/s\n", mib / ts);
	printf("ratio send / read          %8.2f  (target >= 0.80)\n", tr / ts);
	if (bench_incremental(pool, cat, bytes / BS, ts, buf))
		return 1;
	thinp_catalog_close(cat);
	thinp_pool_close(pool);
	thinp_io_close(cio);
	thinp_io_close(data);
	thinp_io_close(meta);
	unlink(mpath);
	unlink(dpath);
	unlink(cpath);
	free(buf);
	return 0;
}
