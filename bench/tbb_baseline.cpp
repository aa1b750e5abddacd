// tbb_baseline.cpp - the oneTBB side of `rustyray_microbenchmark --compare`
// (interface and units: tbb_baseline.h).
//
// Each case does the work of one of our cases the way a oneTBB user would
// write it, never a deliberately slow baseline:
//
// - Concurrency: every task case runs in one tbb::task_arena whose
//   concurrency is our runtime's worker count (2 on the 2-core development
//   VM), and a tbb::global_control caps TBB's worker threads to match. The
//   caller enters the arena (arena.execute), submits into its own slot and
//   helps while it waits (task_group::wait), so, as with our workers, there
//   are as many threads running tasks as the machine has cores.
// - single_client_tasks_async: task_group::run per task, then wait; each
//   task stores 1 in its own slot, every slot is checked after the wait.
// - task_chain_100k: continuation style: each task computes its value + 1
//   and runs the next link in the same task_group with it (the spawning
//   thread pops it from its own deque at once); the last one stores the end.
// - single_client_tasks_sync: the caller stays outside the arena and hands
//   the task over with task_arena::enqueue, so a TBB worker runs it (the
//   caller never runs it itself); the task stores its value in an atomic and
//   notifies. The caller waits as our ray_get does: it spins up to 20 us
//   (a hand-off from another core is usually faster than a sleep and a wake)
//   and then blocks in std::atomic::wait (a futex: no mutex, no condition
//   variable, no allocation as a std::future would make). So the comparison
//   measures the schedulers' hand-off, not two different waiting policies.
// - Actor calls: an actor is its state behind a serial queue: a
//   tbb::concurrent_queue of calls plus an atomic count of calls not yet
//   run. Submitting pushes the call and, if the count was 0 (the actor was
//   idle), runs a drain task in the caller's task_group; the drain task runs
//   calls in order until the count drops to 0. This is the usual lock-free
//   serial executor (the count, rather than a "scheduled" flag, closes the
//   race between a drain that just found the queue empty and a new push).
//   Each call writes its return value to its own slot; the host waits for
//   its task_group and checks every value, then the counter.
// - Puts and gets: a tbb::concurrent_hash_map<uint64_t, int64_t> as the
//   store: a put inserts a fresh key (each host thread its own key range, so
//   they share no counter) and erases it (our put + release); a get finds
//   the key with a const_accessor (a reader lock on the element, as our get
//   pins the object) and reads the value.
//
// Timing: std::chrono::steady_clock, read once per batch, as our measure().
#include "tbb_baseline.h"

#include <oneapi/tbb/concurrent_hash_map.h>
#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <sched.h>

namespace {

[[noreturn]] void fail(const char *what, long long got, long long want) {
  std::fprintf(stderr, "rustyray_microbenchmark: tbb_baseline: %s: got %lld, expected %lld\n", what,
               got, want);
  std::abort();
}

void expect_eq(const char *what, long long got, long long want) {
  if (got != want) fail(what, got, want);
}

using Clock = std::chrono::steady_clock;

// What one thread measured: operations done between start and end.
struct Span {
  uint64_t ops = 0;
  Clock::time_point start, end;
};

double per_second(uint64_t ops, Clock::time_point start, Clock::time_point end) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
  return static_cast<double>(ops) * 1e9 / static_cast<double>(ns);
}

// Run batch() (which returns how many operations it did) for a warm-up of
// seconds/10, untimed, then call ready() (the barrier of measure_clients)
// and run it for `seconds`, timed: the clock is read once per batch.
template <class Batch, class Ready>
Span run_timed(double seconds, Batch &batch, Ready &&ready) {
  const auto warm = std::chrono::duration<double>(seconds / 10);
  const auto run = std::chrono::duration<double>(seconds);
  auto t0 = Clock::now();
  while (Clock::now() - t0 < warm) batch();
  ready();
  Span span;
  span.start = Clock::now();
  do {
    span.ops += batch();
    span.end = Clock::now();
  } while (span.end - span.start < run);
  return span;
}

// Operations per second of batch() on the calling thread, as our measure().
template <class Batch>
double measure(double seconds, Batch batch) {
  Span span = run_timed(seconds, batch, [] {});
  return per_second(span.ops, span.start, span.end);
}

// Run make(i)() on `clients` host threads at once (a warm-up, then `seconds`)
// and return the aggregate operations per second over the span from the
// first start to the last end, as our measure_clients().
template <class Make>
double measure_clients(double seconds, unsigned clients, Make make) {
  std::barrier<> sync(clients);
  std::vector<Span> spans(clients);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < clients; i++)
    threads.emplace_back([&, i] {
      auto batch = make(i);
      sync.arrive_and_wait();
      spans[i] = run_timed(seconds, batch, [&] { sync.arrive_and_wait(); });
    });
  for (auto &t : threads) t.join();
  uint64_t total = 0;
  Clock::time_point first = Clock::time_point::max(), last = Clock::time_point::min();
  for (const Span &span : spans) {
    total += span.ops;
    first = std::min(first, span.start);
    last = std::max(last, span.end);
  }
  return per_second(total, first, last);
}

// ---- The arena ---------------------------------------------------------------

unsigned g_concurrency = 2;
std::unique_ptr<tbb::global_control> g_control;
std::unique_ptr<tbb::task_arena> g_arena;

tbb::task_arena &arena() {
  if (!g_arena) fail("tbb_baseline_init was not called", 0, 1);
  return *g_arena;
}

// ---- Waiting for a value from another thread -----------------------------------

// Spin up to 20 us (pause; a yield every 64 spins), then block on the atomic.
int64_t await_nonzero(std::atomic<int64_t> &value) {
  const auto until = Clock::now() + std::chrono::microseconds(20);
  for (unsigned i = 1;; i++) {
    int64_t v = value.load(std::memory_order_acquire);
    if (v != 0) return v;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 0) {
      if (Clock::now() >= until) break;
      sched_yield();
    }
  }
  for (;;) {
    value.wait(0, std::memory_order_acquire);
    int64_t v = value.load(std::memory_order_acquire);
    if (v != 0) return v;
  }
}

// ---- Actors: state behind a serial queue ---------------------------------------

struct Counter {
  int64_t count = 0;
};

int64_t counter_inc(Counter &c) {
  return ++c.count;
}

struct Call {
  int64_t (*method)(Counter &);
  int64_t *result;
};

class SerialActor {
 public:
  // Run `call` after every call submitted before it; a drain task goes into
  // `tg` if the actor was idle.
  void submit(tbb::task_group &tg, Call call) {
    queue_.push(call);
    if (pending_.fetch_add(1, std::memory_order_acq_rel) == 0) tg.run([this] { drain(); });
  }

  int64_t count() const {
    return state_.count;
  }

 private:
  void drain() {
    do {
      Call call;
      // The push of every counted call came before its count.
      if (!queue_.try_pop(call)) fail("serial queue: a counted call is missing", 0, 1);
      *call.result = call.method(state_);
    } while (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1);
  }

  tbb::concurrent_queue<Call> queue_;
  std::atomic<int64_t> pending_{0};
  Counter state_;
};

// ---- The object store: a concurrent hash map --------------------------------------

using Store = tbb::concurrent_hash_map<uint64_t, int64_t>;
constexpr int kSmallBatch = 256;  // operations per clock read, as our SMALL_BATCH
constexpr int kSyncBatch = 64;    // round trips per clock read, as our SYNC_BATCH

// Batches of put + release on `store` for host thread `client`.
auto put_batch(Store &store, unsigned client) {
  return [&store, next = static_cast<uint64_t>(client) << 48]() mutable -> uint64_t {
    for (int64_t i = 0; i < kSmallBatch; i++) {
      uint64_t key = next++;
      if (!store.insert(Store::value_type(key, i))) fail("insert of a fresh key", 0, 1);
      if (!store.erase(key)) fail("erase of the key just inserted", 0, 1);
    }
    return kSmallBatch;
  };
}

}  // namespace

extern "C" void tbb_baseline_init(unsigned concurrency) {
  g_concurrency = concurrency < 1 ? 1 : concurrency;
  g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    g_concurrency);
  g_arena = std::make_unique<tbb::task_arena>(static_cast<int>(g_concurrency));
  g_arena->initialize();
}

extern "C" const char *tbb_baseline_describe(void) {
  static char text[160];
  std::snprintf(text, sizeof text,
                "oneTBB %s (runtime %s), task_arena of concurrency %u, the caller helping",
                TBB_VERSION_STRING, TBB_runtime_version(), g_concurrency);
  return text;
}

extern "C" double tbb_baseline_tasks_async(double seconds, size_t tasks) {
  std::vector<int64_t> slots(tasks, 0);
  return measure(seconds, [&]() -> uint64_t {
    int64_t *slot = slots.data();
    arena().execute([&] {
      tbb::task_group tg;
      for (size_t i = 0; i < tasks; i++) tg.run([slot, i] { slot[i] = 1; });
      tg.wait();
    });
    for (size_t i = 0; i < tasks; i++) {
      expect_eq("tasks_async: a task's slot", slot[i], 1);
      slot[i] = 0;
    }
    return tasks;
  });
}

namespace {

// One link of the chain: its input is the previous link's value.
struct Link {
  tbb::task_group *tg;
  int64_t input;
  int64_t remaining;  // links left, this one included
  int64_t *end;

  void operator()() const {
    int64_t value = input + 1;
    if (remaining == 1)
      *end = value;
    else
      tg->run(Link{tg, value, remaining - 1, end});
  }
};

}  // namespace

extern "C" double tbb_baseline_task_chain(double seconds, int64_t length) {
  return measure(seconds, [&]() -> uint64_t {
    int64_t end = 0;
    arena().execute([&] {
      tbb::task_group tg;
      tg.run(Link{&tg, 0, length, &end});
      tg.wait();
    });
    expect_eq("task_chain: the end value", end, length);
    return static_cast<uint64_t>(length);
  });
}

extern "C" double tbb_baseline_tasks_sync(double seconds) {
  // Static: a task may still be in notify_one on it after the caller saw
  // its value (a late notify is only a spurious wake for the next wait).
  static std::atomic<int64_t> result{0};
  return measure(seconds, []() -> uint64_t {
    for (int i = 0; i < kSyncBatch; i++) {
      result.store(0, std::memory_order_relaxed);
      arena().enqueue([] {
        result.store(1, std::memory_order_release);
        result.notify_one();
      });
      expect_eq("tasks_sync: the task's value", await_nonzero(result), 1);
    }
    return kSyncBatch;
  });
}

namespace {

// One host thread's actor and the calls it made to it (each on its own
// allocation, so two host threads share no cache line).
struct ActorClient {
  SerialActor actor;
  int64_t made = 0;
};

}  // namespace

extern "C" double tbb_baseline_actor_calls_async(double seconds, unsigned clients, size_t calls) {
  std::vector<std::unique_ptr<ActorClient>> actors;
  for (unsigned i = 0; i < clients; i++) actors.push_back(std::make_unique<ActorClient>());
  auto make = [&](unsigned client) {
    return [c = actors[client].get(), calls,
            results = std::vector<int64_t>(calls)]() mutable -> uint64_t {
      arena().execute([&] {
        tbb::task_group tg;
        for (size_t i = 0; i < calls; i++) c->actor.submit(tg, Call{counter_inc, &results[i]});
        tg.wait();
      });
      for (size_t i = 0; i < calls; i++) expect_eq("actor call: its value", results[i], ++c->made);
      return calls;
    };
  };
  double rate = 0;
  if (clients == 1) {
    auto batch = make(0);
    rate = measure(seconds, batch);
  } else {
    rate = measure_clients(seconds, clients, make);
  }
  for (const auto &c : actors)
    expect_eq("actor: the counter after the round", c->actor.count(), c->made);
  return rate;
}

extern "C" double tbb_baseline_put_calls(double seconds, unsigned clients) {
  Store store;
  double rate = clients == 1 ? measure(seconds, put_batch(store, 0))
                             : measure_clients(seconds, clients, [&](unsigned client) {
                                 return put_batch(store, client);
                               });
  expect_eq("put: entries left in the map", static_cast<long long>(store.size()), 0);
  return rate;
}

extern "C" double tbb_baseline_get_calls(double seconds) {
  Store store;
  const uint64_t key = 1;
  const int64_t value = 42;
  store.insert(Store::value_type(key, value));
  return measure(seconds, [&]() -> uint64_t {
    for (int i = 0; i < kSmallBatch; i++) {
      Store::const_accessor acc;
      if (!store.find(acc, key)) fail("get: find of the stored key", 0, 1);
      expect_eq("get: the value", acc->second, value);
    }
    return kSmallBatch;
  });
}
