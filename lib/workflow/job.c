/*
 * Jobs: progress, pause, cancel and rate limit of a workflow, shared between
 * the workflow's thread and any thread holding the handle.
 *
 * Lock: job->lock guards every field but the callback's invocation, which
 * runs on a copy of the progress with the lock released (the callback may
 * call back into the job).
 */
#include "os/os.h"

#include "util/abi_struct.h"
#include "workflow/job.h"

/* The least time between two progress callbacks of one run. */
#define JOB_CALLBACK_INTERVAL_NS (200ull * 1000 * 1000)
#define NS_PER_S 1000000000ull

struct thinp_job {
	thinp_os_mutex lock;
	thinp_os_cond wake;        /* a request changed: pause, resume, cancel, rate */
	thinp_job_progress progress;
	bool pause_requested;
	bool cancel_requested;
	bool running;
	/* Rate limiting: bytes moved since rate_epoch_ns, under the current limit. */
	uint64_t rate_epoch_ns;
	uint64_t rate_bytes;
	thinp_job_progress_fn fn;
	void *fn_ctx;
	uint64_t last_callback_ns;
};

int thinp_job_new(thinp_job **out)
{
	thinp_job *job;

	if (!out)
		return -EINVAL;
	job = thinp_os_zalloc(sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->progress.struct_size = sizeof(job->progress);
	job->progress.state = THINP_JOB_IDLE;
	thinp_os_mutex_init(&job->lock);
	thinp_os_cond_init(&job->wake);
	*out = job;
	return 0;
}

void thinp_job_free(thinp_job *job)
{
	if (!job)
		return;
	thinp_os_cond_destroy(&job->wake);
	thinp_os_mutex_destroy(&job->lock);
	thinp_os_free(job);
}

/* Apply fn to the job under its lock and wake a waiting workflow. */
static int job_request(thinp_job *job, void (*fn)(thinp_job *, uint64_t), uint64_t arg)
{
	if (!job)
		return -EINVAL;
	thinp_os_mutex_lock(&job->lock);
	fn(job, arg);
	thinp_os_cond_broadcast(&job->wake);
	thinp_os_mutex_unlock(&job->lock);
	return 0;
}

static void set_pause(thinp_job *job, uint64_t on)
{
	job->pause_requested = on;
}

static void set_cancel(thinp_job *job, uint64_t unused)
{
	(void)unused;
	job->cancel_requested = true;
}

static void set_rate(thinp_job *job, uint64_t rate)
{
	job->progress.rate_limit = rate;
	/* The new limit counts from now, not from the start of the run. */
	job->rate_epoch_ns = thinp_os_monotonic_ns();
	job->rate_bytes = 0;
}

int thinp_job_pause(thinp_job *job)
{
	return job_request(job, set_pause, 1);
}

int thinp_job_resume(thinp_job *job)
{
	return job_request(job, set_pause, 0);
}

int thinp_job_cancel(thinp_job *job)
{
	return job_request(job, set_cancel, 0);
}

int thinp_job_set_rate_limit(thinp_job *job, uint64_t bytes_per_second)
{
	return job_request(job, set_rate, bytes_per_second);
}

int thinp_job_get_progress(const thinp_job *job, thinp_job_progress *out)
{
	thinp_job *j = (thinp_job *)job; /* the lock is not part of the value */
	thinp_job_progress copy;

	if (!job)
		return -EINVAL;
	thinp_os_mutex_lock(&j->lock);
	copy = j->progress;
	thinp_os_mutex_unlock(&j->lock);
	return thinp_abi_copy_out(out, &copy, sizeof(copy), offsetof(thinp_job_progress, phase) + sizeof(copy.phase));
}

int thinp_job_set_progress_fn(thinp_job *job, thinp_job_progress_fn fn, void *ctx)
{
	if (!job)
		return -EINVAL;
	thinp_os_mutex_lock(&job->lock);
	job->fn = fn;
	job->fn_ctx = ctx;
	thinp_os_mutex_unlock(&job->lock);
	return 0;
}

/* Called with the lock held; releases it. Runs the callback (unlocked) if
 * `force` (a state or phase change) or its interval has passed. */
static void unlock_and_report(thinp_job *job, bool force)
{
	thinp_job_progress_fn fn = job->fn;
	void *ctx = job->fn_ctx;
	thinp_job_progress copy = job->progress;
	uint64_t now = fn ? thinp_os_monotonic_ns() : 0;

	if (fn && !force && now - job->last_callback_ns < JOB_CALLBACK_INTERVAL_NS)
		fn = NULL;
	if (fn)
		job->last_callback_ns = now;
	thinp_os_mutex_unlock(&job->lock);
	if (fn)
		fn(&copy, ctx);
}

/* Wait, lock held, until `deadline_ns` (0: no deadline) or a request; returns
 * false when the deadline passed. */
static bool wait_locked(thinp_job *job, uint64_t deadline_ns)
{
	if (!deadline_ns) {
		thinp_os_cond_wait(&job->wake, &job->lock);
		return true;
	}
	return thinp_os_cond_wait_until(&job->wake, &job->lock, deadline_ns) != -ETIMEDOUT;
}

/* Lock held: wait while paused (state PAUSED meanwhile) unless cancelled.
 * Returns true if the state changed (for the callback). */
static bool wait_while_paused(thinp_job *job)
{
	bool waited = false;

	while (job->pause_requested && !job->cancel_requested) {
		if (job->progress.state != THINP_JOB_PAUSED) {
			/* Report the pause before waiting in it. */
			job->progress.state = THINP_JOB_PAUSED;
			unlock_and_report(job, true);
			thinp_os_mutex_lock(&job->lock);
			continue;
		}
		wait_locked(job, 0);
		waited = true;
	}
	if (job->progress.state == THINP_JOB_PAUSED) {
		job->progress.state = THINP_JOB_RUNNING;
		/* Time spent paused does not earn rate-limit credit. */
		job->rate_epoch_ns = thinp_os_monotonic_ns();
		job->rate_bytes = 0;
		return true;
	}
	return waited;
}

/* Lock held: the time at which rate_bytes are allowed under the limit. */
static uint64_t rate_deadline(const thinp_job *job)
{
	uint64_t rate = job->progress.rate_limit;
	uint64_t whole = job->rate_bytes / rate, part = job->rate_bytes % rate;

	return job->rate_epoch_ns + whole * NS_PER_S + part * NS_PER_S / rate;
}

int job_begin(thinp_job *job, uint32_t phase)
{
	if (!job)
		return 0;
	thinp_os_mutex_lock(&job->lock);
	if (job->running) {
		thinp_os_mutex_unlock(&job->lock);
		return -EBUSY;
	}
	job->running = true;
	job->progress.state = THINP_JOB_RUNNING;
	job->progress.phase = phase;
	job->progress.done = job->progress.total = job->progress.round = 0;
	job->progress.lag_ns = job->progress.in_flight = 0;
	job->progress.result = 0;
	job->rate_epoch_ns = thinp_os_monotonic_ns();
	job->rate_bytes = 0;
	job->last_callback_ns = 0;
	unlock_and_report(job, true);
	return 0;
}

int job_end(thinp_job *job, int rc)
{
	if (!job)
		return rc;
	thinp_os_mutex_lock(&job->lock);
	job->running = false;
	job->pause_requested = job->cancel_requested = false;
	job->progress.state = THINP_JOB_DONE;
	job->progress.result = rc;
	unlock_and_report(job, true);
	return rc;
}

void job_set_phase(thinp_job *job, uint32_t phase)
{
	bool changed;

	if (!job)
		return;
	thinp_os_mutex_lock(&job->lock);
	changed = job->progress.phase != phase;
	job->progress.phase = phase;
	unlock_and_report(job, changed);
}

void job_add_total(thinp_job *job, uint64_t bytes)
{
	if (!job)
		return;
	thinp_os_mutex_lock(&job->lock);
	job->progress.total += bytes;
	thinp_os_mutex_unlock(&job->lock);
}

void job_set_round(thinp_job *job, uint64_t round)
{
	if (!job)
		return;
	thinp_os_mutex_lock(&job->lock);
	job->progress.round = round;
	thinp_os_mutex_unlock(&job->lock);
}

void job_set_replication(thinp_job *job, uint64_t lag_ns, uint64_t in_flight)
{
	if (!job)
		return;
	thinp_os_mutex_lock(&job->lock);
	job->progress.lag_ns = lag_ns;
	job->progress.in_flight = in_flight;
	thinp_os_mutex_unlock(&job->lock);
}

int job_checkpoint(thinp_job *job, uint64_t bytes)
{
	bool changed;
	int r = 0;

	if (!job)
		return 0;
	thinp_os_mutex_lock(&job->lock);
	job->progress.done += bytes;
	job->rate_bytes += bytes;
	changed = wait_while_paused(job);
	/* Sleep off what the rate limit does not allow yet; a request (pause,
	 * cancel, new limit) wakes the sleep and is honoured at once. */
	while (!job->cancel_requested && job->progress.rate_limit &&
	       rate_deadline(job) > thinp_os_monotonic_ns()) {
		wait_locked(job, rate_deadline(job));
		changed |= wait_while_paused(job);
	}
	if (job->cancel_requested)
		r = -ECANCELED;
	unlock_and_report(job, changed);
	return r;
}

int job_sleep(thinp_job *job, uint64_t ns)
{
	uint64_t deadline;
	int r = 0;

	if (!job) {
		thinp_os_sleep_ns(ns);
		return 0;
	}
	thinp_os_mutex_lock(&job->lock);
	deadline = thinp_os_monotonic_ns() + ns;
	while (!job->cancel_requested) {
		if (wait_while_paused(job))
			continue;
		if (thinp_os_monotonic_ns() >= deadline || !wait_locked(job, deadline))
			break;
	}
	if (job->cancel_requested)
		r = -ECANCELED;
	thinp_os_mutex_unlock(&job->lock);
	return r;
}
