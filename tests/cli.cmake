# The swapio command and its configuration files.
swapio_add_test(NAME cli_config SOURCES test_cli_config.c TIMEOUT 30)
