/* The potc command line: compile, run, info.  Exit 0 on success, 1 for a
 * bad model or input, 2 for bad usage. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "potc.h"

#ifndef POTC_VERSION
#define POTC_VERSION "dev"
#endif

static const char usage[] =
	"usage: potc MODEL.onnx -o OUT.c [options]      compile to C (OUT.c + OUT.h)\n"
	"       potc run MODEL.onnx IN.npy... -o OUT.npy...  run the reference evaluator\n"
	"       potc info MODEL.onnx                      inputs, outputs, ops, size, MACs\n"
	"\n"
	"options:\n"
	"  -o FILE                 output .c (compile) or .npy (run; once per output)\n"
	"  --name NAME             symbol prefix in the generated code (default: OUT's stem)\n"
	"  --driver MAIN.c         also write a main() that runs the model on .npy files\n"
	"  --arena static|extern   static arena (default) or one the caller passes to NAME_run\n"
	"  --input-shape NAME=DIMS bind an input's dims, e.g. x=1x3x48x192 (repeatable)\n"
	"  --const NAME=FILE.npy   make input NAME a constant with this data (repeatable)\n"
	"  -d PASS[,PASS...]|all   dump the IR after these passes to stderr\n"
	"                          (import, fold, bnfold, views, dce, fuse, memplan)\n"
	"  --help, --version\n";

typedef struct {
	PotcOptions o;
	const char *cmd;           /* "compile", "run", "info" */
	const char *npy_in[64];
	int nin;
	const char *npy_out[64];
	int nout;
} Cli;

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "potc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(potc --help for usage)\n");
	return 2;
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

static int parse_opt(Cli *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	int takes = strcmp(a, "-o") == 0 || strcmp(a, "--name") == 0 || strcmp(a, "--driver") == 0 ||
	            strcmp(a, "--arena") == 0 || strcmp(a, "--input-shape") == 0 || strcmp(a, "-d") == 0 ||
	            strcmp(a, "--const") == 0;
	if (!takes)
		return bad_usage("unknown option '%s'", a);
	if (!v)
		return bad_usage("option '%s' needs a value", a);
	++*i;
	if (strcmp(a, "-o") == 0) {
		if (strcmp(c->cmd, "run") == 0) {
			if (c->nout == 64)
				return bad_usage("too many outputs%s", "");
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
	} else {
		if (c->o.nshape == POTC_MAXSHAPES)
			return bad_usage("too many --input-shape options%s", "");
		if (parse_shape(v, &c->o.shape[c->o.nshape++]))
			return bad_usage("bad --input-shape '%s' (want NAME=1x3x224x224, dims 0..2^31)", v);
	}
	return 0;
}

static int parse(Cli *c, int argc, char **argv)
{
	int first = 1;
	c->cmd = "compile";
	if (argc > 1 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "info") == 0)) {
		c->cmd = argv[1];
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
	if (!c->o.model)
		return bad_usage("no model given%s", "");
	if (strcmp(c->cmd, "compile") == 0 && !c->o.out)
		return bad_usage("no output given: -o OUT.c%s", "");
	if (strcmp(c->cmd, "run") == 0 && (c->nin == 0 || c->nout == 0))
		return bad_usage("run needs input .npy files and -o OUT.npy for each output%s", "");
	return 0;
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
	int err = parse(&c, argc, argv);
	if (err)
		return err;
	Diag d;
	diag_init(&d);
	if (strcmp(c.cmd, "info") == 0)
		err = potc_cmd_info(&c.o, &d);
	else if (strcmp(c.cmd, "run") == 0)
		err = potc_cmd_run(&c.o, c.npy_in, c.nin, c.npy_out, c.nout, &d);
	else
		err = potc_compile(&c.o, &d);
	for (int i = 0; i < c.o.nshape; i++)
		free((void *)c.o.shape[i].name);
	for (int i = 0; i < c.o.nfreeze; i++)
		free((void *)c.o.freeze[i].name);
	return err ? 1 : 0;
}
