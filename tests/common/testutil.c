#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/testutil.h"

uint64_t test_seed(const char *suite)
{
	const char *env = getenv("THINP_TEST_SEED");
	uint64_t seed;

	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	fprintf(stderr, "%s: THINP_TEST_SEED=%llu\n", suite, (unsigned long long)seed);
	return seed;
}

void test_rng_init(struct test_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t test_rng_next(struct test_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1Dull;
}

uint64_t test_rng_below(struct test_rng *r, uint64_t n)
{
	return test_rng_next(r) % n;
}

unsigned test_scale(void)
{
	const char *env = getenv("THINP_TEST_LONG");
	unsigned v = env ? (unsigned)atoi(env) : 0;

	return v ? v : 1;
}

unsigned test_short(void)
{
	const char *env = getenv("THINP_TEST_SHORT");
	unsigned div = env ? (unsigned)atoi(env) : 0;

	return div > 1 ? div : 1;
}

unsigned test_ops(unsigned n)
{
	n = n * test_scale() / test_short();
	return n ? n : 1;
}

static char tmpdir[256];

const char *test_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/thinp-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir))
			return NULL;
	}
	return tmpdir;
}

void test_tmpdir_cleanup(void)
{
	char cmd[300];

	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	tmpdir[0] = 0;
}

int thin_check_path(const char *path)
{
	pid_t pid;
	int status;

	if (access("/usr/sbin/thin_check", X_OK)) {
		print_message("thin_check not installed: image not checked\n");
		return -1;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execl("/usr/sbin/thin_check", "thin_check", "-q", path, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
