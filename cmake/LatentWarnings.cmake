# latent_target_warnings(target): the project's warning set, for C++ and for CUDA host code.
function(latent_target_warnings target)
  set(_cxx_warn -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wno-unknown-pragmas
      # Designated initializers (the config style of the API) leave members defaulted on purpose.
      -Wno-missing-field-initializers
      # GCC 12 reports false positives inside std::string concatenation.
      $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  if(LATENT_WERROR)
    list(APPEND _cxx_warn -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${_cxx_warn}>)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --expt-relaxed-constexpr>)
endfunction()
