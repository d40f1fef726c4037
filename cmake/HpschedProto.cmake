# hpsched_proto_library(NAME target PROTOS a.proto ... IMPORT_DIRS dir ... [GRPC])
# Generates C++ (and, with GRPC, gRPC service) code from .proto files at build time into the build tree; the generated
# code is never committed. PROTOS are paths relative to the first IMPORT_DIR. With GRPC, NAME_messages is the
# message-only library (no gRPC) and NAME adds the service stubs.
function(hpsched_proto_library)
  cmake_parse_arguments(ARG "GRPC" "NAME" "PROTOS;IMPORT_DIRS;DEPENDS" ${ARGN})
  list(GET ARG_IMPORT_DIRS 0 root)
  set(out_dir "${CMAKE_BINARY_DIR}/gen")
  set(srcs "")
  set(include_flags "")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    list(APPEND include_flags "-I${dir}")
  endforeach()
  # With GRPC, the messages and the service stubs are two targets: ${NAME}_messages (protobuf only,
  # for layers that must not link gRPC) and ${NAME} (the stubs, linking ${NAME}_messages and gRPC).
  set(grpc_srcs "")
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(dir "${proto}" DIRECTORY)
    get_filename_component(stem "${proto}" NAME_WE)
    set(base "${out_dir}/${dir}/${stem}")
    add_custom_command(
      OUTPUT "${base}.pb.cc" "${base}.pb.h"
      COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
      COMMAND protobuf::protoc ${include_flags} "--cpp_out=${out_dir}" "${root}/${proto}"
      DEPENDS "${root}/${proto}" protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs "${base}.pb.cc" "${base}.pb.h")
    if(ARG_GRPC)
      add_custom_command(
        OUTPUT "${base}.grpc.pb.cc" "${base}.grpc.pb.h"
        COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
        COMMAND protobuf::protoc ${include_flags} "--grpc_out=${out_dir}"
                "--plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>" "${root}/${proto}"
        DEPENDS "${root}/${proto}" protobuf::protoc gRPC::grpc_cpp_plugin
        COMMENT "protoc --grpc_out ${proto}"
        VERBATIM)
      list(APPEND grpc_srcs "${base}.grpc.pb.cc" "${base}.grpc.pb.h")
    endif()
  endforeach()
  set(messages ${ARG_NAME})
  if(ARG_GRPC)
    set(messages ${ARG_NAME}_messages)
  endif()
  add_library(${messages} ${srcs})
  target_include_directories(${messages} PUBLIC "${out_dir}")
  target_link_libraries(${messages} PUBLIC protobuf::libprotobuf ${ARG_DEPENDS})
  # Generated code is not ours to warn about.
  target_compile_options(${messages} PRIVATE -w)
  if(ARG_GRPC)
    add_library(${ARG_NAME} ${grpc_srcs})
    target_link_libraries(${ARG_NAME} PUBLIC ${messages} gRPC::grpc++)
    target_compile_options(${ARG_NAME} PRIVATE -w)
  endif()
endfunction()
