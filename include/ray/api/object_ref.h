// ray/api/object_ref.h - ObjectRef<T> (ADR-007): a counted handle on an
// object of the core. Copying retains, destroying releases (after
// ray::Shutdown, nothing), moving hands the reference over. Packed inside a
// value it is the core's ref extension (RAY_MSGPACK_EXT_REF), so the object
// holding the value keeps the referenced one alive (nested refs).
#ifndef RAY_API_OBJECT_REF_H
#define RAY_API_OBJECT_REF_H

#include <cstdint>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <typeinfo>
#include <utility>

#include "ray_exception.h"
#include "rustyray/object.h"

namespace ray {

template <typename T>
class ObjectRef;

namespace internal {

// Big-endian integers, as the core's ref and actor extensions hold them.
inline void PutBE(char *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
inline uint64_t GetBE(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// msgpack-c++'s zones and buffers start at 8 KiB, beyond malloc's fast
// sizes; the values of most calls are a few bytes, so ours start small and
// grow as msgpack-c++ needs.
constexpr size_t kSmallBuffer = 256;
inline size_t ZoneSize(size_t encoded) {
  return encoded < 1024 ? 256 : 8192;
}

// A ref's id as Ray's ID() gives one: opaque binary bytes (here 8, big-endian).
inline std::string IdBytes(uint64_t id) {
  std::string s(8, '\0');
  PutBE(&s[0], id, 8);
  return s;
}

// The payload of a ready object as T (a fresh copy), its view released.
template <typename T>
std::shared_ptr<T> Decode(ray_buf_t *b) {
  struct Held {
    ray_buf_t *b;
    ~Held() {
      ray_buf_release(b);
    }
  } held{b};
  try {
    msgpack::zone zone(ZoneSize(b->size));
    msgpack::object o = msgpack::unpack(zone, static_cast<const char *>(b->data), b->size);
    return std::make_shared<T>(o.as<T>());
  } catch (const std::exception &e) {
    throw RayException(std::string("Get: the object is not a ") + typeid(T).name() + ": " +
                       e.what());
  }
}

// Wait for `ref` (timeout_ms < 0: forever) and pin it, or throw.
inline void Fetch(ray_ref_t ref, int timeout_ms, ray_buf_t *out) {
  int rc = ray_get(ref, timeout_ms < 0 ? RAY_TIMEOUT_INFINITE : timeout_ms, out);
  if (rc != 0) ThrowFor(rc, "Get", ref);
}

// The reference a handle holds, shared by ObjectRef<T> and ObjectRef<void>.
class RefHolder {
 public:
  RefHolder() = default;
  // Take over `ref`'s reference (adopt) or take one of our own (retain).
  RefHolder(ray_ref_t ref, bool adopt) : ref_(ref) {
    if (!adopt && ref_.id != 0 && ray_ref_retain(ref_) != 0) ref_ = RAY_REF_NIL;
  }
  RefHolder(const RefHolder &o) : RefHolder(o.ref_, false) {}
  RefHolder(RefHolder &&o) noexcept : ref_(o.ref_) {
    o.ref_ = RAY_REF_NIL;
  }
  RefHolder &operator=(const RefHolder &o) {
    if (this != &o) {
      RefHolder copy(o);
      std::swap(ref_, copy.ref_);
    }
    return *this;
  }
  RefHolder &operator=(RefHolder &&o) noexcept {
    std::swap(ref_, o.ref_);
    return *this;
  }
  ~RefHolder() {
    if (ref_.id != 0) (void)ray_ref_release(ref_);  // RAY_ENOTINIT after Shutdown: nothing held
  }
  ray_ref_t Ref() const {
    return ref_;
  }

 private:
  ray_ref_t ref_ = RAY_REF_NIL;
};

// What ObjectRef<T> and ObjectRef<void> share: the held reference, the id,
// equality, and (not Ray's) the core's ref for code that also uses the C
// API: Adopt takes over one reference, Borrow takes one of its own.
template <typename Self>
class RefBase {
 public:
  static bool IsObjectRef() {
    return true;
  }
  bool operator==(const Self &o) const {
    return Ref().id == o.Ref().id;
  }
  // The id, as opaque binary bytes.
  std::string ID() const {
    return IdBytes(Ref().id);
  }
  ray_ref_t Ref() const {
    return holder_.Ref();
  }
  static Self Adopt(ray_ref_t ref) {
    return Make(RefHolder(ref, true));
  }
  static Self Borrow(ray_ref_t ref) {
    return Make(RefHolder(ref, false));
  }

 protected:
  static Self Make(RefHolder h) {
    Self s;
    s.holder_ = std::move(h);
    return s;
  }
  RefHolder holder_;
};

}  // namespace internal

template <typename T>
class ObjectRef : public internal::RefBase<ObjectRef<T>> {
 public:
  ObjectRef() = default;
  // A ref to the object with binary id `id` (ID()'s bytes), retained.
  ObjectRef(const std::string &id) {
    this->holder_ = internal::RefHolder(FromId(id), false);
  }
  std::shared_ptr<T> Get() const {
    return Get(-1);
  }
  std::shared_ptr<T> Get(const int &timeout_ms) const {
    ray_buf_t b;
    internal::Fetch(this->Ref(), timeout_ms, &b);
    return internal::Decode<T>(&b);
  }

 private:
  static ray_ref_t FromId(const std::string &id) {
    ray_ref_t r = RAY_REF_NIL;
    for (size_t i = 0; i < id.size() && i < 8; i++)
      r.id = (r.id << 8) | static_cast<unsigned char>(id[i]);
    r.type = RAY_TYPE_MSGPACK;
    return r;
  }
};

// The result of a function returning void: Get only checks for an error.
template <>
class ObjectRef<void> : public internal::RefBase<ObjectRef<void>> {
 public:
  void Get() const {
    Get(-1);
  }
  void Get(const int &timeout_ms) const {
    ray_buf_t b;
    internal::Fetch(Ref(), timeout_ms, &b);
    ray_buf_release(&b);
  }
};

}  // namespace ray

// ObjectRef<T> inside a msgpack-c++ value: the core's ref extension (12
// bytes: the id and the type tag, big-endian), read back as a retained ref.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <typename T>
  struct pack<ray::ObjectRef<T>> {
    template <typename Stream>
    packer<Stream> &operator()(packer<Stream> &o, const ray::ObjectRef<T> &v) const {
      ray_ref_t r = v.Ref();
      char b[12];
      ray::internal::PutBE(b, r.id, 8);
      ray::internal::PutBE(b + 8, r.type, 4);
      o.pack_ext(sizeof b, RAY_MSGPACK_EXT_REF);
      o.pack_ext_body(b, sizeof b);
      return o;
    }
  };

  template <typename T>
  struct convert<ray::ObjectRef<T>> {
    const msgpack::object &operator()(const msgpack::object &o, ray::ObjectRef<T> &v) const {
      if (o.type != msgpack::type::EXT || o.via.ext.type() != RAY_MSGPACK_EXT_REF ||
          o.via.ext.size != 12)
        throw msgpack::type_error();
      ray_ref_t r = RAY_REF_NIL;
      r.id = ray::internal::GetBE(o.via.ext.data(), 8);
      r.type = static_cast<uint32_t>(ray::internal::GetBE(o.via.ext.data() + 8, 4));
      v = ray::ObjectRef<T>::Borrow(r);
      return o;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // RAY_API_OBJECT_REF_H
