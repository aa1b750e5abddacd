/* A program built out of tree against an installed librustyray, once with
 * find_package(rustyray CONFIG) and once with pkg-config: proves the package
 * files work. Checks header against library version, puts and gets. */
#include <rustyray.h>
#include <stdio.h>

int main(void) {
  if (ray_version_hex() != RAY_VERSION_HEX) {
    fprintf(stderr, "header %d.%d.%d, library %s\n", RAY_VERSION_MAJOR, RAY_VERSION_MINOR,
            RAY_VERSION_PATCH, ray_version());
    return 1;
  }
  if (ray_init(NULL) != 0) return 1;
  ray_ref_t r;
  int64_t v = 0;
  int rc = ray_put_i64(42, &r);
  if (rc == 0) rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  if (rc == 0) rc = ray_ref_release(r);
  if (ray_shutdown() != 0 || rc != 0 || v != 42) return 1;
  printf("consumer: librustyray %s works (42 == %lld)\n", ray_version(), (long long)v);
  return 0;
}
