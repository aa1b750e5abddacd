/* A ref of another user type: an item where a point is expected. */
#include "rustyray.h"
#include "rustyray/typed.h"

typedef struct {
  double x, y;
} point_t;
typedef struct {
  long long qty;
} item_t;

static int point_pack(msgpack_packer *pk, const point_t *p) {
  return msgpack_pack_array(pk, 2) || msgpack_pack_double(pk, p->x) ||
         msgpack_pack_double(pk, p->y);
}
static int point_unpack(const msgpack_object *o, point_t *p) {
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2) return -1;
  p->x = o->via.array.ptr[0].via.f64;
  p->y = o->via.array.ptr[1].via.f64;
  return 0;
}
static int item_pack(msgpack_packer *pk, const item_t *it) {
  return msgpack_pack_long_long(pk, it->qty);
}
static int item_unpack(const msgpack_object *o, item_t *it) {
  it->qty = o->via.i64;
  return 0;
}
RAY_TYPE(point, point_t, 1, point_pack, point_unpack)
RAY_TYPE(item, item_t, 2, item_pack, item_unpack)

RAY_FUNCTION(f64, norm1, (point, p)) {
  return (p.x < 0 ? -p.x : p.x) + (p.y < 0 ? -p.y : p.y);
}

int main(void) {
#ifdef RAY_CF_CONTROL
  RAY_REF(point) v = RAY_PUT(point, ((point_t){3, 4}));
#else
  RAY_REF(item) v = RAY_PUT(item, ((item_t){3}));
#endif
  RAY_REF(f64) r = RAY_CALL(norm1, v);
  return RAY_STATUS(r) != 0;
}
