/* runtime/embed/npy_io.c on its own: round trips of every element type and
 * rank, headers numpy writes, and rejection of bad or truncated files. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "npy_io.c"

static char tmp[256];

static const char *tmpfile_name(const char *stem)
{
	snprintf(tmp, sizeof tmp, "/tmp/potc_test_npy_%ld_%s.npy", (long)getpid(), stem);
	return tmp;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* A .npy image with a hand-written header (padding as numpy does). */
static size_t image(unsigned char *buf, int major, const char *dict, const void *data, size_t n)
{
	size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
	size_t total = pre + hl + 1, pad = (64 - total % 64) % 64, len = hl + pad + 1;
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (unsigned char)major;
	buf[7] = 0;
	for (size_t i = 0; i < pre - 8; i++)
		buf[8 + i] = (unsigned char)(len >> (8 * i));
	memcpy(buf + pre, dict, hl);
	memset(buf + pre + hl, ' ', pad);
	buf[pre + len - 1] = '\n';
	memcpy(buf + pre + len, data, n);
	return pre + len + n;
}

static void test_roundtrip_types(void **state)
{
	(void)state;
	unsigned char raw[64];
	for (int i = 0; i < 64; i++)
		raw[i] = (unsigned char)(i * 37 + 11);
	long dim[2] = {2, 3};
	for (int t = 0; t < NPY_NTYPES; t++) {
		if (t == NPY_B1)
			for (int i = 0; i < 6; i++)
				raw[i] &= 1;
		char err[128];
		Npy a;
		const char *p = tmpfile_name(npy_descr((NpyType)t) + 1);
		assert_int_equal(npy_write(p, (NpyType)t, 2, dim, raw, err, sizeof err), 0);
		assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
		assert_int_equal(a.type, t);
		assert_int_equal(a.rank, 2);
		assert_int_equal(a.dim[0], 2);
		assert_int_equal(a.dim[1], 3);
		assert_int_equal(a.count, 6);
		assert_memory_equal(a.data, raw, 6 * npy_size((NpyType)t));
		npy_free(&a);
		remove(p);
	}
}

static void test_roundtrip_ranks(void **state)
{
	(void)state;
	float v[24];
	for (int i = 0; i < 24; i++)
		v[i] = (float)i * 0.25f - 3;
	long dims[4][4] = {{0}, {24}, {2, 12}, {1, 2, 3, 4}};
	int ranks[4] = {0, 1, 2, 4};
	for (int k = 0; k < 4; k++) {
		char err[128];
		Npy a;
		const char *p = tmpfile_name("ranks");
		assert_int_equal(npy_write(p, NPY_F4, ranks[k], dims[k], v, err, sizeof err), 0);
		assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
		assert_int_equal(a.rank, ranks[k]);
		assert_int_equal(a.count, ranks[k] ? 24 : 1);
		assert_memory_equal(a.data, v, (size_t)a.count * 4);
		npy_free(&a);
		/* the header is padded so the data starts on 64 bytes */
		FILE *f = fopen(p, "rb");
		fseek(f, 0, SEEK_END);
		assert_int_equal((ftell(f) - a.count * 4) % 64, 0);
		fclose(f);
		remove(p);
	}
}

static void test_empty_dim(void **state)
{
	(void)state;
	long dim[2] = {0, 5};
	char err[128];
	Npy a;
	const char *p = tmpfile_name("empty");
	assert_int_equal(npy_write(p, NPY_I8, 2, dim, NULL, err, sizeof err), 0);
	assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
	assert_int_equal(a.count, 0);
	assert_int_equal(a.dim[1], 5);
	npy_free(&a);
	remove(p);
}

/* Headers as numpy writes them, version 2.0, double quotes, Fortran order
 * of a vector (same bytes as C order). */
static void test_numpy_headers(void **state)
{
	(void)state;
	unsigned char buf[512];
	double d[3] = {1.5, -2, 1e10};
	const char *dicts[] = {
		"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
		"{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,)}",
		"{'descr': '<f8', 'fortran_order': True, 'shape': (1, 3), }",
		"{'shape': (3,), 'fortran_order': False, 'descr': '<f8'}",
	};
	for (int major = 1; major <= 2; major++)
		for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
			Npy a;
			char err[128];
			size_t n = image(buf, major, dicts[k], d, sizeof d);
			assert_int_equal(npy_parse(buf, n, &a, err, sizeof err), 0);
			assert_int_equal(a.type, NPY_F8);
			assert_int_equal(a.count, 3);
			assert_memory_equal(a.data, d, sizeof d);
			float f[3];
			assert_int_equal(npy_convert(&a, NPY_F4, f), 0);
			assert_true(f[0] == 1.5f && f[1] == -2 && f[2] == 1e10f);
			npy_free(&a);
		}
}

static void expect_reject(const unsigned char *buf, size_t n, const char *needle)
{
	Npy a;
	char err[128] = "";
	assert_int_equal(npy_parse(buf, n, &a, err, sizeof err), 1);
	assert_non_null(strstr(err, needle));
	assert_null(a.data);
}

static void test_reject_bad(void **state)
{
	(void)state;
	unsigned char buf[512];
	float f[4] = {1, 2, 3, 4};
	size_t n;
	expect_reject((const unsigned char *)"hello world, not numpy", 22, "magic");
	n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
	buf[6] = 9;
	expect_reject(buf, n, "version");
	n = image(buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
	expect_reject(buf, n, "dtype");
	n = image(buf, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
	expect_reject(buf, n, "dtype");
	n = image(buf, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
	expect_reject(buf, n, "dtype");
	n = image(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f, sizeof f);
	expect_reject(buf, n, "fortran_order");
	n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", f, sizeof f);
	expect_reject(buf, n, "shape");
	n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False}", f, sizeof f);
	expect_reject(buf, n, "shape");
}

static void test_reject_truncated(void **state)
{
	(void)state;
	unsigned char buf[512];
	float f[4] = {1, 2, 3, 4};
	size_t n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
	for (size_t cut = 0; cut < n; cut++) {
		Npy a;
		char err[128];
		assert_int_equal(npy_parse(buf, cut, &a, err, sizeof err), 1);
	}
	/* truncated through a file too */
	const char *p = tmpfile_name("trunc");
	write_bytes(p, buf, n - 1);
	Npy a;
	char err[128];
	assert_int_equal(npy_read(p, &a, err, sizeof err), 1);
	assert_non_null(strstr(err, "truncated"));
	remove(p);
	assert_int_equal(npy_read("/nonexistent/dir/x.npy", &a, err, sizeof err), 1);
	assert_non_null(strstr(err, "cannot open"));
}

static void test_convert_rules(void **state)
{
	(void)state;
	int64_t v[3] = {-1, 0, 300};
	Npy a = {NPY_I8, 1, {3}, 3, v};
	float f[3];
	int32_t i32[3];
	uint8_t b[3], u8[3];
	assert_int_equal(npy_convert(&a, NPY_F4, f), 1);      /* integers are not floats */
	assert_int_equal(npy_convert(&a, NPY_I4, i32), 0);
	assert_true(i32[0] == -1 && i32[2] == 300);
	assert_int_equal(npy_convert(&a, NPY_U1, u8), 0);
	assert_int_equal(u8[2], 300 & 255);
	assert_int_equal(npy_convert(&a, NPY_B1, b), 0);
	assert_true(b[0] == 1 && b[1] == 0 && b[2] == 1);
	float g[2] = {0.5f, 0};
	Npy fa = {NPY_F4, 1, {2}, 2, g};
	assert_int_equal(npy_convert(&fa, NPY_I8, v), 1);      /* floats are not integers */
	assert_int_equal(npy_convert(&fa, NPY_B1, b), 0);
	assert_true(b[0] == 1 && b[1] == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_types),
		cmocka_unit_test(test_roundtrip_ranks),
		cmocka_unit_test(test_empty_dim),
		cmocka_unit_test(test_numpy_headers),
		cmocka_unit_test(test_reject_bad),
		cmocka_unit_test(test_reject_truncated),
		cmocka_unit_test(test_convert_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
