/* fuzz_http.c - libFuzzer target for ray__http_parse (src/http.c), the
 * metrics endpoint's request-head parser.
 *
 * For each input it checks what http.h promises:
 * - the answer is MORE, DONE or BAD, with every field consistent with it
 *   (DONE: method, target inside the head, head_len <= the input and
 *   RAY__HTTP_MAX_HEAD, the head ends in LF; BAD: a status the endpoint
 *   sends; MORE: the input is shorter than RAY__HTTP_MAX_HEAD);
 * - monotonic answers, as the endpoint feeds it: prefixes of the input, cut
 *   at points drawn from the input itself, give MORE until the first DONE or
 *   BAD and that same answer from then on;
 * - a DONE head parses identically on its own (nothing after it is read).
 * Every parse is of an exact-size heap copy, so ASan reports any read past
 * len. A failed check aborts. Built by tests/fuzz/CMakeLists.txt
 * (ray_add_fuzz) and run by scripts/fuzz.sh (docs/fuzzing.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* Parse an exact-size heap copy of data[0..len). */
static int parse_copy(const uint8_t *data, size_t len, ray__http_req_t *out, char **copy) {
  *copy = malloc(len > 0 ? len : 1);
  CHECK(*copy != NULL);
  if (len > 0) memcpy(*copy, data, len);
  return ray__http_parse(len > 0 ? *copy : NULL, len, out);
}

static void check_one(int r, const ray__http_req_t *q, const char *buf, size_t len) {
  switch (r) {
    case RAY__HTTP_MORE:
      CHECK(q->status == 0 && q->method == NULL && q->head_len == 0);
      CHECK(len < RAY__HTTP_MAX_HEAD);
      break;
    case RAY__HTTP_BAD:
      CHECK(q->status == 400 || q->status == 414 || q->status == 431 || q->status == 505);
      CHECK(q->method == NULL && q->target == NULL && q->head_len == 0);
      break;
    case RAY__HTTP_DONE:
      CHECK(q->status == 0);
      CHECK(q->head_len >= 1 && q->head_len <= len && q->head_len <= RAY__HTTP_MAX_HEAD);
      CHECK(buf[q->head_len - 1] == '\n');
      CHECK(q->method != NULL && q->method >= buf);
      CHECK(q->method_len >= 1 && q->method_len <= RAY__HTTP_MAX_METHOD);
      CHECK(q->target == q->method + q->method_len + 1 && q->target[-1] == ' ');
      CHECK(q->target_len >= 1);
      CHECK((size_t)(q->target + q->target_len - buf) + 10 <= q->head_len); /* " HTTP/1.x\n" */
      CHECK(memcmp(q->target + q->target_len, " HTTP/1.", 8) == 0);
      CHECK(q->version_minor >= 0 && q->version_minor <= 9);
      CHECK(q->num_headers >= 0 && q->num_headers <= RAY__HTTP_MAX_HEADERS);
      for (size_t i = 0; i < q->target_len; i++) CHECK(q->target[i] > 0x20 && q->target[i] < 0x7f);
      break;
    default:
      CHECK(0);
  }
}

static int same(int r1, const ray__http_req_t *a, const char *abuf, int r2,
                const ray__http_req_t *b, const char *bbuf) {
  if (r1 != r2 || a->status != b->status || a->head_len != b->head_len) return 0;
  if (r1 != RAY__HTTP_DONE) return 1;
  return a->method - abuf == b->method - bbuf && a->method_len == b->method_len &&
         a->target - abuf == b->target - bbuf && a->target_len == b->target_len &&
         a->version_minor == b->version_minor && a->num_headers == b->num_headers;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ray__http_req_t full;
  char *fbuf;
  int rf = parse_copy(data, size, &full, &fbuf);
  check_one(rf, &full, fbuf, size);

  /* The endpoint's way: growing prefixes. Cut points come from the input
   * (a cheap hash walk) plus the edges: 0, 1, size - 1, around head_len. */
  size_t cuts[24];
  size_t ncut = 0;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
  cuts[ncut++] = 0;
  if (size > 1) cuts[ncut++] = 1;
  if (size > 0) cuts[ncut++] = size - 1;
  if (rf == RAY__HTTP_DONE) {
    cuts[ncut++] = full.head_len - 1;
    cuts[ncut++] = full.head_len;
  }
  while (ncut < sizeof cuts / sizeof cuts[0]) {
    h = h * 1103515245u + 12345u;
    cuts[ncut++] = size > 0 ? (h >> 8) % (size + 1) : 0;
  }
  /* Sort so the prefixes grow (insertion sort; 24 elements). */
  for (size_t i = 1; i < ncut; i++)
    for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
      size_t t = cuts[j];
      cuts[j] = cuts[j - 1];
      cuts[j - 1] = t;
    }

  int terminal = 0; /* seen a DONE or BAD: every longer prefix answers the same */
  ray__http_req_t term;
  char *tbuf = NULL;
  for (size_t i = 0; i < ncut; i++) {
    ray__http_req_t q;
    char *buf;
    int r = parse_copy(data, cuts[i], &q, &buf);
    check_one(r, &q, buf, cuts[i]);
    if (terminal) {
      CHECK(same(r, &q, buf, terminal, &term, tbuf));
      free(buf);
    } else if (r != RAY__HTTP_MORE) {
      terminal = r;
      term = q;
      tbuf = buf;
    } else {
      free(buf);
    }
    if (rf == RAY__HTTP_DONE && cuts[i] < full.head_len) CHECK(r == RAY__HTTP_MORE);
  }
  if (terminal) CHECK(same(rf, &full, fbuf, terminal, &term, tbuf));
  free(tbuf);

  /* A DONE head alone parses the same: bytes after it are never looked at. */
  if (rf == RAY__HTTP_DONE) {
    ray__http_req_t q;
    char *buf;
    int r = parse_copy(data, full.head_len, &q, &buf);
    CHECK(same(r, &q, buf, rf, &full, fbuf));
    free(buf);
  }
  free(fbuf);
  return 0;
}
