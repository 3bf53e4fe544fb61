/*
 * version.c - the version of the library as it was built (hmb/version.h).
 *
 * These two functions are compiled into the library, so a program that
 * compares them with the HMB_VERSION_* macros of its own headers learns
 * whether the shared library it loaded is the one it was built against.
 * CMakeLists.txt checks that the macros match project(VERSION).
 */
#include "hmb/version.h"

_Static_assert(HMB_VERSION_MINOR < 100 && HMB_VERSION_PATCH < 100,
               "HMB_VERSION_NUMBER has two digits for minor and patch");

int hmb_version(void) {
  return HMB_VERSION_NUMBER;
}

const char *hmb_version_string(void) {
  return HMB_VERSION_STRING;
}
