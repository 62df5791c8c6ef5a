# libFuzzer targets, built from the library's sources so that the code
# under test is itself instrumented. clang only.
option(SWAPIO_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(SWAPIO_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  list(TRANSFORM SWAPIO_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/
       OUTPUT_VARIABLE fuzz_lib_sources)

  # The configuration parser.
  add_executable(fuzz_config ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.c
                 ${fuzz_lib_sources})
  target_include_directories(fuzz_config PRIVATE
    ${CMAKE_SOURCE_DIR}/include ${SWAPIO_PRIVATE_INCLUDES} ${LIBAIO_INCLUDE_DIR})
  target_compile_definitions(fuzz_config PRIVATE ${SWAPIO_DEFS} _GNU_SOURCE)
  target_compile_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_config ${SWAPIO_LIBS})
  add_test(NAME fuzz_config
           COMMAND fuzz_config -max_total_time=20 -max_len=512
                   -dict=${CMAKE_CURRENT_LIST_DIR}/fuzz_config.dict)
  # Each accepted input is saved and loaded once; tmpfs makes that cheap.
  if(IS_DIRECTORY /dev/shm)
    set(fuzz_config_env ENVIRONMENT TMPDIR=/dev/shm)
  endif()
  set_tests_properties(fuzz_config PROPERTIES TIMEOUT 120 LABELS fuzz
                       ${fuzz_config_env})

  # The store's log replay, from memory.
  add_executable(fuzz_store_index ${CMAKE_CURRENT_LIST_DIR}/fuzz_store_index.c
                 ${fuzz_lib_sources})
  target_include_directories(fuzz_store_index PRIVATE
    ${CMAKE_SOURCE_DIR}/include ${SWAPIO_PRIVATE_INCLUDES} ${LIBAIO_INCLUDE_DIR})
  target_compile_definitions(fuzz_store_index PRIVATE ${SWAPIO_DEFS}
                             _GNU_SOURCE)
  target_compile_options(fuzz_store_index PRIVATE -fsanitize=fuzzer,address)
  target_link_options(fuzz_store_index PRIVATE -fsanitize=fuzzer,address)
  target_link_libraries(fuzz_store_index ${SWAPIO_LIBS})
  add_test(NAME fuzz_store_index
           COMMAND fuzz_store_index -max_total_time=20 -max_len=8192
                   -rss_limit_mb=2048)
  set_tests_properties(fuzz_store_index PROPERTIES TIMEOUT 120 LABELS fuzz)
  # Inputs that once crashed the target, run once each: they must not.
  file(GLOB fuzz_regress ${CMAKE_CURRENT_LIST_DIR}/fuzz_regress/store_index-*)
  add_test(NAME fuzz_store_index_regress
           COMMAND fuzz_store_index ${fuzz_regress})
  set_tests_properties(fuzz_store_index_regress PROPERTIES TIMEOUT 60
                       LABELS fuzz)
elseif(SWAPIO_FUZZ)
  message(STATUS "SWAPIO_FUZZ: the fuzz targets need clang; not built")
endif()
