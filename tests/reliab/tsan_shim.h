/* Included first (-include) in every library source of the TSan build
 * (make check-tsan): secure_getenv goes through the test program, which
 * supplies MTALLOC and makes the tracked range live at 16 MiB, as under
 * valgrind (src/backend/tracked.c), because ThreadSanitizer keeps its
 * shadow memory where the range normally goes (1 TiB and up). */
#ifndef MT_TSAN_SHIM_H
#define MT_TSAN_SHIM_H
#define secure_getenv mt_tsan_secure_getenv
char *mt_tsan_secure_getenv(const char *name);
#endif
