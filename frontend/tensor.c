/* Tensors of an ONNX graph: element types, initializers, Constant nodes and
 * graph inputs (with the user's --input-shape bindings). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "onnx_impl.h"

/* potc is for edge devices: a tensor past 2^31 elements is a corrupt model
 * (and would overflow the int sizes of generated code). */
#define MAX_NUMEL ((int64_t)INT32_MAX)

typedef Onnx__TensorProto__DataType OnnxType;

static const char *type_name(int t)
{
	static const char *const names[] = {
		"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
		"string", "bool", "float16", "double", "uint32", "uint64", "complex64",
		"complex128", "bfloat16"};
	return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

/* ONNX element type -> DType; reports and returns DT_UNDEF if potc has none.
 * what names the owner in the message ("tensor 'w'"). */
DType onnx_dtype(Loader *L, int ni, const char *what, int t)
{
	switch ((OnnxType)t) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return DT_F32;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return DT_F64;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return DT_I8;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return DT_U8;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return DT_I16;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return DT_U16;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return DT_I32;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return DT_U32;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return DT_I64;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return DT_BOOL;
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
		onnx_err(L, ni, "%s is %s; potc supports float32 models (convert it to float32)",
		         what, type_name(t));
		return DT_UNDEF;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED:
		onnx_err(L, ni, "%s has no element type", what);
		return DT_UNDEF;
	default:
		if (t > 0 && t <= ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16)
			onnx_err(L, ni, "%s is %s, which potc does not support", what, type_name(t));
		else
			onnx_err(L, ni, "%s has unknown element type %d", what, t);
		return DT_UNDEF;
	}
}

/* "[2,3,4]" into buf. */
static const char *dims_str(char *buf, size_t size, const int64_t *dim, size_t n)
{
	size_t k = 0;
	buf[k++] = '[';
	for (size_t i = 0; i < n && k + 24 < size; i++)
		k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)dim[i]);
	snprintf(buf + k, size - k, "]");
	return buf;
}

/* Rank, sign and size of dims; *numel is their product. */
static int check_dims(Loader *L, int ni, const char *what, const int64_t *dim, size_t n,
                      int64_t *numel)
{
	if (n > IR_MAXRANK) {
		onnx_err(L, ni, "%s has rank %zu; potc supports at most %d", what, n, IR_MAXRANK);
		return 1;
	}
	*numel = 1;
	for (size_t i = 0; i < n; i++)
		if (dim[i] < 0) {
			onnx_err(L, ni, "%s has a negative dim (%lld)", what, (long long)dim[i]);
			return 1;
		}
	for (size_t i = 0; i < n; i++) {
		if (dim[i] && *numel > MAX_NUMEL / dim[i]) {
			char buf[256];
			onnx_err(L, ni, "%s dims %s exceed potc's limit of %lld elements", what,
			         dims_str(buf, sizeof buf, dim, n), (long long)MAX_NUMEL);
			return 1;
		}
		*numel *= dim[i];
	}
	return 0;
}

static int host_big_endian(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 0;
}

/* raw_data is little-endian whatever the host; copying also fixes its
 * alignment (protobuf-c gives no alignment guarantee for bytes fields). */
static void copy_raw(unsigned char *dst, const unsigned char *src, size_t n, size_t esz)
{
	memcpy(dst, src, n * esz);
	if (esz == 1 || !host_big_endian())
		return;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < esz / 2; j++) {
			unsigned char c = dst[i * esz + j];
			dst[i * esz + j] = dst[i * esz + esz - 1 - j];
			dst[i * esz + esz - 1 - j] = c;
		}
}

/* Number of values in the typed field ONNX uses for dtype dt. */
static size_t typed_count(const Onnx__TensorProto *tp, DType dt)
{
	switch (dt) {
	case DT_F32: return tp->n_float_data;
	case DT_F64: return tp->n_double_data;
	case DT_I64: return tp->n_int64_data;
	case DT_U32: return tp->n_uint64_data;
	default: return tp->n_int32_data; /* int8..int32, uint8, uint16, bool */
	}
}

static void copy_typed(void *dst, const Onnx__TensorProto *tp, DType dt, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (dt) {
		case DT_F32: ((float *)dst)[i] = tp->float_data[i]; break;
		case DT_F64: ((double *)dst)[i] = tp->double_data[i]; break;
		case DT_I64: ((int64_t *)dst)[i] = tp->int64_data[i]; break;
		case DT_U32: ((uint32_t *)dst)[i] = (uint32_t)tp->uint64_data[i]; break;
		case DT_I32: ((int32_t *)dst)[i] = tp->int32_data[i]; break;
		case DT_I16: ((int16_t *)dst)[i] = (int16_t)tp->int32_data[i]; break;
		case DT_U16: ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i]; break;
		case DT_I8: ((int8_t *)dst)[i] = (int8_t)tp->int32_data[i]; break;
		case DT_U8: ((uint8_t *)dst)[i] = (uint8_t)tp->int32_data[i]; break;
		case DT_BOOL: ((uint8_t *)dst)[i] = tp->int32_data[i] != 0; break;
		default: break;
		}
	}
}

/* Where the bytes are: refuse what potc cannot read. */
static int check_storage(Loader *L, int ni, const char *what, const Onnx__TensorProto *tp)
{
	if ((tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
	    || tp->n_external_data) {
		onnx_err(L, ni, "%s stores its data in an external file; potc needs it embedded "
		         "(save the model with all tensors inside)", what);
		return 1;
	}
	if (tp->segment) {
		onnx_err(L, ni, "%s is split into segments; potc needs it whole", what);
		return 1;
	}
	return 0;
}

/* The data must match the dims before anything is allocated: a corrupt
 * tensor claiming 2^31 doubles must not make potc ask for 16 GiB. */
static int check_data(Loader *L, int ni, const char *what, const Onnx__TensorProto *tp, DType dt,
                      int64_t numel)
{
	size_t n = (size_t)numel, esz = ir_dtype_size(dt);
	char buf[256];
	dims_str(buf, sizeof buf, tp->dims, tp->n_dims);
	if (tp->has_raw_data && tp->raw_data.len != n * esz) {
		onnx_err(L, ni, "%s has %zu bytes of data but its dims %s of %s need %zu", what,
		         tp->raw_data.len, buf, ir_dtype_name(dt), n * esz);
		return 1;
	}
	if (!tp->has_raw_data && typed_count(tp, dt) != n) {
		onnx_err(L, ni, "%s has %zu values but its dims %s need %zu", what, typed_count(tp, dt),
		         buf, n);
		return 1;
	}
	return 0;
}

static void fill_data(const Onnx__TensorProto *tp, Tensor *t)
{
	size_t n = (size_t)ir_numel(t), esz = ir_dtype_size(t->dtype);
	if (!tp->has_raw_data) {
		copy_typed(t->data, tp, t->dtype, n);
		return;
	}
	if (n)
		copy_raw(t->data, tp->raw_data.data, n, esz);
	if (t->dtype == DT_BOOL) /* the IR promises 0 or 1 */
		for (size_t i = 0; i < n; i++)
			((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
}

/* A constant tensor from a TensorProto (initializer or Constant value);
 * its id, or -1 after an error. */
int onnx_tensor_const(Loader *L, int ni, const char *name, const Onnx__TensorProto *tp)
{
	char what[300];
	snprintf(what, sizeof what, "tensor '%s'", name);
	int64_t numel;
	if (check_storage(L, ni, what, tp) || check_dims(L, ni, what, tp->dims, tp->n_dims, &numel))
		return -1;
	if (!tp->has_data_type) {
		onnx_err(L, ni, "%s has no element type", what);
		return -1;
	}
	DType dt = onnx_dtype(L, ni, what, tp->data_type);
	if (dt == DT_UNDEF || check_data(L, ni, what, tp, dt, numel))
		return -1;
	/* Data is written in place: no second copy of the weights in the arena. */
	int id = ir_const_new(L->g, name, dt, (int)tp->n_dims, tp->dims, NULL);
	fill_data(tp, &L->g->tensor[id]);
	return id;
}

/* Registers tensor id under its name; reports a clash. */
static int define(Loader *L, int ni, int id, const char *kind)
{
	const char *name = L->g->tensor[id].name;
	if (onnx_names_put(&L->names, name, id) < 0)
		return 0;
	onnx_err(L, ni, "%s '%s' is already defined (by an initializer, input or node)", kind, name);
	return 1;
}

int onnx_initializers(Loader *L)
{
	const Onnx__GraphProto *gp = L->gp;
	int bad = 0;
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const char *name = onnx_str(gp->initializer[i]->name);
		if (!*name) {
			onnx_err(L, -1, "initializer %zu has no name", i);
			bad = 1;
			continue;
		}
		int id = onnx_tensor_const(L, -1, name, gp->initializer[i]);
		bad |= id < 0 || define(L, -1, id, "initializer");
	}
	for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
		const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
		onnx_err(L, -1, "initializer '%s' is sparse; potc needs dense tensors",
		         sp->values ? onnx_str(sp->values->name) : "");
		bad = 1;
	}
	return bad;
}

/* ---- Constant nodes ---- */

static int attr_is(const Onnx__AttributeProto *a, Onnx__AttributeProto__AttributeType t)
{
	return !a->has_type || a->type == t;
}

/* The value of a Constant node as a TensorProto-free constant. */
static int constant_value(Loader *L, int ni, const char *name, const Onnx__AttributeProto *a)
{
	const char *an = onnx_str(a->name);
	int64_t n;
	if (!strcmp(an, "value") && a->t && attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR))
		return onnx_tensor_const(L, ni, name, a->t);
	if (!strcmp(an, "value_float") && attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
		return ir_const_new(L->g, name, DT_F32, 0, NULL, &a->f);
	if (!strcmp(an, "value_int") && attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
		return ir_const_new(L->g, name, DT_I64, 0, NULL, &a->i);
	if (!strcmp(an, "value_floats") && attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS)) {
		n = (int64_t)a->n_floats;
		return ir_const_new(L->g, name, DT_F32, 1, &n, a->floats);
	}
	if (!strcmp(an, "value_ints") && attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)) {
		n = (int64_t)a->n_ints;
		return ir_const_new(L->g, name, DT_I64, 1, &n, a->ints);
	}
	if (!strcmp(an, "value_string") || !strcmp(an, "value_strings"))
		onnx_err(L, ni, "string constants are not supported");
	else if (!strcmp(an, "sparse_value"))
		onnx_err(L, ni, "sparse constants are not supported; potc needs dense tensors");
	else
		onnx_err(L, ni, "attribute '%s' is not a valid Constant value", an);
	return -1;
}

static int constant_node(Loader *L, int ni)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	if (np->n_output != 1 || !*onnx_str(np->output[0]) || np->n_input != 0) {
		onnx_err(L, ni, "a Constant needs no inputs and one named output");
		return 1;
	}
	if (np->n_attribute != 1) {
		onnx_err(L, ni, "a Constant needs exactly one value attribute, it has %zu",
		         np->n_attribute);
		return 1;
	}
	int id = constant_value(L, ni, np->output[0], np->attribute[0]);
	return id < 0 || define(L, ni, id, "output");
}

/* Constant nodes become constant tensors before any other node is built,
 * so attribute parsing can read them whatever the node order. */
int onnx_constant_nodes(Loader *L)
{
	int bad = 0;
	for (size_t i = 0; i < L->gp->n_node; i++)
		if (L->op[i] == OP_CONSTANT)
			bad |= constant_node(L, (int)i);
	return bad;
}

int onnx_const_i64(Loader *L, const char *name, const int64_t *v, int n)
{
	int64_t dim = n;
	return ir_const_new(L->g, name, DT_I64, 1, &dim, v);
}

int onnx_const_f32(Loader *L, const char *name, float v)
{
	return ir_const_new(L->g, name, DT_F32, 0, NULL, &v);
}

/* ---- graph inputs ---- */

/* "x=1x3x<height>x<width>": the binding the user should write. */
static void suggest(char *buf, size_t size, const char *name, const Onnx__TensorShapeProto *sh)
{
	size_t k = (size_t)snprintf(buf, size, "%s=", name);
	for (size_t i = 0; i < sh->n_dim && k < size; i++) {
		const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
		const char *sep = i ? "x" : "";
		if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
			k += (size_t)snprintf(buf + k, size - k, "%s%lld", sep, (long long)d->dim_value);
		else if (i == 0)
			k += (size_t)snprintf(buf + k, size - k, "1");
		else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && *onnx_str(d->dim_param))
			k += (size_t)snprintf(buf + k, size - k, "%s<%s>", sep, d->dim_param);
		else
			k += (size_t)snprintf(buf + k, size - k, "%s<d%zu>", sep, i);
	}
}

/* Dim i of input name: the model's value, the user's binding, or 1 for an
 * unbound leading (batch) dim.  -1 after an error. */
static int64_t input_dim(Loader *L, const char *name, const Onnx__TensorShapeProto *sh, size_t i,
                         const InputShape *bind)
{
	const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
	if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
		if (d->dim_value < 0) {
			onnx_err(L, -1, "input '%s' dim %zu is negative (%lld)", name, i, (long long)d->dim_value);
			return -1;
		}
		if (bind && bind->dim[i] != d->dim_value) {
			onnx_err(L, -1, "input '%s' dim %zu is %lld in the model, --input-shape gives %lld",
			         name, i, (long long)d->dim_value, (long long)bind->dim[i]);
			return -1;
		}
		return d->dim_value;
	}
	if (bind)
		return bind->dim[i];
	if (i == 0)
		return 1;
	char buf[256];
	suggest(buf, sizeof buf, name, sh);
	const char *param = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
	                    ? onnx_str(d->dim_param) : "";
	if (*param)
		onnx_err(L, -1, "input '%s' dim %zu ('%s') is not fixed; pass --input-shape %s",
		         name, i, param, buf);
	else
		onnx_err(L, -1, "input '%s' dim %zu is not fixed; pass --input-shape %s", name, i, buf);
	return -1;
}

/* Rank and dims of a graph input from its declared type and binding. */
static int input_shape(Loader *L, const char *name, const Onnx__TypeProto__Tensor *tt,
                       const InputShape *bind, int *rank, int64_t *dim)
{
	const Onnx__TensorShapeProto *sh = tt->shape;
	if (!sh) {
		if (!bind) {
			onnx_err(L, -1, "input '%s' has no shape in the model; pass --input-shape %s=<dims>",
			         name, name);
			return 1;
		}
		*rank = bind->rank;
		memcpy(dim, bind->dim, sizeof(int64_t) * (size_t)bind->rank);
		return 0;
	}
	if (sh->n_dim > IR_MAXRANK) {
		onnx_err(L, -1, "input '%s' has rank %zu; potc supports at most %d", name, sh->n_dim, IR_MAXRANK);
		return 1;
	}
	if (bind && (size_t)bind->rank != sh->n_dim) {
		onnx_err(L, -1, "--input-shape %s has %d dims but input '%s' has rank %zu",
		         name, bind->rank, name, sh->n_dim);
		return 1;
	}
	*rank = (int)sh->n_dim;
	for (size_t i = 0; i < sh->n_dim; i++)
		if ((dim[i] = input_dim(L, name, sh, i, bind)) < 0)
			return 1;
	return 0;
}

static const InputShape *binding(const InputShape *s, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (s[i].name && !strcmp(s[i].name, name))
			return &s[i];
	return NULL;
}

static int add_input(Loader *L, const Onnx__ValueInfoProto *vi, const InputShape *s, int ns)
{
	const char *name = onnx_str(vi->name);
	const Onnx__TypeProto *tp = vi->type;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
		onnx_err(L, -1, "input '%s' is not a tensor; potc supports tensor inputs only", name);
		return 1;
	}
	char what[300];
	snprintf(what, sizeof what, "input '%s'", name);
	DType dt = onnx_dtype(L, -1, what, tp->tensor_type->elem_type);
	int rank = 0;
	int64_t dim[IR_MAXRANK], numel;
	if (dt == DT_UNDEF || input_shape(L, name, tp->tensor_type, binding(s, ns, name), &rank, dim)
	    || check_dims(L, -1, what, dim, (size_t)rank, &numel))
		return 1;
	int id = ir_tensor_new(L->g, name, dt, rank, dim);
	L->g->tensor[id].kind = TK_INPUT;
	L->g->input[L->g->ninput++] = id;
	return define(L, -1, id, "input");
}

/* Every binding must name a real input and have a sane shape. */
static int check_bindings(Loader *L, const InputShape *s, int ns)
{
	int bad = 0;
	for (int i = 0; i < ns; i++) {
		const char *name = onnx_str(s[i].name);
		int id = onnx_names_get(&L->names, name);
		if (id < 0 || L->g->tensor[id].kind != TK_INPUT) {
			onnx_err(L, -1, "--input-shape names '%s', which is not an input of the model", name);
			bad = 1;
		} else if (binding(s, ns, name) != &s[i]) {
			onnx_err(L, -1, "--input-shape gives '%s' twice", name);
			bad = 1;
		}
	}
	return bad;
}

static int valid_binding(const InputShape *s)
{
	if (s->rank < 0 || s->rank > IR_MAXRANK)
		return 0;
	for (int i = 0; i < s->rank; i++)
		if (s->dim[i] < 0)
			return 0;
	return 1;
}

/* Graph inputs that are also initializers (older exporters list every
 * weight as an input) stay constants. */
int onnx_inputs(Loader *L, const InputShape *s, int ns)
{
	const Onnx__GraphProto *gp = L->gp;
	int bad = 0;
	for (int i = 0; i < ns; i++)
		if (!valid_binding(&s[i])) {
			onnx_err(L, -1, "--input-shape %s has a bad shape", onnx_str(s[i].name));
			return 1;
		}
	L->g->input = arena_alloc(L->g->arena, sizeof(int) * (gp->n_input + 1));
	for (size_t i = 0; i < gp->n_input; i++) {
		const char *name = onnx_str(gp->input[i]->name);
		int id = onnx_names_get(&L->names, name);
		if (!*name) {
			onnx_err(L, -1, "graph input %zu has no name", i);
			bad = 1;
		} else if (id < 0) {
			bad |= add_input(L, gp->input[i], s, ns);
		} else if (L->g->tensor[id].kind != TK_CONST) {
			onnx_err(L, -1, "graph input '%s' is listed twice", name);
			bad = 1;
		}
	}
	return bad || check_bindings(L, s, ns);
}
