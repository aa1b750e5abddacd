/* rustyray/typed/actor.h - actor classes: RAY_ACTOR and its parts.
 *
 * RAY_ACTOR declares a class (its handle type, its kind, its method table);
 * RAY_CONSTRUCTOR or RAY_DEFAULT_CONSTRUCTOR, RAY_METHOD and RAY_DESTRUCTOR
 * fill it in; RAY_ACTOR_GET and RAY_ACTOR_CAST turn untyped handles into
 * typed ones. The support functions at the end append methods to a class
 * table before main() and check a handle's class: every typed class has a
 * marker method whose name holds its table's address, so a call by that
 * name succeeds exactly on actors of that class. */
#ifndef RUSTYRAY_TYPED_ACTOR_H
#define RUSTYRAY_TYPED_ACTOR_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* RAY_ACTOR(Class, State)
 *
 * Declares the actor class Class whose state is a State (a complete type),
 * and defines:
 *   - `Class`, the handle type of its actors: a small value, distinct per
 *     class, so a method of another class does not compile on it. `.actor`
 *     is the ray_actor_t for the core API (ray_actor_release, ray_actor_kill,
 *     ray_arg_actor ...); RAY_STATUS(handle) is 0 or the code a failed
 *     creation returned. The caller owns one handle reference, as in the
 *     core API.
 *   - the class table, named "Class", filled before main() by the
 *     RAY_METHODs that follow (no list kept by hand);
 *   - the kind `Class`, so handles can be parameters of functions and
 *     methods (passed with ray_arg_actor: the callee borrows the handle for
 *     the call; it must retain it to keep it);
 *   - RAY_ACTOR_GET(Class, name) and RAY_ACTOR_CAST(Class, raw).
 * The layer allocates the state (zeroed, with calloc) before the
 * constructor body runs and frees it (with free) after the destructor body,
 * if any. A class needs exactly one RAY_CONSTRUCTOR or
 * RAY_DEFAULT_CONSTRUCTOR (the link fails without it), and may have any
 * number of RAY_METHODs (up to RAY_TYPED_MAX_METHODS - 1) and one
 * RAY_DESTRUCTOR. Declare the class's parts in one .c file. */
#define RAY_ACTOR(Class, State)                                                                 \
  typedef State Class##__state;                                                                 \
  typedef union Class {                                                                         \
    ray_actor_t actor;                                                                          \
    ray__ty_status_t ray__ty_st_;                                                               \
  } Class;                                                                                      \
  typedef struct {                                                                              \
    Class v;                                                                                    \
  } ray_in_##Class##_t;                                                                         \
  typedef Class ray__ty_sv_##Class;                                                             \
  typedef Class ray__ty_uv_##Class;                                                             \
  typedef ray__ty_nour ray__ty_ur_##Class;                                                      \
  typedef Class ray__ty_pt_##Class;                                                             \
  typedef char ray__ty_asc_##Class;                                                             \
  typedef char ray__ty_dsc_##Class;                                                             \
  static inline ray_in_##Class##_t ray__ty_inv_##Class(Class h) {                               \
    ray_in_##Class##_t in;                                                                      \
    in.v = h;                                                                                   \
    return in;                                                                                  \
  }                                                                                             \
  static inline ray_in_##Class##_t ray__ty_inu_##Class(Class h) {                               \
    return ray__ty_inv_##Class(h);                                                              \
  }                                                                                             \
  static inline ray_in_##Class##_t ray__ty_inr_##Class(ray__ty_nour x) {                        \
    ray_in_##Class##_t in;                                                                      \
    (void)x;                                                                                    \
    memset(&in, 0, sizeof in);                                                                  \
    return in;                                                                                  \
  }                                                                                             \
  static inline int ray__ty_arg_##Class(const ray_in_##Class##_t *in, ray_arg_t *a, char *sc) { \
    (void)sc;                                                                                   \
    return ray__ty_arg_actor(in->v.ray__ty_st_, a);                                             \
  }                                                                                             \
  static inline void ray__ty_afin_##Class(char *sc) {                                           \
    (void)sc;                                                                                   \
  }                                                                                             \
  static inline int ray__ty_dec_##Class(ray_task_ctx_t *ctx, size_t i, Class *out, char *sc) {  \
    (void)sc;                                                                                   \
    return ray__ty_dec_actor(ctx, i, &out->ray__ty_st_);                                        \
  }                                                                                             \
  static inline void ray__ty_dfin_##Class(char *sc) {                                           \
    (void)sc;                                                                                   \
  }                                                                                             \
  static ray_method_def_t Class##__methods[RAY_TYPED_MAX_METHODS];                              \
  static void (*Class##__user_dtor)(Class##__state * self);                                     \
  static int Class##__ctor(ray_task_ctx_t *ray__ty_ctx, void **ray__ty_state);                  \
  static void Class##__dtor(void *ray__ty_state) {                                              \
    if (Class##__user_dtor != NULL) Class##__user_dtor((Class##__state *)ray__ty_state);        \
    free(ray__ty_state);                                                                        \
  }                                                                                             \
  static ray_actor_class_t Class##__class = {#Class, Class##__ctor, Class##__dtor,              \
                                             Class##__methods, 0};                              \
  static char Class##__marker[64];                                                              \
  static inline Class Class##__cast(ray_actor_t ray__ty_raw);                                   \
  static inline Class Class##__get(const char *ray__ty_name);                                   \
  RAY_TYPED_AT_STARTUP(Class##__register) {                                                     \
    (void)ray__ty_inv_##Class;                                                                  \
    (void)ray__ty_inu_##Class;                                                                  \
    (void)ray__ty_inr_##Class;                                                                  \
    (void)ray__ty_arg_##Class;                                                                  \
    (void)ray__ty_afin_##Class;                                                                 \
    (void)ray__ty_dec_##Class;                                                                  \
    (void)ray__ty_dfin_##Class;                                                                 \
    (void)Class##__cast;                                                                        \
    (void)Class##__get;                                                                         \
    ray__ty_class_marker(&Class##__class, Class##__methods, Class##__marker,                    \
                         sizeof Class##__marker);                                               \
  }                                                                                             \
  static inline Class Class##__cast(ray_actor_t ray__ty_raw) {                                  \
    Class ray__ty_h;                                                                            \
    ray__ty_h.ray__ty_st_ = ray__ty_actor_check(ray__ty_raw, Class##__marker);                  \
    return ray__ty_h;                                                                           \
  }                                                                                             \
  static inline Class Class##__get(const char *ray__ty_name) {                                  \
    Class ray__ty_h;                                                                            \
    ray__ty_h.ray__ty_st_ = ray__ty_actor_lookup(ray__ty_name, Class##__marker);                \
    return ray__ty_h;                                                                           \
  }

/* RAY_CONSTRUCTOR(Class, (kind, param)...) { body }
 *
 * The constructor of Class. Its body gets `self` (a Class's State *, zeroed)
 * and the params, and returns 0, or a negative RAY_E* code to fail (say
 * `return ray_fail(RAY_CTX, RAY_EINVAL, "...")`): the actor then dies, its
 * calls fail with RAY_EACTORDIED caused by that error, and the state is
 * freed without running the destructor body. Defines the typed creation:
 * `Class Class_new(values...)`, RAY_CALL(Class_new, ...) and
 * RAY_CALL_OPTS(&actor_opts, Class_new, ...) (ray_actor_opts_t: name,
 * get_if_exists, max_restarts, max_concurrency, detached ...). Creation
 * returns the handle at once; the constructor runs on the pool when its
 * ref arguments are ready, and calls queue behind it. A failed creation
 * returns a failed handle (RAY_STATUS): the errors of ray_actor_create. */
#define RAY_CONSTRUCTOR(...)                                                                     \
  RAY__TY_APPLY_A(RAY__TY_CONSTRUCTOR_, (RAY__TY_CAT(RAY__TY_DEC1_, RAY__TY_NARGS(__VA_ARGS__)), \
                                         __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_CONSTRUCTOR_(n, Class, ...)                                                        \
  RAY__TY_EACH(RAY__TY_W_SLOT, Class##_new, 8, (__VA_ARGS__))                                      \
  static int Class##__ctor_body(                                                                   \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)));                  \
  static inline Class Class##_new__submit(                                                         \
      const ray_actor_opts_t *ray__ty_opts RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) {  \
    ray_arg_t ray__ty_args[n + 1];                                                                 \
    int ray__ty_rc = 0, ray__ty_built = 0;                                                         \
    ray_actor_t ray__ty_raw = {0};                                                                 \
    Class ray__ty_h;                                                                               \
    (void)ray__ty_built;                                                                           \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                             \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                            \
    if (ray__ty_rc == 0)                                                                           \
      ray__ty_rc = ray_actor_create(&Class##__class, n > 0 ? ray__ty_args : NULL, n, ray__ty_opts, \
                                    &ray__ty_raw);                                                 \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                              \
    ray__ty_h.ray__ty_st_ =                                                                        \
        ray__ty_rc == 0 ? ray__ty_status_ok(ray__ty_raw.id) : ray__ty_status_fail(ray__ty_rc);     \
    return ray__ty_h;                                                                              \
  }                                                                                                \
  static inline Class Class##_new(RAY__TY_EACHC(RAY__TY_W_PPARAM, ~, void, n, (__VA_ARGS__))) {    \
    return Class##_new__submit(NULL RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__)));            \
  }                                                                                                \
  static int Class##__ctor(ray_task_ctx_t *ray__ty_ctx, void **ray__ty_state) {                    \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                            \
    const char *ray__ty_bad = "";                                                                  \
    Class##__state *ray__ty_self = (Class##__state *)calloc(1, sizeof *ray__ty_self);              \
    (void)ray__ty_ok;                                                                              \
    (void)ray__ty_bad;                                                                             \
    (void)Class##_new;                                                                             \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, Class##_new, 8, (__VA_ARGS__))                                 \
    if (ray__ty_self == NULL) return ray_fail(ray__ty_ctx, RAY_ENOMEM, "%s: no memory", #Class);   \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                              \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                               \
    if (ray__ty_rc == 0) {                                                                         \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                               \
      ray__ty_rc =                                                                                 \
          Class##__ctor_body(ray__ty_self RAY__TY_EACH(RAY__TY_W_CARGC, ~, n, (__VA_ARGS__)));     \
      ray__ty_ctx_leave(ray__ty_prev);                                                             \
    } else {                                                                                       \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #Class ".__init__", ray__ty_bad);     \
    }                                                                                              \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                               \
    if (ray__ty_rc != 0) {                                                                         \
      free(ray__ty_self);                                                                          \
      return ray__ty_rc;                                                                           \
    }                                                                                              \
    *ray__ty_state = ray__ty_self;                                                                 \
    return 0;                                                                                      \
  }                                                                                                \
  static int Class##__ctor_body(                                                                   \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)))

/* RAY_DEFAULT_CONSTRUCTOR(Class): a constructor with no parameters that
 * leaves the state zeroed (Ray's class without __init__), in place of a
 * RAY_CONSTRUCTOR. Class_new() then takes no arguments. */
#define RAY_DEFAULT_CONSTRUCTOR(Class) \
  RAY_CONSTRUCTOR(Class) {             \
    (void)self;                        \
    return 0;                          \
  }

/* RAY_METHOD(Class, ret, m, (kind, param)...) { body }
 *
 * The method m of Class. Its body gets `self` (the actor's State *) and the
 * params, and returns as a function body does; calls of one actor run one
 * at a time (unless max_concurrency > 1), in submission order per caller,
 * so the body owns *self while it runs. Defines the typed call
 * `RAY_REFS(Class_m) Class_m(Class handle, values...)`, RAY_CALL(Class_m,
 * handle, ...) and RAY_CALL_OPTS(&task_opts, Class_m, handle, ...), which
 * call by method index (resolved before main). A call returns at once; a
 * failed handle or argument gives failed refs (RAY_STATUS), as do the
 * errors of ray_actor_call_id; a call to a dead actor gives refs that fail
 * with RAY_EACTORDIED. Up to RAY_TYPED_MAX_PARAMS - 1 params. */
#define RAY_METHOD(...)                                                                     \
  RAY__TY_APPLY_A(RAY__TY_METHOD_, (RAY__TY_CAT(RAY__TY_DEC3_, RAY__TY_NARGS(__VA_ARGS__)), \
                                    __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_METHOD_(n, Class, R, m, ...)                                                       \
  RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TYPES, RAY__TY_M_TYPES), (Class##_##m, R))             \
  RAY__TY_EACH(RAY__TY_W_SLOT, Class##_##m, 8, ((Class, ray__ty_self), __VA_ARGS__))               \
  static Class##_##m##__result Class##_##m##__body(                                                \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)));                  \
  static const uint32_t Class##_##m##__rtypes[] = {                                                \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TAGS, RAY__TY_M_TAGS), (R))};                      \
  static uint32_t Class##_##m##__id = UINT32_MAX;                                                  \
  static int Class##_##m##__wrap(ray_task_ctx_t *ray__ty_ctx, void *ray__ty_state) {               \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                            \
    const char *ray__ty_bad = "";                                                                  \
    (void)ray__ty_ok;                                                                              \
    (void)ray__ty_bad;                                                                             \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                              \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                               \
    if (ray__ty_rc == 0) {                                                                         \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                               \
      Class##_##m##__result ray__ty_res = Class##_##m##__body(                                     \
          (Class##__state *)ray__ty_state RAY__TY_EACH(RAY__TY_W_CARGC, ~, n, (__VA_ARGS__)));     \
      ray__ty_ctx_leave(ray__ty_prev);                                                             \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_SET, RAY__TY_M_SET), (R))                          \
    } else {                                                                                       \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #Class "." #m, ray__ty_bad);          \
    }                                                                                              \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                               \
    return ray__ty_rc;                                                                             \
  }                                                                                                \
  static inline Class##_##m##__refs Class##_##m##__submit(                                         \
      const ray_task_opts_t *ray__ty_opts,                                                         \
      ray_in_##Class##_t ray__ty_h RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) {          \
    ray_arg_t ray__ty_args[n + 1];                                                                 \
    ray_ref_t ray__ty_out[sizeof Class##_##m##__rtypes / sizeof Class##_##m##__rtypes[0]];         \
    int ray__ty_rc = ray__ty_status_code(ray__ty_h.v.ray__ty_st_), ray__ty_built = 0;              \
    Class##_##m##__refs ray__ty_refs;                                                              \
    (void)ray__ty_built;                                                                           \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                             \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                            \
    if (ray__ty_rc == 0)                                                                           \
      ray__ty_rc = ray__ty_method_call(ray__ty_h.v.ray__ty_st_, Class##_##m##__id,                 \
                                       n > 0 ? ray__ty_args : NULL, n, ray__ty_opts, ray__ty_out); \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                              \
    RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_REFS, RAY__TY_M_REFS), (R))                          \
    return ray__ty_refs;                                                                           \
  }                                                                                                \
  static inline Class##_##m##__refs Class##_##m(                                                   \
      Class ray__ty_h RAY__TY_EACH(RAY__TY_W_PPARAMC, ~, n, (__VA_ARGS__))) {                      \
    return Class##_##m##__submit(                                                                  \
        NULL, ray__ty_inv_##Class(ray__ty_h) RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__)));   \
  }                                                                                                \
  RAY_TYPED_AT_STARTUP(Class##_##m##__register) {                                                  \
    (void)Class##_##m;                                                                             \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, Class##_##m, 8, ((Class, ray__ty_self), __VA_ARGS__))          \
    Class##_##m##__id = ray__ty_class_add(                                                         \
        &Class##__class, Class##__methods, #m, Class##_##m##__wrap, Class##_##m##__rtypes,         \
        sizeof Class##_##m##__rtypes / sizeof Class##_##m##__rtypes[0]);                           \
  }                                                                                                \
  static Class##_##m##__result Class##_##m##__body(                                                \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)))

/* RAY_DESTRUCTOR(Class) { body }
 *
 * Optional: a body run with `self` once per successful construction (on
 * kill, last handle release, restart or shutdown; on a worker or the thread
 * calling ray_shutdown), before the layer frees the state. */
#define RAY_DESTRUCTOR(Class)                           \
  static void Class##__dtor_body(Class##__state *self); \
  RAY_TYPED_AT_STARTUP(Class##__dtor_register) {        \
    Class##__user_dtor = Class##__dtor_body;            \
  }                                                     \
  static void Class##__dtor_body(Class##__state *self)

/* A typed handle for the actor named `name` (ray_get_actor: a new handle
 * reference the caller owns), checked to be of Class: a failed handle with
 * RAY_ENOTFOUND (no such actor), RAY_ETYPE (another class: its reference
 * is released), or ray_get_actor's errors. The check submits one no-op
 * call to the actor. Never blocks; thread-safe. */
#define RAY_ACTOR_GET(Class, name) Class##__get(name)

/* A typed handle for the untyped handle `raw` (the same reference, none
 * added), checked as RAY_ACTOR_GET does: e.g. for ray_ctx_actor(RAY_CTX,
 * &raw) inside a method. */
#define RAY_ACTOR_CAST(Class, raw) Class##__cast(raw)

/* The actor support the declarations use. */
static inline int ray__ty_arg_actor(ray__ty_status_t h, ray_arg_t *a) {
  ray_actor_t raw;
  if (h.id == 0) return ray__ty_status_code(h);
  raw.id = h.id;
  *a = ray_arg_actor(raw);
  return 0;
}
static inline int ray__ty_dec_actor(ray_task_ctx_t *ctx, size_t i, ray__ty_status_t *out) {
  ray_actor_t raw;
  int rc = ray_ctx_arg_actor(ctx, i, &raw);
  *out = rc == 0 ? ray__ty_status_ok(raw.id) : ray__ty_status_fail(rc);
  return rc;
}
static inline int ray__ty_method_call(ray__ty_status_t h, uint32_t method, const ray_arg_t *args,
                                      size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out) {
  ray_actor_t raw;
  if (method == UINT32_MAX) return RAY_EINVAL; /* the class table was full */
  raw.id = h.id;
  return ray_actor_call_id(raw, method, args, nargs, opts, out);
}
/* Append a method to a class table before main(); its index, or UINT32_MAX
 * when the table is full (its calls then fail with RAY_EINVAL). */
static inline uint32_t ray__ty_class_add(ray_actor_class_t *cls, ray_method_def_t *table,
                                         const char *name, ray_method_fn fn, const uint32_t *types,
                                         size_t ntypes) {
  if (cls->num_methods >= RAY_TYPED_MAX_METHODS) return UINT32_MAX;
  table[cls->num_methods].name = name;
  table[cls->num_methods].fn = fn;
  table[cls->num_methods].return_types = types;
  table[cls->num_methods].num_returns = ntypes;
  return (uint32_t)cls->num_methods++;
}
/* Every typed class has a no-op method whose name holds the address of its
 * table: the core resolves method names in an actor's own class, so a call
 * by that name succeeds exactly on actors of this class. */
static inline int ray__ty_marker_fn(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, 0);
}
static inline void ray__ty_class_marker(ray_actor_class_t *cls, ray_method_def_t *table, char *name,
                                        size_t size) {
  static const uint32_t types[1] = {RAY_TYPE_I64};
  snprintf(name, size, "ray.typed.class@%p", (void *)cls);
  (void)ray__ty_class_add(cls, table, name, ray__ty_marker_fn, types, 1);
}
static inline ray__ty_status_t ray__ty_actor_check(ray_actor_t raw, const char *marker) {
  ray_ref_t r;
  int rc;
  if (raw.id == 0) return ray__ty_status_fail(RAY_ENOTFOUND);
  if ((rc = ray_actor_retain(raw)) != 0) return ray__ty_status_fail(rc);
  rc = ray_actor_call(raw, marker, NULL, 0, NULL, &r);
  (void)ray_actor_release(raw);
  if (rc == RAY_ENOTFOUND) return ray__ty_status_fail(RAY_ETYPE); /* it exists: another class */
  if (rc != 0) return ray__ty_status_fail(rc);
  (void)ray_ref_release(r);
  return ray__ty_status_ok(raw.id);
}
static inline ray__ty_status_t ray__ty_actor_lookup(const char *name, const char *marker) {
  ray_actor_t raw;
  int rc = ray_get_actor(name, &raw);
  if (rc != 0) return ray__ty_status_fail(rc);
  ray__ty_status_t st = ray__ty_actor_check(raw, marker);
  if (st.id == 0) (void)ray_actor_release(raw);
  return st;
}

#endif /* RUSTYRAY_TYPED_ACTOR_H */
