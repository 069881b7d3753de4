/* Sampling policies (doc/sampling.md has the maths).
 *
 * poisson: a Poisson process over allocated bytes.  The thread's countdown
 *   `left` is an exponential variate of mean `mean`; an allocation of n
 *   bytes is sampled when n exceeds what is left, so it is sampled with
 *   probability p = 1 - exp(-n/mean) (the exponential is memoryless), and
 *   its weight is 1/p.  No random number is drawn on the fast path.
 * tiered: the original two-dimensional policy: large allocations always,
 *   medium ones at medium_rate, small ones at small_rate, each rate raised
 *   for hot size classes by min(max(freq/threshold, 1), boost_max).  The
 *   rate depends on per-class counts, so every allocation takes the slow
 *   path (`left` stays 0); the weight recorded is 1/rate actually applied.
 * all: every allocation, weight 1.  off: none. */
#include "config.h"

#include "track.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"

#define NCLASSES 256       /* quarter-power-of-two size classes */
#define DECAY_EVERY 65536  /* tiered: halve class counts this often */

/* The policy in force, changed at run time under a sequence lock. */
static struct {
	uint32_t gen; /* odd while being changed */
	enum mt_policy policy;
	uint64_t mean;
	struct mt_tiers tiers;
	uint64_t seed;
} pol;

void mt_sample_init(const struct mt_conf *conf)
{
	pol.policy = conf->policy;
	pol.mean = conf->mean;
	pol.tiers = conf->tiers;
	pol.seed = conf->seed;
	pol.gen = 2;
}

void mt_sample_replace(const struct mt_conf *c)
{
	__atomic_add_fetch(&pol.gen, 1, __ATOMIC_ACQ_REL);
	pol.policy = c->policy;
	pol.mean = c->mean;
	pol.tiers = c->tiers;
	__atomic_add_fetch(&pol.gen, 1, __ATOMIC_ACQ_REL);
}

static uint64_t next_u64(struct mt_tls *t)
{
	uint64_t x = t->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

double mt_sample_uniform(struct mt_tls *t)
{
	return (double)(next_u64(t) >> 11) * 0x1.0p-53;
}

static __attribute__((noinline)) uint64_t draw_exponential(struct mt_tls *t,
								uint64_t mean)
{
	double u = 1.0 - mt_sample_uniform(t); /* (0, 1] */
	double v = -log(u) * (double)mean;

	if (v >= 0x1.0p62)
		return (uint64_t)1 << 62;
	return (uint64_t)v;
}

void mt_sample_thread_init(struct mt_tls *t)
{
	uint64_t s = pol.seed;

	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
	}
	/* Distinct, reproducible streams per thread: mix in the tid. */
	s ^= (uint64_t)t->tid * 0x9e3779b97f4a7c15ull;
	s = (s ^ (s >> 31)) * 0xbf58476d1ce4e5b9ull;
	t->rng = s ? s : 1;
	t->policy_gen = 0; /* forces the first decision to arm */
}

void mt_sample_stop(struct mt_tls *t)
{
	t->sampling = false;
	t->left = MT_REARM_MAX;
}

/* Size class: 4 classes per power of two. */
static unsigned size_class(size_t n)
{
	if (n < 8)
		return (unsigned)n;
	unsigned lg = 63u - (unsigned)__builtin_clzl(n);
	unsigned c = 4 * lg + (unsigned)((n >> (lg - 2)) & 3);
	return c < NCLASSES ? c : NCLASSES - 1;
}

static __attribute__((noinline)) double tiered_rate(struct mt_tls *t, size_t n,
						     const struct mt_tiers *ti)
{
	if (n >= ti->large)
		return 1.0;
	if (!t->class_freq) {
		t->class_freq = mtje_calloc(NCLASSES, sizeof(uint32_t));
		if (!t->class_freq)
			return n >= ti->medium ? ti->medium_rate : ti->small_rate;
	}
	if (++t->since_decay >= DECAY_EVERY) {
		for (unsigned i = 0; i < NCLASSES; i++)
			t->class_freq[i] >>= 1;
		t->since_decay = 0;
	}
	uint32_t f = ++t->class_freq[size_class(n)];
	double boost = (double)f / ti->boost_threshold;
	if (boost < 1.0)
		boost = 1.0;
	if (boost > ti->boost_max)
		boost = ti->boost_max;
	double rate = (n >= ti->medium ? ti->medium_rate : ti->small_rate) * boost;
	return rate < 1.0 ? rate : 1.0;
}

double mt_sample_decide(struct mt_tls *t, size_t n, bool *omit_weight)
{
	uint32_t gen = __atomic_load_n(&pol.gen, __ATOMIC_ACQUIRE);
	enum mt_policy policy = pol.policy;
	uint64_t mean = pol.mean;
	struct mt_tiers tiers;
	uint64_t real;

	/* Out of line and copied only when used: `all` decides on every
	 * allocation, and the slow path's frame was sized for the rarest. */
	if (policy == MT_SAMPLE_TIERED)
		tiers = pol.tiers;

	if ((gen & 1) || gen != __atomic_load_n(&pol.gen, __ATOMIC_ACQUIRE)) {
		t->left = 0; /* being changed: decide on the next allocation */
		return 0;
	}
	*omit_weight = true;
	if (!t->sampling)
		policy = MT_SAMPLE_OFF;
	/* pending is read before it is exchanged: an exchange is a locked
	 * instruction, on every decision of `all` and `tiered`. */
	if (gen != t->policy_gen ||
	    (__atomic_load_n(&t->pending, __ATOMIC_RELAXED) &&
	     __atomic_exchange_n(&t->pending, 0, __ATOMIC_RELAXED))) {
		/* New thread or new policy: a fresh countdown decides. */
		t->policy_gen = gen;
		real = policy == MT_SAMPLE_POISSON ? draw_exponential(t, mean) : 0;
	} else {
		real = t->left + n; /* undo the subtraction that borrowed */
	}
	switch (policy) {
	case MT_SAMPLE_POISSON:
		if (n <= real) {
			t->left = real - n;
			return 0;
		}
		t->left = draw_exponential(t, mean);
		return 1.0 / -expm1(-(double)n / (double)mean);
	case MT_SAMPLE_ALL:
		t->left = 0;
		return 1.0;
	case MT_SAMPLE_TIERED: {
		t->left = 0;
		double rate = tiered_rate(t, n, &tiers);
		*omit_weight = false;
		return mt_sample_uniform(t) < rate ? 1.0 / rate : 0;
	}
	case MT_SAMPLE_OFF:
	default:
		t->left = MT_REARM_MAX;
		return 0;
	}
}
