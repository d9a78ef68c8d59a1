# Decides whether the CPU's transcendental functions run through SLEEF (kernels/cpu_vmath.h).
#   LATENT_SLEEF=AUTO: on when SLEEF is found (Debian: libsleef-dev).
#   LATENT_SLEEF=ON:   required; configuration fails without it.
#   LATENT_SLEEF=OFF:  the C library's functions, element by element.
# Results: LATENT_WITH_SLEEF (ON/OFF), LATENT_SLEEF_INCLUDE_DIR, LATENT_SLEEF_LIBRARY.
set(LATENT_WITH_SLEEF OFF)
string(TOUPPER "${LATENT_SLEEF}" _latent_sleef_mode)
if(NOT _latent_sleef_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LATENT_SLEEF must be AUTO, ON or OFF, not '${LATENT_SLEEF}'")
endif()
if(NOT _latent_sleef_mode STREQUAL "OFF")
  find_path(LATENT_SLEEF_INCLUDE_DIR sleef.h)
  find_library(LATENT_SLEEF_LIBRARY NAMES sleef)
  if(LATENT_SLEEF_INCLUDE_DIR AND LATENT_SLEEF_LIBRARY)
    set(LATENT_WITH_SLEEF ON)
    message(STATUS "latent: CPU transcendentals through SLEEF (${LATENT_SLEEF_LIBRARY})")
  elseif(_latent_sleef_mode STREQUAL "ON")
    message(FATAL_ERROR "LATENT_SLEEF=ON but SLEEF was not found (sleef.h and libsleef): install "
                        "libsleef-dev, or configure with -DLATENT_SLEEF=OFF")
  else()
    message(STATUS "latent: SLEEF not found: the CPU transcendentals use the C library "
                   "(install libsleef-dev for the vectorized path)")
  endif()
endif()
