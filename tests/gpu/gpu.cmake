# Device memory (src/gpu/) on machines without a GPU: a stand-in for the
# CUDA runtime and cuFile over host memory, loaded by swapio through
# SWAPIO_CUDA_LIBRARY and SWAPIO_CUFILE_LIBRARY as it loads the real ones.
# Two more builds of it: a runtime on too old a driver (every call answers
# 35), and a second working runtime, to test which one swapio keeps.
foreach(v "" _old _b)
  add_library(swapio_cuda_standin${v} SHARED ${CMAKE_CURRENT_LIST_DIR}/cuda_standin.c)
  target_link_libraries(swapio_cuda_standin${v} PRIVATE Threads::Threads)
  target_include_directories(swapio_cuda_standin${v} PRIVATE
    ${PROJECT_SOURCE_DIR}/src/gpu)
  set_target_properties(swapio_cuda_standin${v} PROPERTIES
    OUTPUT_NAME swapio_cuda_standin${v})
endforeach()
target_compile_definitions(swapio_cuda_standin_old PRIVATE
  STANDIN_DRIVER_ERROR=35)
set(SWAPIO_STANDIN $<TARGET_FILE:swapio_cuda_standin>)

swapio_add_test(NAME gpu SOURCES test_gpu.c PER_ENGINE LABELS tsan
                TIMEOUT 180 LIBS ${CMAKE_DL_LIBS})
add_dependencies(test_gpu swapio_cuda_standin swapio_cuda_standin_old
                 swapio_cuda_standin_b)
foreach(e ${SWAPIO_TEST_ENGINES})
  set_property(TEST gpu.${e} APPEND PROPERTY ENVIRONMENT
    "SWAPIO_CUDA_LIBRARY=${SWAPIO_STANDIN}"
    "SWAPIO_CUFILE_LIBRARY=${SWAPIO_STANDIN}")
endforeach()
# Without CUDA: the library cannot be loaded, host I/O goes on.
add_test(NAME gpu_missing COMMAND test_gpu)
set_tests_properties(gpu_missing PROPERTIES
  ENVIRONMENT "SWAPIO_TEST_GPU=missing;SWAPIO_CUDA_LIBRARY=/nonexistent/libcudart.so"
  SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS tsan)

# The runtime is chosen once per process: one process per case.
set(SWAPIO_OLD $<TARGET_FILE:swapio_cuda_standin_old>)
set(SWAPIO_B $<TARGET_FILE:swapio_cuda_standin_b>)
find_file(SWAPIO_REAL_CUDART NAMES libcudart.so.13 libcudart.so.12
  libcudart.so PATHS $ENV{CUDA_HOME}/lib64 /usr/local/cuda/lib64
  /usr/lib/x86_64-linux-gnu NO_CACHE)
if(NOT SWAPIO_REAL_CUDART)
  set(SWAPIO_REAL_CUDART "")
endif()
# gpu_mode(MODE LIBS [ENV...]): test_gpu with SWAPIO_TEST_GPU=MODE,
# cuFile the stand-in unless ENV says otherwise.
function(gpu_mode mode libs)
  add_test(NAME gpu_${mode} COMMAND test_gpu)
  set_tests_properties(gpu_${mode} PROPERTIES
    ENVIRONMENT "SWAPIO_TEST_GPU=${mode};SWAPIO_CUDA_LIBRARY=${libs};SWAPIO_CUFILE_LIBRARY=${SWAPIO_STANDIN};${ARGN}"
    SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS tsan)
endfunction()
gpu_mode(choice "${SWAPIO_OLD}:${SWAPIO_STANDIN}")
gpu_mode(loaded "${SWAPIO_B}:${SWAPIO_STANDIN}")
gpu_mode(nodevice "${SWAPIO_STANDIN}")
gpu_mode(real "${SWAPIO_REAL_CUDART}")
gpu_mode(stall "${SWAPIO_STANDIN}" SWAPIO_STANDIN_CUFILE_OPEN_DELAY_MS=30000)
gpu_mode(compat "${SWAPIO_STANDIN}" SWAPIO_STANDIN_CUFILE_COMPAT=1)
gpu_mode(nocufile "${SWAPIO_STANDIN}" SWAPIO_CUFILE_LIBRARY=)

# src/gpu/gpu_abi.h against the real CUDA and cuFile headers, where they are
# (cufile.h fetched from PyPI's nvidia-cufile into the build tree if
# nothing here has it); skipped, saying why, where they are not.
add_test(NAME gpu_abi_check COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/gpu_abi_check.sh
  ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/cufile-cache)
set_tests_properties(gpu_abi_check PROPERTIES SKIP_RETURN_CODE 77
  TIMEOUT 400)
