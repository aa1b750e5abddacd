/* rustyray.h - librustyray, Ray Core's programming model in one process.
 *
 * This umbrella header is the whole public API: anything not declared in it
 * (or in the rustyray/ headers it includes) is private and may change
 * without notice.
 *
 * Conventions: every public name starts with ray_ / RAY_; every fallible
 * function returns 0 (RAY_OK) or a negative RAY_E* code (rustyray/error.h);
 * outputs go through pointer parameters. */
#ifndef RUSTYRAY_H
#define RUSTYRAY_H

#include "rustyray/version.h"
#include "rustyray/error.h"
#include "rustyray/runtime.h"
#include "rustyray/object.h"
#include "rustyray/task.h"
#include "rustyray/actor.h"
#include "rustyray/log.h"
#include "rustyray/typed.h"

#endif /* RUSTYRAY_H */
