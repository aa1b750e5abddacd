/* RAY_GET into a C type that is not the ref's kind: an i64 ref read into a
 * double. The generic get is chosen by the output pointer's type, and the
 * ref's kind must agree with it. */
#include "rustyray.h"
#include "rustyray/typed.h"

int main(void) {
  RAY_REF(i64) r = RAY_PUT(i64, 42);
#ifdef RAY_CF_CONTROL
  int64_t v = 0;
#else
  double v = 0;
#endif
  return RAY_GET(r, RAY_TIMEOUT_INFINITE, &v) != 0 || v != 42;
}
