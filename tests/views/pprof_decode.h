/* A small reader of gzipped pprof profiles (profile.proto), for the
 * tests: enough of the schema to check what mtreport writes.  Test code
 * only. */
#ifndef MT_TESTS_PPROF_DECODE_H
#define MT_TESTS_PPROF_DECODE_H

#include <stddef.h>
#include <stdint.h>

struct pp_label {
	int64_t key, str, num;
};

struct pp_sample {
	uint64_t *loc; size_t nloc;
	int64_t *val;  size_t nval;
	struct pp_label *label; size_t nlabel;
};

struct pp_location {
	uint64_t id, mapping_id, address;
	uint64_t *function_id; int64_t *line; size_t nline;
};

struct pp_function {
	uint64_t id;
	int64_t name, filename;
};

struct pp_mapping {
	uint64_t id, start, limit;
	int64_t filename, build_id;
};

struct pp_profile {
	int64_t type[8], unit[8]; size_t ntypes;   /* sample_type */
	struct pp_sample *sample; size_t nsample;
	struct pp_location *loc; size_t nloc;
	struct pp_function *fn; size_t nfn;
	struct pp_mapping *map; size_t nmap;
	char **str; size_t nstr;
	int64_t time_nanos, duration_nanos, period, default_sample_type;
	int64_t period_type, period_unit;
};

/* Gunzips and decodes data; 0, or -1 with a message in err. */
int pp_decode(const void *data, size_t len, struct pp_profile *p, char *err,
	      size_t errlen);
void pp_free(struct pp_profile *p);
/* string_table[i], or NULL when out of range. */
const char *pp_str(const struct pp_profile *p, int64_t i);

#endif
