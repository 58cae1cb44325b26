-- Connection string options whose value is a list or a table (readPreferenceTags, a list of tag
-- sets; authMechanismProperties, a table of strings) work as options in the options table, and a
-- wrong shape is an OptionError naming the option and the shape, never a property's value.
local mgconn = require "mgconn"
local H = require "helper"

describe("list and table options (Lua)", function()
  local server
  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("readPreferenceTags and authMechanismProperties as options: taken, or refused by shape", function()
    local conn = mgconn.createConnection(server.uri .. "lua_options", {
      readPreference = "secondaryPreferred",
      readPreferenceTags = { { dc = "ny", rack = "1" }, {} },
      authMechanismProperties = { SERVICE_NAME = "mongodb" },
    })
    assert(conn:asPromise():wait(10))
    assert(conn:collection("items"):insertOne({ a = 1 }):wait(10))
    conn:close():wait(10)

    local ok, e = pcall(mgconn.createConnection, server.uri .. "lua_options",
      { readPreference = "nearest", readPreferenceTags = { "dc:ny" } })
    assert(not ok, "a tag set given as a string was accepted")
    local message = type(e) == "table" and e.message or tostring(e)
    assert(message:find('"readPreferenceTags"', 1, true) and message:find("a list of tag sets", 1, true), message)

    ok, e = pcall(mgconn.createConnection, server.uri .. "lua_options",
      { authMechanism = "MONGODB-AWS", authMechanismProperties = { AWS_SESSION_TOKEN = "t0ken-s3cret", PORT = 5 } })
    assert(not ok, "a property that is not a string was accepted")
    message = type(e) == "table" and e.message or tostring(e)
    assert(message:find('"authMechanismProperties"', 1, true) and message:find('"PORT"', 1, true), message)
    assert(not message:find("t0ken-s3cret", 1, true), "the session token is in the message: " .. message)
  end)
end)
