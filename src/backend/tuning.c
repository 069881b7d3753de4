/* The options compiled into our jemalloc (its malloc_conf), each with the
 * measurement behind it.  A user's MALLOC_CONF still applies on top.
 *
 * Figures from the 2-vCPU Debian 12 machine, options tried as MALLOC_CONF
 * on libmtalloc before being compiled in (`make bench BENCH_FLAGS=
 * '--mt-conf ...'` does the same).  Instruction counts are callgrind's and
 * repeat exactly; "per pair" and "per op" are differences of two runs:
 *   64 KiB loop: (I(fastpath 40000 65536) - I(fastpath 20000 65536)) / 20000
 *   churn:       (I(churn -n 400000) - I(churn -n 200000)) / 200000, one op
 *                being a free + a malloc, ~67 instructions of it the
 *                benchmark's own;
 *   idle cache:  `retain -n 8|20|100` with dirty_decay_ms:0,muzzy_decay_ms:0,
 *                KiB still resident per idle thread after it freed a burst
 *                of every size class from 16 B to 64 KiB.
 * Stock jemalloc: 64 KiB loop 2,547 instructions (320-540 ns); churn 289
 * instructions per op, 11.9-13.7 Mops/s, 1 thread; idle cache at most
 * 2,040 KiB per thread. */
#include "config.h"

#include "backend.h"

const char *mtje_malloc_conf =
	/* Thread-cache objects up to 64 KiB (stock: 32 KiB).  Above the
	 * limit every malloc and free takes the arena's locked extent path.
	 * Alone: 64 KiB loop 2,547 -> 651 instructions per pair; churn (5 %
	 * of its blocks are 4-64 KiB) 289 -> 228 per op, 13.5 -> 17.4 Mops/s.
	 * 64 KiB is the largest size of churn and a common I/O buffer size;
	 * 128 KiB measured the same on churn and would only add cache. */
	"tcache_max:65536,"
	/* Run the thread-cache GC event every 1 MiB allocated or freed
	 * (stock: 64 KiB).  With 64 KiB objects cached, the stock interval
	 * fires the event on every 64 KiB malloc and flushes bins that the
	 * next allocations refill.  64 KiB loop: 651 -> 461 instructions per
	 * pair (65-70 ns); churn: 228 -> 174 per op.  Shorter intervals give
	 * back part of it (256 KiB: 193, 512 KiB: 183), longer ones gain
	 * little (4 MiB: 168).  The fast path loses its share of GC events:
	 * 64 B 84.7 -> 84.4, 1024 B 92.7 -> 89.7, 4096 B 118.9 -> 107.0
	 * instructions per pair. */
	"tcache_gc_incr_bytes:1048576,"
	/* At most 8 objects per large bin (stock: 20).  With the two options
	 * above, an idle thread's cache held up to 9,530 KiB (20 per bin)
	 * against 2,040 KiB stock; with 8, up to 5,430 KiB, the large bins'
	 * bound (8 x 16..64 KiB classes) matching stock's (20 x 16..32 KiB).
	 * Cost: churn 174 -> 184 instructions per op, 18.6 vs 18.4 Mops/s
	 * (within noise; stock 11.9 in the same runs); peak RSS on churn
	 * 34.9 -> 33.7 MiB, stock 33.2-38.4 MiB. */
	"tcache_nslots_large:8,"
	/* Never start jemalloc's background purging threads: a preloaded
	 * allocator must not add threads to its host (this is jemalloc's
	 * default; stated so that it stays true). */
	"background_thread:false";

/* jemalloc's table from request size to size class, filled by its boot:
 * entry k serves sizes 8(k-1)+1 .. 8k (entry 0: size 0).  It is a global of
 * the archive we link (hidden, writable). */
extern uint8_t je_sz_size2index_tab[];

bool mt_backend_align16(void)
{
	uint8_t tiny = je_sz_size2index_tab[1], c16 = je_sz_size2index_tab[2];

	/* glibc aligns every block to 16 bytes; jemalloc's 8-byte class only
	 * to 8.  Serving sizes 0..8 from the 16-byte class gives 16 at no cost
	 * on the fast path (the lookup jemalloc does anyway) and at most 8
	 * bytes more for those allocations.  Every path that maps a size to
	 * a class (malloc, sdallocx, nallocx, realloc) reads this table, so
	 * they stay consistent. */
	je_sz_size2index_tab[0] = c16;
	je_sz_size2index_tab[1] = c16;
	if (mtje_nallocx(1, 0) == 16 && mtje_nallocx(0, 0) == 16)
		return true;
	je_sz_size2index_tab[1] = tiny; /* not the table we expect: undo */
	je_sz_size2index_tab[0] = tiny;
	return false;
}
