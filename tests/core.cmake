# The core library: round trips, asynchronous ops, errors, buffers, and the
# handle's configuration and statistics. Each runs once per engine.
swapio_add_test(NAME roundtrip SOURCES test_roundtrip.c PER_ENGINE
                TIMEOUT 300)
swapio_add_test(NAME async SOURCES test_async.c PER_ENGINE LABELS tsan
                TIMEOUT 300)
swapio_add_test(NAME errors SOURCES test_errors.c PER_ENGINE TIMEOUT 120)
swapio_add_test(NAME buffers SOURCES test_buffers.c PER_ENGINE TIMEOUT 60)
swapio_add_test(NAME config SOURCES test_config.c PER_ENGINE TIMEOUT 60)
