# Decides whether the CUDA backend is built and sets it up.
#   LATENT_CUDA=AUTO: on when a CUDA compiler and toolkit are found.
#   LATENT_CUDA=ON:   required; configuration fails without the toolkit.
#   LATENT_CUDA=OFF:  a CPU-only build.
# Result: LATENT_WITH_CUDA (ON/OFF).
set(LATENT_WITH_CUDA OFF)
string(TOUPPER "${LATENT_CUDA}" _latent_cuda_mode)
if(NOT _latent_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LATENT_CUDA must be AUTO, ON or OFF, not '${LATENT_CUDA}'")
endif()

if(NOT _latent_cuda_mode STREQUAL "OFF")
  # Architecture detection needs a GPU, which CI does not have: default to Hopper (H100/H200).
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures to compile for")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    set(LATENT_WITH_CUDA ON)
    # CMake 3.25 knows no CUDA20 flag for nvcc; kernels need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    message(STATUS "latent: CUDA backend ON (toolkit ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(_latent_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "LATENT_CUDA=ON but no CUDA compiler/toolkit was found (set CMAKE_CUDA_COMPILER or use LATENT_CUDA=OFF)")
  else()
    message(STATUS "latent: CUDA toolkit not found, building the CPU backend only")
  endif()
else()
  message(STATUS "latent: CUDA backend OFF (LATENT_CUDA=OFF)")
endif()
