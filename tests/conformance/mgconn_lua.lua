-- The conformance scenarios through mgconn from Lua: step for step what node/mongoose.js does.
--
--   lua5.4 mgconn_lua.lua SCENARIO URI [ARG_JSON]
--
-- Prints `TRACE {...}`; asks the harness for faults with `CONTROL ...` lines (see run.py). A script
-- like this is a game's or a tool's: plain calls with op:wait(), and a poll loop while it waits for
-- an event.
local mgconn = require "mgconn"

local SCENARIO, URI, ARG_JSON = arg[1], arg[2], arg[3]
local CLOSED_URI = "mongodb://127.0.0.1:1/conformance"
local EVENTS = { "connecting", "connected", "open", "disconnecting", "disconnected", "close", "reconnected", "error" }

-- ---- a small JSON writer (the trace) and reader (the name list) ----
local ARRAY = {}
local function array(t) return setmetatable(t or {}, ARRAY) end
local function json(v)
  local t = type(v)
  if t == "nil" then return "null"
  elseif t == "boolean" or t == "number" then return tostring(v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return c == '"' and '\\"' or c == "\\" and "\\\\" or string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  local parts = {}
  if getmetatable(v) == ARRAY or #v > 0 then
    for _, x in ipairs(v) do parts[#parts + 1] = json(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
local function names_from_json(s)
  local out = {}
  for name in (s or ""):gmatch('"([^"]*)"') do out[#out + 1] = name end
  return out
end

-- ---- helpers ----
local function control(what)
  io.write("CONTROL ", what, "\n")
  io.flush()
  io.read("l")
end

local function watch(conn)
  local seen = array()
  for _, name in ipairs(EVENTS) do conn:on(name, function() seen[#seen + 1] = name end) end
  return seen
end

local function contains(list, x, from)
  for i = from or 1, #list do if list[i] == x then return true end end
  return false
end

local function until_(pred, seconds)
  local deadline = mgconn.now() + (seconds or 15) * 1000
  while not pred() and mgconn.now() < deadline do
    mgconn.poll()
    mgconn.idle(10)
  end
end

local function sleep(seconds) until_(function() return false end, seconds) end

local function slice(list, from)
  local out = array()
  for i = from, #list do out[#out + 1] = list[i] end
  return out
end

-- The outcome of an op (waited for) or of a plain call that raises.
local function outcome(name, op_or_fn)
  local result, err
  if type(op_or_fn) == "function" then
    local ok, e = pcall(op_or_fn)
    if not ok then err = e end
  else
    result, err = op_or_fn:wait(30)
  end
  if err then
    if type(err) ~= "table" then return { op = name, ok = false, category = "LuaError", message = tostring(err) } end
    return { op = name, ok = false, category = err.category, message = err.message }
  end
  return { op = name, ok = true }
end

local function schema(opts) return mgconn.Schema({ name = "string" }, opts) end

local scenarios = {}

function scenarios.open_order()
  local conn = mgconn.createConnection(URI)
  local events = watch(conn)
  conn:asPromise():wait(15)
  local trace = { events = slice(events, 1), values = { readyState = conn.readyState } }
  conn:close():wait(10)
  return trace
end

function scenarios.initial_failure()
  local conn = mgconn.createConnection(CLOSED_URI, { serverSelectionTimeoutMS = 500 })
  local events = watch(conn)
  local o = outcome("asPromise", conn:asPromise())
  sleep(0.05)
  return { events = events, outcomes = array({ o }), values = { readyState = conn.readyState } }
end

function scenarios.sessions_transactions_watch()
  local conn = mgconn.createConnection(URI)
  local Item = conn:model("Item", mgconn.Schema({ name = "string" }))
  assert(conn:asPromise():wait(15))
  local s = conn:startSession()
  assert(Item:insertOne({ _id = 1, name = "in a session" }, { session = s }):wait(10))
  local found = Item:findOne({ _id = 1 }, { session = s }):wait(10)
  s:endSession()
  local outcomes = array({ outcome("transaction", conn:transaction(function(session)
    local _, err = Item:insertOne({ _id = 2, name = "in a transaction" }, { session = session }):await()
    if err then error(err) end
  end)) })
  local stream = Item:watch()
  outcomes[2] = outcome("watch", stream:next())
  stream:close()
  local values = { found = found, count = Item:countDocuments({}):wait(10) }
  conn:close():wait(10)
  return { outcomes = outcomes, values = values }
end

function scenarios.everyday_operations()
  local conn = mgconn.createConnection(URI)
  local Item = conn:model("Item", mgconn.Schema({ name = "string", n = "number" }))
  assert(Item:insertMany({ { _id = 1, name = "a", n = 1 }, { _id = 2, name = "b", n = 2 },
                           { _id = 3, name = "a", n = 3 } }):wait(10))
  local bulk = assert(Item:bulkWrite({
    { insertOne = { document = { _id = 4, name = "c", n = 4 } } },
    { updateOne = { filter = { _id = 1 }, update = { ["$set"] = { n = 10 } } } },
    { updateMany = { filter = { name = "a" }, update = { ["$inc"] = { n = 1 } } } },
    { deleteOne = { filter = { _id = 2 } } },
  }):wait(10))
  local updated = Item:findOneAndUpdate({ _id = 3 }, { ["$set"] = { name = "z" } }, { new = true }):wait(10)
  local before = Item:findOneAndUpdate({ _id = 4 }, { ["$set"] = { n = 40 } }):wait(10)
  local deleted = Item:findOneAndDelete({ _id = 1 }):wait(10)
  local names = Item:distinct("name"):wait(10)
  table.sort(names)
  assert(Item:createIndexes({ { key = { n = 1 } } }):wait(10))
  local indexes = {}
  for i, ix in ipairs(Item:listIndexes():wait(10)) do indexes[i] = ix.name end
  table.sort(indexes)
  local values = { bulk = array({ bulk.insertedCount, bulk.matchedCount, bulk.modifiedCount, bulk.deletedCount }),
                   updated = updated, before = before, deleted = deleted, names = array(names),
                   indexes = array(indexes), count = Item:countDocuments({}):wait(10) }
  conn:close():wait(10)
  return { values = values }
end

function scenarios.buffered_before_open()
  local conn = mgconn.createConnection()
  local User = conn:model("User", schema())
  local saved = User:insertOne({ name = "ada" })
  conn:openUri(URI)
  local o = outcome("create", saved)
  local found = User:findOne({ name = "ada" }):wait(10)
  conn:close():wait(10)
  return { outcomes = array({ o }), values = { found = found and found.name } }
end

function scenarios.buffer_timeout()
  local conn = mgconn.createConnection()
  local User = conn:model("User", schema({ bufferTimeoutMS = 300 }))
  return { outcomes = array({ outcome("findOne", User:findOne({})) }) }
end

function scenarios.buffer_commands_off()
  local conn = mgconn.createConnection()
  local User = conn:model("User", schema({ bufferCommands = false }))
  return { outcomes = array({ outcome("findOne", User:findOne({})) }) }
end

function scenarios.kill_restart()
  local conn = mgconn.createConnection(URI, { heartbeatFrequencyMS = 500 })
  local events = watch(conn)
  conn:asPromise():wait(15)
  local start = #events + 1
  control("kill")
  until_(function() return contains(events, "disconnected") end)
  control("restart")
  until_(function() return contains(events, "reconnected", start) end, 20)
  sleep(0.3)
  local trace = { events = slice(events, start), values = { readyState = conn.readyState } }
  conn:close():wait(10)
  return trace
end

function scenarios.ops_during_outage()
  local conn = mgconn.createConnection(URI, { heartbeatFrequencyMS = 500, serverSelectionTimeoutMS = 1000 })
  local events = watch(conn)
  local User = conn:model("User", schema())
  conn:asPromise():wait(15)
  User:init():wait(15) -- the database exists before the kill (FerretDB cannot restart mid-creation)
  User:insertOne({ name = "before" }):wait(10)
  control("kill")
  until_(function() return contains(events, "disconnected") end)
  local saved = User:insertOne({ name = "during outage" })
  sleep(1.5) -- longer than serverSelectionTimeoutMS, shorter than bufferTimeoutMS
  control("restart")
  local o = outcome("create", saved)
  until_(function() return contains(events, "reconnected") end, 20)
  local n = User:countDocuments({ name = "during outage" }):wait(10)
  conn:close():wait(10)
  return { outcomes = array({ o }), values = { stored = n } }
end

function scenarios.writes_in_flight_at_kill()
  -- The server is stopped, so both writes are sent and unanswered, then killed and restarted:
  -- neither was applied.
  local conn = mgconn.createConnection(URI, { heartbeatFrequencyMS = 500, serverSelectionTimeoutMS = 10000,
                                             minPoolSize = 5 })
  local events = watch(conn)
  conn:asPromise():wait(15)
  local raw = conn:collection("raw")
  raw:insertOne({ _id = "counter", n = 0 }):wait(10) -- the database exists before the kill
  sleep(0.3)
  control("pause")
  local inserted = raw:insertOne({ _id = "in flight" })
  local incremented = raw:updateOne({ _id = "counter" }, { ["$inc"] = { n = 1 } })
  sleep(0.4)
  control("kill")
  control("restart")
  local o = { outcome("insertOne", inserted), outcome("updateOne", incremented) }
  until_(function() return contains(events, "reconnected") end, 20)
  local stored = raw:countDocuments({ _id = "in flight" }):wait(10)
  local counter = raw:findOne({ _id = "counter" }):wait(10)
  conn:close():wait(10)
  return { outcomes = array(o), values = { stored = stored, n = counter.n } }
end

function scenarios.close_sequence()
  local conn = mgconn.createConnection(URI)
  local events = watch(conn)
  conn:asPromise():wait(15)
  local start = #events + 1
  conn:close():wait(10)
  sleep(0.05)
  return { events = slice(events, start), values = { readyState = conn.readyState } }
end

function scenarios.close_force()
  local conn = mgconn.createConnection(URI, { socketTimeoutMS = 0 })
  local User = conn:model("User", schema())
  conn:asPromise():wait(15)
  User:insertOne({ name = "ada" }):wait(10)
  control("pause") -- the server stops answering: the next find stays in flight
  local find = User:findOne({ name = "ada" })
  sleep(0.3)
  conn:close(true):wait(10)
  until_(function() return find:done() end, 5)
  local o = find:done() and outcome("findOne", find) or { op = "findOne", ok = false, category = "StillPending" }
  control("resume")
  return { outcomes = array({ o }), values = { readyState = conn.readyState } }
end

function scenarios.connect_twice()
  local first = outcome("connect", mgconn.connect(URI):asPromise())
  local again = outcome("connect same URI", function() assert(mgconn.connect(URI):asPromise():wait(10)) end)
  local other = outcome("connect other URI", function() mgconn.connect((URI:gsub("/([%w_]+)$", "/other_db"))) end)
  local state = mgconn.connections[1].readyState
  mgconn.disconnect():wait(10)
  return { outcomes = array({ first, again, other }), values = { readyStateAfter = state } }
end

function scenarios.create_connection_as_promise()
  local conn = mgconn.createConnection(URI)
  local got = conn:asPromise():wait(15)
  local trace = { values = { sameConnection = got == conn, readyState = conn.readyState, name = conn.name } }
  conn:close():wait(10)
  return trace
end

function scenarios.use_db()
  local conn = mgconn.createConnection(URI)
  conn:asPromise():wait(15)
  local a, a2 = conn:useDb("tenant_a"), conn:useDb("tenant_a")
  local c, c2 = conn:useDb("tenant_c", { useCache = true }), conn:useDb("tenant_c", { useCache = true })
  local Child = c:model("User", schema())
  Child:insertOne({ name = "in tenant c" }):wait(10)
  local parentHas = pcall(conn.model, conn, "User")
  local values = { sameWithoutCache = a == a2, sameWithCache = c == c2, childName = c.name, childState = c.readyState,
                   parentHasModel = parentHas, childCount = Child:countDocuments({}):wait(10) }
  conn:close():wait(10)
  return { values = values }
end

function scenarios.models()
  local conn = mgconn.createConnection()
  local s1, s2 = schema(), schema()
  local User = conn:model("User", s1)
  local outcomes = array()
  outcomes[#outcomes + 1] = outcome("model same schema", function()
    if conn:model("User", s1) ~= User then error({ category = "Mgconn", message = "a different model came back" }) end
  end)
  outcomes[#outcomes + 1] = outcome("model other schema", function() conn:model("User", s2) end)
  outcomes[#outcomes + 1] = outcome("model missing", function() conn:model("Nope") end)
  conn:deleteModel("User")
  outcomes[#outcomes + 1] = outcome("model after delete", function() conn:model("User") end)
  return { outcomes = outcomes, values = { modelNames = array() } }
end

function scenarios.pluralize()
  local values = {}
  local conn = mgconn.createConnection() -- the collection name a model gets
  for _, name in ipairs(names_from_json(ARG_JSON)) do
    values[name] = conn:model(name, mgconn.Schema({})).collectionName
  end
  return { values = values }
end

function scenarios.autocreate_capped()
  local conn = mgconn.createConnection(URI)
  local Log = conn:model("Log", mgconn.Schema({ line = "string" }, { capped = { size = 4096 } }))
  Log:init():wait(15)
  local reply = assert(conn:runCommand(mgconn.ordered("listCollections", 1, "filter", { name = Log.collectionName })):wait(10))
  local info = reply.cursor.firstBatch[1]
  local capped = info ~= nil and info.options ~= nil and info.options.capped == true
  conn:close():wait(10)
  return { values = { collection = Log.collectionName, capped = capped } }
end

function scenarios.debug_format()
  local conn = mgconn.createConnection(URI)
  local User = conn:model("User", schema())
  conn:asPromise():wait(15)
  mgconn.set("debug", true) -- lines go to stderr: the harness reads them
  User:findOne({ name = "x" }):wait(10)
  User:countDocuments({ name = "x" }):wait(10)
  mgconn.set("debug", false)
  conn:close():wait(10)
  return {}
end

local run = assert(scenarios[SCENARIO], "no scenario " .. tostring(SCENARIO))
io.write("TRACE ", json(run()), "\n")
io.flush()
