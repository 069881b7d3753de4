// cxx_ops: every C++ operator new/delete, run on mtalloc.  Built twice:
// cxx_ops (not linked with mtalloc: run it with LD_PRELOAD) and
// cxx_ops_linked (linked with -lmtalloc).  tests/unit/test_cxx.c runs each
// subcommand in its own process:
//
//   variants         all twenty operators, alignments 32..4096, arrays,
//                    new-expressions; each one moves mtalloc's counters
//   huge             new of an impossible size throws std::bad_alloc,
//                    the nothrow forms return nullptr
//   handler          a new_handler that frees a reserve lets the retry
//                    succeed (under an address-space limit)
//   nothrow-handler  nothrow new with a handler that throws returns nullptr
//   counts           new/delete reach mtalloc's counters
//
// Prints "ok" and exits 0, or prints "FAIL: why" on stderr and exits 1.
#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "mtalloc.h"

namespace {

int failures;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			std::fprintf(stderr, "FAIL: %s:%d: %s: ", __FILE__, \
				     __LINE__, #cond);                     \
			std::fprintf(stderr, __VA_ARGS__);                 \
			std::fputc('\n', stderr);                          \
			failures++;                                        \
		}                                                          \
	} while (0)

// Keeps gcc from eliding a new/delete pair.
void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

using stats_fn = int (*)(mtalloc_stats *, size_t);

stats_fn stats_get()
{
	static stats_fn f = reinterpret_cast<stats_fn>(
		dlsym(RTLD_DEFAULT, "mtalloc_stats_get"));
	return f;
}

mtalloc_stats stats()
{
	mtalloc_stats st{};
	stats_fn f = stats_get();
	if (!f || f(&st, sizeof(st)) != 0) {
		std::fprintf(stderr, "FAIL: mtalloc_stats_get unavailable\n");
		std::exit(1);
	}
	return st;
}

// Where a symbol as this program sees it is defined.
std::string origin(const char *sym)
{
	Dl_info info{};
	void *p = dlsym(RTLD_DEFAULT, sym);
	if (!p || !dladdr(p, &info) || !info.dli_fname)
		return "?";
	return info.dli_fname;
}

volatile size_t impossible = SIZE_MAX / 2;

bool aligned(const void *p, size_t a)
{
	return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

// Checks one allocation: non-null, aligned, usable, and that it raised this
// thread's allocated bytes by at least n.
void check_block(const char *what, void *p, size_t n, size_t al,
		 const mtalloc_stats &before)
{
	CHECK(p != nullptr, "%s(%zu, %zu) returned nullptr", what, n, al);
	if (!p)
		return;
	escape(p);
	CHECK(aligned(p, al), "%s(%zu, %zu) = %p", what, n, al, p);
	CHECK(malloc_usable_size(p) >= n, "%s(%zu): usable size %zu", what, n,
	      malloc_usable_size(p));
	std::memset(p, 0x5c, n);
	mtalloc_stats after = stats();
	CHECK(after.thread.bytes_allocated - before.thread.bytes_allocated >= n,
	      "%s(%zu, %zu) did not reach mtalloc (bytes allocated +%llu)", what,
	      n, al,
	      (unsigned long long)(after.thread.bytes_allocated -
				   before.thread.bytes_allocated));
}

void check_freed(const char *what, const mtalloc_stats &before)
{
	mtalloc_stats after = stats();
	CHECK(after.thread.frees - before.thread.frees == 1,
	      "%s: frees went up by %llu, not 1", what,
	      (unsigned long long)(after.thread.frees - before.thread.frees));
}

// One new variant and one delete variant, each checked.
#define PAIR(NEW_EXPR, DEL_STMT, n, al)                                  \
	do {                                                             \
		mtalloc_stats s0 = stats();                              \
		void *p = NEW_EXPR;                                      \
		check_block(#NEW_EXPR, p, n, al, s0);                    \
		mtalloc_stats s1 = stats();                              \
		DEL_STMT;                                                \
		check_freed(#DEL_STMT, s1);                              \
	} while (0)

struct alignas(64) Line {
	char c[100];
};

struct alignas(4096) Page {
	char c[5000];
};

struct Counted {
	static int live;
	char pad[40];
	Counted() { live++; }
	~Counted() { live--; }
};
int Counted::live;

int variants()
{
	using std::align_val_t;
	const std::nothrow_t &nt = std::nothrow;
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 4096, 70000 };

	for (size_t n : sizes) {
		const size_t al = 16; // __STDCPP_DEFAULT_NEW_ALIGNMENT__
		PAIR(::operator new(n), ::operator delete(p), n, al);
		PAIR(::operator new(n), ::operator delete(p, n), n, al);
		PAIR(::operator new(n, nt), ::operator delete(p, nt), n, al);
		PAIR(::operator new[](n), ::operator delete[](p), n, al);
		PAIR(::operator new[](n), ::operator delete[](p, n), n, al);
		PAIR(::operator new[](n, nt), ::operator delete[](p, nt), n, al);
	}
	for (size_t al = 32; al <= 4096; al *= 2) {
		const size_t alsizes[] = { 1, al - 1, al, 3 * al + 5, 100000 };
		for (size_t n : alsizes) {
			align_val_t a{ al };
			PAIR(::operator new(n, a), ::operator delete(p, a), n, al);
			PAIR(::operator new(n, a), ::operator delete(p, n, a), n, al);
			PAIR(::operator new(n, a, nt), ::operator delete(p, a, nt),
			     n, al);
			PAIR(::operator new[](n, a), ::operator delete[](p, a), n,
			     al);
			PAIR(::operator new[](n, a), ::operator delete[](p, n, a), n,
			     al);
			PAIR(::operator new[](n, a, nt),
			     ::operator delete[](p, a, nt), n, al);
		}
	}
	// combinations: a block from one form released by another it may be
	// paired with
	PAIR(::operator new(200, nt), ::operator delete(p, 200), 200, 16);
	PAIR(::operator new[](200, nt), ::operator delete[](p), 200, 16);
	PAIR(::operator new(300, align_val_t{ 128 }, nt),
	     ::operator delete(p, 300, align_val_t{ 128 }), 300, 128);
	PAIR(::operator new[](300, align_val_t{ 256 }, nt),
	     ::operator delete[](p, 300, align_val_t{ 256 }), 300, 256);

	// new-expressions: over-aligned types pick the align_val_t forms
	for (int i = 0; i < 100; i++) {
		Line *l = new Line;
		Page *pg = new Page;
		Line *ls = new Line[7];
		Page *ps = new Page[3];
		CHECK(aligned(l, 64) && aligned(ls, 64), "Line not 64-aligned");
		CHECK(aligned(pg, 4096) && aligned(ps, 4096), "Page not 4096-aligned");
		std::memset(ls, 1, 7 * sizeof(Line));
		std::memset(ps, 2, 3 * sizeof(Page));
		delete l;
		delete pg;
		delete[] ls;
		delete[] ps;
		Counted *c = new Counted[11]; // array cookie, sized delete[]
		CHECK(Counted::live == 11, "constructors ran %d times", Counted::live);
		delete[] c;
		CHECK(Counted::live == 0, "destructors left %d", Counted::live);
	}

	// the standard library on top
	std::map<std::string, std::vector<std::string>> m;
	size_t want = 0, total = 0;
	for (int i = 0; i < 20000; i++) {
		m[std::to_string(i % 997)].push_back(std::string(i % 300, 'x'));
		want += i % 300;
	}
	for (auto &kv : m)
		for (auto &s : kv.second)
			total += s.size() * (s.find_first_not_of('x') ==
					     std::string::npos);
	CHECK(m.size() == 997 && total == want, "container contents: %zu of %zu",
	      total, want);
	return 0;
}

template <class F> bool throws_bad_alloc(F f)
{
	try {
		void *p = f();
		escape(p);
		return false;
	} catch (const std::bad_alloc &) {
		return true;
	}
}

int huge()
{
	using std::align_val_t;
	const std::nothrow_t &nt = std::nothrow;
	size_t n = impossible;

	CHECK(throws_bad_alloc([&] { return ::operator new(n); }), "new");
	CHECK(throws_bad_alloc([&] { return ::operator new[](n); }), "new[]");
	CHECK(throws_bad_alloc([&] { return ::operator new(n, align_val_t{ 64 }); }),
	      "aligned new");
	CHECK(throws_bad_alloc(
		      [&] { return ::operator new[](n, align_val_t{ 4096 }); }),
	      "aligned new[]");
	CHECK(::operator new(n, nt) == nullptr, "nothrow new");
	CHECK(::operator new[](n, nt) == nullptr, "nothrow new[]");
	CHECK(::operator new(n, align_val_t{ 64 }, nt) == nullptr,
	      "aligned nothrow new");
	CHECK(::operator new[](n, align_val_t{ 64 }, nt) == nullptr,
	      "aligned nothrow new[]");
	// and the heap is fine afterwards
	void *p = ::operator new(100);
	escape(p);
	::operator delete(p);
	return 0;
}

// ---- new_handler -------------------------------------------------------------

constexpr size_t RESERVE = 256u << 20;
char *reserve;
int handler_calls;

void release_reserve()
{
	handler_calls++;
	if (reserve) {
		delete[] reserve;
		reserve = nullptr;
	} else {
		std::set_new_handler(nullptr); // nothing left: let new throw
	}
}

size_t vm_bytes()
{
	unsigned long pages = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (f) {
		if (std::fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		std::fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

int handler()
{
	struct rlimit old, lim;

	reserve = new char[RESERVE];
	std::memset(reserve, 1, 4096);
	CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
	lim = old;
	lim.rlim_cur = vm_bytes() + (64u << 20);
	CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
	std::set_new_handler(release_reserve);

	char *p = nullptr;
	try {
		p = new char[RESERVE];
	} catch (const std::bad_alloc &) {
		CHECK(false, "new threw although the handler freed a reserve "
			     "(handler called %d times)",
		      handler_calls);
	}
	CHECK(p != nullptr, "no memory after the handler freed the reserve");
	CHECK(handler_calls == 1, "handler called %d times, want 1",
	      handler_calls);
	if (p)
		std::memset(p, 2, RESERVE);
	delete[] p;

	// with nothing left to free, the handler gives up and new throws
	handler_calls = 0;
	std::set_new_handler(release_reserve);
	CHECK(throws_bad_alloc([] { return ::operator new(impossible); }),
	      "new after the handler gave up");
	CHECK(handler_calls == 1, "handler called %d times, want 1",
	      handler_calls);
	setrlimit(RLIMIT_AS, &old);
	return 0;
}

int throwing_handler_calls;

void throwing_handler()
{
	throwing_handler_calls++;
	throw std::bad_alloc();
}

int nothrow_handler()
{
	using std::align_val_t;
	const std::nothrow_t &nt = std::nothrow;
	size_t n = impossible;

	std::set_new_handler(throwing_handler);
	CHECK(::operator new(n, nt) == nullptr, "nothrow new");
	CHECK(throwing_handler_calls == 1, "handler called %d times",
	      throwing_handler_calls);
	CHECK(::operator new[](n, nt) == nullptr, "nothrow new[]");
	CHECK(::operator new(n, align_val_t{ 128 }, nt) == nullptr,
	      "aligned nothrow new");
	CHECK(::operator new[](n, align_val_t{ 128 }, nt) == nullptr,
	      "aligned nothrow new[]");
	CHECK(throwing_handler_calls == 4, "handler called %d times, want 4",
	      throwing_handler_calls);
	// the throwing forms let the handler's exception through
	CHECK(throws_bad_alloc([&] { return ::operator new(n); }), "new");
	CHECK(throwing_handler_calls == 5, "handler called %d times, want 5",
	      throwing_handler_calls);
	std::set_new_handler(nullptr);
	return 0;
}

int counts()
{
	const int small = 1000, large = 100;
	std::string from = origin("_Znwm");

	CHECK(from.find("libmtalloc.so") != std::string::npos,
	      "operator new comes from %s", from.c_str());
	stats();
	::operator delete(::operator new(8)); // sets the thread up
	mtalloc_stats a = stats();
	for (int i = 0; i < small; i++) {
		int *p = new int[16];
		escape(p);
		delete[] p;
		Counted *c = new Counted;
		escape(c);
		delete c;
	}
	mtalloc_stats b = stats();
	CHECK(b.thread.frees - a.thread.frees == 2ull * small,
	      "frees +%llu for %d deletes",
	      (unsigned long long)(b.thread.frees - a.thread.frees), 2 * small);
	CHECK(b.thread.bytes_allocated - a.thread.bytes_allocated >=
		      (64ull + sizeof(Counted)) * small,
	      "bytes +%llu", (unsigned long long)(b.thread.bytes_allocated -
						  a.thread.bytes_allocated));
	// past jemalloc's thread cache each request reaches the arena at once
	// (its count may also take in older requests: hence >=)
	a = stats();
	for (int i = 0; i < large; i++) {
		char *p = new char[128 * 1024];
		escape(p);
		delete[] p;
	}
	b = stats();
	CHECK(b.thread.allocs - a.thread.allocs >= (uint64_t)large,
	      "allocs +%llu for %d new[]",
	      (unsigned long long)(b.thread.allocs - a.thread.allocs), large);
	CHECK(b.process.frees - a.process.frees == (uint64_t)large,
	      "process frees +%llu for %d delete[]",
	      (unsigned long long)(b.process.frees - a.process.frees), large);
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)();
	} cmds[] = {
		{ "variants", variants },
		{ "huge", huge },
		{ "handler", handler },
		{ "nothrow-handler", nothrow_handler },
		{ "counts", counts },
	};

#ifdef CXX_OPS_LINKED
	const char *pre = std::getenv("LD_PRELOAD");
	if (pre && std::strstr(pre, "mtalloc")) {
		std::fprintf(stderr, "FAIL: the linked build runs preloaded\n");
		return 3;
	}
#endif
	if (!stats_get()) {
		std::fprintf(stderr, "FAIL: mtalloc_stats_get not found: not "
				     "running on mtalloc\n");
		return 3;
	}
	for (const auto &c : cmds)
		if (argc == 2 && std::strcmp(argv[1], c.name) == 0) {
			c.run();
			if (failures)
				return 1;
			std::printf("ok %s\n", c.name);
			return 0;
		}
	std::fprintf(stderr, "usage: cxx_ops variants|huge|handler|"
			     "nothrow-handler|counts\n");
	return 2;
}
