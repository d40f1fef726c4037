# hpsched_proto_library(NAME target PROTOS a.proto ... IMPORT_DIRS dir ... [GRPC])
# Generates C++ (and, with GRPC, gRPC service) code from .proto files at build time into the build tree; the generated
# code is never committed. PROTOS are paths relative to the first IMPORT_DIR.
function(hpsched_proto_library)
  cmake_parse_arguments(ARG "GRPC" "NAME" "PROTOS;IMPORT_DIRS;DEPENDS" ${ARGN})
  list(GET ARG_IMPORT_DIRS 0 root)
  set(out_dir "${CMAKE_BINARY_DIR}/gen")
  set(srcs "")
  set(include_flags "")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    list(APPEND include_flags "-I${dir}")
  endforeach()
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(dir "${proto}" DIRECTORY)
    get_filename_component(stem "${proto}" NAME_WE)
    set(base "${out_dir}/${dir}/${stem}")
    set(outputs "${base}.pb.cc" "${base}.pb.h")
    set(plugin_args "")
    if(ARG_GRPC)
      list(APPEND outputs "${base}.grpc.pb.cc" "${base}.grpc.pb.h")
      set(plugin_args "--grpc_out=${out_dir}"
                      "--plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>")
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
      COMMAND protobuf::protoc ${include_flags} "--cpp_out=${out_dir}" ${plugin_args} "${root}/${proto}"
      DEPENDS "${root}/${proto}" protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${outputs})
  endforeach()
  add_library(${ARG_NAME} ${srcs})
  target_include_directories(${ARG_NAME} PUBLIC "${out_dir}")
  target_link_libraries(${ARG_NAME} PUBLIC protobuf::libprotobuf ${ARG_DEPENDS})
  if(ARG_GRPC)
    target_link_libraries(${ARG_NAME} PUBLIC gRPC::grpc++)
  endif()
  # Generated code is not ours to warn about.
  target_compile_options(${ARG_NAME} PRIVATE -w)
endfunction()
