# Installing and consuming the library: version, exported ABI, the
# installed CMake package and pkg-config file, man pages, examples and the
# Debian packages.
swapio_add_test(NAME version SOURCES test_version.c TIMEOUT 30)
target_compile_definitions(test_version PRIVATE
  T_PROJECT_MAJOR=${PROJECT_VERSION_MAJOR}
  T_PROJECT_MINOR=${PROJECT_VERSION_MINOR}
  T_PROJECT_PATCH=${PROJECT_VERSION_PATCH})

find_program(SWAPIO_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(SWAPIO_PYTHON3 NAMES python3)

# The shared library exports exactly swapio.h's functions, versioned, and
# its ABI is the committed baseline's or a compatible superset. Sanitizer
# builds instrument the library; the baseline is of a plain one.
add_test(NAME abi.symbols
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/abi_test.py
                 symbols ${PROJECT_SOURCE_DIR}/include/swapio.h
                 $<TARGET_FILE:swapio>)
add_test(NAME abi.abidiff
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/abi_test.py
                 abidiff ${PROJECT_SOURCE_DIR}/abi/libswapio.so.0.abi
                 ${PROJECT_SOURCE_DIR}/include $<TARGET_FILE:swapio>)
set_tests_properties(abi.symbols abi.abidiff PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "install;nosan")

# Man pages: lint-clean, and one for every public function and command.
add_test(NAME man.lint
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/man_test.py
                 lint ${PROJECT_SOURCE_DIR}/man)
add_test(NAME man.coverage
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/man_test.py
                 coverage ${PROJECT_SOURCE_DIR}/man
                 ${PROJECT_SOURCE_DIR}/include/swapio.h
                 ${PROJECT_SOURCE_DIR}/tools/swapio.c)
set_tests_properties(man.lint man.coverage PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS "install")

# The man pages (the reference) and the header's contract comments name
# the same error codes for every public function.
add_test(NAME man.contract
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/man_contract_test.py
                 ${PROJECT_SOURCE_DIR}/man ${PROJECT_SOURCE_DIR}/include/swapio.h)
set_tests_properties(man.contract PROPERTIES TIMEOUT 60 LABELS "install")

# The examples (examples/), each run on fresh data and checked.
if(TARGET swapio-copy)
  foreach(ex copy copy-static epoll store adam)
    add_test(NAME example.${ex}
             COMMAND ${SWAPIO_PYTHON3}
                     ${CMAKE_CURRENT_LIST_DIR}/install_test.py example
                     ${ex} $<TARGET_FILE_DIR:swapio-copy>)
    set_tests_properties(example.${ex} PROPERTIES
      SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "install;examples")
  endforeach()
endif()

# `cmake --install` into a staging root, and examples/ built against it
# with CMake and with its Makefile, as outside projects. Installs what
# this build built, so not under sanitizers (their runtimes would have to
# come along).
add_test(NAME install.consumers
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/install_test.py
                 consumers ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(install.consumers PROPERTIES
  ENVIRONMENT "SWAPIO_CMAKE=${CMAKE_COMMAND}"
  SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "install;nosan")

# `cmake --install --prefix` into a prefix the loader does not search:
# the installed command finds libswapio.so.0 through its relative RUNPATH.
add_test(NAME install.prefix
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/install_test.py
                 prefix ${PROJECT_BINARY_DIR})
set_tests_properties(install.prefix PROPERTIES
  ENVIRONMENT "SWAPIO_CMAKE=${CMAKE_COMMAND}"
  SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "install;nosan")

# The Debian packages, built from a copy of the tree (so it stays clean),
# checked with lintian, unpacked into a fresh root, and the installed
# examples built against them. Needs dpkg-dev and debhelper; no root (the
# package builds without it: Rules-Requires-Root: no).
add_test(NAME install.deb
         COMMAND ${SWAPIO_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/install_test.py
                 deb ${PROJECT_SOURCE_DIR})
set_tests_properties(install.deb PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "install;nosan;deb")
