/* log.h - internal logging (see log.c). */
#ifndef RAY_LOG_H
#define RAY_LOG_H

#include <stdbool.h>

#include "rustyray/log.h"

/* Whether the calling thread is running the log handler (ray_init and
 * ray_shutdown refuse to run there: RAY_EBUSY). */
bool ray__log_in_handler(void);

/* Log a printf-style message at `level` (cheap when the level is off). */
void ray__log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* RAY_LOG_H */
