// ray/api/wait_result.h - what ray::Wait returns: the refs that were ready
// and those that were not, each in input order.
#ifndef RAY_API_WAIT_RESULT_H
#define RAY_API_WAIT_RESULT_H

#include <list>
#include <utility>

#include "object_ref.h"

namespace ray {

template <typename T>
class WaitResult {
 public:
  std::list<ObjectRef<T>> ready;
  std::list<ObjectRef<T>> unready;
  WaitResult() {}
  WaitResult(std::list<ObjectRef<T>> &&ready_objects, std::list<ObjectRef<T>> &&unready_objects)
      : ready(std::move(ready_objects)), unready(std::move(unready_objects)) {}
};

}  // namespace ray

#endif  // RAY_API_WAIT_RESULT_H
