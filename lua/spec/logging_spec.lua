-- Log lines into the game's own logger: mgconn.setLogger(fn) gets mgconn's and libmongoc's lines,
-- mgconn.set("debug", fn) hands each operation's debug line to fn.
local mgconn = require "mgconn"
local H = require "helper"

describe("logging (Lua)", function()
  local server

  setup(function() server = H.server() end)
  teardown(function()
    mgconn.setLogger(nil)
    mgconn.set("debug", false)
    server.stop()
  end)

  it("set('debug', fn) is accepted and fn gets one line per operation as it is sent", function()
    local lines = {}
    mgconn.set("debug", function(line) lines[#lines + 1] = line end)
    local conn = mgconn.createConnection(server.uri .. "logging")
    assert(conn:collection("users"):findOne({ name = "x" }):wait(10) == nil)
    assert.are.equal(1, #lines)
    assert.truthy(lines[1]:find('users.findOne({"name": "x"}', 1, true), lines[1])
    mgconn.set("debug", false)
    conn:collection("users"):findOne({ name = "y" }):wait(10)
    assert.are.equal(1, #lines)
    conn:close():wait(10)
  end)

  it("setLogger(fn) routes mgconn's and libmongoc's lines into the game's logger", function()
    local got = {}
    mgconn.setLogger(function(level, domain, message) got[#got + 1] = { level, domain, message } end)
    local own = H.server()
    local conn = mgconn.createConnection(own.uri .. "logging", { heartbeatFrequencyMS = 500, keepAlive = true })
    assert(conn:asPromise():wait(10))
    local function find(pred) for _, l in ipairs(got) do if pred(l) then return l end end end
    local ours = H.until_true(function() return find(function(l) return l[2] == "mgconn" end) end, 5)
    assert.truthy(ours, "no mgconn line")
    assert.are.equal("warning", ours[1])
    assert.truthy(ours[3]:find("keepAlive", 1, true), ours[3])
    own.kill()
    conn:collection("x"):insertOne({ a = 1 }) -- its pooled client fails to reconnect: a libmongoc warning
    local driver = H.until_true(function() return find(function(l) return l[2] ~= "mgconn" end) end, 15)
    assert.truthy(driver, "no libmongoc line")
    assert.truthy(driver[3]:find(tostring(own.port), 1, true), driver[3])
    conn:close(true):wait(10)
    own.stop()
  end)
end)
