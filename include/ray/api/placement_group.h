// ray/api/placement_group.h - placement groups (ADR-007): Ray's types and
// calls, as bookkeeping. One process has one node whose resources are its
// workers ({"CPU": worker count}); a group is validated as Ray validates it,
// reserves its bundles' CPUs from that node, and is CREATED when they fit
// beside the groups created before it, else PENDING (as an infeasible group
// stays in Ray) until removing others makes room, in creation order. Tasks
// and actors given a group check it and run on the shared pool as any other.
#ifndef RAY_API_PLACEMENT_GROUP_H
#define RAY_API_PLACEMENT_GROUP_H

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "object_ref.h"
#include "ray_exception.h"
#include "rustyray/runtime.h"

namespace ray {

enum class PlacementStrategy {
  PACK = 0,
  SPREAD = 1,
  STRICT_PACK = 2,
  STRICT_SPREAD = 3,
  UNRECOGNIZED = -1
};

enum PlacementGroupState {
  PENDING = 0,
  PREPARED = 1,
  CREATED = 2,
  REMOVED = 3,
  RESCHEDULING = 4,
  UNRECOGNIZED = -1
};

struct PlacementGroupCreationOptions {
  std::string name;
  std::vector<std::unordered_map<std::string, double>> bundles;
  PlacementStrategy strategy;
};

class PlacementGroup {
 public:
  PlacementGroup() = default;
  PlacementGroup(std::string id, PlacementGroupCreationOptions options,
                 PlacementGroupState state = PlacementGroupState::UNRECOGNIZED)
      : id_(std::move(id)), options_(std::move(options)), state_(state) {}
  std::string GetID() const {
    return id_;
  }
  std::string GetName() {
    return options_.name;
  }
  std::vector<std::unordered_map<std::string, double>> GetBundles() {
    return options_.bundles;
  }
  // The state when this object was made (GetPlacementGroupById for now).
  ray::PlacementGroupState GetState() {
    return state_;
  }
  PlacementStrategy GetStrategy() {
    return options_.strategy;
  }
  // Whether the group is created, waiting up to timeout_seconds for it.
  bool Wait(int timeout_seconds) {
    return callback_(id_, timeout_seconds);
  }
  void SetWaitCallbak(std::function<bool(const std::string &, int)> callback) {
    callback_ = std::move(callback);
  }
  bool Empty() const {
    return id_.empty();
  }

 private:
  std::string id_;
  PlacementGroupCreationOptions options_;
  PlacementGroupState state_ = PlacementGroupState::UNRECOGNIZED;
  std::function<bool(const std::string &, int)> callback_;
};

namespace internal {

// Ray's check of a resource request: names not empty, amounts positive,
// and whole numbers above 1.
inline void CheckResources(const std::unordered_map<std::string, double> &resources) {
  for (const auto &r : resources) {
    if (r.first.empty()) throw RayException("Resource name should not be empty.");
    if (r.second <= 0)
      throw RayException("Resource values should be positive. Specified resource: " + r.first);
    if (r.second > 1 && r.second != static_cast<double>(static_cast<long long>(r.second)))
      throw RayException("Resource quantities >1 must be whole numbers. Specified resource: " +
                         r.first);
  }
}

// The node's CPUs: the worker count the runtime started with (ray::Init
// records it; a runtime started through the C API is asked).
inline unsigned &NodeCpus() {
  static unsigned cpus = 0;
  return cpus;
}
inline double TotalCpus() {
  if (NodeCpus() != 0) return NodeCpus();
  ray_stats_t st;
  return ray_stats(&st) == 0 ? static_cast<double>(st.num_workers) : 0;
}

// Every group of the process, by id, and the CPUs the created ones hold.
class PlacementGroups {
 public:
  static PlacementGroups &Instance() {
    static PlacementGroups g;
    return g;
  }
  PlacementGroup Create(const PlacementGroupCreationOptions &o) {
    Validate(o);
    std::lock_guard<std::mutex> lk(mu_);
    if (!o.name.empty())
      for (const auto &g : order_)
        if (groups_[g].options.name == o.name && groups_[g].state != REMOVED)
          throw RayException("Placement group named " + o.name + " already exists");
    std::string id = IdBytes(++next_);
    id.insert(0, 10, '\0');  // Ray's ids are 18 bytes
    Group &g = groups_[id];
    g.options = o;
    for (const auto &b : o.bundles) {
      auto it = b.find("CPU");
      if (it != b.end()) g.cpus += it->second;
    }
    order_.push_back(id);
    Settle();
    return Make(id, g);
  }
  void Remove(const std::string &id) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = groups_.find(id);
    if (it == groups_.end()) throw RayException("RemovePlacementGroup: no placement group");
    if (it->second.state == CREATED) used_ -= it->second.cpus;
    it->second.state = REMOVED;
    Settle();
  }
  PlacementGroup ById(const std::string &id) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = groups_.find(id);
    return it == groups_.end() ? PlacementGroup() : Make(id, it->second);
  }
  PlacementGroup ByName(const std::string &name) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto &id : order_)
      if (groups_[id].options.name == name && groups_[id].state != REMOVED)
        return Make(id, groups_[id]);
    return PlacementGroup();
  }
  std::vector<PlacementGroup> All() {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<PlacementGroup> out;
    for (const auto &id : order_) out.push_back(Make(id, groups_[id]));
    return out;
  }
  // Whether group `id` is created, waiting up to timeout_seconds.
  bool WaitCreated(const std::string &id, int timeout_seconds) {
    std::unique_lock<std::mutex> lk(mu_);
    auto created = [&] {
      auto it = groups_.find(id);
      return it == groups_.end() || it->second.state != PENDING;
    };
    cv_.wait_for(lk, std::chrono::seconds(timeout_seconds < 0 ? 0 : timeout_seconds), created);
    auto it = groups_.find(id);
    return it != groups_.end() && it->second.state == CREATED;
  }
  // A task's or an actor's group and bundle: known, not removed, the
  // bundle in range (-1: any).
  void Check(const PlacementGroup &group, int bundle_index) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = groups_.find(group.GetID());
    if (it == groups_.end() || it->second.state == REMOVED)
      throw RayException("The placement group does not exist or was removed");
    if (bundle_index < -1 || bundle_index >= static_cast<int>(it->second.options.bundles.size()))
      throw RayException("The bundle index " + std::to_string(bundle_index) +
                         " is out of the placement group's range");
  }
  // ray::Shutdown: a new runtime starts with no groups.
  void Clear() {
    std::lock_guard<std::mutex> lk(mu_);
    groups_.clear();
    order_.clear();
    used_ = 0;
    cv_.notify_all();
  }

 private:
  struct Group {
    PlacementGroupCreationOptions options;
    PlacementGroupState state = PENDING;
    double cpus = 0;
  };
  // As Ray: bundles given, none empty, quantities >= 0 and whole above 1;
  // one node has no CPU or GPU beyond its workers (a group needing more,
  // another resource, or STRICT_SPREAD over several bundles can never be
  // placed: it stays PENDING, as in Ray).
  static void Validate(const PlacementGroupCreationOptions &o) {
    if (o.bundles.empty()) throw RayException("Bundles cannot be empty");
    if (o.strategy == PlacementStrategy::UNRECOGNIZED)
      throw RayException("The placement strategy is not recognized");
    for (const auto &b : o.bundles) {
      if (b.empty()) throw RayException("Bundles cannot be an empty map");
      CheckResources(b);
    }
  }
  bool Feasible(const Group &g) const {
    if (g.options.strategy == PlacementStrategy::STRICT_SPREAD && g.options.bundles.size() > 1)
      return false;  // one node
    for (const auto &b : g.options.bundles)
      for (const auto &r : b)
        if (r.first != "CPU" && r.second > 0) return false;
    return used_ + g.cpus <= TotalCpus();
  }
  // Create the pending groups that fit, in creation order (mu_ held).
  void Settle() {
    for (const auto &id : order_) {
      Group &g = groups_[id];
      if (g.state == PENDING && Feasible(g)) {
        g.state = CREATED;
        used_ += g.cpus;
      }
    }
    cv_.notify_all();
  }
  static PlacementGroup Make(const std::string &id, const Group &g) {
    PlacementGroup pg(id, g.options, g.state);
    pg.SetWaitCallbak([](const std::string &gid, int timeout_seconds) {
      return Instance().WaitCreated(gid, timeout_seconds);
    });
    return pg;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Group> groups_;
  std::vector<std::string> order_;
  double used_ = 0;
  uint64_t next_ = 0;
};

// SetPlacementGroup of a task or an actor: checked at Remote, kept.
template <typename Self>
class PlacementOptions {
 public:
  Self &SetPlacementGroup(PlacementGroup group, int bundle_index) {
    group_ = std::move(group);
    bundle_index_ = bundle_index;
    return static_cast<Self &>(*this);
  }

 protected:
  void CheckPlacement() {
    if (!group_.Empty()) PlacementGroups::Instance().Check(group_, bundle_index_);
  }
  PlacementGroup group_;
  int bundle_index_ = -1;
};

}  // namespace internal

// A group of bundles of resources (validated; see the top of this file).
// Throws RayException for invalid options or a name in use.
inline PlacementGroup CreatePlacementGroup(
    const ray::PlacementGroupCreationOptions &create_options) {
  return internal::PlacementGroups::Instance().Create(create_options);
}
// Remove a group: its CPUs go to the pending groups that now fit.
inline void RemovePlacementGroup(const std::string &placement_group_id) {
  internal::PlacementGroups::Instance().Remove(placement_group_id);
}
inline std::vector<PlacementGroup> GetAllPlacementGroups() {
  return internal::PlacementGroups::Instance().All();
}
// The group, or an Empty() one.
inline PlacementGroup GetPlacementGroupById(const std::string &id) {
  return internal::PlacementGroups::Instance().ById(id);
}
inline PlacementGroup GetPlacementGroup(const std::string &name) {
  return internal::PlacementGroups::Instance().ByName(name);
}

}  // namespace ray

#endif  // RAY_API_PLACEMENT_GROUP_H
