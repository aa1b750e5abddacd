// getting_started.cpp - Ray's C++ "getting started" program, on librustyray.
//
// The shape of the example in Ray's documentation (and of the project
// template `ray cpp --generate-bazel-project-template-to` writes), built
// against <ray/api.h> unchanged but for the checks:
//   1. ray::Init(), then ray::Put / ray::Get of a value;
//   2. a remote function: RAY_REMOTE(Plus), ray::Task(Plus).Remote(1, 2);
//   3. an ObjectRef passed as an argument: for an `int` parameter the task
//      gets its value, resolved before it runs (and a chain of tasks);
//   4. many tasks at once, their results gathered with ray::Get of a vector;
//   5. an actor: a Counter class registered by its factory and method
//      (RAY_REMOTE(Counter::FactoryCreate, &Counter::Add)), created with
//      ray::Actor(Counter::FactoryCreate).Remote(), called with
//      actor.Task(&Counter::Add).Remote(...), with a value and with a ref;
//   6. ray::Shutdown().
// Calls of one actor run one at a time in submission order, so every value
// printed is exact. It checks each one and exits non-zero on a mismatch, so
// it doubles as a test (example_cpp_getting_started).
#include <ray/api.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <vector>

namespace {

// A common function, made remote by RAY_REMOTE below.
int Plus(int x, int y) {
  return x + y;
}

// A class whose objects become actors: a static factory and a method.
class Counter {
 public:
  static Counter *FactoryCreate() {
    return new Counter();
  }
  int Add(int x) {
    count_ += x;
    return count_;
  }

 private:
  int count_ = 0;
};

int failures = 0;

// Print what was computed next to what Ray's semantics say it must be.
void Check(const char *what, int got, int want) {
  std::printf("%-34s = %d\n", what, got);
  if (got != want) {
    std::fprintf(stderr, "getting_started: %s is %d, expected %d\n", what, got, want);
    failures++;
  }
}

}  // namespace

// Declare the remote functions: a function, an actor factory, a method.
RAY_REMOTE(Plus);
RAY_REMOTE(Counter::FactoryCreate, &Counter::Add);

int main() {
  try {
    // 1. Start the runtime (here: worker threads in this process).
    ray::Init();

    // Put an object in the store and get a copy back.
    auto object = ray::Put(100);
    Check("ray::Get(ray::Put(100))", *ray::Get(object), 100);

    // 2. A task: returns an ObjectRef at once; Get waits for the value.
    auto task_object = ray::Task(Plus).Remote(1, 2);
    Check("Plus(1, 2)", *ray::Get(task_object), 3);

    // 3. Refs as arguments: for an `int` parameter the task gets the value
    // (the runtime waits for it without blocking the caller), so tasks chain.
    auto sum = ray::Task(Plus).Remote(object, task_object);
    Check("Plus(ref 100, ref 3)", *sum.Get(), 103);
    auto chained = ray::Task(Plus).Remote(ray::Task(Plus).Remote(sum, 1), 10);
    Check("Plus(Plus(ref 103, 1), 10)", *chained.Get(), 114);

    // 4. Many tasks in parallel; ray::Get of a vector returns them in order.
    std::vector<ray::ObjectRef<int>> squares;
    for (int i = 0; i < 10; i++) squares.push_back(ray::Task(Plus).Remote(i * i, 0));
    std::vector<std::shared_ptr<int>> values = ray::Get(squares);
    int total = 0;
    for (const auto &v : values) total += *v;
    Check("sum of ten Plus(i * i, 0)", total, 285);

    // 5. An actor: its calls run one at a time, in the order made.
    ray::ActorHandle<Counter> actor = ray::Actor(Counter::FactoryCreate).Remote();
    auto actor_object = actor.Task(&Counter::Add).Remote(3);
    Check("Counter.Add(3)", *ray::Get(actor_object), 3);
    // A method takes a ref too: the result of the task above (3).
    auto actor_object2 = actor.Task(&Counter::Add).Remote(task_object);
    Check("Counter.Add(ref 3)", *ray::Get(actor_object2), 6);
    // Calls made without waiting still run in order: 7, 8, 9.
    std::vector<ray::ObjectRef<int>> adds;
    for (int i = 0; i < 3; i++) adds.push_back(actor.Task(&Counter::Add).Remote(1));
    Check("third of three Counter.Add(1)", *ray::Get(adds.back()), 9);
    Check("first of three Counter.Add(1)", *ray::Get(adds.front()), 7);

    // 6. Stop the runtime.
    ray::Shutdown();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "getting_started: %s\n", e.what());
    return 1;
  }
  if (failures != 0) return 1;
  std::printf("getting_started: all checks passed\n");
  return 0;
}
