# The learner's GPU path and data-parallel arithmetic as one static library,
# specline_learn_gpu: dp.c always; gpu.cu (cuBLAS) when SPECLINE_HAVE_CUDA, nccl.cu when NCCL
# is found too. Consumers include gpu.h/dp.h and get SPECLINE_HAVE_CUDA/SPECLINE_HAVE_NCCL
# from the target, so without CUDA gpu.h's stubs answer "built without CUDA". Included by
# workers/learn/CMakeLists.txt (added before tests/ and bench/, which link the target).
include_guard(GLOBAL)

set(SPECLINE_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures of the learner (90 = H100)")
set(_sl_learn_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(specline_learn_gpu STATIC ${_sl_learn_dir}/dp.c)
target_include_directories(specline_learn_gpu PUBLIC ${_sl_learn_dir})
target_link_libraries(specline_learn_gpu PUBLIC specline m)

if(SPECLINE_HAVE_CUDA)
  find_path(SPECLINE_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include)
  find_library(SPECLINE_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib
    ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  target_sources(specline_learn_gpu PRIVATE ${_sl_learn_dir}/gpu.cu)
  target_compile_definitions(specline_learn_gpu PUBLIC SPECLINE_HAVE_CUDA=1)
  target_link_libraries(specline_learn_gpu PUBLIC CUDA::cudart CUDA::cublas)
  if(SPECLINE_NCCL_INCLUDE_DIR AND SPECLINE_NCCL_LIBRARY)
    target_sources(specline_learn_gpu PRIVATE ${_sl_learn_dir}/nccl.cu)
    target_include_directories(specline_learn_gpu PRIVATE ${SPECLINE_NCCL_INCLUDE_DIR})
    target_compile_definitions(specline_learn_gpu PUBLIC SPECLINE_HAVE_NCCL=1)
    target_link_libraries(specline_learn_gpu PUBLIC ${SPECLINE_NCCL_LIBRARY})
    message(STATUS "specline: NCCL ${SPECLINE_NCCL_LIBRARY}")
  else()
    message(STATUS "specline: NCCL not found, data-parallel learner off")
  endif()
  set_target_properties(specline_learn_gpu PROPERTIES CUDA_ARCHITECTURES "${SPECLINE_CUDA_ARCHITECTURES}"
    CUDA_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
  # The directory's warning options are gcc's; nvcc gets them through -Xcompiler.
  get_target_property(_sl_opts specline_learn_gpu COMPILE_OPTIONS)
  set(_sl_new_opts "")
  foreach(o IN LISTS _sl_opts)
    list(APPEND _sl_new_opts "$<$<COMPILE_LANGUAGE:C>:${o}>")
  endforeach()
  list(APPEND _sl_new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>")
  if(SPECLINE_WERROR)
    list(APPEND _sl_new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>"
      "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>")
  endif()
  set_property(TARGET specline_learn_gpu PROPERTY COMPILE_OPTIONS "${_sl_new_opts}")
endif()
