# install.cmake - `cmake --install` support: headers, the libraries that
# were built, an exported CMake package (find_package(hmb) -> hmb::hmb) and
# hmb.pc. Does nothing unless HMB_INSTALL is ON (the default at top level
# only); a top-level build then also gets the Debian packaging.
#
# Installed targets (namespace hmb::), each when it was built:
#   hmb::hmb_shared  libhmb.so.<SOVERSION>, hidden visibility, only HMB_API
#                    exported;
#   hmb::hmb_static  libhmb.a, carries HMB_STATIC_DEFINE and its link-only
#                    dependencies (pthreads, and the dynamic loader library
#                    when CUDA support is built in);
#   hmb::hmb         the one to use: an interface target over the shared
#                    library, or over the static one when the consumer sets
#                    HMB_USE_STATIC_LIBS=ON before find_package(hmb), when
#                    this package was configured with BUILD_SHARED_LIBS=OFF
#                    (the consumer's HMB_USE_STATIC_LIBS=OFF still wins), or
#                    when only the static library was built.
# Neither the package nor hmb.pc names anything of CUDA: the library opens
# the CUDA runtime itself, at run time, when a pool needs pinned memory.
#
# Components: hmb_runtime (the shared library's versioned file and SONAME
# link) and hmb_development (headers, static library, the libhmb.so link,
# CMake package, hmb.pc); cmake/packaging.cmake makes one Debian package of
# each.
if(NOT HMB_INSTALL)
  return()
endif()
include(CMakePackageConfigHelpers)

set(HMB_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/hmb"
    CACHE STRING "Where hmbConfig.cmake is installed (relative to the prefix)")

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT hmb_development
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp") # C and C++ headers

install(TARGETS ${HMB_LIBRARY_TARGETS}
        EXPORT hmbTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hmb_development
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hmb_runtime
                NAMELINK_COMPONENT hmb_development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT hmb_runtime
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT hmbTargets
        NAMESPACE hmb::
        FILE hmbTargets.cmake
        DESTINATION ${HMB_INSTALL_CMAKEDIR}
        COMPONENT hmb_development)

# What hmb::hmb means when the consumer does not say.
if(NOT HMB_BUILD_SHARED OR (DEFINED BUILD_SHARED_LIBS AND NOT BUILD_SHARED_LIBS))
  set(HMB_DEFAULT_STATIC ON)
else()
  set(HMB_DEFAULT_STATIC OFF)
endif()

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/hmbConfig.cmake.in
  ${PROJECT_BINARY_DIR}/hmbConfig.cmake
  INSTALL_DESTINATION ${HMB_INSTALL_CMAKEDIR})
# 0.x: every minor release may break the API (hmb/version.h, CHANGELOG.md),
# so a request for 0.2 accepts 0.2.x only; from 1.0 on this becomes
# SameMajorVersion, in step with the SONAME (CMakeLists.txt).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_hmb_compat SameMinorVersion)
else()
  set(_hmb_compat SameMajorVersion)
endif()
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/hmbConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY ${_hmb_compat})
install(FILES ${PROJECT_BINARY_DIR}/hmbConfig.cmake
              ${PROJECT_BINARY_DIR}/hmbConfigVersion.cmake
        DESTINATION ${HMB_INSTALL_CMAKEDIR}
        COMPONENT hmb_development)

# ---- pkg-config -------------------------------------------------------------
# The prefix is written at install time, so `cmake --install --prefix X`
# (which overrides CMAKE_INSTALL_PREFIX after configuration) gets a correct
# file. Directories under the prefix are written relative to ${prefix}.
# -lpthread is harmless where pthreads live in libc (glibc >= 2.34).
set(HMB_PC_LIBS_PRIVATE "-lpthread")
if(HMB_HAVE_CUDA)
  foreach(lib IN LISTS CMAKE_DL_LIBS)
    string(APPEND HMB_PC_LIBS_PRIVATE " -l${lib}")
  endforeach()
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(HMB_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(HMB_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(HMB_PC_PREFIX "@HMB_PC_PREFIX@") # left for the install step to fill
configure_file(${CMAKE_CURRENT_LIST_DIR}/hmb.pc.in
               ${PROJECT_BINARY_DIR}/hmb.pc.stage @ONLY)
install(CODE "
  set(HMB_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/hmb.pc.stage\"
                 \"${PROJECT_BINARY_DIR}/hmb.pc\" @ONLY)"
  COMPONENT hmb_development)
install(FILES ${PROJECT_BINARY_DIR}/hmb.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT hmb_development)

if(HMB_TOP_LEVEL)
  include(${CMAKE_CURRENT_LIST_DIR}/packaging.cmake)
endif()
