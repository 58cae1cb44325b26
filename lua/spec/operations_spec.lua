-- bulkWrite, findOneAnd*, distinct, index and namespace listings, syncIndexes and cursor options:
-- Mongoose's names and results, buffered like every other operation.
local mgconn = require "mgconn"
local H = require "helper"

local function sorted(t) table.sort(t); return t end
local function names(list, field)
  local out = {}
  for i, d in ipairs(list) do out[i] = d[field or "name"] end
  return sorted(out)
end

describe("more operations (Lua)", function()
  local server, conn

  setup(function()
    server = H.server()
    conn = mgconn.createConnection(server.uri .. "more_ops")
    assert(conn:asPromise():wait(10))
  end)
  teardown(function()
    conn:close():wait(10)
    server.stop()
  end)

  it("bulkWrite issued before the connection is open runs its requests in order", function()
    local early = mgconn.createConnection() -- not open yet: the bulk write waits in the buffer
    local c = early:collection("bulk")
    local op = c:bulkWrite({
      { insertOne = { document = { _id = 1, n = 1 } } },
      { insertOne = { document = { n = 2 } } },
      { replaceOne = { filter = { _id = 9 }, replacement = { n = 9 }, upsert = true } },
      { updateOne = { filter = { _id = 1 }, update = { ["$inc"] = { n = 10 } } } },
      { updateMany = { filter = {}, update = { ["$set"] = { seen = true } } } },
      { deleteOne = { filter = { n = 2 } } },
      { deleteMany = { filter = { nothing = true } } },
    })
    early:openUri(server.uri .. "more_ops")
    local r, err = op:wait(10)
    assert.is_nil(err)
    assert.are.same({ 2, 4, 4, 1, 1 }, { r.insertedCount, r.matchedCount, r.modifiedCount, r.deletedCount,
                                         r.upsertedCount })
    assert.are.equal(1, r.insertedIds[1])
    assert.truthy(r.insertedIds[2]) -- an ObjectId made for the document without one
    assert.are.same({ [3] = 9 }, r.upsertedIds) -- keyed by the request's position
    local docs = c:find({}, { sort = { _id = 1 } }):toArray():wait(10)
    assert.are.same({ { _id = 1, n = 11, seen = true }, { _id = 9, n = 9, seen = true } }, docs)
    early:close():wait(10)
  end)

  it("bulkWrite with a request of no known kind fails that call only", function()
    local c = conn:collection("bulk_bad")
    local ok, err = pcall(function() return c:bulkWrite({ { insertOne = { document = {} } }, { upsertOne = {} } }) end)
    assert.is_false(ok)
    assert.matches("request 1 is not one of insertOne", tostring(err))
    assert.are.equal(1, c:bulkWrite({ { insertOne = { document = { a = 1 } } } }):wait(10).insertedCount)
  end)

  it("findOneAndUpdate, findOneAndReplace and findOneAndDelete give the document", function()
    local c = conn:collection("fam")
    assert(c:insertMany({ { _id = 0, n = 0, tag = "x" }, { _id = 1, n = 1, tag = "x" }, { _id = 2, n = 2, tag = "x" } })
             :wait(10))
    local before = c:findOneAndUpdate({ tag = "x" }, { ["$inc"] = { n = 100 } }, { sort = { n = -1 } }):wait(10)
    assert.are.same({ _id = 2, n = 2, tag = "x" }, before)
    local after = c:findOneAndUpdate({ _id = 0 }, { ["$inc"] = { n = 100 } }, { new = true }):wait(10)
    assert.are.same({ _id = 0, n = 100, tag = "x" }, after)
    local after2 = c:findOneAndUpdate({ _id = 0 }, { ["$inc"] = { n = 1 } }, { returnDocument = "after" }):wait(10)
    assert.are.equal(101, after2.n)
    local none, err = c:findOneAndUpdate({ _id = 7 }, { ["$set"] = { n = 7 } }):wait(10)
    assert.is_nil(err)
    assert.is_nil(none)
    local up = c:findOneAndUpdate({ _id = 8 }, { ["$set"] = { n = 8 } }, { upsert = true, new = true }):wait(10)
    assert.are.same({ _id = 8, n = 8 }, up)
    local rep = c:findOneAndReplace({ _id = 1 }, { n = -1 }, { new = true }):wait(10)
    assert.are.same({ _id = 1, n = -1 }, rep)
    local del = c:findOneAndDelete({ tag = "x" }, { sort = { n = 1 } }):wait(10)
    assert.are.same({ _id = 0, n = 101, tag = "x" }, del)
    assert.is_nil((c:findOneAndDelete({ _id = 0 }):wait(10)))
    assert.are.same({ 1, 2, 8 }, names(c:find():toArray():wait(10), "_id"))
  end)

  it("distinct gives the values of the matching documents", function()
    local c = conn:collection("dist")
    assert(c:insertMany({ { k = "a", n = 1 }, { k = "b", n = 1 }, { k = "a", n = 2 }, { k = "c", n = 2 } }):wait(10))
    assert.are.same({ "a", "b", "c" }, sorted(c:distinct("k"):wait(10)))
    assert.are.same({ "a", "c" }, sorted(c:distinct("k", { n = 2 }):wait(10)))
    assert.has_error(function() c:distinct(nil) end)
  end)

  it("listIndexes, dropIndex and dropIndexes", function()
    local c = conn:collection("idx")
    assert.are.same({}, c:listIndexes():wait(10))
    assert(c:createIndexes({ { key = { a = 1 } }, { key = { b = -1 } }, { key = { c = 1 } } }):wait(10))
    assert.are.same({ "_id_", "a_1", "b_-1", "c_1" }, names(c:listIndexes():wait(10)))
    assert(c:dropIndex("a_1"):wait(10))
    assert(c:dropIndex({ b = -1 }):wait(10))
    assert.are.same({ "_id_", "c_1" }, names(c:listIndexes():wait(10)))
    local _, err = c:dropIndex("a_1"):wait(10)
    assert.truthy(err)
    assert(c:dropIndexes():wait(10))
    assert.are.same({ "_id_" }, names(c:listIndexes():wait(10)))
  end)

  it("Model:syncIndexes creates the schema's indexes and drops the others but _id_", function()
    local schema = mgconn.Schema({ name = "string" }, { autoIndex = false })
    schema:index({ name = 1 })
    local Player = conn:model("SyncPlayer", schema)
    assert(Player:createIndexes({ { key = { old = 1 } } }):wait(10))
    local dropped, err = Player:syncIndexes():wait(10)
    assert.is_nil(err)
    assert.are.same({ "old_1" }, dropped)
    assert.are.same({ "_id_", "name_1" }, names(Player:listIndexes():wait(10)))
    assert.are.same({}, Player:syncIndexes():wait(10))
  end)

  it("listCollections, dropCollection and listDatabases", function()
    local db = conn:useDb("more_ops_ns")
    assert(db:collection("one"):insertOne({}):wait(10))
    assert(db:collection("two"):insertOne({}):wait(10))
    assert.are.same({ "one", "two" }, names(db:listCollections():wait(10)))
    assert.are.same({ "two" }, names(db:listCollections({ name = "two" }):wait(10)))
    assert(db:dropCollection("one"):wait(10))
    assert(db:dropCollection("never-there"):wait(10))
    assert.are.same({ "two" }, names(db:listCollections():wait(10)))
    local found = false
    for _, d in ipairs(conn:listDatabases():wait(10).databases) do found = found or d.name == "more_ops_ns" end
    assert.is_true(found)
  end)

  it("find takes batchSize, hint, maxTimeMS and comment", function()
    local c = conn:collection("cur")
    local docs = {}
    for i = 1, 30 do docs[i] = { n = i } end
    assert(c:insertMany(docs):wait(10))
    assert(c:createIndexes({ { key = { n = 1 } } }):wait(10))
    local got = c:find({}, { batchSize = 5, hint = "n_1", maxTimeMS = 5000, comment = "from the spec" }):toArray()
      :wait(10)
    assert.are.equal(30, #got)
  end)
end)

describe("the rest of Mongoose's everyday calls (Lua)", function()
  local server, conn

  setup(function()
    server = H.server()
    conn = mgconn.createConnection(server.uri .. "everyday")
    assert(conn:asPromise():wait(10))
  end)
  teardown(function()
    conn:close():wait(10)
    server.stop()
  end)

  it("findById, findByIdAndUpdate, findByIdAndDelete and exists", function()
    local c = conn:collection("byid")
    assert(c:insertMany({ { _id = 1, n = 1 }, { _id = 2, n = 2 } }):wait(10))
    assert.are.same({ _id = 1, n = 1 }, c:findById(1):wait(10))
    assert.is_nil((c:findById(9):wait(10)))
    assert.are.same({ _id = 1, n = 5 }, c:findByIdAndUpdate(1, { ["$set"] = { n = 5 } }, { new = true }):wait(10))
    assert.are.same({ _id = 2, n = 2 }, c:findByIdAndDelete(2):wait(10))
    assert.are.same({ _id = 1 }, c:exists({ n = 5 }):wait(10))
    assert.is_nil((c:exists({ n = 2 }):wait(10)))
  end)

  it("aggregate, estimatedDocumentCount, drop, init, modelNames, deleteModel and dropDatabase", function()
    local Item = conn:model("Item", mgconn.Schema({ n = "number" }))
    assert(Item:init():wait(10))
    assert(Item:insertMany({ { n = 1 }, { n = 2 }, { n = 3 } }):wait(10))
    local agg = Item:aggregate({ { ["$match"] = { n = { ["$gte"] = 2 } } }, { ["$count"] = "k" } }):toArray():wait(10)
    assert.are.same({ { k = 2 } }, agg)
    assert.are.equal(3, Item:estimatedDocumentCount():wait(10))
    assert(Item:drop():wait(10))
    assert.are.equal(0, Item:countDocuments({}):wait(10))
    conn:model("Other", mgconn.Schema({}))
    assert.are.same({ "Item", "Other" }, conn:modelNames())
    conn:deleteModel("Other")
    assert.are.same({ "Item" }, conn:modelNames())
    assert(Item:insertOne({ n = 1 }):wait(10))
    assert(conn:dropDatabase():wait(10))
    local present = false
    for _, d in ipairs(conn:listDatabases():wait(10).databases) do present = present or d.name == "everyday" end
    assert.is_false(present)
    mgconn.set("bufferTimeoutMS", 10000) -- the default, set explicitly
    assert.are.equal(10000, mgconn.get("bufferTimeoutMS"))
  end)
end)

describe("command monitoring (Lua)", function()
  local server

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("calls started, succeeded and failed with the command's name, database, ids and duration", function()
    local conn = mgconn.createConnection(server.uri .. "monitored")
    local seen = {}
    conn:onCommand({
      started = function(e) seen[#seen + 1] = e end,
      succeeded = function(e) seen[#seen + 1] = e end,
      failed = function(e) seen[#seen + 1] = e end,
    })
    assert(conn:asPromise():wait(10))
    assert(conn:collection("m"):insertOne({ _id = 1 }):wait(10))
    local _, err = conn:runCommand({ noSuchCommand = 1 }):wait(10)
    assert.truthy(err)
    local mine = {}
    for _, e in ipairs(seen) do
      if e.commandName == "insert" or e.commandName == "noSuchCommand" then mine[#mine + 1] = e end
    end
    assert.are.same({ "started", "succeeded", "started", "failed" },
                    { mine[1].type, mine[2].type, mine[3].type, mine[4].type })
    assert.are.equal("monitored", mine[1].databaseName)
    assert.are.equal(mine[1].requestId, mine[2].requestId)
    assert.are.equal(1, mine[1].command.documents[1]._id)
    assert.is_true(mine[2].durationMicros >= 0)
    assert.are.equal(1, mine[2].reply.n)
    assert.truthy(mine[4].failure)
    assert.has_error(function() conn:useDb("other"):onCommand(function() end) end)
    assert.has_error(function() conn:onCommand({ begun = function() end }) end)
    conn:onCommand(nil)
    local n = #seen
    assert(conn:collection("m"):findOne({}):wait(10))
    assert.are.equal(n, #seen)
    conn:close():wait(10)
  end)
end)
