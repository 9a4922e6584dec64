# qlora_add_variant(): compile one configuration of the method as its own app.
#
#   qlora_add_variant(NAME smollm2-135m-q4_k_m-r32
#                     PRESET Smollm2_135M QUANT Q4_K_M ATTN GQA RANK 32)
#
# builds `qlora-smollm2-135m-q4_k_m-r32`, whose main() is
#   variant_main<dispatch::Variant<preset::Smollm2_135M, quant::scheme::Q4_K_M,
#                                  model::attn::GQA, 32>>
# (apps/variants/variant_main.hpp): the template arguments are checked at
# compile time (the attention policy must be the preset's, the rank one of
# the compiled LoRARank instances), the model file at start-up. PRESET is a
# tag in include/qlora/dispatch/variant.hpp (Swallow8B, Elyza8B, Tanuki8B,
# Qwen25_7B, Qwen25_14B, Qwen25_05B, Smollm2_135M, Tiny).
set(QLORA_VARIANT_DIR ${CMAKE_CURRENT_LIST_DIR}/../apps/variants CACHE INTERNAL "")

function(qlora_add_variant)
  cmake_parse_arguments(V "" "NAME;PRESET;QUANT;ATTN;RANK" "" ${ARGN})
  foreach(field NAME PRESET QUANT ATTN RANK)
    if(NOT V_${field})
      message(FATAL_ERROR "qlora_add_variant: ${field} is required")
    endif()
  endforeach()
  if(NOT V_QUANT MATCHES "^(NF4|Q4_K_M|Q8_0)$")
    message(FATAL_ERROR "qlora_add_variant(${V_NAME}): QUANT must be NF4, Q4_K_M or Q8_0, not '${V_QUANT}'")
  endif()
  if(NOT V_ATTN MATCHES "^(MHA|GQA)$")
    message(FATAL_ERROR "qlora_add_variant(${V_NAME}): ATTN must be MHA or GQA, not '${V_ATTN}'")
  endif()
  if(NOT V_RANK MATCHES "^(16|32)$")
    message(FATAL_ERROR "qlora_add_variant(${V_NAME}): RANK must be 16 or 32, not '${V_RANK}'")
  endif()
  set(QLORA_VARIANT_NAME ${V_NAME})
  set(QLORA_VARIANT_PRESET ${V_PRESET})
  set(QLORA_VARIANT_QUANT ${V_QUANT})
  set(QLORA_VARIANT_ATTN ${V_ATTN})
  set(QLORA_VARIANT_RANK ${V_RANK})
  set(src ${CMAKE_CURRENT_BINARY_DIR}/variant_${V_NAME}.cpp)
  configure_file(${QLORA_VARIANT_DIR}/variant_main.cpp.in ${src} @ONLY)
  add_executable(qlora_variant_${V_NAME} ${src})
  target_include_directories(qlora_variant_${V_NAME} PRIVATE ${QLORA_VARIANT_DIR})
  set_target_properties(qlora_variant_${V_NAME} PROPERTIES OUTPUT_NAME qlora-${V_NAME}
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/apps/variants)
  target_link_libraries(qlora_variant_${V_NAME} PRIVATE qlora_commands)
  qlora_target_defaults(qlora_variant_${V_NAME})
  set_property(GLOBAL APPEND PROPERTY QLORA_VARIANT_TARGETS qlora_variant_${V_NAME})
endfunction()
