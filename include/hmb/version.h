/**
 * @file hmb/version.h
 * @brief The library's version: at compile time (macros) and at run time.
 *
 * Versions are MAJOR.MINOR.PATCH. While MAJOR is 0, every MINOR release may
 * change the API and the ABI; PATCH releases only fix bugs and keep both.
 * The shared library's SONAME follows the same rule: libhmb.so.0.MINOR for
 * 0.x (libhmb.so.MAJOR from 1.0 on), and the CMake package accepts a
 * request for the same MAJOR.MINOR only (see CHANGELOG.md).
 *
 * Compare HMB_VERSION_NUMBER (the headers you compiled with) with
 * hmb_version() (the library actually loaded) to detect a mismatch.
 */
#ifndef HMB_VERSION_H
#define HMB_VERSION_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Major version: 0 while the API may still change with every minor. */
#define HMB_VERSION_MAJOR 0
/** Minor version: new features (and, while MAJOR is 0, API/ABI changes). */
#define HMB_VERSION_MINOR 2
/** Patch version: fixes only; API and ABI unchanged. */
#define HMB_VERSION_PATCH 0
/** The version as a string, "MAJOR.MINOR.PATCH". */
#define HMB_VERSION_STRING "0.2.0"
/** The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH (200). */
#define HMB_VERSION_NUMBER                                                     \
  (HMB_VERSION_MAJOR * 10000 + HMB_VERSION_MINOR * 100 + HMB_VERSION_PATCH)

/**
 * The version of the library in use, as #HMB_VERSION_NUMBER was when it
 * was built: with a shared library, the one loaded at run time.
 * @return MAJOR * 10000 + MINOR * 100 + PATCH
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_version(void);

/**
 * The version of the library in use as a string ("0.2.0"), as
 * #HMB_VERSION_STRING was when it was built.
 * @return a static string; never NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const char *hmb_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* HMB_VERSION_H */
