/* codec.h - msgpack helpers shared by the typed object API, the tasks'
 * arguments and returns, and the error objects. Every buffer grows through the allocation wrapper,
 * so an out-of-memory during encoding is reported as RAY_ENOMEM, never lost. */
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

/* Encode one scalar value as msgpack into `b` (initialised here; the caller
 * destroys it): the one encoding of RAY_TYPE_I64, RAY_TYPE_F64 and
 * RAY_TYPE_STR (a NUL-terminated string) shared by the puts, the task
 * arguments and the task returns. b->oom is set when memory ran out (only
 * a string longer than `small` needs the heap). */
void ray__encode_i64(ray__mpbuf_t *b, int64_t v);
void ray__encode_f64(ray__mpbuf_t *b, double v);
void ray__encode_str(ray__mpbuf_t *b, const char *s);

/* Encode an error chain as [links, cause]: links an array, outermost first,
 * of [code, message, origin|nil, task_id, attempts]; cause 0 or the id of a
 * failed object whose error continues the chain (a dependency's error is
 * shared by reference, not copied, so a failure at the root of a deep DAG
 * costs O(depth) in all). Iterative, no recursion. */
int ray__encode_error(const ray_error_t *err, uint64_t cause_id, ray__mpbuf_t *out);
/* Decode what ray__encode_error wrote. Errors: RAY_EDECODE, RAY_ENOMEM. */
int ray__decode_error(const void *data, size_t size, ray_error_t **out, uint64_t *cause_id);

/* The most containers a msgpack value may nest: msgpack-c's unpacker has a
 * fixed stack of this many levels (MSGPACK_EMBED_STACK_SIZE, 32 in Debian's
 * libmsgpackc) and refuses anything deeper, empty containers included. */
#define RAY__MP_MAX_DEPTH 32

/* Whether data[0..size) is exactly one msgpack value that msgpack-c can
 * decode in memory proportional to `size`; call it before msgpack-c sees
 * bytes that may be anyone's. Needed because msgpack-c (a) allocates a
 * container's elements up front from the count in its header, so five
 * bytes claiming 2^32 elements ask for ~100 GB, and (b) reports nesting
 * deeper than its fixed stack as MSGPACK_UNPACK_NOMEM_ERROR, which is not
 * out-of-memory. Here a container may claim no more elements than bytes
 * remain (each takes one at least), and nesting is at most
 * RAY__MP_MAX_DEPTH containers. Pure. Errors: RAY_EDECODE. */
int ray__mp_check(const void *data, size_t size);
/* The same check, also counting in *held the library's exts inside the
 * value (RAY_MSGPACK_EXT_REF and RAY_MSGPACK_EXT_ACTOR, well-formed or
 * not): with none, the bytes can be stored as they are, with no decode. */
int ray__mp_scan(const void *data, size_t size, size_t *held);

/* Decode one msgpack value of `data` into *obj (zone as msgpack_unpacked).
 * The bytes may be anyone's (ray_put_typed with RAY_TYPE_MSGPACK stores a
 * caller's bytes as they are): ray__mp_check runs first. Errors: RAY_EDECODE (invalid, truncated or
 * trailing bytes, a container claiming more elements than bytes remain,
 * more than RAY__MP_MAX_DEPTH nested containers), RAY_ENOMEM. */
int ray__mp_decode(const void *data, size_t size, msgpack_unpacked *out);

/* Decode a payload that must be exactly one msgpack integer (fitting an
 * int64) / float. Errors: RAY_EDECODE, RAY_ENOMEM. Shared by the typed gets
 * and the task argument accessors. */
int ray__decode_i64(const void *data, size_t size, int64_t *out);
int ray__decode_f64(const void *data, size_t size, double *out);

/* The refs inside a msgpack value (ext RAY_MSGPACK_EXT_REF), and the actor
 * handles (ext RAY_MSGPACK_EXT_ACTOR: listed with type RAY_TYPE_ACTOR), in
 * document order, in a new array (*out NULL when there are none). Walks the value
 * with an explicit stack (no recursion). Every value the library stores
 * goes through here first, so it also refuses a value nested deeper than
 * RAY__MP_MAX_DEPTH, which could be stored but never read back.
 * Errors: RAY_ENOMEM, RAY_EDECODE (a malformed ref or actor ext), RAY_EINVAL
 * (too deep). */
int ray__mp_collect_refs(const msgpack_object *obj, ray_ref_t **out, size_t *n);

#endif /* RAY_CODEC_H */
