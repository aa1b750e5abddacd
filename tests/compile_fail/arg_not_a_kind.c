/* A value whose type is no kind's at all (a float pointer): the argument's
 * _Generic has no default branch, so nothing matches. */
#include "rustyray.h"
#include "rustyray/typed.h"

RAY_FUNCTION(f64, twice, (f64, x)) {
  return 2 * x;
}

int main(void) {
  float x = 1.0f;
#ifdef RAY_CF_CONTROL
  RAY_REF(f64) r = RAY_CALL(twice, x);
#else
  RAY_REF(f64) r = RAY_CALL(twice, &x);
#endif
  return RAY_STATUS(r) != 0;
}
