/* fuzz_error.c - the structured-error decoder (ray__decode_error, what
 * ray_get_error runs on a failed object's payload) over arbitrary bytes.
 *
 * What it checks, beyond "no crash, no UB, no leak":
 *   - a refused input is RAY_EDECODE (or RAY_ENOMEM) and hands nothing out;
 *   - a decoded chain keeps the invariants ray_error_new() gives every
 *     error: a negative code and a non-NULL message, in every link;
 *   - decode(encode(chain)) is the same chain and the same cause id, and
 *     encoding that again gives the same bytes (a failed object read back
 *     from the store or a spill file means what was stored);
 *   - ray_error_copy and ray_error_format agree with the chain (format's
 *     length is what it writes, and truncation keeps a terminated string);
 *   - with the k-th allocation failing (k = 1, 2, ...), the decoder returns
 *     RAY_ENOMEM and frees everything it had made.
 * No runtime is needed: the decoder is pure. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "error_internal.h"
#include "fuzz.h"

/* Failure injection is tried for at most this many allocations per input. */
enum { MAX_INJECT = 24 };

static bool str_eq(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static bool chain_equal(const ray_error_t *a, const ray_error_t *b) {
  for (; a != NULL && b != NULL; a = a->cause, b = b->cause) {
    if (a->code != b->code || a->attempts != b->attempts || a->task_id != b->task_id ||
        !str_eq(a->message, b->message) || !str_eq(a->origin, b->origin))
      return false;
  }
  return a == NULL && b == NULL;
}

static void check_links(const ray_error_t *err) {
  for (const ray_error_t *e = err; e != NULL; e = e->cause) {
    FUZZ_CHECK(e->code < 0);
    FUZZ_CHECK(e->message != NULL);
  }
}

/* Encode, decode again, encode again: the same chain, the same bytes. */
static void check_round_trip(const ray_error_t *err, uint64_t cause) {
  ray__mpbuf_t b1, b2;
  FUZZ_CHECK(ray__encode_error(err, cause, &b1) == 0);
  ray_error_t *again = NULL;
  uint64_t cause2 = 0;
  FUZZ_CHECK(ray__decode_error(b1.data, b1.size, &again, &cause2) == 0);
  FUZZ_CHECK(cause2 == cause);
  FUZZ_CHECK(chain_equal(err, again));
  FUZZ_CHECK(ray__encode_error(again, cause2, &b2) == 0);
  FUZZ_CHECK(b1.size == b2.size && memcmp(b1.data, b2.data, b1.size) == 0);
  ray__mpbuf_destroy(&b1);
  ray__mpbuf_destroy(&b2);
  ray_error_free(again);
}

static void check_copy_and_format(const ray_error_t *err) {
  ray_error_t *copy = NULL;
  FUZZ_CHECK(ray_error_copy(err, &copy) == 0);
  FUZZ_CHECK(chain_equal(err, copy));
  ray_error_free(copy);

  int n = ray_error_format(err, NULL, 0);
  FUZZ_CHECK(n > 0);
  char *full = ray__malloc((size_t)n + 1);
  FUZZ_CHECK(full != NULL);
  FUZZ_CHECK(ray_error_format(err, full, (size_t)n + 1) == n);
  FUZZ_CHECK(strlen(full) == (size_t)n);
  char small[16];
  FUZZ_CHECK(ray_error_format(err, small, sizeof small) == n);
  FUZZ_CHECK(strlen(small) == ((size_t)n < sizeof small ? (size_t)n : sizeof small - 1));
  FUZZ_CHECK(memcmp(small, full, strlen(small)) == 0);
  ray__free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ray__alloc_track(true); /* resets the count: this input's blocks only */

  ray_error_t *err = NULL;
  uint64_t cause = 0;
  int rc = ray__decode_error(data, size, &err, &cause);
  if (rc != 0) {
    FUZZ_CHECK(rc == RAY_EDECODE);
    FUZZ_CHECK(err == NULL);
    FUZZ_CHECK(ray__alloc_outstanding() == 0);
    return 0;
  }
  FUZZ_CHECK(err != NULL);
  check_links(err);
  check_round_trip(err, cause);
  check_copy_and_format(err);
  ray_error_free(err);
  FUZZ_CHECK(ray__alloc_outstanding() == 0);

  /* Out of memory at each allocation in turn: RAY_ENOMEM, nothing leaked. */
  for (long k = 1; k <= MAX_INJECT; k++) {
    ray__alloc_fail_after(k, false);
    err = NULL;
    rc = ray__decode_error(data, size, &err, &cause);
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);
    if (!fired) {
      FUZZ_CHECK(rc == 0);
      ray_error_free(err);
      FUZZ_CHECK(ray__alloc_outstanding() == 0);
      break;
    }
    FUZZ_CHECK(rc == RAY_ENOMEM);
    FUZZ_CHECK(err == NULL);
    FUZZ_CHECK(ray__alloc_outstanding() == 0);
  }
  return 0;
}
