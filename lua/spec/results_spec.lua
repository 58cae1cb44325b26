-- What queries hand back as a game script reads them: findOne without a match is nil in every
-- style, a cursor is a `for` iterator, and cursors can be closed (or dropped) without starving
-- the connection.
local mgconn = require "mgconn"
local H = require "helper"

describe("results and cursors (Lua)", function()
  local server, conn, coll

  setup(function()
    server = H.server()
    conn = mgconn.createConnection(server.uri .. "results")
    assert(conn:asPromise():wait(10))
    coll = conn:collection("items")
    local docs = {}
    for i = 1, 30 do docs[i] = { _id = i, n = i } end
    assert(coll:insertMany(docs):wait(10))
  end)
  teardown(function()
    conn:close():wait(10)
    server.stop()
  end)

  it("findOne without a match is nil with a callback, :await() and :wait()", function()
    local called, got, got_err = false, "unset", nil
    coll:findOne({ n = -1 }, function(err, doc) called, got, got_err = true, doc, err end)
    assert.truthy(H.until_true(function() return called end, 10))
    assert.is_nil(got_err)
    assert.is_nil(got)
    H.run(function()
      local doc, err = coll:findOne({ n = -1 }):await()
      assert.is_nil(err)
      assert.is_nil(doc)
    end)
    local doc, err = coll:findOne({ n = -1 }):wait(10)
    assert.is_nil(err)
    assert.is_nil(doc)
    assert.are.equal(7, coll:findOne({ n = 7 }):wait(10).n) -- a match is still the document
  end)

  -- PUC Lua 5.1 cannot yield from a for-loop's iterator: there the cursor is read with next()
  -- (H.each), and this form is left to the versions that have it.
  local it_where_for_yields = H.yields_anywhere and it or pending
  it_where_for_yields("iterates a cursor with `for doc in cursor do` inside a coroutine", function()
    local seen = {}
    H.run(function()
      for doc in coll:find({}, { sort = { n = 1 }, batchSize = 4 }) do seen[#seen + 1] = doc.n end
    end)
    assert.are.equal(30, #seen)
    assert.are.equal(1, seen[1])
    assert.are.equal(30, seen[30])
  end)

  -- FerretDB's SQLite backend keeps one of its 100 database connections per open server cursor, so
  -- cursors that are neither closed nor released would stop every later operation.
  it("cursor:close() releases the server cursor: 150 closed cursors leave the connection working", function()
    for _ = 1, 150 do
      local cur = coll:find({}, { batchSize = 2 })
      H.run(function() assert(cur:next()) end)
      cur:close()
      H.run(function() assert.is_nil(cur:next()) end)
    end
    local n, err = coll:countDocuments({}):wait(10)
    assert.is_nil(err)
    assert.are.equal(30, n)
  end)

  it("a dropped cursor is released by the garbage collector (killCursors)", function()
    for _ = 1, 150 do
      local cur = coll:find({}, { batchSize = 2 })
      H.run(function() assert(cur:next()) end)
      if _ % 20 == 0 then collectgarbage() collectgarbage() end
    end
    collectgarbage()
    collectgarbage()
    local n, err = coll:countDocuments({}):wait(10)
    assert.is_nil(err)
    assert.are.equal(30, n)
  end)

  -- A paginated view per player: 100 cursors opened and held. The server has only so much to give
  -- open cursors (FerretDB: 100 database connections per database), so mgconn keeps at most
  -- maxOpenCursors of them open (default 64); further finds wait their turn, and nothing else does.
  it("100 cursors held open: every other operation goes on, and finds past maxOpenCursors wait their turn", function()
    local views = mgconn.createConnection(server.uri .. "results", { bufferTimeoutMS = 4000 })
    assert(views:asPromise():wait(10))
    local items = views:collection("items")
    local held, first, errs = {}, {}, {}
    local served, failed = 0, 0
    finally(function() -- whatever fails: the server's connections are its own (100 per database)
      for i = 1, 100 do if held[i] then held[i]:close() end end
      views:close():wait(10)
    end)
    for i = 1, 100 do
      held[i] = items:find({}, { batchSize = 2, sort = { n = 1 } })
      mgconn.spawn(function()
        local doc, err = held[i]:next()
        if doc then first[i], served = doc.n, served + 1 else errs[i], failed = err, failed + 1 end
      end)
    end
    assert.truthy(H.until_true(function() return served == 64 end, 10))
    -- reads and writes on the same connection do not wait behind the held cursors
    local n, err = items:countDocuments({}):wait(10)
    assert.is_nil(err)
    assert.are.equal(30, n)
    assert(items:insertOne({ _id = "extra", n = 0 }):wait(10))
    assert.are.equal(0, items:findOne({ _id = "extra" }):wait(10).n)
    assert(items:deleteOne({ _id = "extra" }):wait(10))
    local stats = views:stats()
    assert.are.equal(64, stats.openCursors)
    assert.are.equal(64, stats.maxOpenCursors)
    assert.are.equal(64, served)
    -- a cursor read to its end, or closed, lets a waiting find go
    local closed = 0
    for i = 1, 100 do
      if first[i] and closed < 10 then held[i]:close() closed = closed + 1 end
    end
    assert.truthy(H.until_true(function() return served == 74 end, 10))
    -- the rest wait no longer than bufferTimeoutMS, and say why
    assert.truthy(H.until_true(function() return failed == 26 end, 15))
    local _, e = next(errs)
    assert.are.equal("BufferTimeout", e.category)
    assert.truthy(e.message:find("maxOpenCursors (64)", 1, true), e.message)
    assert.truthy(e.message:find("items.find()", 1, true), e.message)
    for i = 1, 100 do held[i]:close() end
    assert.truthy(H.until_true(function() return views:stats().openCursors == 0 end, 10))
  end)

  it("maxOpenCursors = 0 puts no limit on open cursors", function()
    local views = mgconn.createConnection(server.uri .. "results", { maxOpenCursors = 0 })
    assert(views:asPromise():wait(10))
    local held, served = {}, 0
    finally(function()
      for i = 1, 70 do if held[i] then held[i]:close() end end
      views:close():wait(10)
    end)
    for i = 1, 70 do
      held[i] = views:collection("items"):find({}, { batchSize = 2 })
      mgconn.spawn(function() if held[i]:next() then served = served + 1 end end)
    end
    assert.truthy(H.until_true(function() return served == 70 end, 10))
    assert.are.equal(70, views:stats().openCursors) -- counted, though not limited
  end)

  it("a `for` left with break, 80 times: finds past maxOpenCursors collect the dropped cursors, none waits out",
     function()
    local views = mgconn.createConnection(server.uri .. "results", { bufferTimeoutMS = 3000 })
    assert(views:asPromise():wait(10))
    local items = views:collection("items")
    local done, failures = 0, {}
    collectgarbage("stop") -- a game that steps the collector itself: nothing is collected by chance
    H.run(function()
      for _ = 1, 80 do
        failures[#failures + 1] = H.read_first(items:find({}, { batchSize = 2 }))
        done = done + 1
      end
    end, 60)
    collectgarbage("restart")
    assert.are.equal(80, done)
    assert.are.same({}, failures)
    views:close():wait(10)
  end)

  local it_on_54 = _VERSION == "Lua 5.4" and it or pending
  it_on_54("on 5.4 a `for` over cursor:iter() left with break closes the cursor at once", function()
    local views = mgconn.createConnection(server.uri .. "results")
    assert(views:asPromise():wait(10))
    H.run(function()
      for doc in views:collection("items"):find({}, { batchSize = 2 }):iter() do if doc then break end end
    end)
    assert.are.equal(0, views:stats().openCursors) -- before any garbage collection
    views:close():wait(10)
  end)

  it("a closed cursor reads as ended: next() is nil, toArray() is empty", function()
    local cur = coll:find({}, { batchSize = 2 })
    H.run(function()
      assert(cur:next())
      cur:close()
      local doc, err = cur:next()
      assert.is_nil(doc)
      assert.is_nil(err)
      local all = cur:toArray():await()
      assert.are.equal(0, #all)
    end)
  end)

  it("cursor:next() outside a coroutine says what to do instead, at the caller's line", function()
    local ok, err = pcall(function() local doc = coll:find({}):next() return doc end)
    assert.is_false(ok)
    assert.truthy(err:find("results_spec.lua:%d+: cursor:next%(%) and `for doc in cursor` need a coroutine"), err)
    assert.truthy(err:find("cursor:toArray():wait()", 1, true), err)
  end)

  it("a single document where a list belongs is refused at the call (aggregate, insertMany)", function()
    local ok, err = pcall(coll.aggregate, coll, { ["$match"] = { n = 1 } })
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'aggregate' (a list of stages expected, got a table with the key "
                           .. '"$match"', 1, true), err)
    ok, err = pcall(coll.insertMany, coll, { n = 1 })
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'insertMany' (a list of documents expected", 1, true), err)
    local docs = coll:aggregate({ { ["$match"] = { n = 1 } } }):toArray():wait(10)
    assert.are.equal(1, #docs) -- the list form, as before
  end)

  it("open cursors do not hold the connection's pooled clients (maxPoolSize 1, 20 cursors held)", function()
    local small = mgconn.createConnection(server.uri .. "results", { maxPoolSize = 1 })
    assert(small:asPromise():wait(10))
    local held = {}
    for i = 1, 20 do
      held[i] = small:collection("items"):find({}, { batchSize = 2 })
      H.run(function() assert(held[i]:next()) end)
    end
    local n, err = small:collection("items"):countDocuments({}):wait(10)
    assert.is_nil(err)
    assert.are.equal(30, n)
    H.run(function() assert.are.equal(2, held[20]:next().n) end)
    for _, cur in ipairs(held) do cur:close() end
    small:close():wait(10)
  end)
end)
