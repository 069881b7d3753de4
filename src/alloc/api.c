/* The functions declared in include/mtalloc.h. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "mtalloc.h"
#include "track/track.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT const char *mtalloc_version(void)
{
	return PACKAGE_VERSION;
}

EXPORT int mtalloc_stats_get(struct mtalloc_stats *st, size_t size)
{
	struct mtalloc_stats full;

	if (!st || size < offsetof(struct mtalloc_stats, live_bytes)) {
		errno = EINVAL;
		return -1;
	}
	mt_thread_stats(&full);
	memcpy(st, &full, size < sizeof(full) ? size : sizeof(full));
	return 0;
}

EXPORT int mtalloc_flush(void)
{
	int err = mt_thread_flush_all();

	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}

EXPORT void mtalloc_mark(const char *label)
{
	mt_thread_mark(label);
}

EXPORT int mtalloc_sample_set(const char *spec)
{
	int err = mt_thread_sample_set(spec);

	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}
