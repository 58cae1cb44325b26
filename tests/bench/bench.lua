-- The benchmark's single- and multi-document tasks from Lua through mgconn (sync style, op:wait()).
--   lua5.4 bench.lua URI DATA_DIR N REPEAT LARGE     prints one JSON result per line
local mgconn = require "mgconn"
local core = require "mgconn.core"
local uri, dir, n, repeat_, large_count = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5] or 10)

local function load(name)
  local f = assert(io.open(dir .. "/" .. name))
  local text = f:read("a")
  f:close()
  return core.fromjson(text)
end

local function size(doc) return #core.encode(doc) end

local function median(t) table.sort(t) return t[(#t + 1) // 2] end

local function run(task, ops, bytes, body, setup)
  local walls, cpus = {}, {}
  for r = 1, repeat_ do
    if setup then setup() end
    local w0, c0 = mgconn.now(), os.clock()
    body()
    walls[r], cpus[r] = (mgconn.now() - w0) / 1000, os.clock() - c0
  end
  local lo, hi = math.huge, 0
  for _, w in ipairs(walls) do lo, hi = math.min(lo, w), math.max(hi, w) end
  print(string.format('{"task": "%s", "client": "mgconn (Lua)", "ops": %d, "bytes": %d, "seconds": %.6f, '
                      .. '"cpu_seconds": %.6f, "wall_spread": [%.6f, %.6f], "iterations": %d}',
                      task, ops, bytes, median(walls), median(cpus), lo, hi, repeat_))
  io.stdout:flush()
end

local conn = mgconn.createConnection(uri .. "bench_lua")
assert(conn:asPromise():wait(30))
local tweet, small, large = load("tweet.json"), load("small_doc.json"), load("large_doc.json")
local tweets, smalls, larges = conn:collection("tweets"), conn:collection("smalls"), conn:collection("larges")
assert(tweets:drop():wait(30))
for i = 1, n do
  local d = {}
  for k, v in pairs(tweet) do d[k] = v end
  d._id = i
  assert(tweets:insertOne(d):wait(30))
end

local function fresh(coll) return function() assert(coll:drop():wait(30)) end end

run("find_one by _id", n, n * size(tweet), function()
  for i = 1, n do assert(tweets:findOne({ _id = i }):wait(30)) end
end)
run("insert_one small", n, n * size(small), function()
  for _ = 1, n do assert(smalls:insertOne(small):wait(30)) end
end, fresh(smalls))
run("find all tweets", n, n * size(tweet), function()
  assert(#tweets:find():toArray():wait(60) == n)
end)
run("insert_many small", n, n * size(small), function()
  local docs = {}
  for i = 1, n do docs[i] = small end
  assert(smalls:insertMany(docs):wait(60))
end, fresh(smalls))
if large_count > 0 then
  run("insert_many large", large_count, large_count * size(large), function()
    local docs = {}
    for i = 1, large_count do docs[i] = large end
    assert(larges:insertMany(docs):wait(600))
  end, fresh(larges))
end
conn:close():wait(30)
