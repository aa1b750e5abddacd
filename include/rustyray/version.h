/* rustyray/version.h - library version and the export macro.
 *
 * Compare RAY_VERSION_HEX (the headers you compiled against) with
 * ray_version_hex() (the library you linked) to detect a mismatch. */
#ifndef RUSTYRAY_VERSION_H
#define RUSTYRAY_VERSION_H

#define RAY_VERSION_MAJOR 0
#define RAY_VERSION_MINOR 1
#define RAY_VERSION_PATCH 0
#define RAY_VERSION_HEX ((RAY_VERSION_MAJOR << 16) | (RAY_VERSION_MINOR << 8) | RAY_VERSION_PATCH)

/* RAY_EXTERN marks the public API; everything else is hidden
 * (the library builds with -fvisibility=hidden). POSIX only: there is no
 * Windows branch (no dllexport/dllimport scheme) because the library does
 * not build there (pthread keys, membarrier, POSIX file I/O; DECISIONS.md). */
#if defined(__GNUC__) && __GNUC__ >= 4
#define RAY_EXTERN __attribute__((visibility("default")))
#else
#define RAY_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The linked library's version as "MAJOR.MINOR.PATCH". Never fails; thread-safe. */
RAY_EXTERN const char *ray_version(void);

/* The linked library's RAY_VERSION_HEX. Never fails; thread-safe. */
RAY_EXTERN unsigned ray_version_hex(void);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_VERSION_H */
