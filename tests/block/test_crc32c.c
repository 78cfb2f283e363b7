/*
 * crc32c: both implementations against published vectors, against each other
 * on random input, and against a bitwise reference written here; the block
 * checksum against a superblock written by thin_restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include "block/bm.h"
#include "block/crc32c.h"
#include "os/os.h"
#include "util/endian.h"

#define SUPERBLOCK_SALT 160774u

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* The definition, one bit at a time: independent of both implementations. */
static uint32_t crc_bitwise(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return crc;
}

static uint32_t standard(crc_fn f, const void *data, size_t len)
{
	return f(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu;
}

static const struct {
	const char *name;
	crc_fn f;
} impls[] = {
	{ "bitwise", crc_bitwise },
	{ "table", crc32c_raw_table },
	{ "dispatch (the host's where it has one)", crc32c_raw },
};

static void test_published_vectors(void **state)
{
	unsigned char zeros[32], ones[32], inc[32], dec[32];

	memset(zeros, 0, sizeof(zeros));
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++) {
		inc[i] = (unsigned char)i;
		dec[i] = (unsigned char)(31 - i);
	}
	if (!thinp_os_crc32c_accel())
		fprintf(stderr, "note: no accelerated crc32c on this host; dispatch runs the table code\n");
	for (size_t i = 0; i < THINP_ARRAY_SIZE(impls); i++) {
		crc_fn f = impls[i].f;

		fprintf(stderr, "checking %s\n", impls[i].name);
		assert_int_equal(standard(f, "123456789", 9), 0xE3069283u);
		/* RFC 3720, B.4 */
		assert_int_equal(standard(f, zeros, 32), 0x8A9136AAu);
		assert_int_equal(standard(f, ones, 32), 0x62A8AB43u);
		assert_int_equal(standard(f, inc, 32), 0x46DD794Eu);
		assert_int_equal(standard(f, dec, 32), 0x113FDB5Cu);
		assert_int_equal(standard(f, "", 0), 0);
		assert_int_equal(f(0x12345678u, "", 0), 0x12345678u);
	}
}

/* Every length 0..100 at every start offset 0..15, random contents. */
static void test_lengths_and_alignment(void **state)
{
	struct test_rng rng;
	unsigned char buf[128];

	test_rng_init(&rng, test_seed("crc32c lengths"));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)test_rng_next(&rng);
	for (size_t off = 0; off < 16; off++) {
		for (size_t len = 0; len <= 100; len++) {
			uint32_t seed = (uint32_t)test_rng_next(&rng);
			uint32_t want = crc_bitwise(seed, buf + off, len);

			assert_int_equal(crc32c_raw_table(seed, buf + off, len), want);
			assert_int_equal(crc32c_raw(seed, buf + off, len), want);
		}
	}
}

/* Large random buffers; and a split computation equals the whole one. */
static void test_random_buffers_agree(void **state)
{
	struct test_rng rng;
	size_t max = 3 * THINP_BLOCK_SIZE + 17;
	unsigned char *buf = malloc(max);

	assert_non_null(buf);
	test_rng_init(&rng, test_seed("crc32c random"));
	for (int iter = 0; iter < 200; iter++) {
		size_t len = test_rng_below(&rng, max);
		size_t off = test_rng_below(&rng, 16);
		size_t cut;
		uint32_t t, s;

		if (off > len)
			off = len;
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)test_rng_next(&rng);
		t = crc32c_raw_table(~0u, buf + off, len - off);
		s = crc32c_raw(~0u, buf + off, len - off);
		assert_int_equal(t, s);
		if (iter < 20)
			assert_int_equal(t, crc_bitwise(~0u, buf + off, len - off));
		cut = off + test_rng_below(&rng, len - off + 1);
		assert_int_equal(crc32c_raw(crc32c_raw(~0u, buf + off, cut - off), buf + cut,
					    len - cut), t);
	}
	free(buf);
}

static void test_block_csum_matches_bitwise(void **state)
{
	struct test_rng rng;
	unsigned char *blk = malloc(THINP_BLOCK_SIZE + 1);

	assert_non_null(blk);
	test_rng_init(&rng, test_seed("crc32c block"));
	for (int iter = 0; iter < 4; iter++) {
		/* an unaligned block too: callers may checksum any buffer */
		unsigned char *b = blk + (iter & 1);
		uint32_t salt = (uint32_t)test_rng_next(&rng);

		for (size_t i = 0; i < THINP_BLOCK_SIZE; i++)
			b[i] = (unsigned char)test_rng_next(&rng);
		assert_int_equal(block_csum(b, salt),
				 crc_bitwise(0xFFFFFFFFu, b + 4, THINP_BLOCK_SIZE - 4) ^ salt);
		/* The stored checksum itself is not covered. */
		b[0] ^= 0xff;
		assert_int_equal(block_csum(b, salt),
				 crc_bitwise(0xFFFFFFFFu, b + 4, THINP_BLOCK_SIZE - 4) ^ salt);
	}
	free(blk);
}

static const char restore_xml[] =
	"<superblock uuid=\"\" time=\"0\" transaction=\"1\" data_block_size=\"128\" "
	"nr_data_blocks=\"100\">\n"
	"  <device dev_id=\"0\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" "
	"snap_time=\"0\">\n  </device>\n</superblock>\n";

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -errno;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

/* A superblock written by thin_restore carries the checksum we compute. */
static void test_thin_restore_superblock(void **state)
{
	const char *dir = test_tmpdir();
	char xml[300], meta[300], cmd[1000];
	unsigned char *blk;
	int fd;

	if (access("/usr/sbin/thin_restore", X_OK) != 0 && system("command -v thin_restore >/dev/null 2>&1") != 0) {
		fprintf(stderr, "thin_restore not installed: skipping\n");
		skip();
	}
	assert_non_null(dir);
	snprintf(xml, sizeof(xml), "%s/sb.xml", dir);
	snprintf(meta, sizeof(meta), "%s/meta.bin", dir);
	assert_int_equal(write_file(xml, restore_xml, strlen(restore_xml)), 0);
	fd = open(meta, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "PATH=\"$PATH:/usr/sbin:/sbin\" thin_restore -i '%s' -o '%s' >/dev/null 2>&1",
		 xml, meta);
	assert_int_equal(system(cmd), 0);

	blk = malloc(THINP_BLOCK_SIZE);
	assert_non_null(blk);
	fd = open(meta, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, blk, THINP_BLOCK_SIZE, 0), THINP_BLOCK_SIZE);
	close(fd);
	assert_int_equal(load_le64(blk + 32), 27022010); /* it is a superblock */
	assert_int_equal(load_le32(blk), block_csum(blk, SUPERBLOCK_SALT));
	assert_int_equal(load_le32(blk),
			 crc_bitwise(0xFFFFFFFFu, blk + 4, THINP_BLOCK_SIZE - 4) ^ SUPERBLOCK_SALT);
	/* A flipped bit anywhere past the checksum field changes it. */
	blk[4000] ^= 0x10;
	assert_int_not_equal(load_le32(blk), block_csum(blk, SUPERBLOCK_SALT));
	free(blk);
	test_tmpdir_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_published_vectors),
		cmocka_unit_test(test_lengths_and_alignment),
		cmocka_unit_test(test_random_buffers_agree),
		cmocka_unit_test(test_block_csum_matches_bitwise),
		cmocka_unit_test(test_thin_restore_superblock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
