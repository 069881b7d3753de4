/* probe.c: the call that PROBE makes (see probe.h).  Compiled into every
 * test object that probes, as its own copy. */
#include "probe.h"

void *volatile probe_sink;

PROBE_NOINLINE void *probe_return_address(void)
{
	void *ra = __builtin_extract_return_addr(__builtin_return_address(0));

	probe_sink = ra;
	return ra;
}
