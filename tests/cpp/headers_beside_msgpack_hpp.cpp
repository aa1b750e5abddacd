// headers_beside_msgpack_hpp.cpp - the C API's headers (all but
// rustyray/msgpack.h) and <ray/api.h> compile in one C++ translation unit
// with msgpack-c++'s <msgpack.hpp>, included before and after them, under
// -Wall -Wextra -Wpedantic -Werror (ADR-007); and a value packed with
// msgpack-c++ goes through the store unchanged. ctest also compiles it
// with clang++ (C++17 and C++20).
#include <msgpack.hpp>
#include "rustyray/runtime.h"
#include "rustyray/object.h"
#include "rustyray/task.h"
#include "rustyray/actor.h"
#include <ray/api.h>
#include <msgpack.hpp>
int main() {
  msgpack::sbuffer sb;
  msgpack::pack(sb, std::vector<int>{1, 2, 3});
  ray_ref_t r;
  if (ray_init(nullptr) != 0) return 2;
  if (ray_put_typed(sb.data(), sb.size(), RAY_TYPE_MSGPACK, &r) != 0) return 3;
  ray_buf_t b;
  if (ray_get(r, 0, &b) != 0) return 4;
  msgpack::object_handle oh = msgpack::unpack((const char *)b.data, b.size);
  bool ok = oh.get().as<std::vector<int>>().size() == 3;
  ray_buf_release(&b);
  ray_ref_release(r);
  ray_shutdown();
  return ok ? 0 : 1;
}
