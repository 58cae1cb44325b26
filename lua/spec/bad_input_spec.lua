-- The bad-input catalogue, Lua part: each case gets a clear error naming the problem (never the
-- password), and loses nothing: an insert in flight on the same connection succeeds, and the
-- connection takes new operations after it.
local mgconn = require "mgconn"
local H = require "helper"

local SECRET = "Pa55w0rdNeverShown"

-- Runs `action(conn)`; it must fail (an error raised, or an op's err) with a message matching `pattern`
-- (a plain substring) and, when given, the category.
local function expect_failure(conn, action, pattern, category)
  local ok, res, err = pcall(action, conn)
  local e
  if not ok then
    e = res
  elseif type(res) == "table" and res.wait then
    local value
    value, e = res:wait(10)
    assert(value == nil, "the operation succeeded")
  else
    e = err
  end
  assert(e ~= nil, "no error")
  local message = type(e) == "table" and e.message or tostring(e)
  assert(message:find(pattern, 1, true), "the message does not say what went wrong: " .. message)
  assert(not message:find(SECRET, 1, true), "the password is in the message")
  if category then assert.are.equal(category, e.category) end
end

describe("bad input (Lua)", function()
  local server
  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  local cyc = {}; cyc.self = cyc
  local deep = {}
  do local t = deep for _ = 1, 5000 do t.d = {} t = t.d end end

  local cases = {
    { "malformed URI", function() return mgconn.createConnection("mongodb://[::1/x") end, "Invalid connection string", "Option" },
    { "wrong scheme", function() return mgconn.createConnection("redis://127.0.0.1/x") end, "URI", "Option" },
    { "bad option value with a password in the URI",
      function() return mgconn.createConnection("mongodb://u:" .. SECRET .. "@127.0.0.1/x", { maxPoolSize = "ten" }) end,
      "maxPoolSize", "Option" },
    { "option out of range", function() return mgconn.createConnection("mongodb://h/x", { heartbeatFrequencyMS = 10 }) end,
      "heartbeatFrequencyMS", "Option" },
    { "unknown option", function() return mgconn.createConnection("mongodb://h/x", { bufferComands = true }) end,
      "bufferCommands", "Option" },
    { "options not a table", function() return mgconn.createConnection("mongodb://h/x", 42) end, "table" },
    { "a function in a document", function(c) return c:collection("items"):insertOne({ f = print }) end, "doc.f", "Type" },
    { "a coroutine in an array", function(c)
        return c:collection("items"):insertOne({ list = mgconn.array({ 1, coroutine.create(function() end) }) })
      end, "doc.list[2]", "Type" },
    { "a cycle", function(c) return c:collection("items"):insertOne(cyc) end, "nesting deeper", "Type" },
    { "nesting 5,000 deep", function(c) return c:collection("items"):insertOne(deep) end, "nesting deeper", "Type" },
    { "array and hash parts mixed", function(c) return c:collection("items"):insertOne({ m = { 1, x = 2 } }) end,
      "doc.m", "Type" },
    { "invalid UTF-8 in a value", function(c) return c:collection("items"):insertOne({ s = "bad\255" }) end,
      "UTF-8", "Type" },
    { "an empty key in a document to insert", function(c) return c:collection("items"):insertOne({ a = { [""] = 1 } }) end,
      'an empty key, which cannot be stored, at a.""', "InvalidArgument" },
    { "a float key", function(c) return c:collection("items"):insertOne({ [1.5] = 1 }) end,
      "key", "Type" },
    { "document over 16 MiB", function(c) return c:collection("items"):insertOne({ blob = ("x"):rep(17 * 1024 * 1024) }) end,
      "nothing was sent", "DocumentTooLarge" },
    { "duplicate _id", function(c)
        c:collection("items"):insertOne({ _id = "dup" }):wait(10)
        return c:collection("items"):insertOne({ _id = "dup" })
      end, "E11000", "DuplicateKey" },
    { "unknown command", function(c) return c:runCommand({ noSuchCommand = 1 }) end, "noSuchCommand", "Operation" },
    { "unknown event name", function(c) return c:on("conected", print) end, "conected" },
    { "model never registered", function(c) return c:model("Nope") end, "Nope", "MissingSchema" },
    { "operation on a closed connection", function()
        local other = mgconn.createConnection(server.uri .. "bad_closed")
        other:asPromise():wait(10)
        other:close():wait(10)
        return other:collection("items"):insertOne({ a = 1 })
      end, "closed", "ConnectionClosed" },
    { "await outside a coroutine", function(c) return c:collection("items"):findOne({}):await() end, "coroutine" },
  }

  for _, case in ipairs(cases) do
    it(case[1] .. ": a clear error, and the connection goes on", function()
      local conn = mgconn.createConnection(server.uri .. "bad_input")
      assert(conn:asPromise():wait(10))
      local items = conn:collection("items")
      local before = items:insertOne({ before = case[1] }) -- in flight during the bad input
      expect_failure(conn, case[2], case[3], case[4])
      assert(before:wait(10), "the insert made before the bad input was lost")
      local after = assert(items:insertOne({ after = case[1] }):wait(10))
      assert.are.equal(case[1], items:findOne({ _id = after.insertedId }):wait(10).after)
      conn:close():wait(10)
    end)
  end

  it("closing a connection from inside its own open listener", function()
    local conn = mgconn.createConnection(server.uri .. "bad_input")
    local closing, seen = nil, {}
    conn:on("open", function() closing = conn:close() end)
    conn:on("close", function() seen[#seen + 1] = "close" end)
    H.until_true(function() return closing ~= nil and closing:done() end, 10)
    assert.are.same({ "close" }, seen)
    assert.are.equal(0, conn.readyState)
  end)

  it("collecting a connection with operations in flight", function()
    local results = {}
    do
      local conn = mgconn.createConnection(server.uri .. "bad_input")
      for i = 1, 20 do
        conn:collection("gc"):insertOne({ n = i }, function(err) results[#results + 1] = err and err.category or "ok" end)
      end
    end
    collectgarbage(); collectgarbage()
    H.until_true(function() return #results == 20 end, 10)
    assert.are.equal(20, #results) -- every operation resolved: succeeded, or failed clearly
    for _, r in ipairs(results) do assert(r == "ok" or r == "ConnectionClosed", r) end
    local check = mgconn.createConnection(server.uri .. "bad_input")
    assert(check:runCommand({ ping = 1 }):wait(10))
    check:close():wait(10)
  end)
end)
