/* Single-core peak float multiply-accumulate rate of this CPU.
 *
 *   cc -O3 -march=native -ffp-contract=fast bench/peak.c -o peak && ./peak
 *
 * prints "peak_macs_per_s X" on stdout (X = float MACs per second, one
 * thread), and on stderr the rate for each vector width it tried.
 *
 * How it reaches peak: an FMA unit accepts a new instruction every cycle
 * but its result is ready only after L cycles (L = 4 on Zen 4/5 and
 * Skylake..Golden Cove).  A single accumulator chain acc = acc * m + a
 * therefore runs at 1/L of the unit's throughput, since each FMA waits for
 * the previous one.  With P FMA pipes the core needs at least L * P
 * independent chains in flight (4 * 2 = 8 on current x86 cores) to issue
 * an FMA on every pipe every cycle.  We keep NACC independent accumulators
 * (16 with AVX-512, which has 32 vector registers; 12 otherwise, leaving
 * room in the 16 AVX2 registers for m and a), each a full vector of the
 * widest size the target has, so every cycle can retire P vector FMAs of
 * W lanes: peak = P * W * f MACs/s.  The loop body is NACC FMAs and one
 * counter update, so loop overhead is negligible, and the operands live in
 * registers, so memory never limits it.
 *
 * GCC vector extensions keep this portable: `acc * m + a` on vectors
 * becomes one vfmadd instruction when floating-point contraction is on
 * (the default for GNU C; -ffp-contract=fast makes it explicit, since
 * -std=c11 turns it off and leaves a vmul + vadd pair, which halves the
 * rate on cores whose FMA pipes are also their only adders; Zen has
 * separate add pipes and hides it).  m < 1 and a > 0 make each chain converge to
 * a / (1 - m), so values stay normal (no denormal slow-down, no overflow).
 * The best of several trials is reported, since peak is the maximum the
 * core sustains, not the typical rate under interference. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>

#define NTRIAL 5
#define TRIAL_SEC 0.2

#ifndef NACC                  /* -DNACC=n to see the latency wall */
#if defined(__AVX512F__)
#define NACC 16
#else
#define NACC 12
#endif
#endif

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

static volatile float sink;

/* This thread's CPU time, not wall time: time the scheduler gives to other
 * processes (a build on the same core) would otherwise lower the "peak".
 * A hypervisor's steal time still counts, so on a busy VM run it twice. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One kernel per vector type: NACC independent FMA chains, `iters` rounds.
 * Returns seconds taken.  m and a come from volatiles so the compiler
 * cannot fold the chains; the final sum goes to a volatile so it cannot
 * drop them. */
#define DEFINE_KERNEL(V)                                                        \
	static double kernel_##V(long iters)                                        \
	{                                                                           \
		static volatile float vm = 0.999999f, va = 1e-6f;                       \
		V m, a, acc[NACC];                                                      \
		for (int k = 0; k < (int)(sizeof(V) / sizeof(float)); k++) {            \
			m[k] = vm;                                                          \
			a[k] = va;                                                          \
		}                                                                       \
		for (int j = 0; j < NACC; j++)                                          \
			acc[j] = a * (float)(j + 1);                                        \
		double t0 = now();                                                      \
		for (long i = 0; i < iters; i++) {                                      \
			_Pragma("GCC unroll 32")                                            \
			for (int j = 0; j < NACC; j++)                                      \
				acc[j] = acc[j] * m + a;                                        \
		}                                                                       \
		double t = now() - t0;                                                  \
		float s = 0;                                                            \
		for (int j = 0; j < NACC; j++)                                          \
			for (int k = 0; k < (int)(sizeof(V) / sizeof(float)); k++)          \
				s += acc[j][k];                                                 \
		sink = s;                                                               \
		return t;                                                               \
	}

DEFINE_KERNEL(v4)
DEFINE_KERNEL(v8)
DEFINE_KERNEL(v16)

/* Best MACs/s over NTRIAL trials of about TRIAL_SEC each; the iteration
 * count is calibrated once so a trial is long against timer resolution. */
static double best_rate(double (*kernel)(long), int lanes)
{
	long iters = 1000;
	while (kernel(iters) < TRIAL_SEC / 10)
		iters *= 2;
	iters = (long)((double)iters * TRIAL_SEC / kernel(iters));
	double best = 0;
	for (int t = 0; t < NTRIAL; t++) {
		double rate = (double)iters * NACC * lanes / kernel(iters);
		if (rate > best)
			best = rate;
	}
	return best;
}

int main(void)
{
	/* Widths the target lacks still compile (GCC splits the vector), but
	 * would only repeat a narrower result, so they are skipped. */
	struct { const char *name; double (*kernel)(long); int lanes; int native; } w[] = {
		{"128", kernel_v4, 4, 1},
#if defined(__AVX__)
		{"256", kernel_v8, 8, 1},
#else
		{"256", kernel_v8, 8, 0},
#endif
#if defined(__AVX512F__)
		{"512", kernel_v16, 16, 1},
#else
		{"512", kernel_v16, 16, 0},
#endif
	};
	double peak = 0;
	for (int i = 0; i < (int)(sizeof w / sizeof w[0]); i++) {
		if (!w[i].native)
			continue;
		double r = best_rate(w[i].kernel, w[i].lanes);
		fprintf(stderr, "width_bits %s accumulators %d macs_per_s %.4g\n", w[i].name, NACC, r);
		if (r > peak)
			peak = r;
	}
	printf("peak_macs_per_s %.6g\n", peak);
	return 0;
}
