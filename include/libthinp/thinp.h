/* libthinp umbrella header: include this to get the whole public API. */
#ifndef LIBTHINP_THINP_H
#define LIBTHINP_THINP_H

#include <libthinp/common.h>
#include <libthinp/version.h>
#include <libthinp/io.h>
#include <libthinp/meta.h>
#include <libthinp/pool.h>
#include <libthinp/thin.h>
#include <libthinp/catalog.h>

#endif
