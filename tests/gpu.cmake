# Device memory (src/gpu.c) on machines without a GPU: a stand-in for the
# CUDA runtime and cuFile over host memory, loaded by swapio through
# SWAPIO_CUDA_LIBRARY and SWAPIO_CUFILE_LIBRARY as it loads the real ones.
add_library(swapio_cuda_standin SHARED cuda_standin.c)
target_link_libraries(swapio_cuda_standin PRIVATE Threads::Threads)
set_target_properties(swapio_cuda_standin PROPERTIES
  OUTPUT_NAME swapio_cuda_standin)

swapio_add_test(NAME gpu SOURCES test_gpu.c PER_ENGINE LABELS tsan
                TIMEOUT 180 LIBS ${CMAKE_DL_LIBS})
add_dependencies(test_gpu swapio_cuda_standin)
foreach(e ${SWAPIO_TEST_ENGINES})
  set_property(TEST gpu.${e} APPEND PROPERTY ENVIRONMENT
    "SWAPIO_CUDA_LIBRARY=$<TARGET_FILE:swapio_cuda_standin>"
    "SWAPIO_CUFILE_LIBRARY=$<TARGET_FILE:swapio_cuda_standin>")
endforeach()
# Without CUDA: the library cannot be loaded, host I/O goes on.
add_test(NAME gpu_missing COMMAND test_gpu)
set_tests_properties(gpu_missing PROPERTIES
  ENVIRONMENT "SWAPIO_TEST_GPU=missing;SWAPIO_CUDA_LIBRARY=/nonexistent/libcudart.so"
  SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS tsan)
