/**
 * @file hmb/export.h
 * @brief The export macro of the public API.
 *
 * The library is built with hidden visibility; only declarations marked
 * #HMB_API are exported from the shared object. Users of the static library
 * define HMB_STATIC_DEFINE (the CMake target hmb::hmb_static does this for
 * them) so that the macro expands to nothing. The version macros live in
 * hmb/version.h.
 */
#ifndef HMB_EXPORT_H
#define HMB_EXPORT_H

#if defined(HMB_DOXYGEN)
/** Marks a public declaration: exported from the shared library. */
#define HMB_API
#elif defined(HMB_STATIC_DEFINE)
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
