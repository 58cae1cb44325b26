-- Build and install with `luarocks make lua/mgconn-0.1.0-1.rockspec MONGOC_DIR=<driver>` from the
-- repository root, <driver> being the pinned mongo-c-driver's build that scripts/build-driver.sh
-- prints (scripts/setup.sh makes it; Debian: liblua5.4-dev, libssl-dev, libsasl2-dev, luarocks).
-- The driver is linked in statically (pass LIBFLAG="-shared -Wl,--exclude-libs,ALL" to keep its
-- symbols private to the module, as the CMake build does).
package = "mgconn"
version = "0.1.0-1"
-- The release archive of the repository (`git archive`, top folder mgconn-0.1.0). scripts/rock.sh
-- makes it and packs this rockspec with it into mgconn-0.1.0-1.src.rock, which `luarocks build`
-- builds on any machine with the external dependencies below. (The project has no public download
-- URL yet; rock.sh points `url` at the archive it made while packing.)
source = { url = "mgconn-0.1.0.tar.gz", dir = "mgconn-0.1.0" }
description = {
  summary = "MongoDB connections for Lua 5.4 with Mongoose's behaviour: buffering, events, models",
  detailed = [[
    require "mgconn" gives Lua scripts and the game hosts that embed them connections with events,
    operation buffering, a model registry and server-selection errors that explain themselves, on a
    C core (libmgconn, over libmongoc) that never makes the host's frame wait for the database:
    results arrive through mgconn.poll(), called once per frame. Needs the pinned mongo-c-driver
    2.5.0 built with static libraries (MONGOC_DIR; the repository's scripts/build-driver.sh makes
    it), OpenSSL and Cyrus SASL with their headers (Debian: libssl-dev, libsasl2-dev) and a C11
    compiler.
  ]],
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = { -- the pinned mongo-c-driver (scripts/build-driver.sh), linked in statically
  MONGOC = { header = "mongoc-2.5.0/mongoc/mongoc.h", library = "mongoc2" },
}
build = {
  type = "builtin",
  modules = {
    mgconn = "lua/mgconn.lua",
    ["mgconn.core"] = {
      sources = {
            "lua/src/codec.c",
            "lua/src/handles.c",
            "core/src/collection.c",
            "core/src/connection.c",
            "core/src/cursor.c",
            "core/src/debug.c",
            "core/src/error.c",
            "core/src/event.c",
            "core/src/init.c",
            "core/src/log.c",
            "core/src/model.c",
            "core/src/monitor.c",
            "core/src/op.c",
            "core/src/ops.c",
            "core/src/options.c",
            "core/src/family.c",
            "core/src/pluralize.c",
            "core/src/redact.c",
            "core/src/reply_check.c",
            "core/src/runtime.c",
            "core/src/schema.c",
            "core/src/settings.c",
            "core/src/strbuf.c",
            "core/src/timer.c",
            "core/src/wakeup.c",
      },
      defines = { "_GNU_SOURCE", "MONGOC_STATIC", "BSON_STATIC" },
      incdirs = { "core/include", "core/src", "$(MONGOC_INCDIR)/mongoc-2.5.0", "$(MONGOC_INCDIR)/bson-2.5.0" },
      libdirs = { "$(MONGOC_LIBDIR)" },
      -- ":libX.a" asks the linker for the archive by its file name (GNU ld and lld).
      libraries = { ":libmongoc2.a", ":libbson2.a", "sasl2", "ssl", "crypto", "resolv", "rt", "pthread", "dl" },
    },
  },
}
