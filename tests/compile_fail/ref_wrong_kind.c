/* A ref of another kind: an f64 ref for an i64 parameter. */
#include "rustyray.h"
#include "rustyray/typed.h"

RAY_FUNCTION(i64, add, (i64, a), (i64, b)) {
  return a + b;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  RAY_REF(i64) x = RAY_PUT(i64, 2);
#else
  RAY_REF(f64) x = RAY_PUT(f64, 2.0);
#endif
  RAY_REF(i64) r = RAY_CALL(add, x, 1);
  return RAY_STATUS(r) != 0;
}
