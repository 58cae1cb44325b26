-- Lifetimes a long-running game meets: closed connections leave mgconn.connections, connections,
-- models, useDb children and cursors that the script dropped are collected, and loops of them keep
-- the Lua heap, RSS, threads and fds bounded. Each test prints its figures.
local mgconn = require "mgconn"
local H = require "helper"

-- Read whole and closed: LuaJIT never closes the file of an io.lines() loop left early, which
-- would count as fds that mgconn left open.
local function status(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("\n" .. field .. ":%s+(%d+)"))
end
local function fds()
  local n = 0
  local p = io.popen("ls /proc/" .. status("Pid") .. "/fd")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n - 1 -- the pipe of this very listing
end
local function full_gc() collectgarbage() collectgarbage() end
local function snapshot()
  full_gc()
  return { heap = collectgarbage("count"), rss = status("VmRSS"), threads = status("Threads"), fds = fds() }
end
local function report(what, a, b)
  print(string.format("\n  %s: Lua heap %.0f -> %.0f KB, RSS %.1f -> %.1f MB, threads %d -> %d, fds %d -> %d", what,
                      a.heap, b.heap, a.rss / 1024, b.rss / 1024, a.threads, b.threads, a.fds, b.fds))
end
-- Threads and fds of freed connections go away in the background: wait for them, with a deadline.
local function settled(base)
  local now
  H.until_true(function()
    now = snapshot()
    return now.threads <= base.threads + 1 and now.fds <= base.fds + 1 -- the figures, when they settle
  end, 20)
  return now
end

describe("lifetimes (Lua)", function()
  local server

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("a closed connection leaves mgconn.connections; 1,000 open/close cycles stay bounded", function()
    local function listed(c)
      for _, x in ipairs(mgconn.connections) do if x == c then return true end end
      return false
    end
    local conn = mgconn.createConnection(server.uri .. "life")
    assert.is_true(listed(conn))
    assert(conn:asPromise():wait(10))
    assert(conn:close():wait(10))
    assert.is_false(listed(conn))
    local function cycle()
      local c = mgconn.createConnection(server.uri .. "life")
      assert(c:asPromise():wait(10))
      assert(c:close():wait(10))
    end
    for _ = 1, 50 do cycle() end -- the allocator's arenas for the driver's threads, once
    local count = #mgconn.connections
    local before = snapshot()
    for _ = 1, 1000 do cycle() end
    local after = settled(before)
    report("1,000 open/close cycles", before, after)
    assert.are.equal(count, #mgconn.connections)
    assert.truthy(after.heap - before.heap < 200, "the Lua heap grew")
    assert.truthy(after.rss - before.rss < 6 * 1024, "RSS grew by more than 6 MB")
    assert.truthy(after.threads <= before.threads + 4 and after.fds <= before.fds + 4)
  end)

  it("40 open connections (each with a model) dropped without close() are collected and closed", function()
    local before = snapshot()
    local schema = mgconn.Schema({ name = "string" })
    local opened, held = 0, {}
    for i = 1, 40 do
      held[i] = mgconn.createConnection(server.uri .. "life")
      held[i]:model("Player", schema)
      held[i]:on("open", function() opened = opened + 1 end)
    end
    H.until_true(function() return opened == 40 end, 20)
    assert.are.equal(40, opened)
    local during = snapshot()
    assert.truthy(during.threads > before.threads + 20, "the connections did not hold threads to free")
    held = nil -- dropped, never closed
    local after = settled(before)
    report("40 dropped connections", before, after)
    assert.truthy(after.threads <= before.threads + 4, "threads of dropped connections remain")
    assert.truthy(after.fds <= before.fds + 4, "fds of dropped connections remain")
    assert.truthy(#mgconn.connections <= 2)
  end)

  it("5,000 uncached useDb children and their models are reclaimed; a close reaches only live ones", function()
    local conn = mgconn.createConnection(server.uri .. "life")
    assert(conn:asPromise():wait(10))
    local schema = mgconn.Schema({ name = "string" })
    local before = snapshot()
    for i = 1, 5000 do
      local tenant = conn:useDb("tenant_" .. i)
      local M = tenant:model("Player", schema)
      if i % 250 == 0 then
        assert.are.equal(0, M:countDocuments({}):wait(10))
        full_gc()
      end
    end
    local after = snapshot()
    report("5,000 uncached useDb names", before, after)
    assert.truthy(after.heap - before.heap < 300, "the Lua heap grew")
    assert.truthy(after.rss - before.rss < 8 * 1024, "RSS grew by more than 8 MB")
    -- Every live child hears the root's events: a close dispatches a handful, not thousands.
    mgconn.poll()
    local closing = conn:close()
    local ran, stop = 0, mgconn.now() + 10000
    while not closing:done() and mgconn.now() < stop do
      ran = ran + mgconn.poll()
      mgconn.idle(20)
    end
    assert.is_true(closing:done())
    print(string.format("  events and completions dispatched by the close: %d", ran))
    assert.truthy(ran < 50, "the close reached " .. ran .. " listeners: dropped children are still live")
  end)

  it("200 dropped unexhausted cursors are released; the connection goes on working", function()
    local conn = mgconn.createConnection(server.uri .. "life")
    assert(conn:asPromise():wait(10))
    local coll = conn:collection("pages")
    local docs = {}
    for i = 1, 20 do docs[i] = { i = i } end
    assert(coll:insertMany(docs):wait(10))
    local before = snapshot()
    for i = 1, 200 do
      local cur = coll:find({}, { batchSize = 2 })
      H.run(function() assert(cur:next()) end)
      if i % 25 == 0 then full_gc() end
    end
    local after = snapshot()
    report("200 dropped cursors", before, after)
    assert.are.equal(20, coll:countDocuments({}):wait(10))
    assert.truthy(after.heap - before.heap < 200, "the Lua heap grew")
    assert.truthy(after.rss - before.rss < 4 * 1024, "RSS grew by more than 4 MB")
    conn:close():wait(10)
  end)
end)

-- `<close>` is 5.4's: the spec's chunk is compiled only there (older versions would not parse it).
describe("<close> (Lua 5.4)", function()
  local where_close = _VERSION == "Lua 5.4" and it or pending
  where_close("a connection in a <close> variable is freed when its scope ends", function()
    local chunk = assert((loadstring or load)([[
      local mgconn, uri = ...
      local kept
      do
        local conn <close> = mgconn.createConnection(uri)
        kept = conn
        assert(conn.readyState == 2) -- connecting
      end
      return kept
    ]]))
    local conn = chunk(mgconn, "mongodb://127.0.0.1:" .. H.closed_port() .. "/x")
    local ok, err = pcall(function() return conn.readyState end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("the object was closed", 1, true), tostring(err))
  end)
end)
