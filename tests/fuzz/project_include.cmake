# A fuzz build of a tree whose CMakeLists.txt do not include cmake/Sanitizers.cmake or add tests/fuzz (yet):
#   cmake ... -DHPSCHED_FUZZ=ON -DCMAKE_PROJECT_INCLUDE=$PWD/tests/fuzz/project_include.cmake
# CMake includes this file right after project(): it brings in the instrumentation flags before any target exists,
# and adds tests/fuzz unless tests/CMakeLists.txt does (so passing it stays harmless after that).
include("${CMAKE_CURRENT_LIST_DIR}/../../cmake/Sanitizers.cmake")

# The fuzz targets link libraries that are defined later; CMake resolves target names when it generates, so adding the
# directory now works. Once tests/CMakeLists.txt adds it itself, this does nothing.
file(READ "${CMAKE_CURRENT_LIST_DIR}/../CMakeLists.txt" _hpsched_tests_cmake)
if(NOT _hpsched_tests_cmake MATCHES "add_subdirectory\\(fuzz\\)")
  add_subdirectory("${CMAKE_CURRENT_LIST_DIR}" "${CMAKE_BINARY_DIR}/tests/fuzz")
endif()
unset(_hpsched_tests_cmake)
