// test_tasks.cpp - RAY_REMOTE and ray::Task (ADR-007) with GoogleTest:
// values and refs as arguments, chains, live ObjectRef parameters, void and
// throwing functions, overloads, resources' validation, and counting.
#include <ray/api.h>

#include <gtest/gtest.h>

#include "cpp_test_util.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Pair {
  int a = 0;
  std::string b;
  MSGPACK_DEFINE(a, b)
};

int Plus(int x, int y) {
  return x + y;
}
std::string Concat(const std::string &s, std::vector<std::string> parts) {
  std::string out = s;
  for (const auto &p : parts) out += p;
  return out;
}
Pair MakePair(int a, std::string b) {
  return Pair{a, std::move(b)};
}
int Deref(ray::ObjectRef<int> r) {
  return *r.Get() + 1;
}  // a live ref, read inside
void Nothing() {}
int Throws(int x) {
  throw std::runtime_error("bad input " + std::to_string(x));
}
int Over(int x) {
  return x;
}
int Over(int x, int y) {
  return x * y;
}
int NotRegistered(int x) {
  return x;
}

}  // namespace

RAY_REMOTE(Plus, Concat, MakePair, Deref, Nothing, Throws, RAY_FUNC(Over, int),
           RAY_FUNC(Over, int, int));

namespace {

uint64_t Objects() {
  return cpptest::Stats().objects;
}

// Whether the store empties. A task lets go of its arguments when it
// finishes, which may come just after its result was read: wait for that.
bool StoreEmpties() {
  return cpptest::Eventually([] { return Objects() == 0; });
}

class Tasks : public ::testing::Test {
 protected:
  void SetUp() override {
    ray::Init();
  }
  void TearDown() override {
    ray::Shutdown();
  }
};

TEST_F(Tasks, ValuesInAndOut) {
  EXPECT_EQ(*ray::Task(Plus).Remote(1, 2).Get(), 3);
  EXPECT_EQ(*ray::Task(Concat).Remote(std::string("a"), std::vector<std::string>{"b", "c"}).Get(),
            "abc");
  auto p = ray::Task(MakePair).Remote(7, std::string("seven")).Get();
  EXPECT_EQ(p->a, 7);
  EXPECT_EQ(p->b, "seven");
}

TEST_F(Tasks, RefsAsArgumentsAndChains) {
  auto five = ray::Put(5);
  EXPECT_EQ(*ray::Task(Plus).Remote(five, 1).Get(), 6);  // resolved for an int parameter
  auto r = ray::Task(Plus).Remote(ray::Task(Plus).Remote(1, 2), 10);
  EXPECT_EQ(*r.Get(), 13);
  EXPECT_EQ(*ray::Task(Deref).Remote(five).Get(), 6);  // a live ref for an ObjectRef<int>
}

TEST_F(Tasks, VoidAndThrowingFunctions) {
  ray::Task(Nothing).Remote().Get();
  try {
    ray::Task(Throws).SetName("custom_name").Remote(4).Get();
    FAIL() << "no exception";
  } catch (const ray::internal::RayTaskException &e) {
    std::string what = e.what();
    EXPECT_NE(what.find("std::runtime_error"), std::string::npos) << what;
    EXPECT_NE(what.find("bad input 4"), std::string::npos) << what;
    EXPECT_NE(what.find("custom_name"), std::string::npos) << what;
  }
  // A failed result passed on fails the next task too (its cause kept).
  auto dep = ray::Task(Plus).Remote(ray::Task(Throws).Remote(1), 1);
  EXPECT_THROW(dep.Get(), ray::internal::RayTaskException);
}

TEST_F(Tasks, OverloadsByRayFunc) {
  EXPECT_EQ(*ray::Task(RAY_FUNC(Over, int)).Remote(9).Get(), 9);
  EXPECT_EQ(*ray::Task(RAY_FUNC(Over, int, int)).Remote(3, 4).Get(), 12);
}

TEST_F(Tasks, UnregisteredFunctionsAndBadResources) {
  EXPECT_THROW(ray::Task(NotRegistered), ray::internal::RayException);
  EXPECT_THROW(ray::Task(Plus).SetResource("CPU", 0).Remote(1, 1), ray::internal::RayException);
  EXPECT_THROW(ray::Task(Plus).SetResource("", 1).Remote(1, 1), ray::internal::RayException);
  EXPECT_THROW(ray::Task(Plus).SetResources({{"GPU", 2.5}}).Remote(1, 1),
               ray::internal::RayException);
  EXPECT_EQ(*ray::Task(Plus).SetResources({{"CPU", 1}, {"custom", 0.5}}).Remote(1, 1).Get(), 2);
}

TEST_F(Tasks, NothingLeftWhenRefsGo) {
  {
    auto a = ray::Put(1);
    std::vector<ray::ObjectRef<int>> rs;
    for (int i = 0; i < 50; i++) rs.push_back(ray::Task(Plus).Remote(a, i));
    int sum = 0;
    for (auto &r : rs) sum += *r.Get();
    EXPECT_EQ(sum, 50 + 49 * 50 / 2);
  }
  EXPECT_TRUE(StoreEmpties());
}

}  // namespace
