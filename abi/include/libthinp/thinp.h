/*
 * libthinp umbrella header: the whole stable tier (common.h, version.h, io.h,
 * pool.h, thin.h; version nodes LIBTHINP_1.N).
 *
 * The two other tiers are included explicitly by the programs that want them:
 * <libthinp/meta.h>, the metadata tier, for tools that work on pool metadata
 * alone (LIBTHINP_META_1.N), and <libthinp/testing.h>, the testing tier, the
 * fault-injecting backend (LIBTHINP_TESTING_1.N).
 */
#ifndef LIBTHINP_THINP_H
#define LIBTHINP_THINP_H

#include <libthinp/common.h>
#include <libthinp/version.h>
#include <libthinp/io.h>
#include <libthinp/pool.h>
#include <libthinp/thin.h>
#include <libthinp/stream.h>
#include <libthinp/catalog.h>
#include <libthinp/delta.h>
#include <libthinp/replica.h>
#include <libthinp/job.h>
#include <libthinp/origin_jobs.h>
#include <libthinp/replicate.h>
#include <libthinp/migrate.h>

#endif
