# BS_CHECK_CUDA: the CUDA kernels' build, after openucx/ucc's config/m4/cuda.m4.
#
#   --with-cuda[=DIR]      build them (DIR: the toolkit, e.g. /usr/local/cuda);
#                          the default probes and builds them when nvcc and the
#                          runtime are found; asked for explicitly, not finding
#                          them is an error
#   --without-cuda         do not build them
#   --with-cuda-arch=LIST  GPU architectures, e.g. "80 90" (the default): one
#                          sm_XX binary each, plus PTX of the last one, which
#                          the driver compiles for newer GPUs
#   --without-cublas       build the CUDA kernels without cuBLAS (the default
#                          uses it when found; --with-cublas requires it)
#
# The probe's flags are saved and restored; what the build needs goes out
# through AC_SUBST only: NVCC, NVCCFLAGS (nvcc's own flags, never the host
# CFLAGS), NVCC_ARCH, CUDA_CPPFLAGS (the host glue), CUDA_LDFLAGS, CUDA_LIBS
# (the static runtime, so that a binary runs where only the driver is
# installed, and starts without one; libstdc++ for nvcc's host stubs), AM_CONDITIONAL HAVE_CUDA and the
# config.h define BS_HAVE_CUDA.
#
# cuBLAS and cuBLASLt are probed too, never required: with them the build
# has the GPU network kernel dense-cublaslt, and bench_cuda times the
# library path against dense-cuda. CUBLAS_LIBS: the shared libraries, with
# an rpath to the toolkit's so that batchscore runs from the build tree and
# where the toolkit is installed; AM_CONDITIONAL HAVE_CUBLAS and
# BS_HAVE_CUBLAS. Without them (or --without-cublas) the other CUDA kernels
# are built as before and batchscore needs only the driver.
AC_DEFUN([BS_CHECK_CUDA], [
AC_ARG_WITH([cuda],
  [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@],
    [build the CUDA kernels (default: when nvcc is found); DIR is the CUDA toolkit])],
  [], [with_cuda=check])
AC_ARG_WITH([cuda-arch],
  [AS_HELP_STRING([--with-cuda-arch=LIST],
    [GPU architectures to build for (default: "80 90", plus PTX of the last)])],
  [], [with_cuda_arch="80 90"])
AC_ARG_WITH([cublas],
  [AS_HELP_STRING([--without-cublas],
    [build the CUDA kernels without cuBLAS (no dense-cublaslt kernel)])],
  [], [with_cublas=check])
AC_ARG_VAR([NVCC], [the CUDA compiler])
AC_ARG_VAR([NVCCFLAGS], [flags for nvcc (default: -O3); host CFLAGS never reach nvcc])

cuda_happy=no
cuda_why=
cublas_happy=no
CUBLAS_LIBS=
CUDA_CPPFLAGS=
CUDA_LDFLAGS=
CUDA_LIBS=
NVCC_ARCH=
AS_IF([test "x$with_cuda" != xno], [
  cuda_dir=
  AS_CASE([$with_cuda], [yes|check], [], [cuda_dir=$with_cuda])
  AS_IF([test -z "$NVCC"], [
    AS_IF([test -n "$cuda_dir"],
      [AC_PATH_PROG([NVCC], [nvcc], [], [$cuda_dir/bin])],
      [AC_PATH_PROG([NVCC], [nvcc], [], [$PATH$PATH_SEPARATOR/usr/local/cuda/bin])])])
  AS_IF([test -z "$NVCC"], [cuda_why="nvcc not found"], [
    dnl The toolkit is the directory above nvcc's unless given.
    AS_IF([test -z "$cuda_dir"], [
      cuda_real=`readlink -f "$NVCC" 2>/dev/null || echo "$NVCC"`
      cuda_dir=`AS_DIRNAME(["$cuda_real"])`
      cuda_dir=`AS_DIRNAME(["$cuda_dir"])`])
    AS_IF([test -d "$cuda_dir/include"], [CUDA_CPPFLAGS="-I$cuda_dir/include"])
    AS_IF([test -d "$cuda_dir/lib64"], [CUDA_LDFLAGS="-L$cuda_dir/lib64"],
          [test -d "$cuda_dir/lib"], [CUDA_LDFLAGS="-L$cuda_dir/lib"])
    save_CPPFLAGS=$CPPFLAGS
    save_LDFLAGS=$LDFLAGS
    save_LIBS=$LIBS
    CPPFLAGS="$CPPFLAGS $CUDA_CPPFLAGS"
    LDFLAGS="$LDFLAGS $CUDA_LDFLAGS"
    AC_CHECK_HEADER([cuda_runtime_api.h], [cuda_happy=yes],
                    [cuda_why="cuda_runtime_api.h not found"])
    AS_IF([test "$cuda_happy" = yes], [
      AC_CHECK_LIB([cudart_static], [cudaGetDeviceCount],
        [CUDA_LIBS="-lcudart_static -ldl -lpthread -lrt -lstdc++"],
        [cuda_happy=no; cuda_why="libcudart_static not found"], [-ldl -lpthread -lrt])])
    AS_IF([test "$cuda_happy" = yes && test "x$with_cublas" != xno], [
      AC_CHECK_HEADER([cublas_v2.h],
        [AC_CHECK_HEADER([cublasLt.h], [cublas_happy=yes])])
      AS_IF([test "$cublas_happy" = yes], [
        AC_CHECK_LIB([cublasLt], [cublasLtMatmul],
          [AC_CHECK_LIB([cublas], [cublasSgemm_v2], [:],
                        [cublas_happy=no], [-lcublasLt])],
          [cublas_happy=no])])
      AS_IF([test "$cublas_happy" = yes], [
        CUBLAS_LIBS="-lcublas -lcublasLt"
        cuda_libdir=`echo "$CUDA_LDFLAGS" | sed 's/^-L//'`
        AS_IF([test -n "$cuda_libdir"],
              [CUBLAS_LIBS="-Wl,-rpath,$cuda_libdir $CUBLAS_LIBS"])])])
    CPPFLAGS=$save_CPPFLAGS
    LDFLAGS=$save_LDFLAGS
    LIBS=$save_LIBS
    AS_IF([test "$cuda_happy" = yes], [
      for a in $with_cuda_arch; do
        NVCC_ARCH="$NVCC_ARCH -gencode=arch=compute_$a,code=sm_$a"
        cuda_last=$a
      done
      AS_IF([test -n "$NVCC_ARCH"],
            [NVCC_ARCH="$NVCC_ARCH -gencode=arch=compute_$cuda_last,code=compute_$cuda_last"])
      : ${NVCCFLAGS="-O3"}
      AC_MSG_CHECKING([whether $NVCC builds for architectures $with_cuda_arch])
      cat >conftest.cu <<_BS_EOF
__global__ void bs_probe(float *x) { x@<:@threadIdx.x@:>@ = 1.0f; }
_BS_EOF
      AS_IF([$NVCC $NVCC_ARCH $NVCCFLAGS -c conftest.cu -o conftest.$OBJEXT >&AS_MESSAGE_LOG_FD 2>&1],
            [AC_MSG_RESULT([yes])],
            [AC_MSG_RESULT([no]); cuda_happy=no
             cuda_why="$NVCC cannot build for '$with_cuda_arch' (see config.log)"])
      rm -f conftest.cu conftest.$OBJEXT])
  ])
  AS_IF([test "$cuda_happy" != yes], [
    AS_IF([test "x$with_cuda" != xcheck],
          [AC_MSG_ERROR([--with-cuda: $cuda_why])],
          [AC_MSG_NOTICE([CUDA kernels not built: $cuda_why])])])
])
AS_IF([test "$cuda_happy" = yes],
      [AC_DEFINE([BS_HAVE_CUDA], [1], [Build the CUDA kernels])],
      [NVCC_ARCH=; CUDA_CPPFLAGS=; CUDA_LDFLAGS=; CUDA_LIBS=; cublas_happy=no])
AS_IF([test "x$with_cublas" = xyes && test "$cublas_happy" != yes],
      [AC_MSG_ERROR([--with-cublas: cuBLAS and cuBLASLt not found, or no CUDA build])])
AS_IF([test "$cublas_happy" = yes],
      [AC_DEFINE([BS_HAVE_CUBLAS], [1], [Build the cuBLASLt network kernel])],
      [CUBLAS_LIBS=])
AC_SUBST([NVCC])
AC_SUBST([NVCCFLAGS])
AC_SUBST([NVCC_ARCH])
AC_SUBST([CUDA_CPPFLAGS])
AC_SUBST([CUDA_LDFLAGS])
AC_SUBST([CUDA_LIBS])
AC_SUBST([CUBLAS_LIBS])
AM_CONDITIONAL([HAVE_CUDA], [test "$cuda_happy" = yes])
AM_CONDITIONAL([HAVE_CUBLAS], [test "$cublas_happy" = yes])
])
