// ray/api/actor.h - actors (ADR-007): ray::Actor(Factory).Remote(args...)
// gives an ActorHandle<T>; handle.Task(&T::Method).Remote(args...) calls a
// method, one at a time (or SetMaxConcurrency at once), in order. Classes
// and methods are registered with RAY_REMOTE (ray_remote.h): a factory
// (a function returning T*) and member functions; each factory becomes a
// class of the C core named by its key, whose constructor runs the factory
// and whose destructor deletes the object.
#ifndef RAY_API_ACTOR_H
#define RAY_API_ACTOR_H

#include <boost/optional.hpp>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "object_ref.h"
#include "placement_group.h"
#include "ray_config.h"
#include "ray_exception.h"
#include "ray_remote.h"
#include "rustyray/actor.h"
#include "rustyray/runtime.h"
#include "task_caller.h"

namespace ray {

template <typename ActorType>
class ActorHandle;

namespace internal {

template <typename M>
struct MethodTraits;
template <typename R, typename C, typename... A>
struct MethodTraits<R (C::*)(A...)> {
  using Return = R;
  using Class = C;
  using Params = std::tuple<std::decay_t<A>...>;
  static constexpr size_t arity = sizeof...(A);
};
template <typename R, typename C, typename... A>
struct MethodTraits<R (C::*)(A...) const> : MethodTraits<R (C::*)(A...)> {};

// Every C++ actor type's ClassInfo<C>::Publish, so that ray::Init makes
// each factory's class a static descriptor of the C core before ray_init
// (cluster mode: another rank makes and calls its actors by the class's
// name, ADR-007).
inline std::mutex &PublishersMu() {
  static std::mutex mu;
  return mu;
}
inline std::vector<void (*)()> &Publishers() {
  static std::vector<void (*)()> v;
  return v;
}
inline void PublishClasses() {
  std::lock_guard<std::mutex> g(PublishersMu());
  for (auto publish : Publishers()) publish();
}

// One actor class per C++ type: its registered methods (by key, e.g.
// "&Counter::Add") and factories; the C core's class tables are built when
// ray::Init publishes them (or at the first creation), once every
// RAY_REMOTE has run.
template <typename C>
class ClassInfo {
 public:
  using Invoke = int (*)(const unsigned char *member, C *self, ray_task_ctx_t *ctx);
  struct Method {
    std::string name;
    alignas(void *) unsigned char member[2 * sizeof(void *)];
    Invoke invoke;
  };
  struct Factory {
    std::string name;
    std::function<C *(ray_task_ctx_t *)> make;
    ray_actor_class_t cls{};
    ray_static_class_t published{};  // the C core's static descriptor of cls
  };
  static ClassInfo &Instance() {
    static ClassInfo info;
    return info;
  }
  template <typename M>
  void AddMethod(const std::string &name, M m) {
    static_assert(sizeof(M) <= sizeof(Method::member), "a member function pointer");
    std::lock_guard<std::mutex> g(mu_);
    if (!defs_.empty())  // the class's table is fixed at its first creation
      throw RayException("RAY_REMOTE " + name + " after an actor of its class was created");
    Method e;
    e.name = name;
    std::memcpy(e.member, &m, sizeof m);
    e.invoke = &InvokeMethod<M>;
    keys_[FunctionRegistry::Key(m)] = static_cast<uint32_t>(methods_.size());
    methods_.push_back(std::move(e));
  }
  template <typename F>
  void AddFactory(const std::string &name, F f) {
    bool first;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto fac = std::make_unique<Factory>();
      fac->name = name;
      fac->make = [f](ray_task_ctx_t *ctx) {
        using Traits = FunctionTraits<F>;
        if (ray_ctx_nargs(ctx) != Traits::arity)
          throw std::invalid_argument("Arguments number not match");
        return CallWithArgs(f, ctx, std::make_index_sequence<Traits::arity>());
      };
      factory_keys_[FunctionRegistry::Key(f)] = fac.get();
      factories_.push_back(std::move(fac));
      first = !listed_;
      listed_ = true;
    }
    if (first) {  // once per class, mu_ released (Publish takes the two the other way)
      std::lock_guard<std::mutex> p(PublishersMu());
      Publishers().push_back(&ClassInfo::Publish);
    }
  }
  // Every factory's class as a static descriptor of the C core (ray::Init,
  // before ray_init; ray_static_class_add ignores one added already).
  static void Publish() {
    ClassInfo &info = Instance();
    std::lock_guard<std::mutex> g(info.mu_);
    for (auto &fac : info.factories_) {
      info.Build(fac.get());
      fac->published.cls = &fac->cls;
      ray_static_class_add(&fac->published);
    }
  }
  // Method m's index in the class's table (as the C core numbers the
  // methods), or -1. Each thread remembers the last one per signature, so a
  // loop calling one method takes no lock.
  template <typename M>
  int64_t MethodIndex(M m) {
    thread_local M last_m{};
    thread_local int64_t last = -1;
    if (last >= 0 && last_m == m) return last;
    std::lock_guard<std::mutex> g(mu_);
    auto it = keys_.find(FunctionRegistry::Key(m));
    if (it == keys_.end()) return -1;
    last_m = m;
    last = it->second;
    return last;
  }
  // The C class of factory f (built once), or NULL if f is not registered.
  template <typename F>
  const ray_actor_class_t *ClassOf(F f) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = factory_keys_.find(FunctionRegistry::Key(f));
    if (it == factory_keys_.end()) return nullptr;
    Build(it->second);
    return &it->second->cls;
  }

 private:
  // fac's C class, and the method table, built once (mu_ held).
  void Build(Factory *fac) {
    if (defs_.empty()) {  // methods_ is fixed from here on: RunMethod reads it unlocked
      for (const auto &m : methods_) defs_.push_back({m.name.c_str(), &RunMethod, kMsgpack, 1});
      table_ = methods_.data();
    }
    if (fac->cls.name == nullptr)
      fac->cls = {fac->name.c_str(), &Construct, &Destroy, defs_.empty() ? nullptr : defs_.data(),
                  defs_.size()};
  }
  static constexpr uint32_t kMsgpack[1] = {RAY_TYPE_MSGPACK};
  template <typename M>
  static int InvokeMethod(const unsigned char *member, C *self, ray_task_ctx_t *ctx) {
    M m;
    std::memcpy(&m, member, sizeof m);
    using Traits = MethodTraits<M>;
    return ReturnOrFail(ctx, [&]() {
      if (ray_ctx_nargs(ctx) != Traits::arity)
        throw std::invalid_argument("Arguments number not match");
      return CallMember(self, m, ctx, std::make_index_sequence<Traits::arity>());
    });
  }
  template <typename M, size_t... I>
  static auto CallMember(C *self, M m, ray_task_ctx_t *ctx, std::index_sequence<I...>) {
    (void)ctx;
    using Params = typename MethodTraits<M>::Params;
    return (self->*m)(ArgAt<std::tuple_element_t<I, Params>>(ctx, I)...);
  }
  // Every method of the class runs through here: the core gives the
  // method's index in the table (defs_, built in methods_' order), and the
  // table is fixed once an actor of the class exists (no lock).
  static int RunMethod(ray_task_ctx_t *ctx, void *state) {
    uint32_t i = 0;
    int rc = ray_ctx_method_index(ctx, &i);
    if (rc != 0) return rc;
    const Method &m = Instance().table_[i];
    CtxScope scope(ctx);
    return m.invoke(m.member, static_cast<C *>(state), ctx);
  }
  // "Factory.__init__": run the factory registered under that name.
  static int Construct(ray_task_ctx_t *ctx, void **state) {
    const char *full = ray_ctx_name(ctx);
    std::string name = full != nullptr ? full : "";
    size_t cut = name.rfind(".__init__");
    if (cut != std::string::npos) name.resize(cut);
    ClassInfo &info = Instance();
    const Factory *fac = nullptr;
    {
      std::lock_guard<std::mutex> g(info.mu_);
      for (const auto &f : info.factories_)
        if (f->name == name) fac = f.get();
    }
    if (fac == nullptr) return ray_fail(ctx, RAY_ENOTFOUND, "no factory %s", name.c_str());
    CtxScope scope(ctx);
    try {
      C *obj = fac->make(ctx);
      if (obj == nullptr) return ray_fail(ctx, RAY_ETASK, "%s returned no object", name.c_str());
      *state = obj;
      return 0;
    } catch (const std::exception &e) {
      return ray_fail(ctx, RAY_ETASK, "%s: %s", TypeName(typeid(e)).c_str(), e.what());
    }
  }
  static void Destroy(void *state) {
    delete static_cast<C *>(state);
  }

  std::mutex mu_;
  std::vector<Method> methods_;
  std::vector<std::unique_ptr<Factory>> factories_;
  std::unordered_map<std::string, uint32_t> keys_;  // a method's key: its index
  std::unordered_map<std::string, Factory *> factory_keys_;
  std::vector<ray_method_def_t> defs_;
  const Method *table_ = nullptr;  // methods_.data() once defs_ is built
  bool listed_ = false;            // in Publishers()
};

// A call of a method of an actor. SetName and SetResources/SetResource are
// Ray's and kept (the resources validated at Remote); the core names every
// call "Class.method" (ADR-007).
template <typename M>
class ActorTaskCaller : public ResourceOptions<ActorTaskCaller<M>> {
 public:
  using Return = typename MethodTraits<M>::Return;
  ActorTaskCaller(ray_actor_t actor, uint32_t method) : actor_(actor), method_(method) {}
  ActorTaskCaller &SetName(std::string name) {
    name_ = std::move(name);
    return *this;
  }
  template <typename... Args>
  ObjectRef<Return> Remote(Args &&...args) {
    CheckResources(this->resources_);
    CallArgs call = CallArgs::Of<typename MethodTraits<M>::Params>(std::forward<Args>(args)...);
    ray_ref_t out;
    int rc = ray_actor_call_id(actor_, method_, call.data(), call.size(), nullptr, &out);
    if (rc != 0) ThrowFor(rc, "Actor call");
    return ObjectRef<Return>::Adopt(out);
  }

 private:
  ray_actor_t actor_;
  uint32_t method_;
  std::string name_;
};

// ray::Actor(factory): options, then Remote(args...).
template <typename F>
class ActorCreator : public ResourceOptions<ActorCreator<F>>,
                     public PlacementOptions<ActorCreator<F>> {
 public:
  using ActorType = std::remove_pointer_t<typename FunctionTraits<F>::Return>;
  explicit ActorCreator(F f) : f_(f) {
    ray_actor_opts_init(&opts_);
    opts_.detached = DefaultActorLifetime() == ActorLifetime::DETACHED;
  }
  template <typename... Args>
  ray::ActorHandle<ActorType> Remote(Args &&...args) {
    CheckResources(this->resources_);
    this->CheckPlacement();
    const ray_actor_class_t *cls = ClassInfo<ActorType>::Instance().ClassOf(f_);
    if (cls == nullptr)
      throw RayException("Function not found. Please use RAY_REMOTE to register this function.");
    CallArgs call = CallArgs::Of<typename FunctionTraits<F>::Params>(std::forward<Args>(args)...);
    std::string full = name_.empty() ? std::string() : ns_ + "/" + name_;
    opts_.name = full.empty() ? nullptr : full.c_str();
    ray_actor_t a;
    int rc = ray_actor_create(cls, call.data(), call.size(), &opts_, &a);
    if (rc == RAY_ENAMEEXISTS) throw RayException("Actor named " + name_ + " already exists");
    if (rc != 0) ThrowFor(rc, "Actor");
    return ray::ActorHandle<ActorType>::Adopt(a);
  }
  ActorCreator &SetName(std::string name) {
    return SetName(std::move(name), ray::GetNamespace());
  }
  ActorCreator &SetName(std::string name, std::string ray_namespace) {
    name_ = std::move(name);
    ns_ = std::move(ray_namespace);
    return *this;
  }
  // -1: as many restarts as it takes.
  ActorCreator &SetMaxRestarts(int max_restarts) {
    opts_.max_restarts = max_restarts < 0 ? UINT32_MAX : static_cast<uint32_t>(max_restarts);
    return *this;
  }
  ActorCreator &SetMaxConcurrency(int max_concurrency) {
    if (max_concurrency < 1) throw RayException("max_concurrency must be at least 1");
    opts_.max_concurrency = static_cast<uint32_t>(max_concurrency);
    return *this;
  }

 private:
  F f_;
  ray_actor_opts_t opts_;
  std::string name_, ns_;
};

}  // namespace internal

// A handle on an actor: copying retains it, destroying releases it (an
// unnamed actor goes with its last handle).
template <typename ActorType>
class ActorHandle {
 public:
  ActorHandle() = default;
  ActorHandle(const ActorHandle &o) : a_(o.a_) {
    if (a_.id != 0 && ray_actor_retain(a_) != 0) a_.id = 0;
  }
  ActorHandle(ActorHandle &&o) noexcept : a_(o.a_) {
    o.a_.id = 0;
  }
  ActorHandle &operator=(ActorHandle o) noexcept {
    std::swap(a_, o.a_);
    return *this;
  }
  ~ActorHandle() {
    if (a_.id != 0) (void)ray_actor_release(a_);
  }
  static bool IsActorHandle() {
    return true;
  }
  std::string ID() const {
    return internal::IdBytes(a_.id);
  }
  template <typename M>
  internal::ActorTaskCaller<M> Task(M method) {
    static_assert(std::is_member_function_pointer<M>::value, "a member function of the actor");
    int64_t index = internal::ClassInfo<ActorType>::Instance().MethodIndex(method);
    if (index < 0)
      throw internal::RayException(
          "Function not found. Please use RAY_REMOTE to register this function.");
    return internal::ActorTaskCaller<M>(a_, static_cast<uint32_t>(index));
  }
  // Kill the actor; with no_restart false it restarts if it has restarts left.
  void Kill() {
    Kill(true);
  }
  void Kill(bool no_restart) {
    int rc = ray_actor_kill(a_, no_restart);
    if (rc != 0) internal::ThrowFor(rc, "Kill");
  }
  // Not Ray's: take over a C handle reference; take a new one; the C handle.
  static ActorHandle Adopt(ray_actor_t a) {
    ActorHandle h;
    h.a_ = a;
    return h;
  }
  static ActorHandle Borrow(ray_actor_t a) {
    if (ray_actor_retain(a) != 0) throw internal::RayActorException("The actor is gone");
    return Adopt(a);
  }
  ray_actor_t Raw() const {
    return a_;
  }

 private:
  ray_actor_t a_{0};
};

// From inside an actor's method: end the actor for good once this call
// returns, whatever SetMaxRestarts says (Ray's intended exit); the call's
// result and the calls queued behind it fail (RayActorException). Throws to
// leave the method: do not catch it. Throws std::logic_error outside an
// actor's method (a constructor included).
inline void ExitActor() {
  ray_task_ctx_t *ctx = internal::tls_current_ctx;
  if (ctx == nullptr || ray_actor_exit_no_restart(ctx) != 0)
    throw std::logic_error("This shouldn't be called on a non-actor worker.");
  throw internal::RayIntentionalSystemExitException("The actor exited intentionally.");
}

// Inside an actor's factory or method: whether the actor has been
// restarted (Kill(false), or a failure with restarts left). False
// elsewhere.
inline bool WasCurrentActorRestarted() {
  uint32_t n = 0;
  ray_task_ctx_t *ctx = internal::tls_current_ctx;
  return ctx != nullptr && ray_ctx_actor_restarts(ctx, &n) == 0 && n != 0;
}

// Options for a new actor of the class `create_func` (a RAY_REMOTE factory) makes.
template <typename F>
internal::ActorCreator<F> Actor(F create_func) {
  return internal::ActorCreator<F>(create_func);
}

// The named actor `name` in the current namespace (or `ray_namespace`).
template <typename T>
boost::optional<ActorHandle<T>> GetActor(const std::string &name,
                                         const std::string &ray_namespace) {
  ray_actor_t a;
  std::string full = ray_namespace + "/" + name;
  if (ray_get_actor(full.c_str(), &a) != 0) return {};
  return ActorHandle<T>::Adopt(a);
}
template <typename T>
boost::optional<ActorHandle<T>> GetActor(const std::string &name) {
  return GetActor<T>(name, ray::GetNamespace());
}

}  // namespace ray

// ActorHandle<T> inside a msgpack-c++ value (an argument, a result, inside
// another value): the core's actor extension (8 bytes: the id,
// big-endian); whatever holds the value holds the actor, and reading it
// back takes a new handle reference.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <typename T>
  struct pack<ray::ActorHandle<T>> {
    template <typename Stream>
    packer<Stream> &operator()(packer<Stream> &o, const ray::ActorHandle<T> &v) const {
      char b[8];
      ray::internal::PutBE(b, v.Raw().id, 8);
      o.pack_ext(sizeof b, RAY_MSGPACK_EXT_ACTOR);
      o.pack_ext_body(b, sizeof b);
      return o;
    }
  };

  template <typename T>
  struct convert<ray::ActorHandle<T>> {
    const msgpack::object &operator()(const msgpack::object &o, ray::ActorHandle<T> &v) const {
      if (o.type != msgpack::type::EXT || o.via.ext.type() != RAY_MSGPACK_EXT_ACTOR ||
          o.via.ext.size != 8)
        throw msgpack::type_error();
      ray_actor_t a;
      a.id = ray::internal::GetBE(o.via.ext.data(), 8);
      v = ray::ActorHandle<T>::Borrow(a);
      return o;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // RAY_API_ACTOR_H
