// symcxx: C++ functions whose names the symbolizer must demangle.  Prints
// lines in symprog's format (see symprog.c): a module line, then
//   call main OFFSET LINE NAME
// with NAME the demangled name expected.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <link.h>
#include <unistd.h>

#include "probe.h"

static struct probe grow_probe, twice_probe;

namespace mt_test {
struct Widget {
	int size;
	PROBE_NOINLINE int grow(int by);
};

PROBE_NOINLINE int Widget::grow(int by)
{
	PROBE(&grow_probe);
	return size += by;
}

template <class T> PROBE_NOINLINE T twice(T x)
{
	PROBE(&twice_probe);
	return x + x;
}
} // namespace mt_test

static uintptr_t bias;

static int main_bias(struct dl_phdr_info *info, size_t, void *)
{
	bias = info->dlpi_addr; // the first object is the program
	return 1;
}

int main()
{
	mt_test::Widget w{1};
	volatile int v = w.grow(2) + mt_test::twice<int>(3);
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	(void)v;
	path[n > 0 ? n : 0] = '\0';
	dl_iterate_phdr(main_bias, nullptr);
	std::printf("module main %s %" PRIxPTR " -\n", path, bias);
	std::printf("call main %" PRIxPTR " %d mt_test::Widget::grow(int)\n",
		    (uintptr_t)grow_probe.ra - bias, grow_probe.line);
	std::printf("call main %" PRIxPTR " %d int mt_test::twice<int>(int)\n",
		    (uintptr_t)twice_probe.ra - bias, twice_probe.line);
	return 0;
}
