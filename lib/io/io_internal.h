/* Internal helpers of the io layer, for the layers above it. */
#ifndef THINP_IO_INTERNAL_H
#define THINP_IO_INTERNAL_H

#include "os/os.h"
#include <libthinp/io.h>
#include "util/compiler.h"

/* True if the handle was opened with THINP_IO_RDONLY. */
bool thinp_io_is_read_only(const thinp_io *io);

#endif
