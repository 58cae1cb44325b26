-- The Lua half of the fault soak, as a game host would run it: callbacks, one mgconn.poll() per
-- 5 ms "frame", 16 operations in flight, for DURATION seconds while run.py kills and restarts the
-- server. Prints one JSON line at the end.
--
--   lua5.4 worker.lua URI DURATION PREFIX
local mgconn = require "mgconn"
local URI, DURATION, PREFIX = arg[1], tonumber(arg[2]), arg[3]
local IN_FLIGHT = 16

local function rss_kib()
  local f = io.open("/proc/self/statm")
  local pages = f:read("n") and f:read("n")
  f:close()
  return pages * 4
end

-- bufferTimeoutMS 30 s: as in worker.py (what is lost, not whether a deadline holds)
local conn = mgconn.createConnection(URI, { heartbeatFrequencyMS = 500, serverSelectionTimeoutMS = 30000,
                                            bufferTimeoutMS = 30000 })
assert(conn:asPromise():wait(30), "the soak's Lua connection did not open")
local docs = conn:collection("soak")

local acked, ambiguous, updates_acked, updates_ambiguous = {}, {}, {}, {}
local counts = { ops = 0, ok = 0, failed = 0 }
local by_kind, errors_by_kind = {}, {}
for _, k in ipairs({ "insert", "find", "set", "inc" }) do by_kind[k] = { ok = 0, failed = 0 } errors_by_kind[k] = {} end
local errors, rss = {}, {}
local pending, n, max_frame_ms = 0, 0, 0
local timeline, updating = {}, {} -- one update at a time per document: FerretDB's $inc is read-modify-write
math.randomseed(11)

local function done(err, what)
  pending = pending - 1
  if err then
    counts.failed = counts.failed + 1
    errors[err.category] = (errors[err.category] or 0) + 1
    by_kind[what].failed = by_kind[what].failed + 1
    errors_by_kind[what][err.category] = (errors_by_kind[what][err.category] or 0) + 1
    if #timeline < 100 then
      timeline[#timeline + 1] = string.format("%.2f %s(%s) %s", (mgconn.now() - START) / 1000, err.category, what,
                                              (err.message:sub(1, 400):gsub('[%c"\\]', " ")))
    end
  else
    counts.ok = counts.ok + 1
    by_kind[what].ok = by_kind[what].ok + 1
  end
end

local function unknown(err) return err.category == "OutcomeUnknown" or err.category == "Network" end

local function issue()
  counts.ops = counts.ops + 1
  pending = pending + 1
  local kind = math.random()
  if kind < 0.55 or #acked == 0 then
    n = n + 1
    local id = PREFIX .. "-" .. n
    docs:insertOne({ _id = id, n = 0 }, function(err)
      if not err then acked[#acked + 1] = id elseif unknown(err) then ambiguous[#ambiguous + 1] = id end
      done(err, "insert")
    end)
  elseif kind < 0.75 then
    local id = acked[math.random(#acked)]
    docs:findOne({ _id = id }, function(err, doc)
      if not err then assert(doc and doc._id == id, "acknowledged " .. id .. " not found") end
      done(err, "find")
    end)
  else
    local what = kind < 0.87 and "set" or "inc"
    local id = acked[math.random(#acked)]
    if updating[id] then done(nil, what) return end
    updating[id] = true
    local update = what == "set" and { ["$set"] = { saved = n } } or { ["$inc"] = { n = 1 } }
    docs:updateOne({ _id = id }, update, function(err)
      if what == "inc" then
        if not err then updates_acked[id] = (updates_acked[id] or 0) + 1
        elseif unknown(err) then updates_ambiguous[id] = (updates_ambiguous[id] or 0) + 1 end
      end
      updating[id] = nil
      done(err, what)
    end)
  end
end

START = mgconn.now()
local start = START
while mgconn.now() - start < DURATION * 1000 do
  local t0 = mgconn.now()
  mgconn.poll()
  while pending < IN_FLIGHT do issue() end
  local frame = mgconn.now() - t0
  if frame > max_frame_ms then max_frame_ms = frame end
  if not rss.at_10s and mgconn.now() - start > 10000 then rss.at_10s = rss_kib() end
  mgconn.idle(5)
end
local deadline = mgconn.now() + 40000
while pending > 0 and mgconn.now() < deadline do mgconn.poll() mgconn.idle(10) end
assert(pending == 0, pending .. " operations never resolved")
rss["end"] = rss_kib()
conn:close():wait(10)

-- JSON out
local function json(v)
  local t = type(v)
  if t == "number" then return string.format("%d", v) end
  if t == "string" then return '"' .. v .. '"' end
  local parts, is_array = {}, #v > 0 or next(v) == nil and v == acked or v == ambiguous
  if is_array then
    for _, x in ipairs(v) do parts[#parts + 1] = json(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for k, x in pairs(v) do parts[#parts + 1] = json(k) .. ":" .. json(x) end
  return "{" .. table.concat(parts, ",") .. "}"
end
print(json({ host = "lua", acked = acked, ambiguous = ambiguous, updates_acked = updates_acked,
             updates_ambiguous = updates_ambiguous, counts = counts, errors = errors, rss_kib = rss,
             by_kind = by_kind, errors_by_kind = errors_by_kind,
             timeline = timeline,
             max_frame_us = math.floor(max_frame_ms * 1000) }))
