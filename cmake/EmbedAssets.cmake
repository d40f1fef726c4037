# hpsched_embed_assets(TARGET name DIR dir HEADER_DIR include_dir)
# Compiles every file under DIR into the library TARGET at build time: one generated C++ source
# (${CMAKE_CURRENT_BINARY_DIR}/<TARGET>.cc) holds each file's bytes as a string literal and a table
# sorted by path, which web_assets.h's FindAsset searches. Nothing is read at run time, so the
# binary serves its pages on a machine with no network and no source tree.
#
# The file list is globbed at configure time with CONFIGURE_DEPENDS (a new file reconfigures); an
# edited file regenerates the source at build time.
function(hpsched_embed_assets)
  cmake_parse_arguments(ARG "" "TARGET;DIR;HEADER_DIR" "" ${ARGN})
  file(GLOB_RECURSE files CONFIGURE_DEPENDS LIST_DIRECTORIES false "${ARG_DIR}/*")
  # Sources of the asset library itself are not assets.
  list(FILTER files EXCLUDE REGEX "/web_assets\\.h$|/CMakeLists\\.txt$|/\\.")
  list(SORT files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}.cc")
  # One argument for the script: the list joined by "|" (a ";" would split it).
  string(REPLACE ";" "|" joined "${files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} "-DDIR=${ARG_DIR}" "-DOUT=${out}" "-DFILES=${joined}"
            -P "${CMAKE_SOURCE_DIR}/cmake/EmbedAssetsGenerate.cmake"
    DEPENDS ${files} "${CMAKE_SOURCE_DIR}/cmake/EmbedAssetsGenerate.cmake"
    COMMENT "embedding ${ARG_DIR} into ${ARG_TARGET}"
    VERBATIM)
  add_library(${ARG_TARGET} "${out}")
  target_include_directories(${ARG_TARGET} PUBLIC "${ARG_HEADER_DIR}")
endfunction()
