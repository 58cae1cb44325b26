-- Build and install with `luarocks make lua/mgconn-0.1.0-1.rockspec` from the repository root
-- (Debian: liblua5.4-dev, libmongoc-dev and luarocks; scripts/setup.sh installs them).
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
            "core/src/buffer.c",
            "core/src/ops.c",
            "core/src/options.c",
            "core/src/family.c",
            "core/src/pluralize.c",
            "core/src/redact.c",
            "core/src/runtime.c",
            "core/src/schema.c",
            "core/src/settings.c",
            "core/src/timer.c",
            "core/src/wakeup.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "core/include", "core/src", "$(MONGOC_INCDIR)/libmongoc-1.0", "$(MONGOC_INCDIR)/libbson-1.0" },
      libdirs = { "$(MONGOC_LIBDIR)" },
      libraries = { "mongoc-1.0", "bson-1.0", "pthread" },
    },
  },
}
