# The latent tool under mpirun, as a user runs it across processes: two ranks train as one and
# write one set of files (rank 0), twice with identical bits; a failing rank ends the job within
# 30 seconds with its message; a job ended by SIGTERM says so in run.json; a stopped rank ends the
# job after LATENT_DIST_TIMEOUT, run.json "failed"; ranks started with other settings, or a batch smaller than the
# processes, are refused, naming the flag;
# `latent eval` shares its batches and prints one process's numbers once; the other commands refuse
# to run as several processes; a run of 2 ranks resumed under
# mpirun (with the run's own flags, read by rank 0) ends with the model of a run that never
# stopped; a folder in use is refused; the final test metrics are shared.
# -DCLI=<path to latent> -DOUT=<scratch folder> -DMPIRUN=<mpirun and its options, a list>
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/interrupted.cmake)
if(NOT (EXISTS /usr/share/datasets/fashion-mnist OR DEFINED ENV{LATENT_FASHION_MNIST}))
  message(STATUS "Fashion-MNIST not installed: nothing to train on")
  return()
endif()
set(args train --epochs 1 --limit 512 --test-limit 200 --hidden 32 --latent 4 --ll-k 0
    --device cpu --seed 3)

foreach(run two again)
  execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${args} --out ${OUT}/${run}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun -np 2 latent train failed (${rc}): ${err}")
  endif()
  foreach(f model.safetensors metrics.csv summary.json samples.png loss.png)
    if(NOT EXISTS ${OUT}/${run}/${f})
      message(FATAL_ERROR "mpirun -np 2 latent train did not write ${f}")
    endif()
  endforeach()
  file(GLOB leftovers ${OUT}/${run}/*.tmp*)
  if(leftovers)
    message(FATAL_ERROR "temporary files left behind: ${leftovers}")
  endif()
  file(READ ${OUT}/${run}/summary.json summary)
  foreach(want "\"world_size\": 2" "\"global_batch\": 128" "\"batch_per_rank\": 64")
    string(FIND "${summary}" "${want}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "summary.json lacks ${want}: ${summary}")
    endif()
  endforeach()
  # Printed once (by rank 0), not once per rank.
  string(REGEX MATCHALL "\"world_size\"" printed "${out}")
  list(LENGTH printed n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "the summary was printed ${n} times: ${out}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/two/model.safetensors
                        ${OUT}/again/model.safetensors RESULT_VARIABLE differ)
if(NOT differ EQUAL 0)
  message(FATAL_ERROR "two runs of 2 ranks with one seed wrote different models")
endif()

# Resumed across the ranks: one epoch, then --resume to two; the model equals two epochs straight.
# The final metrics are shared by the ranks and reported as one process's (the ELBO too).
list(REMOVE_ITEM args --epochs 1)
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${args} --epochs 2 --out ${OUT}/straight
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np 2 latent train --epochs 2 failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${args} --epochs 1 --out ${OUT}/resumed
                RESULT_VARIABLE rc ERROR_VARIABLE err)
# The resumed run gives none of the run's flags: rank 0 reads them from the run's state and sends
# them to rank 1 (where it runs, and its last evaluation, are not the run's).
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} train --device cpu --ll-k 0 --epochs 2
                        --resume ${OUT}/resumed
                RESULT_VARIABLE rc2 ERROR_VARIABLE err2)
if(NOT rc EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "a resumed run of 2 ranks failed (${rc}, ${rc2}): ${err}${err2}")
endif()
string(FIND "${err2}" "resuming after epoch 1" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the resumed run did not say where it resumed: ${err2}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/straight/model.safetensors
                        ${OUT}/resumed/model.safetensors RESULT_VARIABLE differ)
if(NOT differ EQUAL 0)
  message(FATAL_ERROR "2 ranks resumed after epoch 1 wrote another model than 2 epochs straight")
endif()
file(READ ${OUT}/straight/summary.json summary)
foreach(key test_elbo test_recon_mse active_units)
  string(FIND "${summary}" "\"${key}\"" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "summary.json of 2 ranks lacks ${key}: ${summary}")
  endif()
endforeach()
list(APPEND args --epochs 1)

# Small CSV data sets of one name in two folders (wa, wb), for ranks started in either.
file(MAKE_DIRECTORY ${OUT}/wa ${OUT}/wb)
set(rows "")
foreach(i RANGE 1 40)
  math(EXPR v "${i} % 10")
  string(APPEND rows "0.${v},0.5,0.25,1\n")
endforeach()
file(WRITE ${OUT}/wa/x.csv "${rows}")
file(WRITE ${OUT}/wb/x.csv "${rows}")
file(WRITE ${OUT}/wa/t.csv "0.1,0.2,0.3,0.4\n0.5,0.5,0.5,0.5\n")
file(WRITE ${OUT}/wb/t.csv "0.9,0.2,0.3,0.4\n0.5,0.5,0.5,0.5\n")
set(csv_args train --data x.csv --test-data t.csv --hidden 4 --latent 2 --batch 8 --epochs 1
    --ll-k 0 --device cpu --out ${OUT}/csv)

# One rank fails (its data file does not exist): the job ends, fast, with that rank's message.
file(MAKE_DIRECTORY ${OUT}/empty)
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 1 -wdir ${OUT}/wa ${CLI} ${csv_args} : -np 1
                        -wdir ${OUT}/empty ${CLI} ${csv_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
string(TIMESTAMP t1 "%s")
math(EXPR took "${t1} - ${t0}")
if(rc EQUAL 0 OR took GREATER 30)
  message(FATAL_ERROR "a failing rank gave status ${rc} after ${took} s: ${err}")
endif()
string(FIND "${err}" "rank 1 of 2" at)
string(FIND "${err}" "x.csv" named)
if(at EQUAL -1 OR named EQUAL -1)
  message(FATAL_ERROR "the failing rank's message is missing: ${err}")
endif()

# A job ended by SIGTERM (mpirun passes it to the ranks, as when another rank fails): rank 0
# records it in run.json before the processes end.
latent_expect_interrupted(${OUT}/killed "\"processes\": 2" ${MPIRUN} -np 2 ${CLI} train
                          --epochs 100000 --limit 400 --test-limit 50 --hidden 16 --latent 2
                          --ll-k 0 --device cpu --out ${OUT}/killed)

# A rank that stops (SIGSTOP, as a stuck rank would) while rank 0 waits for it in a collective:
# rank 0's watchdog ends the job after LATENT_DIST_TIMEOUT (2 s here), and its run.json says
# "failed", naming the wait, instead of "running" for ever.
execute_process(COMMAND ${CMAKE_COMMAND} -E env LATENT_INTERRUPT_RANK=1 LATENT_INTERRUPT_SIGNAL=STOP
                        LATENT_DIST_TIMEOUT=2 sh ${_latent_interrupt_sh} ${OUT}/stuck ${MPIRUN} -np 2
                        ${CLI} train --epochs 100000 --limit 400 --test-limit 50 --hidden 16
                        --latent 2 --ll-k 0 --device cpu --out ${OUT}/stuck
                RESULT_VARIABLE rc OUTPUT_VARIABLE run ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT run MATCHES "\"status\": \"failed\""
   OR NOT run MATCHES "which every rank must join \\(LATENT_DIST_TIMEOUT=2 s\\)")
  message(FATAL_ERROR "a stopped rank did not end the job with run.json failed (${rc}): ${run}${err}")
endif()

# A timeout that is not a number of seconds: refused at once, naming the variable.
execute_process(COMMAND ${CMAKE_COMMAND} -E env LATENT_DIST_TIMEOUT=soon ${MPIRUN} -np 2 ${CLI}
                        ${args} --out ${OUT}/soon
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "LATENT_DIST_TIMEOUT=soon is not a number of seconds" at)
if(rc EQUAL 0 OR at EQUAL -1 OR EXISTS ${OUT}/soon)
  message(FATAL_ERROR "LATENT_DIST_TIMEOUT=soon was not refused (${rc}): ${err}")
endif()

# Ranks with other settings: refused on start, naming the setting.
execute_process(COMMAND ${MPIRUN} -np 1 ${CLI} ${args} --batch 128 --out ${OUT}/mismatch : -np 1
                        ${CLI} ${args} --batch 64 --out ${OUT}/mismatch
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on '--batch': 128 on rank 0, 64 on rank 1" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "ranks with other batch sizes were not refused (${rc}): ${err}")
endif()
# Said once, by rank 0; the ranks end together, not through MPI_Abort.
string(REGEX MATCHALL "ranks disagree" said "${err}")
list(LENGTH said n)
string(FIND "${err}" "MPI_ABORT" aborted)
if(NOT n EQUAL 1 OR NOT aborted EQUAL -1)
  message(FATAL_ERROR "the refusal was said ${n} times, or through MPI_Abort: ${err}")
endif()
# Every flag that shapes the training is compared, by name.
execute_process(COMMAND ${MPIRUN} -np 1 ${CLI} ${args} --out ${OUT}/mismatch : -np 1
                        ${CLI} ${args} --activation tanh --out ${OUT}/mismatch
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on '--activation': relu on rank 0, tanh on rank 1" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "ranks with other activations were not refused (${rc}): ${err}")
endif()
# Numbers as the user wrote them; a flag left to a default that depends on others is "not given".
execute_process(COMMAND ${MPIRUN} -np 1 ${CLI} ${args} --out ${OUT}/mismatch : -np 1
                        ${CLI} ${args} --weight-decay 0.1 --out ${OUT}/mismatch
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on '--weight-decay': not given on rank 0, 0.1 on rank 1" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "ranks with other weight decays were not refused as such (${rc}): ${err}")
endif()
# --resume on one rank only: refused before rank 0 touches the folder (here it would have
# replaced the run with --overwrite).
execute_process(COMMAND ${MPIRUN} -np 1 ${CLI} ${args} --out ${OUT}/two --overwrite : -np 1
                        ${CLI} ${args} --resume ${OUT}/two
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on '--resume': not given on rank 0, given on rank 1" at)
if(rc EQUAL 0 OR at EQUAL -1 OR NOT EXISTS ${OUT}/two/model.safetensors)
  message(FATAL_ERROR "--resume on one rank only was not refused at start (${rc}): ${err}")
endif()
# A folder a run still writes is refused to a launch of 2 ranks, --overwrite or not, before any
# data is read; so it is once that run was killed without a record, saying so. The refusing rank
# ends the job.
list(JOIN MPIRUN " " launch)
execute_process(COMMAND ${CMAKE_COMMAND} -E env "LATENT_IN_USE_LAUNCH=${launch} -np 2"
                        sh ${CMAKE_CURRENT_LIST_DIR}/in_use.sh ${OUT}/in-use ${CLI} ${args}
                        --epochs 100000 --limit 400
                RESULT_VARIABLE rc OUTPUT_VARIABLE said ERROR_VARIABLE err TIMEOUT 200)
if(NOT rc EQUAL 0
   OR NOT said MATCHES "rank 0 of 2[^\n]*in-use is in use: the run in it still runs \\(process"
   OR NOT said MATCHES "rank 0 of 2[^\n]*its run.json says \"running\", but its process [0-9]+ is gone"
   OR said MATCHES "latent: data from")
  message(FATAL_ERROR "2 ranks were not refused a folder in use, or one whose run was killed, "
                      "at once (${rc}): ${said}${err}")
endif()
# Another command, or help, on one rank: the job ends with a message instead of waiting.
execute_process(COMMAND ${MPIRUN} -np 1 ${CLI} ${args} --out ${OUT}/mismatch : -np 1
                        ${CLI} train --help
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on 'command': train on rank 0, --help on rank 1" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "help on one rank did not end the job with a message (${rc}): ${err}")
endif()
# Help on every rank: printed once, by rank 0.
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} train --help
                RESULT_VARIABLE rc OUTPUT_VARIABLE help ERROR_VARIABLE err TIMEOUT 60)
string(REGEX MATCHALL "--weight-decay" printed "${help}")
list(LENGTH printed n)
if(NOT rc EQUAL 0 OR NOT n EQUAL 1)
  message(FATAL_ERROR "latent train --help on 2 ranks: status ${rc}, printed ${n} times: ${err}")
endif()
# The same relative file name read in other folders: the contents differ, and are compared.
execute_process(COMMAND ${MPIRUN} -np 1 -wdir ${OUT}/wa ${CLI} ${csv_args} : -np 1 -wdir ${OUT}/wb
                        ${CLI} ${csv_args}
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "ranks disagree on 'the test examples (--test-data, or --data's held out), by a fingerprint of their values'" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "ranks with other test data were not refused (${rc}): ${err}")
endif()
file(WRITE ${OUT}/wb/t.csv "0.1,0.2,0.3,0.4\n0.5,0.5,0.5,0.5\n")
execute_process(COMMAND ${MPIRUN} -np 1 -wdir ${OUT}/wa ${CLI} ${csv_args} : -np 1 -wdir ${OUT}/wb
                        ${CLI} ${csv_args}
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ranks with the same data in other folders were refused (${rc}): ${err}")
endif()

# A batch smaller than the processes: refused before any data is read, naming the flag.
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${args} --batch 1 --out ${OUT}/tiny
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "--batch: a batch of 1 cannot be shared by 2 processes" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "a batch of 1 for 2 processes was not refused (${rc}): ${err}")
endif()

execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} sample --checkpoint ${OUT}/two/model.safetensors
                        --device cpu --out ${OUT}/samples
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 60)
string(FIND "${err}" "only `latent train` and `latent eval` run across processes" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "latent sample ran as several processes (${rc}): ${err}")
endif()

# latent eval shared by 2 ranks: printed once, with one process's numbers (the same leading
# digits: the sums differ in their rounding only).
set(eval_args eval --checkpoint ${OUT}/two/model.safetensors --limit 300 --ll-k 20
    --ll-examples 50 --device cpu --seed 4)
execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${eval_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE shared ERROR_VARIABLE err TIMEOUT 120)
execute_process(COMMAND ${CLI} ${eval_args}
                RESULT_VARIABLE rc1 OUTPUT_VARIABLE alone ERROR_VARIABLE err1 TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT rc1 EQUAL 0)
  message(FATAL_ERROR "latent eval failed (${rc}, ${rc1}): ${err}${err1}")
endif()
string(REGEX MATCHALL "\"test_elbo\"" printed "${shared}")
list(LENGTH printed n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "latent eval of 2 ranks printed ${n} results: ${shared}")
endif()
foreach(key test_elbo test_log_likelihood test_recon_nll)
  string(JSON a GET "${shared}" ${key})
  string(JSON b GET "${alone}" ${key})
  string(SUBSTRING "${a}" 0 6 a6)
  string(SUBSTRING "${b}" 0 6 b6)
  if(NOT a6 STREQUAL b6)
    message(FATAL_ERROR "latent eval's ${key} is ${a} across 2 ranks but ${b} in one process")
  endif()
endforeach()
string(JSON ws GET "${shared}" world_size)
if(NOT ws EQUAL 2)
  message(FATAL_ERROR "latent eval of 2 ranks reports world_size ${ws}")
endif()
# The checkpoint named by another path on each rank is the same model.
list(REMOVE_ITEM eval_args --checkpoint ${OUT}/two/model.safetensors)
execute_process(COMMAND ${MPIRUN} -np 1 -wdir ${OUT} ${CLI} ${eval_args}
                        --checkpoint two/model.safetensors : -np 1 ${CLI} ${eval_args}
                        --checkpoint ${OUT}/two/model.safetensors
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "latent eval refused one checkpoint named two ways (${rc}): ${err}")
endif()
