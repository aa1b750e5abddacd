// test_api.cpp - Ray's C++ API on librustyray (<ray/api.h>, ADR-007), with
// GoogleTest: init and shutdown, Put/Get/Wait, ObjectRef's counting, nested
// refs, and the exceptions. Pending and failed objects come from C tasks
// (the C++ tasks are a later slice of issue 14).
#include <msgpack.hpp>  // before <ray/api.h>: the two must mix in either order
#include <ray/api.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "rustyray/task.h"

namespace {

uint64_t Objects() {
  ray_stats_t s;
  EXPECT_EQ(ray_stats(&s), 0);
  return s.objects;
}

struct Point {
  int x = 0;
  std::string label;
  MSGPACK_DEFINE(x, label)
  bool operator==(const Point &o) const {
    return x == o.x && label == o.label;
  }
};

// A C task that returns 42 once the gate opens (bounded: 60 s), and one that fails.
std::atomic<bool> g_gate{false};
int GateFn(ray_task_ctx_t *ctx, void *) {
  for (int i = 0; i < 60000 && !g_gate.load(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return ray_return_i64(ctx, 0, 42);
}
int FailFn(ray_task_ctx_t *ctx, void *) {
  return ray_fail(ctx, RAY_EINVAL, "no such thing");
}

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    ray::RayConfig config;
    config.head_args = {"--num-cpus", "2"};
    ray::Init(config);
  }
  void TearDown() override {
    ray::Shutdown();
    EXPECT_FALSE(ray::IsInitialized());
  }
  ray::ObjectRef<int64_t> Submit(int (*fn)(ray_task_ctx_t *, void *), const char *name) {
    static const uint32_t types[] = {RAY_TYPE_I64};
    ray_function_t f;
    if (ray_function_lookup(name, &f) != 0) {
      EXPECT_EQ(ray_function_register(name, fn, nullptr, types, 1, &f), 0);
    }
    ray_ref_t r;
    EXPECT_EQ(ray_task_submit(f, nullptr, 0, nullptr, &r), 0);
    return ray::ObjectRef<int64_t>::Adopt(r);
  }
};

TEST(Lifecycle, InitIsIdempotentAndShutdownStops) {
  EXPECT_FALSE(ray::IsInitialized());
  ray::Init();
  EXPECT_TRUE(ray::IsInitialized());
  ray::Init();  // a no-op, as in Ray
  EXPECT_TRUE(ray::IsInitialized());
  ray::Shutdown();
  EXPECT_FALSE(ray::IsInitialized());
  ray::Shutdown();  // nothing to stop: no error
  EXPECT_THROW(ray::Put(1), ray::internal::RayException);
}

TEST(Lifecycle, ConfigSetsWorkersAndNamespace) {
  ray::RayConfig config;
  config.head_args = {"--num-cpus", "3"};
  config.ray_namespace = "ns1";
  config.address = "10.0.0.1:6379";  // no meaning in one process: ignored
  ray::Init(config);
  ray_stats_t s;
  ASSERT_EQ(ray_stats(&s), 0);
  EXPECT_EQ(s.num_workers, 3u);
  EXPECT_EQ(ray::GetNamespace(), "ns1");
  ray::Shutdown();
  config.head_args = {"--num-cpus", "zero"};
  EXPECT_THROW(ray::Init(config), ray::internal::RayException);
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_F(Api, PutGetValues) {
  EXPECT_EQ(*ray::Get(ray::Put(7)), 7);
  EXPECT_EQ(*ray::Put(std::string("hello")).Get(), "hello");
  std::vector<int> v{1, 2, 3};
  EXPECT_EQ(*ray::Get(ray::Put(v)), v);
  std::map<std::string, double> m{{"a", 1.5}, {"b", -2}};
  EXPECT_EQ(*ray::Get(ray::Put(m)), m);
  Point p{3, "three"};
  EXPECT_EQ(*ray::Get(ray::Put(p), 0), p);
  EXPECT_EQ(Objects(), 0u);  // every ref above is gone
}

TEST_F(Api, RefsAreCounted) {
  {
    auto a = ray::Put(1);
    EXPECT_EQ(Objects(), 1u);
    auto b = a;  // a copy holds its own reference
    ray::ObjectRef<int> c(std::move(a));
    EXPECT_TRUE(b == c);
    EXPECT_EQ(b.ID().size(), 8u);
    EXPECT_EQ(*c.Get(), 1);
    { auto d = b; }
    EXPECT_EQ(Objects(), 1u);
    ray::ObjectRef<int> e(b.ID());  // from its id: one more reference
    b = ray::ObjectRef<int>();
    c = ray::ObjectRef<int>();
    EXPECT_EQ(Objects(), 1u);
    EXPECT_EQ(*e.Get(), 1);
  }
  EXPECT_EQ(Objects(), 0u);
}

TEST_F(Api, NestedRefsKeepTheirObjects) {
  ray::ObjectRef<std::vector<ray::ObjectRef<int>>> outer;
  {
    auto inner = ray::Put(5);
    outer = ray::Put(std::vector<ray::ObjectRef<int>>{inner, inner});
  }
  EXPECT_EQ(Objects(), 2u);  // the outer object holds the inner one
  auto refs = ray::Get(outer);
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ(*(*refs)[1].Get(), 5);
  refs.reset();
  outer = ray::ObjectRef<std::vector<ray::ObjectRef<int>>>();
  EXPECT_EQ(Objects(), 0u);
}

TEST_F(Api, GetTimesOutThenSucceeds) {
  g_gate = false;
  auto r = Submit(GateFn, "gate");
  EXPECT_THROW(ray::Get(r, 10), ray::internal::RayTimeoutException);
  EXPECT_THROW(ray::Get(std::vector<ray::ObjectRef<int64_t>>{r}, 0),
               ray::internal::RayTimeoutException);
  auto w = ray::Wait(std::vector<ray::ObjectRef<int64_t>>{r}, 1, 0);
  EXPECT_EQ(w.ready.size(), 0u);
  EXPECT_EQ(w.unready.size(), 1u);
  g_gate = true;
  EXPECT_EQ(*ray::Get(r), 42);
}

TEST_F(Api, FailedTaskThrowsWithItsError) {
  auto r = Submit(FailFn, "fail");
  try {
    ray::Get(r);
    FAIL() << "no exception";
  } catch (const ray::internal::RayTaskException &e) {
    EXPECT_NE(std::string(e.what()).find("no such thing"), std::string::npos) << e.what();
  }
}

TEST_F(Api, GetOfTheWrongTypeOrNothing) {
  auto s = ray::Put(std::string("text"));
  auto as_int = ray::ObjectRef<int>::Borrow(s.Ref());
  EXPECT_THROW(as_int.Get(), ray::internal::RayException);
  EXPECT_THROW(ray::ObjectRef<int>().Get(), ray::internal::RayException);  // nil
}

TEST_F(Api, GetManyAndWait) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(1), ray::Put(2), ray::Put(3)};
  auto all = ray::Get(refs);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(*all[0] + *all[1] + *all[2], 6);
  auto w = ray::Wait(refs, 2, -1);
  EXPECT_EQ(w.ready.size(), 2u);
  EXPECT_EQ(w.unready.size(), 1u);
  EXPECT_EQ(*w.ready.front().Get(), 1);  // input order
  auto none = ray::Wait(refs, 0, 0);
  EXPECT_EQ(none.unready.size(), 3u);
  EXPECT_THROW(ray::Wait(refs, 4, 0), ray::internal::RayException);
  EXPECT_THROW(ray::Wait(refs, -1, 0), ray::internal::RayException);
}

TEST(AfterShutdown, RefsOutliveTheRuntime) {
  ray::Init();
  auto r = ray::Put(1);
  ray::Shutdown();
  EXPECT_THROW(r.Get(0), ray::internal::RayException);
  // r's destructor runs now, on no runtime: nothing to release, no crash.
}

}  // namespace
