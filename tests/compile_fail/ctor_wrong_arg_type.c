/* A constructor argument of another kind: a string for an i64 parameter. */
#include "rustyray.h"
#include "rustyray/typed.h"

typedef struct {
  long long n;
} state_t;

RAY_ACTOR(Counter, state_t)
RAY_CONSTRUCTOR(Counter, (i64, start)) {
  self->n = start;
  return 0;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  Counter h = RAY_CALL(Counter_new, 10);
#else
  Counter h = RAY_CALL(Counter_new, "10");
#endif
  return RAY_STATUS(h) != 0;
}
