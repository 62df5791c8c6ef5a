# Reliability: injected faults (SWAPIO_FAULT, src/engine_fault.c), engine
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
