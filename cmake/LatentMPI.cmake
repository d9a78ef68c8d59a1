# Decides whether data parallelism across processes is built (core/dist) and sets it up.
#   LATENT_MPI=AUTO: on when an MPI implementation (Open MPI: libopenmpi-dev) is found.
#   LATENT_MPI=ON:   required; configuration fails without MPI.
#   LATENT_MPI=OFF:  a build without MPI: a process is always a world of one, and one started by
#                    mpirun (or srun) with more than one rank refuses to run.
# With the CUDA backend (and LATENT_MPI not OFF), NCCL (in the CUDA toolkit's folders, or the copy
# pip installs with PyTorch) reduces GPU tensors; across processes it needs MPI too (its unique id
# travels over MPI), alone it serves dist::loopback(). Both are built as plugins core/dist loads
# at run time (core/CMakeLists.txt).
# Results: LATENT_WITH_MPI, LATENT_WITH_NCCL (ON/OFF); LATENT_NCCL_INCLUDE_DIR, LATENT_NCCL_LIBRARY.
set(LATENT_WITH_MPI OFF)
set(LATENT_WITH_NCCL OFF)
string(TOUPPER "${LATENT_MPI}" _latent_mpi_mode)
if(NOT _latent_mpi_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LATENT_MPI must be AUTO, ON or OFF, not '${LATENT_MPI}'")
endif()

if(NOT _latent_mpi_mode STREQUAL "OFF")
  # The C bindings (not the deprecated C++ ones): FindMPI needs the C language for them.
  include(CheckLanguage)
  check_language(C)
  if(CMAKE_C_COMPILER)
    enable_language(C)
    find_package(MPI COMPONENTS C)
  endif()
  if(MPI_C_FOUND)
    set(LATENT_WITH_MPI ON)
    # Which launcher: Open MPI's takes flags of its own (tests/CMakeLists.txt).
    set(LATENT_MPI_IS_OPENMPI OFF)
    if(MPIEXEC_EXECUTABLE)
      execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _latent_mpiexec_version
                      ERROR_QUIET RESULT_VARIABLE _latent_mpiexec_rc)
      if(_latent_mpiexec_version MATCHES "Open MPI|OpenRTE")
        set(LATENT_MPI_IS_OPENMPI ON)
      endif()
    endif()
    message(STATUS "latent: MPI ON (MPI ${MPI_C_VERSION}, ${MPI_C_LIBRARIES})")
  elseif(_latent_mpi_mode STREQUAL "ON")
    message(FATAL_ERROR "LATENT_MPI=ON but no MPI was found (apt-get install libopenmpi-dev "
                        "openmpi-bin, or use LATENT_MPI=OFF)")
  else()
    message(STATUS "latent: MPI not found, building without data parallelism across processes")
  endif()
else()
  message(STATUS "latent: MPI OFF (LATENT_MPI=OFF)")
endif()

if(LATENT_WITH_CUDA AND NOT _latent_mpi_mode STREQUAL "OFF")
  # Where NCCL is looked for: LATENT_NCCL_ROOT or $NCCL_HOME ({include,lib}), the CUDA toolkit's
  # folders, the system's (NVIDIA's libnccl-dev), then the copy pip installs beside PyTorch
  # (nvidia-nccl-cu*: nvidia/nccl/{include,lib}, whose libnccl.so.2 has no unversioned link).
  set(LATENT_NCCL_ROOT "" CACHE PATH "a folder with NCCL's include/ and lib/")
  # A root given or changed after the first configuration: look again.
  set(_latent_nccl_asked "${LATENT_NCCL_ROOT};$ENV{NCCL_HOME}")
  if(DEFINED LATENT_NCCL_ASKED AND NOT LATENT_NCCL_ASKED STREQUAL _latent_nccl_asked)
    unset(LATENT_NCCL_INCLUDE_DIR CACHE)
    unset(LATENT_NCCL_LIBRARY CACHE)
  endif()
  set(LATENT_NCCL_ASKED "${_latent_nccl_asked}" CACHE INTERNAL "the NCCL roots last looked in")
  set(_latent_nccl_include_hints)
  set(_latent_nccl_lib_hints)
  foreach(root ${LATENT_NCCL_ROOT} $ENV{NCCL_HOME})
    list(APPEND _latent_nccl_include_hints ${root}/include)
    list(APPEND _latent_nccl_lib_hints ${root}/lib ${root}/lib64)
  endforeach()
  list(APPEND _latent_nccl_include_hints ${CUDAToolkit_INCLUDE_DIRS})
  list(APPEND _latent_nccl_lib_hints ${CUDAToolkit_LIBRARY_DIR})
  set(_latent_nccl_wheel_include)
  set(_latent_nccl_wheel_lib)
  find_program(LATENT_PYTHON3 python3)
  if(LATENT_PYTHON3)
    execute_process(COMMAND ${LATENT_PYTHON3} -c
                            "import nvidia.nccl as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE _latent_nccl_wheel OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET RESULT_VARIABLE _latent_nccl_wheel_rc)
    if(_latent_nccl_wheel_rc EQUAL 0 AND IS_DIRECTORY "${_latent_nccl_wheel}")
      set(_latent_nccl_wheel_include ${_latent_nccl_wheel}/include)
      set(_latent_nccl_wheel_lib ${_latent_nccl_wheel}/lib)
    endif()
  endif()
  # The wheel last (PATHS: after the system's folders, where NVIDIA's packages also install).
  find_path(LATENT_NCCL_INCLUDE_DIR nccl.h HINTS ${_latent_nccl_include_hints}
            PATHS ${_latent_nccl_wheel_include})
  find_library(LATENT_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
               HINTS ${_latent_nccl_lib_hints} PATHS ${_latent_nccl_wheel_lib})
  if(LATENT_NCCL_INCLUDE_DIR AND LATENT_NCCL_LIBRARY)
    set(LATENT_WITH_NCCL ON)
    message(STATUS "latent: NCCL ON (${LATENT_NCCL_LIBRARY})")
  else()
    message(STATUS "latent: NCCL not found: GPU tensors cannot be reduced across processes")
  endif()
endif()
