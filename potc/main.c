/* The potc command line: compile, run, info, eval.  Exit 0 on success, 1
 * for a bad model or input, 2 for bad usage (one line naming the option). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib_data.h"
#include "potc.h"

#ifndef POTC_VERSION
#define POTC_VERSION "dev"
#endif

static const char usage[] =
	"usage: potc MODEL.onnx -o OUT.c [options]      compile to C (OUT.c + OUT.h)\n"
	"       potc run MODEL.onnx IN.npy... -o OUT.npy...  run the reference evaluator\n"
	"       potc info MODEL.onnx                      inputs, outputs, ops, size, MACs\n"
	"       potc eval MODEL.onnx --data X --labels Y  top-1 accuracy, float and quantized\n"
	"\n"
	"options:\n"
	"  -o FILE                 output .c (compile) or .npy (run; once per output)\n"
	"  --name NAME             symbol prefix in the generated code (default: OUT's stem)\n"
	"  --driver MAIN.c         also write a main() that runs the model on .npy files\n"
	"  --arena static|extern   static arena (default) or one the caller passes to NAME_run\n"
	"  --input-shape NAME=DIMS bind an input's dims, e.g. x=1x3x48x192 (repeatable)\n"
	"  --const NAME=FILE.npy   make input NAME a constant with this data (repeatable)\n"
	"  -d PASS[,PASS...]|all   dump the IR after these passes to stderr\n"
	"                          (import, fold, bnfold, views, dce, fuse, qdq, calibrate,\n"
	"                          qchoose, pot, qlower, accbound, memplan; qdq to accbound\n"
	"                          only with --quant)\n"
	"  --progress, --no-progress  progress bars on stderr (default: when it is a terminal)\n"
	"\n"
	"quantization (compile, run, info, eval):\n"
	"  --quant fixed|affine    integer model: power-of-two scales, or scale and zero point\n"
	"  --calib FILE            calibration samples: .npy, IDX (.gz), .pb or a directory of .pb\n"
	"  --calib-count N         use the first N samples (default: all)\n"
	"  --calib-scale unit|raw|signed  uint8 data for a float input: x/255 (default), x,\n"
	"                          x/127.5-1\n"
	"  --bp mse|max            binary points (fixed): least squared error (default) or max\n"
	"  --wbits N               weight bits, 2..8 (default 8; pot|apot: 2..6, default 4)\n"
	"  --weights uniform|pot|apot  weights as integers (default), or as codes of powers of\n"
	"                          two (pot) or sums of two (apot): shift-add layers\n"
	"  --keep-first-last, --no-keep-first-last  with pot|apot, the first and last\n"
	"                          Conv/Gemm/MatMul keep 8-bit uniform weights (default: keep)\n"
	"  --abits N               activation bits, 4..16 (default 8)\n"
	"  --layer NODE:wbits=N,abits=M  bits of one node (either key may be left out; repeatable)\n"
	"  --acc-bits P            Conv/Gemm/MatMul accumulate in P bits, 12..32 (default 32):\n"
	"                          channels scaled down or the reduction tiled to prove it\n"
	"  --acc-unchecked         with --acc-bits: record the bound, enforce nothing (tests only)\n"
	"\n"
	"eval:\n"
	"  --data X                inputs: .npy (float32 or uint8 images), IDX (.gz) or .pb\n"
	"  --labels Y              integer class labels: .npy or IDX (.gz)\n"
	"  --limit N               evaluate the first N samples only\n"
	"  --report FILE.json      accuracy, per-tensor SQNR, every Quant and accumulator bound\n"
	"  --sweep KEY=LO:HI[:STEP]  top-1 per value: acc-bits (12..32), or wbits (2..8) for\n"
	"                          uniform, pot and apot weights (pot/apot up to 6 bits)\n"
	"  --help, --version\n";

typedef struct {
	PotcOptions o;
	const char *cmd;           /* "compile", "run", "info", "eval" */
	const char *npy_in[64];
	int nin;
	const char *npy_out[64];
	int nout;
	const char *data, *labels, *report;  /* eval */
	struct { const char *key; int lo, hi, step; } sweep;   /* eval --sweep */
	const char *need_quant;    /* the first option that only makes sense with --quant */
	const char *eval_only;     /* the first option only eval takes */
	int wbits, abits;          /* 0 = default */
	int keep;                  /* --[no-]keep-first-last: 1, 0, or -1 = default */
} Cli;

static int bad_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "potc: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (potc --help for usage)\n");
	va_end(ap);
	return 2;
}

/* A whole decimal number in lo..hi into *v; 1 if s is anything else. */
static int parse_int(const char *s, long long lo, long long hi, long long *v)
{
	char *end;
	if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return 1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return *end || errno || *v < lo || *v > hi;
}

/* "x=1x3x48x192" -> InputShape. */
static int parse_shape(const char *s, InputShape *sh)
{
	const char *eq = strrchr(s, '=');
	if (!eq || eq == s || !eq[1])
		return 1;
	sh->name = strndup(s, (size_t)(eq - s));
	sh->rank = 0;
	for (const char *p = eq + 1;;) {
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno || v < 0 || v > (1LL << 31) || sh->rank == IR_MAXRANK)
			return 1;
		sh->dim[sh->rank++] = v;
		if (*end == 0)
			return 0;
		if (*end != 'x' && *end != 'X' && *end != ',')
			return 1;
		p = end + 1;
	}
}

/* "wbits=4" or "abits=16" of --layer into *wb / *ab; 1 if malformed. */
static int parse_layer_key(const char *s, size_t n, int *wb, int *ab)
{
	char buf[32];
	long long v;
	if (n < 7 || n >= sizeof buf || s[5] != '=')
		return 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (strncmp(buf, "wbits", 5) == 0 && !parse_int(buf + 6, 2, 8, &v))
		*wb = (int)v;
	else if (strncmp(buf, "abits", 5) == 0 && !parse_int(buf + 6, 4, 16, &v))
		*ab = (int)v;
	else
		return 1;
	return 0;
}

/* --layer NODE:wbits=N,abits=M (either key optional, at least one); 0 or
 * the exit code of a usage error. */
static int parse_layer(Cli *c, const char *v)
{
	const char *colon = strrchr(v, ':');
	int wb = 0, ab = 0;
	const char *want = "bad --layer '%s' (want NODE:wbits=N,abits=M, N in 2..8, M in 4..16)";
	if (!colon || colon == v || !colon[1])
		return bad_usage(want, v);
	for (const char *p = colon + 1;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (parse_layer_key(p, n, &wb, &ab))
			return bad_usage(want, v);
		if (!comma)
			break;
		p = comma + 1;
	}
	QuantConfig *q = &c->o.quant;
	if (q->nlayer == QC_MAXLAYER)
		return bad_usage("too many --layer options (at most %d)", QC_MAXLAYER);
	q->layer[q->nlayer].node = strndup(v, (size_t)(colon - v));
	q->layer[q->nlayer].wbits = wb;
	q->layer[q->nlayer++].abits = ab;
	return 0;
}

/* The options that tune --quant; 0 handled, 2 bad value, -1 not one of them. */
static int parse_quant_opt(Cli *c, const char *a, const char *v)
{
	long long n;
	if (strcmp(a, "--quant") == 0) {
		if (strcmp(v, "fixed") && strcmp(v, "affine"))
			return bad_usage("--quant takes 'fixed' or 'affine', not '%s'", v);
		c->o.quant.mode = strcmp(v, "fixed") == 0 ? QM_FIXED : QM_AFFINE;
		return 0;
	}
	if (strcmp(a, "--calib") == 0) {
		c->o.calib = v;
	} else if (strcmp(a, "--calib-count") == 0) {
		if (parse_int(v, 1, INT64_MAX, &n))
			return bad_usage("--calib-count takes a count >= 1, not '%s'", v);
		c->o.calib_count = n;
	} else if (strcmp(a, "--calib-scale") == 0) {
		PotcCalibScale s;
		if (potc_calib_scale_parse(v, &s))
			return bad_usage("--calib-scale takes 'unit', 'raw' or 'signed', not '%s'", v);
		c->o.calib_scale = (int)s;
	} else if (strcmp(a, "--bp") == 0) {
		if (strcmp(v, "mse") && strcmp(v, "max"))
			return bad_usage("--bp takes 'mse' or 'max', not '%s'", v);
		c->o.quant.bp_max = strcmp(v, "max") == 0;
	} else if (strcmp(a, "--wbits") == 0) {
		if (parse_int(v, 2, 8, &n))
			return bad_usage("--wbits takes 2..8, not '%s'", v);
		c->wbits = (int)n;
	} else if (strcmp(a, "--weights") == 0) {
		if (strcmp(v, "uniform") && strcmp(v, "pot") && strcmp(v, "apot"))
			return bad_usage("--weights takes 'uniform', 'pot' or 'apot', not '%s'", v);
		c->o.quant.weights = strcmp(v, "pot") == 0 ? WQ_POT : strcmp(v, "apot") == 0 ? WQ_APOT : WQ_UNIFORM;
	} else if (strcmp(a, "--abits") == 0) {
		if (parse_int(v, 4, 16, &n))
			return bad_usage("--abits takes 4..16, not '%s'", v);
		c->abits = (int)n;
	} else if (strcmp(a, "--layer") == 0) {
		if (parse_layer(c, v))
			return 2;
	} else if (strcmp(a, "--acc-bits") == 0) {
		if (parse_int(v, 12, 32, &n))
			return bad_usage("--acc-bits takes 12..32, not '%s'", v);
		c->o.quant.acc_bits = n == 32 ? 0 : (int)n;
	} else {
		return -1;
	}
	if (!c->need_quant)
		c->need_quant = a;
	return 0;
}

/* "acc-bits=12:32:2" into c->sweep; 1 if malformed or out of range. */
static int parse_sweep(Cli *c, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq)
		return 1;
	int acc = (size_t)(eq - v) == strlen("acc-bits") && strncmp(v, "acc-bits", 8) == 0;
	int wb = (size_t)(eq - v) == strlen("wbits") && strncmp(v, "wbits", 5) == 0;
	int lo, hi, step = 1, min = acc ? 12 : 2, max = acc ? 32 : 8;
	char end;
	int k = sscanf(eq + 1, "%d:%d:%d%c", &lo, &hi, &step, &end);
	if ((!acc && !wb) || (k != 2 && k != 3) || lo < min || hi > max || lo > hi || step < 1)
		return 1;
	c->sweep.key = acc ? "acc-bits" : "wbits";
	c->sweep.lo = lo;
	c->sweep.hi = hi;
	c->sweep.step = step;
	return 0;
}

/* --data, --labels, --report, --limit, --sweep; -1 if a is none of them. */
static int parse_eval_opt(Cli *c, const char *a, const char *v)
{
	long long n;
	if (strcmp(a, "--data") == 0)
		c->data = v;
	else if (strcmp(a, "--labels") == 0)
		c->labels = v;
	else if (strcmp(a, "--report") == 0)
		c->report = v;
	else if (strcmp(a, "--limit") == 0) {
		if (parse_int(v, 1, INT64_MAX, &n))
			return bad_usage("--limit takes a count >= 1, not '%s'", v);
		c->o.eval_limit = n;
	} else if (strcmp(a, "--sweep") == 0) {
		if (parse_sweep(c, v))
			return bad_usage("--sweep takes acc-bits=LO:HI[:STEP] (12..32) or wbits=LO:HI[:STEP] "
			                 "(2..8), not '%s'", v);
		c->need_quant = c->need_quant ? c->need_quant : a;
	} else
		return -1;
	if (!c->eval_only)
		c->eval_only = a;
	return 0;
}

static int parse_general_opt(Cli *c, const char *a, const char *v)
{
	if (strcmp(a, "-o") == 0) {
		if (strcmp(c->cmd, "run") == 0) {
			if (c->nout == 64)
				return bad_usage("too many outputs (at most 64)");
			c->npy_out[c->nout++] = v;
		} else if (c->o.out) {
			return bad_usage("-o given twice ('%s')", v);
		} else {
			c->o.out = v;
		}
	} else if (strcmp(a, "--name") == 0) {
		c->o.name = v;
	} else if (strcmp(a, "--driver") == 0) {
		c->o.driver = v;
	} else if (strcmp(a, "--arena") == 0) {
		if (strcmp(v, "extern") && strcmp(v, "static"))
			return bad_usage("--arena takes 'static' or 'extern', not '%s'", v);
		c->o.arena_extern = strcmp(v, "extern") == 0;
	} else if (strcmp(a, "-d") == 0) {
		c->o.dump = v;
	} else if (strcmp(a, "--const") == 0) {
		const char *eq = strchr(v, '=');
		if (!eq || eq == v || !eq[1] || c->o.nfreeze == POTC_MAXSHAPES)
			return bad_usage("bad --const '%s' (want NAME=FILE.npy)", v);
		c->o.freeze[c->o.nfreeze].name = strndup(v, (size_t)(eq - v));
		c->o.freeze[c->o.nfreeze++].path = eq + 1;
	} else if (strcmp(a, "--input-shape") == 0) {
		if (c->o.nshape == POTC_MAXSHAPES)
			return bad_usage("too many --input-shape options (at most %d)", POTC_MAXSHAPES);
		if (parse_shape(v, &c->o.shape[c->o.nshape++]))
			return bad_usage("bad --input-shape '%s' (want NAME=1x3x224x224, dims 0..2^31)", v);
	} else {
		return bad_usage("unknown option '%s'", a);
	}
	return 0;
}

static int parse_opt(Cli *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
		c->o.quant.progress = strcmp(a, "--progress") == 0;
		return 0;
	}
	if (strcmp(a, "--acc-unchecked") == 0) {
		c->o.quant.acc_unchecked = 1;
		c->need_quant = c->need_quant ? c->need_quant : a;
		return 0;
	}
	if (strcmp(a, "--keep-first-last") == 0 || strcmp(a, "--no-keep-first-last") == 0) {
		c->keep = strcmp(a, "--keep-first-last") == 0;
		c->need_quant = c->need_quant ? c->need_quant : a;
		return 0;
	}
	static const char *const takes[] = {
		"-o", "--name", "--driver", "--arena", "--input-shape", "-d", "--const",
		"--quant", "--calib", "--calib-count", "--calib-scale", "--bp", "--wbits", "--abits",
		"--weights", "--layer", "--acc-bits", "--data", "--labels", "--report", "--limit", "--sweep", NULL};
	int k = 0;
	while (takes[k] && strcmp(takes[k], a))
		k++;
	if (!takes[k])
		return bad_usage("unknown option '%s'", a);
	if (*i + 1 >= argc)
		return bad_usage("option '%s' needs a value", a);
	const char *v = argv[++*i];
	int r = parse_quant_opt(c, a, v);
	if (r < 0)
		r = parse_eval_opt(c, a, v);
	if (r < 0)
		r = parse_general_opt(c, a, v);
	return r;
}

/* What the options say together: --quant for its tuning options, the
 * eval options only for eval, the default bit widths. */
static int check(Cli *c)
{
	int eval = strcmp(c->cmd, "eval") == 0;
	if (!c->o.model)
		return bad_usage("no model given");
	if (c->need_quant && c->o.quant.mode == QM_NONE)
		return bad_usage("%s needs --quant fixed|affine", c->need_quant);
	if (c->eval_only && !eval)
		return bad_usage("%s is an option of 'potc eval'", c->eval_only);
	if (strcmp(c->cmd, "compile") == 0 && !c->o.out)
		return bad_usage("no output given: -o OUT.c");
	if (strcmp(c->cmd, "run") == 0 && (c->nin == 0 || c->nout == 0))
		return bad_usage("run needs input .npy files and -o OUT.npy for each output");
	if (eval && (!c->data || !c->labels))
		return bad_usage("eval needs --data X and --labels Y");
	if (eval && c->o.out)
		return bad_usage("eval writes no -o file (--report FILE.json writes the report)");
	if (c->o.quant.mode != QM_NONE) {
		c->o.quant.wbits = c->wbits ? c->wbits : c->o.quant.weights != WQ_UNIFORM ? 4 : 8;
		c->o.quant.abits = c->abits ? c->abits : 8;
		c->o.quant.keep_first_last = c->keep >= 0 ? c->keep : c->o.quant.weights != WQ_UNIFORM;
	}
	/* a code of 7 or 8 bits would name levels up to 2^62 (PoT) or 2^31
	 * (APoT): no int32 weight holds them */
	if (c->o.quant.weights != WQ_UNIFORM && c->o.quant.wbits > 6)
		return bad_usage("--weights %s takes --wbits 2..6, not %d",
		                 c->o.quant.weights == WQ_POT ? "pot" : "apot", c->o.quant.wbits);
	return 0;
}

static int parse(Cli *c, int argc, char **argv)
{
	static const char *const cmds[] = {"run", "info", "eval", NULL};
	int first = 1;
	c->cmd = "compile";
	c->o.quant.progress = isatty(2);
	for (int k = 0; argc > 1 && cmds[k]; k++)
		if (strcmp(argv[1], cmds[k]) == 0) {
			c->cmd = cmds[k];
			first = 2;
		}
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1]) {
			int err = parse_opt(c, argc, argv, &i);
			if (err)
				return err;
		} else if (!c->o.model) {
			c->o.model = a;
		} else if (strcmp(c->cmd, "run") == 0 && c->nin < 64) {
			c->npy_in[c->nin++] = a;
		} else {
			return bad_usage("unexpected argument '%s'", a);
		}
	}
	return check(c);
}

static int dispatch(Cli *c, Diag *d)
{
	if (strcmp(c->cmd, "info") == 0)
		return potc_cmd_info(&c->o, d);
	if (strcmp(c->cmd, "run") == 0)
		return potc_cmd_run(&c->o, c->npy_in, c->nin, c->npy_out, c->nout, d);
	if (strcmp(c->cmd, "eval") == 0 && c->sweep.key)
		return potc_cmd_sweep(&c->o, c->data, c->labels, c->sweep.key, c->sweep.lo, c->sweep.hi,
		                      c->sweep.step, d);
	if (strcmp(c->cmd, "eval") == 0)
		return potc_cmd_eval(&c->o, c->data, c->labels, c->report, d);
	return potc_compile(&c->o, d);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("potc %s\n", POTC_VERSION);
			return 0;
		}
	}
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	static Cli c;
	c.keep = -1;
	int err = parse(&c, argc, argv);
	if (!err) {
		Diag d;
		diag_init(&d);
		err = dispatch(&c, &d) ? 1 : 0;
	}
	for (int i = 0; i < c.o.nshape; i++)
		free((void *)c.o.shape[i].name);
	for (int i = 0; i < c.o.nfreeze; i++)
		free((void *)c.o.freeze[i].name);
	for (int i = 0; i < c.o.quant.nlayer; i++)
		free((void *)c.o.quant.layer[i].node);
	return err;
}
