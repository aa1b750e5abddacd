/* Three arguments for a function of two parameters. */
#include "rustyray.h"
#include "rustyray/typed.h"

RAY_FUNCTION(i64, add, (i64, a), (i64, b)) {
  return a + b;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  RAY_REF(i64) r = RAY_CALL(add, 1, 2);
#else
  RAY_REF(i64) r = RAY_CALL(add, 1, 2, 3);
#endif
  return RAY_STATUS(r) != 0;
}
