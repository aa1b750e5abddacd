// test_placement.cpp - placement groups (ADR-007: bookkeeping on one node
// whose CPUs are the workers) with GoogleTest: creation, feasibility and
// pending groups, Wait, removal making room in creation order, lookups,
// validation, and tasks and actors given a group.
#include <ray/api.h>

#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace {

int Twice(int x) {
  return 2 * x;
}

class Box {
 public:
  static Box *Create() {
    return new Box();
  }
  int Put(int x) {
    v_ = x;
    return v_;
  }

 private:
  int v_ = 0;
};

}  // namespace

RAY_REMOTE(Twice, Box::Create, &Box::Put);

namespace {

using Bundles = std::vector<std::unordered_map<std::string, double>>;

class Placement : public ::testing::Test {
 protected:
  void SetUp() override {
    ray::RayConfig config;
    config.head_args = {"--num-cpus", "2"};
    ray::Init(config);
  }
  void TearDown() override {
    ray::Shutdown();
  }
};

TEST_F(Placement, CreatedPendingAndRemoved) {
  auto a = ray::CreatePlacementGroup(
      {"a", Bundles{{{"CPU", 1}}, {{"CPU", 1}}}, ray::PlacementStrategy::PACK});
  EXPECT_FALSE(a.Empty());
  EXPECT_EQ(a.GetState(), ray::PlacementGroupState::CREATED);
  EXPECT_TRUE(a.Wait(0));
  EXPECT_EQ(a.GetName(), "a");
  EXPECT_EQ(a.GetBundles().size(), 2u);
  EXPECT_EQ(a.GetStrategy(), ray::PlacementStrategy::PACK);
  // Both CPUs are held: the next group waits for them.
  auto b = ray::CreatePlacementGroup({"b", Bundles{{{"CPU", 1}}}, ray::PlacementStrategy::SPREAD});
  EXPECT_EQ(b.GetState(), ray::PlacementGroupState::PENDING);
  EXPECT_FALSE(b.Wait(0));
  auto c = ray::CreatePlacementGroup({"c", Bundles{{{"CPU", 2}}}, ray::PlacementStrategy::PACK});
  ray::RemovePlacementGroup(a.GetID());
  EXPECT_EQ(ray::GetPlacementGroupById(a.GetID()).GetState(), ray::PlacementGroupState::REMOVED);
  EXPECT_TRUE(b.Wait(1));  // created first: it came first
  EXPECT_FALSE(c.Wait(0));
  EXPECT_EQ(ray::GetPlacementGroup("c").GetState(), ray::PlacementGroupState::PENDING);
  ray::RemovePlacementGroup(b.GetID());
  EXPECT_TRUE(c.Wait(1));
  EXPECT_EQ(ray::GetAllPlacementGroups().size(), 3u);
}

TEST_F(Placement, InfeasibleGroupsStayPending) {
  auto big = ray::CreatePlacementGroup({"", Bundles{{{"CPU", 3}}}, ray::PlacementStrategy::PACK});
  auto gpu = ray::CreatePlacementGroup({"", Bundles{{{"GPU", 1}}}, ray::PlacementStrategy::PACK});
  auto spread = ray::CreatePlacementGroup(
      {"", Bundles{{{"CPU", 1}}, {{"CPU", 1}}}, ray::PlacementStrategy::STRICT_SPREAD});
  for (auto *g : {&big, &gpu, &spread}) {
    EXPECT_EQ(g->GetState(), ray::PlacementGroupState::PENDING);
    EXPECT_FALSE(g->Wait(0));
  }
}

TEST_F(Placement, Lookups) {
  auto g =
      ray::CreatePlacementGroup({"named", Bundles{{{"CPU", 1}}}, ray::PlacementStrategy::PACK});
  EXPECT_EQ(ray::GetPlacementGroup("named").GetID(), g.GetID());
  EXPECT_EQ(ray::GetPlacementGroupById(g.GetID()).GetName(), "named");
  EXPECT_TRUE(ray::GetPlacementGroup("nobody").Empty());
  EXPECT_TRUE(ray::GetPlacementGroupById("nothing").Empty());
  EXPECT_EQ(g.GetID().size(), 18u);  // Ray's id length
}

TEST_F(Placement, Validation) {
  using ray::PlacementStrategy;
  using E = ray::internal::RayException;
  EXPECT_THROW(ray::CreatePlacementGroup({"", Bundles{}, PlacementStrategy::PACK}), E);
  EXPECT_THROW(ray::CreatePlacementGroup({"", Bundles{{}}, PlacementStrategy::PACK}), E);
  EXPECT_THROW(ray::CreatePlacementGroup({"", Bundles{{{"CPU", -1}}}, PlacementStrategy::PACK}), E);
  EXPECT_THROW(ray::CreatePlacementGroup({"", Bundles{{{"CPU", 1.5}}}, PlacementStrategy::PACK}),
               E);
  EXPECT_THROW(ray::CreatePlacementGroup({"", Bundles{{{"", 1}}}, PlacementStrategy::PACK}), E);
  EXPECT_THROW(
      ray::CreatePlacementGroup({"", Bundles{{{"CPU", 1}}}, PlacementStrategy::UNRECOGNIZED}), E);
  ray::CreatePlacementGroup({"dup", Bundles{{{"CPU", 1}}}, PlacementStrategy::PACK});
  EXPECT_THROW(ray::CreatePlacementGroup({"dup", Bundles{{{"CPU", 1}}}, PlacementStrategy::PACK}),
               E);
  EXPECT_THROW(ray::RemovePlacementGroup("nothing"), E);
}

TEST_F(Placement, TasksAndActorsInAGroup) {
  auto g = ray::CreatePlacementGroup(
      {"g", Bundles{{{"CPU", 1}}, {{"CPU", 1}}}, ray::PlacementStrategy::PACK});
  ASSERT_TRUE(g.Wait(1));
  EXPECT_EQ(*ray::Task(Twice).SetPlacementGroup(g, 1).Remote(4).Get(), 8);
  EXPECT_EQ(*ray::Task(Twice).SetPlacementGroup(g, -1).Remote(5).Get(), 10);
  auto box = ray::Actor(Box::Create).SetPlacementGroup(g, 0).Remote();
  EXPECT_EQ(*box.Task(&Box::Put).Remote(3).Get(), 3);
  using E = ray::internal::RayException;
  EXPECT_THROW(ray::Task(Twice).SetPlacementGroup(g, 2).Remote(1), E);
  EXPECT_THROW(ray::Actor(Box::Create).SetPlacementGroup(g, -2).Remote(), E);
  // An empty group is no group (Ray's default).
  EXPECT_EQ(*ray::Task(Twice).SetPlacementGroup(ray::PlacementGroup(), 0).Remote(1).Get(), 2);
  ray::RemovePlacementGroup(g.GetID());
  EXPECT_THROW(ray::Task(Twice).SetPlacementGroup(g, 0).Remote(1), E);
}

TEST_F(Placement, ShutdownForgetsGroups) {
  ray::CreatePlacementGroup({"old", Bundles{{{"CPU", 1}}}, ray::PlacementStrategy::PACK});
  ray::Shutdown();
  ray::Init();
  EXPECT_TRUE(ray::GetPlacementGroup("old").Empty());
  EXPECT_TRUE(ray::GetAllPlacementGroups().empty());
}

}  // namespace
