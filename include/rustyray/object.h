/* rustyray/object.h - the object store: ObjectRefs, put, get, wait.
 *
 * Objects are immutable values written once and shared by reference. Each
 * object has a type tag (bytes, int64, double, string, msgpack, ...); typed
 * values are msgpack-encoded. An object is pending (its producer has not
 * finished), ready, or failed (it holds a ray_error_t instead of a value).
 *
 * Reference counting: every ray_ref_t handed to the caller carries one
 * reference the caller owns. ray_ref_release() drops it; ray_ref_retain()
 * adds one. An object is freed as soon as nothing references it; its id is
 * never reused, so a released ref fails cleanly with RAY_ENOTFOUND.
 *
 * Caller mistakes get a code, never undefined behaviour: releasing a ref
 * once too often, or passing a ref that was never issued or belongs to a
 * previous runtime (ids are unique for the life of the process, across
 * ray_shutdown/ray_init), fails with RAY_ENOTFOUND and touches no object.
 * A count no array can have (more than PTRDIFF_MAX / sizeof(ray_buf_t)
 * elements) is RAY_EINVAL before any element is read. A ref may appear
 * several times in one batch: every position is answered on its own (one
 * view, one flag, one reference per position).
 *
 * Every function here is thread-safe and may be called from host threads,
 * tasks and actors. Functions that take `timeout_ms` block: RAY_TIMEOUT_INFINITE
 * (-1, or any negative value, INT64_MIN included) waits forever, 0 polls,
 * > 0 bounds the wait in milliseconds. Any positive value waits that long:
 * one too large to express as a deadline (past 2^63 ns of uptime, about
 * 292 years) waits forever; it never wraps into an early RAY_ETIMEDOUT.
 *
 * Memory: every function that stores a payload (the puts, and a get that
 * reads a spilled object back) reserves its bytes from object_store_memory.
 * When the store is full it first evicts copies of other ranks' objects
 * nobody is reading (cluster mode: their owners keep the values, and a
 * later get fetches them again), least recently used first, then spills
 * least recently used objects of its own to disk, and may wait up to
 * store_full_timeout_ms for memory (so it can block);
 * then it fails with RAY_ESTOREFULL (also at once for a payload larger than
 * the whole store, SIZE_MAX included: nothing is read from `data` then), or
 * with RAY_ESHUTDOWN if the runtime shuts down while it waits. This applies
 * to every put below in addition to the errors each lists. */
#ifndef RUSTYRAY_OBJECT_H
#define RUSTYRAY_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* msgpack-c's types, declared here but not defined: the calls below take
 * them by pointer only, so this header does not include <msgpack.h> and
 * compiles beside msgpack-c++'s <msgpack.hpp>, which clashes with it (the
 * C++ API, ADR-007). rustyray/msgpack.h, which rustyray.h includes, brings
 * <msgpack.h> and the calls that need its definitions. */
typedef struct msgpack_object msgpack_object;
typedef struct msgpack_packer msgpack_packer;

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAY_TIMEOUT_INFINITE ((int64_t)-1)

/* Type tags. 0 is never a valid type. */
typedef enum {
  RAY_TYPE_BYTES = 1,   /* raw bytes, stored as given */
  RAY_TYPE_I64 = 2,     /* msgpack integer */
  RAY_TYPE_F64 = 3,     /* msgpack float64 */
  RAY_TYPE_STR = 4,     /* msgpack str */
  RAY_TYPE_MSGPACK = 5, /* any msgpack value */
  RAY_TYPE_ACTOR = 6,   /* an actor handle passed as an argument (ray_arg_actor) */
  RAY_TYPE_USER = 256   /* first tag for user-registered types */
} ray_type_t;

/* An ObjectRef: a small value (no allocation). `id` 0 is the nil ref.
 * `type` is the object's type tag, known when the ref is created. In
 * cluster mode an id's top 16 bits are the rank that owns the object (the
 * one that created the ref); task ids (ray_ctx_task_id) likewise. */
typedef struct ray_ref_s {
  uint64_t id;
  uint32_t type;
} ray_ref_t;

#ifdef __cplusplus
#define RAY_REF_NIL (ray_ref_t{0, 0})
#else
#define RAY_REF_NIL ((ray_ref_t){0, 0})
#endif

/* A pinned, zero-copy, read-only view of an object's payload. Valid until
 * ray_buf_release(), even if every ref to the object is released meanwhile
 * and even across ray_shutdown(). A view may be copied and moved freely
 * (it is a plain struct); it is released once, through any one copy:
 * releasing it again, through the same buf or another copy, is a no-op
 * (each view carries a handle the library checks, see ray_buf_release).
 * Every copy's `data` becomes invalid at that one release. */
typedef struct ray_buf_s {
  const void *data;
  size_t size;
  uint32_t type;
  void *priv_;   /* private: the view's handle */
  uint64_t gen_; /* private */
} ray_buf_t;

/* Called once on the runtime's loop thread when a ref becomes ready
 * (status 0) or fails (status is the error's negative code, RAY_ESHUTDOWN
 * at shutdown). No internal lock is held while it runs; it may call any
 * function here except blocking ones with a non-zero timeout. */
typedef void (*ray_ready_cb)(ray_ref_t ref, int status, void *arg);

/* ---- Put ---------------------------------------------------------------- */

/* Copy `size` bytes at `data` into a new RAY_TYPE_BYTES object and return a
 * ref to it in *out. `data` may be NULL only when size is 0.
 * Errors: RAY_EINVAL (out NULL, data NULL with size > 0), RAY_ENOTINIT,
 * RAY_ENOMEM, RAY_ESTOREFULL. Blocks only when the store is full (above). */
RAY_EXTERN int ray_put(const void *data, size_t size, ray_ref_t *out);

/* Like ray_put() but with an explicit type tag (any ray_type_t or user tag
 * >= RAY_TYPE_USER); the bytes must already be in that type's encoding.
 * Errors: as ray_put, and RAY_EINVAL for type 0. */
RAY_EXTERN int ray_put_typed(const void *data, size_t size, uint32_t type, ray_ref_t *out);

/* The release callback of a buffer handed to the store (ray_put_owned,
 * ray_return_owned, RAY_BYTES_OWNED): called exactly once, as
 * free_fn(data, arg) with the buffer and the arg given with it, on whichever
 * thread drops the last reference or view, or spills the object to disk (a
 * restore reads it into memory of the store's own), with no internal lock
 * held. The arg lets a caller release through its own allocator or pool
 * without a global; one that just calls free() is
 *   static void my_free(void *data, void *arg) { (void)arg; free(data); } */
typedef void (*ray_free_fn)(void *data, void *arg);

/* Hand `data` (size bytes) to the store without copying; the store calls
 * free_fn(data, arg) exactly once (ray_free_fn above). free_fn may be NULL
 * (the caller keeps the buffer alive until the object is freed; arg is then
 * unused). On failure the caller keeps ownership and free_fn is never called.
 * Errors: RAY_EINVAL (out NULL, data NULL with size > 0), RAY_ENOTINIT,
 * RAY_ENOMEM. */
RAY_EXTERN int ray_put_owned(void *data, size_t size, ray_free_fn free_fn, void *arg,
                             ray_ref_t *out);

/* Put `n` byte buffers at once: data[i] of sizes[i] bytes into out[i].
 * Takes each shard lock once, not once per object. All or nothing: on error
 * no object is created. Errors: RAY_EINVAL (NULL arrays with n > 0, n too
 * large for an array, a NULL data[i] with sizes[i] > 0), RAY_ENOTINIT,
 * RAY_ENOMEM. n == 0 is a no-op. */
RAY_EXTERN int ray_put_batch(const void *const *data, const size_t *sizes, size_t n,
                             ray_ref_t *out);

/* Typed puts: the value is msgpack-encoded and tagged with its type. */
RAY_EXTERN int ray_put_i64(int64_t value, ray_ref_t *out);
RAY_EXTERN int ray_put_f64(double value, ray_ref_t *out);
/* `s` is NUL-terminated. Errors also: RAY_EINVAL for s NULL. */
RAY_EXTERN int ray_put_str(const char *s, ray_ref_t *out);
/* Encode any msgpack object. Refs inside it (RAY_MSGPACK_EXT_REF) are
 * retained by the new object until it is freed, and so are actor handles
 * inside it (RAY_MSGPACK_EXT_ACTOR, rustyray/actor.h). Errors also:
 * RAY_EINVAL for obj NULL or a value nested more than 32 containers deep
 * (msgpack-c could not decode it back), RAY_ENOTFOUND for an unknown or
 * released ref or actor handle inside it,
 * RAY_EDECODE for a malformed ref or actor ext (wrong length, id 0). Bytes put with
 * ray_put_typed(..., RAY_TYPE_MSGPACK, ...) are opaque: refs inside them
 * are not retained. */
RAY_EXTERN int ray_put_msgpack(const msgpack_object *obj, ray_ref_t *out);
/* As ray_put_msgpack for a value already encoded: `size` bytes holding
 * exactly one msgpack value, refs inside it (RAY_MSGPACK_EXT_REF) retained
 * as there; for encoders other than msgpack-c's C API (msgpack-c++: the
 * C++ API). Errors also: RAY_EINVAL (data NULL with size > 0), RAY_EDECODE
 * (not exactly one valid msgpack value, or nested more than 32 containers
 * deep). */
RAY_EXTERN int ray_put_msgpack_bytes(const void *data, size_t size, ray_ref_t *out);

/* ---- Get ---------------------------------------------------------------- */

/* Wait for `ref` and pin a zero-copy view of its payload in *out (any type:
 * typed values give their msgpack bytes). Release it with ray_buf_release().
 * A spilled object is read back from disk first (verified by a checksum).
 * In cluster mode, the value of a ref another rank owns is asked of its
 * owner at its first read (this get, with timeout 0 too, ray_wait, or a
 * task depending on it), and an evicted copy of it (see Memory above) is
 * asked for again, once for all its readers, and read when it lands:
 * RAY_ETIMEDOUT if that takes longer than timeout_ms (0 included: the
 * fetch goes on), the code of a fetch that failed (the next get asks
 * again), RAY_ENODE if the owner was lost.
 * Errors: RAY_EINVAL (out NULL), RAY_ENOTFOUND (nil, unknown or released
 * ref), RAY_ENOTINIT, RAY_ETIMEDOUT, RAY_ESHUTDOWN, RAY_EIO (the spilled
 * copy is unreadable or damaged), RAY_ESTOREFULL / RAY_ENOMEM (no room to
 * restore it, or no memory for the view's handle), or, when the object
 * failed, the error's own code (see ray_get_error()). On error *out is
 * zeroed. Blocks up to timeout_ms. */
RAY_EXTERN int ray_get(ray_ref_t ref, int64_t timeout_ms, ray_buf_t *out);

/* Release a view. The buf is zeroed after. A no-op (never a second
 * release) for NULL, a zeroed buf, a view released already, and a copy of
 * a view released through another copy, whenever that happened (before or
 * after the object was freed, after ray_shutdown, after later gets). Only
 * bufs filled by the library are checked: one made up or overwritten by the
 * caller is undefined behaviour. Works after ray_shutdown(). Never blocks;
 * thread-safe (of two copies released at once, exactly one releases). */
RAY_EXTERN void ray_buf_release(ray_buf_t *buf);

/* Get `n` objects at once into out[0..n-1], in input order, taking each shard
 * lock once per pass. Waits for all of them; fails at once, holding no view,
 * when any of them failed (returning that object's error code). A ref given
 * twice gets two views (release each). Errors: as ray_get, plus RAY_EINVAL
 * (NULL arrays with n > 0, n too large for an array); on error every
 * out[i] is zeroed. n == 0 is a no-op. */
RAY_EXTERN int ray_get_batch(const ray_ref_t *refs, size_t n, int64_t timeout_ms, ray_buf_t *out);

/* Typed gets. They check the object's type tag before decoding and fail with
 * RAY_ETYPE on a mismatch (the object is not decoded), RAY_EDECODE when the
 * payload is not a valid encoding of the type. Other errors as ray_get. */
RAY_EXTERN int ray_get_i64(ray_ref_t ref, int64_t timeout_ms, int64_t *out);
RAY_EXTERN int ray_get_f64(ray_ref_t ref, int64_t timeout_ms, double *out);
/* *out receives a NUL-terminated copy (free it with ray_free()); *len, when
 * len is not NULL, its length without the NUL. */
RAY_EXTERN int ray_get_str(ray_ref_t ref, int64_t timeout_ms, char **out, size_t *len);

/* Refs inside objects: a msgpack value may contain refs, encoded as msgpack
 * ext values of this type (12 bytes: the id and the type tag, big-endian).
 * Ext type 83 is the library's too (RAY_MSGPACK_EXT_ACTOR); others are data.
 * An object holds a reference on every ref inside it until the object is
 * freed, so the inner objects outlive it (Ray's borrowing rule). */
#define RAY_MSGPACK_EXT_REF 82

/* Write `ref` into a msgpack value being packed. Does not need the runtime
 * and takes no reference (ray_put_msgpack takes the object's own).
 * Errors: RAY_EINVAL (pk NULL, nil ref, a ref of type RAY_TYPE_ACTOR, which no
 * object has), RAY_ENOMEM (the packer's write failed). */
RAY_EXTERN int ray_msgpack_pack_ref(msgpack_packer *pk, ray_ref_t ref);
/* Read a ref out of a decoded msgpack value (borrowed: retain it to keep
 * it beyond the value). Errors: RAY_EINVAL (NULL), RAY_ETYPE (not a ref
 * ext), RAY_EDECODE (a malformed one: not 12 bytes, id 0, or the type
 * RAY_TYPE_ACTOR, which no object has). */
RAY_EXTERN int ray_msgpack_ref(const msgpack_object *obj, ray_ref_t *out);

/* The error object of a failed ref: *out receives a new ray_error_t the
 * caller frees with ray_error_free(). For a ready (not failed) ref, returns
 * 0 with *out = NULL. Does not block.
 * Errors: RAY_EINVAL (out NULL), RAY_ENOTFOUND, RAY_ENOTINIT, RAY_ENOTREADY
 * (still pending), RAY_EDECODE, RAY_ENOMEM. */
RAY_EXTERN int ray_get_error(ray_ref_t ref, ray_error_t **out);

/* ---- Wait --------------------------------------------------------------- */

/* Wait until `num_returns` of the n refs are ready (a failed ref counts as
 * ready) or the timeout passes. Sets ready[i] for at most num_returns refs:
 * the first ready ones in input order; every other ready[i] is false. Never
 * reads or decodes a payload. A ref given twice counts twice: each position
 * is flagged on its own, so [a, a] with `a` ready flags both. Returns how
 * many it flagged (fewer than num_returns only on timeout), or a negative
 * code: RAY_EINVAL (refs or ready NULL, n 0 or too large for an array,
 * num_returns 0 or > n), RAY_ENOTFOUND (a nil, unknown or released ref;
 * nothing flagged), RAY_ENOTINIT, RAY_ENOMEM. Blocks up to timeout_ms.
 * In cluster mode a ref another rank owns is ready here once its value has
 * come (ray_wait asks its owner for it, as ray_get does); a copy evicted
 * later still counts as ready (a get fetches it again). */
RAY_EXTERN int ray_wait(const ray_ref_t *refs, size_t n, size_t num_returns, int64_t timeout_ms,
                        bool *ready);

/* ---- References --------------------------------------------------------- */

/* Add one reference to `ref`'s object. Errors: RAY_ENOTFOUND (nil, unknown
 * or released), RAY_ENOTINIT. Never blocks. */
RAY_EXTERN int ray_ref_retain(ray_ref_t ref);

/* Drop one reference; the object is freed when none is left (an open view
 * keeps its payload until released). Releasing once too often is
 * RAY_ENOTFOUND and changes nothing (the object is gone, its id never comes
 * back). Errors: RAY_ENOTFOUND, RAY_ENOTINIT. Never blocks. */
RAY_EXTERN int ray_ref_release(ray_ref_t ref);

/* Retain / release n refs at once, taking each shard lock once: one
 * reference per position (a ref given twice is retained or released twice).
 * Retaining is all or nothing; releasing releases every known ref and
 * returns RAY_ENOTFOUND if one was unknown (or went with an earlier
 * position). Errors also: RAY_EINVAL (refs NULL with n > 0, n too large
 * for an array), RAY_ENOTINIT, RAY_ENOMEM. n == 0 is a no-op. */
RAY_EXTERN int ray_ref_retain_batch(const ray_ref_t *refs, size_t n);
RAY_EXTERN int ray_ref_release_batch(const ray_ref_t *refs, size_t n);

/* Run cb(ref, status, arg) once on the loop thread when `ref` is ready or
 * failed; scheduled at once when it already is. The registration holds a
 * reference to the object until the callback has run. Pending registrations
 * fire with RAY_ESHUTDOWN at shutdown. If this call fails, cb never runs.
 * Errors: RAY_EINVAL (cb NULL), RAY_ENOTFOUND, RAY_ENOTINIT, RAY_ENOMEM.
 * Never blocks. */
RAY_EXTERN int ray_ref_on_ready(ray_ref_t ref, ray_ready_cb cb, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_OBJECT_H */
