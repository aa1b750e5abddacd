/* http.c - the HTTP/1.x request-head parser behind the metrics endpoint.
 *
 * One forward scan over buf[0..min(len, RAY__HTTP_MAX_HEAD)), position p
 * only ever growing. Every decision at p depends only on the bytes before
 * and at p, and "ran out of bytes" is MORE only while the window is shorter
 * than RAY__HTTP_MAX_HEAD (past it, 431): this is what makes the answers
 * monotonic in the prefix fed (http.h), which the endpoint relies on when it
 * re-parses a growing buffer and the fuzz target checks.
 *
 * Every read of b[p] is preceded by a p < n check (n <= len), and the only
 * look-ahead, the LF after a CR, checks p + 1 < n first: nothing past len is
 * ever read. No allocation, no global state: callable from any thread. */
#include "http.h"

#include <stdbool.h>
#include <string.h>

/* RFC 9110 tchar: the characters of a method or a field name. */
static bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A request-target byte: visible ASCII. */
static bool is_vchar(unsigned char c) {
  return c >= 0x21 && c <= 0x7e;
}

/* A field-value byte: visible ASCII, SP, HTAB and obs-text (0x80-0xff). */
static bool is_field_vchar(unsigned char c) {
  return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static int bad(ray__http_req_t *out, int status) {
  out->status = status;
  return RAY__HTTP_BAD;
}

/* Out of bytes at the end of the window: read more, unless the window is
 * already the largest head allowed. */
static int more(size_t len, ray__http_req_t *out) {
  return len >= RAY__HTTP_MAX_HEAD ? bad(out, 431) : RAY__HTTP_MORE;
}

int ray__http_parse(const char *buf, size_t len, ray__http_req_t *out) {
  memset(out, 0, sizeof *out);
  const unsigned char *b = (const unsigned char *)buf;
  const size_t n = len < RAY__HTTP_MAX_HEAD ? len : RAY__HTTP_MAX_HEAD;
  size_t p = 0;

  /* Empty lines before the request line are skipped (RFC 9112 2.2). */
  for (;;) {
    if (p == n) return more(len, out);
    if (b[p] == '\n') {
      p++;
    } else if (b[p] == '\r') {
      if (p + 1 == n) return more(len, out);
      if (b[p + 1] != '\n') return bad(out, 400);
      p += 2;
    } else {
      break;
    }
  }

  /* The request line. Its length is checked before each byte is looked at,
   * so an endless line is refused after RAY__HTTP_MAX_LINE bytes. */
  const size_t line = p;
#define LINE_ROOM()                                           \
  do {                                                        \
    if (p - line >= RAY__HTTP_MAX_LINE) return bad(out, 414); \
    if (p == n) return more(len, out);                        \
  } while (0)

  const size_t m0 = p;
  for (;;) {
    LINE_ROOM();
    if (b[p] == ' ') break;
    if (!is_tchar(b[p]) || p - m0 >= RAY__HTTP_MAX_METHOD) return bad(out, 400);
    p++;
  }
  const size_t mlen = p - m0;
  if (mlen == 0) return bad(out, 400);
  p++;

  const size_t t0 = p;
  for (;;) {
    LINE_ROOM();
    if (b[p] == ' ') break;
    /* CR or LF here is an HTTP/0.9 request (no version): refused. */
    if (!is_vchar(b[p])) return bad(out, 400);
    p++;
  }
  const size_t tlen = p - t0;
  if (tlen == 0) return bad(out, 400);
  p++;

  static const char name[] = "HTTP/";
  for (size_t i = 0; i < sizeof name - 1; i++, p++) {
    LINE_ROOM();
    if (b[p] != (unsigned char)name[i]) return bad(out, 400);
  }
  int major = 0, minor = 0;
  for (int i = 0; i < 3; i++, p++) {
    LINE_ROOM();
    if (i == 1) {
      if (b[p] != '.') return bad(out, 400);
    } else {
      if (b[p] < '0' || b[p] > '9') return bad(out, 400);
      if (i == 0)
        major = b[p] - '0';
      else
        minor = b[p] - '0';
    }
  }
  LINE_ROOM();
  if (b[p] == '\r') {
    p++;
    LINE_ROOM();
  }
  if (b[p] != '\n') return bad(out, 400);
  p++;
#undef LINE_ROOM
  if (major != 1) return bad(out, 505);

  /* Header fields up to the empty line. */
  int fields = 0;
  for (;;) {
    if (p == n) return more(len, out);
    if (b[p] == '\r') {
      if (p + 1 == n) return more(len, out);
      if (b[p + 1] != '\n') return bad(out, 400);
      p += 2;
      break;
    }
    if (b[p] == '\n') {
      p++;
      break;
    }
    if (b[p] == ' ' || b[p] == '\t') return bad(out, 400); /* obs-fold */
    if (++fields > RAY__HTTP_MAX_HEADERS) return bad(out, 431);
    const size_t f0 = p;
    for (;;) {
      if (p == n) return more(len, out);
      if (b[p] == ':') break;
      if (!is_tchar(b[p])) return bad(out, 400); /* includes space before ':' */
      p++;
    }
    if (p == f0) return bad(out, 400);
    p++;
    for (;;) {
      if (p == n) return more(len, out);
      if (b[p] == '\n') {
        p++;
        break;
      }
      if (b[p] == '\r') {
        if (p + 1 == n) return more(len, out);
        if (b[p + 1] != '\n') return bad(out, 400);
        p += 2;
        break;
      }
      if (!is_field_vchar(b[p])) return bad(out, 400);
      p++;
    }
  }

  out->method = buf + m0;
  out->method_len = mlen;
  out->target = buf + t0;
  out->target_len = tlen;
  out->version_minor = minor;
  out->num_headers = fields;
  out->head_len = p;
  return RAY__HTTP_DONE;
}

const char *ray__http_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}
