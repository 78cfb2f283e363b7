#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thin/helpers.h"

void th_format(thinp_io **io, thinp_meta **meta, uint64_t bytes, uint64_t nr_data)
{
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;

	assert_int_equal(thinp_io_open_memory(io, bytes, 0), 0);
	p.nr_data_blocks = nr_data;
	assert_int_equal(thinp_meta_format(meta, *io, &p, NULL), 0);
}

void th_reopen(thinp_io *io, thinp_meta **meta)
{
	thinp_meta_close(*meta);
	*meta = NULL;
	assert_int_equal(thinp_meta_open(meta, io, NULL), 0);
}

struct report_ctx {
	unsigned errors, warnings;
	bool verbose;
};

static void report_finding(const thinp_meta_finding *f, void *ctx)
{
	struct report_ctx *c = ctx;
	bool warning = f->severity == THINP_META_CHECK_WARNING;

	if (warning)
		c->warnings++;
	else
		c->errors++;
	if (c->verbose && c->errors + c->warnings <= 20)
		fprintf(stderr, "  check: %s%s\n", warning ? "warning: " : "", f->line);
}

/* Errors found (warnings in c), plus one if the verdict disagrees with them. */
static unsigned run_check(thinp_io *io, struct report_ctx *c)
{
	int r = thinp_meta_check_io_v2(io, NULL, report_finding, c);

	if (r && r != -EILSEQ) {
		fprintf(stderr, "check could not run: %d\n", r);
		return c->errors + 1;
	}
	if ((r == 0) != (c->errors == 0)) {
		fprintf(stderr, "check returned %d with %u errors\n", r, c->errors);
		return c->errors + 1;
	}
	return c->errors;
}

unsigned th_check_count(thinp_io *io, bool verbose)
{
	struct report_ctx c = { 0, 0, verbose };

	return run_check(io, &c);
}

void th_check_clean(thinp_io *io)
{
	struct report_ctx c = { 0, 0, true };

	assert_int_equal(run_check(io, &c), 0);
	assert_int_equal(c.warnings, 0); /* our own images are not even odd */
}

const char *th_tool(const char *name)
{
	static char path[256];
	char var[64];
	const char *env;
	size_t i;

	/* make check exports what configure found (THIN_CHECK=...). */
	snprintf(var, sizeof(var), "%s", name);
	for (i = 0; var[i]; i++)
		var[i] = (char)(var[i] >= 'a' && var[i] <= 'z' ? var[i] - 32 : var[i]);
	env = getenv(var);
	if (env && *env && access(env, X_OK) == 0) {
		snprintf(path, sizeof(path), "%s", env);
		return path;
	}
	snprintf(path, sizeof(path), "/usr/sbin/%s", name);
	if (access(path, X_OK) == 0)
		return path;
	snprintf(path, sizeof(path), "/sbin/%s", name);
	if (access(path, X_OK) == 0)
		return path;
	return NULL;
}

const char *th_save(thinp_io *io, const char *name)
{
	static char path[512];
	uint64_t size, off;
	char *buf = malloc(1 << 20);
	FILE *f;

	assert_non_null(buf);
	assert_int_equal(thinp_io_size(io, &size), 0);
	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (off = 0; off < size; off += 1 << 20) {
		uint64_t n = size - off < (1 << 20) ? size - off : (1 << 20);

		assert_int_equal(thinp_io_read(io, buf, n, off), 0);
		assert_int_equal(fwrite(buf, 1, n, f), n);
	}
	assert_int_equal(fclose(f), 0);
	free(buf);
	return path;
}

void th_load(const char *path, thinp_io **io)
{
	FILE *f = fopen(path, "rb");
	long n;
	char *buf;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	assert_int_equal(thinp_io_open_memory(io, n, 0), 0);
	assert_int_equal(thinp_io_write(*io, buf, n, 0), 0);
	free(buf);
}

int th_run(char *const argv[], char *out, size_t len)
{
	int pipefd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(pipefd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char tmp[4096];

		n = read(pipefd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && got + 1 < len) {
			size_t k = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;

			memcpy(out + got, tmp, k);
			got += k;
		}
	}
	close(pipefd[0]);
	if (out && len)
		out[got] = 0;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int th_thin_check(thinp_io *io)
{
	const char *tool = th_tool("thin_check");
	char out[8192], tool_path[256];
	char *argv[3];
	int rc;

	if (!tool) {
		fprintf(stderr, "thin_check not installed: skipping the oracle\n");
		return 77;
	}
	snprintf(tool_path, sizeof(tool_path), "%s", tool);
	argv[0] = tool_path;
	argv[1] = (char *)th_save(io, "thin_check.img");
	argv[2] = NULL;
	rc = th_run(argv, out, sizeof(out));
	if (rc != 0 || strstr(out, "error") || strstr(out, "rror:"))
		fprintf(stderr, "thin_check exit %d:\n%s\n", rc, out);
	return rc;
}

uint32_t th_time(thinp_meta *meta)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;

	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	return sb.time;
}

int th_insert_now(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t data_block)
{
	return thinp_meta_insert_timed(meta, dev, vblock, data_block, th_time(meta));
}

int th_remove(thinp_meta *meta, uint64_t dev, uint64_t vblock)
{
	uint64_t n = 0;
	int r = thin_remove_range_locked(meta, dev, vblock, vblock + 1, &n);

	return r ? r : n ? 0 : -ENODATA;
}

int th_lookup_next(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t *vblock_out,
		   uint64_t *data_block, uint32_t *time)
{
	struct thin_mapping m;
	uint64_t vb;
	int r = thin_lookup_next_locked(meta, dev, vblock, &vb, &m);

	if (r)
		return r;
	if (vblock_out)
		*vblock_out = vb;
	if (data_block)
		*data_block = m.data_block;
	if (time)
		*time = m.time;
	return 0;
}

int th_clear_needs_check(thinp_meta *meta)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	int r = thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb);

	sb.flags &= ~THINP_META_FLAG_NEEDS_CHECK;
	return r ? r : thinp_meta_set_superblock_fields(meta, &sb);
}

int th_mode(thinp_meta *meta)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;

	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	return (int)st.mode;
}
