/* json: see json.h. */
#include "json.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct p {
	const char *s;
	bool bad;
};

static void ws(struct p *p)
{
	while (*p->s == ' ' || *p->s == '\n' || *p->s == '\t' || *p->s == '\r')
		p->s++;
}

static struct json *val(struct p *p, int depth);

static char *str(struct p *p)
{
	size_t cap = 16, n = 0;
	char *out = malloc(cap);

	if (*p->s != '"') {
		p->bad = true;
		return out;
	}
	p->s++;
	while (*p->s && *p->s != '"') {
		char c = *p->s++;
		if (c == '\\') {
			char e = *p->s++;
			switch (e) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned u = 0;
				for (int i = 0; i < 4; i++) {
					if (!isxdigit((unsigned char)*p->s)) {
						p->bad = true;
						return out;
					}
					char h = *p->s++;
					u = u * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0'
								  : (tolower(h) - 'a' + 10));
				}
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			case '"': case '\\': case '/': c = e; break;
			default: p->bad = true; return out;
			}
		}
		if (n + 2 > cap)
			out = realloc(out, cap *= 2);
		out[n++] = c;
	}
	if (*p->s != '"')
		p->bad = true;
	else
		p->s++;
	out[n] = '\0';
	return out;
}

static struct json *val(struct p *p, int depth)
{
	struct json *j = calloc(1, sizeof(*j));

	ws(p);
	if (depth > 64) {
		p->bad = true;
		return j;
	}
	if (*p->s == '{' || *p->s == '[') {
		bool obj = *p->s == '{';
		char close = obj ? '}' : ']';
		j->type = obj ? J_OBJ : J_ARR;
		p->s++;
		ws(p);
		if (*p->s == close) {
			p->s++;
			return j;
		}
		for (;;) {
			char *k = NULL;
			ws(p);
			if (obj) {
				k = str(p);
				ws(p);
				if (*p->s != ':') {
					p->bad = true;
					free(k);
					return j;
				}
				p->s++;
			}
			struct json *c = val(p, depth + 1);
			c->key = k;
			j->v = realloc(j->v, (j->n + 1) * sizeof(*j->v));
			j->v[j->n++] = c;
			if (p->bad)
				return j;
			ws(p);
			if (*p->s == ',') {
				p->s++;
				continue;
			}
			if (*p->s == close) {
				p->s++;
				return j;
			}
			p->bad = true;
			return j;
		}
	}
	if (*p->s == '"') {
		j->type = J_STR;
		j->str = str(p);
		return j;
	}
	if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "false", 5)) {
		j->type = J_BOOL;
		j->num = *p->s == 't';
		p->s += *p->s == 't' ? 4 : 5;
		return j;
	}
	if (!strncmp(p->s, "null", 4)) {
		p->s += 4;
		return j;
	}
	char *end;
	j->num = strtod(p->s, &end);
	if (end == p->s)
		p->bad = true;
	j->type = J_NUM;
	p->s = end;
	return j;
}

struct json *json_parse(const char *text)
{
	struct p p = { text, false };
	struct json *j = val(&p, 0);

	ws(&p);
	if (p.bad || *p.s) {
		json_free(j);
		return NULL;
	}
	return j;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		json_free(j->v[i]);
	free(j->v);
	free(j->str);
	free(j->key);
	free(j);
}

const struct json *json_get(const struct json *j, const char *path)
{
	char part[256];

	while (j && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		path += n + (path[n] == '.');
		if (j->type == J_ARR) {
			char *end;
			unsigned long i = strtoul(part, &end, 10);
			j = *end || i >= j->n ? NULL : j->v[i];
		} else if (j->type == J_OBJ) {
			const struct json *f = NULL;
			for (size_t i = 0; i < j->n && !f; i++)
				if (!strcmp(j->v[i]->key, part))
					f = j->v[i];
			j = f;
		} else {
			return NULL;
		}
	}
	return j;
}

double json_num(const struct json *j, const char *path)
{
	const struct json *v = json_get(j, path);
	return v && (v->type == J_NUM || v->type == J_BOOL) ? v->num : NAN;
}

const char *json_str(const struct json *j, const char *path)
{
	const struct json *v = json_get(j, path);
	return v && v->type == J_STR ? v->str : NULL;
}
