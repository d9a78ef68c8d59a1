# The GPU smoke script where there is no GPU, as CI sees it (scripts/gpu-smoke.sh):
# - with no GPU visible it stops at once, non-zero, with a one-line message, and writes nothing;
# - when a GPU is listed but every CUDA test skips (a driver that fails), the run is a failure.
# -DSRC=<source tree> -DOUT=<scratch folder> -DTESTS=<latent_cuda_tests> -DBENCH_TRAIN=<bench_train>
file(REMOVE_RECURSE ${OUT})
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${CMAKE_COMMAND} -E env CUDA_VISIBLE_DEVICES=
                        bash ${SRC}/scripts/gpu-smoke.sh ${OUT}/no-gpu
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")
string(STRIP "${out}${err}" said)
if(rc EQUAL 0)
  message(FATAL_ERROR "without a GPU the smoke script must fail; it exited 0: ${said}")
endif()
if(said MATCHES "\n" OR NOT said MATCHES "no NVIDIA GPU")
  message(FATAL_ERROR "without a GPU the smoke script must say so in one line, it said:\n${said}")
endif()
if(seconds GREATER 10)
  message(FATAL_ERROR "without a GPU the smoke script must stop at once, it took ${seconds} s")
endif()
if(EXISTS ${OUT}/no-gpu)
  message(FATAL_ERROR "without a GPU the smoke script must write nothing, it made ${OUT}/no-gpu")
endif()

# A GPU that nvidia-smi lists but that the CUDA runtime cannot use: every CUDA test skips.
if(TESTS AND EXISTS ${TESTS})
  file(MAKE_DIRECTORY ${OUT}/fake ${OUT}/bin)
  file(WRITE ${OUT}/fake/nvidia-smi "#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
  file(CHMOD ${OUT}/fake/nvidia-smi PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
  file(CREATE_LINK ${TESTS} ${OUT}/bin/latent_cuda_tests SYMBOLIC)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env "PATH=${OUT}/fake:$ENV{PATH}"
                          LATENT_SMOKE_BIN=${OUT}/bin LATENT_SMOKE_SECONDS=60
                          bash ${SRC}/scripts/gpu-smoke.sh ${OUT}/skipped
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "a run whose CUDA tests all skipped must fail; it exited 0:\n${out}")
  endif()
  if(NOT out MATCHES "CUDA tests \\| FAIL .a skip[^:]*: 0 passed, 0 failed, [0-9]+ skipped")
    message(FATAL_ERROR "the summary must name the skipped tests as a failure:\n${out}\n${err}")
  endif()
  file(GLOB written RELATIVE ${OUT}/skipped ${OUT}/skipped/*)
  list(LENGTH written n)
  if(n GREATER 8)
    message(FATAL_ERROR "the smoke script may write at most 8 files (what the GPU machine sends back), wrote ${n}: ${written}")
  endif()
endif()
