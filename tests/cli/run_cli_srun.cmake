# The latent tool under Slurm's srun, where a Slurm cluster answers (sinfo lists a node that
# takes work: the private one slurm_local.sh starts, named by SLURM_CONF; elsewhere the test says
# so and is skipped): 2 tasks joined through PMIx train as one
# and write one set of files, the model of `mpirun -np 2` bit for bit; a failing task ends the
# step within 30 seconds with its message; scancel is recorded in run.json, and the next run in
# the folder of a step Slurm killed says why it ended; tasks
# of a step with no MPI interface (srun without --mpi=pmix) run alone, a world of one each, and
# the first says how to join them.
# -DCLI=<path to latent> -DOUT=<scratch folder> -DSRUN=<srun> -DSINFO=<sinfo> -DSCANCEL=<scancel>
# [-DMPIRUN=<mpirun and its options, a list>]
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/interrupted.cmake)
if(DEFINED ENV{SLURM_CONF} AND NOT EXISTS "$ENV{SLURM_CONF}")
  message(STATUS "no Slurm cluster takes work here ($ENV{SLURM_CONF} does not exist): skipped")
  return()
endif()
execute_process(COMMAND ${SINFO} -h -o %t RESULT_VARIABLE rc OUTPUT_VARIABLE states
                ERROR_VARIABLE err TIMEOUT 20)
if(NOT rc EQUAL 0 OR NOT states MATCHES "(^|\n)(idle|mix)(\n|$)")
  message(STATUS "no Slurm cluster takes work here (sinfo: ${rc} ${states}${err}): skipped")
  return()
endif()
if(NOT (EXISTS /usr/share/datasets/fashion-mnist OR DEFINED ENV{LATENT_FASHION_MNIST}))
  message(STATUS "Fashion-MNIST not installed: nothing to train on")
  return()
endif()
file(MAKE_DIRECTORY ${OUT})
# A step that cannot start at once is not waited for; one left running ends within 2 minutes; 2
# tasks start on a machine of one core too.
set(srun ${SRUN} --ntasks=2 --nodes=1 --overcommit --time=2 --immediate=20)
set(args train --epochs 1 --limit 512 --test-limit 200 --hidden 32 --latent 4 --ll-k 0
    --device cpu --seed 3)

# Two tasks joined through PMIx: one run of two processes.
execute_process(COMMAND ${srun} --mpi=pmix ${CLI} ${args} --out ${OUT}/pmix
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "srun --mpi=pmix latent train failed (${rc}): ${out}${err}")
endif()
file(READ ${OUT}/pmix/summary.json summary)
foreach(want "\"world_size\": 2" "\"global_batch\": 128" "\"batch_per_rank\": 64")
  string(FIND "${summary}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "summary.json of srun --mpi=pmix lacks ${want}: ${summary}")
  endif()
endforeach()
if(MPIRUN)
  execute_process(COMMAND ${MPIRUN} -np 2 ${CLI} ${args} --out ${OUT}/mpirun
                  RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 120)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/pmix/model.safetensors
                          ${OUT}/mpirun/model.safetensors RESULT_VARIABLE differ)
  if(NOT rc EQUAL 0 OR NOT differ EQUAL 0)
    message(FATAL_ERROR "srun --mpi=pmix and mpirun -np 2 wrote different models (${rc}): ${err}")
  endif()
endif()

# A task that fails (its data file does not exist) ends the step, fast, with its message.
file(MAKE_DIRECTORY ${OUT}/wa ${OUT}/empty)
string(REPEAT "0.1,0.5,0.25,1\n0.7,0.5,0.25,0\n" 20 rows)
file(WRITE ${OUT}/wa/x.csv "${rows}")
file(WRITE ${OUT}/wa/t.csv "0.1,0.2,0.3,0.4\n0.5,0.5,0.5,0.5\n")
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${srun} --mpi=pmix sh -c "cd ${OUT}/$([ $SLURM_PROCID = 0 ] && echo wa \
|| echo empty) && exec ${CLI} train --data x.csv --test-data ${OUT}/wa/t.csv --hidden 4 \
--latent 2 --batch 8 --epochs 1 --ll-k 0 --device cpu --out ${OUT}/csv"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
string(TIMESTAMP t1 "%s")
math(EXPR took "${t1} - ${t0}")
if(rc EQUAL 0 OR took GREATER 30 OR NOT err MATCHES "rank 1 of 2.*x.csv")
  message(FATAL_ERROR "a failing task gave status ${rc} after ${took} s: ${out}${err}")
endif()

# scancel (as a time limit) sends the tasks SIGTERM, and SIGKILL after KillWait; rank 0 records
# it, the other rank ending a second later (Slurm kills the whole step at once when a rank is
# gone). srun itself, sent SIGTERM, kills its tasks with SIGKILL: nothing to record then.
string(RANDOM LENGTH 12 job)
set(job latent-test-${job})
set(LATENT_INTERRUPT_WITH "${SCANCEL} --name=${job}")
latent_expect_interrupted(${OUT}/killed "\"processes\": 2" ${srun} --job-name=${job} --mpi=pmix
                          ${CLI} train
                          --epochs 100000 --limit 400 --test-limit 50 --hidden 16 --latent 2
                          --ll-k 0 --device cpu --out ${OUT}/killed)

# A rank that dies (SIGKILL here; a failing rank's MPI_Abort ends the step alike): Slurm kills the
# step with SIGKILL at once, so rank 0 leaves "running"; the next run in the folder says why.
execute_process(COMMAND ${CMAKE_COMMAND} -E env LATENT_INTERRUPT_RANK=1 LATENT_INTERRUPT_SIGNAL=KILL
                        LATENT_INTERRUPT_UNRECORDED=1 sh ${_latent_interrupt_sh} ${OUT}/lost
                        ${srun} --mpi=pmix ${CLI} train --epochs 100000 --limit 400 --test-limit 50
                        --hidden 16 --latent 2 --ll-k 0 --device cpu --out ${OUT}/lost
                RESULT_VARIABLE rc OUTPUT_VARIABLE run ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT run MATCHES "\"status\": \"running\"")
  message(FATAL_ERROR "a rank killed under srun (${rc}): ${run}${err}")
endif()
execute_process(COMMAND ${CLI} train --epochs 1 --limit 400 --test-limit 50 --hidden 16 --latent 2
                        --ll-k 0 --device cpu --out ${OUT}/lost
                RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 120)
if(rc EQUAL 0 OR NOT err MATCHES "is gone .*a job of 2 processes under srun ends so when a rank")
  message(FATAL_ERROR "the run after a rank killed under srun did not say why it ended: ${err}")
endif()

# No MPI interface: each task is a world of one (a sweep of runs, here each into its own folder),
# and the first task says how to make them one job.
list(JOIN args " " words)
execute_process(COMMAND ${srun} --mpi=none sh -c "exec ${CLI} ${words} --out ${OUT}/alone-$SLURM_PROCID"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "2 tasks of srun each alone failed (${rc}): ${out}${err}")
endif()
string(REGEX MATCHALL "srun started 2 tasks \\(SLURM_STEP_NUM_TASKS=2\\) with no MPI interface"
       notes "${err}")
list(LENGTH notes n)
if(NOT n EQUAL 1 OR NOT err MATCHES "srun --mpi=pmix")
  message(FATAL_ERROR "tasks alone were told ${n} times how to join them: ${err}")
endif()
foreach(task 0 1)
  file(READ ${OUT}/alone-${task}/summary.json summary)
  string(FIND "${summary}" "\"world_size\": 1" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "task ${task} of srun alone did not train alone: ${summary}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/alone-0/model.safetensors
                        ${OUT}/alone-1/model.safetensors RESULT_VARIABLE differ)
if(NOT differ EQUAL 0)
  message(FATAL_ERROR "two tasks alone with one seed wrote different models")
endif()
