/* potc/calib_data.c: calibration samples from .npy, TensorProto .pb
 * directories and IDX files (tests/calib/, written by make_fixtures.py),
 * shape matching, scaling, --calib-count, and one clean error line for
 * every broken file, truncated or corrupted at any byte. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_data.h"

#define FIX SOURCE_DIR "/tests/calib/"

static const int64_t nchw[] = {1, 1, 5, 5}, nhwc[] = {1, 5, 5, 1}, flat[] = {1, 25};

static Diag diag;

static int load(const char *path, int rank, const int64_t *dim, int64_t max, PotcCalibScale s, PotcCalib *c)
{
	diag_init(&diag);
	diag.quiet = 1;
	return potc_calib_load(path, DT_F32, rank, dim, max, s, c, &diag);
}

/* Sample k of the float fixtures: element i is k + i/100 (as float32). */
static void expect_float_sample(const PotcCalib *c, int64_t at, int k)
{
	for (int i = 0; i < 25; i++)
		if (c->data[at * 25 + i] != (float)(k + i / 100.0))
			fail_msg("sample %lld element %d: %g, want %g", (long long)at, i, c->data[at * 25 + i],
			         (float)(k + i / 100.0));
}

/* Sample k of the uint8 fixtures: (40k + i) mod 256, scaled. */
static void expect_u8_sample(const PotcCalib *c, int64_t at, int k, PotcCalibScale s)
{
	for (int i = 0; i < 25; i++) {
		double x = (40 * k + i) % 256;
		float want = (float)(s == POTC_CALIB_UNIT ? x / 255.0 : s == POTC_CALIB_SIGNED ? x / 127.5 - 1.0 : x);
		assert_true(c->data[at * 25 + i] == want);
	}
}

/* Loading path fails with one line that starts with the path and holds msg. */
static void expect_error(const char *path, int rank, const int64_t *dim, const char *msg)
{
	PotcCalib c;
	assert_int_equal(load(path, rank, dim, 0, POTC_CALIB_UNIT, &c), 1);
	assert_int_equal(diag.nerr, 1);
	assert_null(c.data);
	assert_int_equal(c.n, 0);
	if (strncmp(diag.last, path, strlen(path)) != 0 || !strstr(diag.last, msg) || strchr(diag.last, '\n'))
		fail_msg("%s: got \"%s\", want the path and \"%s\"", path, diag.last, msg);
}

static void test_npy(void **state)
{
	(void)state;
	PotcCalib c;
	assert_int_equal(load(FIX "f32_n4.npy", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.per_sample, 25);
	for (int k = 0; k < 4; k++)
		expect_float_sample(&c, k, k);
	assert_non_null(strstr(c.desc, "npy float32 [4,1,1,5,5]"));
	potc_calib_free(&c);

	/* --calib-count */
	assert_int_equal(load(FIX "f32_n4.npy", 4, nchw, 2, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 2);
	expect_float_sample(&c, 1, 1);
	potc_calib_free(&c);
	assert_int_equal(load(FIX "f32_n4.npy", 4, nchw, 100, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 4);
	potc_calib_free(&c);

	/* float64 [3,5,5] feeds NCHW and NHWC inputs alike (only 1s differ) */
	assert_int_equal(load(FIX "f64_n3.npy", 4, nhwc, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 3);
	expect_float_sample(&c, 2, 2);
	potc_calib_free(&c);

	/* exactly one sample without the batch dim */
	assert_int_equal(load(FIX "one_f32.npy", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 1);
	expect_float_sample(&c, 0, 0);
	potc_calib_free(&c);

	/* int64 data is taken as its values, never scaled; [2,25] by the batch rule */
	assert_int_equal(load(FIX "i64_n2.npy", 2, flat, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 2);
	for (int i = 0; i < 25; i++)
		assert_true(c.data[25 + i] == 1.0f);
	potc_calib_free(&c);
}

static void test_npy_u8_scales(void **state)
{
	(void)state;
	PotcCalib c;
	for (int s = POTC_CALIB_UNIT; s <= POTC_CALIB_SIGNED; s++) {
		assert_int_equal(load(FIX "u8_n2.npy", 4, nchw, 0, (PotcCalibScale)s, &c), 0);
		assert_int_equal(c.n, 2);
		expect_u8_sample(&c, 0, 0, (PotcCalibScale)s);
		expect_u8_sample(&c, 1, 1, (PotcCalibScale)s);
		potc_calib_free(&c);
	}
	/* an integer model input takes the raw values */
	diag_init(&diag);
	diag.quiet = 1;
	assert_int_equal(potc_calib_load(FIX "u8_n2.npy", DT_U8, 4, nchw, 0, POTC_CALIB_UNIT, &c, &diag), 0);
	expect_u8_sample(&c, 1, 1, POTC_CALIB_RAW);
	potc_calib_free(&c);

	PotcCalibScale s;
	assert_int_equal(potc_calib_scale_parse("signed", &s), 0);
	assert_int_equal(s, POTC_CALIB_SIGNED);
	assert_int_equal(potc_calib_scale_parse("unit", &s), 0);
	assert_int_equal(s, POTC_CALIB_UNIT);
	assert_int_equal(potc_calib_scale_parse("raw", &s), 0);
	assert_int_equal(s, POTC_CALIB_RAW);
	assert_int_equal(potc_calib_scale_parse("255", &s), 1);
	assert_string_equal(potc_calib_scale_name(POTC_CALIB_SIGNED), "signed");
}

static void test_npy_errors(void **state)
{
	(void)state;
	expect_error(FIX "zero_f32.npy", 4, nchw, "holds no samples");
	expect_error(FIX "wrong_shape.npy", 4, nchw, "shape [2,7] fits no sample of the model input [1,1,5,5]");
	expect_error(FIX "layout_f32.npy", 4, (const int64_t[]){1, 3, 5, 5}, "fits no sample");
	expect_error(FIX "f64_n3.npy", 2, flat, "fits no sample");
	expect_error(FIX "nan_f32.npy", 4, nchw, "sample 1 holds NaN or infinity");
	expect_error(FIX "trunc.npy", 4, nchw, "truncated .npy data");
	expect_error(FIX "bad_magic.npy", 4, nchw, "not a .npy, IDX or TensorProto .pb file");
	expect_error(FIX "no_such_file.npy", 4, nchw, "cannot open");
	expect_error(FIX "f32_n4.npy", 4, (const int64_t[]){1, 1, -1, 5}, "not static");

	PotcCalib c;
	diag_init(&diag);
	diag.quiet = 1;
	assert_int_equal(potc_calib_load(FIX "f32_n4.npy", DT_I64, 4, nchw, 0, POTC_CALIB_UNIT, &c, &diag), 1);
	assert_non_null(strstr(diag.last, "<f4 data cannot feed the i64 model input"));
}

static void test_pb_dir(void **state)
{
	(void)state;
	PotcCalib c;
	/* natural order: input_0, input_1, input_2, input_10 (uint8, scaled) */
	assert_int_equal(load(FIX "pbdir", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 4);
	for (int k = 0; k < 3; k++)
		expect_float_sample(&c, k, k);
	expect_u8_sample(&c, 3, 0, POTC_CALIB_UNIT);
	assert_non_null(strstr(c.desc, "4 of 4 .pb files"));
	potc_calib_free(&c);

	assert_int_equal(load(FIX "pbdir", 4, nhwc, 2, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 2);
	potc_calib_free(&c);

	/* one .pb file alone; input_2 is hand-made: unpacked dims and
	 * float_data, unknown fields of wire types 0, 1, 2 and 5 */
	assert_int_equal(load(FIX "pbdir/input_2.pb", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 1);
	expect_float_sample(&c, 0, 2);
	potc_calib_free(&c);
	assert_int_equal(load(FIX "pbdir/input_1.pb", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	expect_float_sample(&c, 0, 1);
	potc_calib_free(&c);
}

static void test_pb_errors(void **state)
{
	(void)state;
	expect_error(FIX "pbbad/trunc.pb", 4, nchw, "truncated or malformed TensorProto (field 9)");
	expect_error(FIX "pbbad/wiretype.pb", 4, nchw, "field 5 has wire type 3");
	expect_error(FIX "pbbad/shape.pb", 4, nchw, "shape [24] fits no sample");
	expect_error(FIX "pbbad/mismatch.pb", 4, nchw, "float_data holds 24 values, dims [1,25]");
	expect_error(FIX "pbbad/float16.pb", 4, nchw, "data_type 10 is not supported");
	expect_error(FIX "pbbad/nodata.pb", 4, nchw, "no data");
	/* the broken second file of a directory is named */
	expect_error(FIX "pbdir_bad/b.pb", 4, nchw, "TensorProto");
	PotcCalib c;
	assert_int_equal(load(FIX "pbdir_bad", 4, nchw, 0, POTC_CALIB_UNIT, &c), 1);
	assert_int_equal(diag.nerr, 1);
	assert_non_null(strstr(diag.last, "pbdir_bad/b.pb: error: "));
	/* the first file alone is enough with --calib-count 1 */
	assert_int_equal(load(FIX "pbdir_bad", 4, nchw, 1, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 1);
	potc_calib_free(&c);

	char dir[128];
	snprintf(dir, sizeof dir, "/tmp/potc_calib_empty_%ld", (long)getpid());
	mkdir(dir, 0700);
	expect_error(dir, 4, nchw, "no .pb files in the directory");
	rmdir(dir);
}

static void test_idx(void **state)
{
	(void)state;
	PotcCalib c;
	const int64_t *shapes[] = {nchw, nhwc, flat};
	const int ranks[] = {4, 4, 2};
	for (int i = 0; i < 3; i++)
		for (int s = POTC_CALIB_UNIT; s <= POTC_CALIB_SIGNED; s++) {
			assert_int_equal(load(FIX "imgs_u8.idx", ranks[i], shapes[i], 0, (PotcCalibScale)s, &c), 0);
			assert_int_equal(c.n, 3);
			for (int k = 0; k < 3; k++)
				expect_u8_sample(&c, k, k, (PotcCalibScale)s);
			potc_calib_free(&c);
		}
	assert_int_equal(load(FIX "imgs_u8.idx", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_string_equal(c.desc, "IDX uint8 [3,5,5], scale unit");
	potc_calib_free(&c);

	/* big-endian float32 elements */
	assert_int_equal(load(FIX "f32_2x25.idx", 4, nchw, 0, POTC_CALIB_UNIT, &c), 0);
	assert_int_equal(c.n, 2);
	expect_float_sample(&c, 1, 1);
	potc_calib_free(&c);

	/* labels: one value per sample fits a scalar-per-sample input only */
	assert_int_equal(load(FIX "labels.idx", 1, (const int64_t[]){1}, 0, POTC_CALIB_RAW, &c), 0);
	assert_int_equal(c.n, 3);
	assert_true(c.data[2] == 4.0f);
	potc_calib_free(&c);

	/* gzip: read when built with zlib, else a clear request to gunzip */
	int r = load(FIX "imgs_u8.idx.gz", 4, nchw, 2, POTC_CALIB_UNIT, &c);
	if (r == 0) {
		assert_int_equal(c.n, 2);
		expect_u8_sample(&c, 1, 1, POTC_CALIB_UNIT);
		potc_calib_free(&c);
		expect_error(FIX "trunc.idx.gz", 4, nchw, "corrupt or truncated gzip data");
		print_message("gzip: read through zlib\n");
	} else {
		assert_non_null(strstr(diag.last, "gunzip it first"));
		expect_error(FIX "trunc.idx.gz", 4, nchw, "gunzip it first");
		print_message("gzip: built without zlib, asks to gunzip\n");
	}
}

static void test_idx_errors(void **state)
{
	(void)state;
	expect_error(FIX "labels.idx", 4, nchw, "shape [3] fits no sample of the model input [1,1,5,5] (25 elements each)");
	expect_error(FIX "zero.idx", 4, nchw, "holds no samples");
	expect_error(FIX "trunc.idx", 4, nchw, "truncated IDX data: 74 bytes, the header promises 75");
	expect_error(FIX "trunc_head.idx", 4, nchw, "truncated IDX header");
	expect_error(FIX "trailing.idx", 4, nchw, "2 bytes after its data");
	expect_error(FIX "badtype.idx", 4, nchw, "unsupported IDX element type 0x07");
}

/* Every prefix and many single-byte corruptions of every good fixture load
 * or fail with exactly one error line; none crashes (ASan/UBSan builds). */
static void mangle(const char *src, const char *ext, int rank, const int64_t *dim)
{
	char path[160];
	FILE *f = fopen(src, "rb");
	unsigned char buf[4096];
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	snprintf(path, sizeof path, "/tmp/potc_calib_mangle_%ld%s", (long)getpid(), ext);
	uint32_t seed = 12345;
	for (size_t k = 0; k <= n + 300; k++) {
		unsigned char tmp[4096];
		size_t len = k <= n ? k : n;
		memcpy(tmp, buf, n);
		if (k > n) {
			seed = seed * 1103515245 + 12345;
			tmp[(seed >> 8) % n] ^= (unsigned char)(1 + (seed >> 20) % 255);
		}
		remove(path);   /* ext4 flushes a file truncated and rewritten: slow */
		f = fopen(path, "wb");
		assert_non_null(f);
		fwrite(tmp, 1, len, f);
		fclose(f);
		PotcCalib c;
		int r = load(path, rank, dim, 0, POTC_CALIB_UNIT, &c);
		assert_int_equal(diag.nerr, r);
		if (r)
			assert_null(c.data);
		else
			assert_true(c.n >= 1);
		potc_calib_free(&c);
	}
	remove(path);
}

static void test_mangled(void **state)
{
	(void)state;
	mangle(FIX "f32_n4.npy", ".npy", 4, nchw);
	mangle(FIX "u8_n2.npy", ".npy", 4, nchw);
	mangle(FIX "imgs_u8.idx", ".idx", 4, nchw);
	mangle(FIX "imgs_u8.idx.gz", ".idx.gz", 4, nchw);
	mangle(FIX "f32_2x25.idx", ".idx", 2, flat);
	mangle(FIX "pbdir/input_0.pb", ".pb", 4, nchw);
	mangle(FIX "pbdir/input_1.pb", ".pb", 4, nchw);
	mangle(FIX "pbdir/input_2.pb", ".pb", 4, nchw);
	mangle(FIX "pbdir/input_10.pb", ".pb", 4, nchw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_npy),
		cmocka_unit_test(test_npy_u8_scales),
		cmocka_unit_test(test_npy_errors),
		cmocka_unit_test(test_pb_dir),
		cmocka_unit_test(test_pb_errors),
		cmocka_unit_test(test_idx),
		cmocka_unit_test(test_idx_errors),
		cmocka_unit_test(test_mangled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
