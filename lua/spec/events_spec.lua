-- What a listener sees: the readyState of the event it hears, the error of a loss, and a cached
-- useDb child that was closed is not handed out again.
local mgconn = require "mgconn"
local H = require "helper"

describe("event details (Lua)", function()
  local server

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("readyState is 3 inside a disconnecting listener, 0 in disconnected", function()
    local conn = mgconn.createConnection(server.uri .. "events")
    assert(conn:asPromise():wait(10))
    local during, after
    conn:on("disconnecting", function() during = conn.readyState end)
    conn:on("disconnected", function() after = conn.readyState end)
    assert(conn:close():wait(10))
    assert.are.equal(3, during)
    assert.are.equal(0, after)
  end)

  it("the disconnected listener of a loss gets the last monitoring error", function()
    local own = H.server()
    local conn = mgconn.createConnection(own.uri .. "events", { heartbeatFrequencyMS = 500 })
    assert(conn:asPromise():wait(10))
    local got, heard = nil, false
    conn:on("disconnected", function(err) heard, got = true, err end)
    own.kill()
    assert.truthy(H.until_true(function() return heard end, 15))
    assert.is_table(got)
    assert.is_string(got.message)
    assert.truthy(#got.message > 0)
    conn:close(true):wait(10)
    own.stop()
  end)

  it("the disconnected listener gets a cause when an operation, not a heartbeat, found the loss", function()
    local own = H.server()
    local conn = mgconn.createConnection(own.uri .. "events") -- heartbeats every 10 s: the insert finds it
    assert(conn:asPromise():wait(10))
    local got, heard = nil, false
    conn:on("disconnected", function(err) heard, got = true, err end)
    own.kill()
    conn:collection("x"):insertOne({ a = 1 })
    assert.truthy(H.until_true(function() return heard end, 15))
    assert.is_table(got)
    -- the first failure that told of the loss: the operation's socket error, or mgconn's own words
    -- when the driver marked the server unknown before saying why
    assert.equals("Network", got.category)
    assert.truthy(got.message:find("Lost the connection", 1, true) or got.message:find("socket", 1, true),
                  got.message)
    conn:close(true):wait(10)
    own.stop()
  end)

  it("poll(1) runs one listener of a root's fan-out to 2,000 cached children at a time, in order", function()
    local conn = mgconn.createConnection(server.uri .. "events")
    assert(conn:asPromise():wait(10))
    local order = {}
    for i = 1, 2000 do
      conn:useDb("fan_" .. i, { useCache = true }):on("disconnecting", function() order[#order + 1] = i end)
    end
    mgconn.poll()
    local closing = conn:close()
    local stop, most = mgconn.now() + 20000, 0
    while #order < 2000 and mgconn.now() < stop do
      local before = #order
      local ran = mgconn.poll(1)
      assert.truthy(ran <= 1)
      most = math.max(most, #order - before)
      if ran == 0 then mgconn.idle(10) end
    end
    assert.are.equal(2000, #order)
    assert.are.equal(1, most)
    for i = 1, 2000 do assert.are.equal(i, order[i]) end
    assert(closing:wait(10))
  end)

  it("after a cached useDb child is closed, useDb returns a new, working child", function()
    local conn = mgconn.createConnection(server.uri .. "events")
    assert(conn:asPromise():wait(10))
    local first = conn:useDb("tenant_a", { useCache = true })
    assert.are.equal(first, conn:useDb("tenant_a", { useCache = true }))
    assert(first:close():wait(10))
    local second = conn:useDb("tenant_a", { useCache = true })
    assert.are_not.equal(first, second)
    local res, err = second:collection("x"):insertOne({ a = 1 }):wait(10)
    assert.is_nil(err)
    assert.truthy(res.insertedId)
    conn:close():wait(10)
  end)
end)
