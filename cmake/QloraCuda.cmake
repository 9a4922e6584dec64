# CUDA detection. kernels/ is compiled by nvcc for explicit architectures when
# CUDA is enabled (CI always enables it: nothing here can run it, but it must
# compile). Users without CUDA get the CPU build.
set(QLORA_CUDA_ENABLED OFF)
if(QLORA_ENABLE_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(QLORA_CUDA_ENABLED ON)
  endif()
elseif(QLORA_ENABLE_CUDA)
  set(QLORA_CUDA_ENABLED ON)
endif()
if(QLORA_CUDA_ENABLED)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${QLORA_CUDA_ARCHS})
  endif()
  enable_language(CUDA)
  # CMake < 3.26 does not know nvcc's C++20 flag and refuses CUDA_STANDARD 20
  # at generate time ("requires the language dialect CUDA20"); Debian 12 ships
  # 3.25. nvcc >= 12 accepts -std=c++20, so tell CMake the flag.
  if(CMAKE_VERSION VERSION_LESS 3.26 AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "qlora: CUDA kernels enabled for sm ${CMAKE_CUDA_ARCHITECTURES}")
else()
  message(STATUS "qlora: CUDA kernels disabled (no nvcc found or QLORA_ENABLE_CUDA=OFF)")
endif()
