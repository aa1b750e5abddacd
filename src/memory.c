/* memory.c - the object store's capacity: accounting, spilling to disk and
 * restoring.
 *
 * Accounting: every payload held in memory has reserved its bytes (an
 * entry's `acct`) from `capacity`; so the bytes in memory never exceed it.
 * `reserved` counts what the shards have taken; each shard keeps a small
 * budget (up to two chunks) so most puts reserve with one atomic on a cache
 * line their shard lock already owns, not on a line every thread shares.
 * When the store cannot give more, shard budgets are reclaimed first, then
 * ready objects that nobody is reading are spilled (least recently used
 * first), then the put waits up to full_timeout_ms for frees, then it fails
 * with RAY_ESTOREFULL. Nothing referenced is ever dropped.
 *
 * Spilling writes the payload to <spill_dir>/<id>.obj through libuv's file
 * API with a checksum, then frees the memory; the entry stays, flagged
 * SPILLED. A get (or a task taking the object as an argument) restores it,
 * verifying the checksum; the file is kept (a second spill costs no write)
 * and deleted when the object is freed.
 *
 * Locks: spill_mu (one spill or restore at a time) is taken before any
 * shard lock, never under one. No file I/O happens under a shard lock: an
 * entry being written is pinned and flagged SPILLING instead. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ---- Accounting ---- */

ray__shard_t *ray__local_shard(ray__store_t *st) {
  /* The shard of the thread's current id block: the line its puts lock. */
  return ray__shard_of(st, ray__id_peek());
}

static void note_high_water(ray__store_t *st, int64_t v) {
  int64_t hw = atomic_load_explicit(&st->high_water, memory_order_relaxed);
  while (v > hw && !atomic_compare_exchange_weak(&st->high_water, &hw, v)) {
  }
}

/* Take n bytes from the capacity, or nothing. */
static bool take(ray__store_t *st, int64_t n) {
  int64_t cur = atomic_load_explicit(&st->reserved, memory_order_relaxed);
  do {
    if (cur + n > (int64_t)st->capacity) return false;
  } while (!atomic_compare_exchange_weak(&st->reserved, &cur, cur + n));
  note_high_water(st, cur + n);
  return true;
}

/* Give every shard's parked budget back to the store. */
static void reclaim(ray__store_t *st) {
  for (unsigned i = 0; i < st->nshards; i++) {
    int64_t b = atomic_exchange(&st->shards[i].s.budget, 0);
    if (b > 0)
      atomic_fetch_sub(&st->reserved, b);
    else if (b < 0)
      atomic_fetch_add(&st->shards[i].s.budget, b); /* a reservation in flight: give it back */
  }
}

static size_t spill_some(ray__store_t *st, size_t need);

int ray__mem_reserve(ray__store_t *st, size_t n) {
  if (n == 0) return 0;
  if (n > st->capacity) return RAY_ESTOREFULL;
  ray__shard_t *sh = ray__local_shard(st);
  int64_t want = (int64_t)n;
  if (atomic_fetch_sub(&sh->budget, want) - want >= 0) return 0;
  atomic_fetch_add(&sh->budget, want);
  uint64_t deadline = 0;
  for (;;) {
    if (take(st, want + st->chunk)) {
      atomic_fetch_add(&sh->budget, st->chunk);
      return 0;
    }
    if (take(st, want)) return 0;
    reclaim(st);
    if (take(st, want)) return 0;
    if (st->spill_enabled && spill_some(st, n) > 0) continue;
    /* Nothing to spill (all pinned, or spilling off): wait for frees. */
    uint64_t now = uv_hrtime();
    if (deadline == 0) deadline = now + (uint64_t)st->full_timeout_ms * 1000000u;
    if (now >= deadline) return RAY_ESTOREFULL;
    uv_mutex_lock(&st->mem_mu);
    atomic_fetch_add(&st->mem_waiters, 1);
    /* Re-check under mem_mu: a free in between has signalled already. */
    if (atomic_load(&st->reserved) + want > (int64_t)st->capacity)
      uv_cond_timedwait(&st->mem_cv, &st->mem_mu, deadline - now);
    atomic_fetch_sub(&st->mem_waiters, 1);
    uv_mutex_unlock(&st->mem_mu);
  }
}

void ray__mem_release(ray__store_t *st, size_t n) {
  if (n == 0) return;
  ray__shard_t *sh = ray__local_shard(st);
  int64_t b = atomic_fetch_add(&sh->budget, (int64_t)n) + (int64_t)n;
  if (b > 2 * st->chunk) {
    int64_t give = b - st->chunk;
    if (atomic_compare_exchange_strong(&sh->budget, &b, st->chunk))
      atomic_fetch_sub(&st->reserved, give);
  }
  if (atomic_load(&st->mem_waiters) > 0) {
    reclaim(st); /* waiters need it in the store, not parked in a shard */
    uv_mutex_lock(&st->mem_mu);
    uv_cond_broadcast(&st->mem_cv);
    uv_mutex_unlock(&st->mem_mu);
  }
}

uint64_t ray__mem_used(ray__store_t *st) {
  int64_t used = atomic_load(&st->reserved);
  for (unsigned i = 0; i < st->nshards; i++) {
    int64_t b = atomic_load(&st->shards[i].s.budget);
    if (b > 0) used -= b;
  }
  return used > 0 ? (uint64_t)used : 0;
}

/* ---- LRU of spill candidates (shard lock held) ---- */

/* Ready, in memory, payload in its own block (inline ones are small and
 * share the header's allocation), and counted. */
static bool candidate(const ray__entry_t *e) {
  return e->state == RAY__READY && !(e->flags & (RAY__F_INLINE | RAY__F_SPILLED)) && e->acct > 0;
}

void ray__lru_add(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  if (!candidate(e)) return;
  e->tick = atomic_fetch_add_explicit(&st->tick, 1, memory_order_relaxed);
  e->lru_next = NULL;
  e->lru_prev = sh->lru_tail;
  if (sh->lru_tail != NULL)
    sh->lru_tail->lru_next = e;
  else
    sh->lru_head = e;
  sh->lru_tail = e;
}

static bool in_lru(const ray__shard_t *sh, const ray__entry_t *e) {
  return e->lru_prev != NULL || sh->lru_head == e;
}

void ray__lru_remove(ray__shard_t *sh, ray__entry_t *e) {
  if (!in_lru(sh, e)) return;
  if (e->lru_prev != NULL)
    e->lru_prev->lru_next = e->lru_next;
  else
    sh->lru_head = e->lru_next;
  if (e->lru_next != NULL)
    e->lru_next->lru_prev = e->lru_prev;
  else
    sh->lru_tail = e->lru_prev;
  e->lru_prev = e->lru_next = NULL;
}

void ray__lru_touch(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  if (!in_lru(sh, e) || sh->lru_tail == e) return;
  ray__lru_remove(sh, e);
  ray__lru_add(st, sh, e);
}

/* ---- Files ---- */

static uint64_t checksum(const void *data, size_t n) {
  /* Four independent multiply-xor lanes over 32-byte blocks (the multiplies
   * overlap, so it runs near memory speed), folded at the end: enough to
   * catch a damaged or foreign file without slowing the disk down. */
  const unsigned char *p = data;
  const uint64_t k = 0xFF51AFD7ED558CCDull;
  uint64_t h[4] = {0x9E3779B97F4A7C15ull ^ n, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
                   0x27D4EB2F165667C5ull};
  while (n >= 32) {
    for (int i = 0; i < 4; i++) {
      uint64_t w;
      memcpy(&w, p + 8 * i, 8);
      h[i] = (h[i] ^ w) * k;
      h[i] ^= h[i] >> 31;
    }
    p += 32;
    n -= 32;
  }
  uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
  while (n > 0) {
    uint64_t w = 0;
    size_t m = n < 8 ? n : 8;
    memcpy(&w, p, m);
    r = (r ^ w) * k;
    r ^= r >> 29;
    p += m;
    n -= m;
  }
  return r ^ (r >> 32);
}

static void spill_path(const ray__store_t *st, uint64_t id, char *buf, size_t len) {
  snprintf(buf, len, "%s/%llu.obj", st->spill_dir, (unsigned long long)id);
}

/* spill_mu held. */
static int ensure_spill_dir(ray__store_t *st) {
  if (st->spill_dir != NULL) return 0;
  char tmp[1024];
  size_t len = sizeof tmp;
  if (uv_os_tmpdir(tmp, &len) != 0) return RAY_EIO;
  char tmpl[1100];
  snprintf(tmpl, sizeof tmpl, "%s/rustyray-spill-XXXXXX", tmp);
  uv_fs_t req;
  int r = uv_fs_mkdtemp(NULL, &req, tmpl, NULL);
  if (r == 0 && (st->spill_dir = ray__strdup(req.path)) == NULL) r = RAY_ENOMEM;
  uv_fs_req_cleanup(&req);
  return r == 0 ? 0 : r == RAY_ENOMEM ? r : RAY_EIO;
}

static int write_file(const char *path, const void *data, size_t size) {
  uv_fs_t req;
  int fd = uv_fs_open(NULL, &req, path, O_CREAT | O_WRONLY | O_TRUNC, 0600, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return RAY_EIO;
  int rc = 0;
  size_t off = 0;
  while (off < size && rc == 0) {
    size_t n = size - off > (1u << 30) ? (1u << 30) : size - off;
    uv_buf_t b = uv_buf_init((char *)data + off, (unsigned)n);
    int w = uv_fs_write(NULL, &req, fd, &b, 1, (int64_t)off, NULL);
    uv_fs_req_cleanup(&req);
    if (w <= 0) rc = RAY_EIO;
    else off += (size_t)w;
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

static int read_file(const char *path, void *data, size_t size) {
  uv_fs_t req;
  int fd = uv_fs_open(NULL, &req, path, O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return RAY_EIO;
  int rc = 0;
  size_t off = 0;
  while (off < size && rc == 0) {
    size_t n = size - off > (1u << 30) ? (1u << 30) : size - off;
    uv_buf_t b = uv_buf_init((char *)data + off, (unsigned)n);
    int r = uv_fs_read(NULL, &req, fd, &b, 1, (int64_t)off, NULL);
    uv_fs_req_cleanup(&req);
    if (r <= 0) rc = RAY_EIO;
    else off += (size_t)r;
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return rc;
}

void ray__spill_unlink(ray__store_t *st, uint64_t id) {
  if (st->spill_dir == NULL) return;
  char path[1200];
  spill_path(st, id, path, sizeof path);
  uv_fs_t req;
  uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
}

void ray__spill_cleanup(ray__store_t *st) {
  if (st->spill_dir == NULL || !st->spill_dir_owned) return;
  uv_fs_t req;
  uv_fs_rmdir(NULL, &req, st->spill_dir, NULL);
  uv_fs_req_cleanup(&req);
}

/* ---- Spilling ---- */

/* The least recently used candidate nobody is reading, across the shards. */
static bool pick_victim(ray__store_t *st, uint64_t *id) {
  bool found = false;
  uint64_t best = UINT64_MAX;
  for (unsigned i = 0; i < st->nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    uv_mutex_lock(&sh->mu);
    for (ray__entry_t *e = sh->lru_head; e != NULL; e = e->lru_next) {
      if (atomic_load(&e->life) != 1 || (e->flags & RAY__F_SPILLING)) continue; /* pinned */
      if (e->tick < best) {
        best = e->tick;
        *id = e->id;
        found = true;
      }
      break; /* the oldest unpinned one of this shard */
    }
    uv_mutex_unlock(&sh->mu);
  }
  return found;
}

/* Spill one object. Returns the bytes freed (0: nothing could be). spill_mu held. */
static size_t spill_one(ray__store_t *st) {
  uint64_t id = 0;
  if (!pick_victim(st, &id)) return 0;
  ray__shard_t *sh = ray__shard_of(st, id);
  uv_mutex_lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  if (e == NULL || !candidate(e) || atomic_load(&e->life) != 1 || (e->flags & RAY__F_SPILLING)) {
    uv_mutex_unlock(&sh->mu);
    return 1; /* changed meanwhile: not freed, but try again */
  }
  e->flags |= RAY__F_SPILLING;
  atomic_fetch_add(&e->life, 1); /* keeps the payload while we write it */
  bool have_file = e->flags & RAY__F_FILE;
  uv_mutex_unlock(&sh->mu);

  int rc = 0;
  char path[1200];
  spill_path(st, id, path, sizeof path);
  uint64_t sum = e->sum;
  if (!have_file) { /* the payload is immutable: an earlier file still holds it */
    sum = checksum(e->data, e->size);
    rc = write_file(path, e->data, e->size);
  }

  void *data = NULL, *free_arg = NULL;
  void (*free_fn)(void *) = NULL;
  bool owned = false;
  size_t freed = 0;
  uv_mutex_lock(&sh->mu);
  e->flags &= (uint8_t)~RAY__F_SPILLING;
  if (rc == 0) e->flags |= RAY__F_FILE;
  if (rc == 0) e->sum = sum;
  /* Still ours alone (table + our pin)? Then drop the payload. */
  if (rc == 0 && atomic_load(&e->life) == 2 && ray__shard_find(st, sh, id) == e) {
    ray__lru_remove(sh, e);
    data = e->data;
    owned = e->flags & RAY__F_OWNED;
    free_fn = e->free_fn;
    free_arg = e->free_arg;
    e->data = NULL;
    e->flags |= RAY__F_SPILLED;
    e->flags &= (uint8_t)~RAY__F_OWNED; /* restored payloads are ours */
    freed = e->acct;
    e->acct = 0;
  }
  uv_mutex_unlock(&sh->mu);
  if (freed > 0) {
    if (!owned)
      ray__free(data);
    else if (free_fn != NULL)
      free_fn(free_arg); /* the caller's buffer goes now; a restore makes our own */
    ray__mem_release(st, freed);
    atomic_fetch_add(&st->spill_count, 1);
    atomic_fetch_add(&st->spilled_bytes_total, freed);
    atomic_fetch_add(&st->bytes_on_disk, (int64_t)freed);
  }
  ray__entry_unpin(e);
  if (rc != 0) return 0;
  return freed > 0 ? freed : 1;
}

static size_t spill_some(ray__store_t *st, size_t need) {
  uv_mutex_lock(&st->spill_mu);
  size_t freed = 0;
  int tries = 0;
  if (ensure_spill_dir(st) == 0) {
    while (freed < need && tries < 64) {
      size_t n = spill_one(st);
      if (n == 0) break;
      if (n == 1) tries++; /* raced with a reader: look again */
      else freed += n;
    }
  }
  uv_mutex_unlock(&st->spill_mu);
  return freed;
}

/* ---- Restoring ---- */

int ray__store_restore(ray__store_t *st, uint64_t id) {
  uv_mutex_lock(&st->spill_mu);
  ray__shard_t *sh = ray__shard_of(st, id);
  uv_mutex_lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  if (e == NULL || !(e->flags & RAY__F_SPILLED)) { /* freed, or restored by someone else */
    uv_mutex_unlock(&sh->mu);
    uv_mutex_unlock(&st->spill_mu);
    return e == NULL ? RAY_ENOTFOUND : 0;
  }
  atomic_fetch_add(&e->life, 1); /* keeps the entry while we read */
  size_t size = e->size;
  uint64_t sum = e->sum;
  uv_mutex_unlock(&sh->mu);

  /* Spilling to make room never picks this one (it is not a candidate), and
   * spill_mu is ours already: spill_some must not take it again. */
  uv_mutex_unlock(&st->spill_mu);
  int rc = ray__mem_reserve(st, size);
  uv_mutex_lock(&st->spill_mu);
  void *data = NULL;
  if (rc == 0 && (data = ray__malloc(size == 0 ? 1 : size)) == NULL) {
    ray__mem_release(st, size);
    rc = RAY_ENOMEM;
  }
  if (rc == 0) {
    char path[1200];
    spill_path(st, id, path, sizeof path);
    rc = read_file(path, data, size);
    if (rc == 0 && checksum(data, size) != sum) rc = RAY_EIO;
  }
  bool installed = false;
  if (rc == 0) {
    uv_mutex_lock(&sh->mu);
    if ((e->flags & RAY__F_SPILLED) && ray__shard_find(st, sh, id) == e) {
      e->data = data;
      e->acct = size;
      e->flags &= (uint8_t)~RAY__F_SPILLED;
      ray__lru_add(st, sh, e);
      installed = true;
    }
    uv_mutex_unlock(&sh->mu);
    if (installed) {
      atomic_fetch_add(&st->restore_count, 1);
      atomic_fetch_sub(&st->bytes_on_disk, (int64_t)size);
    }
  }
  if (!installed && data != NULL) {
    ray__free(data);
    ray__mem_release(st, size);
  }
  uv_mutex_unlock(&st->spill_mu);
  ray__entry_unpin(e);
  return rc;
}
