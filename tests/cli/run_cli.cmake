# The latent tool as a user runs it: a short training run writes every promised file; a usage error
# exits 2; missing data exits 1 with a message naming the folder.
# -DCLI=<path to latent> -DOUT=<scratch folder>
file(REMOVE_RECURSE ${OUT})
include(${CMAKE_CURRENT_LIST_DIR}/interrupted.cmake)
set(have_data FALSE)
if(EXISTS /usr/share/datasets/fashion-mnist OR DEFINED ENV{LATENT_FASHION_MNIST})
  set(have_data TRUE)
endif()

if(have_data)
  # Links planted at the old fixed temporary names and a stale temporary file of a gone process:
  # the victim stays untouched, the stale file goes.
  file(MAKE_DIRECTORY ${OUT})
  file(WRITE ${OUT}/victim "precious")
  file(CREATE_LINK ${OUT}/victim ${OUT}/summary.json.tmp SYMBOLIC)
  file(CREATE_LINK ${OUT}/victim ${OUT}/samples.png.tmp SYMBOLIC)
  file(WRITE ${OUT}/metrics.csv.tmp.999999999.0 "stale")
  execute_process(COMMAND ${CLI} train --epochs 2 --limit 400 --test-limit 200 --hidden 64
                          --latent 4 --ll-k 5 --ll-examples 20 --device cpu --out ${OUT}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "latent train failed (${rc}): ${err}")
  endif()
  foreach(f model.safetensors metrics.csv summary.json samples.png reconstructions.png interpolations.png
            traversals.png latent_scatter.png loss.png report.html)
    if(NOT EXISTS ${OUT}/${f})
      message(FATAL_ERROR "latent train did not write ${f}")
    endif()
  endforeach()
  # report.html shows every picture the run drew: each file it references exists, and every
  # picture of the run is referenced.
  file(READ ${OUT}/report.html report)
  string(REGEX MATCHALL "src=\"[^\"]+\"" refs "${report}")
  list(LENGTH refs nrefs)
  if(nrefs LESS 6)
    message(FATAL_ERROR "report.html references ${nrefs} pictures, expected 6")
  endif()
  foreach(ref ${refs})
    string(REGEX REPLACE "src=\"([^\"]+)\"" "\\1" f "${ref}")
    if(NOT EXISTS ${OUT}/${f})
      message(FATAL_ERROR "report.html references ${f}, which does not exist")
    endif()
  endforeach()
  if(NOT report MATCHES "Ankle boot" OR NOT report MATCHES "nats per example")
    message(FATAL_ERROR "report.html lacks the class names or the loss curves' units")
  endif()
  file(READ ${OUT}/run.json run)
  string(JSON status GET "${run}" status)
  if(NOT status STREQUAL "finished")
    message(FATAL_ERROR "run.json says ${status}: ${run}")
  endif()
  # A run ended by SIGTERM says so in run.json, with the signal and how to go on: after its last
  # finished epoch, or, before its first, that there is nothing to resume.
  set(LATENT_INTERRUPT_AFTER "state-*.safetensors")
  latent_expect_interrupted(${OUT}/killed
                            "continues it after epoch [1-9][0-9]*, the last.*\"processes\": 1"
                            ${CLI} train --epochs 100000 --limit 400 --test-limit 50 --hidden 16
                            --latent 2 --ll-k 0 --device cpu --out ${OUT}/killed)
  unset(LATENT_INTERRUPT_AFTER)
  latent_expect_interrupted(${OUT}/killed-early "no epoch had finished, so there is nothing to resume"
                            ${CLI} train --epochs 1 --hidden 2048,2048 --latent 2 --ll-k 0
                            --device cpu --out ${OUT}/killed-early)
  # A folder a run still writes is refused to another run, --overwrite or not; once that run was
  # killed without a record (SIGKILL), another run is refused with what happened and how to go on.
  execute_process(COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/in_use.sh ${OUT}/in-use ${CLI} train
                          --epochs 100000 --limit 400 --test-limit 50 --hidden 16 --latent 2
                          --ll-k 0 --device cpu
                  RESULT_VARIABLE rc OUTPUT_VARIABLE said ERROR_VARIABLE err TIMEOUT 120)
  if(NOT rc EQUAL 0
     OR NOT said MATCHES "in-use is in use: the run in it still runs \\(process [0-9]+ on this machine"
     OR NOT said MATCHES "its run.json says \"running\", but its process [0-9]+ is gone"
     OR NOT said MATCHES "`latent train --resume [^ ]*in-use --epochs <its total>` to continue it after epoch [1-9]")
    message(FATAL_ERROR "a folder in use, or one whose run was killed, was not told apart (${rc}): ${said}${err}")
  endif()
  # Another run into the same folder is refused unless --overwrite says so.
  execute_process(COMMAND ${CLI} train --epochs 1 --limit 200 --test-limit 50 --hidden 16
                          --latent 2 --ll-k 0 --device cpu --out ${OUT}/again RESULT_VARIABLE rc
                  OUTPUT_QUIET ERROR_QUIET)
  execute_process(COMMAND ${CLI} train --epochs 1 --limit 200 --test-limit 50 --hidden 16
                          --latent 2 --ll-k 0 --device cpu --out ${OUT}/again
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "holds another run's files .*--overwrite")
    message(FATAL_ERROR "a second run into one folder was not refused (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} train --epochs 1 --limit 200 --test-limit 50 --hidden 16
                          --latent 2 --ll-k 0 --device cpu --out ${OUT}/again --overwrite
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "--overwrite did not replace the earlier run (${rc}): ${err}")
  endif()
  file(READ ${OUT}/victim victim)
  if(NOT victim STREQUAL "precious" OR EXISTS ${OUT}/metrics.csv.tmp.999999999.0)
    message(FATAL_ERROR "a planted link was followed or a stale temporary file was kept")
  endif()
  file(STRINGS ${OUT}/metrics.csv rows)
  list(LENGTH rows n)
  if(NOT n EQUAL 3)
    message(FATAL_ERROR "metrics.csv should have a header and 2 epochs, has ${n} lines")
  endif()
  if(NOT out MATCHES "\"test_elbo\": -[0-9]")
    message(FATAL_ERROR "summary has no negative test ELBO: ${out}")
  endif()
  # The saved model alone is enough to sample and evaluate.
  execute_process(COMMAND ${CLI} sample --checkpoint ${OUT}/model.safetensors --n 8 --device cpu
                          --out ${OUT}/samples RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${OUT}/samples/samples.png OR NOT EXISTS ${OUT}/samples/samples.npy)
    message(FATAL_ERROR "latent sample failed (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} eval --checkpoint ${OUT}/model.safetensors --limit 100 --ll-k 5
                          --ll-examples 10 --device cpu
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "\"test_log_likelihood\": -[0-9]")
    message(FATAL_ERROR "latent eval failed (${rc}): ${err} ${out}")
  endif()
  # A path with a quote and a backslash still gives valid JSON, naming the path.
  set(odd "${OUT}/q\"uote\\back.safetensors")
  file(COPY_FILE ${OUT}/model.safetensors "${odd}")
  execute_process(COMMAND ${CLI} eval --checkpoint "${odd}" --limit 50 --ll-k 0 --device cpu
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(JSON path ERROR_VARIABLE json_error GET "${out}" checkpoint)
  if(NOT rc EQUAL 0 OR json_error OR NOT path STREQUAL "${odd}")
    message(FATAL_ERROR "eval's JSON for an odd path is wrong (${rc}, ${json_error}): ${out}")
  endif()
  file(READ ${OUT}/summary.json summary)
  string(JSON elbo ERROR_VARIABLE json_error GET "${summary}" test_elbo)
  if(json_error)
    message(FATAL_ERROR "summary.json does not parse: ${json_error}")
  endif()
endif()

# Bad flag values are usage errors (exit 2) naming the flag; an unknown command is named.
foreach(case "train;--lr;nan" "train;--beta;nan" "train;--likelihood;foo" "train;--seed;-1"
        "train;--seed;18446744073709551616" "train;--seed;010" "train;--hidden;512,,256"
        "train;--ll-k;6000" "eval;--checkpoint;x;--ll-k;6000" "sample;--checkpoint;x;--n;5000")
  list(GET case -2 flag)
  execute_process(COMMAND ${CLI} ${case} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  string(FIND "${err}" "${flag}" named)
  if(NOT rc EQUAL 2 OR named EQUAL -1)
    message(FATAL_ERROR "latent ${case}: expected exit 2 naming ${flag}, got ${rc}: ${err}")
  endif()
endforeach()
execute_process(COMMAND ${CLI} frobnicate RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "unknown command 'frobnicate'")
  message(FATAL_ERROR "an unknown command should exit 2 naming it, got ${rc}: ${err}")
endif()
execute_process(COMMAND ${CLI} eval --checkpoint ${OUT}/missing.safetensors --device cpu
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "missing.safetensors")
  message(FATAL_ERROR "a missing checkpoint should exit 1 naming the file, got ${rc}: ${err}")
endif()

execute_process(COMMAND ${CLI} train --epochs 0 RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "a usage error should exit 2, got ${rc}")
endif()
execute_process(COMMAND ${CLI} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "no subcommand should exit 2, got ${rc}")
endif()
execute_process(COMMAND ${CLI} train --data ${OUT}/no-such-folder --device cpu --out ${OUT}/x
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "no-such-folder")
  message(FATAL_ERROR "missing data should exit 1 naming the folder, got ${rc}: ${err}")
endif()
message(STATUS "cli ok")
