# Writes the header that names the commit the benches report (bench/CMakeLists.txt runs it at every
# build, so a new commit is reported without configuring again; the header is only rewritten when
# its text changes). A tree with changes to tracked files gets "-dirty" after the hash.
# -DSOURCE_DIR=<repository> -DOUT=<header> [-DFIXED=<commit to report as given>]
if(FIXED)
  set(commit "${FIXED}")
else()
  execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT commit)
    set(commit "unknown")
  else()
    execute_process(COMMAND git status --porcelain --untracked-files=no
                    WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE changes ERROR_QUIET
                    RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND changes)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
file(WRITE "${OUT}.new" "#define LATENT_COMMIT \"${commit}\"\n")
configure_file("${OUT}.new" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.new")
