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
             COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/cli_test.py
                     $<TARGET_FILE:swapio_cli> ${case})
    set_tests_properties(cli.${case} PROPERTIES
      SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS "cli")
  endforeach()
  # bench/store_vs_fio.py --smoke: a few short runs of swapio and of fio.
  add_test(NAME cli.store_vs_fio
           COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/cli_test.py
                   $<TARGET_FILE:swapio_cli> store_vs_fio)
  set_tests_properties(cli.store_vs_fio PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "cli")
endif()
