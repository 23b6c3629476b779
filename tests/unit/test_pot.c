/* Unit tests for power-of-two weight codes: ir_wencode/ir_wdecode against
 * a level table written here from the formula of docs/integer-semantics.md,
 * and pass_pot on a hand-built three-Conv graph (codes, scale window,
 * first/last kept uniform, the lowered graph's integers against a double
 * computation from the decoded weights). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "irtest.h"
#include "passes.h"

/* Magnitude index m's level, straight from the docs: PoT 0, 2^(m-1);
 * APoT 0, 1, then 2^j for m = 2j and 3 * 2^(j-1) for m = 2j + 1. */
static double ref_level(int code, int m)
{
	if (m == 0)
		return 0;
	if (code == WQ_POT)
		return pow(2, m - 1);
	if (m == 1)
		return 1;
	return m % 2 == 0 ? pow(2, m / 2) : 3 * pow(2, (m - 1) / 2 - 1);
}

static double ref_decode(int code, int bits, int v)
{
	int m = v & ((1 << (bits - 1)) - 1);
	return (v >> (bits - 1) & 1 ? -1 : 1) * ref_level(code, m);
}

static Quant *code_quant(int code, int bits, double scale)
{
	Quant *q = ir_quant_new(arena, 1, -1, bits, 0);
	q->code = code;
	q->scale[0] = scale;
	return q;
}

/* Codes of 7 and 8 bits would name levels beyond int32 (pass_pot and the
 * CLI refuse them), so the round trip covers 2..6 bits. */
static void every_code_round_trips(void **state)
{
	(void)state;
	for (int code = WQ_POT; code <= WQ_APOT; code++)
		for (int bits = 2; bits <= 6; bits++) {
			Quant *q = code_quant(code, bits, 1);
			for (int v = 0; v < 1 << bits; v++) {
				double lv = ref_decode(code, bits, v);
				assert_true(ir_wdecode(q, v) == lv);
				/* the negative zero code encodes back as 0 */
				int want = lv == 0 ? 0 : v;
				assert_int_equal(ir_wencode(q, 0, lv), want);
			}
		}
	Quant *q = code_quant(WQ_APOT, 4, 1);
	int32_t want[8] = {0, 1, 2, 3, 4, 6, 8, 12};  /* the docs' 4-bit list */
	for (int m = 0; m < 8; m++)
		assert_int_equal(ir_wdecode(q, m), want[m]);
}

/* The code a brute force over every code picks: least |s * level - r|,
 * ties to the smaller magnitude. */
static double brute_nearest(int code, int bits, double s, double r)
{
	double best = 0;
	for (int m = 1; m < 1 << (bits - 1); m++) {
		double l = ref_level(code, m) * (r < 0 ? -1 : 1);
		if (fabs(s * l - r) < fabs(s * best - r))
			best = l;
	}
	return best;
}

static void nearest_level_matches_brute_force(void **state)
{
	(void)state;
	for (int code = WQ_POT; code <= WQ_APOT; code++)
		for (int bits = 2; bits <= 6; bits++) {
			double s = 0.0625, top = ref_level(code, (1 << (bits - 1)) - 1) * s;
			Quant *q = code_quant(code, bits, s);
			/* a fine grid including every midpoint between levels (ties) */
			for (int i = -1200; i <= 1200; i++) {
				double r = top * 1.3 * i / 1200;
				assert_true(ir_wdecode(q, ir_wencode(q, 0, r)) == brute_nearest(code, bits, s, r));
			}
			for (int m = 0; m + 1 < 1 << (bits - 1); m++) {
				double mid = s * (ref_level(code, m) + ref_level(code, m + 1)) / 2;
				assert_true(ir_wdecode(q, ir_wencode(q, 0, mid)) == ref_level(code, m));
				assert_true(ir_wdecode(q, ir_wencode(q, 0, -mid)) == -ref_level(code, m));
			}
		}
}

/* ---- pass_pot on x -> Conv(2->3) -> Conv(3->4) -> Conv(4->2, 1x1) -> y ---- */

enum { NS = 24, C0 = 2, HW = 6 };
static float samples[NS * C0 * HW * HW];
static float wsave[3][4 * 3 * 9];
static QuantConfig cfg;

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)(*s >> 8 & 0xffff) / 65536.0;
}

static int conv(int x, int cin, int cout, int k, unsigned *seed, int idx)
{
	int64_t wd[4] = {cout, cin, k, k};
	int64_t nw = (int64_t)cout * cin * k * k;
	float *w = arena_alloc(arena, (size_t)nw * sizeof *w);
	for (int64_t i = 0; i < nw; i++)
		w[i] = (float)((urand(seed) - 0.5) * (1 + (i % 5)));
	memcpy(wsave[idx], w, (size_t)nw * sizeof *w);
	float *b = arena_alloc(arena, (size_t)cout * sizeof *b);
	for (int c = 0; c < cout; c++)
		b[c] = (float)(urand(seed) - 0.5);
	int wt = ir_const_new(g, arena_printf(arena, "w%d", idx), DT_F32, 4, wd, w);
	int bt = ir_const_new(g, arena_printf(arena, "b%d", idx), DT_F32, 1, DIMS(cout), b);
	int y = ir_tensor_new(g, arena_printf(arena, "y%d", idx), DT_F32, 0, NULL);
	int n = ir_node_new(g, OP_CONV, arena_printf(arena, "conv%d", idx), 3, INS(x, wt, bt), 1, &y);
	Window *wi = &g->node[n].a.win;
	wi->nsp = 2;
	wi->group = 1;
	for (int i = 0; i < 2; i++) {
		wi->k[i] = k;
		wi->s[i] = wi->d[i] = 1;
		wi->pad[i] = wi->pad[2 + i] = k / 2;
	}
	return y;
}

static void build(QuantMode mode, int weights, int keep)
{
	unsigned seed = 7;
	for (int i = 0; i < NS * C0 * HW * HW; i++)
		samples[i] = (float)urand(&seed);
	memset(&cfg, 0, sizeof cfg);
	cfg.mode = mode;
	cfg.wbits = 4;
	cfg.abits = 8;
	cfg.weights = weights;
	cfg.keep_first_last = keep;
	cfg.nsamples = NS;
	cfg.samples[0] = samples;
	int x = ir_tensor_new(g, "x", DT_F32, 4, DIMS(1, C0, HW, HW));
	g->tensor[x].kind = TK_INPUT;
	g->input = arena_dup(arena, INS(x), sizeof(int));
	g->ninput = 1;
	int y = conv(conv(conv(x, C0, 3, 3, &seed, 0), 3, 4, 3, &seed, 1), 4, 2, 1, &seed, 2);
	g->output = arena_dup(arena, INS(y), sizeof(int));
	g->noutput = 1;
	g->tensor[y].is_output = 1;
	g->qcfg = &cfg;
	assert_int_equal(ir_infer(g, &diag), 0);
	assert_int_equal(pass_calibrate(g, &diag), 0);
	assert_int_equal(pass_qchoose(g, &diag), 0);
	assert_int_equal(pass_pot(g, &diag), 0);
}

static const Tensor *weight(int idx)
{
	return &g->tensor[g->node[idx].in[1]];
}

/* The fixed-point window: f0 - 2 .. f0 + 3, f0 = floor(log2(top / max|w_c|)). */
static void check_window(int idx, int code, int bits)
{
	const Tensor *w = weight(idx);
	int64_t per = ir_numel(w) / w->dim[0];
	double top = ref_level(code, (1 << (bits - 1)) - 1);
	for (int c = 0; c < w->q->nch; c++) {
		double amax = 0;
		for (int64_t i = 0; i < per; i++)
			amax = fmax(amax, fabs(wsave[idx][c * per + i]));
		int f0 = (int)floor(log2(top / amax));
		assert_true(w->q->frac[c] >= f0 - 2 && w->q->frac[c] <= f0 + 3);
		assert_true(w->q->scale[c] == ldexp(1.0, -w->q->frac[c]));
	}
}

static void pot_codes_first_last_uniform(void **state)
{
	(void)state;
	build(QM_FIXED, WQ_POT, 1);
	assert_int_equal(weight(0)->q->code, WQ_UNIFORM);
	assert_int_equal(weight(0)->q->bits, 8);
	assert_int_equal(weight(2)->q->code, WQ_UNIFORM);
	assert_int_equal(weight(2)->q->bits, 8);
	assert_int_equal(weight(1)->q->code, WQ_POT);
	assert_int_equal(weight(1)->q->bits, 4);
	check_window(1, WQ_POT, 4);
}

static void apot_without_keep_codes_every_layer(void **state)
{
	(void)state;
	build(QM_FIXED, WQ_APOT, 0);
	/* conv2 sums 4 products per output: qchoose keeps such layers at 8 bits
	 * uniform, and pass_pot leaves them so */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(weight(k)->q->code, WQ_APOT);
		assert_int_equal(weight(k)->q->bits, 4);
		check_window(k, WQ_APOT, 4);
	}
	assert_int_equal(weight(2)->q->code, WQ_UNIFORM);
}

/* Affine: the scale is max|w_c| / top times a factor in 0.5 .. 1. */
static void affine_scale_in_range(void **state)
{
	(void)state;
	build(QM_AFFINE, WQ_POT, 0);
	const Tensor *w = weight(1);
	int64_t per = ir_numel(w) / w->dim[0];
	for (int c = 0; c < w->q->nch; c++) {
		double amax = 0;
		for (int64_t i = 0; i < per; i++)
			amax = fmax(amax, fabs(wsave[1][c * per + i]));
		double k = w->q->scale[c] / (amax / 64);
		assert_true(k >= 0.5 - 1e-12 && k <= 1 + 1e-12);
	}
}

/* The integers in and out of conv1 (the PoT layer) as ir_qeval computes them. */
typedef struct {
	int x, y;
	int32_t *xv, *yv;
} Capture;

static void capture(void *ctx, const Graph *gg, int t, const void *data)
{
	Capture *c = ctx;
	const Tensor *tt = &gg->tensor[t];
	int32_t **dst = t == c->x ? &c->xv : t == c->y ? &c->yv : NULL;
	if (!dst)
		return;
	*dst = arena_alloc(arena, (size_t)ir_numel(tt) * sizeof **dst);
	for (int64_t i = 0; i < ir_numel(tt); i++)
		(*dst)[i] = (int32_t)ir_load(tt->dtype, data, i);
}

static double round_away(double v)
{
	return v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
}

static void lowered_pot_layer_matches_double(void **state)
{
	(void)state;
	build(QM_FIXED, WQ_POT, 1);
	assert_int_equal(pass_qlower(g, &diag), 0);
	const Node *n = &g->node[1];
	const Tensor *w = weight(1), *X = &g->tensor[n->in[0]], *Y = &g->tensor[n->out[0]];
	const Tensor *B = &g->tensor[n->in[2]];
	assert_int_equal(w->dtype, DT_U8);
	for (int64_t i = 0; i < ir_numel(w); i++)
		assert_true(((const uint8_t *)w->data)[i] < 16);
	/* run the lowered graph on quantized sample 0 */
	const Tensor *in = &g->tensor[g->input[0]];
	int64_t nin = ir_numel(in);
	assert_int_equal(in->dtype, DT_U8);
	uint8_t *xin = arena_alloc(arena, (size_t)nin);
	for (int64_t i = 0; i < nin; i++)
		xin[i] = (uint8_t)ir_quantize(in->q, 0, samples[i]);
	const Tensor *out = &g->tensor[g->output[0]];
	void *yout = arena_alloc(arena, ir_nbytes(out));
	Capture cap = {n->in[0], n->out[0], NULL, NULL};
	const void *ins[1] = {xin};
	void *outs[1] = {yout};
	assert_int_equal(ir_qeval(g, ins, outs, capture, &cap, &diag), 0);
	assert_non_null(cap.xv);
	assert_non_null(cap.yv);
	/* y[c, i, j] = clamp(round(acc / 2^(fx + fw[c] - fy))), acc in double
	 * (exact: every term is a small integer) from the decoded codes */
	int fx = X->q->frac[0], fy = Y->q->frac[0];
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < HW; i++)
			for (int j = 0; j < HW; j++) {
				double acc = (double)((const int32_t *)B->data)[c];
				for (int ci = 0; ci < 3; ci++)
					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int yy = i + ky - 1, xx = j + kx - 1;
							if (yy < 0 || yy >= HW || xx < 0 || xx >= HW)
								continue;
							int code = ((const uint8_t *)w->data)[((c * 3 + ci) * 3 + ky) * 3 + kx];
							acc += cap.xv[(ci * HW + yy) * HW + xx] * ref_decode(WQ_POT, 4, code);
						}
				double v = round_away(ldexp(acc, -(fx + w->q->frac[c] - fy)));
				v = fmin(fmax(v, ir_qmin(Y->q)), ir_qmax(Y->q));
				assert_int_equal(cap.yv[(c * HW + i) * HW + j], (int32_t)v);
			}
	/* the comparison means something: outputs spread over many values */
	int distinct = 0;
	for (int i = 1; i < 4 * HW * HW; i++)
		distinct += cap.yv[i] != cap.yv[i - 1];
	assert_true(distinct > 4 * HW * HW / 2);
	/* and the codes dequantize close to the float weights (4-bit PoT:
	 * within half the gap to the next level, at most a quarter of |w|
	 * above the smallest level) */
	for (int64_t k = 0; k < ir_numel(w); k++) {
		int c = (int)(k / 27);
		double wh = w->q->scale[c] * ref_decode(WQ_POT, 4, ((const uint8_t *)w->data)[k]);
		double top = 64 * w->q->scale[c];
		double e = fabs(wh - wsave[1][k]);
		assert_true(fabs(wsave[1][k]) > top ? 1 : e <= fmax(fabs(wsave[1][k]) / 3, w->q->scale[c] / 2) + 1e-9);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_code_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(nearest_level_matches_brute_force, setup, teardown),
		cmocka_unit_test_setup_teardown(pot_codes_first_last_uniform, setup, teardown),
		cmocka_unit_test_setup_teardown(apot_without_keep_codes_every_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(affine_scale_in_range, setup, teardown),
		cmocka_unit_test_setup_teardown(lowered_pot_layer_matches_double, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
