# Files: block devices, the buffered twin, block sizes below a file's
# alignment, and errno left as the caller had it by every public call.
swapio_add_test(NAME plan_align SOURCES test_plan_align.c TIMEOUT 60)
# Root only (losetup); skips otherwise. Each run attaches its own device.
swapio_add_test(NAME blockdev SOURCES test_blockdev.c PER_ENGINE TIMEOUT 60)
swapio_add_test(NAME twin SOURCES test_twin.c PER_ENGINE TIMEOUT 60)
swapio_add_test(NAME errno SOURCES test_errno.c PER_ENGINE TIMEOUT 60)
