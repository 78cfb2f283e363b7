/*
 * The job handle: progress, pause and resume from another thread, cancel
 * before and during a run, the rate limit (a lower bound on time, which load
 * can only lengthen), the callback on state changes, and NULL jobs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>
#include "workflow/job.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static thinp_job_progress progress_of(thinp_job *job)
{
	thinp_job_progress p = { .struct_size = sizeof(p) };

	assert_int_equal(thinp_job_get_progress(job, &p), 0);
	return p;
}

static void wait_for_state(thinp_job *job, uint32_t state)
{
	for (int i = 0; i < 20000 && progress_of(job).state != state; i++)
		usleep(500);
	assert_int_equal(progress_of(job).state, state);
}

static void test_null_job(void **state)
{
	(void)state;
	assert_int_equal(job_begin(NULL, THINP_JOB_PHASE_COPY), 0);
	assert_int_equal(job_checkpoint(NULL, 4096), 0);
	assert_int_equal(job_sleep(NULL, 1000), 0);
	assert_int_equal(job_end(NULL, -EIO), -EIO);
	assert_int_equal(thinp_job_pause(NULL), -EINVAL);
	assert_int_equal(thinp_job_cancel(NULL), -EINVAL);
	assert_int_equal(thinp_job_new(NULL), -EINVAL);
	thinp_job_free(NULL);
}

static void test_progress(void **state)
{
	thinp_job *job;
	thinp_job_progress p, small = { .struct_size = 4 };

	(void)state;
	assert_int_equal(thinp_job_new(&job), 0);
	assert_int_equal(progress_of(job).state, THINP_JOB_IDLE);
	assert_int_equal(thinp_job_get_progress(job, &small), -EINVAL);
	assert_int_equal(job_begin(job, THINP_JOB_PHASE_COPY), 0);
	assert_int_equal(job_begin(job, THINP_JOB_PHASE_COPY), -EBUSY);
	job_add_total(job, 3 * 4096);
	assert_int_equal(job_checkpoint(job, 4096), 0);
	assert_int_equal(job_checkpoint(job, 4096), 0);
	job_set_round(job, 2);
	job_set_replication(job, 5, 6);
	job_set_phase(job, THINP_JOB_PHASE_SWITCH);
	p = progress_of(job);
	assert_int_equal(p.struct_size, sizeof(p));
	assert_int_equal(p.state, THINP_JOB_RUNNING);
	assert_int_equal(p.done, 2 * 4096);
	assert_int_equal(p.total, 3 * 4096);
	assert_int_equal(p.round, 2);
	assert_int_equal(p.lag_ns, 5);
	assert_int_equal(p.in_flight, 6);
	assert_int_equal(p.phase, THINP_JOB_PHASE_SWITCH);
	assert_int_equal(job_end(job, -ENOSPC), -ENOSPC);
	p = progress_of(job);
	assert_int_equal(p.state, THINP_JOB_DONE);
	assert_int_equal(p.result, -ENOSPC);
	/* A second run starts from zero. */
	assert_int_equal(job_begin(job, THINP_JOB_PHASE_COPY), 0);
	assert_int_equal(progress_of(job).done, 0);
	assert_int_equal(job_end(job, 0), 0);
	thinp_job_free(job);
}

/* A workflow in a thread: `steps` checkpoints of `bytes`, its result kept. */
struct worker {
	thinp_job *job;
	int steps;
	uint64_t bytes;
	int done_steps;
	int result;
	pthread_t thread;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	int r = job_begin(w->job, THINP_JOB_PHASE_COPY);

	for (w->done_steps = 0; !r && w->done_steps < w->steps; w->done_steps++) {
		r = job_checkpoint(w->job, w->bytes);
		if (r)
			break;
		usleep(200);
	}
	w->result = job_end(w->job, r);
	return NULL;
}

static void start(struct worker *w, thinp_job *job, int steps, uint64_t bytes)
{
	memset(w, 0, sizeof(*w));
	w->job = job;
	w->steps = steps;
	w->bytes = bytes;
	assert_int_equal(pthread_create(&w->thread, NULL, work, w), 0);
}

static void test_pause_resume_cancel(void **state)
{
	struct worker w;
	thinp_job *job;
	uint64_t done;

	(void)state;
	assert_int_equal(thinp_job_new(&job), 0);
	/* A pause before the run: it starts and stops at its first point. */
	assert_int_equal(thinp_job_pause(job), 0);
	start(&w, job, 1000, 1);
	wait_for_state(job, THINP_JOB_PAUSED);
	done = progress_of(job).done;
	usleep(20000);
	assert_int_equal(progress_of(job).done, done);
	assert_int_equal(thinp_job_resume(job), 0);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, 0);
	assert_int_equal(progress_of(job).done, 1000);

	/* Cancel of a paused run: it returns -ECANCELED at once. */
	start(&w, job, 1000000, 1);
	assert_int_equal(thinp_job_pause(job), 0);
	wait_for_state(job, THINP_JOB_PAUSED);
	assert_int_equal(thinp_job_cancel(job), 0);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, -ECANCELED);
	assert_true(w.done_steps < 1000000);
	assert_int_equal(progress_of(job).result, -ECANCELED);

	/* The requests were consumed: the next run goes to its end. */
	start(&w, job, 10, 1);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, 0);
	/* A cancel before a run stops it at its first point. */
	assert_int_equal(thinp_job_cancel(job), 0);
	start(&w, job, 10, 1);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, -ECANCELED);
	assert_int_equal(w.done_steps, 0);
	thinp_job_free(job);
}

static void test_rate_limit(void **state)
{
	struct worker w;
	thinp_job *job;
	uint64_t t0;

	(void)state;
	assert_int_equal(thinp_job_new(&job), 0);
	/* 40 steps of 10 KB at 1 MB/s: 0.4 s at least (the first step's bytes
	 * are allowed at time 0.01 s, the last at 0.4 s). */
	assert_int_equal(thinp_job_set_rate_limit(job, 1000000), 0);
	assert_int_equal(progress_of(job).rate_limit, 1000000);
	t0 = now_ms();
	start(&w, job, 40, 10000);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, 0);
	assert_true(now_ms() - t0 >= 390);

	/* A cancel wakes a rate-limited sleep: one step of 100 MB at 1 MB/s
	 * would sleep 100 s. */
	t0 = now_ms();
	start(&w, job, 2, 100000000);
	usleep(50000);
	assert_int_equal(thinp_job_cancel(job), 0);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, -ECANCELED);
	assert_true(now_ms() - t0 < 60000);

	/* Lifting the limit wakes the sleep too. */
	start(&w, job, 2, 100000000);
	usleep(50000);
	assert_int_equal(thinp_job_set_rate_limit(job, 0), 0);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, 0);
	thinp_job_free(job);
}

static void test_sleep(void **state)
{
	thinp_job *job;
	uint64_t t0;

	(void)state;
	assert_int_equal(thinp_job_new(&job), 0);
	assert_int_equal(job_begin(job, THINP_JOB_PHASE_WAIT), 0);
	t0 = now_ms();
	assert_int_equal(job_sleep(job, 30ull * 1000 * 1000), 0);
	assert_true(now_ms() - t0 >= 29);
	assert_int_equal(thinp_job_cancel(job), 0);
	assert_int_equal(job_sleep(job, 100ull * 1000 * 1000 * 1000), -ECANCELED);
	job_end(job, -ECANCELED);
	thinp_job_free(job);
}

/* The callback sees every state change, and may call into the job. */
struct seen {
	thinp_job *job;
	uint32_t states[64];
	int n;
};

static void on_progress(const thinp_job_progress *p, void *ctx)
{
	struct seen *s = ctx;
	thinp_job_progress q = { .struct_size = sizeof(q) };

	assert_int_equal(thinp_job_get_progress(s->job, &q), 0);
	if (s->n < 64 && (s->n == 0 || s->states[s->n - 1] != p->state))
		s->states[s->n++] = p->state;
	if (p->state == THINP_JOB_PAUSED)
		thinp_job_resume(s->job); /* the callback resumes its own job */
}

static void test_callback(void **state)
{
	struct seen s = { 0 };
	struct worker w;
	thinp_job *job;

	(void)state;
	assert_int_equal(thinp_job_new(&job), 0);
	s.job = job;
	assert_int_equal(thinp_job_set_progress_fn(job, on_progress, &s), 0);
	assert_int_equal(thinp_job_pause(job), 0);
	start(&w, job, 5, 1);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.result, 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.states[0], THINP_JOB_RUNNING);
	assert_int_equal(s.states[1], THINP_JOB_PAUSED);
	assert_int_equal(s.states[2], THINP_JOB_RUNNING);
	assert_int_equal(s.states[3], THINP_JOB_DONE);
	thinp_job_free(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_job),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_pause_resume_cancel),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_sleep),
		cmocka_unit_test(test_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
