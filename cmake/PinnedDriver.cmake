# The pinned mongo-c-driver (third_party/mongo-c-driver-*/pin), built once per machine by
# scripts/setup.sh into the deps cache ($MGCONN_DEPS, else the source tree's .deps). Defines the
# imported target PkgConfig::MONGOC (libmongoc and libbson, static, position-independent) and
# MGCONN_DRIVER_PREFIX. The TSan build takes the driver's TSan-instrumented variant.
file(GLOB _mg_pin "${PROJECT_SOURCE_DIR}/third_party/mongo-c-driver-*/pin")
file(STRINGS "${_mg_pin}" _mg_version REGEX "^version=")
file(STRINGS "${_mg_pin}" _mg_sha256 REGEX "^sha256=")
string(REPLACE "version=" "" MGCONN_DRIVER_VERSION "${_mg_version}")
string(REPLACE "sha256=" "" _mg_sha256 "${_mg_sha256}")
string(SUBSTRING "${_mg_sha256}" 0 12 _mg_key)
set(_mg_variant "")
if(MGCONN_SANITIZE STREQUAL "thread")
  set(_mg_variant "-tsan")
endif()
if(DEFINED ENV{MGCONN_DEPS} AND NOT "$ENV{MGCONN_DEPS}" STREQUAL "")
  set(_mg_deps "$ENV{MGCONN_DEPS}")
else()
  set(_mg_deps "${PROJECT_SOURCE_DIR}/.deps")
endif()
set(MGCONN_DRIVER_PREFIX "${_mg_deps}/mongo-c-driver-${MGCONN_DRIVER_VERSION}-${_mg_key}${_mg_variant}"
    CACHE PATH "The pinned mongo-c-driver's build (scripts/build-driver.sh makes it)")
if(NOT EXISTS "${MGCONN_DRIVER_PREFIX}/.complete")
  message(FATAL_ERROR "mongo-c-driver ${MGCONN_DRIVER_VERSION} is not built at ${MGCONN_DRIVER_PREFIX}: "
                      "run scripts/setup.sh (or scripts/build-driver.sh ${_mg_deps}"
                      "${_mg_variant}) first")
endif()
set(ENV{PKG_CONFIG_PATH} "${MGCONN_DRIVER_PREFIX}/lib/pkgconfig")
pkg_check_modules(MONGOC REQUIRED mongoc2-static=${MGCONN_DRIVER_VERSION})
# Made by hand: pkg-config's IMPORTED_TARGET would put the archives' paths ahead of the objects.
add_library(PkgConfig::MONGOC INTERFACE IMPORTED GLOBAL)
set_target_properties(PkgConfig::MONGOC PROPERTIES
  INTERFACE_COMPILE_OPTIONS "${MONGOC_CFLAGS}" INTERFACE_LINK_LIBRARIES "${MONGOC_LDFLAGS};Threads::Threads")
message(STATUS "mongo-c-driver ${MGCONN_DRIVER_VERSION} (static) from ${MGCONN_DRIVER_PREFIX}")
