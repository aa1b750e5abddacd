// ray/api/ray_config.h - RayConfig (ADR-007): Ray's fields, of which one
// process uses `head_args`' "--num-cpus N" (the worker count),
// `ray_namespace` and `default_actor_lifetime`; the others are accepted
// and ignored (no cluster to reach, no code to search, no runtime env to
// set up).
#ifndef RAY_API_RAY_CONFIG_H
#define RAY_API_RAY_CONFIG_H

#include <boost/optional.hpp>
#include <string>
#include <vector>

namespace ray {

enum class ActorLifetime { NON_DETACHED, DETACHED };

// Ray's runtime environment: accepted, and without meaning in one process.
class RuntimeEnv {};

class RayConfig {
 public:
  std::string address = "";                   // ignored: the runtime is this process
  bool local_mode = false;                    // ignored: always one process, fully
  std::vector<std::string> code_search_path;  // ignored
  std::vector<std::string> head_args = {};    // "--num-cpus N": the worker count
  // DETACHED: actors outlive their handles, until killed or Shutdown.
  ActorLifetime default_actor_lifetime = ActorLifetime::NON_DETACHED;
  boost::optional<RuntimeEnv> runtime_env;       // ignored
  boost::optional<std::string> redis_password_;  // ignored
  bool is_worker_ = false;                       // ignored
  std::string ray_namespace = "";                // named actors' namespace
};

namespace internal {
// The namespace of the running runtime (RayConfig::ray_namespace).
inline std::string &Namespace() {
  static std::string ns;
  return ns;
}
}  // namespace internal

namespace internal {
// The running runtime's RayConfig::default_actor_lifetime.
inline ActorLifetime &DefaultActorLifetime() {
  static ActorLifetime lifetime = ActorLifetime::NON_DETACHED;
  return lifetime;
}
}  // namespace internal

// The namespace named actors are created and looked up in.
inline std::string GetNamespace() {
  return internal::Namespace();
}

}  // namespace ray

#endif  // RAY_API_RAY_CONFIG_H
