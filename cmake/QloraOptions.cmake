# Build options (style.md §2.1). Defaults: CPU build with apps and tests.
include(GNUInstallDirs)
option(QLORA_BUILD_APPS "Build the qlora command-line program" ${PROJECT_IS_TOP_LEVEL})
option(QLORA_BUILD_VARIANTS "Build the variant apps of the paper's configurations (apps/variants)" ${PROJECT_IS_TOP_LEVEL})
option(QLORA_BUILD_TESTS "Build the GoogleTest suite" ${PROJECT_IS_TOP_LEVEL})
option(QLORA_BUILD_BENCH "Build the Google Benchmark programs" ${PROJECT_IS_TOP_LEVEL})
option(QLORA_BUILD_FUZZ "Build libFuzzer targets (needs clang)" OFF)
option(QLORA_NATIVE "Compile our own binaries for this machine's CPU (-march=native)" ON)
set(QLORA_ENABLE_CUDA "AUTO" CACHE STRING "Compile kernels/ with nvcc: ON, OFF or AUTO (when nvcc is found)")
# Explicit architectures only: 'native' fails on builders without a GPU.
set(QLORA_CUDA_ARCHS "80;90" CACHE STRING "CUDA architectures for kernels/")
if(PROJECT_IS_TOP_LEVEL AND NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()
