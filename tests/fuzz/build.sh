#!/bin/sh
# Builds every libFuzzer harness tests/fuzz/fuzz_*.c, with clang, libFuzzer,
# AddressSanitizer and UBSan, into OUT/fuzz_<name> (`make fuzz` runs it).
# The model parsers and kernels are compiled again here with the same
# instrumentation; the MPI and HDF5 include flags come from the MPI
# compiler wrapper and pkg-config, as configure finds them.
# Usage: tests/fuzz/build.sh SRCDIR BUILDDIR OUT
# Exits 77 when clang cannot build a libFuzzer program (install clang and
# libclang-rt-dev: scripts/setup does), so tests/fuzz.sh can skip.
set -eu
src=$1 build=$2 out=$3
cc=${FUZZ_CC:-clang}
mkdir -p "$out/obj"

# Can this clang link a fuzzer at all?
probe=$out/obj/probe
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
  ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" 2>/dev/null; then
  echo "fuzz: $cc cannot build libFuzzer harnesses (apt-get install clang libclang-rt-dev)" >&2
  exit 77
fi

mpi_cflags=$(mpicc -showme:compile 2>/dev/null || pkg-config --cflags ompi-c 2>/dev/null || true)
mpi_libs=$(mpicc -showme:link 2>/dev/null || pkg-config --libs ompi-c 2>/dev/null || true)
h5=hdf5-openmpi
pkg-config --exists "$h5" || h5=hdf5
cflags="-g -O1 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -I$out -I$src/src -I$src/kernels -I$src/tests -I$src/tests/fuzz $mpi_cflags
  $(pkg-config --cflags "$h5" jansson libzip libprotobuf-c)"
libs="$(pkg-config --libs "$h5" jansson libzip libprotobuf-c) $mpi_libs -lm"

# The build's config.h, without CUDA: the harnesses score on the CPU.
if [ -f "$build/config.h" ]; then
  grep -v -E 'BS_HAVE_CUDA|BS_HAVE_CUBLAS' "$build/config.h" >"$out/config.h.new"
else
  case $(uname -m) in x86_64 | amd64) echo '#define BS_X86_KERNELS 1' ;; *) : ;; esac \
    >"$out/config.h.new"
fi
cmp -s "$out/config.h.new" "$out/config.h" 2>/dev/null || cp "$out/config.h.new" "$out/config.h"

# What the harnesses link: every model importer and the import context
# they share, the JSON scanner, the kernels (CPU ones) and the HDF5 recipe
# builder.
lib="src/model-*.c src/import.c src/json-scan.c src/ubjson.c
  kernels/status.c kernels/model.c kernels/prep.c
  kernels/registry.c kernels/common/tree_layout.c kernels/ref/*.c
  kernels/cpu/cpu.c kernels/cpu/tree_pack.c kernels/cpu/tree_cpu.c kernels/cpu/dense_cpu.c
  kernels/cuda/cuda_plan.c tests/h5recipe.c"
isa=
if grep -q 'define BS_X86_KERNELS 1' "$out/config.h"; then
  isa="kernels/cpu/tree_avx2.c kernels/cpu/dense_avx2.c kernels/cpu/tree_avx512.c
    kernels/cpu/dense_avx512.c"
fi
headers=$(cd "$src" && ls src/*.h kernels/*.h kernels/*/*.h tests/*.h tests/fuzz/*.h)

# compile SOURCE (relative to src): one object, rebuilt when it or a header
# changed.
objs=
compile() {
  o=$out/obj/$(echo "$1" | tr / _).o
  extra=
  case $1 in
    *avx512*) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma" ;;
    *avx2*) extra="-mavx2 -mfma" ;;
  esac
  stale=$( (cd "$src" && find "$1" $headers -newer "$o" 2>/dev/null) | head -n 1)
  if [ ! -f "$o" ] || [ -n "$stale" ] || [ "$out/config.h" -nt "$o" ]; then
    echo "  CC (fuzz) $1"
    # shellcheck disable=SC2086
    $cc $cflags $extra -c "$src/$1" -o "$o"
  fi
  objs="$objs $o"
}

cd "$src"
# ONNX's schema as C (src/onnx/), made here as the build makes it.
pb=$out/src/onnx/onnx-ml.pb-c
if [ ! -f "$pb.o" ] || [ src/third_party/onnx/onnx-ml.proto -nt "$pb.o" ]; then
  echo "  PROTOC-C (fuzz) src/third_party/onnx/onnx-ml.proto"
  mkdir -p "$out/src/onnx"
  ${PROTOC_C:-protoc-c} --proto_path=src/third_party/onnx --c_out="$out/src/onnx" onnx-ml.proto
  # shellcheck disable=SC2086
  $cc $cflags -c "$pb.c" -o "$pb.o"
fi
objs="$pb.o"
for f in $lib $isa; do compile "$f"; done
libobjs=$objs
for h in tests/fuzz/fuzz_*.c; do
  name=$(basename "$h" .c)
  objs=
  compile "$h"
  if [ ! -x "$out/$name" ] || [ -n "$(find $objs $libobjs -newer "$out/$name" | head -n 1)" ]; then
    echo "  LD (fuzz) $name"
    # shellcheck disable=SC2086
    $cc $cflags -fsanitize=fuzzer $objs $libobjs $libs -o "$out/$name"
  fi
done
echo "fuzz: harnesses in $out"
