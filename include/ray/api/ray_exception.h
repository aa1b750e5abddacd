// ray/api/ray_exception.h - Ray's C++ exception types (ADR-007), and how a
// C error code of the core becomes one of them.
#ifndef RAY_API_RAY_EXCEPTION_H
#define RAY_API_RAY_EXCEPTION_H

#include <exception>
#include <string>

#include "rustyray/error.h"
#include "rustyray/object.h"

namespace ray {
namespace internal {

// The base of every exception the API throws; `msg_` is public as in Ray.
class RayException : public std::exception {
 public:
  RayException(const std::string &msg) : msg_(msg) {}
  const char *what() const noexcept override {
    return msg_.c_str();
  }
  std::string msg_;
};

// A task or method failed: it threw (the message names the exception's type
// and what()), failed with a code, or an argument it needed failed.
class RayTaskException : public RayException {
 public:
  RayTaskException(const std::string &msg) : RayException(msg) {}
};
// The actor is gone (killed, exited, its constructor failed, out of restarts).
class RayActorException : public RayException {
 public:
  RayActorException(const std::string &msg) : RayException(msg) {}
};
// A Get (or an actor call's result) did not come within its timeout.
class RayTimeoutException : public RayException {
 public:
  RayTimeoutException(const std::string &msg) : RayException(msg) {}
};
// No function (or method) is registered under that name.
class RayFunctionNotFound : public RayException {
 public:
  RayFunctionNotFound(const std::string &msg) : RayException(msg) {}
};
// Ray's, kept for source compatibility: a worker process died (in cluster
// mode, RAY_ENODE), an object cannot be rebuilt, a runtime env failed.
class RayWorkerException : public RayException {
 public:
  RayWorkerException(const std::string &msg) : RayException(msg) {}
};
class UnreconstructableException : public RayException {
 public:
  UnreconstructableException(const std::string &msg) : RayException(msg) {}
};
class RayRuntimeEnvException : public RayException {
 public:
  RayRuntimeEnvException(const std::string &msg) : RayException(msg) {}
};
// What ray::ExitActor throws to leave the method (as in Ray; the method's
// result fails with the actor's death, not with this).
class RayIntentionalSystemExitException : public RayException {
 public:
  RayIntentionalSystemExitException(const std::string &msg) : RayException(msg) {}
};

// Throw the exception for a C error code `rc` of `what` (an operation's
// name); for a failed object `ref`, the message is its error chain.
[[noreturn]] inline void ThrowFor(int rc, const std::string &what, ray_ref_t ref = RAY_REF_NIL) {
  std::string msg = what + ": " + ray_err_name(rc);
  ray_error_t *err = nullptr;
  bool failed_object = ref.id != 0 && ray_get_error(ref, &err) == 0 && err != nullptr;
  if (failed_object) {
    char text[4096] = "";
    ray_error_format(err, text, sizeof text);
    msg = what + ": " + text;
    ray_error_free(err);
  }
  switch (rc) {
    case RAY_ETIMEDOUT:
      throw RayTimeoutException(msg);
    case RAY_EACTORDIED:
      throw RayActorException(msg);
    case RAY_ENODE:
      throw RayWorkerException(msg);
    default:
      // A failed object's own code (set by its task, or the failure of an
      // argument it needed): the task failed.
      if (failed_object || rc == RAY_ETASK || rc == RAY_EDEPFAILED) throw RayTaskException(msg);
      throw RayException(msg);
  }
}

}  // namespace internal
}  // namespace ray

#endif  // RAY_API_RAY_EXCEPTION_H
