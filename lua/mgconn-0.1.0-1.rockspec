-- Build and install with `luarocks --lua-version=5.4 make lua/mgconn-0.1.0-1.rockspec` from the
-- repository root (Debian: liblua5.4-dev, libmongoc-dev and luarocks; scripts/setup.sh installs
-- them). The module is written for Lua 5.4's C API; Debian's luarocks defaults to 5.1, hence the flag.
package = "mgconn"
version = "0.1.0-1"
source = { url = "git+file://." }
description = {
  summary = "MongoDB connections for Lua 5.4 with Mongoose's behaviour: buffering, events, models",
  detailed = [[
    require "mgconn" gives Lua scripts and the game hosts that embed them connections with events,
    operation buffering, a model registry and server-selection errors that explain themselves, on a
    C core (libmgconn, over libmongoc) that never makes the host's frame wait for the database:
    results arrive through mgconn.poll(), called once per frame.
  ]],
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  MONGOC = { header = "libmongoc-1.0/mongoc/mongoc.h", library = "mongoc-1.0" },
}
build = {
  -- lua/Makefile: the builtin type would also copy everything under lua/ (sources, specs, tests)
  -- into the Lua tree; this installs the module only.
  type = "make",
  makefile = "lua/Makefile",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    MONGOC_INCDIR = "$(MONGOC_INCDIR)", MONGOC_LIBDIR = "$(MONGOC_LIBDIR)",
  },
  install_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    MONGOC_INCDIR = "$(MONGOC_INCDIR)", MONGOC_LIBDIR = "$(MONGOC_LIBDIR)", LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
  },
}
