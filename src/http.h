/* http.h - a pure, allocation-free HTTP/1.x request-head parser (see http.c).
 *
 * ray__http_parse looks at the bytes a connection has received so far and
 * says one of three things:
 *
 *   RAY__HTTP_MORE  the head is valid so far but not finished: read more;
 *   RAY__HTTP_DONE  the head is complete: *out has the method, the request
 *                   target, the minor version and head_len, the bytes of the
 *                   head (its final empty line included; bytes after it, a
 *                   body or a pipelined request, are not looked at);
 *   RAY__HTTP_BAD   the head can never become valid: out->status is the
 *                   status to answer with before closing:
 *                     400  a byte the grammar does not allow (NUL, a control
 *                          character, garbage, a bare CR, obs-fold, space
 *                          before a header's colon, a method longer than
 *                          RAY__HTTP_MAX_METHOD), or no version at all (an
 *                          HTTP/0.9 "GET /path" line);
 *                     414  a request line longer than RAY__HTTP_MAX_LINE;
 *                     431  a head longer than RAY__HTTP_MAX_HEAD or with more
 *                          than RAY__HTTP_MAX_HEADERS header fields;
 *                     505  a well-formed version other than HTTP/1.x.
 *
 * The grammar is RFC 9112's request-line and field lines: method SP
 * request-target SP "HTTP/" DIGIT "." DIGIT, a token field name directly
 * followed by ':', field values of visible characters, SP, HTAB and
 * obs-text. Lines end in CRLF; a bare LF is accepted too (RFC 9112 2.2), and
 * empty lines before the request line are skipped (ibid.).
 *
 * It is a pure function of buf[0..len): it keeps no state between calls,
 * never reads buf[len] or beyond (nor past RAY__HTTP_MAX_HEAD), never
 * allocates, and is safe from any thread. Being stateless it rescans from
 * the start; a head is at most RAY__HTTP_MAX_HEAD bytes, so that is cheap.
 * Its answers are monotonic: feeding a growing prefix of one byte stream
 * gives MORE until the first DONE or BAD, and that same answer (same
 * head_len, same status) for every longer prefix. */
#ifndef RAY_HTTP_H
#define RAY_HTTP_H

#include <stddef.h>

/* Limits: a scrape's head is a few hundred bytes (Prometheus sends four
 * header fields), so these leave a wide margin while bounding what a
 * connection may make the endpoint hold. */
#define RAY__HTTP_MAX_HEAD 8192  /* the whole head, final empty line included */
#define RAY__HTTP_MAX_LINE 4096  /* the request line, its line end included */
#define RAY__HTTP_MAX_HEADERS 64 /* header fields */
#define RAY__HTTP_MAX_METHOD 16  /* bytes of the method token */

#define RAY__HTTP_BAD (-1)
#define RAY__HTTP_MORE 0
#define RAY__HTTP_DONE 1

typedef struct ray__http_req_s {
  const char *method; /* into buf; set on DONE */
  size_t method_len;
  const char *target; /* the request target as sent (path and query) */
  size_t target_len;
  int version_minor; /* HTTP/1.<version_minor> */
  int num_headers;
  size_t head_len; /* on DONE: bytes of the head, <= RAY__HTTP_MAX_HEAD */
  int status;      /* on BAD: 400, 414, 431 or 505; else 0 */
} ray__http_req_t;

/* Parse the head of an HTTP/1.x request from buf[0..len) (buf may be NULL
 * when len is 0). Returns RAY__HTTP_MORE, RAY__HTTP_DONE or RAY__HTTP_BAD as
 * described above, and always sets every field of *out (pointers NULL and
 * sizes 0 unless DONE). out must not be NULL. Does not block; thread-safe. */
int ray__http_parse(const char *buf, size_t len, ray__http_req_t *out);

/* The reason phrase for a status this endpoint sends ("Bad Request"...),
 * "Error" for any other. */
const char *ray__http_reason(int status);

#endif /* RAY_HTTP_H */
