# The swapio command and its configuration files.
swapio_add_test(NAME cli_config SOURCES test_cli_config.c TIMEOUT 30)

# The command itself, driven by a Python script (standard library only).
# Debian's interpreter first: a user's pyenv shim may not run under ctest.
find_program(SWAPIO_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(SWAPIO_PYTHON3 NAMES python3)
if(TARGET swapio_cli AND SWAPIO_PYTHON3)
  foreach(case usage errors json verify.uring verify.aio verify.threads
          verify_corrupt sweep info)
    add_test(NAME cli.${case}
             COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py
                     $<TARGET_FILE:swapio_cli> ${case})
    set_tests_properties(cli.${case} PROPERTIES
      SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS "cli")
  endforeach()
endif()
