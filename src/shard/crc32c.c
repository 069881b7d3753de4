/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78): the SSE4.2 crc32
 * instruction where the CPU has it (checked once at run time), else
 * table-driven, slicing by 8.  Both give the same results.  Shared by the
 * shard writer and the reader.  Unaligned words are read with
 * __builtin_memcpy: libmtalloc is built -fno-builtin, which makes a plain
 * memcpy a call per word. */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "format.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW 1
#include <nmmintrin.h>
#else
#define HAVE_HW 0
#endif

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int use_hw; /* set once by init(): the CPU has SSE4.2 */

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (uint32_t i = 0; i < 256; i++)
			table[t][i] = (table[t - 1][i] >> 8) ^
				      table[0][table[t - 1][i] & 0xff];
#if HAVE_HW
	/* Explicitly: this may run before libgcc's own constructor (the
	 * writer runs inside the traced process from early on). */
	__builtin_cpu_init();
	use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if HAVE_HW
/* crc is already inverted. */
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, uint64_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 32) {
		uint64_t w0, w1, w2, w3;
		__builtin_memcpy(&w0, p, 8);
		__builtin_memcpy(&w1, p + 8, 8);
		__builtin_memcpy(&w2, p + 16, 8);
		__builtin_memcpy(&w3, p + 24, 8);
		c = _mm_crc32_u64(c, w0);
		c = _mm_crc32_u64(c, w1);
		c = _mm_crc32_u64(c, w2);
		c = _mm_crc32_u64(c, w3);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		uint64_t w;
		__builtin_memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t mt_crc32c(uint32_t crc, const void *data, uint64_t len)
{
	const unsigned char *p = data;

	pthread_once(&once, init);
	crc = ~crc;
#if HAVE_HW
	if (use_hw)
		return ~crc_hw(crc, p, len);
#endif
	while (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && len >= 8) {
		uint64_t w;
		__builtin_memcpy(&w, p, 8);
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}
