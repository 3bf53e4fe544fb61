# packaging.cmake - Debian packages with CPack (top-level builds with
# HMB_INSTALL=ON).
#
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build-deb
#   (cd build-deb && cpack -G DEB)
#
# gives two packages, one per install component (cmake/install.cmake):
#   libhmb<SOVERSION>  (e.g. libhmb0.2)  the shared library: libhmb.so.0.2
#                      and its versioned file. Depends on libc (computed by
#                      dpkg-shlibdeps when it is installed, else "libc6").
#                      Its shlibs file lets other packages' dpkg-shlibdeps
#                      depend on it. A new 0.x minor is a new SONAME and so a
#                      new package name, installable beside the old one.
#   libhmb-dev         headers, libhmb.a, the libhmb.so link, the CMake
#                      package and hmb.pc. Depends on exactly the same
#                      version of libhmb<SOVERSION>.
# With -DCMAKE_INSTALL_PREFIX=/usr the libraries go to the multiarch
# directory (/usr/lib/<triplet>); the packages install under the configured
# prefix, so a build for packages should use /usr.
if(NOT HMB_BUILD_SHARED)
  message(STATUS "hmb: no shared library is built: the Debian packages "
                 "hold only libhmb-dev")
endif()
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "hmb: Debian packages will install under "
                 "${CMAKE_INSTALL_PREFIX}; configure with "
                 "-DCMAKE_INSTALL_PREFIX=/usr for system packages")
endif()

set(HMB_DEB_RUNTIME "libhmb${HMB_SOVERSION}")
set(HMB_DEB_DEV "libhmb-dev")
set(HMB_DEB_RELEASE 1)
set(HMB_DEB_VERSION "${PROJECT_VERSION}-${HMB_DEB_RELEASE}")

# Debian wants the licence as /usr/share/doc/<package>/copyright.
if(HMB_BUILD_SHARED)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${HMB_DEB_RUNTIME}
          RENAME copyright
          COMPONENT hmb_runtime)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${HMB_DEB_DEV}
        RENAME copyright
        COMPONENT hmb_development)

set(HMB_DEB_MAINTAINER "hmb maintainers" CACHE STRING
    "Maintainer field of the Debian packages (\"Name <email>\")")
set(CPACK_PACKAGE_NAME hmb)
set(CPACK_PACKAGE_VENDOR "hmb maintainers")
set(CPACK_PACKAGE_CONTACT "${HMB_DEB_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
# Install with DESTDIR into the staging area, so that the install step sees
# the real prefix (hmb.pc writes it) rather than the staging directory.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})

set(CPACK_DEB_COMPONENT_INSTALL ON)
if(HMB_BUILD_SHARED)
  set(CPACK_COMPONENTS_ALL hmb_runtime hmb_development)
else()
  set(CPACK_COMPONENTS_ALL hmb_development)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${HMB_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

# Each package's description: the project's one-line summary (CPack puts
# it first), then these lines.
string(CONCAT CPACK_COMPONENT_HMB_RUNTIME_DESCRIPTION
  "hmb bounds how much host memory the scan threads of a columnar reader\n"
  "may hold and binds that budget to the real allocations. CUDA pinned\n"
  "memory is used when the CUDA runtime is installed (it is loaded at run\n"
  "time; the package does not depend on it).\n"
  ".\n"
  "This package contains the shared library.")
string(CONCAT CPACK_COMPONENT_HMB_DEVELOPMENT_DESCRIPTION
  "hmb bounds how much host memory the scan threads of a columnar reader\n"
  "may hold and binds that budget to the real allocations.\n"
  ".\n"
  "This package contains the headers, the static library, the CMake\n"
  "package (find_package(hmb)) and the pkg-config file (hmb.pc).")

set(CPACK_DEBIAN_HMB_RUNTIME_PACKAGE_NAME ${HMB_DEB_RUNTIME})
set(CPACK_DEBIAN_HMB_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_HMB_DEVELOPMENT_PACKAGE_NAME ${HMB_DEB_DEV})
set(CPACK_DEBIAN_HMB_DEVELOPMENT_PACKAGE_SECTION libdevel)

# The runtime's dependencies come from dpkg-shlibdeps where it exists; the
# shlibs file says "libhmb 0.2 libhmb0.2 (>= 0.2.0-1)".
find_program(HMB_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(HMB_DPKG_SHLIBDEPS)
if(HMB_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_HMB_RUNTIME_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_HMB_RUNTIME_PACKAGE_DEPENDS "libc6")
endif()
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
if(HMB_BUILD_SHARED)
  set(CPACK_DEBIAN_HMB_DEVELOPMENT_PACKAGE_DEPENDS
      "${HMB_DEB_RUNTIME} (= ${HMB_DEB_VERSION})")
endif()

include(CPack)
