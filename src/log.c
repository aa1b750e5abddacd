/* log.c - the library's log. The level is one atomic read on the fast path;
 * a message is formatted into a stack buffer (1024 bytes: longer ones are
 * cut) and handed to the host's callback or written to stderr under one
 * mutex, so lines never interleave, handler calls are serialised, and
 * ray_log_set_handler returns only once the old handler has finished.
 * Callers log with no other internal lock held; the mutex is not recursive,
 * hence the rule for handlers (include/rustyray/log.h, ray_log_fn). A
 * thread that is running the handler is marked (thread-local), so a
 * handler that breaks the rule cannot deadlock on that mutex through its
 * own thread: a message it causes goes to stderr without the lock, and
 * ray_log_set_handler, ray_init and ray_shutdown from it are RAY_EBUSY. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "rustyray/error.h"

static atomic_int level = -1; /* -1: not read from the environment yet */
static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t mu;
static ray_log_fn handler;
static void *handler_arg;
static _Thread_local bool in_handler; /* this thread is running the handler */

static void init(void) {
  if (uv_mutex_init(&mu) != 0) abort(); /* uv_once cannot report it */
}

static int parse_level(const char *s) {
  static const char *names[] = {"off", "error", "warn", "info", "debug"};
  for (int i = 0; i < 5; i++)
    if (strcasecmp(s, names[i]) == 0) return i;
  if (s[0] >= '0' && s[0] <= '4' && s[1] == '\0') return s[0] - '0';
  return RAY_LOG_WARN;
}

static int current(void) {
  int l = atomic_load_explicit(&level, memory_order_relaxed);
  if (l >= 0) return l;
  const char *env = getenv("RAY_LOG_LEVEL");
  int want = env != NULL ? parse_level(env) : RAY_LOG_WARN;
  int expected = -1;
  atomic_compare_exchange_strong(&level, &expected, want);
  return atomic_load(&level);
}

int ray_log_set_level(int l) {
  if (l < RAY_LOG_OFF || l > RAY_LOG_DEBUG) return RAY_EINVAL;
  atomic_store(&level, l);
  return 0;
}

int ray_log_level(void) {
  return current();
}

int ray_log_set_handler(ray_log_fn fn, void *arg) {
  if (in_handler) return RAY_EBUSY; /* it would wait for itself */
  uv_once(&once, init);
  uv_mutex_lock(&mu);
  handler = fn;
  handler_arg = arg;
  uv_mutex_unlock(&mu);
  return 0;
}

bool ray__log_in_handler(void) {
  return in_handler;
}

void ray__log(int l, const char *fmt, ...) {
  if (l > current() || l <= RAY_LOG_OFF) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  static const char *tags[] = {"", "ERROR", "WARN", "INFO", "DEBUG"};
  if (in_handler) { /* logged by something the handler called: not again */
    fprintf(stderr, "rustyray %s: %s\n", tags[l], msg);
    return;
  }
  uv_once(&once, init);
  uv_mutex_lock(&mu);
  if (handler != NULL) {
    in_handler = true;
    handler(l, msg, handler_arg);
    in_handler = false;
  } else {
    fprintf(stderr, "rustyray %s: %s\n", tags[l], msg);
  }
  uv_mutex_unlock(&mu);
}
