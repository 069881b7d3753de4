// stress_cxx: the C++ side of the stress suite, run preloaded with
// MTALLOC=sample:all like tests/stress/stress.c and reporting the same
// truth line.  THREADS threads hand objects to each other through a mutexed
// queue; objects are made with every form of operator new (plain, array,
// aligned, nothrow; std::vector and std::string buffers) and some with C's
// malloc, and freed on another thread with the matching delete (sized and
// aligned forms included) or free.  Every allocation the program makes
// itself has a size in [3000, 4000); each buffer's checksum is verified
// before it is freed (a bad one exits 3).
//
//   stress_cxx THREADS ITERS
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::atomic<unsigned long> n_alloc{0}, n_free{0}, n_threads{0};

enum class How { New, NewArray, Aligned, Nothrow, Malloc, Vector, String };

struct Item {
	How how;
	std::size_t size;
	unsigned char seed;
	void *p;                          // New, NewArray, Aligned, Nothrow, Malloc
	std::vector<unsigned char> *v;    // Vector (the vector object is not in the band)
	std::string *s;                   // String
};

struct Queue {
	std::mutex m;
	std::deque<Item> q;
};

void fill(unsigned char *p, std::size_t n, unsigned char seed)
{
	for (std::size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

void check(const unsigned char *p, std::size_t n, unsigned char seed)
{
	for (std::size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7)) {
			std::fprintf(stderr, "checksum error: %zu bytes\n", n);
			_exit(3);
		}
}

Item make(unsigned long r)
{
	Item it{};
	it.how = static_cast<How>(r % 7);
	it.size = 3064 + (r * 2654435761u) % 800;
	it.seed = (unsigned char)r;
	switch (it.how) {
	case How::New: it.p = ::operator new(it.size); break;
	case How::NewArray: it.p = new unsigned char[it.size]; break;
	case How::Aligned: it.p = ::operator new(it.size, std::align_val_t(128)); break;
	case How::Nothrow: it.p = ::operator new(it.size, std::nothrow); break;
	case How::Malloc: it.p = std::malloc(it.size); break;
	case How::Vector:
		it.v = new std::vector<unsigned char>(it.size);
		it.p = it.v->data();
		break;
	case How::String:
		it.s = new std::string(it.size - 1, 'x'); // buffer: size bytes
		it.p = &(*it.s)[0];
		break;
	}
	if (!it.p)
		_exit(5);
	n_alloc++;
	std::size_t n = it.how == How::String ? it.size - 1 : it.size;
	fill(static_cast<unsigned char *>(it.p), n, it.seed);
	return it;
}

void destroy(Item &it)
{
	std::size_t n = it.how == How::String ? it.size - 1 : it.size;
	check(static_cast<unsigned char *>(it.p), n, it.seed);
	switch (it.how) {
	case How::New: ::operator delete(it.p, it.size); break;
	case How::NewArray: delete[] static_cast<unsigned char *>(it.p); break;
	case How::Aligned: ::operator delete(it.p, it.size, std::align_val_t(128)); break;
	case How::Nothrow: ::operator delete(it.p, std::nothrow); break;
	case How::Malloc: std::free(it.p); break;
	case How::Vector: delete it.v; break;
	case How::String: delete it.s; break;
	}
	n_free++;
}

} // namespace

int main(int argc, char **argv)
{
	int threads = argc > 1 ? std::atoi(argv[1]) : 8;
	long iters = argc > 2 ? std::atol(argv[2]) : 1000;
	std::vector<Queue> queues(threads);
	std::vector<std::thread> th;
	std::atomic<int> running{threads};

	th.reserve(threads);
	for (int t = 0; t < threads; t++) {
		th.emplace_back([&, t] {
			for (long i = 0; i < iters; i++) {
				Item it = make((unsigned long)(t * 1000003L + i));
				Queue &to = queues[(t + 1 + i % (threads > 1 ? threads - 1 : 1)) % threads];
				{
					std::lock_guard<std::mutex> g(to.m);
					to.q.push_back(it);
				}
				std::deque<Item> mine;
				{
					std::lock_guard<std::mutex> g(queues[t].m);
					mine.swap(queues[t].q);
				}
				for (Item &x : mine)
					destroy(x);
			}
			running--;
			while (running.load() > 0)
				std::this_thread::yield();
			std::lock_guard<std::mutex> g(queues[t].m);
			for (Item &x : queues[t].q)
				destroy(x);
			queues[t].q.clear();
		});
		n_threads++;
	}
	for (auto &x : th)
		x.join();
	char line[256];
	int n = std::snprintf(line, sizeof(line),
			      "truth pid %d allocs %lu frees %lu live 0 inherited 0 threads %lu\n",
			      (int)getpid(), n_alloc.load(), n_free.load(), n_threads.load());
	return write(1, line, (size_t)n) == n ? 0 : 6;
}
