/* test_errors.c - every status code has a distinct message and name, and the
 * released values never change. */
#include <string.h>

#include "testsupport.h"

static void test_codes_have_text(void **state) {
  (void)state;
  static const int codes[] = {
#define X(name, value, msg) HMB_##name,
      HMB_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  assert_int_equal(n, 12);
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] <= 0);
    assert_string_not_equal(hmb_strerror(codes[i]), "unknown error");
    assert_string_not_equal(hmb_errname(codes[i]), "HMB_UNKNOWN");
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(codes[i], codes[j]);
      assert_string_not_equal(hmb_strerror(codes[i]), hmb_strerror(codes[j]));
      assert_string_not_equal(hmb_errname(codes[i]), hmb_errname(codes[j]));
    }
  }
  assert_string_equal(hmb_errname(HMB_ETIMEDOUT), "HMB_ETIMEDOUT");
  assert_string_equal(hmb_errname(HMB_ELIMIT), "HMB_ELIMIT");
  assert_string_equal(hmb_errname(HMB_OK), "HMB_OK");
  assert_string_equal(hmb_strerror(12345), "unknown error");
  assert_string_equal(hmb_strerror(-12), "unknown error");
  assert_string_equal(hmb_errname(-999), "HMB_UNKNOWN");
}

/* Values are ABI: every released one is pinned; new codes are appended. */
static void test_values_are_pinned(void **state) {
  (void)state;
  assert_int_equal(HMB_OK, 0);
  assert_int_equal(HMB_EINVAL, -1);
  assert_int_equal(HMB_ENOMEM, -2);
  assert_int_equal(HMB_ETIMEDOUT, -3);
  assert_int_equal(HMB_ECANCELED, -4);
  assert_int_equal(HMB_ESTATE, -5);
  assert_int_equal(HMB_ETOOBIG, -6);
  assert_int_equal(HMB_EBUSY, -7);
  assert_int_equal(HMB_ENOTSUP, -8);
  assert_int_equal(HMB_ESHUTDOWN, -9);
  assert_int_equal(HMB_EFAILED, -10);
  assert_int_equal(HMB_ELIMIT, -11);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codes_have_text),
      cmocka_unit_test(test_values_are_pinned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
