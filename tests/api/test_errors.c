/* test_errors.c - every status code has a distinct message and name. */
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
  assert_true(n >= 10);
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] <= 0);
    assert_string_not_equal(hmb_strerror(codes[i]), "unknown error");
    assert_string_not_equal(hmb_errname(codes[i]), "HMB_UNKNOWN");
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(codes[i], codes[j]);
      assert_string_not_equal(hmb_strerror(codes[i]), hmb_strerror(codes[j]));
    }
  }
  assert_string_equal(hmb_errname(HMB_ETIMEDOUT), "HMB_ETIMEDOUT");
  assert_string_equal(hmb_strerror(12345), "unknown error");
  assert_string_equal(hmb_errname(-999), "HMB_UNKNOWN");
  assert_int_equal(HMB_OK, 0);
  /* Values are ABI: pin the ones released. */
  assert_int_equal(HMB_EINVAL, -1);
  assert_int_equal(HMB_ENOMEM, -2);
  assert_int_equal(HMB_ETIMEDOUT, -3);
  assert_int_equal(HMB_ECANCELED, -4);
  assert_int_equal(HMB_ESTATE, -5);
  assert_int_equal(HMB_ETOOBIG, -6);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_codes_have_text)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
