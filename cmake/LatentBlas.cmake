# Decides whether the CPU GEMMs go through a BLAS (kernels/gemm_cpu.cpp) and finds it.
#   LATENT_BLAS=AUTO: on when OpenBLAS is found (Debian: libopenblas-openmp-dev).
#   LATENT_BLAS=ON:   required; configuration fails without it.
#   LATENT_BLAS=OFF:  the hand-written GEMM only (e.g. for a machine without OpenBLAS).
# The OpenMP build of OpenBLAS is preferred: its threads are OpenMP's, so it and latent's own
# parallel loops share one pool and one thread count (omp_set_num_threads, OMP_NUM_THREADS).
# Results: LATENT_WITH_BLAS (ON/OFF), LATENT_BLAS_INCLUDE_DIR, LATENT_BLAS_LIBRARY.
set(LATENT_WITH_BLAS OFF)
string(TOUPPER "${LATENT_BLAS}" _latent_blas_mode)
if(NOT _latent_blas_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LATENT_BLAS must be AUTO, ON or OFF, not '${LATENT_BLAS}'")
endif()

if(NOT _latent_blas_mode STREQUAL "OFF")
  set(_latent_blas_arch "${CMAKE_LIBRARY_ARCHITECTURE}")
  find_path(LATENT_BLAS_INCLUDE_DIR cblas.h
            PATHS /usr/include/${_latent_blas_arch}/openblas-openmp /usr/include/openblas-openmp
                  /usr/include/${_latent_blas_arch}/openblas-pthread /usr/include/openblas
            NO_DEFAULT_PATH)
  find_library(LATENT_BLAS_LIBRARY NAMES openblas
               PATHS /usr/lib/${_latent_blas_arch}/openblas-openmp
                     /usr/lib/${_latent_blas_arch}/openblas-pthread
               NO_DEFAULT_PATH)
  if(NOT LATENT_BLAS_INCLUDE_DIR OR NOT LATENT_BLAS_LIBRARY)
    unset(LATENT_BLAS_INCLUDE_DIR CACHE)
    unset(LATENT_BLAS_LIBRARY CACHE)
    find_path(LATENT_BLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
    find_library(LATENT_BLAS_LIBRARY NAMES openblas)
  endif()
  if(LATENT_BLAS_INCLUDE_DIR AND LATENT_BLAS_LIBRARY)
    set(LATENT_WITH_BLAS ON)
    if(NOT LATENT_BLAS_LIBRARY MATCHES "openmp")
      message(STATUS "latent: ${LATENT_BLAS_LIBRARY} may not be OpenBLAS's OpenMP build: its "
                     "threads would not share latent's OpenMP pool (libopenblas-openmp-dev)")
    endif()
    message(STATUS "latent: CPU GEMMs through OpenBLAS (${LATENT_BLAS_LIBRARY})")
  elseif(_latent_blas_mode STREQUAL "ON")
    message(FATAL_ERROR "LATENT_BLAS=ON but OpenBLAS was not found (cblas.h and libopenblas): "
                        "install libopenblas-openmp-dev, or configure with -DLATENT_BLAS=OFF")
  else()
    message(STATUS "latent: OpenBLAS not found: the CPU GEMMs use the hand-written kernel "
                   "(install libopenblas-openmp-dev for the faster path)")
  endif()
endif()
