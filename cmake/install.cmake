# `cmake --install <build> --prefix P` lays out:
#   P/bin/tapegrad                     the executable (install RPATH keeps the OpenMP OpenBLAS)
#   P/lib/libtapegrad_*.a              core, nn, optim, models, train, cli (static)
#   P/include/tapegrad/...             public headers: <tapegrad/tapegrad.h>, <tapegrad/nn/attention.h>
#   P/lib/cmake/tapegrad/              find_package(tapegrad CONFIG) -> tapegrad::tapegrad
#   P/lib/pkgconfig/tapegrad.pc        pkg-config --cflags --libs tapegrad
#   P/share/tapegrad/                  GPT-2 vocab, the-verdict.txt, gdb/tapegrad_printers.py
#   P/share/doc/tapegrad/              README, CHANGELOG, LICENSE, docs
#
# Headers: the sources include each other as "core/tensor.h" relative to the
# source root. Installed, that would put generic names (core/, nn/) on a user's
# include path, so the installed copies are staged at build time with those
# includes rewritten to <tapegrad/core/tensor.h> (cmake/stage_headers.cmake);
# the source tree keeps its includes, so no source file changes.
set(TAPEGRAD_LIBRARIES tapegrad_core tapegrad_nn tapegrad_optim tapegrad_models tapegrad_train tapegrad_cli)
set(TAPEGRAD_HEADER_DIRS core nn optim models train)
set(_stage ${PROJECT_BINARY_DIR}/staged-include)

configure_file(${PROJECT_SOURCE_DIR}/cmake/version.h.in ${_stage}/tapegrad/version.h @ONLY)
string(REPLACE ";" "," _dirs "${TAPEGRAD_HEADER_DIRS}")
add_custom_target(tapegrad_headers ALL
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DDIRS=${_dirs} -DDST=${_stage}/tapegrad
          -P ${PROJECT_SOURCE_DIR}/cmake/stage_headers.cmake
  COMMENT "Staging the public headers under tapegrad/" VERBATIM)

# tapegrad::tapegrad: everything a downstream project links.
add_library(tapegrad_all INTERFACE)
target_link_libraries(tapegrad_all INTERFACE ${TAPEGRAD_LIBRARIES})
set_target_properties(tapegrad_all PROPERTIES EXPORT_NAME tapegrad)
add_library(tapegrad::tapegrad ALIAS tapegrad_all)
foreach(lib ${TAPEGRAD_LIBRARIES})
  string(REPLACE "tapegrad_" "" _short ${lib})
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${_short})
endforeach()

install(TARGETS ${TAPEGRAD_LIBRARIES} tapegrad_all EXPORT tapegradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS tapegrad RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${_stage}/tapegrad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT tapegradTargets NAMESPACE tapegrad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)

include(CMakePackageConfigHelpers)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tapegradConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tapegradConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad
                              PATH_VARS CMAKE_INSTALL_DATADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tapegradConfig.cmake ${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)

configure_file(${PROJECT_SOURCE_DIR}/cmake/tapegrad.pc.in ${PROJECT_BINARY_DIR}/tapegrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tapegrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Run-time data, found by the executable at <its dir>/../share/tapegrad
# (train/run/paths.h). The build tree gets the same layout through symlinks, since
# every binary there sits one folder below the build root.
set(TAPEGRAD_DATA_FILES data/encoder.json data/vocab.bpe data/the-verdict.txt)
install(FILES ${TAPEGRAD_DATA_FILES} DESTINATION ${CMAKE_INSTALL_DATADIR}/tapegrad)
install(FILES tools/gdb/tapegrad_printers.py DESTINATION ${CMAKE_INSTALL_DATADIR}/tapegrad/gdb)
install(FILES README.md CHANGELOG.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/share/tapegrad/gdb)
foreach(f ${TAPEGRAD_DATA_FILES} tools/gdb/tapegrad_printers.py)
  get_filename_component(_name ${f} NAME)
  set(_dst ${PROJECT_BINARY_DIR}/share/tapegrad/${_name})
  if(_name MATCHES "\\.py$")
    set(_dst ${PROJECT_BINARY_DIR}/share/tapegrad/gdb/${_name})
  endif()
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${f} ${_dst} SYMBOLIC)
endforeach()
