/* hook.c - the test hook's one variable (hook.h). */
#include "hook.h"

_Atomic(ray__hook_fn) ray__hook_installed;

void ray__hook_set(ray__hook_fn fn) {
  atomic_store(&ray__hook_installed, fn);
}
