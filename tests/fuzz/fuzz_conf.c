/* libFuzzer target for the MTALLOC option parser (src/common/conf.c): the
 * environment of a traced program is hostile input too (a program may be
 * started with any MTALLOC).
 *
 * The input is taken three ways: as a whole MTALLOC string (NUL-terminated
 * copy) through mt_conf_parse, and, without a terminating NUL (an exact-size
 * heap copy, so that a sanitizer catches a read past the end), through
 * mt_conf_parse_sample and mt_parse_size.  Whatever the input, the result
 * must stay inside the bounds the options document (the library relies on
 * them: buffer sizes, stack depth, arena cap), a rejected sample: value must
 * leave the configuration unchanged, and parsing must be deterministic.
 * The same function runs without libFuzzer in `make check` (smoke_main.c). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_conf"
#include "fuzzutil.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bounds conf.c's option table documents. */
static void check_bounds(const struct mt_conf *c)
{
	CHECK(c->off == 0 || c->off == 1);
	CHECK(c->arenas == MT_ARENAS_PER_THREAD || c->arenas == MT_ARENAS_SHARED);
	CHECK(c->arena_cap <= 4087);
	CHECK(c->policy <= MT_SAMPLE_OFF);
	CHECK(c->mean > 0);
	CHECK(c->tiers.medium <= c->tiers.large);
	CHECK(c->tiers.medium_rate >= 0 && c->tiers.medium_rate <= 1);
	CHECK(c->tiers.small_rate >= 0 && c->tiers.small_rate <= 1);
	CHECK(c->tiers.boost_threshold >= 1);
	CHECK(c->tiers.boost_max >= 1 && c->tiers.boost_max <= 1000);
	CHECK(c->stack_depth >= 1 && c->stack_depth <= 256);
	CHECK(c->unwind == MT_UNWIND_LIBUNWIND || c->unwind == MT_UNWIND_FP);
	CHECK(c->buffer >= (16u << 10) && c->buffer <= (16u << 20));
	CHECK(c->timeline_ms <= 3600 * 1000);
	CHECK(memchr(c->dir, '\0', sizeof(c->dir)) != NULL);
	CHECK(c->dir[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mt_conf a, b, before;
	char *s = malloc(size + 1);
	char *raw = malloc(size ? size : 1);
	uint64_t x;
	int bad;

	if (!s || !raw) {
		free(s);
		free(raw);
		return 0;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	memcpy(raw, data, size);

	mt_conf_default(&a);
	bad = mt_conf_parse(&a, s, "MTALLOC");
	CHECK(bad >= 0 && (size_t)bad <= size);
	check_bounds(&a);
	mt_conf_default(&b);
	CHECK(mt_conf_parse(&b, s, "MTALLOC") == bad);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	/* a second parse on top of the first (mtalloc_conf, then MTALLOC) */
	mt_conf_parse(&a, s, "mtalloc_conf");
	check_bounds(&a);

	/* no terminating NUL from here on */
	mt_conf_default(&a);
	before = a;
	if (mt_conf_parse_sample(&a, raw, size) == 0)
		check_bounds(&a);
	else
		CHECK(memcmp(&a, &before, sizeof(a)) == 0);
	if (mt_parse_size(raw, size, &x) == 0 && size > 0) {
		/* the value round-trips through decimal when it has no suffix */
		char last = raw[size - 1];
		if (last >= '0' && last <= '9') {
			char buf[32];
			uint64_t y;
			int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)x);
			CHECK(mt_parse_size(buf, (size_t)n, &y) == 0 && y == x);
		}
	}
	free(s);
	free(raw);
	return 0;
}
