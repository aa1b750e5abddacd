/* rustyray/msgpack.h - decoded msgpack values: the calls that need
 * msgpack-c's definitions (<msgpack.h>), apart from the other headers so
 * that those compile beside msgpack-c++'s <msgpack.hpp>, which clashes with
 * <msgpack.h> (ADR-007). rustyray.h includes it; a C++ program that uses
 * msgpack-c++ includes the other headers, or <ray/api.h>, instead. */
#ifndef RUSTYRAY_MSGPACK_H
#define RUSTYRAY_MSGPACK_H

#include <msgpack.h>

#include "object.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A decoded msgpack value. `obj` stays valid until ray_msgpack_release(). */
typedef struct ray_msgpack_s {
  msgpack_object obj;
  /* The refs found inside the value (msgpack ext RAY_MSGPACK_EXT_REF), in
   * document order. Each carries one reference the caller owns: release
   * them (ray_ref_release_batch) when done; ray_msgpack_release() does not.
   * Actor handles inside (RAY_MSGPACK_EXT_ACTOR) are not listed: the object
   * holds them while this view is held; read one with ray_msgpack_actor()
   * and ray_actor_retain() it to keep it. */
  ray_ref_t *refs;
  size_t nrefs;
  ray_buf_t buf_;      /* private: the pinned payload obj points into */
  msgpack_zone *zone_; /* private */
} ray_msgpack_t;

/* Decode a RAY_TYPE_MSGPACK object (strings and binaries in `obj` point into
 * the pinned payload: zero-copy), retaining every ref inside it for the
 * caller (see ray_msgpack_t.refs). Errors: as the typed gets. */
RAY_EXTERN int ray_get_msgpack(ray_ref_t ref, int64_t timeout_ms, ray_msgpack_t *out);
/* Release a decoded value (not the refs it handed out). A no-op for NULL, a
 * zeroed value, one released already, and a copy of one released through
 * another copy (its view decides, as for ray_buf_release). */
RAY_EXTERN void ray_msgpack_release(ray_msgpack_t *m);

#ifdef __cplusplus
}
#endif

#endif /* RUSTYRAY_MSGPACK_H */
