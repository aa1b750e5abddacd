/* rustyray/typed/pp.h - the typed layer's preprocessor toolkit (private).
 *
 * Generic C11 preprocessor machinery that knows nothing of kinds, refs or
 * the runtime: pasting after expansion (RAY__TY_CAT), one application macro
 * per nesting level (a macro cannot expand inside its own expansion), a test
 * for a parenthesised argument and an if on it (RAY__TY_IS_PAREN,
 * RAY__TY_IF), argument counting (RAY__TY_NARGS, 1 to 24 arguments) with
 * its decrement tables, and the FOR_EACH over (kind, name) pairs that the
 * declarations are built with (RAY__TY_EACH, RAY__TY_EACHC, over
 * RAY__TY_MAP_n and RAY__TY_MAPC_n: up to 8 items, RAY_TYPED_MAX_PARAMS).
 * Macros only: it declares nothing, and a user never needs to read it. */
#ifndef RUSTYRAY_TYPED_PP_H
#define RUSTYRAY_TYPED_PP_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

#define RAY__TY_CAT(a, b) RAY__TY_CAT_(a, b)
#define RAY__TY_CAT_(a, b) a##b
#define RAY__TY_STRIP(...) __VA_ARGS__
/* m args, with args expanded first; one per nesting level, since a macro
 * cannot expand inside its own expansion. */
#define RAY__TY_APPLY_A(m, args) m args
#define RAY__TY_APPLY_S(m, args) m args
#define RAY__TY_APPLY_M(m, args) m args
#define RAY__TY_APPLY_I(m, args) m args
#define RAY__TY_APPLY_C(m, args) m args
/* RAY__TY_IS_PAREN(x): 1 when x is parenthesised, else 0. */
#define RAY__TY_IS_PAREN(x) RAY__TY_IS_PAREN_CHECK(RAY__TY_IS_PAREN_PROBE x)
#define RAY__TY_IS_PAREN_PROBE(...) ~, 1
#define RAY__TY_IS_PAREN_CHECK(...) RAY__TY_IS_PAREN_CHECK_(__VA_ARGS__, 0, ~)
#define RAY__TY_IS_PAREN_CHECK_(a, b, ...) b
#define RAY__TY_IF(c) RAY__TY_CAT(RAY__TY_IF_, c)
#define RAY__TY_IF_0(t, f) f
#define RAY__TY_IF_1(t, f) t
/* Counting: RAY__TY_NARGS(a, b, c) is 3 (1 to 24 arguments). */
#define RAY__TY_NARGS(...)                                                                         \
  RAY__TY_NARGS_(__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, \
                 6, 5, 4, 3, 2, 1, ~)
#define RAY__TY_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, \
                       a18, a19, a20, a21, a22, a23, a24, n, ...)                                  \
  n
/* RAY__TY_DEC1_n is n - 1. */
#define RAY__TY_DEC1_1 0
#define RAY__TY_DEC1_2 1
#define RAY__TY_DEC1_3 2
#define RAY__TY_DEC1_4 3
#define RAY__TY_DEC1_5 4
#define RAY__TY_DEC1_6 5
#define RAY__TY_DEC1_7 6
#define RAY__TY_DEC1_8 7
#define RAY__TY_DEC1_9 8
#define RAY__TY_DEC1_10 9
#define RAY__TY_DEC1_11 10
#define RAY__TY_DEC1_12 11
#define RAY__TY_DEC1_13 12
#define RAY__TY_DEC1_14 13
#define RAY__TY_DEC1_15 14
#define RAY__TY_DEC1_16 15
#define RAY__TY_DEC1_17 16
#define RAY__TY_DEC1_18 17
#define RAY__TY_DEC1_19 18
#define RAY__TY_DEC1_20 19
#define RAY__TY_DEC1_21 20
#define RAY__TY_DEC1_22 21
#define RAY__TY_DEC1_23 22
#define RAY__TY_DEC1_24 23
/* RAY__TY_DEC2_n is n - 2. */
#define RAY__TY_DEC2_2 0
#define RAY__TY_DEC2_3 1
#define RAY__TY_DEC2_4 2
#define RAY__TY_DEC2_5 3
#define RAY__TY_DEC2_6 4
#define RAY__TY_DEC2_7 5
#define RAY__TY_DEC2_8 6
#define RAY__TY_DEC2_9 7
#define RAY__TY_DEC2_10 8
#define RAY__TY_DEC2_11 9
#define RAY__TY_DEC2_12 10
#define RAY__TY_DEC2_13 11
#define RAY__TY_DEC2_14 12
#define RAY__TY_DEC2_15 13
#define RAY__TY_DEC2_16 14
#define RAY__TY_DEC2_17 15
#define RAY__TY_DEC2_18 16
#define RAY__TY_DEC2_19 17
#define RAY__TY_DEC2_20 18
#define RAY__TY_DEC2_21 19
#define RAY__TY_DEC2_22 20
#define RAY__TY_DEC2_23 21
#define RAY__TY_DEC2_24 22
/* RAY__TY_DEC3_n is n - 3. */
#define RAY__TY_DEC3_3 0
#define RAY__TY_DEC3_4 1
#define RAY__TY_DEC3_5 2
#define RAY__TY_DEC3_6 3
#define RAY__TY_DEC3_7 4
#define RAY__TY_DEC3_8 5
#define RAY__TY_DEC3_9 6
#define RAY__TY_DEC3_10 7
#define RAY__TY_DEC3_11 8
#define RAY__TY_DEC3_12 9
#define RAY__TY_DEC3_13 10
#define RAY__TY_DEC3_14 11
#define RAY__TY_DEC3_15 12
#define RAY__TY_DEC3_16 13
#define RAY__TY_DEC3_17 14
#define RAY__TY_DEC3_18 15
#define RAY__TY_DEC3_19 16
#define RAY__TY_DEC3_20 17
#define RAY__TY_DEC3_21 18
#define RAY__TY_DEC3_22 19
#define RAY__TY_DEC3_23 20
#define RAY__TY_DEC3_24 21
/* RAY__TY_MAP_n(M, c, x1, ..., xn, ...): M(c, 1, x1) ... M(c, n, xn); the rest is ignored. */
#define RAY__TY_MAP_0(M, c, ...)
#define RAY__TY_MAP_1(M, c, x1, ...) M(c, 1, x1)
#define RAY__TY_MAP_2(M, c, x1, x2, ...) M(c, 1, x1) M(c, 2, x2)
#define RAY__TY_MAP_3(M, c, x1, x2, x3, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3)
#define RAY__TY_MAP_4(M, c, x1, x2, x3, x4, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4)
#define RAY__TY_MAP_5(M, c, x1, x2, x3, x4, x5, ...) \
  M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5)
#define RAY__TY_MAP_6(M, c, x1, x2, x3, x4, x5, x6, ...) \
  M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6)
#define RAY__TY_MAP_7(M, c, x1, x2, x3, x4, x5, x6, x7, ...) \
  M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6) M(c, 7, x7)
#define RAY__TY_MAP_8(M, c, x1, x2, x3, x4, x5, x6, x7, x8, ...) \
  M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6) M(c, 7, x7) M(c, 8, x8)
/* RAY__TY_MAPC_n(M, c, z, x1, ..., xn, ...): M(c, 1, x1), ..., M(c, n, xn), or z when n is 0. */
#define RAY__TY_MAPC_0(M, c, z, ...) z
#define RAY__TY_MAPC_1(M, c, z, x1, ...) M(c, 1, x1)
#define RAY__TY_MAPC_2(M, c, z, x1, x2, ...) M(c, 1, x1), M(c, 2, x2)
#define RAY__TY_MAPC_3(M, c, z, x1, x2, x3, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3)
#define RAY__TY_MAPC_4(M, c, z, x1, x2, x3, x4, ...) \
  M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4)
#define RAY__TY_MAPC_5(M, c, z, x1, x2, x3, x4, x5, ...) \
  M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5)
#define RAY__TY_MAPC_6(M, c, z, x1, x2, x3, x4, x5, x6, ...) \
  M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6)
#define RAY__TY_MAPC_7(M, c, z, x1, x2, x3, x4, x5, x6, x7, ...) \
  M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6), M(c, 7, x7)
#define RAY__TY_MAPC_8(M, c, z, x1, x2, x3, x4, x5, x6, x7, x8, ...)                         \
  M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6), M(c, 7, x7), \
      M(c, 8, x8)
/* RAY__TY_EACH(W, c, n, (item...)): W(c, i, kind, name) for the first n items,
 * each a (kind, name) pair; RAY__TY_EACHC separates them with commas and gives
 * z when n is 0. */
#define RAY__TY_EACH(W, c, n, group) \
  RAY__TY_APPLY_M(RAY__TY_CAT(RAY__TY_MAP_, n), (RAY__TY_ITEM, (W, c), RAY__TY_STRIP group))
#define RAY__TY_EACHC(W, c, z, n, group) \
  RAY__TY_APPLY_M(RAY__TY_CAT(RAY__TY_MAPC_, n), (RAY__TY_ITEM, (W, c), z, RAY__TY_STRIP group))
#define RAY__TY_ITEM(wc, i, p) \
  RAY__TY_APPLY_I(RAY__TY_ITEM_, (RAY__TY_STRIP wc, i, RAY__TY_STRIP p))
#define RAY__TY_ITEM_(W, c, i, kind, name) W(c, i, kind, name)

#endif /* RUSTYRAY_TYPED_PP_H */
