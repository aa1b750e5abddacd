// ray/api/ray_remote.h - RAY_REMOTE and RAY_FUNC (ADR-007): remote
// functions registered by name at static initialisation, as C static
// descriptors every ray::Init registers; the name is the token text Ray
// uses ("Plus", "RAY_FUNC(Plus, int)"), found again from the function's
// address when it is called.
#ifndef RAY_API_RAY_REMOTE_H
#define RAY_API_RAY_REMOTE_H

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <msgpack.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "object_ref.h"
#include "ray_exception.h"
#include "rustyray/task.h"

namespace ray {
namespace internal {

template <typename F>
struct FunctionTraits;
template <typename R, typename... A>
struct FunctionTraits<R (*)(A...)> {
  using Return = R;
  using Params = std::tuple<std::decay_t<A>...>;
  static constexpr size_t arity = sizeof...(A);
};

template <typename T>
struct IsObjectRef : std::false_type {};
template <typename T>
struct IsObjectRef<ObjectRef<T>> : std::true_type {};

// An exception's type, readable (the message of a task that threw).
inline std::string TypeName(const std::type_info &t) {
  int status = 0;
  char *d = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
  std::string s = status == 0 && d != nullptr ? d : t.name();
  std::free(d);
  return s;
}

// The registered functions: name by address, and each one's descriptor
// (kept for the process's life: every later ray::Init registers them).
class FunctionRegistry {
 public:
  static FunctionRegistry &Instance() {
    static FunctionRegistry r;
    return r;
  }
  template <typename F>
  static std::string Key(F f) {
    std::string k(sizeof f, '\0');
    std::memcpy(&k[0], &f, sizeof f);
    return k;
  }
  struct Entry {
    std::string name;
    alignas(void *) unsigned char fn[sizeof(void (*)())];
    ray_function_t handle{0};  // set by each ray_init (the descriptor's handle)
    ray_static_function_t desc;
  };
  // The entry f was registered under, or nullptr. Entries live for the
  // process's life; each thread remembers the last one per signature, so a
  // loop calling one function takes no lock.
  template <typename F>
  const Entry *Find(F f) {
    thread_local F last_f{};
    thread_local const Entry *last = nullptr;
    if (last != nullptr && last_f == f) return last;
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_key_.find(Key(f));
    if (it == by_key_.end()) return nullptr;
    last_f = f;
    last = it->second;
    return last;
  }
  // The name f was registered under, or "".
  template <typename F>
  std::string NameOf(F f) {
    const Entry *e = Find(f);
    return e != nullptr ? e->name : std::string();
  }
  // Register f as `name` (once per address; a second name for one function
  // or a second function for one name is Ray's "Duplicate RAY_REMOTE").
  template <typename F>
  void Add(const std::string &name, F f, ray_task_fn trampoline) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_key_.find(Key(f));
    if (it != by_key_.end()) {
      if (it->second->name == name) return;
      throw RayException("Duplicate RAY_REMOTE function: " + name);
    }
    for (const auto &e : entries_)
      if (e->name == name) throw RayException("Duplicate RAY_REMOTE function: " + name);
    auto e = std::make_unique<Entry>();
    e->name = name;
    static_assert(sizeof(F) <= sizeof e->fn, "a function pointer");
    std::memcpy(e->fn, &f, sizeof f);
    e->desc.name = e->name.c_str();
    e->desc.fn = trampoline;
    e->desc.arg = e->fn;
    e->desc.return_types = kMsgpack;
    e->desc.num_returns = 1;
    e->desc.handle = &e->handle;
    e->desc.next = nullptr;
    ray_static_function_add(&e->desc);
    by_key_[Key(f)] = e.get();
    entries_.push_back(std::move(e));
  }

 private:
  static constexpr uint32_t kMsgpack[1] = {RAY_TYPE_MSGPACK};
  std::mutex mu_;
  std::unordered_map<std::string, const Entry *> by_key_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// The context of the task, method or constructor running on this thread
// (nullptr outside one), for the calls that take none: ray::ExitActor and
// ray::WasCurrentActorRestarted. Saved and restored around each run, as a
// waiting thread may run another task inside one.
inline thread_local ray_task_ctx_t *tls_current_ctx = nullptr;
class CtxScope {
 public:
  explicit CtxScope(ray_task_ctx_t *ctx) : prev_(tls_current_ctx) {
    tls_current_ctx = ctx;
  }
  ~CtxScope() {
    tls_current_ctx = prev_;
  }
  CtxScope(const CtxScope &) = delete;
  CtxScope &operator=(const CtxScope &) = delete;

 private:
  ray_task_ctx_t *prev_;
};

// Argument i of the running task as T: a value packed by the caller, or
// the value of a ref passed for a T parameter (resolved before the call).
template <typename T>
T ArgAt(ray_task_ctx_t *ctx, size_t i) {
  const void *data = nullptr;
  size_t size = 0;
  uint32_t type = 0;
  if (ray_ctx_arg_raw(ctx, i, &data, &size, &type) != 0)
    throw std::invalid_argument("Arguments error");
  msgpack::zone zone(ZoneSize(size));
  msgpack::object o = msgpack::unpack(zone, static_cast<const char *>(data), size);
  if (o.type == msgpack::type::NIL && !std::is_same<T, msgpack::type::nil_t>::value)
    throw std::invalid_argument("Arguments error");
  return o.as<T>();
}

template <typename F, size_t... I>
auto CallWithArgs(F f, ray_task_ctx_t *ctx, std::index_sequence<I...>) {
  (void)ctx; /* unused for a function of no arguments */
  using Params = typename FunctionTraits<F>::Params;
  return f(ArgAt<std::tuple_element_t<I, Params>>(ctx, I)...);
}

// Pack a call's result (void: nil) as its msgpack result, or fail it with
// the C++ exception it threw.
template <typename Call>
int ReturnOrFail(ray_task_ctx_t *ctx, Call &&call) {
  try {
    msgpack::sbuffer sb(kSmallBuffer);
    if constexpr (std::is_void<decltype(call())>::value) {
      call();
      msgpack::pack(sb, msgpack::type::nil_t());
      return ray_return_msgpack_bytes(ctx, 0, sb.data(), sb.size());
    } else {
      // Kept until the result holds what it names (an ActorHandle returned
      // would otherwise let its actor go first).
      auto result = call();
      msgpack::pack(sb, result);
      return ray_return_msgpack_bytes(ctx, 0, sb.data(), sb.size());
    }
  } catch (const std::exception &e) {
    return ray_fail(ctx, RAY_ETASK, "%s: %s", TypeName(typeid(e)).c_str(), e.what());
  } catch (...) {
    return ray_fail(ctx, RAY_ETASK, "an exception that is not a std::exception");
  }
}

// The C function every C++ remote function runs as: decode the arguments,
// call, and pack the result or fail it (ReturnOrFail).
template <typename F>
int Trampoline(ray_task_ctx_t *ctx, void *arg) {
  F f;
  std::memcpy(&f, arg, sizeof f);
  using Traits = FunctionTraits<F>;
  CtxScope scope(ctx);
  return ReturnOrFail(ctx, [&]() {
    if (ray_ctx_nargs(ctx) != Traits::arity)
      throw std::invalid_argument("Arguments number not match");
    return CallWithArgs(f, ctx, std::make_index_sequence<Traits::arity>());
  });
}

// Split RAY_REMOTE's stringized list at its top-level commas, trimmed.
inline std::vector<std::string> FunctionNames(const std::string &list) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : list) {
    if (c == '(' || c == '<') depth++;
    if (c == ')' || c == '>') depth--;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(cur);
  for (auto &s : out) {
    size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
    s = b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  }
  return out;
}

template <typename C>
class ClassInfo;  // ray/api/actor.h
template <typename M>
struct MethodTraits;

// A function is a remote function, or an actor factory if it returns a
// pointer to a class; a member function is an actor method.
template <typename F>
void RegisterOne(const std::string &name, F f) {
  if constexpr (std::is_member_function_pointer<F>::value) {
    ClassInfo<typename MethodTraits<F>::Class>::Instance().AddMethod(name, f);
  } else {
    static_assert(std::is_pointer<F>::value && std::is_function<std::remove_pointer_t<F>>::value,
                  "RAY_REMOTE takes functions, factories and member functions");
    using R = typename FunctionTraits<F>::Return;
    if constexpr (std::is_pointer<R>::value && std::is_class<std::remove_pointer_t<R>>::value)
      ClassInfo<std::remove_pointer_t<R>>::Instance().AddFactory(name, f);
    else
      FunctionRegistry::Instance().Add(name, f, &Trampoline<F>);
  }
}

template <typename... F>
bool RegisterRemoteFunctions(const char *list, F... fs) {
  std::vector<std::string> names = FunctionNames(list);
  size_t i = 0;
  (RegisterOne(names.at(i++), fs), ...);
  return true;
}

// RAY_FUNC(f, Args...): the overload of f taking Args.
template <typename... Args>
struct Underload {
  template <typename R>
  constexpr auto operator()(R (*f)(Args...)) const {
    return f;
  }
};

}  // namespace internal
}  // namespace ray

#define RAY_INTERNAL_CONCAT2(a, b) a##b
#define RAY_INTERNAL_CONCAT(a, b) RAY_INTERNAL_CONCAT2(a, b)
// Register remote functions (at namespace scope, once per program).
#define RAY_REMOTE(...)                                    \
  inline bool RAY_INTERNAL_CONCAT(ray_remote_, __LINE__) = \
      ray::internal::RegisterRemoteFunctions(#__VA_ARGS__, __VA_ARGS__);
// The overload of f taking the listed argument types.
#define RAY_FUNC(f, ...) ray::internal::Underload<__VA_ARGS__>()(f)

#endif  // RAY_API_RAY_REMOTE_H
