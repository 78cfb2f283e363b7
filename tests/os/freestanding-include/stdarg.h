/* Stand-in for <stdarg.h> in tests/os/freestanding.sh: the public headers
 * include it; the OS layer provides what it would. */
#include "os/os.h"
