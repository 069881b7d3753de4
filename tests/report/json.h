/* A small JSON reader for the report's tests: parses a document into a
 * tree and looks values up by path ("totals.sampled.allocs.value",
 * "sites.0.id").  Test code only. */
#ifndef MT_TESTS_JSON_H
#define MT_TESTS_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct json {
	enum json_type type;
	double num;          /* J_NUM, J_BOOL (0/1) */
	char *str;           /* J_STR */
	char *key;           /* as a member of an object */
	struct json **v;     /* J_ARR, J_OBJ: n children */
	size_t n;
};

/* Parses text; NULL if it is not one valid JSON document. */
struct json *json_parse(const char *text);
void json_free(struct json *j);
/* The value at a dotted path (object keys, array indices), or NULL. */
const struct json *json_get(const struct json *j, const char *path);
/* json_get's number (NAN when absent or not a number). */
double json_num(const struct json *j, const char *path);
/* json_get's string (NULL when absent or not a string). */
const char *json_str(const struct json *j, const char *path);

#endif
