/* log.h - internal logging (see log.c). */
#ifndef RAY_LOG_H
#define RAY_LOG_H

#include "rustyray/log.h"

/* Log a printf-style message at `level` (cheap when the level is off). */
void ray__log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* RAY_LOG_H */
