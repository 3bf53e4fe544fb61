/*
 * errors.c - text for the status codes of hmb/errors.h.
 * Both tables are generated from HMB_ERRNO_MAP, so a code cannot exist
 * without its message and name.
 */
#include "hmb/errors.h"

const char *hmb_strerror(int status) {
  switch (status) {
#define HMB__ERRNO_MSG(name, value, msg)                                       \
  case value:                                                                  \
    return msg;
    HMB_ERRNO_MAP(HMB__ERRNO_MSG)
#undef HMB__ERRNO_MSG
  default:
    return "unknown error";
  }
}

const char *hmb_errname(int status) {
  switch (status) {
#define HMB__ERRNO_NAME(name, value, msg)                                      \
  case value:                                                                  \
    return "HMB_" #name;
    HMB_ERRNO_MAP(HMB__ERRNO_NAME)
#undef HMB__ERRNO_NAME
  default:
    return "HMB_UNKNOWN";
  }
}
