#!/usr/bin/env bash
# scripts/dev.sh - the README's two commands.
#
#   bash scripts/dev.sh demo   install what is missing, build, run the main demo
#   bash scripts/dev.sh test   install what is missing, build, run the whole test
#                              suite: the format check (scripts/format.sh),
#                              plain build (-Werror, with cluster mode on MPI),
#                              the layering check (scripts/layers.sh), every
#                              test plainly (the cluster tests under mpirun) and
#                              under valgrind, packaging, a build without MPI
#                              (cluster mode refused), embedding, then ASan+UBSan,
#                              then TSan, then each libFuzzer target for
#                              RAY_FUZZ_SECONDS (20). Configurations: the presets
#                              of CMakePresets.json.
#
# Idempotent: installs only the Debian packages that are missing (apt-get),
# reuses the build directories under build/. Needs root (or sudo) only when
# something is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Debian packages: toolchain, the three libraries, and tools the tests use.
packages=(gcc libc6-dev make cmake pkg-config libuv1-dev libmsgpack-dev libcmocka-dev)
# valgrind, curl and prometheus for the tests; clang and its runtime for libFuzzer;
# clang-format (14) for the format check; g++ and libtbb-dev (oneTBB) for the
# benchmark's --compare and its smoke test (bench/tbb_baseline.cpp); Open MPI
# for cluster mode (the plain build has RAY_WITH_MPI on; its tests run under
# mpirun, label mpi), and iproute2 for its two-host test (network namespaces);
# msgpack-c++, Boost's headers and GoogleTest for the C++ API (ADR-007).
test_packages=(valgrind curl python3 prometheus clang libclang-rt-14-dev clang-format g++ libtbb-dev
  openmpi-bin libopenmpi-dev iproute2 libmsgpack-cxx-dev libboost-dev libgtest-dev)

install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

# build PRESET: configure with CMakePresets.json's preset (into build/PRESET),
# then build.
build() {
  cmake --preset "$1" >/dev/null
  cmake --build "build/$1" -j "$jobs"
}

case "${1:-}" in
  demo)
    install_missing "${packages[@]}"
    build release
    ./build/release/examples/object_store_demo
    ;;
  test)
    install_missing "${packages[@]}" "${test_packages[@]}"
    echo "== plain build (-Werror), unit tests, examples and valgrind"
    bash scripts/format.sh --check # every .c/.h/.cpp in .clang-format's style
    build plain
    bash scripts/layers.sh build/plain # src/ files call only down (scripts/layers.txt)
    ctest --test-dir build/plain --output-on-failure -j "$jobs"
    echo "== packaging: install, then build C and C++ consumers with find_package and pkg-config"
    prefix="$root/build/install"
    rm -rf "$prefix" build/consumer build/consumer_cpp
    cmake --install build/plain --prefix "$prefix" >/dev/null
    cmake -S tests/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build build/consumer >/dev/null
    LD_LIBRARY_PATH="$prefix/lib" ./build/consumer/consumer
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    # shellcheck disable=SC2046 # word splitting of the flags is intended
    cc -std=c11 -Wall -Werror tests/consumer/consumer.c $(pkg-config --cflags --libs rustyray) \
      -o build/consumer/consumer_pc
    LD_LIBRARY_PATH="$prefix/lib" ./build/consumer/consumer_pc
    # The C++ API (the plain build has it: the C++ packages above): rustyray::cpp, rustyray-cpp.pc
    cmake -S tests/consumer_cpp -B build/consumer_cpp -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build build/consumer_cpp >/dev/null
    LD_LIBRARY_PATH="$prefix/lib" ./build/consumer_cpp/consumer_cpp
    # shellcheck disable=SC2046 # word splitting of the flags is intended
    g++ -std=c++17 -Wall -Wextra -Wpedantic -Wshadow -Werror tests/consumer_cpp/consumer.cpp \
      $(pkg-config --cflags --libs rustyray-cpp) -o build/consumer_cpp/consumer_cpp_pc
    LD_LIBRARY_PATH="$prefix/lib" ./build/consumer_cpp/consumer_cpp_pc
    unset PKG_CONFIG_PATH
    echo "== without MPI: cluster mode refused with RAY_ENOTSUP (test_cluster)"
    cmake --preset nompi >/dev/null
    cmake --build build/nompi -j "$jobs" --target test_cluster
    bash scripts/layers.sh build/nompi
    ctest --test-dir build/nompi --output-on-failure -R '^cluster$'
    echo "== embedding: a parent project that add_subdirectory()s the tree (no cmocka needed)"
    cmake -S tests/embed -B build/embed >/dev/null
    cmake --build build/embed -j "$jobs" >/dev/null
    ./build/embed/embedded
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
    build asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build/asan --output-on-failure -j "$jobs"
    echo "== ThreadSanitizer"
    build tsan
    # ASLR off: TSan's shadow memory layout clashes with high-entropy mmap on newer kernels.
    # tests/tsan.supp: one known false positive (fd number reuse between a test's
    # opendir and the spiller's files). No test is ever retried: a failure fails.
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
      setarch "$(uname -m)" -R ctest --test-dir build/tsan --output-on-failure -j "$jobs"
    echo "== fuzzing: every libFuzzer target for a bounded time (scripts/fuzz.sh)"
    RAY_FUZZ_SECONDS="${RAY_FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
    echo "== all test runs passed"
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac
