-- The Lua-observable behaviour of mgconn, through the three ways to wait: callbacks with poll(),
-- op:await() in coroutines, op:wait() in plain scripts.
local mgconn = require "mgconn"
local H = require "helper"

describe("mgconn for Lua", function()
  local server

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  local function db(name) return server.uri .. name end

  it("opens with connecting, connected, open, and a listener added after the call sees them all", function()
    local conn = mgconn.createConnection(db("open_order"))
    assert.are.equal(2, conn.readyState)
    local r = H.recorder(conn)
    local opened = conn:asPromise():wait(10)
    assert.are.equal(conn, opened)
    mgconn.poll()
    assert.are.equal("connecting,connected,open", r.seq())
    conn:close():wait(10)
  end)

  it("buffers an insert issued before the server starts (callback style)", function()
    local later = H.server({ later = true })
    local conn = mgconn.createConnection(later.uri .. "buffered", { heartbeatFrequencyMS = 500 })
    local Player = conn:model("Player", mgconn.Schema({ name = "string" }))
    local got_err, got_res
    Player:insertOne({ _id = 1, name = "ada" }, function(err, res) got_err, got_res = err, res end)
    H.until_true(function() return false end, 1) -- one second without a server
    assert.is_nil(got_res)
    later.start()
    assert.truthy(H.until_true(function() return got_res or got_err end, 10))
    assert.is_nil(got_err)
    assert.are.equal(1, got_res.insertedId)
    local doc = Player:findOne({ _id = 1 }):wait(10)
    assert.are.equal("ada", doc.name)
    conn:close():wait(10)
    later.stop()
  end)

  it("times out buffered operations with Lua's method spelling (await style)", function()
    local conn = mgconn.createConnection("mongodb://127.0.0.1:" .. H.closed_port() .. "/x", { bufferTimeoutMS = 300 })
    H.run(function()
      local doc, err = conn:collection("users"):findOne({ name = "x" }):await()
      assert.is_nil(doc)
      assert.are.equal("BufferTimeout", err.category)
      assert.are.equal("Operation `users.findOne()` buffering timed out after 300ms", err.message)
    end)
    conn:close(true):wait(5)
  end)

  it("sleeps once in a blocking op:wait(), however long the operation takes", function()
    local f = io.open("/proc/thread-self/status")
    if not f then return pending("needs Linux's /proc for the thread's context switches") end
    f:close()
    local function sleeps()
      local status = io.open("/proc/thread-self/status")
      local text = status:read("*a")
      status:close()
      return tonumber(text:match("\nvoluntary_ctxt_switches:%s*(%d+)"))
    end
    local before = mgconn.get("bufferTimeoutMS")
    mgconn.set("bufferTimeoutMS", 1500)
    local conn = mgconn.createConnection() -- never opened: the op waits out its buffer deadline
    for _, timeout in ipairs({ 30, false }) do
      local op = conn:collection("users"):findOne({})
      local s0, t0 = sleeps(), mgconn.now()
      local doc, err
      if timeout then doc, err = op:wait(timeout) else doc, err = op:wait() end
      assert.is_nil(doc)
      assert.are.equal("BufferTimeout", err.category)
      assert.is_true(mgconn.now() - t0 >= 1400)
      -- one sleep until the failure's delivery, give or take a preemption (a wait woken every
      -- 100 ms slept 15 times here)
      assert.is_true(sleeps() - s0 <= 3, "slept " .. (sleeps() - s0) .. " times")
    end
    mgconn.set("bufferTimeoutMS", before)
    conn:close(true):wait(5)
  end)

  it("reports an initial failure as ServerSelection with reason.servers (wait style)", function()
    local port = H.closed_port()
    local conn = mgconn.createConnection("mongodb://127.0.0.1:" .. port .. "/x", { serverSelectionTimeoutMS = 500 })
    local r = H.recorder(conn)
    local ok, err = conn:asPromise():wait(5)
    assert.is_nil(ok)
    assert.are.equal("ServerSelection", err.category)
    assert.are.equal("Unknown", err.reason.servers["127.0.0.1:" .. port].type)
    assert.truthy(tostring(err):find("No suitable servers", 1, true))
    H.until_true(function() return r.error end, 5)
    assert.are.equal("connecting,disconnected,error", r.seq())
  end)

  it("emits disconnected, then connected, reconnected, open around a server kill", function()
    local own = H.server()
    local conn = mgconn.createConnection(own.uri .. "kr", { heartbeatFrequencyMS = 500 })
    local r = H.recorder(conn)
    conn:asPromise():wait(10)
    own.kill()
    assert.truthy(H.until_true(function() return r.disconnected end, 5))
    own.start()
    assert.truthy(H.until_true(function() return r.reconnected end, 10))
    H.until_true(function() return r.seq():find("reconnected,open", 1, true) end, 5)
    assert.truthy(r.seq():find("disconnected,connected,reconnected,open", 1, true))
    assert.are.equal(1, conn:runCommand({ ping = 1 }):wait(10).ok)
    conn:close():wait(10)
    own.stop()
  end)

  it("closes with disconnecting, disconnected, close; later operations fail as closed", function()
    local conn = mgconn.createConnection(db("close_seq"))
    local r = H.recorder(conn)
    conn:asPromise():wait(10)
    conn:close():wait(10)
    mgconn.poll()
    assert.are.equal("connecting,connected,open,disconnecting,disconnected,close", r.seq())
    local res, err = conn:collection("c"):insertOne({ a = 1 }):wait(5)
    assert.is_nil(res)
    assert.are.equal("ConnectionClosed", err.category)
  end)

  it("keeps registries per database and returns the cached useDb child", function()
    local conn = mgconn.createConnection(db("main"))
    local t1 = conn:useDb("tenant_1", { useCache = true })
    assert.are.equal(t1, conn:useDb("tenant_1", { useCache = true }))
    assert.are_not.equal(t1, conn:useDb("tenant_1"))
    local schema = mgconn.Schema({ name = "string" })
    local P = t1:model("Player", schema)
    assert.are.equal("players", P.collectionName)
    local ok, err = pcall(function() return conn:useDb("tenant_2", { useCache = true }):model("Player") end)
    assert.is_false(ok)
    assert.are.equal("MissingSchema", err.category)
    assert.are.equal('Schema hasn\'t been registered for model "Player".', err.message)
    ok, err = pcall(function() return t1:model("Player", mgconn.Schema({})) end)
    assert.are.equal("Cannot overwrite `Player` model once compiled.", err.message)
    assert.are.equal(P, t1:model("Player", schema))
    P:insertOne({ name = "ada" }):wait(10)
    assert.are.equal(1, P:countDocuments():wait(10))
    assert.are.equal("tenant_1", t1.name)
    conn:close():wait(10)
  end)

  it("makes a model's capped collection with Model:createCollection()", function()
    local conn = mgconn.createConnection(db("create_collection"))
    local Test = conn:model("Test", mgconn.Schema({ name = "string" },
                                                  { capped = { size = 1024 }, bufferCommands = false, autoCreate = false }),
                            "capped_" .. os.time())
    assert(conn:asPromise():wait(10))
    local created, err = Test:createCollection():wait(10)
    assert(created, err and err.message)
    local info, err2 = conn:runCommand(mgconn.ordered("listCollections", 1, "filter", { name = Test.collectionName })):wait(10)
    assert(info, err2 and err2.message)
    local options = info.cursor.firstBatch[1].options
    assert.are.equal(true, options.capped)
    assert.are.equal(1024, options.size)
    conn:close():wait(10)
  end)

  it("round-trips values: integers by range, int64 limits, nested arrays, null, typed values", function()
    local conn = mgconn.createConnection(db("types"))
    local c = conn:collection("t")
    -- int64's limits: Lua integers from 5.3 on; before, mgconn.Int64 with the exact decimal text
    local max = math.maxinteger or mgconn.Int64("9223372036854775807")
    local min = math.mininteger or mgconn.Int64("-9223372036854775808")
    local doc = { _id = 1, small = 7, big = max, low = min, f = 2.5, s = "héllo",
                  yes = true, none = mgconn.null, list = mgconn.array({ 1, { inner = mgconn.array({ 2, 3 }) } }),
                  oid = mgconn.ObjectId("0123456789abcdef01234567"), when = mgconn.Date(1700000000123),
                  re = mgconn.Regex("^a", "i"), ts = mgconn.Timestamp(5, 6), bin = mgconn.Binary("\0\1", 5),
                  exact = math.tointeger and math.tointeger(2 ^ 53) or 2 ^ 53, wide = mgconn.Int64("9007199254740993"), huge = 2 ^ 60 + 0.5 }
    c:insertOne(doc):wait(10)
    local back = c:findOne({ _id = 1 }):wait(10)
    assert.are.equal(max, back.big)
    assert.are.equal(min, back.low)
    assert.are.equal("9223372036854775807", tostring(back.big))
    assert.are.equal("-9223372036854775808", tostring(back.low))
    assert.are.equal("9007199254740993", tostring(back.wide)) -- beyond 2^53, not rounded on any version
    assert.are.equal(2 ^ 53, back.exact)
    assert.are.equal(2 ^ 60, back.huge)
    -- the BSON types the server stored: integral numbers by range, the rest doubles
    for field, bson_type in pairs({ small = "int", f = "double", exact = "long", wide = "long", huge = "double" }) do
      assert.are.equal(1, c:countDocuments({ _id = 1, [field] = { ["$type"] = bson_type } }):wait(10),
                       field .. " is not stored as " .. bson_type)
    end
    if math.type then
      assert.is_true(math.type(back.small) == "integer" and math.type(back.f) == "float")
    else
      assert.are.equal(getmetatable(mgconn.Int64(1)), getmetatable(back.big))
      assert.is_false(back.big < max)
      assert.is_true(back.low < back.big and back.low <= min)
    end
    assert.are.equal(mgconn.null, back.none)
    assert.are.equal(3, back.list[2].inner[2])
    assert.are.equal(getmetatable(mgconn.array()), getmetatable(back.list)) -- decoded arrays come back marked
    assert.are.equal("0123456789abcdef01234567", tostring(back.oid))
    assert.are.equal(1700000000123, back.when.ms)
    assert.are.same({ "^a", "i" }, { back.re.pattern, back.re.flags })
    assert.are.same({ 5, 6 }, { back.ts.t, back.ts.i })
    assert.are.same({ "\0\1", 5 }, { back.bin.data, back.bin.subtype })
    -- what FerretDB cannot store (arrays in arrays, Decimal128, MinKey) through the codec alone
    local core = require "mgconn.core"
    local t = core.decode(core.encode({ nested = mgconn.array({ mgconn.array({ 1, mgconn.array({ 2 }) }) }),
                                        d = mgconn.Decimal128("1.25"), lo = mgconn.MinKey() }))
    assert.are.equal(2, t.nested[1][2][1])
    assert.are.equal("1.25", t.d.value)
    assert.are.equal(mgconn.MinKey(), t.lo)
    conn:close():wait(10)
  end)

  it("fails one operation for a bad value, with the key path, and goes on", function()
    local conn = mgconn.createConnection(db("bad"))
    local c = conn:collection("b")
    local cyc = {}; cyc.self = cyc
    local cases = {
      { { items = mgconn.array({ 1, 2, 3, { owner = print } }) }, "doc.items[4].owner" },
      { cyc, "nesting deeper" },
      { { mixed = { 1, 2, x = 3 } }, "both array and hash parts (mark arrays with mgconn.array) at doc.mixed" },
      { { ["bad\255key"] = 1 }, "not valid UTF-8" },
    }
    for _, case in ipairs(cases) do
      local res, err = c:insertOne(case[1]):wait(5)
      assert.is_nil(res)
      assert.are.equal("Type", err.category)
      assert.truthy(err.message:find(case[2], 1, true), err.message)
    end
    assert.are.equal(0, c:countDocuments():wait(10))
    c:insertOne({ ok = true }):wait(10)
    assert.are.equal(1, c:countDocuments():wait(10))
    conn:close():wait(10)
  end)

  it("keeps dispatching when a callback raises, and reports it to onError", function()
    local reported = {}
    mgconn.onError(function(msg) reported[#reported + 1] = msg end)
    local conn = mgconn.createConnection(db("raise"))
    local second = false
    conn:runCommand({ ping = 1 }, function() error("boom") end)
    conn:runCommand({ ping = 1 }, function() second = true end)
    -- the two pings run concurrently: wait for both outcomes
    assert.truthy(H.until_true(function() return second and #reported > 0 end, 10))
    assert.truthy(tostring(reported[1]):find("boom", 1, true))
    mgconn.onError(function(msg) io.stderr:write(tostring(msg), "\n") end)
    conn:close():wait(10)
  end)

  it("iterates a cursor in a coroutine and collects with toArray", function()
    local conn = mgconn.createConnection(db("cursor"))
    local c = conn:collection("items")
    local docs = {}
    for i = 1, 250 do docs[i] = { n = i } end
    c:insertMany(docs):wait(10)
    local n = 0
    H.run(function()
      H.each(c:find({}, { batchSize = 50 }), function() n = n + 1 end)
    end)
    assert.are.equal(250, n)
    assert.are.equal(250, #c:find({}, { batchSize = 40 }):toArray():wait(10))
    conn:close():wait(10)
  end)

  it("never takes long in poll() while the server is down", function()
    local own = H.server()
    local conn = mgconn.createConnection(own.uri .. "down", { heartbeatFrequencyMS = 500, bufferTimeoutMS = 2000 })
    local r = H.recorder(conn)
    conn:asPromise():wait(10)
    own.kill()
    H.until_true(function() return r.disconnected end, 5)
    local c = conn:collection("c")
    local worst = 0
    for i = 1, 300 do
      c:insertOne({ n = i })
      local t0 = os.clock()
      mgconn.poll()
      worst = math.max(worst, os.clock() - t0)
    end
    print(string.format("   worst poll() with the server down: %.3f ms", worst * 1000))
    assert.is_true(worst < 0.02)
    conn:close(true):wait(5)
    own.stop()
  end)
end)

describe("the Lua examples", function()
  it("quickstart.lua runs and prints what it promises", function()
    local server = H.server()
    local root = os.getenv("MGCONN_SOURCE_DIR") or "."
    local lua = os.getenv("MGCONN_LUA") or "lua5.4" -- the interpreter the specs run under
    local p = io.popen(string.format("%s %s/docs/examples/lua/quickstart.lua %squickstart 2>&1", lua, root, server.uri))
    local out = p:read("*a")
    local ok = p:close()
    server.stop()
    assert.is_true(ok, out)
    assert.truthy(out:find("saved%s+%x+"), out)
    assert.truthy(out:find("score\t20", 1, true), out)
  end)
end)
