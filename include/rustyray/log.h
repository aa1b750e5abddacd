/* rustyray/log.h - the library's log: levels, stderr by default, or a
 * host-supplied callback. */
#ifndef RUSTYRAY_LOG_H
#define RUSTYRAY_LOG_H

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  RAY_LOG_OFF = 0,
  RAY_LOG_ERROR = 1,
  RAY_LOG_WARN = 2,
  RAY_LOG_INFO = 3,
  RAY_LOG_DEBUG = 4
} ray_log_level_t;

/* Receives each message at or below the level (one line, no newline), on
 * whichever thread logged it, with no internal lock held except the log's
 * own (so it must not call ray_log_set_handler). */
typedef void (*ray_log_fn)(int level, const char *message, void *arg);

/* Messages more detailed than `level` are dropped. Default RAY_LOG_WARN,
 * or the RAY_LOG_LEVEL environment variable (off, error, warn, info, debug,
 * or 0..4) read at the first message. Errors: RAY_EINVAL (out of range).
 * Does not need the runtime; thread-safe. */
RAY_EXTERN int ray_log_set_level(int level);
RAY_EXTERN int ray_log_level(void);

/* Send messages to fn(level, message, arg) instead of stderr; NULL restores
 * stderr. Does not need the runtime; thread-safe. */
RAY_EXTERN void ray_log_set_handler(ray_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_LOG_H */
