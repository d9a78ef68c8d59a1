# Installs the build tree into a scratch prefix, then configures, builds and runs a small project
# that uses find_package(latent) and links latent::latent.
set(prefix ${BIN}/consumer-test/prefix)
set(cbuild ${BIN}/consumer-test/build)
file(REMOVE_RECURSE ${BIN}/consumer-test)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${prefix}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
# The communication plugins the build made are installed beside the libraries.
foreach(plugin liblatent_mpi.so liblatent_nccl.so)
  if(EXISTS ${BIN}/lib/${plugin})
    file(GLOB_RECURSE installed ${prefix}/lib*/${plugin})
    if(NOT installed)
      message(FATAL_ERROR "cmake --install did not install ${plugin}")
    endif()
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/consumer -B ${cbuild} -G ${GENERATOR}
                        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${cbuild} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
# With the data installed, also run the README's example (a few hundred images, one epoch).
set(args "")
if(EXISTS /usr/share/datasets/fashion-mnist OR DEFINED ENV{LATENT_FASHION_MNIST})
  set(args readme)
endif()
execute_process(COMMAND ${cbuild}/consumer ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer failed (${rc}): ${err}")
endif()
