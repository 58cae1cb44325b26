-- Sessions and transactions: on a scripted replica-set primary (tests/mock/txn_primary.py, with
-- mockupdb from the Python test requirements) the commands a transaction sends and
-- withTransaction's retries; on FerretDB, which has no transactions, the NotSupported error.
local mgconn = require "mgconn"
local H = require "helper"
local core = require "mgconn.core"

local root = os.getenv("MGCONN_SOURCE_DIR") or "."
local python = os.getenv("MGCONN_PYTHON") or (root .. "/build-venv/bin/python")

local function primary(scenario)
  local p = { log = os.tmpname() }
  p.proc = io.popen(string.format("%s %s/tests/mock/txn_primary.py --scenario %s --log %s", python, root, scenario,
                                  p.log))
  local line = p.proc:read("*l") or ""
  local port, pid = line:match("^ready (%d+) (%d+)")
  assert(port, "the scripted primary did not start (" .. python .. " with mockupdb): " .. line)
  p.uri, p.pid = "mongodb://127.0.0.1:" .. port .. "/shop?replicaSet=rs0", pid
  function p.commands(name)
    local out = {}
    for l in io.lines(p.log) do
      local cmd = core.fromjson(l)
      if cmd and (name == nil or cmd.name == name) then out[#out + 1] = cmd end
    end
    return out
  end
  function p.stop()
    os.execute("kill " .. p.pid)
    p.proc:close()
    os.remove(p.log)
  end
  return p
end

describe("transactions", function()
  it("sends lsid, txnNumber, startTransaction and autocommit, then commitTransaction", function()
    local p = primary("commit")
    local conn = mgconn.createConnection(p.uri)
    local orders = conn:collection("orders")
    local s = conn:startSession()
    s:startTransaction({ writeConcern = { w = "majority" } })
    assert.is_true(s:inTransaction())
    assert.is_truthy(orders:insertOne({ item = "tea" }, { session = s }):wait(10))
    assert.is_truthy(orders:updateOne({ item = "tea" }, { ["$set"] = { paid = true } }, { session = s }):wait(10))
    assert.is_true(s:commitTransaction():wait(10))
    assert.is_false(s:inTransaction())
    s:endSession()
    local insert, update, commit = p.commands("insert")[1], p.commands("update")[1], p.commands("commitTransaction")[1]
    assert.are.equal(insert.lsid, update.lsid)
    assert.are.equal(insert.lsid, commit.lsid)
    assert.are.equal(insert.txnNumber, commit.txnNumber)
    assert.is_true(insert.startTransaction)
    assert.is_false(insert.autocommit)
    assert.are.equal(mgconn.null, update.startTransaction)
    conn:close(true):wait(10)
    p.stop()
  end)

  it("runs the whole transaction again after a TransientTransactionError", function()
    local p = primary("transient")
    local conn = mgconn.createConnection(p.uri)
    local orders = conn:collection("orders")
    local calls = 0
    local result, err = conn:transaction(function(session)
      calls = calls + 1
      local r, e = orders:insertOne({ item = "tea" }, { session = session }):await()
      if e then error(e) end
      return "placed"
    end):wait(20)
    assert.is_nil(err)
    assert.are.equal("placed", result)
    assert.are.equal(2, calls)
    local inserts = p.commands("insert")
    assert.are.equal(2, #inserts)
    assert.are.equal(1, inserts[1].txnNumber)
    assert.are.equal(2, inserts[2].txnNumber)
    assert.are.equal(1, #p.commands("abortTransaction"))
    conn:close(true):wait(10)
    p.stop()
  end)

  it("commits again after UnknownTransactionCommitResult", function()
    local p = primary("unknown_commit")
    local conn = mgconn.createConnection(p.uri)
    local orders = conn:collection("orders")
    local s = conn:startSession()
    local result, err = s:withTransaction(function(session)
      local r, e = orders:insertOne({ item = "tea" }, { session = session }):await()
      if e then error(e) end
      return r
    end):wait(20)
    assert.is_nil(err)
    assert.is_truthy(result.insertedId)
    assert.are.equal(3, #p.commands("commitTransaction"))
    assert.are.equal(1, #p.commands("insert"))
    s:endSession()
    conn:close(true):wait(10)
    p.stop()
  end)

  it("aborts and fails with the callback's error", function()
    local p = primary("commit")
    local conn = mgconn.createConnection(p.uri)
    local orders = conn:collection("orders")
    local _, err = conn:transaction(function(session)
      orders:insertOne({ item = "tea" }, { session = session }):await()
      error({ message = "out of tea" })
    end):wait(20)
    assert.are.equal("out of tea", err.message)
    assert.are.equal(1, #p.commands("abortTransaction"))
    assert.are.equal(0, #p.commands("commitTransaction"))
    conn:close(true):wait(10)
    p.stop()
  end)

  it("refuses misuse at the call", function()
    local server = H.server()
    local conn = mgconn.createConnection(server.uri .. "txn")
    local s = conn:startSession()
    s:startTransaction()
    assert.has_error(function() s:startTransaction() end)
    assert.has_error(function() conn:collection("x"):insertOne({}, { session = 42 }) end)
    assert.has_error(function() s:startTransaction({ maxCommitTimeMS = "soon" }) end)
    s:abortTransaction():wait(10)
    s:endSession()
    assert.has_error(function() conn:collection("x"):insertOne({}, { session = s }) end)
    conn:close():wait(10)
    server.stop()
  end)

  it("says NotSupported on FerretDB, writes nothing, and a session without a transaction works", function()
    local server = H.server()
    local conn = mgconn.createConnection(server.uri .. "txn")
    local items = conn:collection("items")
    local _, err = conn:transaction(function(session)
      local r, e = items:insertOne({ _id = 1 }, { session = session }):await()
      if e then error(e) end
      return r
    end):wait(20)
    assert.are.equal("NotSupported", err.category)
    assert.is_truthy(err.message:find("does not support transactions", 1, true))
    assert.are.equal(0, items:countDocuments({}):wait(10))
    local s = conn:startSession()
    assert.is_truthy(items:insertOne({ _id = 2 }, { session = s }):wait(10))
    assert.are.equal(2, items:findOne({ _id = 2 }, { session = s }):wait(10)._id)
    assert.are.equal(1, #items:find({}, { session = s }):toArray():wait(10))
    assert.are.equal(1, items:countDocuments({}, { session = s }):wait(10))
    s:endSession()
    conn:close():wait(10)
    server.stop()
  end)
end)
