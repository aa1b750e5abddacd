/* Typed refs are distinct types: an i64 result does not go into an f64 ref. */
#include "rustyray.h"
#include "rustyray/typed.h"

RAY_FUNCTION(i64, add, (i64, a), (i64, b)) {
  return a + b;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  RAY_REF(i64) r;
#else
  RAY_REF(f64) r;
#endif
  r = add(1, 2);
  return RAY_STATUS(r) != 0;
}
