/* mtreport: the command line.  See doc/mtreport.1.
 *
 *   mtreport [summary] [OPTIONS] PATH...
 *   mtreport merge -o OUT [OPTIONS] PATH...
 *
 * Exit status: 0 everything was read; 2 some input was skipped (the report
 * covers the rest); 1 a usage error, nothing readable, or (--strict) any
 * problem with the input. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "report/report.h"

#define PROGRESS_MIN_BYTES (64ull << 20) /* input size worth a progress line */

static void usage(FILE *f)
{
	fputs("usage: mtreport [summary] [OPTIONS] PATH...\n"
	      "       mtreport merge -o OUT [OPTIONS] PATH...\n"
	      "       mtreport diff [OPTIONS] BASE NEW\n"
	      "PATH: a shard (.mts), an aggregate (.mta), or a directory of them.\n"
	      "  -f, --format=text|json|collapsed|pprof|html   output format (text)\n"
	      "      --value=bytes|count|live   a stack's value (collapsed: bytes)\n"
	      "  -n, --top=N                rows per table (10)\n"
	      "  -s, --sort=bytes|count|live|leaked   order of the site tables\n"
	      "  -p, --pid=PID[,PID...]     only these processes\n"
	      "  -t, --thread=TID|NAME      only these threads (repeatable)\n"
	      "  -P, --process-per-section  every section per process\n"
	      "      --merged               processes together (the default)\n"
	      "  -F, --by-function          also group sites by function\n"
	      "      --no-symbols           print module+offset, do not symbolize\n"
	      "      --debug-path=DIRS      more directories with debug files\n"
	      "      --strict               any input problem is fatal\n"
	      "  -j, --jobs=N               workers (one per core)\n"
	      "      --progress, --no-progress   the progress line on stderr\n"
	      "      --fail-if-growth=PERCENT   diff: exit 3 when a total grew more\n"
	      "  -o, --output=FILE          write there (merge: the aggregate)\n"
	      "  -h, --help, -V, --version\n",
	      f);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "mtreport: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return 1;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return false;
	*v = x;
	return true;
}

struct progress {
	struct mt_ingest_ctx *ctx;
	uint64_t total;
	volatile bool stop;
	bool shown;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (p->stop)
			break;
		uint64_t done = __atomic_load_n(&p->ctx->done_bytes, __ATOMIC_RELAXED);
		if (done > p->total)
			done = p->total;
		fprintf(stderr, "\rmtreport: read %" PRIu64 " of %" PRIu64 " MiB (%.0f%%)",
			done >> 20, p->total >> 20,
			p->total ? 100.0 * (double)done / (double)p->total : 100.0);
		p->shown = true;
	}
	if (p->shown)
		fputs("\r\033[K", stderr);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	/* a process with many threads alive at once has as many shards open
	 * in its merge */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Reads the PATHs into agg: 0 everything read, 2 something skipped, 1
 * nothing readable or a --strict stop (said on stderr). */
static int load(struct mt_agg *agg, char *const *paths, int n,
		const struct mt_options *opt)
{
	struct mt_ingest_ctx ctx;
	struct mt_inputs in;

	memset(&ctx, 0, sizeof(ctx));
	ctx.agg = agg;
	ctx.opt = opt;
	ctx.strict = opt->strict;
	pthread_mutex_init(&ctx.lock, NULL);

	mt_inputs_collect(&in, paths, n, &ctx);
	struct progress pr = { &ctx, in.bytes, false, false,
			       PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
	pthread_t pth;
	bool show = opt->progress == 1 ||
		    (opt->progress < 0 && isatty(2) && in.bytes >= PROGRESS_MIN_BYTES);
	if (show && pthread_create(&pth, NULL, progress_main, &pr))
		show = false;
	ctx.progress = show;
	if (!ctx.stop)
		mt_ingest(&ctx, &in, opt->jobs);
	if (show) {
		pthread_mutex_lock(&pr.lock);
		pr.stop = true;
		pthread_cond_signal(&pr.cond);
		pthread_mutex_unlock(&pr.lock);
		pthread_join(pth, NULL);
	}
	mt_inputs_free(&in);
	pthread_mutex_destroy(&ctx.lock);

	if (ctx.stop) {
		fprintf(stderr, "mtreport: stopping (--strict)\n");
		return 1;
	}
	if (!ctx.readable) {
		fprintf(stderr, "mtreport: nothing readable\n");
		return 1;
	}
	return ctx.skipped ? 2 : 0;
}

/* mtreport diff: 0 (or 2: input skipped), 3 growth beyond --fail-if-growth,
 * 1 an error. */
static int run_diff(struct mt_agg *base, struct mt_agg *new_, const struct mt_options *opt,
		    const char *output, const char *bname, const char *nname,
		    double fail_pct, int status)
{
	FILE *out = stdout;
	if (output && !(out = fopen(output, "w"))) {
		fprintf(stderr, "mtreport: %s: %s\n", output, strerror(errno));
		return 1;
	}
	struct mt_symbols *sb = mt_symbols_new(base, opt->symbols, opt->debug_path);
	struct mt_symbols *sn = mt_symbols_new(new_, opt->symbols, opt->debug_path);
	struct mt_view vb, vn;
	mt_view_build(&vb, base, opt, sb);
	mt_view_build(&vn, new_, opt, sn);
	bool grew = mt_diff(out, &vb, &vn, bname, nname, fail_pct);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "mtreport: %s: %s\n", output ? output : "standard output",
			strerror(errno));
		status = 1;
	} else if (grew) {
		status = 3;
	}
	if (out != stdout)
		fclose(out);
	mt_view_free(&vb);
	mt_view_free(&vn);
	mt_symbols_free(sb);
	mt_symbols_free(sn);
	return status;
}

int main(int argc, char **argv)
{
	enum { O_NO_SYMBOLS = 256, O_STRICT, O_MERGED, O_PROGRESS, O_NO_PROGRESS,
	       O_DEBUG_PATH, O_VALUE, O_FAIL_IF_GROWTH };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "value", required_argument, NULL, O_VALUE },
		{ "fail-if-growth", required_argument, NULL, O_FAIL_IF_GROWTH },
		{ "top", required_argument, NULL, 'n' },
		{ "sort", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "thread", required_argument, NULL, 't' },
		{ "process-per-section", no_argument, NULL, 'P' },
		{ "merged", no_argument, NULL, O_MERGED },
		{ "by-function", no_argument, NULL, 'F' },
		{ "no-symbols", no_argument, NULL, O_NO_SYMBOLS },
		{ "debug-path", required_argument, NULL, O_DEBUG_PATH },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "jobs", required_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "no-progress", no_argument, NULL, O_NO_PROGRESS },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct mt_options opt;
	const char *output = NULL;
	bool merge = false, diff = false;
	double fail_pct = -1;
	int c;

	memset(&opt, 0, sizeof(opt));
	opt.top = 10;
	opt.symbols = true;
	opt.progress = -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	opt.jobs = ncpu > 0 ? (unsigned)ncpu : 1;

	if (argc > 1 && !strcmp(argv[1], "diff")) {
		diff = true;
		argv++;
		argc--;
	} else if (argc > 1 && !strcmp(argv[1], "merge")) {
		merge = true;
		argv++;
		argc--;
	} else if (argc > 1 && !strcmp(argv[1], "summary")) {
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "f:n:s:p:t:PFj:o:hV", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "text"))
				opt.format = MT_FMT_TEXT;
			else if (!strcmp(optarg, "json"))
				opt.format = MT_FMT_JSON;
			else if (!strcmp(optarg, "collapsed"))
				opt.format = MT_FMT_COLLAPSED;
			else if (!strcmp(optarg, "pprof"))
				opt.format = MT_FMT_PPROF;
			else if (!strcmp(optarg, "html"))
				opt.format = MT_FMT_HTML;
			else
				return bad_usage("--format: '%s' is not text, json, collapsed, pprof or html",
						 optarg);
			break;
		case O_VALUE:
			if (!strcmp(optarg, "bytes"))
				opt.value = MT_VALUE_BYTES;
			else if (!strcmp(optarg, "count"))
				opt.value = MT_VALUE_COUNT;
			else if (!strcmp(optarg, "live"))
				opt.value = MT_VALUE_LIVE;
			else
				return bad_usage("--value: '%s' is not bytes, count or live", optarg);
			break;
		case O_FAIL_IF_GROWTH: {
			char *end;
			errno = 0;
			fail_pct = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(fail_pct >= 0))
				return bad_usage("--fail-if-growth: '%s' is not a percentage", optarg);
			break;
		}
		case 'n':
			if (!parse_u64(optarg, &v) || v == 0 || v > 1000000)
				return bad_usage("--top: '%s' is not a count from 1", optarg);
			opt.top = (unsigned)v;
			opt.top_given = true;
			break;
		case 's':
			if (!strcmp(optarg, "bytes"))
				opt.sort = MT_SORT_BYTES;
			else if (!strcmp(optarg, "count"))
				opt.sort = MT_SORT_COUNT;
			else if (!strcmp(optarg, "live"))
				opt.sort = MT_SORT_LIVE;
			else if (!strcmp(optarg, "leaked"))
				opt.sort = MT_SORT_LEAKED;
			else
				return bad_usage("--sort: '%s' is not bytes, count, live or leaked",
						 optarg);
			opt.sort_given = true;
			break;
		case 'p': {
			char *s = mt_xstrndup(optarg, strlen(optarg)), *save = NULL;
			for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!parse_u64(t, &v)) {
					int rc = bad_usage("--pid: '%s' is not a process id", t);
					free(s);
					return rc;
				}
				opt.pids = mt_xrealloc(opt.pids, (opt.npids + 1) * sizeof(uint64_t));
				opt.pids[opt.npids++] = v;
			}
			free(s);
			break;
		}
		case 't':
			opt.threads = mt_xrealloc(opt.threads, (opt.nthreads + 1) * sizeof(char *));
			opt.threads[opt.nthreads++] = optarg;
			break;
		case 'P': opt.per_process = true; break;
		case O_MERGED: opt.per_process = false; break;
		case 'F': opt.by_function = true; break;
		case O_NO_SYMBOLS: opt.symbols = false; break;
		case O_DEBUG_PATH: opt.debug_path = optarg; break;
		case O_STRICT: opt.strict = true; break;
		case 'j':
			if (!parse_u64(optarg, &v) || v == 0 || v > 1024)
				return bad_usage("--jobs: '%s' is not a count from 1 to 1024", optarg);
			opt.jobs = (unsigned)v;
			break;
		case O_PROGRESS: opt.progress = 1; break;
		case O_NO_PROGRESS: opt.progress = 0; break;
		case 'o': output = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mtreport %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc)
		return bad_usage("%s", "no PATH given");
	if (diff && argc - optind != 2)
		return bad_usage("%s", "diff takes two PATHs: BASE NEW");
	if (!diff && fail_pct >= 0)
		return bad_usage("%s", "--fail-if-growth goes with diff");
	if (merge && !output)
		return bad_usage("%s", "merge needs -o OUT");

	raise_nofile();
	struct mt_agg agg;
	mt_agg_init(&agg);
	int status = load(&agg, argv + optind, diff ? 1 : argc - optind, &opt);
	if (status == 1)
		goto out;
	if (diff) {
		struct mt_agg nagg;
		mt_agg_init(&nagg);
		int st2 = load(&nagg, argv + optind + 1, 1, &opt);
		if (st2 == 1)
			status = 1;
		else
			status = run_diff(&agg, &nagg, &opt, output, argv[optind],
					  argv[optind + 1], fail_pct, status | st2);
		mt_agg_destroy(&nagg);
		goto out;
	}
	if (merge) {
		const char *err = NULL;
		if (mt_aggfile_write(&agg, output, &err) < 0) {
			fprintf(stderr, "mtreport: %s: %s\n", output, err);
			status = 1;
		}
		goto out;
	}
	FILE *out = stdout;
	if (output && !(out = fopen(output, opt.format == MT_FMT_PPROF ? "wb" : "w"))) {
		fprintf(stderr, "mtreport: %s: %s\n", output, strerror(errno));
		status = 1;
		goto out;
	}
	struct mt_symbols *sym = mt_symbols_new(&agg, opt.symbols, opt.debug_path);
	struct mt_view all;
	mt_view_build(&all, &agg, &opt, sym);
	struct mt_view *views = NULL, **vp;
	size_t nv = 1;
	if (opt.per_process) {
		nv = all.nprocs;
		views = mt_xcalloc(nv + 1, sizeof(*views));
		vp = mt_xcalloc(nv + 1, sizeof(*vp));
		for (size_t i = 0; i < nv; i++) {
			mt_view_build_proc(&views[i], &agg, &opt, sym, (long)all.procs[i].proc);
			vp[i] = &views[i];
		}
	} else {
		vp = mt_xcalloc(1, sizeof(*vp));
		vp[0] = &all;
	}
	if (opt.format == MT_FMT_JSON)
		mt_emit_json(out, vp, nv);
	else if (opt.format == MT_FMT_COLLAPSED)
		mt_emit_collapsed(out, vp, nv);
	else if (opt.format == MT_FMT_PPROF)
		mt_emit_pprof(out, vp, nv);
	else if (opt.format == MT_FMT_HTML)
		mt_emit_html(out, vp, nv);
	else
		mt_emit_text(out, vp, nv);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "mtreport: %s: %s\n", output ? output : "standard output",
			strerror(errno));
		status = 1;
	}
	if (out != stdout)
		fclose(out);
	if (opt.per_process)
		for (size_t i = 0; i < nv; i++)
			mt_view_free(&views[i]);
	free(views);
	free(vp);
	mt_view_free(&all);
	mt_symbols_free(sym);
out:
	mt_agg_destroy(&agg);
	free(opt.pids);
	free(opt.threads);
	return status;
}
