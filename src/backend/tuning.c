/* The options compiled into our jemalloc (its malloc_conf).  Each one is
 * justified by a measurement in doc/design.md ("Tuning jemalloc").  A user's
 * MALLOC_CONF still applies on top of these. */
#include "config.h"

#include "backend.h"

const char *mtje_malloc_conf = "";
