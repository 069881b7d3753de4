// containers: a C++ workload on the standard library's allocating types.
//
//   containers [-n ROUNDS] [-t THREADS] [-T SECONDS]
//
// ROUNDS rounds per thread (with -T: rounds until SECONDS have passed, at
// most ROUNDS).  Each round, on each thread: builds a std::map<std::string, int> and a
// std::unordered_map<std::string, std::vector<int>> from 2,000 generated
// words (a third longer than the 15 characters of the small-string buffer,
// so they allocate), looks every word up again, sorts a std::vector of the
// strings, builds a std::list, and builds and drops a tree of 4,000
// std::shared_ptr nodes (std::make_shared: object and count in one block,
// freed when the last reference goes).  Everything goes through operator
// new and delete, including the sized delete of C++14, so this is what a
// C++ program sees of the allocator: many small nodes of a few sizes,
// freed in bulk when a container dies.
//
// Fixed seeds: runs are repeatable.  Prints:
//
//   threads=<count> rounds=<per thread (mean)> ops=<container operations
//   per thread (mean)> seconds=<s> mops=<million operations per second,
//   all threads>
//
// Not linked to mtalloc: the allocator is chosen by LD_PRELOAD.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <unistd.h>

namespace {

constexpr int kWords = 2000;
constexpr int kNodes = 4000;

struct Node {
	std::shared_ptr<Node> left, right;
	std::uint64_t value;
};

std::uint64_t next(std::uint64_t &s)
{
	std::uint64_t x = s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

std::string word(std::uint64_t &rng)
{
	static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
	// 4..35 characters: a third fit the small-string buffer (<= 15).
	std::size_t n = 4 + next(rng) % 32;
	std::string w;
	for (std::size_t i = 0; i < n; i++)
		w += letters[next(rng) % 26];
	return w;
}

std::shared_ptr<Node> tree(std::uint64_t &rng, int n)
{
	if (n == 0)
		return nullptr;
	auto node = std::make_shared<Node>();
	node->value = next(rng);
	int l = static_cast<int>(next(rng) % static_cast<std::uint64_t>(n));
	node->left = tree(rng, l);
	node->right = tree(rng, n - 1 - l);
	return node;
}

std::uint64_t sum(const std::shared_ptr<Node> &n)
{
	return n ? n->value + sum(n->left) + sum(n->right) : 0;
}

// One round; returns the number of container operations it made.
std::uint64_t round(std::uint64_t &rng, std::uint64_t &check)
{
	std::uint64_t ops = 0;
	std::vector<std::string> words;
	for (int i = 0; i < kWords; i++, ops++)
		words.push_back(word(rng));

	std::map<std::string, int> ordered;
	std::unordered_map<std::string, std::vector<int>> hashed;
	for (int i = 0; i < kWords; i++, ops += 2) {
		ordered[words[i]] += i;
		hashed[words[i]].push_back(i);
	}
	for (int i = 0; i < kWords; i++, ops += 2) {
		check += static_cast<std::uint64_t>(ordered.find(words[i])->second);
		check += hashed.at(words[i]).size();
	}
	std::sort(words.begin(), words.end());
	ops += kWords;

	std::list<std::string> chain(words.begin(), words.begin() + kWords / 2);
	ops += kWords / 2;
	chain.remove_if([](const std::string &w) { return w.size() % 2; });
	check += chain.size();

	// Depth stays small: the split point is uniform.
	std::shared_ptr<Node> root = tree(rng, kNodes);
	ops += kNodes;
	check += sum(root);
	return ops;
}

struct Result {
	std::uint64_t ops = 0, rounds = 0, check = 0;
};

using Clock = std::chrono::steady_clock;

void work(unsigned long rounds, double limit, Clock::time_point t0,
	  std::uint64_t seed, Result *r)
{
	std::uint64_t rng = seed * 0x9E3779B97F4A7C15ULL | 1;
	for (unsigned long i = 0; i < rounds; i++) {
		r->ops += round(rng, r->check);
		r->rounds++;
		if (limit > 0 && std::chrono::duration<double>(
				Clock::now() - t0).count() >= limit)
			break;
	}
}

int usage()
{
	std::fprintf(stderr, "usage: containers [-n ROUNDS] [-t THREADS] "
		     "[-T SECONDS]\n");
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	unsigned long rounds = 50, nthreads = 1;
	double limit = 0;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:T:")) != -1) {
		char *end;
		if (opt == 'T') {
			limit = std::strtod(optarg, &end);
			if (end == optarg || *end || limit < 0)
				return usage();
			continue;
		}
		unsigned long v = std::strtoul(optarg, &end, 10);
		if (*optarg == '-' || end == optarg || *end)
			return usage();
		if (opt == 'n')
			rounds = v;
		else if (opt == 't')
			nthreads = v;
		else
			return usage();
	}
	if (optind != argc || nthreads < 1 || nthreads > 64)
		return usage();

	std::vector<Result> results(nthreads);
	auto t0 = Clock::now();
	if (nthreads == 1) {
		work(rounds, limit, t0, 1, &results[0]);
	} else {
		std::vector<std::thread> threads;
		for (unsigned long t = 0; t < nthreads; t++)
			threads.emplace_back(work, rounds, limit, t0, t + 1,
					     &results[t]);
		for (auto &t : threads)
			t.join();
	}
	double s = std::chrono::duration<double>(Clock::now() - t0).count();
	std::uint64_t ops = 0, done = 0, check = 0;
	for (auto &r : results) {
		ops += r.ops;
		done += r.rounds;
		check ^= r.check;
	}
	std::printf("threads=%lu rounds=%llu ops=%llu seconds=%.3f mops=%.3f "
		    "check=%llx\n", nthreads,
		    (unsigned long long)(done / nthreads),
		    (unsigned long long)(ops / nthreads), s,
		    static_cast<double>(ops) / s / 1e6,
		    (unsigned long long)check);
	return 0;
}
