# Warnings and machine flags for *our* targets only; users of the header-only
# library keep their own flags.
function(qlora_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(QLORA_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
endfunction()
