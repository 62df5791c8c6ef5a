# Safe on a shared machine (docs/RELIABILITY.md, "Shared machines"):
# planted links, FIFOs, unsafe directories, private modes, the same
# directory twice, swap files and swapio_config_save(). Once per engine as
# the user running ctest, and once as nobody (root drops to it; skipped
# when not root).
swapio_add_test(NAME secure SOURCES test_secure.c PER_ENGINE TIMEOUT 60)
add_test(NAME secure.nobody COMMAND test_secure)
set_tests_properties(secure.nobody PROPERTIES
  ENVIRONMENT "SWAPIO_TEST_AS_NOBODY=1;SWAPIO_TEST_ENGINE=threads"
  SKIP_RETURN_CODE 77 TIMEOUT 60)
