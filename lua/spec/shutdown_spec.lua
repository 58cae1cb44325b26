-- Shutdown paths: closing a connection that is still connecting, and waiting for the open of a
-- closed one, end at once (they waited for serverSelectionTimeoutMS, or forever).
local mgconn = require "mgconn"
local H = require "helper"

describe("mgconn shutdown paths", function()
  it("ends the attempt at once when closed while connecting", function()
    -- nothing listens: with the default serverSelectionTimeoutMS the attempt would last 30 s
    local conn = mgconn.createConnection("mongodb://127.0.0.1:" .. H.closed_port() .. "/x")
    local r = H.recorder(conn)
    local waiting = conn:asPromise()
    local ok, err = conn:close():wait(1) -- within 1 s, where it used to take 30
    assert.is_true(ok, err and err.message)
    local res, e = waiting:wait(1)
    assert.is_nil(res)
    assert.are.equal("ConnectionClosed", e.category)
    mgconn.poll()
    assert.are.equal("connecting,disconnected,close", r.seq())
    assert.are.equal(0, conn.readyState)
  end)

  it("fails asPromise on a closed connection at once", function()
    local server = H.server()
    local conn = mgconn.createConnection(server.uri .. "shutdown")
    assert.are.equal(conn, conn:asPromise():wait(10))
    conn:close():wait(10)
    local res, e = conn:asPromise():wait(1) -- it waited forever
    assert.is_nil(res)
    assert.are.equal("ConnectionClosed", e.category)
    conn:openUri(server.uri .. "shutdown")
    assert.are.equal(conn, conn:asPromise():wait(10))
    conn:close():wait(10)
    server.stop()
  end)
end)
