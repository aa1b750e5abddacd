// cpp_cases.cpp - the C++ API's side of rustyray_microbenchmark:
// cpp_tasks_async and cpp_1_1_actor_calls_async (interface and what each
// does: cpp_cases.h), written as a user of <ray/api.h> writes them: one
// ray::Task(f).Remote() / handle.Task(&C::m).Remote() per call, ray::Get of
// each ObjectRef, the ref released when its handle goes.
//
// The work matches the C cases': the same counts, no arguments, an int64_t
// result (msgpack here, RAY_TYPE_I64 there), the counter an atomic as the
// C class's is, every value checked. The timing is the C side's measure().
#include "cpp_cases.h"

#include <ray/api.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

namespace {

[[noreturn]] void fail(const char *what, long long got, long long want) {
  std::fprintf(stderr, "rustyray_microbenchmark: cpp_cases: %s: got %lld, expected %lld\n", what,
               got, want);
  std::abort();
}

// Run body(); a C++ exception aborts with its message (none crosses into C).
template <class Body>
auto guarded(const char *where, Body &&body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "rustyray_microbenchmark: cpp_cases: %s: %s\n", where, e.what());
  } catch (...) {
    std::fprintf(stderr, "rustyray_microbenchmark: cpp_cases: %s: an unknown exception\n", where);
  }
  std::abort();
}

// The trivial task, as the C case's bench_noop: no arguments, returns 1.
int64_t CppBenchNoop() {
  return 1;
}

// The actor, as the C case's BenchCounter: Inc returns the counter after
// incrementing it, Read returns it.
class CppBenchCounter {
 public:
  static CppBenchCounter *Create() {
    return new CppBenchCounter();
  }
  int64_t Inc() {
    return count_.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  int64_t Read() {
    return count_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> count_{0};
};

}  // namespace

RAY_REMOTE(CppBenchNoop, CppBenchCounter::Create, &CppBenchCounter::Inc, &CppBenchCounter::Read);

namespace {

struct TasksCtx {
  size_t tasks;
  std::vector<ray::ObjectRef<int64_t>> refs;
};

struct ActorCtx {
  size_t calls;
  int64_t made = 0;
  ray::ActorHandle<CppBenchCounter> actor;
  std::vector<ray::ObjectRef<int64_t>> refs;
};

}  // namespace

extern "C" void *cpp_bench_tasks_new(size_t tasks) {
  return guarded("cpp_tasks_async setup", [&] {
    auto *c = new TasksCtx{tasks, {}};
    c->refs.reserve(tasks);
    return static_cast<void *>(c);
  });
}

extern "C" uint64_t cpp_bench_tasks_batch(void *ctx) {
  return guarded("cpp_tasks_async", [&] {
    auto *c = static_cast<TasksCtx *>(ctx);
    for (size_t i = 0; i < c->tasks; i++) c->refs.push_back(ray::Task(CppBenchNoop).Remote());
    for (auto &slot : c->refs) {
      ray::ObjectRef<int64_t> ref = std::move(slot);  // released after its get, as in C
      int64_t v = *ray::Get(ref);
      if (v != 1) fail("cpp_tasks_async: a task's value", v, 1);
    }
    c->refs.clear();
    return static_cast<uint64_t>(c->tasks);
  });
}

extern "C" void cpp_bench_tasks_free(void *ctx) {
  delete static_cast<TasksCtx *>(ctx);
}

extern "C" void *cpp_bench_actor_new(size_t calls) {
  return guarded("cpp_1_1_actor_calls_async setup", [&] {
    auto *c = new ActorCtx{
        calls, 0, ray::Actor(CppBenchCounter::Create).SetMaxConcurrency(1).Remote(), {}};
    c->refs.reserve(calls);
    return static_cast<void *>(c);
  });
}

extern "C" uint64_t cpp_bench_actor_batch(void *ctx) {
  return guarded("cpp_1_1_actor_calls_async", [&] {
    auto *c = static_cast<ActorCtx *>(ctx);
    for (size_t i = 0; i < c->calls; i++)
      c->refs.push_back(c->actor.Task(&CppBenchCounter::Inc).Remote());
    for (auto &slot : c->refs) {
      ray::ObjectRef<int64_t> ref = std::move(slot);
      int64_t v = *ray::Get(ref);
      if (v != ++c->made) fail("cpp_1_1_actor_calls_async: a call's value", v, c->made);
    }
    c->refs.clear();
    return static_cast<uint64_t>(c->calls);
  });
}

extern "C" void cpp_bench_actor_free(void *ctx) {
  guarded("cpp_1_1_actor_calls_async teardown", [&] {
    auto *c = static_cast<ActorCtx *>(ctx);
    int64_t v = *c->actor.Task(&CppBenchCounter::Read).Remote().Get();
    if (v != c->made) fail("cpp_1_1_actor_calls_async: Read() after the case", v, c->made);
    delete c;  // drops the handle: the actor goes once its mailbox is empty
  });
}
