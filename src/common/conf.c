/* The MTALLOC option parser, written once for every option: a table of
 * names, each with a parser and the form it expects. */
#include "config.h"

#include "common.h"

#include <errno.h>
#include <string.h>

#define MT_ARENA_LIMIT 4095u /* jemalloc refuses arenas past this total */

void mt_conf_default(struct mt_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->arenas = MT_ARENAS_PER_THREAD;
	c->arena_cap = 0;
	c->policy = MT_SAMPLE_POISSON;
	c->mean = 512 * 1024;
	c->tiers.large = 64 * 1024;
	c->tiers.medium = 1024;
	c->tiers.medium_rate = 0.10;
	c->tiers.small_rate = 0.01;
	c->tiers.boost_threshold = 1000;
	c->tiers.boost_max = 10.0;
	c->stack_depth = 64;
	c->unwind = MT_UNWIND_LIBUNWIND;
	c->buffer = 64 * 1024;
	c->timeline_ms = 100;
	strcpy(c->dir, "mtalloc.out");
}

static bool word_is(const char *v, size_t len, const char *w)
{
	return v && strlen(w) == len && memcmp(v, w, len) == 0;
}

static int parse_uint(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (!v || len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	if (x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

int mt_parse_size(const char *s, size_t len, uint64_t *out)
{
	unsigned shift = 0;

	if (!s || len == 0)
		return -EINVAL;
	switch (s[len - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 'b': case 'B': shift = 0; break;
	default: len++; /* no suffix: keep the last digit */
	}
	len--;
	uint64_t x;
	if (parse_uint(s, len, UINT64_MAX >> shift, &x))
		return -EINVAL;
	*out = x << shift;
	return 0;
}

/* A probability written as a decimal fraction: "0.1", "1", ".01", "1e-3". */
static int parse_rate(const char *v, size_t len, double *out)
{
	double x = 0, scale = 1;
	size_t i = 0;
	bool digits = false;

	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits = true)
		x = x * 10 + (v[i] - '0');
	if (i < len && v[i] == '.')
		for (i++; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits = true)
			x += (v[i] - '0') * (scale /= 10);
	if (digits && i < len && (v[i] == 'e' || v[i] == 'E')) {
		uint64_t e;
		if (i + 1 >= len || v[i + 1] != '-' ||
		    parse_uint(v + i + 2, len - i - 2, 300, &e))
			return -EINVAL;
		while (e--)
			x /= 10;
		i = len;
	}
	if (!digits || i != len || x > 1.0)
		return -EINVAL;
	*out = x;
	return 0;
}

/* Splits "a:b:c" at the next colon: returns the length of the first field. */
static size_t field(const char *v, size_t len)
{
	const char *c = memchr(v, ':', len);
	return c ? (size_t)(c - v) : len;
}

int mt_conf_parse_sample(struct mt_conf *c, const char *v, size_t len)
{
	struct mt_conf t = *c;
	size_t k = v ? field(v, len) : 0;
	const char *rest = v ? v + k + (k < len) : NULL;
	size_t rlen = v && k < len ? len - k - 1 : 0;

	if (!v)
		return -EINVAL;
	if (word_is(v, k, "poisson")) {
		t.policy = MT_SAMPLE_POISSON;
		if (k < len && (mt_parse_size(rest, rlen, &t.mean) || t.mean == 0))
			return -EINVAL;
	} else if (word_is(v, k, "tiered")) {
		t.policy = MT_SAMPLE_TIERED;
		/* tiered[:LARGE[:MEDIUM[:MEDIUM_RATE[:SMALL_RATE]]]] */
		for (int i = 0; k < len && i < 4; i++) {
			size_t f = field(rest, rlen);
			int err = i == 0 ? mt_parse_size(rest, f, &t.tiers.large)
				: i == 1 ? mt_parse_size(rest, f, &t.tiers.medium)
				: i == 2 ? parse_rate(rest, f, &t.tiers.medium_rate)
				: parse_rate(rest, f, &t.tiers.small_rate);
			if (err)
				return -EINVAL;
			if (f == rlen)
				break;
			rest += f + 1;
			rlen -= f + 1;
			if (i == 3)
				return -EINVAL;
		}
		if (t.tiers.medium > t.tiers.large)
			return -EINVAL;
	} else if (word_is(v, len, "all")) {
		t.policy = MT_SAMPLE_ALL;
	} else if (word_is(v, len, "off")) {
		t.policy = MT_SAMPLE_OFF;
	} else {
		return -EINVAL;
	}
	*c = t;
	return 0;
}

static int opt_sample(struct mt_conf *c, const char *v, size_t len)
{
	return mt_conf_parse_sample(c, v, len);
}

static int opt_boost(struct mt_conf *c, const char *v, size_t len)
{
	uint64_t n;
	size_t f = v ? field(v, len) : 0;

	if (!v || parse_uint(v, f, UINT32_MAX, &n) || n == 0)
		return -EINVAL;
	if (f < len) {
		uint64_t m;
		if (parse_uint(v + f + 1, len - f - 1, 1000, &m) || m == 0)
			return -EINVAL;
		c->tiers.boost_max = (double)m;
	}
	c->tiers.boost_threshold = (uint32_t)n;
	return 0;
}

static int opt_seed(struct mt_conf *c, const char *v, size_t len)
{
	return parse_uint(v, len, UINT64_MAX, &c->seed);
}

static int opt_depth(struct mt_conf *c, const char *v, size_t len)
{
	uint64_t n;

	if (parse_uint(v, len, 256, &n) || n == 0)
		return -EINVAL;
	c->stack_depth = (unsigned)n;
	return 0;
}

static int opt_unwind(struct mt_conf *c, const char *v, size_t len)
{
	if (word_is(v, len, "libunwind"))
		c->unwind = MT_UNWIND_LIBUNWIND;
	else if (word_is(v, len, "fp"))
		c->unwind = MT_UNWIND_FP;
	else
		return -EINVAL;
	return 0;
}

static int opt_buffer(struct mt_conf *c, const char *v, size_t len)
{
	uint64_t n;

	if (mt_parse_size(v, len, &n) || n < (16u << 10) || n > (16u << 20))
		return -EINVAL;
	c->buffer = n;
	return 0;
}

static int opt_timeline(struct mt_conf *c, const char *v, size_t len)
{
	return parse_uint(v, len, 3600 * 1000, &c->timeline_ms);
}

static int opt_dir(struct mt_conf *c, const char *v, size_t len)
{
	if (!v || len == 0 || len >= sizeof(c->dir))
		return -EINVAL;
	memcpy(c->dir, v, len);
	c->dir[len] = '\0';
	return 0;
}

static int opt_off(struct mt_conf *c, const char *v, size_t len)
{
	if (v && !word_is(v, len, "1") && !word_is(v, len, "true")) {
		if (word_is(v, len, "0") || word_is(v, len, "false")) {
			c->off = false;
			return 0;
		}
		return -EINVAL;
	}
	c->off = true;
	return 0;
}

static int opt_arenas(struct mt_conf *c, const char *v, size_t len)
{
	uint64_t n;

	if (word_is(v, len, "per-thread")) {
		c->arenas = MT_ARENAS_PER_THREAD;
		c->arena_cap = 0;
		return 0;
	}
	if (word_is(v, len, "shared")) {
		c->arenas = MT_ARENAS_SHARED;
		return 0;
	}
	if (parse_uint(v, len, MT_ARENA_LIMIT - 8, &n) || n == 0)
		return -EINVAL;
	c->arenas = MT_ARENAS_PER_THREAD;
	c->arena_cap = (unsigned)n;
	return 0;
}

/* Copies at most 120 bytes of s[0..len) into out, control and non-ASCII
 * bytes as \xNN, so that an option from the environment cannot write
 * anything but its own one line on stderr. */
static const char *printable(char *out, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < size && i < 120; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = "0123456789abcdef"[c >> 4];
			out[n++] = "0123456789abcdef"[c & 15];
		}
	}
	if (len > 120 && n + 4 < size) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

struct option {
	const char *name;
	int (*parse)(struct mt_conf *c, const char *v, size_t len);
	const char *form; /* what the option expects, for the error line */
};

static const struct option options[] = {
	{ "off", opt_off, "off or off:0|1" },
	{ "arenas", opt_arenas, "arenas:per-thread, arenas:shared or arenas:N (1..4087)" },
	{ "sample", opt_sample, "sample:poisson[:MEAN], sample:tiered[:LARGE[:MEDIUM[:MRATE[:SRATE]]]], sample:all or sample:off" },
	{ "boost", opt_boost, "boost:THRESHOLD[:MAX] (allocations, multiplier 1..1000)" },
	{ "seed", opt_seed, "seed:N (an unsigned integer)" },
	{ "stack_depth", opt_depth, "stack_depth:N (1..256 frames)" },
	{ "unwind", opt_unwind, "unwind:libunwind or unwind:fp" },
	{ "buffer", opt_buffer, "buffer:SIZE (16k..16M)" },
	{ "timeline", opt_timeline, "timeline:MS (0..3600000)" },
	{ "dir", opt_dir, "dir:PATH (a directory, under 1024 bytes)" },
};

int mt_conf_parse(struct mt_conf *c, const char *s, const char *origin)
{
	int bad = 0;

	if (!s)
		return 0;
	while (*s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *colon = memchr(s, ':', len);
		size_t klen = colon ? (size_t)(colon - s) : len;
		const char *v = colon ? colon + 1 : NULL;
		size_t vlen = colon ? len - klen - 1 : 0;
		const struct option *o = NULL;

		for (size_t i = 0; i < MT_ARRAY_SIZE(options); i++)
			if (word_is(s, klen, options[i].name))
				o = &options[i];
		if (len == 0) {
			/* empty item ("a,,b" or a trailing comma): harmless */
		} else if (!o) {
			char shown[512];
			mt_log("%s: unknown option '%s' ignored (known: off, arenas, "
			       "sample, boost, seed, stack_depth, unwind, buffer, "
			       "timeline, dir)", origin,
			       printable(shown, sizeof(shown), s, klen));
			bad++;
		} else if (o->parse(c, v, vlen)) {
			char shown[512];
			mt_log("%s: bad option '%s' ignored, expected %s", origin,
			       printable(shown, sizeof(shown), s, len), o->form);
			bad++;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	return bad;
}
