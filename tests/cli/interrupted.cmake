# latent_expect_interrupted(<run folder> <regex> <command> [arguments...]): runs the command
# through interrupt.sh (SIGTERM a second after the folder's run.json exists, and a file of the
# folder that matches the pattern LATENT_INTERRUPT_AFTER when that variable is set; sent by the
# shell command LATENT_INTERRUPT_WITH instead when that is set) and fails
# unless run.json then says the run was interrupted by SIGTERM, with its end time, matches <regex>
# too, and no temporary file is left in the folder.
set(_latent_interrupt_sh ${CMAKE_CURRENT_LIST_DIR}/interrupt.sh)
function(latent_expect_interrupted folder regex)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env "LATENT_INTERRUPT_AFTER=${LATENT_INTERRUPT_AFTER}"
                          "LATENT_INTERRUPT_WITH=${LATENT_INTERRUPT_WITH}"
                          sh ${_latent_interrupt_sh} ${folder} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE run ERROR_VARIABLE err TIMEOUT 120)
  if(NOT rc EQUAL 0 OR NOT run MATCHES "\"status\": \"interrupted\""
     OR NOT run MATCHES "\"signal\": \"SIGTERM\"" OR NOT run MATCHES "\"ended\": \"[0-9]"
     OR NOT run MATCHES "${regex}")
    message(FATAL_ERROR "a run ended by SIGTERM is not recorded as such (${rc}): ${run}${err}")
  endif()
  file(GLOB left ${folder}/*.tmp.*)
  if(left)
    message(FATAL_ERROR "a run ended by SIGTERM left temporary files: ${left}")
  endif()
endfunction()
