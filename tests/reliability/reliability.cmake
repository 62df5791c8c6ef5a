# Reliability: injected faults (SWAPIO_FAULT, src/engines/fault.c), engine
# fallbacks, bad input to every public function, several processes, the
# soak and the fuzzers. docs/RELIABILITY.md says what each one proves.
# Names are chosen so that ctest -R 'fault|crash|soak|enospc|fuzz' picks
# the fault, soak and fuzz tests (crash and enospc are the store's).
swapio_add_test(NAME fault SOURCES test_fault.c PER_ENGINE LABELS tsan
                TIMEOUT 120)
swapio_add_test(NAME fault_spec SOURCES test_fault_spec.c PER_ENGINE
                TIMEOUT 60)
swapio_add_test(NAME fallback SOURCES test_fallback.c PER_ENGINE TIMEOUT 60)
# The aio run lowers fs.aio-max-nr (system-wide) for a few milliseconds:
# nothing else of this suite may create an aio context meanwhile.
set_tests_properties(fallback.aio PROPERTIES RUN_SERIAL TRUE)
swapio_add_test(NAME badinput SOURCES test_badinput.c PER_ENGINE TIMEOUT 60)

# The soak: tools/swapio-stress.c, several threads of mixed reads and
# writes at random sizes and offsets over several files, every byte read
# checked against a shadow copy, with a store beside them and a thread
# checking wait_all, remove-after-put order, head-of-line order and fork
# under that load (--contracts). 20 s per engine. tools/ builds it; without
# tools/ (-DSWAPIO_BUILD_TOOLS=OFF), the tests build it here.
if(NOT TARGET swapio-stress)
  add_executable(swapio-stress ${PROJECT_SOURCE_DIR}/tools/swapio-stress.c)
  target_link_libraries(swapio-stress swapio_static)
endif()
foreach(e ${SWAPIO_TEST_ENGINES})
  add_test(NAME soak.${e} COMMAND swapio-stress --seconds 20 --engine ${e}
           --threads 4 --files 4 --file-mib 4 --watchdog 30 --contracts)
  set_tests_properties(soak.${e} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 180 LABELS "soak;tsan")
endforeach()
# The same under faults: failed writes must leave every other byte right,
# short transfers must be finished. ~3 s each.
foreach(e ${SWAPIO_TEST_ENGINES})
  add_test(NAME soak_fault_eio.${e} COMMAND swapio-stress --seconds 3
           --engine ${e} --fault "seed=5,prob=0.02,errno=EIO")
  add_test(NAME soak_fault_short.${e} COMMAND swapio-stress --seconds 3
           --engine ${e} --fault "short=1,every=3")
  set_tests_properties(soak_fault_eio.${e} soak_fault_short.${e} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "soak")
endforeach()
# The watchdog itself: completions held back a minute must be reported as
# a hang (exit 3) within seconds, not wait for ctest's TIMEOUT.
add_test(NAME soak_watchdog COMMAND swapio-stress --seconds 30
         --engine threads --fault delay_ms=60000 --watchdog 2)
set_tests_properties(soak_watchdog PROPERTIES TIMEOUT 30 LABELS "soak"
  PASS_REGULAR_EXPRESSION "HANG: no op completed for 2 s")
# The store keeps every earlier key readable and right when puts fail.
swapio_add_test(NAME fault_store STRIPED SOURCES test_fault_store.c PER_ENGINE
                TIMEOUT 120)
# Several processes, each with its own handle, in one directory.
# Not under the sanitizers (label nosan): its children fork from a parent
# whose library threads may be inside the allocator at that moment. glibc's
# malloc locks itself around fork(); GCC 12's ASan allocator does not, and
# a child then waits forever on a lock inherited held (seen under load:
# the child's worker blocked in SizeClassAllocator64::GetFromAllocator).
swapio_add_test(NAME multiproc SOURCES test_multiproc.c PER_ENGINE
                LABELS nosan TIMEOUT 180)
