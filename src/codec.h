/* codec.h - msgpack encoding helpers shared by the typed object API and the
 * error objects. Every buffer grows through the allocation wrapper, so an
 * out-of-memory during encoding is reported as RAY_ENOMEM, never lost. */
#ifndef RAY_CODEC_H
#define RAY_CODEC_H

#include <msgpack.h>
#include <stddef.h>

#include "rustyray/error.h"
#include "rustyray/object.h"

/* A growable output buffer for msgpack_packer. Small values stay in `small`;
 * larger ones move to a heap block. */
typedef struct ray__mpbuf_s {
  char *data;
  size_t size;
  size_t cap;
  int oom;
  char small[64];
} ray__mpbuf_t;

void ray__mpbuf_init(ray__mpbuf_t *b, msgpack_packer *pk);
void ray__mpbuf_destroy(ray__mpbuf_t *b);
/* Hand the heap block to the caller (copying out of `small` when needed).
 * Returns NULL on out-of-memory; the buffer is empty afterwards. */
char *ray__mpbuf_steal(ray__mpbuf_t *b);

/* Encode an error chain as [links, cause]: links an array, outermost first,
 * of [code, message, origin|nil, task_id, attempts]; cause 0 or the id of a
 * failed object whose error continues the chain (a dependency's error is
 * shared by reference, not copied, so a failure at the root of a deep DAG
 * costs O(depth) in all). Iterative, no recursion. */
int ray__error_encode(const ray_error_t *err, uint64_t cause_id, ray__mpbuf_t *out);
/* Decode what ray__error_encode wrote. Errors: RAY_EDECODE, RAY_ENOMEM. */
int ray__error_decode(const void *data, size_t size, ray_error_t **out, uint64_t *cause_id);

/* Decode one msgpack value of `data` into *obj (zone as msgpack_unpacked).
 * Errors: RAY_EDECODE (invalid or trailing bytes), RAY_ENOMEM. */
int ray__mp_decode(const void *data, size_t size, msgpack_unpacked *out);

/* Decode a payload that must be exactly one msgpack integer (fitting an
 * int64) / float. Errors: RAY_EDECODE, RAY_ENOMEM. Shared by the typed gets
 * and the task argument accessors. */
int ray__decode_i64(const void *data, size_t size, int64_t *out);
int ray__decode_f64(const void *data, size_t size, double *out);

/* The refs inside a msgpack value (ext RAY_MSGPACK_EXT_REF), in document
 * order, in a new array (*out NULL when there are none). Walks the value
 * with an explicit stack: any nesting depth. Errors: RAY_ENOMEM,
 * RAY_EDECODE (a malformed ref ext). */
int ray__mp_collect_refs(const msgpack_object *obj, ray_ref_t **out, size_t *n);

#endif /* RAY_CODEC_H */
