// libcxxplugin: a C++ shared library that a C program loads with dlopen
// (tests/integration/dlopen_main.c), as Python loads an extension module.
// Its operator new/delete must bind to mtalloc, not to libstdc++.
#include <dlfcn.h>

#include <cstddef>
#include <string>
#include <vector>

namespace {

struct Node {
	Node *next;
	long value;
	char pad[32];
};

} // namespace

extern "C" {

// n new/delete pairs of one 48-byte object, plus some library churn;
// returns a checksum so that nothing is optimised away.
long plugin_churn(long n)
{
	long sum = 0;
	for (long i = 0; i < n; i++) {
		Node *node = new Node;
		node->value = i;
		__asm__ volatile("" : : "r"(node) : "memory");
		sum += node->value;
		delete node;
	}
	std::vector<std::string> v;
	for (int i = 0; i < 100; i++)
		v.emplace_back(std::string(50 + i, 'p'));
	for (const auto &s : v)
		sum += (long)s.size();
	return sum;
}

// The file that defines the operator new this library calls.
const char *plugin_operator_new_origin(void)
{
	Dl_info info{};
	void *(*f)(std::size_t) = &::operator new;
	if (!dladdr(reinterpret_cast<void *>(f), &info) || !info.dli_fname)
		return "?";
	return info.dli_fname;
}

size_t plugin_node_size(void)
{
	return sizeof(Node);
}
}
