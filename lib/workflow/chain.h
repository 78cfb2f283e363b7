/*
 * A receiver's replica chains: the published devices a replication
 * receiver keeps, each linked to the one it was received onto by its parent
 * guid. A replica is a visible device (neither PARTIAL nor ANCHOR) that has
 * an anchor (replica.h): a device created here, a failover device among
 * them, has none, so it is never taken for a replica.
 */
#ifndef THINP_WORKFLOW_CHAIN_H
#define THINP_WORKFLOW_CHAIN_H

#include "os/os.h"
#include <libthinp/catalog.h>
#include <libthinp/pool.h>

/* The replica whose guid is @guid into @e: 0 or -ENODATA. */
int chain_find(thinp_catalog *cat, const uint8_t guid[16], thinp_catalog_entry *e);

/* From replica @e, follow the replicas received onto it to the newest;
 * @e becomes that one. */
void chain_newest(thinp_catalog *cat, thinp_catalog_entry *e);

/* Keep replica @newest and the @keep - 1 replicas before it; delete older
 * ones and their anchors (each: entry removed and committed, then device). */
int chain_prune(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *newest,
		uint32_t keep);

#endif
