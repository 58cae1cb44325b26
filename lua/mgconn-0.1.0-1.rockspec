-- Build and install with `luarocks --lua-version=5.4 make lua/mgconn-0.1.0-1.rockspec` from the
-- repository root (Debian: liblua5.4-dev, libssl-dev, libsasl2-dev and luarocks; scripts/setup.sh
-- installs them). One source for Lua 5.1 to 5.4 and LuaJIT: --lua-version=5.1 (which LuaJIT loads
-- too), 5.2, 5.3 or 5.4 builds for that version (Debian's luarocks defaults to 5.1). lua/Makefile
-- links in the pinned mongo-c-driver (third_party/), built once per machine by
-- scripts/build-driver.sh into the deps cache ($MGCONN_DEPS, else .deps) if it is not there yet;
-- $MGCONN_DRIVER_PREFIX (a build of it) names another.
package = "mgconn"
version = "0.1.0-1"
-- The release archive of the repository (`git archive`, top folder mgconn-0.1.0). scripts/rock.sh
-- makes it and packs this rockspec with it into mgconn-0.1.0-1.src.rock, which `luarocks build`
-- builds on any machine with the external dependencies below. (The project has no public download
-- URL yet; rock.sh points `url` at the archive it made while packing.)
source = { url = "mgconn-0.1.0.tar.gz", dir = "mgconn-0.1.0" }
description = {
  summary = "MongoDB connections for Lua 5.1-5.4 and LuaJIT with Mongoose's behaviour: buffering, events, models",
  detailed = [[
    require "mgconn" gives Lua scripts and the game hosts that embed them connections with events,
    operation buffering, a model registry and server-selection errors that explain themselves, on a
    C core (libmgconn, over libmongoc) that never makes the host's frame wait for the database:
    results arrive through mgconn.poll(), called once per frame. Needs the pinned mongo-c-driver
    2.5.0, which it carries (third_party/) and builds once per machine with static libraries
    (scripts/build-driver.sh; $MGCONN_DRIVER_PREFIX names a build of it), OpenSSL and Cyrus SASL
    with their headers (Debian: libssl-dev, libsasl2-dev) and a C11 compiler.
  ]],
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.1, < 5.5" }
-- The driver itself is in the source (third_party/) and linked in statically; what it needs is not.
external_dependencies = {
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" }, -- Debian: libssl-dev
  SASL = { header = "sasl/sasl.h", library = "sasl2" },     -- Debian: libsasl2-dev
}
build = {
  -- lua/Makefile: the builtin type would also copy everything under lua/ (sources, specs, tests)
  -- into the Lua tree; this installs the module only.
  type = "make",
  makefile = "lua/Makefile",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
  },
}
