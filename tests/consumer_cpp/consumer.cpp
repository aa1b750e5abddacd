// A C++ program built out of tree against an installed librustyray, once
// with find_package(rustyray CONFIG) and rustyray::cpp and once with
// pkg-config's rustyray-cpp: proves the C++ API's package files work.
// Checks header against library version, a put and get, remote functions
// (a chain of tasks, a ref argument) and an actor's ordered calls; exits 1 on
// any mismatch or exception.
#include <ray/api.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

int Plus(int x, int y) {
  return x + y;
}
std::string Greet(const std::string &name) {
  return "hello " + name;
}

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

 private:
  int value_;
};

bool Check(bool ok, const char *what) {
  if (!ok) std::fprintf(stderr, "consumer_cpp: %s: wrong\n", what);
  return ok;
}

}  // namespace

RAY_REMOTE(Plus, Greet, Counter::FactoryCreate, &Counter::Add);

int main() {
  if (ray_version_hex() != RAY_VERSION_HEX) {
    std::fprintf(stderr, "consumer_cpp: header %d.%d.%d, library %s\n", RAY_VERSION_MAJOR,
                 RAY_VERSION_MINOR, RAY_VERSION_PATCH, ray_version());
    return 1;
  }
  bool ok = true;
  try {
    ray::Init();
    {  // every ref and handle let go of before Shutdown
      auto v = ray::Get(ray::Put(std::vector<int>{1, 2, 3}));
      ok &= Check(*v == std::vector<int>{1, 2, 3}, "Put/Get");
      auto sum = ray::Task(Plus).Remote(ray::Task(Plus).Remote(1, 2), 10);
      ok &= Check(*ray::Get(sum) == 13, "a chain of tasks");
      ok &= Check(*ray::Task(Greet).Remote(std::string("ray")).Get() == "hello ray", "a string");
      ray::ActorHandle<Counter> c = ray::Actor(Counter::FactoryCreate).Remote(10);
      std::vector<ray::ObjectRef<int>> rs;
      for (int i = 1; i <= 10; i++) rs.push_back(c.Task(&Counter::Add).Remote(i));
      for (int i = 1; i <= 10; i++)
        ok &= Check(*ray::Get(rs[i - 1]) == 10 + i * (i + 1) / 2, "an actor's calls in order");
      ok &= Check(*c.Task(&Counter::Add).Remote(ray::Put(100)).Get() == 165, "a ref argument");
    }
    ray::Shutdown();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
    return 1;
  }
  if (!ok) return 1;
  std::printf("consumer_cpp: librustyray %s's C++ API works (1 + 2 + 10 == 13)\n", ray_version());
  return 0;
}
