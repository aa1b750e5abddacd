// ray/api.h - Ray's C++ API (namespace ray, C++17) on librustyray, in one
// process with the whole of Ray's semantics (ADR-007; the names, signatures
// and behaviour are Ray's, the implementation ours). Header-only, over the
// C API; compiles with msgpack-c++'s <msgpack.hpp> before or after it.
// Values are msgpack-c++ values (MSGPACK_DEFINE for your types).
//
//   ray::Init();
//   auto ref = ray::Put(std::vector<int>{1, 2, 3});
//   std::shared_ptr<std::vector<int>> v = ray::Get(ref);
//   ray::Shutdown();
//
// Errors are exceptions (ray/api/ray_exception.h). Placement groups are
// bookkeeping (ray/api/placement_group.h). The design and what differs
// from Ray: docs/adr/ADR-007-cpp-api.md.
#ifndef RAY_API_H
#define RAY_API_H

#include <chrono>
#include <cstdlib>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "ray/api/actor.h"
#include "ray/api/object_ref.h"
#include "ray/api/placement_group.h"
#include "ray/api/ray_config.h"
#include "ray/api/ray_exception.h"
#include "ray/api/ray_remote.h"
#include "ray/api/task_caller.h"
#include "ray/api/wait_result.h"
#include "rustyray/object.h"
#include "rustyray/runtime.h"

namespace ray {

// Start the runtime (a no-op when it runs already, as in Ray). Of the
// config, "--num-cpus N" in head_args sets the worker count (the node's
// CPUs for placement groups), ray_namespace the namespace and
// default_actor_lifetime whether actors outlive their handles; the rest has
// no meaning in one process. Of argv, Ray's --ray_default_actor_lifetime=
// (detached or non_detached) is read, and overrides the config; the rest is
// not. Throws RayException if it cannot start or a value is invalid.
inline void Init(ray::RayConfig &config, int argc, char **argv) {
  if (ray_is_initialized()) return;
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) throw internal::RayException("Init: a RAY_* variable is invalid");
  for (size_t i = 0; i + 1 < config.head_args.size(); i++)
    if (config.head_args[i] == "--num-cpus") {
      char *end = nullptr;
      long n = std::strtol(config.head_args[i + 1].c_str(), &end, 10);
      if (end == nullptr || *end != '\0' || n < 1 || n > 1024)
        throw internal::RayException("Init: --num-cpus takes 1 to 1024");
      cfg.num_workers = static_cast<unsigned>(n);
    }
  ActorLifetime lifetime = config.default_actor_lifetime;
  for (int i = 1; argv != nullptr && i < argc; i++) {  // Ray's flag, if given
    std::string a = argv[i] != nullptr ? argv[i] : "";
    const std::string flag = "--ray_default_actor_lifetime=";
    if (a.compare(0, flag.size(), flag) != 0) continue;
    std::string v = a.substr(flag.size());
    if (v == "DETACHED" || v == "detached")
      lifetime = ActorLifetime::DETACHED;
    else if (v == "NON_DETACHED" || v == "non_detached")
      lifetime = ActorLifetime::NON_DETACHED;
    else
      throw internal::RayException(
          "Init: --ray_default_actor_lifetime takes detached or non_detached");
  }
  internal::PublishClasses();  // every rank knows the actor classes by name (cluster mode)
  int rc = ray_init(&cfg);
  if (rc != 0 && rc != RAY_EALREADY) internal::ThrowFor(rc, "Init");
  internal::Namespace() = config.ray_namespace;
  internal::DefaultActorLifetime() = lifetime;
  internal::NodeCpus() = cfg.num_workers;
}
inline void Init(ray::RayConfig &config) {
  Init(config, 0, nullptr);
}
inline void Init() {
  RayConfig config;
  Init(config, 0, nullptr);
}
inline bool IsInitialized() {
  return ray_is_initialized();
}
// Stop the runtime (the refs still held become empty handles).
inline void Shutdown() {
  internal::PlacementGroups::Instance().Clear();
  internal::DefaultActorLifetime() = ActorLifetime::NON_DETACHED;
  internal::NodeCpus() = 0;
  int rc = ray_shutdown();
  if (rc != 0 && rc != RAY_ENOTINIT) internal::ThrowFor(rc, "Shutdown");
}

// Store a copy of `obj` (packed with msgpack-c++; refs inside it keep
// their objects alive). Throws RayException (not running, store full).
template <typename T>
ray::ObjectRef<T> Put(const T &obj) {
  msgpack::sbuffer sb(internal::kSmallBuffer);
  msgpack::pack(sb, obj);
  ray_ref_t r;
  int rc = ray_put_msgpack_bytes(sb.data(), sb.size(), &r);
  if (rc != 0) internal::ThrowFor(rc, "Put");
  return ray::ObjectRef<T>::Adopt(r);
}

// A fresh copy of the object, waiting for it (timeout_ms: -1, forever).
// Throws RayTimeoutException, RayTaskException (it failed), RayException.
template <typename T>
std::shared_ptr<T> Get(const ray::ObjectRef<T> &object, const int &timeout_ms) {
  return object.Get(timeout_ms);
}
template <typename T>
std::shared_ptr<T> Get(const ray::ObjectRef<T> &object) {
  return object.Get(-1);
}
// Every object, in order; the timeout bounds the whole call.
template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ray::ObjectRef<T>> &objects,
                                    const int &timeout_ms) {
  using clock = std::chrono::steady_clock;
  auto end = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  std::vector<std::shared_ptr<T>> out;
  out.reserve(objects.size());
  for (const auto &o : objects) {
    int left = -1;
    if (timeout_ms >= 0) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now()).count();
      left = ms < 0 ? 0 : static_cast<int>(ms);
    }
    out.push_back(o.Get(left));
  }
  return out;
}
template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ray::ObjectRef<T>> &objects) {
  return Get(objects, -1);
}

// Wait until num_objects of them are ready, or timeout_ms passed (-1:
// forever); ready and unready keep the input order. Throws RayException
// (num_objects above the count, or negative).
template <typename T>
WaitResult<T> Wait(const std::vector<ray::ObjectRef<T>> &objects, int num_objects, int timeout_ms) {
  if (num_objects < 0 || static_cast<size_t>(num_objects) > objects.size())
    throw internal::RayException("Wait: num_objects must be between 0 and the number of objects");
  if (num_objects == 0) return WaitResult<T>({}, {objects.begin(), objects.end()});
  std::vector<ray_ref_t> refs;
  refs.reserve(objects.size());
  for (const auto &o : objects) refs.push_back(o.Ref());
  std::unique_ptr<bool[]> ready(new bool[objects.size() + 1]());
  int rc = ray_wait(refs.data(), refs.size(), static_cast<size_t>(num_objects),
                    timeout_ms < 0 ? RAY_TIMEOUT_INFINITE : timeout_ms, ready.get());
  if (rc < 0 && rc != RAY_ETIMEDOUT) internal::ThrowFor(rc, "Wait");
  WaitResult<T> result;
  for (size_t i = 0; i < objects.size(); i++)
    (ready[i] ? result.ready : result.unready).push_back(objects[i]);
  return result;
}

}  // namespace ray

#endif  // RAY_API_H
