-- Work in flight when the server dies, as a Lua host sees it. The server is stopped (SIGSTOP), the
-- operations are issued and reach its sockets, then it is killed and restarted: none of them was
-- applied, so each one's fate is known.
local mgconn = require "mgconn"
local H = require "helper"

describe("work in flight through a server kill", function()
  it("is sent again after the restart when safe, and a $inc fails as OutcomeUnknown", function()
    local own = H.server()
    finally(function() own.stop() end) -- a failed assertion must not leave the server running
    local conn = mgconn.createConnection(own.uri .. "outage", { heartbeatFrequencyMS = 500, minPoolSize = 10,
                                                                  bufferTimeoutMS = 30000 })
    local r = H.recorder(conn)
    conn:asPromise():wait(10)
    local players = conn:collection("players")
    assert.truthy(players:insertOne({ _id = "counter", n = 0 }):wait(10)) -- the database exists before the kill
    H.until_true(function() return false end, 0.3) -- minPoolSize's sockets are connected

    os.execute("kill -STOP " .. own.pid)
    local saved, inc_err, found
    players:insertOne({ _id = "hero", level = 3 }, function(err, res) saved = err or res end)
    players:updateOne({ _id = "counter" }, { ["$inc"] = { n = 1 } }, function(err) inc_err = err or "succeeded" end)
    players:findOne({ _id = "counter" }, function(err, doc) found = err or doc end)
    H.until_true(function() return false end, 0.4) -- the requests reach the stopped server
    own.kill()
    own.start()

    assert.truthy(H.until_true(function() return saved and inc_err and found end, 20))
    assert.are.equal("hero", saved.insertedId, tostring(saved.message))
    assert.is_true(saved.resent >= 1)
    assert.are.equal("counter", found._id)
    assert.are.equal("table", type(inc_err))
    assert.are.equal("OutcomeUnknown", inc_err.category)
    assert.truthy(inc_err.message:find("may or may not have been applied", 1, true))
    assert.truthy(inc_err.message:find("not sent again", 1, true))
    assert.are.equal(0, players:findOne({ _id = "counter" }):wait(10).n) -- not sent a second time
    assert.are.equal(1, players:countDocuments({ _id = "hero" }):wait(10))
    assert.truthy(r.seq():find("reconnected", 1, true))
    conn:close():wait(10)
  end)
end)
