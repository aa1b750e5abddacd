// cpp_test_util.h - helpers of the C++ API's GoogleTest suites.
#ifndef RAY_TESTS_CPP_TEST_UTIL_H
#define RAY_TESTS_CPP_TEST_UTIL_H

#include <gtest/gtest.h>
#include <rustyray/runtime.h>

#include <chrono>
#include <thread>

namespace cpptest {

inline ray_stats_t Stats() {
  ray_stats_t s{};
  EXPECT_EQ(ray_stats(&s), 0);
  return s;
}

// Whether `done` comes true within 60 s, asking every millisecond: for what
// the library does just after a result is read (a task lets go of its
// arguments when it finishes; an actor is freed once its last holder goes
// and its calls have run). Bounded, and never an assertion on timing.
template <typename Pred>
bool Eventually(Pred done) {
  for (int i = 0; i < 60000; i++) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace cpptest

#endif  // RAY_TESTS_CPP_TEST_UTIL_H
