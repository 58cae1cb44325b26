-- Listeners as Node's EventEmitter has them, kept by the core for both hosts: the same function
-- added twice is two listeners and off removes one, once hears one event, a model has on, once and
-- off too, and a listener that refers to its connection does not keep the connection alive.
local mgconn = require "mgconn"
local H = require "helper"

describe("listeners (Lua)", function()
  local server

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("the same function twice is two listeners; off removes one, once hears one event", function()
    local conn = mgconn.createConnection(server.uri .. "listeners")
    local heard = {}
    local function on_open() heard[#heard + 1] = "open" end
    conn:on("open", on_open):on("open", on_open):off("open", on_open)
    conn:once("connected", function() heard[#heard + 1] = "connected once" end)
    conn:off("reconnected", on_open) -- never added: nothing happens
    assert(conn:asPromise():wait(10))
    mgconn.poll()
    assert.are.same({ "connected once", "open" }, heard)
    assert(conn:close():wait(10))
    mgconn.poll()
    assert.are.same({ "connected once", "open" }, heard)
  end)

  it("a model has on, once and off, with the same rules", function()
    local conn = mgconn.createConnection(server.uri .. "listeners")
    local Thing = conn:model("Thing", mgconn.Schema({ n = "number" }))
    local every, once = 0, 0
    local function on_index() every = every + 1 end
    Thing:on("index", on_index):on("index", on_index):off("index", on_index)
    Thing:once("index", function() once = once + 1 end)
    assert(conn:asPromise():wait(10))
    assert(Thing:init():wait(10))
    mgconn.poll()
    assert.are.same({ 1, 1 }, { every, once })
    assert(conn:close():wait(10))
    conn:openUri(server.uri .. "listeners")
    assert(conn:asPromise():wait(10))
    assert(Thing:init():wait(10))
    mgconn.poll()
    assert.are.same({ 2, 1 }, { every, once })
    assert(conn:close():wait(10))
  end)

  it("a closed connection whose listener refers to it is collected", function()
    local conn = mgconn.createConnection(server.uri .. "listeners")
    conn:on("close", function() return conn.name end)
    assert(conn:asPromise():wait(10))
    assert(conn:close():wait(10))
    mgconn.poll()
    local gone = setmetatable({ conn }, { __mode = "v" })
    conn = nil
    collectgarbage() collectgarbage()
    assert.is_nil(gone[1], "the connection was kept alive by its own listener")
  end)

  it("an unknown event is refused with the core's message", function()
    local conn = mgconn.createConnection(server.uri .. "listeners")
    local ok, err = pcall(conn.on, conn, "conected", print)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("conected", 1, true), tostring(err))
    assert(conn:close():wait(10))
  end)
end)
