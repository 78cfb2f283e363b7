/*
 * bench_stream: the codec's cost per byte, as ratios against baselines run
 * in the same process on the same buffer.
 *
 *   tests/stream/bench_stream [MiB]        (default 256)
 *
 * A device of MiB of data blocks (64 KiB) goes through the writer into a
 * memory buffer, and the buffer through the reader (records only looked at).
 * Baselines: memcpy of the same bytes (what any send must do at least once)
 * and CRC-32C of the same bytes (what the format adds). The send target of
 * issue #11 (>= 0.8 x the data device's sequential read rate) needs the
 * writer far above a disk's rate; the printed ratios say how far.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libthinp/stream.h>
#include "block/bm.h"

#define BS (64u << 10)

struct buf {
	uint8_t *p;
	size_t len, cap, at;
};

static int put(const void *data, size_t len, void *ctx)
{
	struct buf *b = ctx;

	if (b->len + len > b->cap)
		return -1;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static int get(void *data, size_t len, size_t *got, void *ctx)
{
	struct buf *b = ctx;
	size_t n = b->len - b->at < len ? b->len - b->at : len;

	memcpy(data, b->p + b->at, n);
	b->at += n;
	*got = n;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double best(double a, double b)
{
	return a < b ? a : b;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256, bytes = mib << 20;
	uint64_t nr = bytes / BS;
	uint8_t *dev = malloc(bytes), *copy = malloc(bytes);
	struct buf out = { malloc(bytes + (8u << 20)), 0, bytes + (8u << 20), 0 };
	thinp_stream_header h = THINP_STREAM_HEADER_INIT;
	thinp_stream_writer *w;
	thinp_stream_reader *r;
	const thinp_stream_record *rec;
	double t, t_copy, t_crc, t_write, t_read;
	volatile uint32_t sink = 0;
	uint64_t data_blocks = 0;

	if (!dev || !copy || !out.p || nr == 0)
		return 1;
	for (size_t i = 0; i < bytes; i++)
		dev[i] = (uint8_t)(i * 2654435761u >> 13);
	/* Fault every page in before timing. */
	memcpy(copy, dev, bytes);
	memset(out.p, 0, out.cap);
	h.block_size = BS;
	h.virtual_size = bytes;

	/* Best of three runs of each. */
	t_copy = t_crc = t_write = t_read = 1e9;
	for (int run = 0; run < 3; run++) {
		t = now();
		memcpy(copy, dev, bytes);
		t_copy = best(t_copy, now() - t);
		t = now();
		sink = crc32c_raw(0xFFFFFFFFu, dev, bytes);
		t_crc = best(t_crc, now() - t);

		out.len = out.at = 0;
		t = now();
		if (thinp_stream_writer_begin(&w, &h, 0, put, &out) ||
		    thinp_stream_writer_data(w, 0, nr, dev) || thinp_stream_writer_end(w))
			return 1;
		t_write = best(t_write, now() - t);
		thinp_stream_writer_free(w);

		data_blocks = 0;
		t = now();
		if (thinp_stream_reader_new(&r, get, &out))
			return 1;
		while (thinp_stream_reader_next(r, &rec) == 0 && rec->type != THINP_STREAM_END)
			if (rec->type == THINP_STREAM_DATA)
				data_blocks += rec->nr_blocks;
		t_read = best(t_read, now() - t);
		if (data_blocks != nr) {
			fprintf(stderr, "read %llu blocks of %llu: %s\n",
				(unsigned long long)data_blocks, (unsigned long long)nr,
				thinp_stream_reader_errmsg(r));
			return 1;
		}
		thinp_stream_reader_free(r);
	}

	printf("%zu MiB in %llu blocks of 64 KiB, stream %zu bytes (overhead %.4f%%)\n", mib,
	       (unsigned long long)nr, out.len, 100.0 * (out.len - bytes) / bytes);
	printf("memcpy  %8.0f MiB/s\n", mib / t_copy);
	printf("crc32c  %8.0f MiB/s\n", mib / t_crc);
	printf("write   %8.0f MiB/s  = %.2f x memcpy, %.2f x crc32c\n", mib / t_write,
	       t_copy / t_write, t_crc / t_write);
	printf("read    %8.0f MiB/s  = %.2f x memcpy, %.2f x crc32c\n", mib / t_read,
	       t_copy / t_read, t_crc / t_read);
	(void)sink;
	free(dev);
	free(copy);
	free(out.p);
	return 0;
}
