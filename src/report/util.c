/* util: allocation helpers, hashing, the two hash tables of the aggregate,
 * and the fixed-point estimators. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

static void oom(void)
{
	fputs("mtreport: out of memory\n", stderr);
	exit(1);
}

void *mt_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *mt_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *mt_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *mt_xstrndup(const char *s, size_t n)
{
	char *p = mt_xmalloc(n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void mt_grow(void *v, size_t *cap, size_t need, size_t size)
{
	void **pv = v;
	size_t c = *cap;

	if (need <= c)
		return;
	if (c < 8)
		c = 8;
	while (c < need) {
		if (c > SIZE_MAX / 2 / size)
			oom();
		c *= 2;
	}
	*pv = mt_xrealloc(*pv, c * size);
	*cap = c;
}

uint64_t mt_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t mt_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull ^ mt_mix64(seed + n);

	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = mt_mix64(h ^ w);
		s += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;
		memcpy(&w, s, n);
		h = mt_mix64(h ^ w ^ ((uint64_t)n << 56));
	}
	return h;
}

/* ---- mt_map ---------------------------------------------------------- */

uint32_t mt_map_get(const struct mt_map *m, uint64_t key)
{
	if (!m->cap)
		return UINT32_MAX;
	size_t mask = m->cap - 1, i = mt_mix64(key) & mask;
	for (;; i = (i + 1) & mask) {
		if (m->vals[i] == UINT32_MAX)
			return UINT32_MAX;
		if (m->keys[i] == key)
			return m->vals[i];
	}
}

static void map_rehash(struct mt_map *m, size_t cap)
{
	struct mt_map n = { mt_xmalloc(cap * sizeof(uint64_t)),
			    mt_xmalloc(cap * sizeof(uint32_t)), cap, 0 };

	memset(n.vals, 0xff, cap * sizeof(uint32_t));
	for (size_t i = 0; i < m->cap; i++)
		if (m->vals[i] != UINT32_MAX)
			mt_map_put(&n, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = n;
}

void mt_map_put(struct mt_map *m, uint64_t key, uint32_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		map_rehash(m, m->cap ? m->cap * 2 : 16);
	size_t mask = m->cap - 1, i = mt_mix64(key) & mask;
	for (;; i = (i + 1) & mask) {
		if (m->vals[i] == UINT32_MAX) {
			m->keys[i] = key;
			m->vals[i] = val;
			m->n++;
			return;
		}
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return;
		}
	}
}

void mt_map_free(struct mt_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- mt_otab --------------------------------------------------------- */

/* An empty slot holds the key MT_OTAB_EMPTY (UINT64_MAX, never a key). */

void mt_otab_init(struct mt_otab *t, size_t esize)
{
	memset(t, 0, sizeof(*t));
	t->esize = esize;
}

void *mt_otab_get(const struct mt_otab *t, uint64_t key)
{
	return mt_otab_get_k(t, key, t->esize);
}

void mt_otab_grow(struct mt_otab *t)
{
	struct mt_otab n;
	const uint64_t empty = MT_OTAB_EMPTY;
	size_t cap = t->cap ? t->cap * 2 : 64;

	mt_otab_init(&n, t->esize);
	n.cap = cap;
	n.slots = mt_xmalloc(cap * t->esize);
	for (size_t i = 0; i < cap; i++)
		memcpy(n.slots + i * t->esize, &empty, sizeof(empty));
	for (size_t i = 0; i < t->cap; i++) {
		uint64_t k = mt_otab_key(t, i, t->esize);
		if (k != MT_OTAB_EMPTY) {
			void *e = mt_otab_add_k(&n, k, t->esize);
			memcpy(e, t->slots + i * t->esize, t->esize);
		}
	}
	free(t->slots);
	*t = n;
}

void *mt_otab_add(struct mt_otab *t, uint64_t key)
{
	return mt_otab_add_k(t, key, t->esize);
}

void mt_otab_del(struct mt_otab *t, void *entry)
{
	mt_otab_del_k(t, entry, t->esize);
}

void *mt_otab_at(const struct mt_otab *t, size_t i)
{
	return mt_otab_key(t, i, t->esize) != MT_OTAB_EMPTY ? t->slots + i * t->esize
							     : NULL;
}

void mt_otab_free(struct mt_otab *t)
{
	free(t->slots);
	mt_otab_init(t, t->esize);
}

/* ---- estimates --------------------------------------------------------- */

static uint64_t round_u64(double x)
{
	if (!(x > 0))
		return 0;
	if (x >= 18446744073709549568.0)
		return UINT64_MAX;
	return (uint64_t)(x + 0.5);
}

static mt_u128 round_u128(double x)
{
	if (!(x > 0))
		return 0;
	if (x >= 3.4028236692093846e38)
		return ~(mt_u128)0;
	return (mt_u128)(x + 0.5);
}

void mt_terms_of(double w, uint64_t size, struct mt_terms *t)
{
	if (w == 1.0) {
		t->n = MT_FX_ONE;
		t->b = size;
		t->vn = t->vb = 0;
		return;
	}
	double v = w * (w - 1.0), s = (double)size;
	t->n = round_u64(w * (double)MT_FX_ONE);
	t->b = round_u64(w * s);
	t->vn = round_u128(v);
	t->vb = round_u128(v * s * s);
}

void mt_est_sub(struct mt_est *e, const struct mt_terms *t)
{
	e->n = mt_sub64(e->n, t->n);
	e->b = mt_sub64(e->b, t->b);
	e->vn = mt_sub128(e->vn, t->vn);
	e->vb = mt_sub128(e->vb, t->vb);
	e->samples = e->samples ? e->samples - 1 : 0;
}

void mt_est_sum(struct mt_est *e, const struct mt_est *x)
{
	e->n = mt_add64(e->n, x->n);
	e->b = mt_add64(e->b, x->b);
	e->vn = mt_add128(e->vn, x->vn);
	e->vb = mt_add128(e->vb, x->vb);
	e->samples = mt_add64(e->samples, x->samples);
}

void mt_est_diff(struct mt_est *out, const struct mt_est *e,
		 const struct mt_est *x)
{
	out->n = mt_sub64(e->n, x->n);
	out->b = mt_sub64(e->b, x->b);
	out->vn = mt_sub128(e->vn, x->vn);
	out->vb = mt_sub128(e->vb, x->vb);
	out->samples = mt_sub64(e->samples, x->samples);
}

double mt_u128_double(mt_u128 v)
{
	return ldexp((double)(uint64_t)(v >> 64), 64) + (double)(uint64_t)v;
}

double mt_est_count(const struct mt_est *e)
{
	return ldexp((double)e->n, -MT_FX_BITS);
}

double mt_est_count_ci(const struct mt_est *e)
{
	return 1.96 * sqrt(mt_u128_double(e->vn));
}

double mt_est_bytes(const struct mt_est *e)
{
	return (double)e->b;
}

double mt_est_bytes_ci(const struct mt_est *e)
{
	return 1.96 * sqrt(mt_u128_double(e->vb));
}

unsigned mt_life_bucket(uint64_t ns)
{
	/* Each power-of-two range [2^b, 2^(b+1)) holds at most one decade
	 * threshold (10^3 .. 10^11 ns): the bucket is the count of thresholds
	 * at or below 2^b, plus one if ns reaches the one inside. */
	static const uint8_t base[64] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2,
		2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7,
		7, 7, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
		9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 };
	static const uint64_t inside[64] = {
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, 1000ull, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, 10000ull, UINT64_MAX, UINT64_MAX,
		100000ull, UINT64_MAX, UINT64_MAX, 1000000ull,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, 10000000ull,
		UINT64_MAX, UINT64_MAX, 100000000ull, UINT64_MAX,
		UINT64_MAX, 1000000000ull, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, 10000000000ull, UINT64_MAX, UINT64_MAX,
		100000000000ull, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
		UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX };
	unsigned b = 63u - (unsigned)__builtin_clzll(ns | 1);
	unsigned r = base[b] + (ns >= inside[b]);

	return r < MT_LIFE_BUCKETS ? r : MT_LIFE_BUCKETS - 1; /* ns = 2^64 - 1 */
}

uint64_t mt_life_bound(unsigned i)
{
	uint64_t bound = 1000;
	if (i >= MT_LIFE_BUCKETS - 1)
		return UINT64_MAX;
	while (i--)
		bound *= 10;
	return bound;
}
