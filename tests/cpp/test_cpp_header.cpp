/*
 * test_cpp_header.cpp - hmb.hpp on its own (it is the first include),
 * compiled with stricter warnings than the other tests (see
 * CMakeLists.txt), with every member of its templates instantiated.
 * Running it checks only that a header-only program links.
 */
#include <hmb.hpp>

#include <cstdio>

template class hmb::runner_ops<hmb::runner>;
template class hmb::runner_ops<hmb::runner_ref>;
template class hmb::allocator<int>;
template class hmb::allocator<char>;

namespace {

struct body {
  int operator()(hmb::runner_ref) const {
    return 0;
  }
};
struct done {
  void operator()(int) const {}
};

} // namespace

// Instantiated, never called: the executor's submit with both overloads.
hmb::task submit_both(hmb::executor &ex) {
  hmb::task a = ex.submit(body(), done(), hmb::task_options(1));
  (void)a;
  return ex.submit(body());
}

int main() {
  std::printf("test_cpp_header: hmb.hpp compiles and links\n");
  return 0;
}
