# `cmake --install` puts the libraries, the headers (under include/latent, keeping the
# kernels/ core/ models/ folders) and a package config exporting latent::latent.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LATENT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/latent")

install(TARGETS latent latent_kernels latent_core latent_models
        EXPORT latentTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/latent)
# The communication plugins core/dist loads at run time (beside the libraries, where it looks).
foreach(plugin latent_mpi_plugin latent_nccl_plugin)
  if(TARGET ${plugin})
    install(TARGETS ${plugin} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endforeach()
foreach(dir kernels core models)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/latent/${dir}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT latentTargets NAMESPACE latent:: DESTINATION ${LATENT_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/latentConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/latentConfig.cmake
                              INSTALL_DESTINATION ${LATENT_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/latentConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/latentConfig.cmake ${PROJECT_BINARY_DIR}/latentConfigVersion.cmake
        DESTINATION ${LATENT_INSTALL_CMAKEDIR})
