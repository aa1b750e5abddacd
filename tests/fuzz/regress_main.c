/* regress_main.c - the plain driver of a fuzz target: runs every file of the
 * directories (or the files) named on the command line through
 * LLVMFuzzerTestOneInput once, in name order, so the checked-in corpus (the
 * seeds and every crash ever found) is a regression test built with the
 * normal compiler and run by ctest, under the sanitizers and valgrind like
 * the other tests. Exits non-zero when a path cannot be read or holds no
 * input (a missing corpus must not pass silently); a failing input aborts
 * inside the target. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Read a whole file into a fresh heap block (exactly its size, so reads past
 * the end are caught by the sanitizers and valgrind). */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  size_t got;
  while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *p = realloc(buf, cap *= 2);
      if (p == NULL) free(buf);
      buf = p;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (buf == NULL || err) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    return -1;
  }
  unsigned char *exact = malloc(n > 0 ? n : 1);
  if (exact == NULL) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of `dir`, in name order. Returns the number run or -1. */
static long run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    perror(dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  long rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue; /* ., .., and hidden files */
    if (n == cap) {
      char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *p);
      if (p == NULL) {
        rc = -1;
        break;
      }
      names = p;
    }
    size_t len = strlen(dir) + strlen(de->d_name) + 2;
    if ((names[n] = malloc(len)) == NULL) {
      rc = -1;
      break;
    }
    snprintf(names[n++], len, "%s/%s", dir, de->d_name);
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat sb;
    if (rc >= 0 && stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
      rc = run_file(names[i]) == 0 ? rc + 1 : -1;
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      perror(argv[i]);
      return 1;
    }
    long n = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
    if (n < 0) return 1;
    total += n;
  }
  printf("%s: %ld inputs passed\n", argc > 0 ? argv[0] : "regress", total);
  if (total == 0) {
    fprintf(stderr, "no inputs: give corpus directories or files\n");
    return 1;
  }
  return 0;
}
