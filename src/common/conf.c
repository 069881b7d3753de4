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

struct option {
	const char *name;
	int (*parse)(struct mt_conf *c, const char *v, size_t len);
	const char *form; /* what the option expects, for the error line */
};

static const struct option options[] = {
	{ "off", opt_off, "off or off:0|1" },
	{ "arenas", opt_arenas, "arenas:per-thread, arenas:shared or arenas:N (1..4087)" },
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
			mt_log("%s: unknown option '%.*s' ignored (known: off, arenas)",
			       origin, (int)klen, s);
			bad++;
		} else if (o->parse(c, v, vlen)) {
			mt_log("%s: bad option '%.*s' ignored, expected %s",
			       origin, (int)len, s, o->form);
			bad++;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	return bad;
}
