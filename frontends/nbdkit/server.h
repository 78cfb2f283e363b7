/*
 * The thinp nbdkit plugin's shared state: one pool and its catalog, opened
 * in .after_fork, served by every connection (plugin.c), changed by the
 * control socket (control.c). Uses only libthinp's public API.
 */
#ifndef THINP_NBDKIT_SERVER_H
#define THINP_NBDKIT_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include <libthinp/thinp.h>

struct server {
	/* Configuration (strings owned by nbdkit, except catalog_default). */
	const char *meta_path, *data_path, *catalog_path, *control_path;
	char *catalog_default;
	const char *default_export;
	uint32_t commit_interval_ms;

	/* Open from .after_fork to .cleanup. */
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
	uint32_t block_size;
	int pool_rdonly;

	/* Serializes changes of the device set (control commands) so that a
	 * pool change and its catalog commit are not interleaved with another;
	 * lookups need no lock (the catalog has its own). */
	pthread_mutex_t admin_lock;
};

extern struct server srv;

/* Control socket (control.c): listen on srv.control_path from a thread
 * started in .after_fork; stop it in .cleanup. */
int control_start(void);
void control_stop(void);

/*
 * Run one control command (the grammar is in control.c), writing a one-line
 * reply without newline into reply. Returns 0 or a negative errno.
 */
int control_execute(const char *line, char *reply, size_t reply_size);

#endif
