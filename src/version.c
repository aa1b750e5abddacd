/* version.c - the linked library's version. */
#include "rustyray/version.h"

#define RAY__STR2(x) #x
#define RAY__STR(x) RAY__STR2(x)

const char *ray_version(void) {
  return RAY__STR(RAY_VERSION_MAJOR) "." RAY__STR(RAY_VERSION_MINOR) "." RAY__STR(
      RAY_VERSION_PATCH);
}

unsigned ray_version_hex(void) {
  return RAY_VERSION_HEX;
}
