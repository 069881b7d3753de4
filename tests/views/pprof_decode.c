/* See pprof_decode.h.  Wire types 0 (varint), 1 (64-bit), 2 (length) and
 * 5 (32-bit); repeated scalars packed or not. */
#include "pprof_decode.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t varint(struct rd *r)
{
	uint64_t v = 0;
	for (int s = 0; s < 64; s += 7) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* Next field: its number, wire type, and (type 2) a sub-reader. */
static bool field(struct rd *r, unsigned *num, unsigned *wt, uint64_t *v, struct rd *sub)
{
	if (r->p >= r->end || r->bad)
		return false;
	uint64_t k = varint(r);
	*num = (unsigned)(k >> 3);
	*wt = (unsigned)(k & 7);
	switch (*wt) {
	case 0: *v = varint(r); break;
	case 1: if (r->end - r->p < 8) r->bad = true; else r->p += 8; break;
	case 5: if (r->end - r->p < 4) r->bad = true; else r->p += 4; break;
	case 2: {
		uint64_t n = varint(r);
		if (n > (uint64_t)(r->end - r->p)) {
			r->bad = true;
			return false;
		}
		sub->p = r->p;
		sub->end = r->p + n;
		sub->bad = false;
		r->p += n;
		break;
	}
	default: r->bad = true; return false;
	}
	return !r->bad;
}

#define PUSH(arr, n, x) do { \
	(arr) = realloc((arr), ((n) + 1) * sizeof(*(arr))); \
	(arr)[(n)++] = (x); } while (0)

/* A repeated integer field: packed (wt 2) or one value. */
static void rep(unsigned wt, uint64_t v, struct rd *sub, uint64_t **arr, size_t *n)
{
	if (wt == 0) {
		PUSH(*arr, *n, v);
		return;
	}
	while (sub->p < sub->end && !sub->bad)
		PUSH(*arr, *n, varint(sub));
}

int pp_decode(const void *data, size_t len, struct pp_profile *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	/* gunzip */
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK) {
		snprintf(err, errlen, "inflateInit2");
		return -1;
	}
	size_t cap = len * 4 + 1024, n = 0;
	uint8_t *buf = malloc(cap);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	int rc;
	do {
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		z.next_out = buf + n;
		z.avail_out = (uInt)(cap - n);
		rc = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		snprintf(err, errlen, "not gzip (zlib %d)", rc);
		free(buf);
		return -1;
	}

	struct rd r = { buf, buf + n, false }, s, t;
	unsigned num, wt, num2, wt2;
	uint64_t v, v2;
	while (field(&r, &num, &wt, &v, &s)) {
		switch (num) {
		case 1: case 11: {
			int64_t ty = 0, un = 0;
			while (field(&s, &num2, &wt2, &v2, &t))
				if (num2 == 1) ty = (int64_t)v2;
				else if (num2 == 2) un = (int64_t)v2;
			if (num == 11) {
				p->period_type = ty;
				p->period_unit = un;
			} else if (p->ntypes < 8) {
				p->type[p->ntypes] = ty;
				p->unit[p->ntypes++] = un;
			}
			break;
		}
		case 2: {
			struct pp_sample x = { 0 };
			while (field(&s, &num2, &wt2, &v2, &t)) {
				if (num2 == 1)
					rep(wt2, v2, &t, &x.loc, &x.nloc);
				else if (num2 == 2)
					rep(wt2, v2, &t, (uint64_t **)&x.val, &x.nval);
				else if (num2 == 3) {
					struct pp_label l = { 0 };
					struct rd u;
					unsigned n3, w3;
					uint64_t v3;
					while (field(&t, &n3, &w3, &v3, &u))
						if (n3 == 1) l.key = (int64_t)v3;
						else if (n3 == 2) l.str = (int64_t)v3;
						else if (n3 == 3) l.num = (int64_t)v3;
					PUSH(x.label, x.nlabel, l);
				}
			}
			PUSH(p->sample, p->nsample, x);
			break;
		}
		case 3: {
			struct pp_mapping m = { 0 };
			while (field(&s, &num2, &wt2, &v2, &t))
				switch (num2) {
				case 1: m.id = v2; break;
				case 2: m.start = v2; break;
				case 3: m.limit = v2; break;
				case 5: m.filename = (int64_t)v2; break;
				case 6: m.build_id = (int64_t)v2; break;
				}
			PUSH(p->map, p->nmap, m);
			break;
		}
		case 4: {
			struct pp_location l = { 0 };
			while (field(&s, &num2, &wt2, &v2, &t))
				switch (num2) {
				case 1: l.id = v2; break;
				case 2: l.mapping_id = v2; break;
				case 3: l.address = v2; break;
				case 4: {
					uint64_t f = 0;
					int64_t line = 0;
					struct rd u;
					unsigned n3, w3;
					uint64_t v3;
					while (field(&t, &n3, &w3, &v3, &u))
						if (n3 == 1) f = v3;
						else if (n3 == 2) line = (int64_t)v3;
					size_t k = l.nline;
					PUSH(l.function_id, k, f);
					PUSH(l.line, l.nline, line);
					break;
				}
				}
			PUSH(p->loc, p->nloc, l);
			break;
		}
		case 5: {
			struct pp_function f = { 0 };
			while (field(&s, &num2, &wt2, &v2, &t))
				if (num2 == 1) f.id = v2;
				else if (num2 == 2) f.name = (int64_t)v2;
				else if (num2 == 4) f.filename = (int64_t)v2;
			PUSH(p->fn, p->nfn, f);
			break;
		}
		case 6: {
			size_t k = (size_t)(s.end - s.p);
			char *str = malloc(k + 1);
			memcpy(str, s.p, k);
			str[k] = '\0';
			PUSH(p->str, p->nstr, str);
			break;
		}
		case 9: p->time_nanos = (int64_t)v; break;
		case 10: p->duration_nanos = (int64_t)v; break;
		case 12: p->period = (int64_t)v; break;
		case 14: p->default_sample_type = (int64_t)v; break;
		}
	}
	free(buf);
	if (r.bad) {
		snprintf(err, errlen, "malformed protobuf");
		pp_free(p);
		return -1;
	}
	return 0;
}

const char *pp_str(const struct pp_profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->nstr ? p->str[i] : NULL;
}

void pp_free(struct pp_profile *p)
{
	for (size_t i = 0; i < p->nsample; i++) {
		free(p->sample[i].loc);
		free(p->sample[i].val);
		free(p->sample[i].label);
	}
	for (size_t i = 0; i < p->nloc; i++) {
		free(p->loc[i].function_id);
		free(p->loc[i].line);
	}
	for (size_t i = 0; i < p->nstr; i++)
		free(p->str[i]);
	free(p->sample);
	free(p->loc);
	free(p->fn);
	free(p->map);
	free(p->str);
	memset(p, 0, sizeof(*p));
}
