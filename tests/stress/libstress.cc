// libstress: the C++ library that `stress dlopen` loads and unloads in a
// loop.  lib_stress(n, &kept, &freed) makes n allocations in the band
// [3000, 4000) (operator new[], std::vector's allocator and malloc), frees
// some of them itself (delete[], the vector's destructor), and returns the
// malloc'd ones, filled with a pattern, for the C caller to check and free
// after dlclose.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

extern "C" __attribute__((visibility("default"))) void **
lib_stress(int n, int *kept, long *freed)
{
	void **out = static_cast<void **>(std::malloc(sizeof(void *) * 8));
	int k = 0;
	long f = 0;

	for (int i = 0; i < n; i++) {
		std::size_t size = 3100 + 16 * (std::size_t)i;
		switch (i % 3) {
		case 0: {
			unsigned char *p = new unsigned char[size];
			std::memset(p, i, size);
			delete[] p;
			f++;
			break;
		}
		case 1: {
			std::vector<unsigned char> v(size, (unsigned char)i);
			if (v[size - 1] != (unsigned char)i)
				std::abort();
			f++; // the vector frees its buffer here
			break;
		}
		default: {
			unsigned char *p = static_cast<unsigned char *>(std::malloc(size));
			for (int j = 0; j < 64; j++)
				p[j] = (unsigned char)(k + j);
			if (k < 8)
				out[k++] = p;
			else {
				std::free(p);
				f++;
			}
		}
		}
	}
	*kept = k;
	*freed = f;
	return out;
}
