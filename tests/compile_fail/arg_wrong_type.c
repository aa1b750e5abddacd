/* A value of another kind: a double for an i64 parameter. RAY_CALL's
 * per-argument _Generic makes it an f64 argument, which the typed submit
 * does not take (C would have converted 1.5 to 1 silently). */
#include "rustyray.h"
#include "rustyray/typed.h"

RAY_FUNCTION(i64, add, (i64, a), (i64, b)) {
  return a + b;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  RAY_REF(i64) r = RAY_CALL(add, 1, 2);
#else
  RAY_REF(i64) r = RAY_CALL(add, 1.5, 2);
#endif
  return RAY_STATUS(r) != 0;
}
