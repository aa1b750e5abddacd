// ray/api/task_caller.h - ray::Task(f).Remote(args...) (ADR-007): a call of
// a registered function as a task of the core. Each argument is a value
// (packed with msgpack-c++), or an ObjectRef: for a T parameter it is a ref
// argument, whose value the core resolves before the call without
// blocking the caller; for an ObjectRef<T> parameter it is packed as a ref,
// so the function gets a live one.
#ifndef RAY_API_TASK_CALLER_H
#define RAY_API_TASK_CALLER_H

#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "object_ref.h"
#include "placement_group.h"
#include "ray_exception.h"
#include "ray_remote.h"

namespace ray {
namespace internal {

// The arguments of one submission, alive until it returns.
class CallArgs {
 public:
  explicit CallArgs(size_t n) {
    bufs_.reserve(n), args_.reserve(n);
  }
  template <typename Param, typename Arg>
  void Add(Arg &&a) {
    using A = std::decay_t<Arg>;
    if constexpr (IsObjectRef<A>::value && !IsObjectRef<std::decay_t<Param>>::value) {
      args_.push_back(ray_arg_ref(a.Ref()));  // its value, resolved by the core
    } else {
      bufs_.emplace_back(kSmallBuffer);
      msgpack::pack(bufs_.back(), std::forward<Arg>(a));
      args_.push_back(ray_arg_msgpack_bytes(bufs_.back().data(), bufs_.back().size()));
    }
  }
  const ray_arg_t *data() const {
    return args_.data();
  }
  size_t size() const {
    return args_.size();
  }

  // All of a call's arguments, each for its parameter in Params.
  template <typename Params, typename... Args>
  static CallArgs Of(Args &&...args) {
    static_assert(sizeof...(Args) == std::tuple_size<Params>::value, "arguments not match");
    CallArgs call(sizeof...(Args));
    call.AddAll<Params>(std::index_sequence_for<Args...>(), std::forward<Args>(args)...);
    return call;
  }

 private:
  template <typename Params, size_t... I, typename... Args>
  void AddAll(std::index_sequence<I...>, Args &&...args) {
    (Add<std::tuple_element_t<I, Params>>(std::forward<Args>(args)), ...);
  }
  std::vector<msgpack::sbuffer> bufs_;
  std::vector<ray_arg_t> args_;
};

// SetResources / SetResource of a task or an actor: validated as Ray does
// (CheckResources, at Remote) and kept; one process has no resources to
// reserve (ADR-007).
template <typename Self>
class ResourceOptions {
 public:
  Self &SetResources(std::unordered_map<std::string, double> resources) {
    resources_ = std::move(resources);
    return static_cast<Self &>(*this);
  }
  Self &SetResource(std::string name, double value) {
    resources_.emplace(std::move(name), value);
    return static_cast<Self &>(*this);
  }

 protected:
  std::unordered_map<std::string, double> resources_;
};

template <typename F>
class TaskCaller : public ResourceOptions<TaskCaller<F>>, public PlacementOptions<TaskCaller<F>> {
 public:
  using Return = typename FunctionTraits<F>::Return;
  explicit TaskCaller(const FunctionRegistry::Entry *entry) : entry_(entry) {}

  template <typename... Args>
  ObjectRef<Return> Remote(Args &&...args) {
    CheckResources(this->resources_);
    this->CheckPlacement();
    // The handle every ray_init sets; by name when this runtime started
    // before the function was registered.
    ray_function_t fn = entry_->handle;
    int rc = 0;
    if (fn.id == 0 && (rc = ray_function_lookup(entry_->name.c_str(), &fn)) != 0) {
      if (rc == RAY_ENOTFOUND)
        throw RayFunctionNotFound("Task: " + entry_->name + " is not registered");
      ThrowFor(rc, "Task " + entry_->name);
    }
    CallArgs call = CallArgs::Of<typename FunctionTraits<F>::Params>(std::forward<Args>(args)...);
    ray_task_opts_t opts;
    ray_task_opts_init(&opts);
    if (!task_name_.empty()) opts.name = task_name_.c_str();
    ray_ref_t out;
    rc = ray_task_submit(fn, call.data(), call.size(), &opts, &out);
    if (rc != 0) ThrowFor(rc, "Task " + entry_->name);
    return ObjectRef<Return>::Adopt(out);
  }
  TaskCaller &SetName(std::string name) {
    task_name_ = std::move(name);
    return *this;
  }

 private:
  const FunctionRegistry::Entry *entry_;
  std::string task_name_;
};

}  // namespace internal

// A call of `func`, registered with RAY_REMOTE. Throws RayException
// ("Function not found...") if it is not.
template <typename F>
internal::TaskCaller<F> Task(F func) {
  static_assert(!std::is_member_function_pointer<F>::value,
                "Incompatible type: member function cannot be called with ray::Task.");
  const auto *entry = internal::FunctionRegistry::Instance().Find(func);
  if (entry == nullptr)
    throw internal::RayException(
        "Function not found. Please use RAY_REMOTE to register this function.");
  return internal::TaskCaller<F>(entry);
}

}  // namespace ray

#endif  // RAY_API_TASK_CALLER_H
