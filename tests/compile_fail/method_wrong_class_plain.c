/* The same through the plain typed call function Counter_incr(handle, ...). */
#include "rustyray.h"
#include "rustyray/typed.h"

typedef struct {
  long long n;
} state_t;

RAY_ACTOR(Counter, state_t)
RAY_CONSTRUCTOR(Counter) {
  self->n = 0;
  return 0;
}
RAY_METHOD(Counter, i64, incr, (i64, by)) {
  return self->n += by;
}

RAY_ACTOR(Accumulator, state_t)
RAY_CONSTRUCTOR(Accumulator) {
  self->n = 0;
  return 0;
}

int main(void) {
#ifdef RAY_CF_CONTROL
  Counter h = Counter_new();
#else
  Accumulator h = Accumulator_new();
#endif
  RAY_REF(i64) r = Counter_incr(h, 1);
  return RAY_STATUS(r) != 0;
}
