-- The benchmark's Lua tasks (the converters alone, then operations), each through mgconn (sync style,
-- op:wait()) and through lua-mongo (the blocking libmongoc binding, tests/bench/peers/lua-mongo), in
-- one process: every iteration of a task runs mgconn then lua-mongo, so that a drift of the machine
-- during the task falls on both alike.
--   lua5.4 bench.lua URI DATA_DIR N REPEAT LARGE     prints one JSON result per line
-- CPU is os.clock(): the whole process's user+system time (glibc's clock() reads the process CPU clock,
-- the same sum getrusage gives), so mgconn's worker threads are counted; the other client is idle
-- meanwhile (lua-mongo has no threads; mgconn's workers sleep with nothing queued).
local mgconn = require "mgconn"
local core = require "mgconn.core"
local mongo = require "mongo"
local uri, dir, n, repeat_, large_count = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5] or 10)

-- Profiling (tests/bench/lua_profile.py): MGCONN_BENCH_PROFILE="TASK=CLIENT" (CLIENT: mgconn or lm) runs that
-- task alone, through that client alone, and turns perf on through its control fifos
-- (MGCONN_BENCH_PERF_CTL, MGCONN_BENCH_PERF_ACK) around the measured body only, so that neither the set-up
-- nor the other client is in the profile.
local profile_task, profile_client = (os.getenv("MGCONN_BENCH_PROFILE") or ""):match("^(.+)=(%w+)$")
local function perf(command)
  if not profile_task then return end
  local ctl = assert(io.open(assert(os.getenv("MGCONN_BENCH_PERF_CTL")), "w"))
  ctl:write(command, "\n")
  ctl:close()
  local ack = assert(io.open(assert(os.getenv("MGCONN_BENCH_PERF_ACK")), "r"))
  ack:read("l")
  ack:close()
end

local function read(name)
  local f = assert(io.open(dir .. "/" .. name))
  local text = f:read("a")
  f:close()
  return text
end

-- Each client gets the documents as its own Lua values (mgconn's converters; lua-mongo's, where a JSON
-- null is mongo.Null), so each pays for turning its own tables into BSON.
local docs = {}
for _, name in ipairs({ "tweet", "small", "large" }) do
  local text = read((name == "tweet" and "tweet" or name .. "_doc") .. ".json")
  docs[name] = { mgconn = core.fromjson(text), lm = mongo.BSON(text):value(), bytes = #core.encode(core.fromjson(text)) }
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s[(#s + 1) // 2]
end

local CLIENTS = { { key = "mgconn", name = "mgconn (Lua)" }, { key = "lm", name = "lua-mongo" } }
if profile_client then
  CLIENTS = { CLIENTS[profile_client == "mgconn" and 1 or 2] }
end

-- Where the CPU goes (Linux's /proc, read outside the clock): the host thread's own CPU time, and the
-- context switches of every thread of the process (mgconn's workers included).
local pid
do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("l"):match("^(%d+)")
  f:close()
end
local function host_thread_seconds()
  local f = io.open("/proc/thread-self/schedstat")
  if not f then return 0 end
  local ns = tonumber(f:read("l"):match("^(%d+)"))
  f:close()
  return ns / 1e9
end
local function context_switches()
  local p = io.popen("cat /proc/" .. pid .. "/task/*/status 2>/dev/null")
  local total = 0
  for n in p:read("a"):gmatch("ctxt_switches:%s*(%d+)") do total = total + tonumber(n) end
  p:close()
  return total
end

-- bodies: {mgconn = fn, lm = fn}; setup runs before every iteration, outside the clock.
local function run(task, ops, bytes, bodies, setup)
  if profile_task and task ~= profile_task then return end
  local walls, cpus, hosts, switches = { mgconn = {}, lm = {} }, { mgconn = {}, lm = {} }, { mgconn = {}, lm = {} },
    { mgconn = {}, lm = {} }
  for r = 1, repeat_ do
    for _, c in ipairs(CLIENTS) do
      if setup then setup() end
      perf("enable")
      local s0 = context_switches()
      local w0, c0 = mgconn.now(), os.clock()
      local h0 = host_thread_seconds()
      bodies[c.key]()
      local h1 = host_thread_seconds()
      walls[c.key][r], cpus[c.key][r] = (mgconn.now() - w0) / 1000, os.clock() - c0
      hosts[c.key][r], switches[c.key][r] = h1 - h0, context_switches() - s0
      perf("disable")
    end
  end
  for _, c in ipairs(CLIENTS) do
    local lo, hi = math.huge, 0
    for _, w in ipairs(walls[c.key]) do lo, hi = math.min(lo, w), math.max(hi, w) end
    print(string.format('{"task": "%s", "client": "%s", "ops": %d, "bytes": %d, "seconds": %.6f, '
                        .. '"cpu_seconds": %.6f, "host_thread_cpu_seconds": %.6f, "context_switches": %d, '
                        .. '"wall_spread": [%.6f, %.6f], "iterations": %d}',
                        task, c.name, ops, bytes, median(walls[c.key]), median(cpus[c.key]), median(hosts[c.key]),
                        median(switches[c.key]), lo, hi, repeat_))
  end
  io.stdout:flush()
end

-- The converters alone, no server: a Lua table to BSON and back, for the tweet and the small
-- document (each client's own values; lua-mongo's BSON object stays a bson_t, mgconn's encode makes a
-- Lua string, so the encode figure favours lua-mongo).
for _, name in ipairs({ "small", "tweet" }) do
  local d, count = docs[name], n * 10
  local lm_bson = mongo.BSON(d.lm)
  local bytes = core.encode(d.mgconn)
  run("Lua encode " .. name, count, count * d.bytes, {
    mgconn = function() for _ = 1, count do core.encode(d.mgconn) end end,
    lm = function() for _ = 1, count do mongo.BSON(d.lm) end end,
  })
  run("Lua decode " .. name, count, count * d.bytes, {
    mgconn = function() for _ = 1, count do core.decode(bytes) end end,
    lm = function() for _ = 1, count do lm_bson:value() end end,
  })
end

local conn = mgconn.createConnection(uri .. "bench_lua")
assert(conn:asPromise():wait(30))
local lm_client = mongo.Client(uri .. "bench_lua")
local tweets, smalls, larges = conn:collection("tweets"), conn:collection("smalls"), conn:collection("larges")
local lm_tweets, lm_smalls, lm_larges = lm_client:getCollection("bench_lua", "tweets"),
  lm_client:getCollection("bench_lua", "smalls"), lm_client:getCollection("bench_lua", "larges")
assert(tweets:drop():wait(30))
for i = 1, n do
  local d = {}
  for k, v in pairs(docs.tweet.mgconn) do d[k] = v end
  d._id = i
  assert(tweets:insertOne(d):wait(30))
end

local function fresh(coll) return function() assert(coll:drop():wait(30)) end end
-- lua-mongo's insertMany takes at most 20 documents (its arguments); for more, its way is an ordered
-- bulk operation (what mgconn's insertMany is too): one insert per document, then one execute.
local function lm_insert_many(coll, doc, count)
  local bulk = coll:createBulkOperation()
  for _ = 1, count do bulk:insert(doc) end
  assert(bulk:execute())
end
local function copies(doc, count)
  local t = {}
  for i = 1, count do t[i] = doc end
  return t
end

local tweet, small, large = docs.tweet, docs.small, docs.large
run("find_one by _id", n, n * tweet.bytes, {
  mgconn = function() for i = 1, n do assert(tweets:findOne({ _id = i }):wait(30)) end end,
  lm = function() for i = 1, n do assert(lm_tweets:findOne({ _id = i })):value() end end,
})
run("insert_one small", n, n * small.bytes, {
  mgconn = function() for _ = 1, n do assert(smalls:insertOne(small.mgconn):wait(30)) end end,
  lm = function() for _ = 1, n do assert(lm_smalls:insertOne(small.lm)) end end,
}, fresh(smalls))
run("find all tweets", n, n * tweet.bytes, {
  mgconn = function() assert(#tweets:find():toArray():wait(60) == n) end,
  lm = function()
    local got = {}
    for d in lm_tweets:find({}):iterator() do got[#got + 1] = d end
    assert(#got == n)
  end,
})
run("insert_many small", n, n * small.bytes, {
  mgconn = function() assert(smalls:insertMany(copies(small.mgconn, n)):wait(60)) end,
  lm = function() lm_insert_many(lm_smalls, small.lm, n) end,
}, fresh(smalls))
if large_count > 0 then
  run("insert_many large", large_count, large_count * large.bytes, {
    mgconn = function() assert(larges:insertMany(copies(large.mgconn, large_count)):wait(600)) end,
    lm = function() lm_insert_many(lm_larges, large.lm, large_count) end,
  }, fresh(larges))
end
conn:close():wait(30)
