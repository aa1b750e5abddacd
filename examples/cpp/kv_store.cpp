// kv_store.cpp - a key-value store served by named actors, that survives
// the restart of its server: the shape of Ray's C++ simple_kv_store example
// (cpp/src/ray/test/examples in ray-project/ray), on librustyray.
//
// Two actors, each found by name:
//   "backup"  BackupServer: a copy of every pair (BackupData, GetAllData);
//   "main"    MainServer: serves Put and Get; a Put is written to the backup
//             first (and waited for), then kept. Its factory looks the backup
//             up with ray::GetActor<BackupServer>("backup") and, when
//             ray::WasCurrentActorRestarted(), loads everything the backup
//             holds, so a restarted main comes back with the data its
//             previous life had.
// The program shows:
//   1. named actors created with ray::Actor(...).SetName(...), main with
//      SetMaxRestarts(1), and found again with ray::GetActor<T>(name);
//   2. writes and reads through main, and the same pairs in the backup;
//   3. handle.Kill(false): main restarts (its factory runs again) and
//      recovers its state from the backup; calls made right after the kill
//      wait for the new life, so the reads after it need no retry;
//   4. handle.Kill(): main is gone for good, its calls fail with
//      RayActorException and its name is free: a new "main" takes it, not
//      restarted, so it starts empty, while the backup keeps every pair.
// Calls of one actor run one at a time in submission order, and the
// factory's own calls to the backup queue on the backup like any others, so
// every result is exact. It checks each one and exits non-zero on a
// mismatch, so it doubles as a test (example_cpp_kv_store).
//
// Ray's version also uses RAYLOG, and a placement group spreading the two
// actors over two nodes; one process has no nodes to spread them over.
#include <ray/api.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

namespace {

const char *const kMainServer = "main";
const char *const kBackupServer = "backup";

using Data = std::unordered_map<std::string, std::string>;

// {found, value}, as Ray's example returns it.
std::pair<bool, std::string> Lookup(const Data &data, const std::string &key) {
  auto it = data.find(key);
  if (it == data.end()) return {false, ""};
  return {true, it->second};
}

class BackupServer {
 public:
  static BackupServer *Create() {
    return new BackupServer();
  }
  // Main writes here before it keeps a pair itself.
  void BackupData(const std::string &key, const std::string &val) {
    data_[key] = val;
  }
  // Main loads this when it starts.
  Data GetAllData() {
    return data_;
  }

 private:
  Data data_;
};

class MainServer {
 public:
  // Runs at creation and again at each restart: find the backup by name
  // and, in a restarted life, load what it has (a factory may call other
  // actors and wait for them).
  static MainServer *Create() {
    auto backup = ray::GetActor<BackupServer>(kBackupServer);
    if (!backup) throw std::runtime_error("no actor named backup");
    std::unique_ptr<MainServer> server(new MainServer(*backup));
    if (ray::WasCurrentActorRestarted()) {
      server->data_ = *backup->Task(&BackupServer::GetAllData).Remote().Get();
      server->recovered_ = static_cast<int>(server->data_.size());
    }
    return server.release();
  }
  void Put(const std::string &key, const std::string &val) {
    // Backed up first: once Put returns, a restart cannot lose the pair.
    backup_.Task(&BackupServer::BackupData).Remote(key, val).Get();
    data_[key] = val;
  }
  std::pair<bool, std::string> Get(const std::string &key) {
    return Lookup(data_, key);
  }
  // How many pairs this life of the actor loaded from the backup.
  int Recovered() {
    return recovered_;
  }

 private:
  explicit MainServer(ray::ActorHandle<BackupServer> backup) : backup_(std::move(backup)) {}
  ray::ActorHandle<BackupServer> backup_;
  Data data_;
  int recovered_ = 0;
};

int failures = 0;

void Expect(bool ok, const std::string &what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) failures++;
}

// Read `key` through main and check it (want empty: the key is absent).
void ExpectValue(ray::ActorHandle<MainServer> &main_server, const std::string &key,
                 const std::string &want) {
  auto got = *main_server.Task(&MainServer::Get).Remote(key).Get();
  bool ok = want.empty() ? !got.first : got.first && got.second == want;
  Expect(ok, "Get(\"" + key + "\") = " + (got.first ? "\"" + got.second + "\"" : "absent"));
}

void ExpectRecovered(ray::ActorHandle<MainServer> &main_server, int want) {
  int got = *main_server.Task(&MainServer::Recovered).Remote().Get();
  Expect(got == want, "main loaded " + std::to_string(got) + " pairs from the backup");
}

void StartServers() {
  // The backup first: main's factory looks it up by name. Named actors stay
  // after their creator's handle goes, until killed or ray::Shutdown.
  ray::Actor(BackupServer::Create).SetName(kBackupServer).Remote();
  ray::Actor(MainServer::Create).SetName(kMainServer).SetMaxRestarts(1).Remote();
}

void Run() {
  StartServers();

  // 1. A client finds the server by name, as Ray's Client does.
  auto found = ray::GetActor<MainServer>(kMainServer);
  Expect(static_cast<bool>(found), "ray::GetActor<MainServer>(\"main\") finds the server");
  if (!found) return;
  ray::ActorHandle<MainServer> main_server = *found;
  ExpectRecovered(main_server, 0);  // a first life loads nothing

  // 2. Writes go to main, which backs each up before keeping it.
  main_server.Task(&MainServer::Put).Remote(std::string("hello"), std::string("ray")).Get();
  main_server.Task(&MainServer::Put).Remote(std::string("answer"), std::string("42")).Get();
  main_server.Task(&MainServer::Put).Remote(std::string("hello"), std::string("world")).Get();
  ExpectValue(main_server, "hello", "world");
  ExpectValue(main_server, "answer", "42");
  ExpectValue(main_server, "missing", "");
  auto backup = ray::GetActor<BackupServer>(kBackupServer);
  Expect(static_cast<bool>(backup), "ray::GetActor<BackupServer>(\"backup\") finds the backup");
  if (!backup) return;
  Data copy = *backup->Task(&BackupServer::GetAllData).Remote().Get();
  Expect(copy.size() == 2 && copy["hello"] == "world" && copy["answer"] == "42",
         "the backup holds both pairs");

  // 3. Kill main, letting it restart: the next calls queue behind the new
  // life, whose factory reloads the pairs from the backup.
  main_server.Kill(false);
  ExpectValue(main_server, "hello", "world");
  ExpectValue(main_server, "answer", "42");
  ExpectRecovered(main_server, 2);
  main_server.Task(&MainServer::Put).Remote(std::string("after"), std::string("restart")).Get();
  ExpectValue(main_server, "after", "restart");
  auto again = ray::GetActor<MainServer>(kMainServer);
  Expect(again && again->ID() == main_server.ID(), "after the restart, \"main\" is the same actor");

  // 4. Kill it for good: its calls fail and its name is free again.
  main_server.Kill();
  try {
    main_server.Task(&MainServer::Get).Remote(std::string("hello")).Get();
    Expect(false, "a call to the killed main fails");
  } catch (const ray::internal::RayActorException &) {
    Expect(true, std::string("a call to the killed main fails: RayActorException"));
  }
  Expect(!ray::GetActor<MainServer>(kMainServer), "the name \"main\" is free");

  // A new main takes the name: a first life, so it starts empty; the
  // backup still has all three pairs.
  ray::Actor(MainServer::Create).SetName(kMainServer).SetMaxRestarts(1).Remote();
  auto fresh = ray::GetActor<MainServer>(kMainServer);
  Expect(fresh && fresh->ID() != main_server.ID(), "a new actor is named main");
  if (!fresh) return;
  ExpectRecovered(*fresh, 0);
  ExpectValue(*fresh, "hello", "");
  Data all = *backup->Task(&BackupServer::GetAllData).Remote().Get();
  Expect(all.size() == 3 && all["after"] == "restart", "the backup holds all three pairs");
}

}  // namespace

RAY_REMOTE(BackupServer::Create, &BackupServer::BackupData, &BackupServer::GetAllData);
RAY_REMOTE(MainServer::Create, &MainServer::Put, &MainServer::Get, &MainServer::Recovered);

int main() {
  try {
    ray::Init();
    Run();
    ray::Shutdown();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "kv_store: %s\n", e.what());
    return 1;
  }
  if (failures != 0) {
    std::fprintf(stderr, "kv_store: %d checks failed\n", failures);
    return 1;
  }
  std::printf("kv_store: all checks passed\n");
  return 0;
}
