/*
 * hmb/export.h - visibility macro and library version.
 *
 * The library is built with hidden visibility; only declarations marked
 * HMB_API are exported from the shared object. Static builds define
 * HMB_STATIC_DEFINE (the CMake target does this for consumers) so that the
 * macro expands to nothing.
 */
#ifndef HMB_EXPORT_H
#define HMB_EXPORT_H

/* Major version: changes break the API or ABI (0: anything may change). */
#define HMB_VERSION_MAJOR 0
/* Minor version: new features. */
#define HMB_VERSION_MINOR 1
/* Patch version: fixes only. */
#define HMB_VERSION_PATCH 0
/* The version as a string, "MAJOR.MINOR.PATCH". */
#define HMB_VERSION_STRING "0.1.0"

/* Marks a public declaration: exported from the shared library. */
#if defined(HMB_STATIC_DEFINE)
#define HMB_API
#elif defined(_WIN32)
#if defined(HMB_BUILDING)
#define HMB_API __declspec(dllexport)
#else
#define HMB_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define HMB_API __attribute__((visibility("default")))
#else
#define HMB_API
#endif

#endif /* HMB_EXPORT_H */
