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

/* A log handler: receives each message not more detailed than the level
 * (one line without a newline, at most 1023 bytes; longer ones are cut),
 * with its level and the `arg` given to ray_log_set_handler.
 *
 * This is the one statement of the rule for handlers (docs link here). It
 * runs on whichever thread logged the message: a host thread inside a
 * library call, a worker, the loop thread or the background spiller. It
 * runs under the log's own mutex, so calls are serialised, and under no
 * other internal lock (the library logs with no other lock held). So:
 * record the message and return. Do not call back into the library, except
 * ray_log_level() and ray_log_set_level(): most calls may log (ray_get
 * restoring a spilled object, ray_init, ray_shutdown, ...) or wait for
 * threads that are waiting to log, and either can deadlock on that mutex.
 * What the library catches on the handler's own thread: a message logged
 * by a call the handler makes goes to stderr instead of to the handler,
 * and ray_log_set_handler, ray_init and ray_shutdown return RAY_EBUSY. A
 * wait for another thread that is waiting to log it cannot catch. Keep it
 * short: every thread that logs waits for it. */
typedef void (*ray_log_fn)(int level, const char *message, void *arg);

/* Messages more detailed than `level` are dropped. Default RAY_LOG_WARN,
 * or the RAY_LOG_LEVEL environment variable (off, error, warn, info, debug,
 * or 0..4) read at the first message. Errors: RAY_EINVAL (out of range).
 * Does not need the runtime; thread-safe. */
RAY_EXTERN int ray_log_set_level(int level);
RAY_EXTERN int ray_log_level(void);

/* Send messages to fn(level, message, arg) instead of stderr (see
 * ray_log_fn for what fn may do); NULL restores stderr. Blocks while a
 * handler runs; once it returns, the previous handler is not running and is
 * not called again. Does not need the runtime; thread-safe. Errors:
 * RAY_EBUSY from inside a handler (it would wait for itself; nothing
 * changes). */
RAY_EXTERN int ray_log_set_handler(ray_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_LOG_H */
