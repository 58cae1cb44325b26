-- Misuse raises at the call, naming the argument; a wait that runs out has its own category; and
-- createConnection's callback is called as Mongoose calls it.
local mgconn = require "mgconn"
local H = require "helper"

-- fn() must raise a message that names the argument, from this file's line (the caller), not
-- from inside mgconn.lua.
local function raises(fn, pattern)
  local ok, msg = pcall(fn)
  assert(not ok, "it did not raise")
  msg = tostring(msg)
  assert(msg:find(pattern, 1, true), "the message does not name the argument: " .. msg)
  assert(msg:find("misuse_spec.lua", 1, true), "the error does not point at the call: " .. msg)
end

describe("misuse (Lua)", function()
  local server, conn

  setup(function()
    server = H.server()
    conn = mgconn.createConnection(server.uri .. "misuse")
    assert(conn:asPromise():wait(10))
  end)
  teardown(function()
    conn:close():wait(10)
    server.stop()
  end)

  it("raises at the call for a document that is not a table", function()
    local items = conn:collection("items")
    raises(function() items:insertOne(42) end, "bad argument #1 to 'insertOne' (table expected, got number)")
    raises(function() items:insertMany("x") end, "bad argument #1 to 'insertMany'")
    raises(function() items:updateOne({}, 5) end, "bad argument #2 to 'updateOne'")
    raises(function() items:deleteMany(true) end, "bad argument #1 to 'deleteMany'")
  end)

  it("raises at the call for options that are not a table", function()
    raises(function() conn:collection("items"):findOne({}, "opts") end,
           "bad argument #2 to 'findOne' (table or nil expected, got string)")
    raises(function() conn:collection("items"):find({}, 3) end, "bad argument #2 to 'find'")
  end)

  it("raises at the call for a callback or listener that is not a function", function()
    raises(function() conn:collection("items"):insertOne({}, {}, 7) end,
           "bad argument #3 to 'insertOne' (function or nil expected, got number)")
    raises(function() conn:collection("items"):countDocuments({}, 7) end, "bad argument #2 to 'countDocuments'")
    raises(function() conn:on("open", 12) end, "bad argument #2 to 'on' (function expected, got number)")
    raises(function() conn:once("close", "f") end, "bad argument #2 to 'once'")
  end)

  it("raises for a schema that is not an mgconn.Schema", function()
    raises(function() conn:model("X", "notaschema") end, "bad argument #2 to 'model' (mgconn.Schema or nil expected")
  end)

  it("loses nothing: the connection works after every misuse", function()
    pcall(function() conn:collection("items"):insertOne(42) end)
    local res, err = conn:collection("items"):insertOne({ ok = true }):wait(10)
    assert.is_nil(err)
    assert.truthy(res.insertedId)
  end)

  it("an op:wait that runs out fails with category Timeout, not Type, and the op goes on", function()
    local later = H.server({ later = true })
    local c = mgconn.createConnection(later.uri .. "x", { heartbeatFrequencyMS = 500 })
    local op = c:collection("items"):insertOne({ a = 1 })
    local res, err = op:wait(0.2)
    assert.is_nil(res)
    assert.are.equal("Timeout", err.category)
    assert.is_false(op:done())
    later.start()
    res, err = op:wait(10)
    assert.is_nil(err)
    assert.truthy(res.insertedId)
    c:close():wait(10)
    later.stop()
  end)

  it("createConnection(uri, opts, cb) calls cb(err, conn) once open, as Mongoose does", function()
    local got_err, got_conn, calls = "unset", nil, 0
    local c = mgconn.createConnection(server.uri .. "cb", {}, function(err, opened)
      calls, got_err, got_conn = calls + 1, err, opened
    end)
    assert.truthy(H.until_true(function() return calls > 0 end, 10))
    assert.is_nil(got_err)
    assert.are.equal(c, got_conn)
    local failed
    local bad = mgconn.createConnection("mongodb://127.0.0.1:" .. H.closed_port() .. "/x",
                                        { serverSelectionTimeoutMS = 300 }, function(err) failed = err end)
    assert.truthy(H.until_true(function() return failed end, 10))
    assert.are.equal("ServerSelection", failed.category)
    H.until_true(function() return false end, 0.1)
    assert.are.equal(1, calls)
    c:close():wait(10)
    bad:close(true):wait(10)
  end)
end)
