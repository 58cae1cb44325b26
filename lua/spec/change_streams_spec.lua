-- Change streams: on a scripted replica-set primary (tests/mock/rs_primary.py) the aggregate a
-- watch sends, its events in order, and its resume after a resumable error and after the
-- connection drops (no event lost or seen twice); on FerretDB, which has none, NotSupported.
local mgconn = require "mgconn"
local H = require "helper"

local function ids(changes)
  local out = {}
  for i, c in ipairs(changes) do out[i] = c.documentKey._id end
  return table.concat(out, ",")
end

describe("change streams", function()
  for _, scenario in ipairs({ "stream", "stream_hangup" }) do
    it("gives every event once, in order, through a " .. (scenario == "stream" and "resumable error" or
       "dropped connection"), function()
      local p = H.primary(scenario)
      local conn = mgconn.createConnection(p.uri, { heartbeatFrequencyMS = 500 })
      local stream = conn:collection("orders"):watch({ { ["$match"] = { operationType = "insert" } } },
                                                     { fullDocument = "updateLookup", maxAwaitTimeMS = 50 })
      local seen = {}
      while #seen < 3 do
        local change, err = stream:next():wait(20)
        assert.is_nil(err)
        seen[#seen + 1] = change
        if change.documentKey._id == 1 then -- the batch held 1 and 2: the token is the last one returned
          assert.are.same({ _data = "T1" }, stream:resumeToken())
        end
      end
      assert.are.equal("1,2,3", ids(seen))
      assert.are.same({ _data = "T3" }, stream:resumeToken())
      local aggregates = p.commands("aggregate")
      assert.are.equal(2, #aggregates)
      assert.are.same({ _data = "T2" }, aggregates[2].resumeAfter)
      stream:close()
      conn:close(true):wait(10)
      p.stop()
    end)
  end

  it("delivers changes to on('change') listeners from poll()", function()
    local p = H.primary("stream")
    local conn = mgconn.createConnection(p.uri)
    local seen = {}
    local stream = conn:watch()
    stream:on("change", function(c) seen[#seen + 1] = c end)
    assert.is_truthy(H.until_true(function() return #seen >= 3 end, 20))
    assert.are.equal("1,2,3", ids(seen))
    stream:close()
    conn:close(true):wait(10)
    p.stop()
  end)

  it("ends a read waiting for a cursor slot at close(), and gives slots back at close()", function()
    local p = H.primary("quiet_stream")
    local conn = mgconn.createConnection(p.uri, { maxOpenCursors = 1, bufferTimeoutMS = 5000 })
    local first = conn:collection("orders"):watch()
    first:on("change", function() end)
    local second = conn:collection("orders"):watch()
    local read = second:next()
    H.until_true(function() return false end, 0.2)
    assert.is_false(read:done())
    local started = mgconn.now()
    second:close()
    local change, err = read:wait(2)
    assert.is_nil(change)
    assert.is_nil(err)
    assert.is_true(mgconn.now() - started < 1000)
    first:close()
    assert.is_truthy(H.until_true(function() return conn:stats().openCursors == 0 end, 2))
    assert.has_error(function() conn:collection("orders"):watch({ ["$match"] = { x = 1 } }) end)
    conn:close(true):wait(10)
    p.stop()
  end)

  it("says NotSupported on FerretDB, for a collection and a database", function()
    local server = H.server()
    local conn = mgconn.createConnection(server.uri .. "streams")
    for _, stream in ipairs({ conn:collection("items"):watch(), conn:watch() }) do
      local _, err = stream:next():wait(10)
      assert.are.equal("NotSupported", err.category)
      assert.is_truthy(err.message:find("does not support change streams", 1, true))
      local change, again = stream:next():wait(10) -- refused by the server: the stream is over
      assert.is_nil(change)
      assert.is_nil(again)
    end
    assert.has_error(function() conn:collection("items"):watch(nil, { batchSize = "x" }) end)
    assert.has_error(function() conn:watch(nil, { foo = 1 }) end)
    local errors = {}
    conn:collection("items"):watch():on("error", function(e) errors[#errors + 1] = e end):on("change", function() end)
    assert.is_truthy(H.until_true(function() return #errors == 1 end, 10))
    assert.are.equal(0, conn:collection("items"):countDocuments({}):wait(10)) -- the connection goes on
    conn:close():wait(10)
    server.stop()
  end)
end)
