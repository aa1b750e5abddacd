/* rustyray/typed/call.h - RAY_CALL and RAY_CALL_OPTS.
 *
 * A call converts each argument with a _Generic of its own (over the
 * built-in kinds' values and refs and the types the declaration defined for
 * that slot) into the parameter's in-argument type, and passes the results
 * to the declaration's typed submit, f__submit; RAY__TY_CALL_n spreads n
 * arguments. There is no default branch anywhere, so a wrong kind, type or
 * count is a compile error in the compiler's own words
 * (tests/compile_fail checks them). */
#ifndef RUSTYRAY_TYPED_CALL_H
#define RUSTYRAY_TYPED_CALL_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* RAY_CALL(f, args...): submit the declared function f, create an actor
 * (f = Class_new) or call a method (f = Class_m, the handle first), with
 * each argument a plain value or a typed ref of the parameter's kind, and
 * return RAY_REFS(f) (a Class handle for Class_new). Each argument goes
 * through a _Generic with no default branch: a value or ref of another kind
 * is a compile error ("incompatible type for argument"), as is a type that
 * is no kind's ("not compatible with any association"), a wrong number of
 * arguments ("too few/many arguments to function 'f__submit'") and a
 * handle of another class. Arguments are evaluated once each. Values are
 * copied before the call returns; refs are retained by the call. Errors,
 * blocking and thread safety as for the declaration's submit. */
#define RAY_CALL(...)                                                                     \
  RAY__TY_APPLY_C(                                                                        \
      RAY__TY_CAT(RAY__TY_CALL_, RAY__TY_CAT(RAY__TY_DEC1_, RAY__TY_NARGS(__VA_ARGS__))), \
      (NULL, __VA_ARGS__))

/* RAY_CALL_OPTS(opts, f, args...): RAY_CALL with options: a
 * const ray_task_opts_t * for functions and methods, a
 * const ray_actor_opts_t * for Class_new (NULL: the defaults). */
#define RAY_CALL_OPTS(...)                                                                \
  RAY__TY_APPLY_C(                                                                        \
      RAY__TY_CAT(RAY__TY_CALL_, RAY__TY_CAT(RAY__TY_DEC2_, RAY__TY_NARGS(__VA_ARGS__))), \
      (__VA_ARGS__))

/* Argument i of a call of f: a _Generic over the built-in kinds' values and
 * refs and the slot's own types (a user type's value and ref, a class
 * handle), with no default branch. (A _Static_assert with a message would
 * need the argument inside a struct declaration, where Clang rejects
 * compound literals such as RAY_BYTES(...).) */
#define RAY__TY_IN(f, i, x) RAY__TY_IN_CONV(f, i, x)
#define RAY__TY_IN_CONV(f, i, x) \
  _Generic((x), RAY__TY_IN_BUILTIN, f##__uv##i : f##__inu##i, f##__ur##i : f##__inr##i)(x)
#define RAY__TY_IN_BUILTIN                                                                        \
  _Bool:                                                                                          \
  ray__ty_inv_i64, char : ray__ty_inv_i64,                                                        \
                          signed char : ray__ty_inv_i64,                                          \
                                        unsigned char : ray__ty_inv_i64,                          \
                                                        short : ray__ty_inv_i64,                  \
                                                                unsigned short : ray__ty_inv_i64, \
                                                                                 int              \
      : ray__ty_inv_i64,                                                                          \
        unsigned : ray__ty_inv_i64,                                                               \
                   long : ray__ty_inv_i64,                                                        \
                          unsigned long : ray__ty_inv_i64,                                        \
                                          long long : ray__ty_inv_i64,                            \
                                                      unsigned long long : ray__ty_inv_i64,       \
                                                                           float                  \
      : ray__ty_inv_f64,                                                                          \
        double : ray__ty_inv_f64,                                                                 \
                 long double : ray__ty_inv_f64,                                                   \
                               char * : ray__ty_inv_str,                                          \
                                        const char * : ray__ty_inv_str,                           \
                                                       ray_bytes_t : ray__ty_inv_bytes,           \
                                                                     msgpack_object               \
      : ray__ty_inv_msgpack_value,                                                                \
        msgpack_object * : ray__ty_inv_msgpack,                                                   \
                           const msgpack_object * : ray__ty_inv_msgpack,                          \
                                                    ray_ref_i64_t : ray__ty_inref_i64,            \
                                                                    ray_ref_f64_t                 \
      : ray__ty_inref_f64,                                                                        \
        ray_ref_str_t : ray__ty_inref_str,                                                        \
                        ray_ref_bytes_t : ray__ty_inref_bytes,                                    \
                                          ray_ref_msgpack_t : ray__ty_inref_msgpack

/* RAY__TY_CALL_n(opts, f, a1, ..., an): the typed submit with each argument converted. */
#define RAY__TY_CALL_0(o, f) f##__submit(o)
#define RAY__TY_CALL_1(o, f, a1) f##__submit(o, RAY__TY_IN(f, 1, a1))
#define RAY__TY_CALL_2(o, f, a1, a2) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2))
#define RAY__TY_CALL_3(o, f, a1, a2, a3) \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3))
#define RAY__TY_CALL_4(o, f, a1, a2, a3, a4)                                       \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), \
              RAY__TY_IN(f, 4, a4))
#define RAY__TY_CALL_5(o, f, a1, a2, a3, a4, a5)                                   \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), \
              RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5))
#define RAY__TY_CALL_6(o, f, a1, a2, a3, a4, a5, a6)                               \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), \
              RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6))
#define RAY__TY_CALL_7(o, f, a1, a2, a3, a4, a5, a6, a7)                           \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), \
              RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6),    \
              RAY__TY_IN(f, 7, a7))
#define RAY__TY_CALL_8(o, f, a1, a2, a3, a4, a5, a6, a7, a8)                       \
  f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), \
              RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6),    \
              RAY__TY_IN(f, 7, a7), RAY__TY_IN(f, 8, a8))

#endif /* RUSTYRAY_TYPED_CALL_H */
