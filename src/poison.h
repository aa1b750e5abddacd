/* poison.h - marking memory that a cache holds as not to be touched: the
 * bytes of a free block are poisoned for AddressSanitizer and made
 * inaccessible for valgrind's memcheck, so a use after free is still caught
 * although the block stays allocated (pool.c, slab.c). No-ops in other
 * builds. */
#ifndef RAY_POISON_H
#define RAY_POISON_H

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RAY__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RAY__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#elif defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define RAY__POISON(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define RAY__UNPOISON(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#endif
#endif
#ifndef RAY__POISON
#define RAY__POISON(p, n) ((void)(p), (void)(n))
#define RAY__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif /* RAY_POISON_H */
