/* Two user types with the same number (type tag) in one file. */
#include "rustyray.h"
#include "rustyray/typed.h"

typedef struct {
  long long v;
} meters_t;
typedef struct {
  long long v;
} seconds_t;

static int meters_pack(msgpack_packer *pk, const meters_t *m) {
  return msgpack_pack_long_long(pk, m->v);
}
static int meters_unpack(const msgpack_object *o, meters_t *m) {
  m->v = o->via.i64;
  return 0;
}
static int seconds_pack(msgpack_packer *pk, const seconds_t *s) {
  return msgpack_pack_long_long(pk, s->v);
}
static int seconds_unpack(const msgpack_object *o, seconds_t *s) {
  s->v = o->via.i64;
  return 0;
}

RAY_TYPE(meters, meters_t, 7, meters_pack, meters_unpack)
#ifdef RAY_CF_CONTROL
RAY_TYPE(seconds, seconds_t, 8, seconds_pack, seconds_unpack)
#else
RAY_TYPE(seconds, seconds_t, 7, seconds_pack, seconds_unpack)
#endif

int main(void) {
  RAY_REF(meters) m = RAY_PUT(meters, ((meters_t){3}));
  RAY_REF(seconds) s = RAY_PUT(seconds, ((seconds_t){4}));
  return RAY_STATUS(m) != 0 || RAY_STATUS(s) != 0;
}
