# `cmake --install` + find_package(qlora) support for the header-only target.
include(CMakePackageConfigHelpers)
install(DIRECTORY include/qlora DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS qlora EXPORT qloraTargets)
install(EXPORT qloraTargets NAMESPACE qlora:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qlora)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/qloraConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/qloraConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qlora)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/qloraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/qloraConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/qloraConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qlora)
