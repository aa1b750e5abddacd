// cluster_actors.cpp - C++ actors on other ranks (cluster mode, ADR-007),
// run under mpirun with RAY_CLUSTER=mpi (ctest cluster_cpp_actors_*): the
// ranks other than 0 serve inside ray::Init. ray::Init makes every C++
// actor class a static descriptor of the C core, so actors spread over
// the ranks (RAY_NODE_ANY, round-robin); a handle passed to an actor on
// another rank (as an argument, then kept in its state) calls the actor it
// names there, and keeps it alive after its maker let go. Exits non-zero
// on a mismatch.
#include <ray/api.h>

#include <cstdio>
#include <set>
#include <vector>

namespace {

class Where {
 public:
  static Where *Create() {
    return new Where();
  }
  int Rank() {
    return ray_rank();
  }
  int Add(int x) {
    v_ += x;
    return v_;
  }
  // A handle from another rank: called through from here, then kept.
  int Poke(ray::ActorHandle<Where> other, int x) {
    kept_ = other;
    return *other.Task(&Where::Add).Remote(x).Get();
  }
  int PokeKept(int x) {
    return *kept_.Task(&Where::Add).Remote(x).Get();
  }
  int Forget() {
    kept_ = ray::ActorHandle<Where>();
    return 0;
  }

 private:
  int v_ = 0;
  ray::ActorHandle<Where> kept_;
};
RAY_REMOTE(Where::Create, &Where::Rank, &Where::Add, &Where::Poke, &Where::PokeKept,
           &Where::Forget);

int failures = 0;

void Check(const char *what, long got, long want) {
  if (got != want) {
    std::fprintf(stderr, "cluster_actors: %s is %ld, expected %ld\n", what, got, want);
    failures++;
  }
}

}  // namespace

int main() {
  ray::Init();
  int n = ray_num_ranks();
  std::vector<ray::ActorHandle<Where>> actors;
  std::set<int> homes;
  for (int i = 0; i < 2 * n; i++) {
    actors.push_back(ray::Actor(Where::Create).Remote());
    homes.insert(*actors.back().Task(&Where::Rank).Remote().Get());
  }
  Check("ranks with a C++ actor", static_cast<long>(homes.size()), n);
  // The first actor (rank 0) passed to the last (rank n - 1), which calls
  // it and keeps the handle; our handle goes, the kept one still works.
  ray::ActorHandle<Where> a = actors.front(), b = actors.back();
  actors.clear();
  Check("a called through b", *b.Task(&Where::Poke).Remote(a, 5).Get(), 5);
  a = ray::ActorHandle<Where>();  // only b's state holds it now
  Check("a called through b's kept handle", *b.Task(&Where::PokeKept).Remote(7).Get(), 12);
  Check("b forgets a", *b.Task(&Where::Forget).Remote().Get(), 0);
  ray::Shutdown();
  if (failures == 0) std::printf("cluster_actors: %d ranks, all checks passed\n", n);
  return failures == 0 ? 0 : 1;
}
