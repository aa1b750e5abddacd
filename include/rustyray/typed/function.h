/* rustyray/typed/function.h - remote functions: RAY_FUNCTION.
 *
 * One macro, documented below: it declares a remote function with the kinds
 * of its parameters and returns, defines its wrapper, its static descriptor,
 * its typed submit and its plain-value function from the pieces in
 * typed/decl.h, and registers the descriptor before main(). */
#ifndef RUSTYRAY_TYPED_FUNCTION_H
#define RUSTYRAY_TYPED_FUNCTION_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* RAY_FUNCTION(ret, f, (kind, param)...) { body }
 *
 * Declares the remote function f, whose body follows as a C function body:
 * it receives each param as its kind's C type and returns ret's (for
 * several returns, RAY_RESULT(f), a struct with a field per name). It may
 * call ray_fail(RAY_CTX, ...) and the rest of the core API, and submit and
 * get other tasks (nested gets never deadlock the pool). The macro defines:
 *   - the body, as a static function;
 *   - a wrapper that decodes the arguments (a failure fails the task with
 *     a message naming the argument), runs the body and stores its results;
 *   - a static descriptor named "f", registered before main() for every
 *     later ray_init (ray_init fails with RAY_ENAMEEXISTS if two functions
 *     share a name);
 *   - the typed submit: RAY_CALL(f, ...) / RAY_CALL_OPTS(&opts, f, ...)
 *     (ray_task_opts_t: num_returns, max_retries, retry_on_error, name),
 *     and the plain function `RAY_REFS(f) f(values...)`.
 * Up to RAY_TYPED_MAX_PARAMS params; a function of no params is
 * RAY_FUNCTION(ret, f). A submit returns at once (never blocks) with the
 * result ref(s), each failed with the submit's code when it fails: the
 * errors of ray_task_submit, RAY_ENOTINIT before ray_init, a failed ref or
 * handle argument's own code, RAY_EINVAL for a user value that does not
 * pack, a NULL string or NULL bytes of non-zero size, RAY_ENOTFOUND for a
 * NULL msgpack_object pointer. Thread-safe, from host threads, tasks and
 * actors. */
#define RAY_FUNCTION(...)                                                                     \
  RAY__TY_APPLY_A(RAY__TY_FUNCTION_, (RAY__TY_CAT(RAY__TY_DEC2_, RAY__TY_NARGS(__VA_ARGS__)), \
                                      __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_FUNCTION_(n, R, f, ...)                                                          \
  RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TYPES, RAY__TY_M_TYPES), (f, R))                     \
  RAY__TY_EACH(RAY__TY_W_SLOT, f, 8, (__VA_ARGS__))                                              \
  static f##__result f##__body(RAY__TY_EACHC(RAY__TY_W_BPARAM, ~, void, n, (__VA_ARGS__)));      \
  static ray_function_t f##__fn;                                                                 \
  static const uint32_t f##__rtypes[] = {                                                        \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TAGS, RAY__TY_M_TAGS), (R))};                    \
  static int f##__wrap(ray_task_ctx_t *ray__ty_ctx, void *ray__ty_arg) {                         \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                          \
    const char *ray__ty_bad = "";                                                                \
    (void)ray__ty_arg;                                                                           \
    (void)ray__ty_ok;                                                                            \
    (void)ray__ty_bad;                                                                           \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                            \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                             \
    if (ray__ty_rc == 0) {                                                                       \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                             \
      f##__result ray__ty_res = f##__body(RAY__TY_EACHC(RAY__TY_W_CARG, ~, , n, (__VA_ARGS__))); \
      ray__ty_ctx_leave(ray__ty_prev);                                                           \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_SET, RAY__TY_M_SET), (R))                        \
    } else {                                                                                     \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #f, ray__ty_bad);                   \
    }                                                                                            \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                             \
    return ray__ty_rc;                                                                           \
  }                                                                                              \
  static inline f##__refs f##__submit(                                                           \
      const ray_task_opts_t *ray__ty_opts RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) { \
    ray_arg_t ray__ty_args[n + 1];                                                               \
    ray_ref_t ray__ty_out[sizeof f##__rtypes / sizeof f##__rtypes[0]];                           \
    int ray__ty_rc = 0, ray__ty_built = 0;                                                       \
    f##__refs ray__ty_refs;                                                                      \
    (void)ray__ty_built;                                                                         \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                           \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                          \
    if (ray__ty_rc == 0)                                                                         \
      ray__ty_rc =                                                                               \
          ray_task_submit(f##__fn, n > 0 ? ray__ty_args : NULL, n, ray__ty_opts, ray__ty_out);   \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                            \
    RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_REFS, RAY__TY_M_REFS), (R))                        \
    return ray__ty_refs;                                                                         \
  }                                                                                              \
  static inline f##__refs f(RAY__TY_EACHC(RAY__TY_W_PPARAM, ~, void, n, (__VA_ARGS__))) {        \
    return f##__submit(NULL RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__)));                  \
  }                                                                                              \
  static ray_static_function_t f##__desc =                                                       \
      {#f,       f##__wrap, NULL, f##__rtypes, sizeof f##__rtypes / sizeof f##__rtypes[0],       \
       &f##__fn, NULL};                                                                          \
  RAY_TYPED_AT_STARTUP(f##__register) {                                                          \
    (void)f;                                                                                     \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, f, 8, (__VA_ARGS__))                                         \
    ray_static_function_add(&f##__desc);                                                         \
  }                                                                                              \
  static f##__result f##__body(RAY__TY_EACHC(RAY__TY_W_BPARAM, ~, void, n, (__VA_ARGS__)))

#endif /* RUSTYRAY_TYPED_FUNCTION_H */
