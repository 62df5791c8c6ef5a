# The core library: round trips, asynchronous ops, errors, buffers, and the
# handle's configuration and statistics. Each runs once per engine.
swapio_add_test(NAME roundtrip SOURCES test_roundtrip.c PER_ENGINE
                TIMEOUT 300)
swapio_add_test(NAME async SOURCES test_async.c PER_ENGINE LABELS tsan
                TIMEOUT 300)
swapio_add_test(NAME errors SOURCES test_errors.c PER_ENGINE TIMEOUT 120)
swapio_add_test(NAME buffers SOURCES test_buffers.c PER_ENGINE TIMEOUT 60)
swapio_add_test(NAME config SOURCES test_config.c PER_ENGINE TIMEOUT 60)
# The environment: one table of variables, malformed values named in the
# error detail, fault injection announced once per process on stderr.
swapio_add_test(NAME env SOURCES test_env.c TIMEOUT 60)
target_compile_definitions(test_env PRIVATE
  SWAPIO_SRC_DIR="${CMAKE_SOURCE_DIR}")
# The engine contract, on each engine without a handle: fake requests,
# wake-ups, refused requests and the fault filter.
swapio_add_test(NAME engine SOURCES test_engine.c PER_ENGINE LABELS tsan
                TIMEOUT 60)
# Head-of-line: a 4 KiB read after a large one completes first, on one
# worker, direct and buffered. Uses a 640 MiB sparse file.
swapio_add_test(NAME hol SOURCES test_hol.c PER_ENGINE LABELS tsan
                TIMEOUT 120)
# Fork: children forked while ops are in flight get SWAPIO_EFORKED from
# every inherited object, none of the parent's pinned memory or files,
# and a working handle of their own. TSan must let a child start threads.
swapio_add_test(NAME fork SOURCES test_fork.c PER_ENGINE LABELS tsan
                TIMEOUT 60)
foreach(e ${SWAPIO_TEST_ENGINES})
  set_property(TEST fork.${e} APPEND PROPERTY ENVIRONMENT
               "TSAN_OPTIONS=die_after_fork=0")
endforeach()
