/* probe.h: where the symbolizer's test programs are, told by themselves.
 *
 * PROBE(p) records, in *p, the return address of a call made on the line
 * where PROBE is written, and that line: a return address minus one is what
 * the symbolizer is given for every frame of a stack but the innermost, so
 * the line of the call is the truth to compare with.  The call goes to a
 * function that cannot be inlined, and its result is stored, so it is
 * neither inlined nor a tail call at any optimisation level. */
#ifndef MT_TESTS_SYM_PROBE_H
#define MT_TESTS_SYM_PROBE_H

struct probe {
	void *ra;  /* return address of the call */
	int line;  /* the line of the call */
};

#define PROBE_NOINLINE __attribute__((noinline, noclone, used))

#define PROBE(p) ((p)->ra = probe_return_address(), (p)->line = __LINE__)

#ifdef __cplusplus
extern "C"
#endif
void *probe_return_address(void);

#endif
