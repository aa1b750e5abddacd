// test_actors.cpp - ray::Actor and ActorHandle (ADR-007) with GoogleTest:
// creation through a RAY_REMOTE factory, calls in order, a throwing method,
// kill with and without restart, named actors in namespaces, calls running
// at once with SetMaxConcurrency.
#include <ray/api.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

class Counter {
 public:
  explicit Counter(int start) : value_(start) {}
  static Counter *FactoryCreate(int start) {
    return new Counter(start);
  }
  int Add(int x) {
    value_ += x;
    return value_;
  }
  int Get() const {
    return value_;
  }
  std::string Fail(std::string why) {
    throw std::invalid_argument(why);
  }

 private:
  int value_;
};

// Two calls that each wait for the other: both return true only if they
// run at once (SetMaxConcurrency); the wait is bounded so a failure cannot
// hang.
class Meeting {
 public:
  static Meeting *Create() {
    return new Meeting();
  }
  bool Meet() {
    std::unique_lock<std::mutex> lk(mu_);
    arrived_++;
    cv_.notify_all();
    return cv_.wait_for(lk, std::chrono::seconds(60), [this] { return arrived_ >= 2; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
};

class Unregistered {
 public:
  static Unregistered *Create() {
    return new Unregistered();
  }
  int F() {
    return 1;
  }
};

}  // namespace

RAY_REMOTE(Counter::FactoryCreate, &Counter::Add, &Counter::Get, &Counter::Fail, Meeting::Create,
           &Meeting::Meet);

namespace {

class Actors : public ::testing::Test {
 protected:
  void SetUp() override {
    ray::RayConfig config;
    config.ray_namespace = "space";
    ray::Init(config);
  }
  void TearDown() override {
    ray::Shutdown();
  }
};

TEST_F(Actors, CallsRunInOrder) {
  ray::ActorHandle<Counter> c = ray::Actor(Counter::FactoryCreate).Remote(10);
  std::vector<ray::ObjectRef<int>> rs;
  for (int i = 1; i <= 100; i++) rs.push_back(c.Task(&Counter::Add).Remote(i));
  for (int i = 1; i <= 100; i++) EXPECT_EQ(*rs[i - 1].Get(), 10 + i * (i + 1) / 2);
  EXPECT_EQ(*c.Task(&Counter::Get).Remote().Get(), 10 + 5050);
  auto copy = c;  // a second handle on the same actor
  EXPECT_EQ(copy.ID(), c.ID());
  EXPECT_EQ(*copy.Task(&Counter::Add).Remote(ray::Put(1)).Get(), 10 + 5051);  // a ref argument
}

TEST_F(Actors, AThrowingMethodFailsItsResultOnly) {
  auto c = ray::Actor(Counter::FactoryCreate).Remote(1);
  try {
    c.Task(&Counter::Fail).Remote(std::string("nope")).Get();
    FAIL() << "no exception";
  } catch (const ray::internal::RayTaskException &e) {
    std::string what = e.what();
    EXPECT_NE(what.find("std::invalid_argument"), std::string::npos) << what;
    EXPECT_NE(what.find("nope"), std::string::npos) << what;
  }
  EXPECT_EQ(*c.Task(&Counter::Get).Remote().Get(), 1);  // still alive
}

TEST_F(Actors, KillAndRestart) {
  auto dead = ray::Actor(Counter::FactoryCreate).Remote(5);
  EXPECT_EQ(*dead.Task(&Counter::Add).Remote(1).Get(), 6);
  dead.Kill();
  EXPECT_THROW(dead.Task(&Counter::Get).Remote().Get(), ray::internal::RayActorException);

  auto phoenix = ray::Actor(Counter::FactoryCreate).SetMaxRestarts(1).Remote(5);
  EXPECT_EQ(*phoenix.Task(&Counter::Add).Remote(1).Get(), 6);
  phoenix.Kill(false);  // restarts: a fresh object from the factory
  EXPECT_EQ(*phoenix.Task(&Counter::Get).Remote().Get(), 5);
  phoenix.Kill(false);  // no restarts left
  EXPECT_THROW(phoenix.Task(&Counter::Get).Remote().Get(), ray::internal::RayActorException);
}

TEST_F(Actors, NamedActorsInNamespaces) {
  auto a = ray::Actor(Counter::FactoryCreate).SetName("main").Remote(7);
  auto b = ray::Actor(Counter::FactoryCreate).SetName("main", "other").Remote(8);
  auto found = ray::GetActor<Counter>("main");  // the current namespace: "space"
  ASSERT_TRUE(found);
  EXPECT_EQ(*found->Task(&Counter::Get).Remote().Get(), 7);
  auto other = ray::GetActor<Counter>("main", "other");
  ASSERT_TRUE(other);
  EXPECT_EQ(*other->Task(&Counter::Get).Remote().Get(), 8);
  EXPECT_FALSE(ray::GetActor<Counter>("backup"));
  EXPECT_THROW(ray::Actor(Counter::FactoryCreate).SetName("main").Remote(1),
               ray::internal::RayException);
}

TEST(ActorsConcurrency, MaxConcurrencyRunsCallsAtOnce) {
  ray::RayConfig config;
  config.head_args = {"--num-cpus", "2"};
  ray::Init(config);
  auto m = ray::Actor(Meeting::Create).SetMaxConcurrency(2).Remote();
  auto a = m.Task(&Meeting::Meet).Remote();
  auto b = m.Task(&Meeting::Meet).Remote();
  EXPECT_TRUE(*a.Get());
  EXPECT_TRUE(*b.Get());
  ray::Shutdown();
}

TEST_F(Actors, UnregisteredClassesAndMethods) {
  EXPECT_THROW(ray::Actor(Unregistered::Create).Remote(), ray::internal::RayException);
  EXPECT_THROW(ray::Actor(Counter::FactoryCreate).SetMaxConcurrency(0),
               ray::internal::RayException);
  auto c = ray::Actor(Counter::FactoryCreate).SetMaxConcurrency(2).Remote(0);
  EXPECT_EQ(*c.Task(&Counter::Add).Remote(2).Get(), 2);
  // A call's options: kept; resources validated as a task's.
  EXPECT_EQ(*c.Task(&Counter::Add).SetName("add").SetResource("CPU", 1).Remote(1).Get(), 3);
  EXPECT_THROW(c.Task(&Counter::Add).SetResources({{"CPU", 1.5}}).Remote(1),
               ray::internal::RayException);
}

}  // namespace
