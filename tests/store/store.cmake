# The store, the buffer pool and the pipeline.
swapio_add_test(NAME store STRIPED SOURCES test_store.c PER_ENGINE TIMEOUT 300)
# Killed with SIGKILL at random moments; `ctest -R crash` selects it.
swapio_add_test(NAME store_crash STRIPED SOURCES test_store_crash.c TIMEOUT 120)
# A 16 MiB tmpfs filled until ENOSPC (root only); `ctest -R enospc`.
swapio_add_test(NAME store_enospc STRIPED SOURCES test_store_enospc.c TIMEOUT 120)
swapio_add_test(NAME store_mt STRIPED SOURCES test_store_mt.c PER_ENGINE LABELS tsan
                TIMEOUT 300)

swapio_add_test(NAME pool SOURCES test_pool.c LABELS tsan TIMEOUT 120)
swapio_add_test(NAME pipeline STRIPED SOURCES test_pipeline.c PER_ENGINE TIMEOUT 300)

# The Adam demo through the built tool: a small run must match the
# in-memory Adam bit for bit and report every figure.
if(TARGET swapio_cli)
  add_test(NAME demo_adam COMMAND $<TARGET_FILE:swapio_cli> demo adam
           --params 1M --steps 2 --rounds 1 --json)
  set_tests_properties(demo_adam PROPERTIES TIMEOUT 120
    PASS_REGULAR_EXPRESSION
    "\"io_s\": [0-9.]+, \"compute_s\": [0-9.]+, \"pipelined_s\": [0-9.]+.*\"io_gbps\": [0-9.]+.*\"overlap_efficiency\": [0-9.]+.*\"verified\": true}")
endif()

# Order of events on one key, one op, one sync; fork (issue 8).
swapio_add_test(NAME store_order STRIPED SOURCES test_store_order.c PER_ENGINE
                LABELS tsan TIMEOUT 120)
# The log under fd-level faults and torn pages; the allocator alone.
swapio_add_test(NAME store_log STRIPED SOURCES test_store_log.c TIMEOUT 120)
swapio_add_test(NAME store_space SOURCES test_store_space.c TIMEOUT 60)
# Damage at every 64-byte range of a small log, after a clean close and
# after a crash: SWAPIO_EBADSTORE or a counted drop, and RECOVER brings
# every key back.
swapio_add_test(NAME store_damage STRIPED SOURCES test_store_damage.c
                PER_ENGINE TIMEOUT 120)
# The checksum: every kernel gives libxxhash's XXH3-64.
swapio_add_test(NAME checksum SOURCES test_checksum.c TIMEOUT 60)
# A put killed between its data and its record; RECOVER must not let its
# header tie with a later put's (generations are reserved in the log).
swapio_add_test(NAME store_gen STRIPED SOURCES test_store_gen.c PER_ENGINE
                TIMEOUT 120)
# swapio_file_allocate(), the data file's growth; ramfs as root only.
swapio_add_test(NAME file_allocate SOURCES test_file_allocate.c PER_ENGINE
                TIMEOUT 60)
# A small ext4 filled to ENOSPC, then remove + put cycles; ramfs with a
# fixed capacity (root only); `ctest -R full`.
swapio_add_test(NAME store_full STRIPED SOURCES test_store_full.c TIMEOUT 300)
# A store striped over three drives, a handle each: splitting, spread,
# the recorded drive list, one drive failing or slow (issue 12).
swapio_add_test(NAME store_stripe SOURCES test_store_stripe.c PER_ENGINE
                TIMEOUT 120)
# Four ranks of one node at once for 20 s, each its own striped store and
# a quarter of the node's queue depth (SWAPIO_SHARE_NODE, issue 12).
swapio_add_test(NAME ranks SOURCES test_ranks.c TIMEOUT 120)
# Alone: four busy processes on two cores made the soak's head-of-line
# contract (a timing bound) fail beside it.
set_tests_properties(ranks PROPERTIES RUN_SERIAL TRUE)
# Under the sanitizers the same four ranks run 5 s: the 20 s run is the
# normal build's, and the sanitizers look for bugs, not for throughput.
if(SWAPIO_SANITIZE)
  set_tests_properties(ranks PROPERTIES ENVIRONMENT SWAPIO_TEST_RANKS_SECS=5)
endif()
# The block tier: batches, reopen, namespaces, capacity and LRU, a
# damaged block, deadlines (held-back I/O).
swapio_add_test(NAME tier STRIPED SOURCES test_tier.c PER_ENGINE LABELS tsan
                TIMEOUT 120)
