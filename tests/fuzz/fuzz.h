/* fuzz.h - what every fuzz target (tests/fuzz/fuzz_<name>.c) and the
 * regression driver (regress_main.c) share.
 *
 * A target defines LLVMFuzzerTestOneInput: it runs one input through a
 * library function that reads untrusted bytes and checks what the library
 * promises about the result (FUZZ_CHECK), so a wrong answer is a crash just
 * like an out-of-bounds read. Built with -fsanitize=fuzzer it is a libFuzzer
 * binary; built with the normal compiler and regress_main.c it replays the
 * checked-in corpus under ctest. A target must be deterministic and leave
 * nothing behind per input (libFuzzer counts leaks per input). */
#ifndef RAY_FUZZ_H
#define RAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry point (the prototype it documents). Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise: say which, then abort (a crash to libFuzzer, a failed
 * test to ctest). */
#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                      \
    }                                                                               \
  } while (0)

#endif /* RAY_FUZZ_H */
