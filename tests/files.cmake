# Files: block devices, the buffered twin, block sizes below a file's
# alignment, and errno left as the caller had it by every public call.
swapio_add_test(NAME plan_align SOURCES test_plan_align.c TIMEOUT 60)
