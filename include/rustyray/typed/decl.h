/* rustyray/typed/decl.h - the pieces a declaration is built from (private,
 * but for RAY_CTX).
 *
 * RAY_FUNCTION, RAY_CONSTRUCTOR and RAY_METHOD each expand to the same
 * three things around the user's body: a wrapper the core runs (decode each
 * argument into its kind's body parameter type, enter the body's context,
 * call the body, store its result(s), release the decode scratch), a typed
 * submit (build each core ray_arg_t from a value or a ref, submit, release
 * the scratch, return typed refs or failed ones) and a plain-value
 * function. This file holds the running body's context slot that RAY_CTX
 * reads, and the per-parameter (RAY__TY_W_*) and per-return (RAY__TY_S_*
 * for one return, RAY__TY_M_* for several) pieces, applied with
 * RAY__TY_EACH (typed/pp.h). Invariant: the scratch of argument i is
 * released exactly when argument i was decoded or built (ray__ty_ok and
 * ray__ty_built count them), so a failure part-way leaks nothing. */
#ifndef RUSTYRAY_TYPED_DECL_H
#define RUSTYRAY_TYPED_DECL_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* ---- The running body's context ------------------------------------------- */

/* The ray_task_ctx_t of the task, method or constructor whose body is
 * running on this thread (NULL elsewhere), for the core calls that take one:
 *     return ray_fail(RAY_CTX, RAY_EINVAL, "n = %d", n), 0;
 * A body that calls ray_fail fails whatever it returns. The slot belongs to
 * the .c file of the declaration: a helper in another file called by the
 * body sees NULL there, so pass it RAY_CTX as an argument. */
#define RAY_CTX ((ray_task_ctx_t *)*ray__ty_ctx_slot())

/* One slot per translation unit: bodies and their wrappers live in the same
 * one. Wrappers save and restore it, so nested bodies (a blocked worker runs
 * its children inline) see their own. */
static inline ray_task_ctx_t **ray__ty_ctx_slot(void) {
  static _Thread_local ray_task_ctx_t *slot;
  return &slot;
}
static inline ray_task_ctx_t *ray__ty_ctx_enter(ray_task_ctx_t *ctx) {
  ray_task_ctx_t **slot = ray__ty_ctx_slot();
  ray_task_ctx_t *prev = *slot;
  *slot = ctx;
  return prev;
}
static inline void ray__ty_ctx_leave(ray_task_ctx_t *prev) {
  *ray__ty_ctx_slot() = prev;
}

/* A failed argument decode fails the task with a message naming it. */
static inline int ray__ty_arg_fail(ray_task_ctx_t *ctx, int rc, const char *fn, const char *arg) {
  return ray_fail(ctx, rc, "%s: argument '%s': %s (%s)", fn, arg, ray_err_name(rc),
                  ray_strerror(rc));
}

/* ---- The pieces of a declaration ---------------------------------------- */

/* Pick the single-return or the several-returns form for return spec R. */
#define RAY__TY_RSEL(R, single, several) RAY__TY_IF(RAY__TY_IS_PAREN(R))(several, single)
/* Padding for the argument slots of a declaration: one (kind, name) per slot. */
#define RAY__TY_PADS                                                                         \
  (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad),     \
      (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), \
      (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), ~
/* Per-parameter pieces (W(c, i, kind, name); i counts from 1). */
/* the body's parameter list */
#define RAY__TY_W_BPARAM(c, i, K, n) ray__ty_pt_##K n
#define RAY__TY_W_BPARAMC(c, i, K, n) , ray__ty_pt_##K n
/* the wrapper: declare, decode, pass to the body, clean up */
#define RAY__TY_W_DECL(c, i, K, n)               \
  ray__ty_pt_##K ray__ty_a##i;                   \
  ray__ty_dsc_##K ray__ty_s##i;                  \
  memset(&ray__ty_a##i, 0, sizeof ray__ty_a##i); \
  memset(&ray__ty_s##i, 0, sizeof ray__ty_s##i);
#define RAY__TY_W_DEC(c, i, K, n)                                                   \
  if (ray__ty_rc == 0) {                                                            \
    ray__ty_rc = ray__ty_dec_##K(ray__ty_ctx, i - 1, &ray__ty_a##i, &ray__ty_s##i); \
    if (ray__ty_rc == 0)                                                            \
      ray__ty_ok = i;                                                               \
    else                                                                            \
      ray__ty_bad = #n;                                                             \
  }
#define RAY__TY_W_CARG(c, i, K, n) ray__ty_a##i
#define RAY__TY_W_CARGC(c, i, K, n) , ray__ty_a##i
#define RAY__TY_W_FIN(c, i, K, n) \
  if (ray__ty_ok >= i) ray__ty_dfin_##K(&ray__ty_s##i);
/* the typed submit: its parameters, the core arguments it builds */
#define RAY__TY_W_SPARAM(c, i, K, n) , ray_in_##K##_t ray__ty_a##i
#define RAY__TY_W_SDECL(c, i, K, n) \
  ray__ty_asc_##K ray__ty_s##i;     \
  memset(&ray__ty_s##i, 0, sizeof ray__ty_s##i);
#define RAY__TY_W_SBUILD(c, i, K, n)                                                  \
  if (ray__ty_rc == 0) {                                                              \
    ray__ty_rc = ray__ty_arg_##K(&ray__ty_a##i, &ray__ty_args[i - 1], &ray__ty_s##i); \
    if (ray__ty_rc == 0) ray__ty_built = i;                                           \
  }
#define RAY__TY_W_SFIN(c, i, K, n) \
  if (ray__ty_built >= i) ray__ty_afin_##K(&ray__ty_s##i);
/* the plain-value function */
#define RAY__TY_W_PPARAM(c, i, K, n) ray__ty_sv_##K ray__ty_v##i
#define RAY__TY_W_PPARAMC(c, i, K, n) , ray__ty_sv_##K ray__ty_v##i
#define RAY__TY_W_PARG(c, i, K, n) , ray__ty_inv_##K(ray__ty_v##i)
/* RAY_CALL slot i of declaration c: the extra types it takes (a user
 * type's value and ref, a class handle) and their converters. */
#define RAY__TY_W_SLOT(c, i, K, n)                                 \
  typedef ray__ty_uv_##K c##__uv##i;                               \
  typedef ray__ty_ur_##K c##__ur##i;                               \
  static inline ray_in_##K##_t c##__inu##i(c##__uv##i ray__ty_x) { \
    return ray__ty_inu_##K(ray__ty_x);                             \
  }                                                                \
  static inline ray_in_##K##_t c##__inr##i(c##__ur##i ray__ty_x) { \
    return ray__ty_inr_##K(ray__ty_x);                             \
  }

/* Mark the slot converters used (Clang warns about unused static inline
 * functions of the main file; a (void) reference in a used function is a use). */
#define RAY__TY_W_SLOTUSE(c, i, K, n) \
  (void)c##__inu##i;                  \
  (void)c##__inr##i;

/* Per-return pieces: one return `R` (a kind), or several `((kind, name)...)`. */
#define RAY__TY_NRETS(R) RAY__TY_NARGS(RAY__TY_STRIP R)
#define RAY__TY_S_TYPES(f, R)         \
  typedef ray__ty_rt_##R f##__result; \
  typedef ray_ref_##R##_t f##__refs;
#define RAY__TY_M_TYPES(f, R)                                                 \
  typedef struct {                                                            \
    RAY__TY_EACH(RAY__TY_W_RFIELD, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~)) \
  } f##__result;                                                              \
  typedef struct {                                                            \
    RAY__TY_EACH(RAY__TY_W_RREF, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))   \
  } f##__refs;
#define RAY__TY_W_RFIELD(c, i, K, n) ray__ty_rt_##K n;
#define RAY__TY_W_RREF(c, i, K, n) ray_ref_##K##_t n;
#define RAY__TY_S_TAGS(R) (uint32_t) ray__ty_tag_##R
#define RAY__TY_M_TAGS(R) RAY__TY_EACH(RAY__TY_W_RTAG, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))
#define RAY__TY_W_RTAG(c, i, K, n) (uint32_t) ray__ty_tag_##K,
/* in the wrapper: store the body's result(s); every one is consumed */
#define RAY__TY_S_SET(R) ray__ty_rc = ray__ty_ret_##R(ray__ty_ctx, 0, ray__ty_res);
#define RAY__TY_M_SET(R)                                                    \
  {                                                                         \
    int ray__ty_r2;                                                         \
    RAY__TY_EACH(RAY__TY_W_RSET, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~)) \
  }
#define RAY__TY_W_RSET(c, i, K, n)                                 \
  ray__ty_r2 = ray__ty_ret_##K(ray__ty_ctx, i - 1, ray__ty_res.n); \
  if (ray__ty_rc == 0) ray__ty_rc = ray__ty_r2;
/* in the typed submit: the typed refs, or failed ones */
#define RAY__TY_S_REFS(R) \
  ray__ty_refs.ref = ray__ty_rc == 0 ? ray__ty_out[0] : ray__ty_ref_fail(ray__ty_rc);
#define RAY__TY_M_REFS(R)                                                      \
  {                                                                            \
    ray_ref_t ray__ty_f = ray__ty_ref_fail(ray__ty_rc);                        \
    RAY__TY_EACH(RAY__TY_W_RREFSET, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~)) \
  }
#define RAY__TY_W_RREFSET(c, i, K, n) \
  ray__ty_refs.n.ref = ray__ty_rc == 0 ? ray__ty_out[i - 1] : ray__ty_f;

#endif /* RUSTYRAY_TYPED_DECL_H */
