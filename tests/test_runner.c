#include "testsupport.h"
int main(void) {
  return 0;
}
