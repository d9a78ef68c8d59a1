# Every model of the family from the command line: each trains briefly, writes its files (samples
# only for the generative ones), and is rebuilt from its checkpoint alone by eval (and by sample,
# which refuses a deterministic autoencoder); a parameter of another model is a usage error.
# -DCLI=<path to latent> -DOUT=<scratch folder>
file(REMOVE_RECURSE ${OUT})
if(NOT EXISTS /usr/share/datasets/fashion-mnist AND NOT DEFINED ENV{LATENT_FASHION_MNIST})
  message(STATUS "no Fashion-MNIST: only the usage errors are checked")
else()
  set(common --epochs 1 --limit 300 --test-limit 100 --latent 4 --device cpu)
  foreach(case "ae;--hidden;32;--optimizer;sgd;--momentum;0.9;--lr;0.01;--activation;tanh"
          "linear-ae;--optimizer;adamw;--weight-decay;0.001;--grad-clip;10" "dae;--hidden;32;--corruption;gaussian;--corruption-level;0.2"
          "sae;--hidden;32;--sparsity;kl;--rho;0.1;--sparsity-weight;0.5" "sae;--hidden;32"
          "cae;--hidden;32;--lambda;0.05" "cae;--hidden;32;--contractive;deep"
          "vae;--hidden;32;--ll-k;5;--ll-examples;10;--binarize;static"
          "beta-vae;--hidden;32;--beta;4;--ll-k;0;--binarize"
          "iwae;--hidden;32;--k;3;--ll-k;0"
          "vae;--hidden;32;--likelihood;continuous_bernoulli;--ll-k;5;--ll-examples;5")
    list(POP_FRONT case model)
    string(REPLACE ";" "_" dir "${model}${case}")
    set(out_dir ${OUT}/${dir})
    execute_process(COMMAND ${CLI} train --model ${model} ${case} ${common} --out ${out_dir}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE summary ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "latent train --model ${model} ${case} failed (${rc}): ${err}")
    endif()
    set(files model.safetensors metrics.csv summary.json run.json reconstructions.png
              interpolations.png traversals.png latent_scatter.png loss.png report.html)
    set(generative FALSE)
    if(model MATCHES "vae$" OR model STREQUAL "iwae")
      set(generative TRUE)
      list(APPEND files samples.png)
    elseif(EXISTS ${out_dir}/samples.png)
      message(FATAL_ERROR "${model} is not generative but wrote samples.png")
    endif()
    foreach(f ${files})
      if(NOT EXISTS ${out_dir}/${f})
        message(FATAL_ERROR "latent train --model ${model} did not write ${f}")
      endif()
    endforeach()
    string(JSON meaning ERROR_VARIABLE json_error3 GET "${summary}" likelihood_meaning)
    if(json_error3 OR (case MATCHES "--binarize" AND NOT meaning MATCHES "discrete log-likelihoods")
       OR (case MATCHES "continuous_bernoulli" AND NOT meaning MATCHES "a density on")
       OR (NOT case MATCHES "--binarize|continuous_bernoulli" AND model MATCHES "vae"
           AND NOT meaning MATCHES "not normalized"))
      message(FATAL_ERROR "the summary of ${model} ${case} misnames its likelihood: ${meaning}")
    endif()
    string(JSON name ERROR_VARIABLE json_error GET "${summary}" model)
    string(JSON nll ERROR_VARIABLE json_error2 GET "${summary}" test_recon_nll)
    if(json_error OR json_error2 OR NOT name STREQUAL model)
      message(FATAL_ERROR "the summary of ${model} is wrong (${json_error}${json_error2}): ${summary}")
    endif()
    # The checkpoint alone rebuilds the model.
    execute_process(COMMAND ${CLI} eval --checkpoint ${out_dir}/model.safetensors --limit 50
                            --ll-k 0 --device cpu
                    RESULT_VARIABLE rc OUTPUT_VARIABLE js ERROR_VARIABLE err)
    string(JSON kind ERROR_VARIABLE json_error GET "${js}" model)
    if(NOT rc EQUAL 0 OR json_error)
      message(FATAL_ERROR "latent eval of a ${model} failed (${rc}): ${err} ${js}")
    endif()
    # encode, reconstruct, interpolate and traverse work from the checkpoint for every model.
    foreach(cmd "encode;codes.npy;labels.npy" "reconstruct;reconstructions.npy;reconstructions.png"
            "interpolate;interpolation.npy;interpolation.png"
            "traverse;traversals.npy;traversals.png;traversals.json")
      list(POP_FRONT cmd name)
      execute_process(COMMAND ${CLI} ${name} --checkpoint ${out_dir}/model.safetensors --limit 50
                              --device cpu --out ${out_dir}/${name}
                      RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "latent ${name} of a ${model} failed (${rc}): ${err}")
      endif()
      foreach(f ${cmd})
        if(NOT EXISTS ${out_dir}/${name}/${f})
          message(FATAL_ERROR "latent ${name} of a ${model} did not write ${f}")
        endif()
      endforeach()
    endforeach()
    file(READ ${out_dir}/traverse/traversals.json trav)
    string(JSON ndims ERROR_VARIABLE json_error LENGTH "${trav}" dimensions)
    if(json_error OR NOT ndims EQUAL 4)
      message(FATAL_ERROR "traversals.json of a ${model} should name its 4 dimensions: ${trav}")
    endif()
    execute_process(COMMAND ${CLI} sample --checkpoint ${out_dir}/model.safetensors --n 4
                            --device cpu --out ${out_dir}/drawn
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(generative AND NOT rc EQUAL 0)
      message(FATAL_ERROR "latent sample of a ${model} failed (${rc}): ${err}")
    endif()
    if(NOT generative AND (NOT rc EQUAL 1 OR NOT err MATCHES "no prior to sample"))
      message(FATAL_ERROR "latent sample of a ${model} should be refused (${rc}): ${err}")
    endif()
  endforeach()
  # The user's own data: a .npy written by latent itself ([30, 784] float32, drawn as 28x28) and
  # a CSV of 4x4 "images", each trained on, evaluated and encoded.
  execute_process(COMMAND ${CLI} train --data ${out_dir}/reconstruct/reconstructions.npy
                          --val-split 0.2 --epochs 1 --latent 2 --hidden 16 --ll-k 0 --device cpu
                          --out ${OUT}/own_npy
                  RESULT_VARIABLE rc OUTPUT_VARIABLE summary ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${OUT}/own_npy/traversals.png
     OR NOT err MATCHES "24 training and 6 test examples of 784 values")
    message(FATAL_ERROR "training on a .npy file failed (${rc}): ${err}")
  endif()
  set(csv "")
  foreach(i RANGE 39)
    math(EXPR a "${i} % 10")
    math(EXPR b "9 - ${i} % 10")
    string(APPEND csv "0.${a},0.${b},0.5,0,0.${a},0.${b},0.5,1,0.${a},0.${b},0.5,0,0.${a},0.${b},0.5,1\n")
  endforeach()
  file(WRITE ${OUT}/own.csv "${csv}")
  execute_process(COMMAND ${CLI} train --model ae --data ${OUT}/own.csv --val-split 0.25
                          --image 4x4 --epochs 2 --latent 2 --hidden 8 --device cpu
                          --out ${OUT}/own_csv
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${OUT}/own_csv/traversals.png)
    message(FATAL_ERROR "training on a CSV file failed (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} eval --checkpoint ${OUT}/own_csv/model.safetensors
                          --data ${OUT}/own.csv --device cpu
                  RESULT_VARIABLE rc OUTPUT_VARIABLE js ERROR_VARIABLE err)
  string(JSON n ERROR_VARIABLE json_error GET "${js}" test_images)
  if(NOT rc EQUAL 0 OR json_error OR NOT n EQUAL 40)
    message(FATAL_ERROR "latent eval on a CSV file failed (${rc}): ${err} ${js}")
  endif()
  execute_process(COMMAND ${CLI} encode --checkpoint ${OUT}/own_csv/model.safetensors
                          --data ${OUT}/own.csv --device cpu --out ${OUT}/own_csv/encode
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${OUT}/own_csv/encode/codes.npy)
    message(FATAL_ERROR "latent encode on a CSV file failed (${rc}): ${err}")
  endif()
  # Values outside [0, 1] under a Bernoulli likelihood: refused, suggesting a Gaussian one.
  file(WRITE ${OUT}/wide.csv "0,2\n1,3\n0.5,-1\n0,0\n1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n")
  execute_process(COMMAND ${CLI} train --data ${OUT}/wide.csv --device cpu --out ${OUT}/wide
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "wide.csv has values from -1 to 6.*--likelihood gaussian")
    message(FATAL_ERROR "out-of-range data under a Bernoulli likelihood (${rc}): ${err}")
  endif()
  # --resume: a run stopped after 2 epochs and resumed to 3 (the flags left out: the run's own)
  # ends with the very model file of an uninterrupted 3-epoch run (the training states of the last
  # two epochs are kept); resuming with another flag is refused naming it, another --model first.
  set(rflags --limit 300 --test-limit 100 --hidden 16 --latent 3 --ll-k 0 --device cpu --binarize)
  execute_process(COMMAND ${CLI} train ${rflags} --epochs 3 --out ${OUT}/whole
                  RESULT_VARIABLE rc1 OUTPUT_QUIET ERROR_QUIET)
  execute_process(COMMAND ${CLI} train ${rflags} --epochs 2 --out ${OUT}/halves
                  RESULT_VARIABLE rc2 OUTPUT_QUIET ERROR_QUIET)
  execute_process(COMMAND ${CLI} train --ll-k 0 --device cpu --epochs 3 --resume ${OUT}/halves
                  RESULT_VARIABLE rc3 OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0 OR NOT rc3 EQUAL 0 OR NOT err MATCHES "resuming after epoch 2")
    message(FATAL_ERROR "the resume runs failed (${rc1} ${rc2} ${rc3}): ${err}")
  endif()
  file(SHA256 ${OUT}/whole/model.safetensors whole)
  file(SHA256 ${OUT}/halves/model.safetensors halves)
  if(NOT whole STREQUAL halves)
    message(FATAL_ERROR "a resumed run's model differs from the uninterrupted run's")
  endif()
  if(EXISTS ${OUT}/halves/state-1.safetensors OR NOT EXISTS ${OUT}/halves/state-2.safetensors
     OR NOT EXISTS ${OUT}/halves/state-3.safetensors)
    message(FATAL_ERROR "a run should keep the training states of its last two epochs")
  endif()
  file(STRINGS ${OUT}/halves/metrics.csv rows)
  list(LENGTH rows n)
  if(NOT n EQUAL 4)
    message(FATAL_ERROR "the resumed run's metrics.csv should hold 3 epochs, has ${n} lines")
  endif()
  execute_process(COMMAND ${CLI} train ${rflags} --epochs 5 --lr 0.01 --resume ${OUT}/halves
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "--lr is '0.01' here but '0.001' in the run being resumed")
    message(FATAL_ERROR "resuming with another --lr should be refused naming it (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} train --epochs 5 --model ae --resume ${OUT}/halves
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "--model is 'ae' here but 'vae' in the run being resumed"
     OR err MATCHES "data from")
    message(FATAL_ERROR "resuming as another model should be refused at once, naming --model (${rc}): ${err}")
  endif()
  # A flag of another model than the run's: a usage error, saying which flags are the run's.
  execute_process(COMMAND ${CLI} train --k 3 --epochs 5 --resume ${OUT}/halves
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "--k: a parameter of iwae, not of --model vae")
    message(FATAL_ERROR "resuming a vae with --k should name --k an iwae's flag (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} train --ll-k 0 --epochs 3 --resume ${OUT}/own_csv
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "--ll-k: a parameter of vae, beta-vae, iwae, not of --model ae"
     OR NOT err MATCHES "the flags left out are those of the run --resume continues: [^\n]*--model ae")
    message(FATAL_ERROR "resuming an ae with a VAE's flag should say the run is an ae (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} train --limit 300 --test-limit 100 --hidden 16 --latent 3
                          --device cpu --binarize --epochs 3 --resume ${OUT}/own_csv
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "--resume: --[a-z-]+ is '.*' here but '.*' in the run being resumed")
    message(FATAL_ERROR "resuming another run's folder should name the differing flag (${rc}): ${err}")
  endif()
  # The data are compared by their contents: a copy at another path is the run's data, other
  # values are refused.
  file(COPY_FILE ${OUT}/own.csv ${OUT}/own_copy.csv)
  string(REPLACE "0.5," "0.6," other "${csv}")
  file(WRITE ${OUT}/own_other.csv "${other}")
  execute_process(COMMAND ${CLI} train --data ${OUT}/own_other.csv --epochs 3
                          --resume ${OUT}/own_csv
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "the training examples \\(--data\\) differ from those of the run being resumed")
    message(FATAL_ERROR "resuming on other data should be refused (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CLI} train --data ${OUT}/own_copy.csv --epochs 3 --device cpu
                          --resume ${OUT}/own_csv
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT err MATCHES "resuming after epoch 2")
    message(FATAL_ERROR "resuming on a copy of the run's data failed (${rc}): ${err}")
  endif()
  # A diverging run stops at the step whose loss is not finite, says so, and leaves no model or
  # summary behind; run.json says it failed.
  execute_process(COMMAND ${CLI} train --lr 1e30 ${common} --hidden 32 --ll-k 0
                          --out ${OUT}/diverged
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "the loss is not finite at global step [0-9]+ \\(epoch 1")
    message(FATAL_ERROR "a diverging run should stop naming its step (${rc}): ${err}")
  endif()
  if(EXISTS ${OUT}/diverged/model.safetensors OR EXISTS ${OUT}/diverged/summary.json)
    message(FATAL_ERROR "a diverged run wrote a model or a summary")
  endif()
  file(READ ${OUT}/diverged/run.json run)
  string(JSON status GET "${run}" status)
  if(NOT status STREQUAL "failed")
    message(FATAL_ERROR "run.json of a diverged run says ${status}")
  endif()
  # An image index beyond the data is named.
  execute_process(COMMAND ${CLI} traverse --checkpoint ${out_dir}/model.safetensors --limit 20
                          --index 20 --device cpu --out ${OUT}/never
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "--index 20 is not an image of the data")
    message(FATAL_ERROR "an index beyond the data should exit 1 naming it (${rc}): ${err}")
  endif()
endif()

# A parameter of another model: exit 2, naming the flag and the models it belongs to.
foreach(case "vae;--lambda;0.5;cae" "ae;--k;3;iwae" "linear-ae;--hidden;64;ae" "dae;--beta;2;vae"
        "sae;--rho;0.1;kl" "cae;--corruption;gaussian;dae" "ae;--ll-k;10;vae"
        "vae;--momentum;0.9;sgd" "linear-ae;--activation;tanh;ae" "vae;--binarize;often;dynamic")
  list(GET case 0 model)
  list(GET case 1 flag)
  list(GET case 2 value)
  list(GET case 3 owner)
  execute_process(COMMAND ${CLI} train --model ${model} ${flag} ${value} --device cpu
                          --out ${OUT}/never
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  string(FIND "${err}" "${flag}" named)
  string(FIND "${err}" "${owner}" owner_named)
  if(NOT rc EQUAL 2 OR named EQUAL -1 OR owner_named EQUAL -1)
    message(FATAL_ERROR "train --model ${model} ${flag}: expected exit 2 naming ${flag} and "
                        "${owner}, got ${rc}: ${err}")
  endif()
endforeach()
message(STATUS "cli models ok")
