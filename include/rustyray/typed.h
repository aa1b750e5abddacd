/* rustyray/typed.h - the typed layer: declare remote functions, actors and
 * value types once; call them with plain values or typed refs; get typed
 * refs back, all checked by the compiler.
 *
 * Ray's C++ API has RAY_REMOTE, ray::Task(f).Remote(args) and ObjectRef<T>.
 * This header is the C11 equivalent: macros over the core API (task.h,
 * actor.h, object.h), with no code generator and no compiler extension
 * except one, GCC's constructor attribute, isolated in RAY_TYPED_AT_STARTUP.
 * Everything it defines is static (or static inline) in the translation
 * unit that uses it; it adds no symbol to the library.
 *
 *     RAY_FUNCTION(i64, add, (i64, a), (i64, b)) { return a + b; }
 *
 *     RAY_REF(i64) three = add(1, 2);               // submit with values
 *     RAY_REF(i64) five = RAY_CALL(add, three, 2);  // a value or a ref per argument
 *     int64_t v;
 *     int rc = RAY_GET(five, RAY_TIMEOUT_INFINITE, &v);  // v == 5
 *
 * ---- Kinds ----------------------------------------------------------------
 *
 * A declaration names the kind of every parameter and return value with one
 * token. Built-in kinds (the store's type tags), and the C types they take:
 *
 *   kind     submit value            body parameter   body returns            RAY_GET into
 *   i64      any integer type        int64_t          int64_t                 int64_t *
 *   f64      any floating type       double           double                  double *
 *   str      char *, const char *    const char *     char * (malloc'd; the   char ** (free
 *                                    (NUL-terminated)  layer frees it)          with ray_free)
 *   bytes    ray_bytes_t             ray_bytes_t      ray_bytes_t (copied,    ray_buf_t *
 *                                    (zero-copy view)  or handed over with     (a view)
 *                                                      RAY_BYTES_OWNED)
 *   msgpack  msgpack_object [*]      msgpack_object   msgpack_sbuffer (packed ray_msgpack_t *
 *                                    (zero-copy)       value; the layer frees)
 *
 * A user type declared with RAY_TYPE(name, ...) is the kind `name` (its C
 * type for everything), and an actor class declared with RAY_ACTOR(Class,
 * ...) is the kind `Class` for parameters (a handle passed to a task or
 * method). Views and pointers a body receives are valid until it returns.
 *
 * ---- Typed refs and errors ------------------------------------------------
 *
 * RAY_REF(kind) is a distinct type per kind (16 bytes, the size of a
 * ray_ref_t, no allocation): a ref of the wrong kind passed to a call, or
 * read into the wrong C type, does not compile. `.ref` is the untyped
 * ray_ref_t, for the core API (ray_ref_release(r.ref), ray_wait, ...). The
 * caller owns one reference on every typed ref a call returns, as with the
 * core API.
 *
 * A typed call never returns an int: when it fails (runtime not started,
 * bad argument, out of memory, a failed input ref or handle, ...) it
 * returns a *failed ref*: `.ref.id` is 0 and RAY_STATUS(ref) gives the
 * negative RAY_E* code (like the Linux kernel's ERR_PTR). A failed ref
 * holds no reference (releasing it is a harmless RAY_ENOTFOUND); RAY_GET on
 * it returns its code; passing it to another typed call makes that call
 * fail with the same code without submitting anything. So a chain of calls
 * can be checked once, where its result is read - as in Ray, where errors
 * surface at get. Failed actor handles work the same way.
 *
 * ---- Declarations ---------------------------------------------------------
 *
 *   RAY_TYPE(name, T, number, pack, unpack)        a user value type
 *   RAY_FUNCTION(ret, f, (kind, param)...) {...}   a remote function
 *   RAY_ACTOR(Class, State)                        an actor class ...
 *   RAY_CONSTRUCTOR(Class, (kind, param)...) {...} ... its constructor, or
 *   RAY_DEFAULT_CONSTRUCTOR(Class)                     one with no parameters
 *   RAY_METHOD(Class, ret, m, (kind, param)...) {...}   ... a method
 *   RAY_DESTRUCTOR(Class) {...}                    ... its destructor (optional)
 *
 * `ret` is a kind, or a parenthesised list of (kind, name) pairs for several
 * returns: RAY_FUNCTION(((f64, sum), (i64, count)), stats, (bytes, data)).
 * Every declaration registers itself before main() (RAY_TYPED_AT_STARTUP):
 * there is no list to keep by hand, and every ray_init() sees them all.
 * Put each declaration in one .c file (their names are registered in the
 * runtime and must be unique); calling a function from another file means
 * exposing a plain C function that calls it.
 *
 * ---- Calls ----------------------------------------------------------------
 *
 *   f(v1, v2)                     plain values, checked like any C call
 *                                 (C's implicit conversions apply: 1.5 for
 *                                 an i64 becomes 1; RAY_CALL refuses it)
 *   RAY_CALL(f, x1, x2)           each x a plain value or a RAY_REF of the
 *                                 parameter's kind (a _Generic per argument,
 *                                 with no default: anything else fails to
 *                                 compile, and so does a wrong count)
 *   RAY_CALL_OPTS(&opts, f, ...)  the same with ray_task_opts_t (functions,
 *                                 methods) or ray_actor_opts_t (Class_new)
 *   Class_new(...)                create an actor: a Class handle
 *   Class_m(handle, ...)          call method m: typed refs
 *
 * ---- Values -----------------------------------------------------------------
 *
 *   RAY_PUT(kind, value)             a typed ref to a new object
 *   RAY_GET(ref, timeout_ms, &out)   decode into out's C type (_Generic on it)
 *   RAY_STATUS(ref or handle)        0, or the code a failed one carries
 *   RAY_REF_CAST(kind, raw)          a typed ref for a ray_ref_t, tag checked
 *   RAY_ACTOR_GET(Class, name)       a named actor's handle, class checked
 *   RAY_ACTOR_CAST(Class, raw)       a typed handle for a ray_actor_t
 *   RAY_CTX                          the running body's ray_task_ctx_t
 *   RAY_BYTES(p, n), RAY_BYTES_OWNED(p, n, free_fn, arg), ray_str_format(fmt, ...)
 *
 * Thread safety: everything here may be called from any thread, tasks and
 * actor methods included, as the core calls it wraps. Nothing blocks except
 * RAY_GET (up to its timeout).
 *
 * Limits: RAY_TYPED_MAX_PARAMS (8) parameters per function and constructor,
 * 7 per method; RAY_TYPED_MAX_RETURNS (8) returns; RAY_TYPED_MAX_METHODS
 * (64, definable before the include) methods per class.
 *
 * ---- Where things are ------------------------------------------------------
 *
 * Include this header (or rustyray.h, which does); it includes its parts,
 * the files in rustyray/typed/, in this order, and each public macro is
 * documented where it is defined:
 *   typed/pp.h        the preprocessor toolkit: counting, FOR_EACH (private)
 *   typed/value.h     ray_bytes_t, RAY_BYTES, ray_str_format, RAY_PUT, RAY_GET
 *   typed/ref.h       RAY_REF, RAY_REFS, RAY_RESULT, RAY_STATUS, RAY_REF_CAST
 *   typed/decl.h      RAY_CTX, and the pieces declarations are built from
 *   typed/kinds.h     the built-in kinds' encode/decode dispatch (private)
 *   typed/type.h      RAY_TYPE
 *   typed/function.h  RAY_FUNCTION
 *   typed/actor.h     RAY_ACTOR, RAY_CONSTRUCTOR, RAY_DEFAULT_CONSTRUCTOR,
 *                     RAY_METHOD, RAY_DESTRUCTOR, RAY_ACTOR_GET, RAY_ACTOR_CAST
 *   typed/call.h      RAY_CALL, RAY_CALL_OPTS
 *
 * Private: every name starting ray__ty_ or RAY__TY_, and the names with a
 * double underscore a declaration defines (f__submit, Class__class, ...). */
#ifndef RUSTYRAY_TYPED_H
#define RUSTYRAY_TYPED_H

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"
#include "object.h"
#include "runtime.h"
#include "task.h"

/* C11 only (_Generic): in C++ this header declares nothing, so rustyray.h
 * can include it for both languages; C++ code uses the core API. */
#ifndef __cplusplus

/* RAY_TYPED_AT_STARTUP(fn) { ... } defines a static function that runs
 * before main() (and when a shared object holding it is loaded). It is the
 * typed layer's only use of a compiler extension, GCC's (and Clang's)
 * constructor attribute: a compiler without it can define this macro before
 * including the header, with any mechanism that runs code at load time. */
#ifndef RAY_TYPED_AT_STARTUP
#if defined(__GNUC__) || defined(__clang__)
#define RAY_TYPED_AT_STARTUP(fn)                     \
  static void fn(void) __attribute__((constructor)); \
  static void fn(void)
#else
#error "rustyray/typed.h: define RAY_TYPED_AT_STARTUP(fn) to run fn before main()"
#endif
#endif

/* Most parameters of a function or constructor (a method has one fewer: its
 * handle takes a slot). Most returns of a function or method. */
#define RAY_TYPED_MAX_PARAMS 8
#define RAY_TYPED_MAX_RETURNS 8
/* Most methods per actor class (one is used internally). Define it before
 * the first include of rustyray.h / rustyray/typed.h to change it. */
#ifndef RAY_TYPED_MAX_METHODS
#define RAY_TYPED_MAX_METHODS 64
#endif

/* The parts, in dependency order (see "Where things are" above). */
#include "typed/pp.h"
#include "typed/value.h"
#include "typed/ref.h"
#include "typed/decl.h"
#include "typed/kinds.h"
#include "typed/type.h"
#include "typed/function.h"
#include "typed/actor.h"
#include "typed/call.h"

#endif /* !__cplusplus */
#endif /* RUSTYRAY_TYPED_H */
