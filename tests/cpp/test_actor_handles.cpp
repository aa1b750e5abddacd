// test_actor_handles.cpp - the C++ actor API's lifetimes (ADR-007) with
// GoogleTest: ray::ExitActor (never restarts), WasCurrentActorRestarted,
// actor handles as task arguments, as results, inside stored values (the
// actor lives as long as any of them, and goes with the last: actors_alive
// back to zero), and RayConfig::default_actor_lifetime.
#include <ray/api.h>

#include <gtest/gtest.h>

#include "cpp_test_util.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace {

class Counter {
 public:
  explicit Counter(int start) : value_(start), born_restarted_(ray::WasCurrentActorRestarted()) {}
  static Counter *Create(int start) {
    return new Counter(start);
  }
  int Add(int x) {
    value_ += x;
    return value_;
  }
  int Exit() {
    ray::ExitActor();
    return -1;  // not reached
  }
  bool Restarted() {
    return ray::WasCurrentActorRestarted();
  }
  bool BornRestarted() {
    return born_restarted_;
  }
  // A new actor, returned as a handle.
  ray::ActorHandle<Counter> Spawn(int start) {
    return ray::Actor(Counter::Create).Remote(start);
  }

 private:
  int value_;
  bool born_restarted_;
};

// Actor handles as a task's argument and result.
int AddThrough(ray::ActorHandle<Counter> c, int x) {
  return *c.Task(&Counter::Add).Remote(x).Get();
}
ray::ActorHandle<Counter> MakeCounter(int start) {
  return ray::Actor(Counter::Create).Remote(start);
}
int ExitFromATask() {
  ray::ExitActor();  // not an actor: std::logic_error
  return 0;
}

// Handles inside a value.
struct Team {
  std::vector<ray::ActorHandle<Counter>> members;
  MSGPACK_DEFINE(members)
};

}  // namespace

RAY_REMOTE(Counter::Create, &Counter::Add, &Counter::Exit, &Counter::Restarted,
           &Counter::BornRestarted, &Counter::Spawn, AddThrough, MakeCounter, ExitFromATask);

namespace {

uint64_t ActorsAlive() {
  return cpptest::Stats().actors_alive;
}

// Whether every actor goes: an actor is freed once its last holder (a
// handle, a value, a task's argument) lets go and its calls have run, which
// may come just after a result was read.
bool ActorsGo() {
  return cpptest::Eventually([] { return ActorsAlive() == 0; });
}

class ActorHandles : public ::testing::Test {
 protected:
  void SetUp() override {
    ray::Init();
  }
  void TearDown() override {
    ray::Shutdown();
  }
};

TEST_F(ActorHandles, ExitActorNeverRestarts) {
  auto c = ray::Actor(Counter::Create).SetMaxRestarts(-1).Remote(1);
  EXPECT_EQ(*c.Task(&Counter::Add).Remote(1).Get(), 2);
  EXPECT_THROW(c.Task(&Counter::Exit).Remote().Get(), ray::internal::RayActorException);
  EXPECT_THROW(c.Task(&Counter::Add).Remote(1).Get(), ray::internal::RayActorException);
  // Outside an actor's method.
  EXPECT_THROW(ray::ExitActor(), std::logic_error);
  try {
    ray::Task(ExitFromATask).Remote().Get();
    FAIL() << "no exception";
  } catch (const ray::internal::RayTaskException &e) {
    EXPECT_NE(std::string(e.what()).find("std::logic_error"), std::string::npos) << e.what();
  }
}

TEST_F(ActorHandles, WasCurrentActorRestarted) {
  EXPECT_FALSE(ray::WasCurrentActorRestarted());  // the driver
  auto c = ray::Actor(Counter::Create).SetMaxRestarts(1).Remote(1);
  EXPECT_FALSE(*c.Task(&Counter::Restarted).Remote().Get());
  EXPECT_FALSE(*c.Task(&Counter::BornRestarted).Remote().Get());
  c.Kill(false);
  EXPECT_TRUE(*c.Task(&Counter::Restarted).Remote().Get());
  EXPECT_TRUE(*c.Task(&Counter::BornRestarted).Remote().Get());  // seen by the factory
}

TEST_F(ActorHandles, AsArgumentsResultsAndInsideValues) {
  {
    auto c = ray::Actor(Counter::Create).Remote(10);
    EXPECT_EQ(*ray::Task(AddThrough).Remote(c, 5).Get(), 15);  // an argument
    auto made = ray::Task(MakeCounter).Remote(100);            // a task's result
    EXPECT_EQ(*made.Get()->Task(&Counter::Add).Remote(1).Get(), 101);
    auto spawned = c.Task(&Counter::Spawn).Remote(7);  // a method's result
    auto child = *spawned.Get();
    EXPECT_EQ(*child.Task(&Counter::Add).Remote(1).Get(), 8);
    EXPECT_NE(child.ID(), c.ID());
    // A value holding handles keeps its actors when every handle is gone.
    auto team = ray::Put(Team{{c, child}});
    EXPECT_EQ(*ray::Task(AddThrough).Remote(made, 1).Get(), 102);  // a ref to a handle
  }
  // Only `made`'s result object and `team` are gone with the scope: every
  // holder of every actor is gone.
  EXPECT_TRUE(ActorsGo());
}

TEST_F(ActorHandles, AValueKeepsItsActors) {
  ray::ObjectRef<Team> team;
  {
    auto c = ray::Actor(Counter::Create).Remote(1);
    team = ray::Put(Team{{c}});
  }  // our handle is gone; the value holds the actor
  auto read = team.Get();
  ASSERT_EQ(read->members.size(), 1u);
  EXPECT_EQ(*read->members[0].Task(&Counter::Add).Remote(1).Get(), 2);
  EXPECT_EQ(ActorsAlive(), 1u);
  read.reset();
  team = ray::ObjectRef<Team>();  // the last holder
  EXPECT_TRUE(ActorsGo());
}

TEST_F(ActorHandles, DefaultActorLifetime) {
  ray::Shutdown();
  ray::RayConfig config;
  config.default_actor_lifetime = ray::ActorLifetime::DETACHED;
  ray::Init(config);
  {
    auto c = ray::Actor(Counter::Create).Remote(1);
    EXPECT_EQ(*c.Task(&Counter::Add).Remote(1).Get(), 2);
  }
  EXPECT_EQ(ActorsAlive(), 1u);  // detached: kept without handles, until Shutdown
  ray::Shutdown();

  // Ray's flag overrides the config; a bad value is refused.
  ray::RayConfig plain;
  char prog[] = "prog", flag[] = "--ray_default_actor_lifetime=non_detached";
  char *argv[] = {prog, flag, nullptr};
  config.default_actor_lifetime = ray::ActorLifetime::DETACHED;
  ray::Init(config, 2, argv);
  { auto c = ray::Actor(Counter::Create).Remote(1); }
  EXPECT_TRUE(ActorsGo());
  ray::Shutdown();
  char bad[] = "--ray_default_actor_lifetime=forever";
  char *argv_bad[] = {prog, bad, nullptr};
  EXPECT_THROW(ray::Init(plain, 2, argv_bad), ray::internal::RayException);
  EXPECT_FALSE(ray::IsInitialized());
  ray::Init();  // for TearDown
}

}  // namespace
