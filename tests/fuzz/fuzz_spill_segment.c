/* fuzz_spill_segment.c - spill segment files read back (memory.c): a
 * segment is the records of one spill batch written back to back, each
 * record's offset, size and checksum kept in its entry; a restore reads the
 * record with ray__spill_record_read, which must hand out the exact bytes
 * written or fail with RAY_EIO, never damaged ones.
 *
 * An input describes a segment and then damages it:
 *   byte 0          k = 1 + b % 8 records
 *   2 bytes each    record sizes (little endian, mod 4097)
 *   then            the records' bytes (a fixed pattern once the input runs out)
 *   then 4 bytes each, to the end: damage ops [kind, pos lo, pos hi, val]
 *     kind % 4 == 0  xor the byte at pos (mod file length) with val|1
 *               1  truncate the file to pos (mod length + 1)
 *               2  append val bytes of garbage
 *               3  damage a record's metadata (record pos % k): flip bit
 *                  val % 64 of its checksum, or (val >= 128) push its offset
 *                  past INT64_MAX
 * The target writes the intact segment into a scratch file (as a spill
 * batch does), checksums each record with ray__spill_checksum, applies the
 * damage, and reads every record back through an open descriptor.
 *
 * What it checks: a record read back with rc 0 holds exactly the bytes
 * written (never damaged ones), and any other result is RAY_EIO; an intact
 * record (metadata as written, inside the file, bytes unchanged) reads back
 * with rc 0; a record cut off by a truncation, with a wrong checksum or an
 * offset past INT64_MAX fails (an empty record past the end is still
 * intact: it has no bytes to lose). The checksum changes for any change confined
 * to one aligned 8-byte word (every step of it is a bijection), so a record
 * with one damaged byte must fail too; rc 0 with other bytes after wider
 * damage would be a checksum collision, also worth knowing. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "store.h"

enum { MAX_RECORDS = 8, MAX_RECORD = 4096, MAX_APPEND = 255 };

typedef struct record_s {
  uint64_t off, sum;           /* as the reader is told (maybe damaged) */
  uint64_t orig_off, orig_sum; /* as written */
  size_t size;
} record_t;

static int scratch_fd = -1;

static void close_scratch(void) {
  if (scratch_fd >= 0) close(scratch_fd);
}

/* One scratch file per process, unlinked at once: nothing is left behind
 * even when a crash ends the process. */
static int scratch(void) {
  if (scratch_fd >= 0) return scratch_fd;
  const char *dir = getenv("TMPDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/rustyray-fuzz-seg-XXXXXX", dir != NULL && *dir ? dir : "/tmp");
  scratch_fd = mkstemp(path);
  FUZZ_CHECK(scratch_fd >= 0);
  unlink(path);
  atexit(close_scratch);
  return scratch_fd;
}

static void write_file(int fd, const unsigned char *img, size_t len) {
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  size_t done = 0;
  while (done < len) {
    ssize_t r = pwrite(fd, img + done, len - done, (off_t)done);
    FUZZ_CHECK(r > 0);
    done += (size_t)r;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t at = 0;
  if (size == 0) return 0;
  size_t k = 1 + data[at++] % MAX_RECORDS;
  record_t rec[MAX_RECORDS];
  size_t total = 0;
  for (size_t i = 0; i < k; i++) {
    size_t s = 0;
    if (at + 2 <= size) s = (data[at] | (size_t)data[at + 1] << 8) % (MAX_RECORD + 1);
    at += 2;
    rec[i] = (record_t){total, 0, total, 0, s};
    total += s;
  }
  if (at > size) at = size;

  /* The segment as a spill batch writes it, and a copy to damage. */
  unsigned char *orig = malloc(total + 1);
  unsigned char *img = malloc(total + MAX_APPEND * (size / 4 + 1) + 1);
  FUZZ_CHECK(orig != NULL && img != NULL);
  for (size_t i = 0; i < total; i++)
    orig[i] = at < size ? data[at++] : (unsigned char)(i * 131u + 7u);
  for (size_t i = 0; i < k; i++)
    rec[i].sum = rec[i].orig_sum = ray__spill_checksum(orig + rec[i].off, rec[i].size);
  memcpy(img, orig, total);
  size_t len = total;

  for (; at + 4 <= size; at += 4) {
    unsigned kind = data[at] % 4, val = data[at + 3];
    size_t pos = data[at + 1] | (size_t)data[at + 2] << 8;
    if (kind == 0 && len > 0) {
      img[pos % len] ^= (unsigned char)(val | 1);
    } else if (kind == 1) {
      len = pos % (len + 1);
    } else if (kind == 2) {
      for (unsigned i = 0; i < val; i++) img[len++] = (unsigned char)(val ^ i);
    } else if (kind == 3) {
      record_t *r = &rec[pos % k];
      if (val < 128)
        r->sum ^= 1ull << (val % 64);
      else
        r->off = r->orig_off + (uint64_t)INT64_MAX + val; /* past INT64_MAX */
    }
  }

  int fd = scratch();
  write_file(fd, img, len);
  unsigned char *got = malloc(MAX_RECORD + 1);
  FUZZ_CHECK(got != NULL);
  for (size_t i = 0; i < k; i++) {
    const record_t *r = &rec[i];
    bool in_file = r->off <= len && r->size <= len - r->off;
    /* How many bytes of the record differ from what was written. */
    size_t changed = 0, first = 0, last = 0;
    for (size_t j = 0; in_file && j < r->size; j++) {
      if (img[r->off + j] == orig[r->orig_off + j]) continue;
      if (changed++ == 0) first = j;
      last = j;
    }
    bool meta_ok = r->off == r->orig_off && r->sum == r->orig_sum;
    int rc = ray__spill_record_read(fd, r->off, r->size, r->sum, got);
    FUZZ_CHECK(rc == 0 || rc == RAY_EIO);
    if (rc == 0) FUZZ_CHECK(memcmp(got, orig + r->orig_off, r->size) == 0);
    if (meta_ok && in_file && changed == 0) FUZZ_CHECK(rc == 0);
    if (r->off > (uint64_t)INT64_MAX || (!in_file && r->size > 0)) FUZZ_CHECK(rc == RAY_EIO);
    if (in_file && changed == 0 && r->sum != r->orig_sum) FUZZ_CHECK(rc == RAY_EIO);
    if (meta_ok && changed > 0 && first / 8 == last / 8) FUZZ_CHECK(rc == RAY_EIO);
  }
  free(got);
  free(orig);
  free(img);
  return 0;
}
