# The swapio command and its configuration files.
swapio_add_test(NAME cli_config SOURCES test_cli_config.c TIMEOUT 30)

# The command itself, driven by a Python script (standard library only).
# Debian's interpreter first: a user's pyenv shim may not run under ctest.
find_program(SWAPIO_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(SWAPIO_PYTHON3 NAMES python3)
if(TARGET swapio_cli AND SWAPIO_PYTHON3)
  foreach(case usage errors json verify.uring verify.aio verify.threads
          verify_corrupt no_prealloc memory sweep info png info_json vsfio_png
          stripe small_ops random_odd store_random bench_man temporaries
          interrupt info_store)
    add_test(NAME cli.${case}
             COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py
                     $<TARGET_FILE:swapio_cli> ${case})
    set_tests_properties(cli.${case} PROPERTIES
      SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS "cli")
  endforeach()
  # bench/store-vs-fio --smoke: a few short runs of swapio and of fio.
  add_test(NAME cli.store_vs_fio
           COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py
                   $<TARGET_FILE:swapio_cli> store_vs_fio)
  set_tests_properties(cli.store_vs_fio PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "cli")
endif()

# libFuzzer on the configuration parser, built from the library's sources
# so that the parser itself is instrumented. clang only; SWAPIO_FUZZ is
# declared in store.cmake, but -DSWAPIO_FUZZ=ON is seen here already.
if(SWAPIO_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  list(TRANSFORM SWAPIO_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/
       OUTPUT_VARIABLE fuzz_config_sources)
  add_executable(fuzz_config fuzz_config.c ${fuzz_config_sources})
  target_include_directories(fuzz_config PRIVATE
    ${CMAKE_SOURCE_DIR}/include ${SWAPIO_PRIVATE_INCLUDES} ${LIBAIO_INCLUDE_DIR})
  target_compile_definitions(fuzz_config PRIVATE ${SWAPIO_DEFS} _GNU_SOURCE)
  target_compile_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_config ${SWAPIO_LIBS})
  add_test(NAME fuzz_config
           COMMAND fuzz_config -max_total_time=20 -max_len=512
                   -dict=${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.dict)
  # Each accepted input is saved and loaded once; tmpfs makes that cheap.
  if(IS_DIRECTORY /dev/shm)
    set(fuzz_config_env ENVIRONMENT TMPDIR=/dev/shm)
  endif()
  set_tests_properties(fuzz_config PROPERTIES TIMEOUT 120 LABELS fuzz
                       ${fuzz_config_env})
endif()
